// poolCounts(): the snapshot's counts without the port lists, for many destinations.
import { Porter } from '@porter/core';
import test from 'ava';
import { closed, findFreePortBlock, startServers } from '../helpers/servers.js';

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
