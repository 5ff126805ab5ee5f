/**
 * @porter/core/internal: what porter's own packages (@porter/tls, @porter/metrics,
 * @porter/cli) build on. Not part of the public API: it may change in any release.
 *
 * @internal
 * @packageDocumentation
 */
export { canonicalIp, unspecified } from './address.js';
export { AGENT_REFUSED, agentOptions, keepSocketAliveAsConfigured } from './agent.js';
export { type CheckedConnect, checkConnectOptions, checkConnectSettings, unhonoured } from './connect-options.js';
export { kConnectDeadline } from './create-connection.js';
export { idleTimeout, type LongTimeout, race, setLongTimeout, timeoutError } from './deadline.js';
export { validatePorter } from './default.js';
export {
  badPort,
  callNative,
  describe,
  fromNativeError,
  fromThrown,
  invalidArgType,
  invalidArgValue,
  invalidIpAddress,
  outOfRange,
  systemError,
} from './errors.js';
export {
  type HostDestination,
  type HostListener,
  type HostSockets,
  hostSockets,
  type SocketSourceName,
} from './host-sockets.js';
export { PortLease, portLeaseOf } from './lease.js';
export { toNativeSocketOptions, validateSocketOptions } from './sockopts.js';
export {
  missingArg,
  refuseOptions,
  validateAbortSignal,
  validateBoolean,
  validateFamily,
  validateFunction,
  validateInteger,
  validateIp,
  validateNumber,
  validateObject,
  validatePort,
  validateString,
  validateTimeout,
} from './validate.js';
