/**
 * @porter/core: very many outgoing TCP connections from Node.js, with local source
 * ports managed per destination (bind-before-connect with SO_REUSEADDR, exact aging,
 * retries around collisions, a kernel fallback), never taking the kernel's ephemeral
 * ports from the rest of the host.
 *
 * @packageDocumentation
 */
export { Agent, type AgentOptions } from './agent.js';
export type { CreateConnectionArg, CreateConnectionOptions } from './create-connection.js';
export { allocate, configureDefault, connect, createConnection, defaultPorter, snapshot } from './default.js';
export { AbortError, ErrorCodes, PorterError, PorterRangeError, PorterTypeError, type SystemError } from './errors.js';
export { hostPorts, partitionRange } from './host.js';
export { type Lease, leaseOf, type ReleaseOptions } from './lease.js';
export { Porter } from './porter.js';
export type {
  AllocateOptions,
  Capacity,
  ConnectOptions,
  HostPorts,
  KeepAliveOptions,
  PoolCounts,
  PoolSnapshot,
  PoolSummary,
  PorterOptions,
  PorterStats,
  PortMode,
  ResolvedOptions,
  ServicePortsChoice,
  SocketOptions,
} from './types.js';
