/**
 * What a lease adds to the socket it follows, on real loopback sockets: no 'end' listener
 * beyond net's own (the lease's takes its place and calls it, so net's behaviour after
 * the peer's FIN stays), the lifecycle rules with listeners the user added before the
 * connect, and a socket the lease stops following left as net made it.
 */
import { once } from 'node:events';
import { connect as netConnect, Socket } from 'node:net';
import { leaseOf, Porter } from '@porter/core';
import { portLeaseOf } from '@porter/core/internal';
import test from 'ava';
import { portState } from '../helpers/pools.js';
import { findFreePortBlock } from '../helpers/ports.js';
import { type ServerGroup, startServers } from '../helpers/servers.mjs';
import { connected } from '../helpers/sockets.js';

/** net.Socket's own 'end' listener, as every socket gets it from its constructor. */
const [netEndListener] = new Socket().listeners('end');

async function servers(t: { teardown(f: () => Promise<void>): void }, mode: 'echo' | 'close-first') {
  const group: ServerGroup = await startServers({ mode });
  t.teardown(() => group.stop());
  return { host: group.host, port: group.ports[0] as number };
}

async function newPorter(): Promise<Porter> {
  const [first, last] = await findFreePortBlock(8);
  return new Porter({ portRange: [first, last], agingMs: 60_000, kernelFallback: false });
}

/**
 * After the server's FIN (and this side's own end(), which Node makes without
 * allowHalfOpen), a write fails as net's 'end' listener makes it fail: EPIPE, "ended by
 * the other party". Also the number of 'end' listeners the socket had when connected.
 */
async function afterServerEnd(socket: Socket): Promise<{ endListeners: number; writeError: string | undefined }> {
  const endListeners = socket.listenerCount('end');
  const done = once(socket, 'close');
  socket.on('error', () => {});
  socket.resume();
  await once(socket, 'end');
  await new Promise((resolve) => setImmediate(resolve));
  const writeError = await new Promise<string | undefined>((resolve) => {
    socket.write('late', (err) => resolve((err as NodeJS.ErrnoException | null | undefined)?.code));
  });
  await done;
  return { endListeners, writeError };
}

test("a porter socket has net's 'end' listeners, no more, and net's still runs: the server closes first", async (t) => {
  const { host, port } = await servers(t, 'close-first');
  const porter = await newPorter();
  const net = await afterServerEnd(await connected(() => netConnect({ host, port })));
  t.deepEqual(net, { endListeners: 1, writeError: 'EPIPE' }, 'what net.connect does');
  for (const [name, open] of [
    ['porter.connect', () => porter.connect({ host, port })],
    ['createConnection', () => connected(() => porter.createConnection({ host, port }))],
  ] as const) {
    const socket = await open();
    const lease = leaseOf(socket);
    t.deepEqual(await afterServerEnd(socket), net, name);
    t.true(lease?.released, name);
    t.is(portState(porter.snapshot(), host, port, lease?.localPort as number), 'free', `${name}: free at once`);
  }
});

test("a listener the user added before the connect that ends the socket on 'end': the remote still closed first", async (t) => {
  const { host, port } = await servers(t, 'close-first');
  const porter = await newPorter();
  const socket = porter.createConnection({ host, port });
  // Added before the lease follows the socket, so ahead of it in line but for the lease's
  // own, which goes first: the end() this makes comes after the peer's FIN.
  socket.on('end', () => socket.end());
  socket.resume();
  await once(socket, 'connect');
  const lease = leaseOf(socket);
  t.is(socket.listenerCount('end'), 3, "the lease's, net's and the user's");
  await once(socket, 'close');
  t.true(lease?.released);
  t.is(portState(porter.snapshot(), host, port, lease?.localPort as number), 'free');
});

test('a socket the lease no longer follows is left as net made it, with the listeners added meanwhile', async (t) => {
  const { host, port } = await servers(t, 'echo');
  const porter = await newPorter();
  const first = await porter.connect({ host, port });
  const lease = portLeaseOf(first);
  if (lease === undefined) return t.fail('no lease');
  const ends: string[] = [];
  first.on('end', () => ends.push('user'));
  // What @porter/tls does with the TLS socket it makes over the first: the lease moves.
  const second = await connected(() => netConnect({ host, port }));
  lease.follow(second);
  t.deepEqual(first.listeners('end'), [netEndListener, first.listeners('end')[1]]);
  t.is(first.resetAndDestroy, Socket.prototype.resetAndDestroy);
  t.is(leaseOf(first), lease, 'leaseOf() still finds it');
  const firstClosed = once(first, 'close');
  first.resume();
  first.end();
  await firstClosed;
  t.deepEqual(ends, ['user']);
  t.false(lease.released, 'the first socket closing does not touch the lease');
  const secondClosed = once(second, 'close');
  second.resetAndDestroy();
  await secondClosed;
  t.true(lease.released, 'the socket it follows does');
  t.is(portState(porter.snapshot(), host, port, lease.localPort), 'free', 'reset: free at once');
});
