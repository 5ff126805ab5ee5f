/**
 * socketOptions through @porter/tls: connect() and createConnection() hand them to the TCP
 * connect under the TLS socket (read back with getsockopt from it), the Porter's and the
 * connect's own together; lingerZeroOnClose frees the port at once when the TLS socket is
 * destroyed; an option the kernel refuses rejects as it does for TCP.
 */
import { once } from 'node:events';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Porter } from '@porter/core';
import { connect, createConnection, leaseOf } from '@porter/tls';
import test from 'ava';
import { type Certs, makeCerts } from '../helpers/certs.mjs';
import { inUse, portState } from '../helpers/pools.js';
import { testIf } from '../helpers/requirements.js';
import { porterSocketOptions, sockoptReaderMissing } from '../helpers/sockopts.js';
import { startTlsServer } from '../helpers/tls-servers.js';

let certs: Certs;
test.before(() => {
  certs = makeCerts();
});
test.after.always(() => certs?.cleanup());

/**
 * The TCP socket under a TLS socket porter made (Node keeps it as `_parent`), checked to
 * be the leased connection's.
 */
function tcpUnder(socket: TLSSocket): Socket {
  const tcp = (socket as TLSSocket & { _parent?: Socket })._parent;
  if (tcp === undefined || tcp.localPort !== leaseOf(socket)?.localPort) throw new Error('no TCP socket under it');
  return tcp;
}

function closed(socket: TLSSocket): Promise<void> {
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

const withPerl = testIf(sockoptReaderMissing());

withPerl("connect(): the Porter's socketOptions and the connect's own are on the TCP socket", async (t) => {
  const server = await startTlsServer({ cert: certs.server.cert, key: certs.server.key });
  t.teardown(() => server.close());
  const porter = new Porter({ agingMs: 60_000, socketOptions: { userTimeoutMs: 3_000, lingerZeroOnClose: true } });
  const socket = await connect({
    host: '127.0.0.1',
    port: server.port,
    ca: certs.ca,
    porter,
    socketOptions: { congestion: 'reno', tos: 0x20 },
  });
  const seen = await porterSocketOptions(tcpUnder(socket), 4);
  t.like(seen, { userTimeoutMs: 3_000, linger: { on: true, seconds: 0 }, congestion: 'reno', tos: 0x20 });
  // SO_LINGER zero: destroying the TLS socket resets the connection, the port is free at once.
  const port = socket.localPort as number;
  const done = closed(socket);
  socket.destroy();
  await done;
  t.true(leaseOf(socket)?.released);
  t.deepEqual(inUse(porter), []);
  t.is(portState(porter.snapshot(), '127.0.0.1', server.port, port), 'free');
});

withPerl('createConnection(): socketOptions reach the TCP socket too', async (t) => {
  const server = await startTlsServer({ cert: certs.server.cert, key: certs.server.key });
  t.teardown(() => server.close());
  const porter = new Porter({ agingMs: 60_000 });
  // tls.connect's contract: the TLS socket at once, 'secureConnect' once connected.
  const socket = createConnection({
    host: '127.0.0.1',
    port: server.port,
    ca: certs.ca,
    porter,
    socketOptions: { userTimeoutMs: 4_000 },
  });
  await once(socket, 'secureConnect');
  t.like(await porterSocketOptions(tcpUnder(socket), 4), { userTimeoutMs: 4_000, linger: { on: false } });
  // Without SO_LINGER zero, destroy() closes this side first: the port ages.
  const port = socket.localPort as number;
  const done = closed(socket);
  socket.destroy();
  await done;
  t.is(portState(porter.snapshot(), '127.0.0.1', server.port, port), 'aging');
});

test('an option the kernel refuses rejects the TLS connect, naming it, and leaks no port', async (t) => {
  const server = await startTlsServer({ cert: certs.server.cert, key: certs.server.key });
  t.teardown(() => server.close());
  const porter = new Porter({ agingMs: 60_000 });
  const err = await t.throwsAsync(
    connect({ host: '127.0.0.1', port: server.port, ca: certs.ca, porter, socketOptions: { congestion: 'no-such' } }),
  );
  t.like(err, { code: 'ENOENT', syscall: 'setsockopt', option: 'TCP_CONGESTION', port: server.port });
  t.deepEqual(inUse(porter), []);
  t.deepEqual(
    porter.snapshot().flatMap((p) => p.aging),
    [],
  );
  t.deepEqual(porter.stats().connectErrors, { ENOENT: 1 });
  t.is(server.accepted.length, 0);
});
