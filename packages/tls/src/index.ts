/**
 * @porter/tls: TLS connections from local ports porter manages. `connect()` opens the
 * TCP connection through a Porter, runs the handshake with Node's own tls module and
 * resolves to Node's own tls.TLSSocket, whose port lease follows it.
 *
 * @packageDocumentation
 */

// The lease registry these sockets are recorded in (re-exported so that users of either
// module format read the same one @porter/tls writes to).
export { type Lease, leaseOf } from '@porter/core';
export { type ConnectOptions, connect, createConnection } from './connect.js';
