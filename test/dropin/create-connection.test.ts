/**
 * createConnection of @porter/core: net.createConnection's contract on porter's ports,
 * on real loopback sockets. What can break a socket handed out before its connect is
 * over: errors before connect, destroy before connect (during the lookup, during a
 * pending connect), the idle timeout, aborts, a second connect() (pg's), bad input.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { once } from 'node:events';
import { type AddressInfo, createServer, type LookupFunction, type Server, Socket } from 'node:net';
import { createConnection, leaseOf, Porter } from '@porter/core';
import test from 'ava';
import { inUse, portState } from '../helpers/pools.js';
import { findFreePortBlock, freePort } from '../helpers/ports.js';
import { fillAcceptQueue, startServers } from '../helpers/servers.mjs';
import { destroyAll } from '../helpers/sockets.js';
import { eventually } from '../helpers/wait.js';

interface Recorded {
  server: Server;
  port: number;
  /** The client ports of the connections accepted, in order. */
  peers: number[];
  close(): Promise<void>;
}

/** An echo server in this process that records who connected; 'close-first' ends each connection at once. */
async function echoServer(mode: 'echo' | 'close-first' = 'echo'): Promise<Recorded> {
  const peers: number[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    peers.push(s.remotePort as number);
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    if (mode === 'close-first') s.end();
    else s.pipe(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as AddressInfo).port,
    peers,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function newPorter(): Promise<Porter> {
  const [first, last] = await findFreePortBlock(16);
  return new Porter({ portRange: [first, last], agingMs: 10_000, kernelFallback: false });
}

test('returns a connecting net.Socket at once; connect, data written before it, the port from porter', async (t) => {
  const server = await echoServer();
  t.teardown(() => server.close());
  const porter = await newPorter();
  let listened = false;
  const socket = porter.createConnection({ host: '127.0.0.1', port: server.port }, () => {
    listened = true;
  });
  t.true(socket instanceof Socket);
  t.true(socket.connecting);
  t.true(socket.pending);
  t.is(socket.readyState, 'opening');
  t.is(leaseOf(socket), undefined, 'no lease before the connect is over');
  socket.write('written while connecting');
  const events: string[] = [];
  socket.once('connect', () => events.push('connect'));
  socket.once('ready', () => events.push('ready'));
  const [data] = (await once(socket, 'data')) as [Buffer];
  await eventually(() => server.peers.length === 1);
  t.is(data.toString(), 'written while connecting');
  t.deepEqual(events, ['connect', 'ready']);
  t.true(listened);
  t.false(socket.connecting);
  t.is(socket.readyState, 'open');
  const lease = leaseOf(socket);
  t.truthy(lease);
  t.is(lease?.localPort, socket.localPort);
  t.deepEqual(server.peers, [lease?.localPort], 'the server saw the port porter chose');
  t.deepEqual(inUse(porter), [lease?.localPort]);
  socket.end();
  await once(socket, 'close');
  t.deepEqual(inUse(porter), []);
  t.is(
    portState(porter.snapshot(), '127.0.0.1', server.port, lease?.localPort as number),
    'aging',
    'this side closed first: the port ages',
  );
});

test('the server closes first: the port is free at once', async (t) => {
  const server = await echoServer('close-first');
  t.teardown(() => server.close());
  const porter = await newPorter();
  const socket = porter.createConnection({ port: server.port, host: '127.0.0.1' });
  const closing = once(socket, 'close');
  socket.resume();
  await once(socket, 'connect');
  const port = leaseOf(socket)?.localPort as number;
  t.true(await eventually(() => server.peers.length === 1));
  t.deepEqual(server.peers, [port]);
  await closing;
  t.is(portState(porter.snapshot(), '127.0.0.1', server.port, port), 'free');
});

test('module level, (port, host, listener): the default Porter, and what net.connect publishes', async (t) => {
  const server = await echoServer();
  t.teardown(() => server.close());
  const published: unknown[] = [];
  const onSocket = (message: unknown): void => {
    published.push((message as { socket: unknown }).socket);
  };
  subscribe('net.client.socket', onSocket);
  t.teardown(() => unsubscribe('net.client.socket', onSocket));
  const socket = await new Promise<Socket>((resolve) => {
    const s = createConnection(server.port, '127.0.0.1', () => resolve(s));
  });
  t.true(published.includes(socket));
  t.true(await eventually(() => server.peers.length === 1));
  t.deepEqual(server.peers, [leaseOf(socket)?.localPort]);
  socket.destroy();
  await once(socket, 'close');
  t.true(leaseOf(socket)?.released);
});

test('refused: error then close as net emits them, nothing thrown, the port back', async (t) => {
  const porter = await newPorter();
  const port = await freePort();
  const socket = porter.createConnection({ host: '127.0.0.1', port });
  const events: string[] = [];
  socket.on('connect', () => events.push('connect'));
  const [err] = (await once(socket, 'error')) as [NodeJS.ErrnoException];
  t.is(err.code, 'ECONNREFUSED');
  t.is(err.syscall, 'connect');
  await once(socket, 'close');
  t.deepEqual(events, []);
  t.deepEqual(inUse(porter), []);
});

test('a name that does not resolve: ENOTFOUND through the error event, with a lookup event', async (t) => {
  const porter = await newPorter();
  const failing: LookupFunction = (hostname, _options, callback) => {
    process.nextTick(() =>
      callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), '', 4),
    );
  };
  const socket = porter.createConnection({ host: 'nowhere.invalid', port: 80, lookup: failing });
  const lookups: unknown[] = [];
  socket.on('lookup', (err: Error | null) => lookups.push(err));
  const [err] = (await once(socket, 'error')) as [NodeJS.ErrnoException];
  t.is(err.code, 'ENOTFOUND');
  t.is(lookups.length, 1);
  t.deepEqual(porter.snapshot(), []);
});

test('destroyed at once, during the lookup, or during a pending connect: close, no error, the port back', async (t) => {
  const pending = await startServers({ mode: 'no-accept' });
  const fill = await fillAcceptQueue('127.0.0.1', pending.ports[0] as number);
  t.teardown(async () => {
    await destroyAll(fill);
    await pending.stop();
  });
  const target = pending.ports[0] as number;
  const porter = await newPorter();

  const atOnce = porter.createConnection({ host: '127.0.0.1', port: target });
  const seen: string[] = [];
  atOnce.on('error', () => seen.push('error'));
  atOnce.on('connect', () => seen.push('connect'));
  atOnce.destroy();
  await once(atOnce, 'close');

  let answer: (() => void) | undefined;
  const slowLookup: LookupFunction = (_hostname, _options, callback) => {
    answer = () => callback(null, '127.0.0.1', 4);
  };
  const duringLookup = porter.createConnection({ host: 'slow.test', port: target, lookup: slowLookup });
  duringLookup.on('error', () => seen.push('error'));
  t.true(await eventually(() => answer !== undefined));
  duringLookup.destroy();
  await once(duringLookup, 'close');
  answer?.();

  const duringConnect = porter.createConnection({ host: '127.0.0.1', port: target });
  duringConnect.on('error', () => seen.push('error'));
  t.true(await eventually(() => inUse(porter).length === 1), 'the connect holds a port');
  const held = inUse(porter)[0] as number;
  duringConnect.destroy();
  await once(duringConnect, 'close');
  t.true(await eventually(() => inUse(porter).length === 0), 'the pending connect was cancelled');
  t.is(portState(porter.snapshot(), '127.0.0.1', target, held), 'aging', 'a SYN left: the port ages');
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(seen, []);
});

test('timeout is the idle timeout, as in net: it fires during a connect that hangs and on an idle socket', async (t) => {
  const pending = await startServers({ mode: 'no-accept' });
  const fill = await fillAcceptQueue('127.0.0.1', pending.ports[0] as number);
  t.teardown(async () => {
    await destroyAll(fill);
    await pending.stop();
  });
  const porter = await newPorter();
  // Timers fire in the order they expire: a 100 ms one set first fires before a 150 ms
  // idle timeout unless that fired early.
  const order: string[] = [];
  setTimeout(() => order.push('100 ms'), 100);
  const hanging = porter.createConnection({ host: '127.0.0.1', port: pending.ports[0] as number, timeout: 150 });
  await once(hanging, 'timeout');
  order.push(hanging.connecting ? 'timeout while connecting' : 'timeout after the connect');
  t.deepEqual(order, ['100 ms', 'timeout while connecting']);
  t.false(hanging.destroyed, 'net leaves the socket to the user');
  hanging.destroy();
  await once(hanging, 'close');
  t.true(await eventually(() => inUse(porter).length === 0));

  const server = await echoServer();
  t.teardown(() => server.close());
  const idle = porter.createConnection({ host: '127.0.0.1', port: server.port, timeout: 100 });
  await once(idle, 'connect');
  // Counted from the connect: a 50 ms timer set then fires first.
  const afterConnect: string[] = [];
  setTimeout(() => afterConnect.push('50 ms'), 50);
  await once(idle, 'timeout');
  afterConnect.push('timeout');
  t.deepEqual(afterConnect, ['50 ms', 'timeout']);
  t.is(idle.timeout, 100);
  idle.destroy();
  await once(idle, 'close');
  t.deepEqual(inUse(porter), []);
});

test('signal: an abort during the connect destroys the socket with an AbortError and gives the port back', async (t) => {
  const pending = await startServers({ mode: 'no-accept' });
  const fill = await fillAcceptQueue('127.0.0.1', pending.ports[0] as number);
  t.teardown(async () => {
    await destroyAll(fill);
    await pending.stop();
  });
  const porter = await newPorter();
  const controller = new AbortController();
  const socket = porter.createConnection({
    host: '127.0.0.1',
    port: pending.ports[0] as number,
    signal: controller.signal,
  });
  t.true(await eventually(() => inUse(porter).length === 1));
  controller.abort();
  const [err] = (await once(socket, 'error')) as [Error & { code?: string }];
  t.is(err.name, 'AbortError');
  await once(socket, 'close');
  t.true(await eventually(() => inUse(porter).length === 0));

  // After the connect, an abort destroys the socket, as net's does.
  const server = await echoServer();
  t.teardown(() => server.close());
  const after = new AbortController();
  const connected = porter.createConnection({ host: '127.0.0.1', port: server.port, signal: after.signal });
  await once(connected, 'connect');
  const port = leaseOf(connected)?.localPort as number;
  after.abort();
  const [late] = (await once(connected, 'error')) as [Error];
  t.is(late.name, 'AbortError');
  await once(connected, 'close');
  t.is(portState(porter.snapshot(), '127.0.0.1', server.port, port), 'aging');
});

test('connect(port, host) on the returned socket, as pg calls it, joins the connect in flight', async (t) => {
  const server = await echoServer();
  t.teardown(() => server.close());
  const porter = await newPorter();
  const socket = porter.createConnection({ host: 'localhost', port: server.port });
  let joined = false;
  t.is(
    socket.connect(server.port, 'localhost', () => {
      joined = true;
    }),
    socket,
  );
  t.throws(() => socket.connect(server.port + 1, 'localhost'), { code: 'EALREADY' });
  await once(socket, 'connect');
  t.true(joined);
  t.true(await eventually(() => server.peers.length === 1));
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.is(server.peers.length, 1, 'one connection, not two');
  t.throws(() => socket.connect(server.port, 'localhost'), { code: 'ERR_SOCKET_CLOSED' });
  socket.destroy();
  await once(socket, 'close');
});

test('bad input throws at the call, with a stable code, and takes no port', async (t) => {
  const porter = await newPorter();
  const call =
    (...args: unknown[]) =>
    () =>
      Reflect.apply(porter.createConnection, porter, args);
  t.throws(call({ host: '127.0.0.1', port: 70_000 }), { code: 'ERR_SOCKET_BAD_PORT' });
  t.throws(call({ host: '127.0.0.1' }), { code: 'ERR_MISSING_ARGS' });
  t.throws(call({ host: '127.0.0.1', port: 80, localPort: 2000 }), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(call({ path: '/tmp/porter.sock' }), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(call('/tmp/porter.sock'), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(call({ host: 42, port: 80 }), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(call({ host: 'example.test\0.evil', port: 80 }), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(call({ host: '127.0.0.1', port: 80, localAddress: 'nope' }), { code: 'ERR_INVALID_IP_ADDRESS' });
  t.throws(call({ host: '127.0.0.1', port: 80, lookup: 'dns' }), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(call({ host: '127.0.0.1', port: 80, timeout: -1 }), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(call({ host: '127.0.0.1', port: 80, signal: 'abort' }), { code: 'ERR_INVALID_ARG_TYPE' });
  t.deepEqual(porter.snapshot(), []);
});
