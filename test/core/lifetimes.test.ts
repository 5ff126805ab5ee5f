/**
 * Lifetimes, seen from JavaScript: routes and pools that come and go with the
 * destinations in use, Porters that are closed or dropped, lease handles at any number of
 * source addresses, and IPv4-mapped addresses sharing their IPv4 pools.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { leaseOf, Porter } from '@porter/core';
import test from 'ava';
import { findFreePortBlock } from '../helpers/ports.js';
import { lastJson } from '../helpers/run.mjs';
import { startServers } from '../helpers/servers.mjs';
import { closeAtTeardown } from '../helpers/sockets.js';

test('close(): later connects and allocations throw ERR_PORTER_CLOSED; open leases still release', async (t) => {
  const servers = await startServers();
  const sockets = closeAtTeardown(t, servers);
  const [first, last] = await findFreePortBlock(4);
  const porter = new Porter({ portRange: [first, last], kernelFallback: false, agingMs: 60_000 });
  const port = servers.ports[0] as number;
  const socket = await porter.connect({ host: '127.0.0.1', port });
  sockets.push(socket);
  const lease = porter.allocate({ address: '127.0.0.1', port: 9 });
  porter.close();
  porter.close(); // idempotent
  t.true(porter.closed);
  t.throws(() => porter.allocate({ address: '127.0.0.1', port: 9 }), { code: 'ERR_PORTER_CLOSED' });
  t.throws(() => porter.connect({ host: '127.0.0.1', port }), { code: 'ERR_PORTER_CLOSED' });
  // What was out still goes back, and inspection still answers.
  t.true(lease.release({ aging: false }));
  await new Promise((resolve) => socket.once('close', resolve).destroy());
  t.true(leaseOf(socket)?.released);
  const aging = porter.snapshot().flatMap((p) => p.aging.map((a) => a.port));
  t.deepEqual(aging, [socket.localPort ?? leaseOf(socket)?.localPort]);
  t.is(porter.stats().allocations, 2);
});

test('Symbol.dispose closes: `using` a Porter', (t) => {
  const porter = new Porter({ portRange: [20_000, 20_009] });
  porter[Symbol.dispose]();
  t.throws(() => porter.allocate({ address: '127.0.0.1', port: 9 }), { code: 'ERR_PORTER_CLOSED' });
});

test('a connect in flight when its Porter closes still settles, and its port comes back', async (t) => {
  // A destination that never answers (a black hole would need a namespace: a listener
  // whose accept queue is full drops the SYN, so the connect waits).
  const servers = await startServers({ mode: 'no-accept', backlog: 1 });
  t.teardown(() => servers.stop());
  const [first, last] = await findFreePortBlock(8);
  const porter = new Porter({ portRange: [first, last], kernelFallback: false });
  const port = servers.ports[0] as number;
  // Fill the accept queue, then one more connect waits.
  const fill = [];
  for (let i = 0; i < 3; i++)
    fill.push(await porter.connect({ host: '127.0.0.1', port, timeout: 5_000 }).catch(() => null));
  const pending = porter.connect({ host: '127.0.0.1', port, timeout: 300 });
  porter.close();
  await t.throwsAsync(pending, { code: 'ETIMEDOUT' });
  for (const s of fill) s?.destroy();
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(
    porter.snapshot().flatMap((p) => p.inUse),
    [],
    'nothing left in use',
  );
});

test('pools follow the destinations in use: 5,000 destinations used once leave at most the open routes', (t) => {
  const porter = new Porter({ portRange: [20_000, 20_003], agingMs: 0 });
  for (let i = 0; i < 5_000; i++) {
    porter.allocate({ address: `10.2.${i >> 8}.${i & 255}`, port: 443 }).release({ aging: false });
  }
  const stats = porter.stats();
  // A Porter keeps 1,024 routes open (each holds its pools); every other pool is dropped.
  t.true(stats.pools <= 1_024, `${stats.pools} pools`);
  t.true(stats.poolsRetired >= 5_000 - 1_024, `${stats.poolsRetired} retired`);
  porter.close();
  t.is(porter.stats().pools, 0, 'closed: its routes let their pools go');
});

test('a lease of the 65,537th source address names that address, and its release frees its own port', (t) => {
  // allocate() binds nothing: 65,537 addresses of 127.0.0.0/8, one port each.
  const count = 65_537;
  const locals = Array.from({ length: count }, (_, i) => `127.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`);
  const porter = new Porter({ portRange: [20_000, 20_000], localAddresses: locals, mode: 'pool' });
  const leases = Array.from({ length: count }, () => porter.allocate({ address: '10.3.0.1', port: 443 }));
  const lastLease = leases.at(-1);
  t.is(lastLease?.localAddress, locals.at(-1));
  t.is(lastLease?.localPort, 20_000);
  t.true(lastLease?.release({ aging: false }));
  // The first address's port is still taken, the last one's free again.
  const inUse = new Map(porter.poolCounts().map((p) => [p.localAddress, p.inUse]));
  t.is(inUse.get(locals[0] as string), 1);
  t.is(inUse.get(locals.at(-1) as string), 0);
  t.is(porter.allocate({ address: '10.3.0.1', port: 443 }).localAddress, locals.at(-1) as string);
  porter.close();
});

test('an IPv4-mapped IPv6 destination is its IPv4 pool: alternating the two forms uses the range once', async (t) => {
  const servers = await startServers({ mode: 'echo' });
  const sockets = closeAtTeardown(t, servers);
  const [first, last] = await findFreePortBlock(100);
  const porter = new Porter({ portRange: [first, last], kernelFallback: false, agingMs: 60_000 });
  const port = servers.ports[0] as number;
  for (let i = 0; i < 100; i++) {
    const host = i % 2 === 0 ? '127.0.0.1' : '::ffff:127.0.0.1';
    sockets.push(await porter.connect({ host, port, timeout: 5_000 }));
  }
  t.is(new Set(sockets.map((s) => s.localPort)).size, 100);
  t.true(sockets.every((s) => s.remoteAddress === '127.0.0.1'));
  t.deepEqual(
    porter.poolCounts().map((p) => [p.remoteAddress, p.inUse]),
    [['127.0.0.1', 100]],
  );
  await t.throwsAsync(porter.connect({ host: '::ffff:7f00:1', port }), { code: 'ERR_PORTER_EXHAUSTED' });
  // A mapped source address is its IPv4 form too.
  const lease = porter.allocate({ address: '10.4.0.1', port: 80, localAddress: '::ffff:127.0.0.3' });
  t.is(lease.localAddress, '127.0.0.3');
  lease.release();
});

test('dropped Porters are collected with their native memory: 20,000 made and dropped', (t) => {
  // In a process of its own, with a GC it can call, so the figure is not another test's.
  const script = fileURLToPath(new URL('./fixtures/dropped-porters.mjs', import.meta.url));
  const run = spawnSync(process.execPath, ['--expose-gc', script, '20000'], { encoding: 'utf8', timeout: 120_000 });
  t.is(run.status, 0, run.stderr);
  const result = lastJson<{
    rssGrowthMb: number;
    finalized: number;
    made: number;
  }>(run.stdout);
  t.log(`RSS grew ${result.rssGrowthMb.toFixed(1)} MB over ${result.made} Porters; ${result.finalized} collected`);
  t.true(result.finalized >= result.made * 0.9, `${result.finalized} of ${result.made} collected`);
  t.true(result.rssGrowthMb < 50, `RSS grew ${result.rssGrowthMb} MB`);
});
