/**
 * The lease of a porter TLS socket: its fields, aging when this side closes first, an
 * immediate return when the server closes first or resets the connection; and session
 * resumption with a session from an earlier porter socket.
 */
import { once } from 'node:events';
import type { TLSSocket } from 'node:tls';
import { Porter } from '@porter/core';
import { connect, leaseOf } from '@porter/tls';
import test from 'ava';
import { type Certs, makeCerts } from '../helpers/certs.mjs';
import { inUse, portState } from '../helpers/pools.js';
import { startTlsServer } from '../helpers/tls-servers.js';

let certs: Certs;
test.before(() => {
  certs = makeCerts();
});
test.after.always(() => certs?.cleanup());

/** Resolves once `socket` has emitted 'close' (or has already). */
async function closed(socket: TLSSocket): Promise<void> {
  // `closed` turns true before 'close' is emitted, and the lease is released on 'close':
  // a socket is done when both are.
  if (!(socket.closed && leaseOf(socket)?.released)) await once(socket, 'close');
}

test('leaseOf(tlsSocket): the addresses and ports of the connection', async (t) => {
  const server = await startTlsServer({ cert: certs.server.cert, key: certs.server.key });
  const porter = new Porter({ agingMs: 60_000 });
  const socket = await connect({ host: '127.0.0.1', port: server.port, ca: certs.ca, porter });
  const lease = leaseOf(socket);
  if (lease === undefined) return t.fail('no lease');
  socket.write('ping');
  await once(socket, 'data');
  const [accepted] = server.accepted;
  t.is<number | undefined, number | undefined>(lease.localPort, socket.localPort);
  t.is<number | undefined, number | undefined>(
    lease.localPort,
    accepted?.remotePort,
    'the server sees the leased port',
  );
  t.is(lease.remoteAddress, '127.0.0.1');
  t.is(lease.remotePort, server.port);
  // The pool is on the unspecified address: the lease reports the one the kernel chose.
  t.is(lease.localAddress, '127.0.0.1');
  t.is<string | undefined, string | undefined>(lease.localAddress, socket.localAddress);
  t.false(lease.released);
  t.deepEqual(inUse(porter), [lease.localPort]);
  socket.end();
  await closed(socket);
  t.true(lease.released);
  await server.close();
});

test('this side closes first: the port ages', async (t) => {
  const server = await startTlsServer({ cert: certs.server.cert, key: certs.server.key });
  const porter = new Porter({ agingMs: 60_000 });
  const socket = await connect({ host: '127.0.0.1', port: server.port, ca: certs.ca, porter });
  const port = socket.localPort as number;
  socket.end();
  await closed(socket);
  t.deepEqual(inUse(porter), []);
  t.is(portState(porter.snapshot(), '127.0.0.1', server.port, port), 'aging');
  await server.close();
});

test('destroy() on this side: the port ages', async (t) => {
  const server = await startTlsServer({ cert: certs.server.cert, key: certs.server.key });
  const porter = new Porter({ agingMs: 60_000 });
  const socket = await connect({ host: '127.0.0.1', port: server.port, ca: certs.ca, porter });
  const port = socket.localPort as number;
  socket.destroy();
  await closed(socket);
  t.deepEqual(inUse(porter), []);
  t.is(portState(porter.snapshot(), '127.0.0.1', server.port, port), 'aging');
  await server.close();
});

test('the server closes first: the port is free again at once', async (t) => {
  const server = await startTlsServer({ cert: certs.server.cert, key: certs.server.key }, (s) => {
    s.once('data', () => s.end());
  });
  const porter = new Porter({ agingMs: 60_000 });
  const socket = await connect({ host: '127.0.0.1', port: server.port, ca: certs.ca, porter });
  const port = socket.localPort as number;
  socket.write('close please');
  await closed(socket);
  t.true(leaseOf(socket)?.released);
  t.deepEqual(inUse(porter), []);
  t.is(portState(porter.snapshot(), '127.0.0.1', server.port, port), 'free');
  await server.close();
});

test('the server resets the connection: ECONNRESET, and the port is free again at once', async (t) => {
  let server: Awaited<ReturnType<typeof startTlsServer>> | undefined;
  server = await startTlsServer({ cert: certs.server.cert, key: certs.server.key }, (s) => {
    s.once('data', () => server?.reset(s));
  });
  const porter = new Porter({ agingMs: 60_000 });
  const socket = await connect({ host: '127.0.0.1', port: server.port, ca: certs.ca, porter });
  const port = socket.localPort as number;
  t.deepEqual(inUse(porter), [port]);
  const errors: NodeJS.ErrnoException[] = [];
  socket.on('error', (e) => errors.push(e));
  // (once(socket, 'close') would reject on the 'error' that comes first.)
  const done = new Promise((resolve) => socket.once('close', resolve));
  socket.write('reset me');
  await done;
  t.deepEqual(
    errors.map((e) => e.code),
    ['ECONNRESET'],
  );
  t.true(leaseOf(socket)?.released);
  // A reset leaves no TIME_WAIT on this side: not aging.
  t.deepEqual(inUse(porter), []);
  t.is(portState(porter.snapshot(), '127.0.0.1', server.port, port), 'free');
  t.deepEqual(porter.stats().releases, { aging: 0, immediate: 1 });
  await server.close();
});

for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
  test(`session resumption (${version}) with the session of an earlier socket`, async (t) => {
    const server = await startTlsServer({ cert: certs.server.cert, key: certs.server.key }, (s) => {
      s.once('data', () => s.end());
    });
    const porter = new Porter({ agingMs: 60_000 });
    const options = { host: 'localhost', family: 4, port: server.port, ca: certs.ca, porter, maxVersion: version };
    const first = await connect(options);
    t.false(first.isSessionReused());
    t.is(first.getProtocol(), version);
    let session: Buffer | undefined;
    if (version === 'TLSv1.3') {
      // TLS 1.3 tickets arrive after the handshake: wait for the 'session' event.
      const sessionEvent = once(first, 'session') as Promise<[Buffer]>;
      first.write('x');
      [session] = await sessionEvent;
    } else {
      // TLS 1.2: the session is known when the handshake ends.
      session = first.getSession();
      first.write('x');
    }
    if (session === undefined) return t.fail('no session');
    await closed(first);

    const second = await connect({ ...options, session });
    t.true(second.isSessionReused());
    t.is(second.getProtocol(), version);
    t.truthy(leaseOf(second));
    second.write('x');
    await closed(second);
    t.deepEqual(inUse(porter), []);
    await server.close();
  });
}
