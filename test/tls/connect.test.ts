/**
 * @porter/tls connect() against Node's own TLS server: echo, ALPN, mutual TLS, SNI,
 * each way a connect fails (with Node's code), and that no port is ever left in use.
 */
import { once } from 'node:events';
import type { ClientRequestArgs } from 'node:http';
import { Agent, get } from 'node:https';
import type { LookupFunction } from 'node:net';
import type { Duplex } from 'node:stream';
import { createSecureContext, type TLSSocket, TLSSocket as TLSSocketClass } from 'node:tls';
import { defaultPorter, Porter } from '@porter/core';
import { connect, createConnection, leaseOf } from '@porter/tls';
import test from 'ava';
import { type Certs, makeCerts } from '../helpers/certs.mjs';
import { inUse, poolsTo } from '../helpers/pools.js';
import { fillAcceptQueue, startServers } from '../helpers/servers.mjs';
import { destroyAll } from '../helpers/sockets.js';
import { startSilentServer, startTlsServer } from '../helpers/tls-servers.js';

let certs: Certs;
test.before(() => {
  certs = makeCerts();
});
test.after.always(() => certs?.cleanup());

const newPorter = (): Porter => new Porter({ agingMs: 60_000 });

/** Server options that require a client certificate signed by the test CA. */
const clientCertRequired = () => ({
  cert: certs.server.cert,
  key: certs.server.key,
  ca: certs.ca,
  requestCert: true,
  rejectUnauthorized: true,
});

/** Sends `text` and resolves to what comes back first. */
async function roundTrip(socket: TLSSocket, text: string): Promise<string> {
  socket.write(text);
  const [data] = (await once(socket, 'data')) as [Buffer];
  return data.toString();
}

/** Resolves once `socket` has emitted 'close' (or has already). */
async function closed(socket: TLSSocket): Promise<void> {
  // `closed` turns true before 'close' is emitted, and the lease is released on 'close':
  // a socket is done when both are.
  if (!(socket.closed && leaseOf(socket)?.released)) await once(socket, 'close');
}

async function closeLocal(socket: TLSSocket): Promise<void> {
  const closed = once(socket, 'close');
  socket.end();
  await closed;
}

/**
 * Asserts that a failed connect left nothing in use and exactly one port aging besides
 * those of counted collisions (a port another process of the host held: passed over and
 * aged, then another tried; the default range is shared with everything else running).
 */
function assertOnePortAging(
  t: { deepEqual: (a: unknown, b: unknown, m?: string) => void; is: (a: unknown, b: unknown, m?: string) => void },
  porter: Porter,
  port: number,
): void {
  t.deepEqual(inUse(porter), [], 'no port left in use');
  const aging = poolsTo(porter, port).flatMap((p) => p.aging);
  const collisions = Object.values(porter.stats().retries).reduce((a, b) => a + b, 0);
  t.is(aging.length, 1 + collisions, 'the port of the established TCP connection is aging');
}

test('echo through Node tls server, resolving to a TLSSocket with its lease', async (t) => {
  const server = await startTlsServer({ cert: certs.server.cert, key: certs.server.key });
  const porter = newPorter();
  const socket = await connect({ host: '127.0.0.1', port: server.port, ca: certs.ca, porter });
  t.true(socket.encrypted);
  t.true(socket.authorized);
  t.is(await roundTrip(socket, 'hello over porter'), 'hello over porter');
  const lease = leaseOf(socket);
  t.truthy(lease);
  t.is(lease?.localPort, socket.localPort);
  t.is(lease?.remotePort, server.port);
  t.deepEqual(inUse(porter), [socket.localPort]);
  await closeLocal(socket);
  t.deepEqual(inUse(porter), []);
  await server.close();
});

test('without a porter option, the default instance hands out the port', async (t) => {
  const server = await startTlsServer({ cert: certs.server.cert, key: certs.server.key });
  const socket = await connect({ host: '127.0.0.1', port: server.port, ca: certs.ca });
  t.is(await roundTrip(socket, 'default'), 'default');
  t.deepEqual(inUse(defaultPorter()), [socket.localPort]);
  await closeLocal(socket);
  t.deepEqual(inUse(defaultPorter()), []);
  await server.close();
});

test('IPv6: echo to ::1, checked against the IP:::1 of the certificate', async (t) => {
  const server = await startTlsServer({ cert: certs.server.cert, key: certs.server.key }, undefined, '::1');
  const porter = newPorter();
  const socket = await connect({ host: '::1', port: server.port, ca: certs.ca, porter });
  t.true(socket.authorized);
  t.is(socket.remoteAddress, '::1');
  t.is(leaseOf(socket)?.remoteAddress, '::1');
  t.is(await roundTrip(socket, 'six'), 'six');
  await closeLocal(socket);
  t.deepEqual(inUse(porter), []);
  await server.close();
});

test('SNI: the host name by default, never an IP address', async (t) => {
  const seen: (string | false)[] = [];
  const server = await startTlsServer({ cert: certs.server.cert, key: certs.server.key }, (s) => {
    seen.push((s as TLSSocket & { servername: string | false }).servername);
    s.end();
  });
  const porter = newPorter();
  const byName = await connect({ host: 'localhost', port: server.port, ca: certs.ca, porter, family: 4 });
  const byIp = await connect({ host: '127.0.0.1', port: server.port, ca: certs.ca, porter });
  const ipAsName = await connect({
    host: '127.0.0.1',
    port: server.port,
    ca: certs.ca,
    porter,
    servername: '127.0.0.1',
  });
  const explicit = await connect({
    host: '127.0.0.1',
    port: server.port,
    ca: certs.ca,
    porter,
    servername: 'localhost',
  });
  for (const s of [byName, byIp, ipAsName, explicit]) await closed(s);
  t.deepEqual(seen, ['localhost', false, false, 'localhost']);
  t.deepEqual(inUse(porter), []);
  await server.close();
});

test('ALPN: the protocol the server picks', async (t) => {
  const server = await startTlsServer({
    cert: certs.server.cert,
    key: certs.server.key,
    ALPNProtocols: ['mqtt', 'h2'],
  });
  const porter = newPorter();
  const socket = await connect({
    host: '127.0.0.1',
    port: server.port,
    ca: certs.ca,
    porter,
    ALPNProtocols: ['x-none', 'mqtt'],
  });
  t.is(socket.alpnProtocol, 'mqtt');
  await closeLocal(socket);
  await server.close();
});

test('mutual TLS: the server sees the client certificate', async (t) => {
  const server = await startTlsServer(clientCertRequired(), (s) => s.end(`${s.getPeerCertificate().subject.CN}\n`));
  const porter = newPorter();
  const socket = await connect({
    host: 'localhost',
    port: server.port,
    family: 4,
    ca: certs.ca,
    cert: certs.client.cert,
    key: certs.client.key,
    porter,
  });
  const [data] = (await once(socket, 'data')) as [Buffer];
  t.is(data.toString(), 'porter test client\n');
  await closed(socket);
  t.deepEqual(inUse(porter), []);
  await server.close();
});

test('unknown CA: rejects with UNABLE_TO_VERIFY_LEAF_SIGNATURE, the port ages', async (t) => {
  const server = await startTlsServer({ cert: certs.unknownCa.cert, key: certs.unknownCa.key });
  const porter = newPorter();
  const err = await t.throwsAsync(connect({ host: '127.0.0.1', port: server.port, ca: certs.ca, porter }));
  t.is((err as NodeJS.ErrnoException).code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  assertOnePortAging(t, porter, server.port);
  // Without rejectUnauthorized the same handshake resolves, unauthorized.
  const socket = await connect({
    host: '127.0.0.1',
    port: server.port,
    ca: certs.ca,
    porter,
    rejectUnauthorized: false,
  });
  t.false(socket.authorized);
  t.is(String(socket.authorizationError), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  await closeLocal(socket);
  t.deepEqual(inUse(porter), []);
  await server.close();
});

test('wrong host name: rejects with ERR_TLS_CERT_ALTNAME_INVALID, the port ages', async (t) => {
  const server = await startTlsServer({ cert: certs.wrongName.cert, key: certs.wrongName.key });
  const porter = newPorter();
  const err = await t.throwsAsync(connect({ host: 'localhost', port: server.port, family: 4, ca: certs.ca, porter }));
  t.is((err as NodeJS.ErrnoException).code, 'ERR_TLS_CERT_ALTNAME_INVALID');
  assertOnePortAging(t, porter, server.port);
  // The same certificate passes when the name asked for is the one it carries.
  const socket = await connect({
    host: '127.0.0.1',
    port: server.port,
    ca: certs.ca,
    porter,
    servername: 'wrong.example',
  });
  t.true(socket.authorized);
  await closeLocal(socket);
  await server.close();
});

test('handshake timeout against a server that never answers: ETIMEDOUT, the port ages', async (t) => {
  const server = await startSilentServer();
  const porter = newPorter();
  const started = performance.now();
  // The server never answers the handshake: only the timeout can settle the connect.
  const err = (await t.throwsAsync(
    connect({ host: '127.0.0.1', port: server.port, ca: certs.ca, porter, timeout: 300 }),
  )) as NodeJS.ErrnoException & { address?: string; port?: number };
  const elapsed = performance.now() - started;
  t.is(err.code, 'ETIMEDOUT');
  t.is(err.syscall, 'connect');
  t.is(err.port, server.port);
  t.true(elapsed >= 300 - 1, `timed out after ${elapsed} ms`);
  t.is(server.connections(), 1, 'the TCP connection had been established');
  assertOnePortAging(t, porter, server.port);
  await server.close();
});

test('timeout in the TCP stage: a destination that never completes the connect, ETIMEDOUT', async (t) => {
  const servers = await startServers({ mode: 'no-accept' });
  const port = servers.ports[0] as number;
  const fill = await fillAcceptQueue('127.0.0.1', port);
  t.teardown(async () => {
    await destroyAll(fill);
    await servers.stop();
  });
  const porter = newPorter();
  const err = (await t.throwsAsync(
    connect({ host: '127.0.0.1', port, ca: certs.ca, porter, timeout: 300 }),
  )) as NodeJS.ErrnoException & { port?: number; localPort?: number };
  t.is(err.code, 'ETIMEDOUT');
  t.is(err.syscall, 'connect');
  t.is(err.port, port);
  t.deepEqual(inUse(porter), []);
  // Its SYN left: the port ages.
  t.deepEqual(
    poolsTo(porter, port).flatMap((p) => p.aging.map((a) => a.port)),
    [err.localPort],
  );
});

test('one timeout spans the TCP connect and the handshake: the handshake gets what is left', async (t) => {
  const server = await startSilentServer();
  const porter = newPorter();
  const timeout = 1_500;
  // The TCP stage takes half the timeout: the resolver answers after that long.
  let resolved!: () => void;
  const answered = new Promise<void>((resolve) => {
    resolved = resolve;
  });
  const lookup = ((_host: string, _options: unknown, cb: (...a: unknown[]) => void) => {
    setTimeout(() => {
      cb(null, '127.0.0.1', 4);
      resolved();
    }, timeout / 2);
  }) as unknown as LookupFunction;
  const pending = connect({ host: 'slow.test', port: server.port, ca: certs.ca, porter, timeout, lookup });
  const outcome = pending.then(
    () => 'connected',
    (e: NodeJS.ErrnoException) => e.code,
  );
  await answered;
  // A handshake allowed the whole timeout again would end no earlier than this timer,
  // set now with the same delay (timers of one delay fire in the order they were set).
  let fullTimeoutPassed = false;
  const marker = setTimeout(() => {
    fullTimeoutPassed = true;
  }, timeout);
  t.teardown(() => clearTimeout(marker));
  t.is(await outcome, 'ETIMEDOUT');
  t.false(fullTimeoutPassed, 'the handshake was given a whole timeout of its own');
  t.is(server.connections(), 1, 'the TCP connection had been established: the handshake timed out');
  assertOnePortAging(t, porter, server.port);
  await server.close();
});

test('abort during the handshake: ABORT_ERR, the port ages', async (t) => {
  const server = await startSilentServer();
  const porter = newPorter();
  const controller = new AbortController();
  const pending = connect({ host: '127.0.0.1', port: server.port, ca: certs.ca, porter, signal: controller.signal });
  while (server.connections() === 0) await new Promise((r) => setTimeout(r, 5));
  controller.abort();
  const err = await t.throwsAsync(pending);
  t.is((err as NodeJS.ErrnoException).code, 'ABORT_ERR');
  t.is(err?.name, 'AbortError');
  assertOnePortAging(t, porter, server.port);
  await server.close();
});

test('an aborted signal rejects before any connection is made', async (t) => {
  const server = await startSilentServer();
  const porter = newPorter();
  const err = await t.throwsAsync(
    connect({ host: '127.0.0.1', port: server.port, porter, signal: AbortSignal.abort() }),
  );
  t.is((err as NodeJS.ErrnoException).code, 'ABORT_ERR');
  await new Promise((r) => setTimeout(r, 50));
  t.is(server.connections(), 0);
  t.deepEqual(inUse(porter), []);
  await server.close();
});

test('server requiring a client certificate, none given (TLS 1.2): rejects with the alert', async (t) => {
  const server = await startTlsServer(clientCertRequired());
  const porter = newPorter();
  const err = (await t.throwsAsync(
    connect({ host: '127.0.0.1', port: server.port, ca: certs.ca, porter, maxVersion: 'TLSv1.2' }),
  )) as NodeJS.ErrnoException & { library?: string };
  t.regex(String(err.code), /^ERR_SSL_.*ALERT/);
  t.deepEqual(inUse(porter), []);
  t.is(
    poolsTo(porter, server.port).flatMap((p) => p.aging).length,
    1,
    'the port of the established TCP connection is aging',
  );
  await server.close();
});

test('server requiring a client certificate, none given (TLS 1.3): the alert comes after secureConnect', async (t) => {
  // In TLS 1.3 the client finishes its handshake before the server has checked its
  // certificate: connect resolves, then the socket errors with the server's alert.
  const server = await startTlsServer(clientCertRequired());
  const porter = newPorter();
  const socket = await connect({ host: '127.0.0.1', port: server.port, ca: certs.ca, porter, minVersion: 'TLSv1.3' });
  const [err] = (await once(socket, 'error')) as [NodeJS.ErrnoException];
  t.is(err.code, 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
  await closed(socket);
  t.true(leaseOf(socket)?.released);
  t.deepEqual(inUse(porter), []);
  await server.close();
});

test('connection refused: ECONNREFUSED from the TCP stage, nothing in use', async (t) => {
  const server = await startSilentServer();
  const port = server.port;
  await server.close();
  const porter = newPorter();
  const err = await t.throwsAsync(connect({ host: '127.0.0.1', port, porter }));
  t.is((err as NodeJS.ErrnoException).code, 'ECONNREFUSED');
  t.deepEqual(inUse(porter), []);
});

test('bad options throw synchronously with Node codes', (t) => {
  const porter = newPorter();
  const call = (options: unknown) => () => connect(options as Parameters<typeof connect>[0]);
  t.throws(call(null), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(call({ port: 1, porter: {} }), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(call({ port: 1, porter, servername: 42 }), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(call({ port: 1, porter, checkServerIdentity: 'no' }), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(call({ port: 1, porter, ALPNProtocols: 'mqtt' }), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(call({ port: 1, porter, session: 'abc' }), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(call({ port: 1, porter, socket: {} }), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(call({ port: 1, porter, path: '/tmp/x' }), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(call({ port: 70_000, porter }), { code: 'ERR_SOCKET_BAD_PORT', instanceOf: RangeError });
  t.throws(call({ port: 1, porter, timeout: -1 }), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(call({ port: 1, porter, signal: 'x' }), { code: 'ERR_INVALID_ARG_TYPE' });
  // The secure context is built up front: a bad key throws before any connection, with
  // the code Node's own tls.createSecureContext gives it (OpenSSL's, so read, not written).
  const badKey = { cert: certs.client.cert, key: Buffer.from('not a key') };
  const nodeCode = (t.throws(() => createSecureContext(badKey)) as NodeJS.ErrnoException).code;
  t.regex(String(nodeCode), /^ERR_/);
  t.throws(call({ port: 1, porter, ...badKey }), { code: nodeCode });
  t.throws(call({ port: 1, porter, minVersion: 'TLSv9' }), { code: 'ERR_TLS_INVALID_PROTOCOL_VERSION' });
  t.deepEqual(porter.snapshot(), []);
});

test('createConnection returns a TLSSocket at once that an https.Agent subclass can return', async (t) => {
  const server = await startTlsServer({ cert: certs.server.cert, key: certs.server.key }, (s) => {
    s.once('data', () => s.end('HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\nporter'));
  });
  const porter = newPorter();
  const sockets: TLSSocket[] = [];
  class PorterAgent extends Agent {
    override createConnection(options: ClientRequestArgs): Duplex {
      const socket = createConnection({ ...(options as { port: number }), porter });
      sockets.push(socket);
      return socket;
    }
  }
  const body = await new Promise<string>((resolve, reject) => {
    get({ host: '127.0.0.1', port: server.port, ca: certs.ca, agent: new PorterAgent() }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => {
        text += d.toString();
      });
      res.on('end', () => resolve(text));
    }).on('error', reject);
  });
  t.is(body, 'porter');
  t.is(sockets.length, 1);
  t.true(sockets[0] instanceof TLSSocketClass);
  t.is(leaseOf(sockets[0] as TLSSocket)?.localPort, server.accepted[0]?.remotePort);
  await closed(sockets[0] as TLSSocket);
  t.deepEqual(inUse(porter), []);
  await server.close();
});
