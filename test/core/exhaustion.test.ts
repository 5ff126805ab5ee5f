import { createServer, type Server } from 'node:net';
import { leaseOf, Porter, type PorterOptions } from '@porter/core';
import test, { type ExecutionContext } from 'ava';
import { closeAtTeardown, destroyAll, findFreePortBlock, startServers } from '../helpers/servers.js';
import { poolFor, portState } from '../helpers/snapshot.js';

test('a range of k ports without fallback: k connections, then ERR_PORTER_EXHAUSTED', async (t) => {
  const k = 5;
  const servers = await startServers();
  const [first, last] = await findFreePortBlock(k);
  const porter = new Porter({ portRange: [first, last], kernelFallback: false });
  const sockets = closeAtTeardown(t, servers);
  const port = servers.ports[0] as number;
  for (let i = 0; i < k; i++) sockets.push(await porter.connect({ host: '127.0.0.1', port }));
  // Every port of the range, in the walk's order from where it started (a random port).
  const start = sockets[0]?.localPort as number;
  t.deepEqual(
    sockets.map((s) => s.localPort),
    Array.from({ length: k }, (_, i) => first + ((start - first + i) % k)),
  );
  const err = await t.throwsAsync(porter.connect({ host: '127.0.0.1', port }));
  t.is((err as NodeJS.ErrnoException).code, 'ERR_PORTER_EXHAUSTED');
  // The message names the destination and the range.
  t.regex(err?.message ?? '', new RegExp(`127\\.0\\.0\\.1:${port}`));
  t.regex(err?.message ?? '', new RegExp(`${first}\\D+${last}`));
  const allocErr = t.throws(() => porter.allocate({ address: '127.0.0.1', port }));
  t.is((allocErr as NodeJS.ErrnoException).code, 'ERR_PORTER_EXHAUSTED');
  t.is(porter.stats().exhausted >= 1, true);
  // Nothing extra appeared in the pool.
  t.is(poolFor(porter.snapshot(), '127.0.0.1', port)?.inUse.length, k);
});

test('with kernelFallback the next connection gets a kernel-chosen port, tracked in inUse', async (t) => {
  const k = 3;
  const servers = await startServers();
  const [first, last] = await findFreePortBlock(k);
  const porter = new Porter({ portRange: [first, last], kernelFallback: true });
  const sockets = closeAtTeardown(t, servers);
  const port = servers.ports[0] as number;
  for (let i = 0; i < k; i++) sockets.push(await porter.connect({ host: '127.0.0.1', port }));
  const extra = await porter.connect({ host: '127.0.0.1', port });
  sockets.push(extra);
  const extraPort = extra.localPort as number;
  t.true(extraPort < first || extraPort > last, `kernel port ${extraPort} outside ${first}-${last}`);
  t.is(leaseOf(extra)?.localPort, extraPort);
  const pool = poolFor(porter.snapshot(), '127.0.0.1', port);
  t.true(pool?.inUse.includes(extraPort));
  t.is(pool?.inUse.length, k + 1);
  t.is(porter.stats().kernelFallbacks, 1);
  // Releasing it (the remote did not close first: we destroy) takes it out of inUse.
  await destroyAll([extra]);
  t.false(poolFor(porter.snapshot(), '127.0.0.1', port)?.inUse.includes(extraPort));
});

function listen(host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host, port }, () => resolve(server));
  });
}

/**
 * Echo servers, a Porter with `options` on a free block of `size` ports, and a listener (in this
 * process) on the port the Porter's walk tries next for the servers' destination, so
 * that porter's bind to it fails with EADDRINUSE; all closed at teardown with the
 * sockets the test keeps. `next(p)` is the port the walk tries after `p`.
 */
async function rangeWithListener(t: ExecutionContext, options: PorterOptions, size = 3) {
  const servers = await startServers();
  const sockets = closeAtTeardown(t, servers);
  const port = servers.ports[0] as number;
  for (let attempt = 0; attempt < 20; attempt++) {
    const [first, last] = await findFreePortBlock(size);
    const porter = new Porter({ ...options, portRange: [first, last] });
    const next = (p: number): number => (p === last ? first : p + 1);
    // The walk starts at a random port: the one after the port it hands out (and gets
    // back at once) is tried next.
    const seen = porter.allocate({ address: '127.0.0.1', port });
    seen.release({ aging: false });
    const blocked = next(seen.localPort);
    try {
      const server = await listen('0.0.0.0', blocked);
      t.teardown(() => {
        server.close();
      });
      return { porter, port, first, last, blocked, next, sockets };
    } catch {
      // Taken meanwhile: another block.
    }
  }
  throw new Error('no listener could be placed');
}

test('retry {attempts: 1}: a port held by a listener is skipped and ages', async (t) => {
  const { porter, port, first, last, blocked, sockets } = await rangeWithListener(t, {
    retry: { attempts: 1 },
    kernelFallback: false,
  });
  const socket = await porter.connect({ host: '127.0.0.1', port });
  sockets.push(socket);
  // After a collision the walk goes on from a random port of the range.
  const lp = socket.localPort as number;
  t.not(lp, blocked);
  t.true(lp >= first && lp <= last, `${lp}`);
  t.is(portState(porter.snapshot(), '127.0.0.1', port, blocked), 'aging');
  t.is(porter.stats().retries.EADDRINUSE, 1);
});

test('retry {attempts: 0} without fallback: EADDRINUSE from bind with the port', async (t) => {
  const { porter, port, blocked } = await rangeWithListener(t, { retry: { attempts: 0 }, kernelFallback: false });
  const err = (await t.throwsAsync(porter.connect({ host: '127.0.0.1', port }))) as NodeJS.ErrnoException & {
    localPort?: number;
    localAddress?: string;
  };
  t.is(err.code, 'EADDRINUSE');
  t.is(err.syscall, 'bind');
  t.is(err.errno, -98);
  t.is(err.localPort, blocked);
  t.is(err.localAddress, '0.0.0.0');
  t.is((err as { address?: string }).address, '127.0.0.1');
  t.is((err as { port?: number }).port, port);
  // Not in use afterwards.
  t.deepEqual(poolFor(porter.snapshot(), '127.0.0.1', port)?.inUse ?? [], []);
});

test('retry {attempts: 0} with fallback: the kernel picks a port', async (t) => {
  const { porter, port, first, last, sockets } = await rangeWithListener(t, {
    retry: { attempts: 0 },
    kernelFallback: true,
  });
  const socket = await porter.connect({ host: '127.0.0.1', port });
  sockets.push(socket);
  const lp = socket.localPort as number;
  t.true(lp < first || lp > last, `kernel-chosen ${lp}`);
  t.deepEqual(poolFor(porter.snapshot(), '127.0.0.1', port)?.inUse, [lp]);
});

test('a port a listener holds is passed over on its local address for every destination, not found again each lap', async (t) => {
  // agingMs 0 and resets: every port comes back at once, so each destination's walk laps
  // the 6-port range five times. bind() refuses the listener's port once; from then on
  // every destination from that local address passes over it (for BLOCK_PERIOD, 60 s).
  const { porter, first, last, blocked } = await rangeWithListener(
    t,
    { agingMs: 0, retry: { attempts: 8 }, kernelFallback: false },
    6,
  );
  const servers = await startServers({ count: 4 });
  t.teardown(() => servers.stop());
  const seen = new Set<number>();
  for (const port of servers.ports) {
    for (let i = 0; i < 15; i++) {
      const socket = await porter.connect({ host: '127.0.0.1', port });
      seen.add(socket.localPort as number);
      await new Promise((resolve) => socket.once('close', resolve).resetAndDestroy());
    }
  }
  t.is(porter.stats().retries.EADDRINUSE, 1, 'bind() was refused once, on the first lap of the first destination');
  t.false(seen.has(blocked));
  t.is(seen.size, last - first, 'every other port of the range was used');
});
