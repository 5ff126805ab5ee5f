import type { Socket } from 'node:net';
import { leaseOf, Porter } from '@porter/core';
import test from 'ava';
import { poolFor } from '../helpers/pools.js';
import { findFreePortBlock } from '../helpers/ports.js';
import { startServers } from '../helpers/servers.mjs';
import { closeAtTeardown } from '../helpers/sockets.js';

const sortNum = (a: number[]): number[] => [...a].sort((x, y) => x - y);

test('the same local ports serve two destinations at once', async (t) => {
  const size = 20;
  const servers = await startServers({ count: 2 });
  const [first, last] = await findFreePortBlock(size);
  const porter = new Porter({ portRange: [first, last], kernelFallback: false, agingMs: 500 });
  const sockets = closeAtTeardown(t, servers);

  const byDest = new Map<number, number[]>();
  for (const port of servers.ports) {
    const opened = await Promise.all(
      Array.from({ length: size }, () => porter.connect({ host: '127.0.0.1', port, timeout: 5_000 })),
    );
    sockets.push(...opened);
    byDest.set(
      port,
      opened.map((s) => s.localPort as number),
    );
  }
  const expected = Array.from({ length: size }, (_, i) => first + i);
  const [a, b] = servers.ports as [number, number];
  // Every port of the range, once, for each destination: the same numbers twice.
  t.deepEqual(sortNum(byDest.get(a) ?? []), expected);
  t.deepEqual(sortNum(byDest.get(b) ?? []), expected);
  // All 2 * size connections are open at once and really connected to their server.
  t.is(sockets.filter((s) => !s.destroyed && s.remotePort !== undefined).length, 2 * size);
  for (const s of sockets) {
    const lease = leaseOf(s);
    t.truthy(lease);
    t.is(lease?.localPort, s.localPort);
    t.is(lease?.remotePort, s.remotePort);
  }
  // Data flows through a socket of each destination (the servers echo).
  for (const s of [sockets[0], sockets[size]] as Socket[]) {
    const echoed = new Promise<string>((resolve) => s.once('data', (d: Buffer) => resolve(d.toString())));
    s.write('ping');
    t.is(await echoed, 'ping');
  }
  const snap = porter.snapshot();
  for (const port of servers.ports) {
    const pool = poolFor(snap, '127.0.0.1', port);
    t.truthy(pool, `pool for ${port}`);
    t.deepEqual(pool?.inUse, expected);
    t.is(pool?.free, 0);
    t.is(pool?.localAddress, '0.0.0.0');
  }
});

test('localAddresses: two source addresses of 2 ports each give 4 connections, then exhausted', async (t) => {
  const servers = await startServers();
  const [first, last] = await findFreePortBlock(2, ['127.0.0.2', '127.0.0.3']);
  const porter = new Porter({
    portRange: [first, last],
    kernelFallback: false,
    localAddresses: ['127.0.0.2', '127.0.0.3'],
  });
  const sockets = closeAtTeardown(t, servers);
  const port = servers.ports[0] as number;
  for (let i = 0; i < 4; i++) sockets.push(await porter.connect({ host: '127.0.0.1', port }));
  const pairs = sockets.map((s) => `${s.localAddress}:${s.localPort}`).sort();
  t.deepEqual(pairs, [`127.0.0.2:${first}`, `127.0.0.2:${last}`, `127.0.0.3:${first}`, `127.0.0.3:${last}`]);
  // The first address is used up before the second.
  t.deepEqual(
    sockets.slice(0, 2).map((s) => s.localAddress),
    ['127.0.0.2', '127.0.0.2'],
  );
  for (const s of sockets) t.is(leaseOf(s)?.localAddress, s.localAddress);
  const err = await t.throwsAsync(porter.connect({ host: '127.0.0.1', port }));
  t.is((err as NodeJS.ErrnoException).code, 'ERR_PORTER_EXHAUSTED');
  t.throws(() => porter.allocate({ address: '127.0.0.1', port }), { code: 'ERR_PORTER_EXHAUSTED' });
  const snap = porter.snapshot();
  t.deepEqual(poolFor(snap, '127.0.0.1', port, '127.0.0.2')?.inUse, [first, last]);
  t.deepEqual(poolFor(snap, '127.0.0.1', port, '127.0.0.3')?.inUse, [first, last]);
});
