// net.connect's socket options given to porter.connect or porter.createConnection take
// effect as they do for net.connect: read back from the kernel (noDelay, keepAlive, keepAliveInitialDelay), seen
// in what the socket does (allowHalfOpen), and seen by the resolver (hints).

import { ADDRCONFIG, V4MAPPED } from 'node:dns';
import { once } from 'node:events';
import { type LookupFunction, connect as netConnect, createServer as netCreateServer } from 'node:net';
import { type ConnectOptions, leaseOf, Porter } from '@porter/core';
import test from 'ava';
import { poolFor } from '../helpers/pools.js';
import { findFreePortBlock } from '../helpers/ports.js';
import { testIf } from '../helpers/requirements.js';
import { startServers } from '../helpers/servers.mjs';
import { closeAtTeardown, closed, connected } from '../helpers/sockets.js';
import { type KernelSocketOptions, kernelSocketOptions, sockoptReaderMissing } from '../helpers/sockopts.js';

type TcpOptions = Pick<ConnectOptions, 'noDelay' | 'keepAlive' | 'keepAliveInitialDelay'>;

const cases: [string, TcpOptions, KernelSocketOptions | undefined][] = [
  // No options: whatever the kernel and Node give a plain net.connect socket.
  ['no options', {}, undefined],
  ['noDelay', { noDelay: true }, { noDelay: true, keepAlive: false, keepAliveIdleSeconds: -1 }],
  ['keepAlive', { keepAlive: true }, { noDelay: false, keepAlive: true, keepAliveIdleSeconds: -1 }],
  [
    'keepAlive with keepAliveInitialDelay',
    { keepAlive: true, keepAliveInitialDelay: 7_000 },
    { noDelay: false, keepAlive: true, keepAliveIdleSeconds: 7 },
  ],
  [
    'all three',
    { noDelay: true, keepAlive: true, keepAliveInitialDelay: 42_000 },
    { noDelay: true, keepAlive: true, keepAliveIdleSeconds: 42 },
  ],
];

const withKernel = testIf(sockoptReaderMissing());

for (const [name, options, expected] of cases) {
  withKernel(`${name}: the kernel holds the options net.connect would set`, async (t) => {
    const servers = await startServers();
    const sockets = closeAtTeardown(t, servers);
    const port = servers.ports[0] as number;
    const [first, last] = await findFreePortBlock(2);
    const porter = new Porter({ portRange: [first, last], kernelFallback: false });
    const viaPorter = await porter.connect({ host: '127.0.0.1', port, ...options });
    sockets.push(viaPorter);
    // createConnection applies them once its connect is over, as net.connect does.
    const viaCreate = await connected(() => porter.createConnection({ host: '127.0.0.1', port, ...options }));
    sockets.push(viaCreate);
    const viaNet = await connected(() => netConnect({ host: '127.0.0.1', port, ...options }));
    sockets.push(viaNet);
    const seen = await kernelSocketOptions(viaPorter);
    const reference = await kernelSocketOptions(viaNet);
    t.log(name, 'porter:', seen, 'net.connect:', reference);
    t.deepEqual(seen, reference, 'the same options as a net.connect socket given them');
    t.deepEqual(await kernelSocketOptions(viaCreate), reference, 'createConnection: the same options');
    if (expected === undefined) {
      t.false(seen.noDelay);
      t.false(seen.keepAlive);
      return;
    }
    t.is(seen.noDelay, expected.noDelay);
    t.is(seen.keepAlive, expected.keepAlive);
    if (expected.keepAliveIdleSeconds >= 0) t.is(seen.keepAliveIdleSeconds, expected.keepAliveIdleSeconds);
  });
}

/** A server in this process that ends its side first, then records what still comes. */
async function halfClosingServer(t: import('ava').ExecutionContext) {
  const after: Promise<string>[] = [];
  const server = netCreateServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => {});
    after.push(
      new Promise((resolve) => {
        let data = '';
        socket.on('data', (d: Buffer) => {
          data += d.toString();
        });
        socket.once('end', () => resolve(data));
        socket.once('close', () => resolve(data));
      }),
    );
    socket.end('bye');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as { port: number }).port, received: (i: number) => after[i] as Promise<string> };
}

test('allowHalfOpen: after the server ends its side the socket can still send, as net.connect', async (t) => {
  const server = await halfClosingServer(t);
  const [first, last] = await findFreePortBlock(2);
  const porter = new Porter({ portRange: [first, last], kernelFallback: false, agingMs: 60_000 });
  const socket = await porter.connect({ host: '127.0.0.1', port: server.port, allowHalfOpen: true });
  t.true(socket.allowHalfOpen);
  const errors: Error[] = [];
  socket.on('error', (e) => errors.push(e));
  let got = '';
  socket.on('data', (d: Buffer) => {
    got += d.toString();
  });
  await once(socket, 'end');
  // A tick later, a socket that is not half-open would have ended its side by now.
  await new Promise((resolve) => setImmediate(resolve));
  t.is(got, 'bye');
  t.true(socket.writable, 'still writable after the FIN');
  t.false(socket.writableEnded);
  const done = closed(socket);
  socket.end('sent after the server ended');
  t.is(await server.received(0), 'sent after the server ended');
  await done;
  t.deepEqual(errors, []);
  // The remote closed first: the port is free at once.
  t.true(leaseOf(socket)?.released);
  t.deepEqual(poolFor(porter.snapshot(), '127.0.0.1', server.port)?.aging, []);
});

test('without allowHalfOpen the socket ends its side when the server does, as net.connect', async (t) => {
  const server = await halfClosingServer(t);
  const [first, last] = await findFreePortBlock(2);
  const porter = new Porter({ portRange: [first, last], kernelFallback: false, agingMs: 60_000 });
  const socket = await porter.connect({ host: '127.0.0.1', port: server.port });
  t.false(socket.allowHalfOpen);
  socket.resume();
  const done = closed(socket);
  await once(socket, 'end');
  await done;
  t.false(socket.writable);
  t.true(socket.writableEnded, 'Node ended this side itself');
  t.is(await server.received(0), '');
  t.true(leaseOf(socket)?.released);
  t.deepEqual(poolFor(porter.snapshot(), '127.0.0.1', server.port)?.aging, []);
});

test('hints reach the resolver as net.connect passes them', async (t) => {
  const servers = await startServers();
  const sockets = closeAtTeardown(t, servers);
  const port = servers.ports[0] as number;
  const [first, last] = await findFreePortBlock(2);
  const porter = new Porter({ portRange: [first, last], kernelFallback: false });
  const asked: { by: string; family: unknown; hints: unknown }[] = [];
  const lookup = (by: string) =>
    ((host: string, options: { family?: number; hints?: number; all?: boolean }, cb: (...a: unknown[]) => void) => {
      asked.push({ by, family: options.family, hints: options.hints });
      t.is(host, 'hinted.test');
      if (options.all === true) cb(null, [{ address: '127.0.0.1', family: 4 }]);
      else cb(null, '127.0.0.1', 4);
    }) as unknown as LookupFunction;
  const hints = ADDRCONFIG | V4MAPPED;
  sockets.push(await porter.connect({ host: 'hinted.test', port, family: 4, hints, lookup: lookup('porter') }));
  const viaNet = netConnect({ host: 'hinted.test', port, family: 4, hints, lookup: lookup('net') });
  sockets.push(viaNet);
  await once(viaNet, 'connect');
  t.deepEqual(asked, [
    { by: 'porter', family: 4, hints },
    { by: 'net', family: 4, hints },
  ]);
  t.is(sockets[0]?.remoteAddress, '127.0.0.1');
});

withKernel("socketOptions.keepAlive wins over net's keepAlive options (setKeepAlive would overwrite it)", async (t) => {
  const servers = await startServers();
  const sockets = closeAtTeardown(t, servers);
  const port = servers.ports[0] as number;
  const [first, last] = await findFreePortBlock(3);
  const porter = new Porter({
    portRange: [first, first + 1],
    kernelFallback: false,
    socketOptions: { keepAlive: { idleMs: 21_000 } },
  });
  const both = await porter.connect({ host: '127.0.0.1', port, keepAlive: true, keepAliveInitialDelay: 5_000 });
  sockets.push(both);
  t.deepEqual(await kernelSocketOptions(both), { noDelay: false, keepAlive: true, keepAliveIdleSeconds: 21 });
  // The connect's own socketOptions.keepAlive: false wins too.
  const off = await porter.connect({ host: '127.0.0.1', port, keepAlive: true, socketOptions: { keepAlive: false } });
  sockets.push(off);
  t.false((await kernelSocketOptions(off)).keepAlive);
  // Without socketOptions.keepAlive anywhere, net's options apply as before.
  const plain = new Porter({ portRange: [last, last], kernelFallback: false });
  const netOnly = await plain.connect({ host: '127.0.0.1', port, keepAlive: true, keepAliveInitialDelay: 5_000 });
  sockets.push(netOnly);
  t.like(await kernelSocketOptions(netOnly), { keepAlive: true, keepAliveIdleSeconds: 5 });
});
