/**
 * @porter/tls: TLS connections from local ports porter manages. `connect()` opens the
 * TCP connection through a Porter, runs the handshake with Node's own tls module and
 * resolves to Node's own tls.TLSSocket, whose port lease follows it. `createConnection()`
 * is tls.connect's contract (a TLSSocket at once), `Agent` an https.Agent and
 * `connector()` an undici connector, all on porter's ports.
 *
 * @packageDocumentation
 */

// The lease registry these sockets are recorded in (re-exported so that users of either
// module format read the same one @porter/tls writes to).
export { type Lease, leaseOf } from '@porter/core';
export { Agent, type AgentOptions } from './agent.js';
export { type ConnectOptions, connect } from './connect.js';
export {
  type Connector,
  type ConnectorCallback,
  type ConnectorOptions,
  type ConnectorRequest,
  ConnectTimeoutError,
  connector,
} from './connector.js';
export { type CreateConnectionOptions, createConnection } from './create-connection.js';
