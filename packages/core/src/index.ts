/**
 * @porter/core: very many outgoing TCP connections from Node.js, with local source
 * ports managed per destination (bind-before-connect with SO_REUSEADDR, exact aging,
 * retries around collisions, a kernel fallback).
 *
 * @packageDocumentation
 */
export { allocate, configureDefault, connect, defaultPorter, snapshot } from './default.js';
export {
  AbortError,
  ErrorCodes,
  invalidArgType,
  invalidArgValue,
  outOfRange,
  PorterError,
  PorterRangeError,
  PorterTypeError,
  type SystemError,
  systemError,
} from './errors.js';
export { type Lease, leaseOf, PortLease, portLeaseOf, type ReleaseOptions } from './lease.js';
export type { PorterOptions, PortMode, ResolvedOptions } from './options.js';
export {
  type AllocateOptions,
  type Capacity,
  type ConnectOptions,
  type HostPorts,
  hostPorts,
  type PoolCounts,
  type PoolSnapshot,
  type PoolSummary,
  Porter,
  type PorterStats,
  partitionRange,
} from './porter.js';
