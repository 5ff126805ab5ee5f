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
  t.deepEqual(
    sockets.map((s) => s.localPort),
    Array.from({ length: k }, (_, i) => first + i),
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

/** A port P with P..P+k free of listeners and P now taken by a listener in this process. */
async function listenerAtRangeStart(k: number): Promise<{ server: Server; first: number; last: number }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const [first, last] = await findFreePortBlock(k + 1);
    try {
      return { server: await listen('0.0.0.0', first), first, last };
    } catch {
      // Taken meanwhile: another block.
    }
  }
  throw new Error('no listener could be placed');
}

/**
 * Echo servers, a listener on the first port of a free 3-port block, and a Porter with
 * `options` on that block; all closed at teardown with the sockets the test keeps.
 */
async function rangeWithListener(t: ExecutionContext, options: PorterOptions) {
  const servers = await startServers();
  const { server, first, last } = await listenerAtRangeStart(3);
  t.teardown(() => {
    server.close();
  });
  const sockets = closeAtTeardown(t, servers);
  const porter = new Porter({ ...options, portRange: [first, last] });
  return { porter, port: servers.ports[0] as number, first, last, sockets };
}

test('retry {attempts: 1}: a port held by a listener is skipped and ages', async (t) => {
  const { porter, port, first, sockets } = await rangeWithListener(t, {
    retry: { attempts: 1 },
    kernelFallback: false,
  });
  const socket = await porter.connect({ host: '127.0.0.1', port });
  sockets.push(socket);
  t.not(socket.localPort, first);
  t.is(socket.localPort, first + 1);
  t.is(portState(porter.snapshot(), '127.0.0.1', port, first), 'aging');
  t.is(porter.stats().retries.EADDRINUSE, 1);
});

test('retry {attempts: 0} without fallback: EADDRINUSE from bind with the port', async (t) => {
  const { porter, port, first } = await rangeWithListener(t, { retry: { attempts: 0 }, kernelFallback: false });
  const err = (await t.throwsAsync(porter.connect({ host: '127.0.0.1', port }))) as NodeJS.ErrnoException & {
    localPort?: number;
    localAddress?: string;
  };
  t.is(err.code, 'EADDRINUSE');
  t.is(err.syscall, 'bind');
  t.is(err.errno, -98);
  t.is(err.localPort, first);
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
