// poolCounts(): the snapshot's counts without the port lists, for many destinations.
import { Porter } from '@porter/core';
import test from 'ava';
import { findFreePortBlock } from '../helpers/ports.js';
import { startServers } from '../helpers/servers.mjs';
import { closed } from '../helpers/sockets.js';

test('poolCounts agrees with snapshot after connects, closes and allocations', async (t) => {
  const servers = await startServers({ count: 1 });
  t.teardown(() => servers.stop());
  const [port] = servers.ports as [number];
  const [first, last] = await findFreePortBlock(6);
  const porter = new Porter({ portRange: [first, last], agingMs: 60_000, kernelFallback: false });

  const a = await porter.connect({ host: '127.0.0.1', port });
  const b = await porter.connect({ host: '127.0.0.1', port });
  const done = closed(a);
  a.end();
  await done;
  const leases = [porter.allocate({ address: '127.0.0.1', port: 1 }), porter.allocate({ address: '::1', port: 2 })];

  const counts = porter.poolCounts();
  const fromSnapshot = porter.snapshot().map((p) => ({
    localAddress: p.localAddress,
    remoteAddress: p.remoteAddress,
    remotePort: p.remotePort,
    inUse: p.inUse.length,
    aging: p.aging.length,
    free: p.free,
  }));
  t.deepEqual(counts, fromSnapshot);
  t.deepEqual(
    counts.find((c) => c.remotePort === port),
    { localAddress: '0.0.0.0', remoteAddress: '127.0.0.1', remotePort: port, inUse: 1, aging: 1, free: 4 },
  );
  t.is(counts.length, 3);

  b.destroy();
  for (const l of leases) l.release({ aging: false });
});

test('poolSummary: the busiest pools as poolCounts has them, the others summed', async (t) => {
  const [first, last] = await findFreePortBlock(8);
  const porter = new Porter({ portRange: [first, last], agingMs: 60_000, kernelFallback: false });
  // Destination port i gets i leases; destination 1 also ages two ports, so it ranks
  // above idle pools but below every pool with a port in use.
  const leases = [];
  for (let i = 1; i <= 6; i++) {
    for (let k = 0; k < i; k++) leases.push(porter.allocate({ address: '127.0.0.1', port: i }));
  }
  for (let k = 0; k < 2; k++) porter.allocate({ address: '127.0.0.1', port: 7 }).release();
  porter.allocate({ address: '::1', port: 8 }).release({ aging: false });

  const all = porter.poolCounts();
  t.is(all.length, 8);
  const top = porter.poolSummary(3);
  t.deepEqual(
    top.busiest.map((p) => p.remotePort),
    [6, 5, 4],
  );
  for (const p of top.busiest) {
    t.deepEqual(
      p,
      all.find((q) => q.remoteAddress === p.remoteAddress && q.remotePort === p.remotePort),
    );
  }
  const rest = all.filter((p) => !top.busiest.some((q) => q.remotePort === p.remotePort));
  t.deepEqual(top.others, {
    pools: 5,
    inUse: rest.reduce((n, p) => n + p.inUse, 0),
    aging: 2,
    free: rest.reduce((n, p) => n + p.free, 0),
  });
  t.is(top.others.inUse, 1 + 2 + 3);
  // Aging ranks an idle pool above the others that are idle.
  t.deepEqual(
    porter.poolSummary(7).busiest.map((p) => p.remotePort),
    [6, 5, 4, 3, 2, 1, 7],
  );
  t.deepEqual(porter.poolSummary(100).others, { pools: 0, inUse: 0, aging: 0, free: 0 });
  t.deepEqual(porter.poolSummary(0).busiest, []);
  t.is(porter.poolSummary(0).others.pools, 8);

  t.is((t.throws(() => porter.poolSummary(-1)) as NodeJS.ErrnoException).code, 'ERR_OUT_OF_RANGE');
  t.is((t.throws(() => porter.poolSummary(1.5)) as NodeJS.ErrnoException).code, 'ERR_OUT_OF_RANGE');
  t.is(
    (t.throws(() => porter.poolSummary('3' as unknown as number)) as NodeJS.ErrnoException).code,
    'ERR_INVALID_ARG_TYPE',
  );
  for (const l of leases) l.release({ aging: false });
});
