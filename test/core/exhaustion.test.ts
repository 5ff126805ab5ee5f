import { leaseOf, Porter } from '@porter/core';
import test from 'ava';
import { poolFor } from '../helpers/pools.js';
import { ephemeralRange, findFreePortBlock } from '../helpers/ports.js';
import { startServers } from '../helpers/servers.mjs';
import { closeAtTeardown, destroyAll } from '../helpers/sockets.js';

test('a range of k ports without fallback: k connections, then ERR_PORTER_EXHAUSTED', async (t) => {
  const k = 5;
  const servers = await startServers();
  const [first, last] = await findFreePortBlock(k);
  const porter = new Porter({ portRange: [first, last], kernelFallback: false });
  const sockets = closeAtTeardown(t, servers);
  const port = servers.ports[0] as number;
  for (let i = 0; i < k; i++) sockets.push(await porter.connect({ host: '127.0.0.1', port }));
  // Every port of the range once, in whatever order the pool hands them out.
  t.deepEqual(
    sockets.map((s) => s.localPort).sort((a, b) => (a as number) - (b as number)),
    Array.from({ length: k }, (_, i) => first + i),
  );
  const err = await t.throwsAsync(porter.connect({ host: '127.0.0.1', port }));
  t.is((err as NodeJS.ErrnoException).code, 'ERR_PORTER_EXHAUSTED');
  // The message names the destination and the range.
  t.regex(err?.message ?? '', new RegExp(`127\\.0\\.0\\.1:${port}`));
  t.regex(err?.message ?? '', new RegExp(`${first}\\D+${last}`));
  const allocErr = t.throws(() => porter.allocate({ address: '127.0.0.1', port }));
  t.is((allocErr as NodeJS.ErrnoException).code, 'ERR_PORTER_EXHAUSTED');
  // Counted once for the connect, once for the allocate.
  t.is(porter.stats().exhausted, 2);
  t.is(porter.stats().connectErrors['ERR_PORTER_EXHAUSTED'], 1);
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
  const [low, high] = ephemeralRange();
  t.true(extraPort >= low && extraPort <= high, `kernel port ${extraPort} from the ephemeral range ${low}-${high}`);
  t.is(leaseOf(extra)?.localPort, extraPort);
  const pool = poolFor(porter.snapshot(), '127.0.0.1', port);
  t.true(pool?.inUse.includes(extraPort));
  t.is(pool?.inUse.length, k + 1);
  t.is(porter.stats().kernelFallbacks, 1);
  t.is(porter.stats().exhausted, 0);
  // Releasing it (the remote did not close first: we destroy) takes it out of inUse.
  await destroyAll([extra]);
  t.false(poolFor(porter.snapshot(), '127.0.0.1', port)?.inUse.includes(extraPort));
});
