// @porter/metrics' pool series: bounded cardinality (the busiest maxPools pools with series
// of their own, the rest summed into remote="other", sums exact at 20,000 pools), pools
// counted while they hold something, and porter_ports_capacity in mode hybrid.
import { hostPorts, Porter } from '@porter/core';
import { registerPorterMetrics } from '@porter/metrics';
import test from 'ava';
import { Registry } from 'prom-client';
import { sampleValue, scrape, select, sumOf } from '../helpers/exposition.js';
import { findFreePortBlock } from '../helpers/ports.js';

const ANY = '0.0.0.0';

test('maxPools: the busiest pools keep their series, the rest is summed into remote="other"', async (t) => {
  const [first, last] = await findFreePortBlock(12);
  const porter = new Porter({ portRange: [first, last], kernelFallback: false, agingMs: 60_000 });
  const registry = new Registry();
  registerPorterMetrics({ porter, registry, maxPools: 3 });
  // Destination i (remote ports 1..10 on 127.0.0.1, never connected to) gets i leases;
  // destinations 1 and 2 age one lease each, so aging breaks the tie among idle pools.
  const leases = [];
  for (let i = 1; i <= 10; i++) {
    for (let k = 0; k < i; k++) leases.push(porter.allocate({ address: '127.0.0.1', port: i }));
  }
  const s = await scrape(registry);
  const names = ['porter_ports_in_use', 'porter_ports_aging', 'porter_ports_free', 'porter_ports_capacity'];
  for (const name of names) {
    t.deepEqual(
      select(s, name)
        .map((x) => x.labels['remote'])
        .sort(),
      ['127.0.0.1:10', '127.0.0.1:8', '127.0.0.1:9', 'other'],
      name,
    );
  }
  for (const i of [8, 9, 10]) {
    t.is(sampleValue(s, 'porter_ports_in_use', { remote: `127.0.0.1:${i}`, local: ANY }), i);
    t.is(sampleValue(s, 'porter_ports_free', { remote: `127.0.0.1:${i}`, local: ANY }), 12 - i);
  }
  const other = { remote: 'other', local: 'other' };
  t.is(sampleValue(s, 'porter_ports_in_use', other), 1 + 2 + 3 + 4 + 5 + 6 + 7);
  t.is(sampleValue(s, 'porter_ports_free', other), 7 * 12 - 28);
  t.is(sampleValue(s, 'porter_ports_aging', other), 0);
  t.is(sampleValue(s, 'porter_ports_capacity', { remote: '127.0.0.1:10', local: ANY }), 12);
  t.is(sampleValue(s, 'porter_ports_capacity', other), 7 * 12, 'the capacity of the 7 pools summed');
  t.is(sumOf(s, 'porter_ports_in_use'), 55, 'sum() over the series is the total');
  t.is(sampleValue(s, 'porter_pools'), 10);

  // Release everything of destinations 9 and 10 into aging: aging now ranks them above
  // the idle pools, but below the pools with ports in use.
  for (const lease of leases) if (lease.remotePort >= 9) lease.release();
  const after = await scrape(registry);
  t.deepEqual(
    select(after, 'porter_ports_in_use')
      .map((x) => x.labels['remote'])
      .sort(),
    ['127.0.0.1:6', '127.0.0.1:7', '127.0.0.1:8', 'other'],
  );
  t.is(sampleValue(after, 'porter_ports_in_use', other), 1 + 2 + 3 + 4 + 5);
  t.is(sampleValue(after, 'porter_ports_aging', other), 19);
  t.is(sampleValue(after, 'porter_ports_free', other), 7 * 12 - 15 - 19);
  t.is(sumOf(after, 'porter_ports_in_use'), 36);
  t.is(sumOf(after, 'porter_ports_aging'), 19);
  for (const lease of leases) lease.release({ aging: false });
});

test('20,000 pools: 100 series of their own plus other, and the sums stay exact', async (t) => {
  // Bookkeeping only (allocate() sends nothing): 20,000 destinations in 10.0.0.0/8.
  const porter = new Porter({ portRange: [20_000, 20_007], agingMs: 600_000 });
  const registry = new Registry();
  registerPorterMetrics({ porter, registry });
  const leases = [];
  let inUse = 0;
  for (let i = 0; i < 20_000; i++) {
    const address = `10.0.${i >> 8}.${i & 255}`;
    // Every 250th destination holds 3 leases; every one ages one port (so that none of
    // the 20,000 pools holds nothing: those are dropped, see the test below).
    const held = i % 250 === 0 ? 3 : 0;
    for (let k = 0; k < held; k++) leases.push(porter.allocate({ address, port: 443 }));
    inUse += held;
    porter.allocate({ address, port: 443 }).release({ aging: true });
  }
  const s = await scrape(registry);
  const series = select(s, 'porter_ports_in_use');
  t.is(series.length, 101);
  t.is(sumOf(s, 'porter_ports_in_use'), inUse);
  t.is(sumOf(s, 'porter_ports_aging'), 20_000);
  t.is(sumOf(s, 'porter_ports_in_use') + sumOf(s, 'porter_ports_aging') + sumOf(s, 'porter_ports_free'), 20_000 * 8);
  t.is(sumOf(s, 'porter_ports_capacity'), 20_000 * 8, 'the capacity of every pool, other included');
  // The 80 destinations with leases are all among the busiest, 3 ports each.
  t.is(series.filter((x) => x.value === 3).length, 80);
  t.is(sampleValue(s, 'porter_ports_in_use', { remote: 'other', local: 'other' }), 0);
  t.is(sampleValue(s, 'porter_pools'), 20_000);
  for (const l of leases) l.release({ aging: false });
});

test('porter_pools counts the pools that hold something: one released at once is dropped', async (t) => {
  const porter = new Porter({ portRange: [20_000, 20_007], agingMs: 600_000 });
  const registry = new Registry();
  registerPorterMetrics({ porter, registry });
  // 3,000 destinations: more than the 1,024 routes a Porter keeps open, so that most are
  // closed (a route holds its pools); a third age a port, the others give it back at once.
  for (let i = 0; i < 3_000; i++) {
    porter.allocate({ address: `10.1.${i >> 8}.${i & 255}`, port: 443 }).release({ aging: i % 3 === 0 });
  }
  const s = await scrape(registry);
  t.is(sumOf(s, 'porter_ports_aging'), 1_000);
  const pools = sampleValue(s, 'porter_pools');
  // The aging ones, and at most the 1,024 routes still open.
  t.true(pools >= 1_000 && pools <= 1_000 + 1_024, `${pools} pools`);
  t.true(porter.stats().poolsRetired >= 3_000 - 1_000 - 1_024);
});

test('maxPools 0 sums every pool; with pools under the cap there is no "other" series', async (t) => {
  const [first, last] = await findFreePortBlock(4);
  const porter = new Porter({ portRange: [first, last], kernelFallback: false });
  const a = new Registry();
  const b = new Registry();
  registerPorterMetrics({ porter, registry: a, maxPools: 0 });
  registerPorterMetrics({ porter, registry: b });
  const leases = [porter.allocate({ address: '127.0.0.1', port: 7 }), porter.allocate({ address: '::1', port: 443 })];
  const sa = await scrape(a);
  t.deepEqual(
    select(sa, 'porter_ports_in_use').map((x) => [x.labels, x.value]),
    [[{ remote: 'other', local: 'other' }, 2]],
  );
  const sb = await scrape(b);
  t.is(select(sb, 'porter_ports_in_use', { remote: 'other' }).length, 0);
  t.is(sampleValue(sb, 'porter_ports_in_use', { remote: '[::1]:443', local: '::' }), 1, 'IPv6 in brackets');
  t.is(sampleValue(sb, 'porter_ports_in_use', { remote: '127.0.0.1:7', local: ANY }), 1);
  for (const l of leases) l.release({ aging: false });
});

test("porter_ports_capacity counts the kernel's window of the range in mode hybrid", async (t) => {
  // A range of 20 ports straddling an end of the host's ephemeral range: porter binds the
  // 10 outside it itself, the kernel picks among the 10 inside it.
  const [low, high] = hostPorts().ephemeral;
  const portRange: [number, number] = high <= 65_525 ? [high - 9, high + 10] : [low - 10, low + 9];
  const porter = new Porter({ portRange, mode: 'hybrid' });
  const registry = new Registry();
  registerPorterMetrics({ porter, registry });
  const capacity = porter.capacity();
  t.true(capacity.kernel > 0 && capacity.explicit > 0, JSON.stringify(capacity));
  const lease = porter.allocate({ address: '127.0.0.1', port: 9 });
  const s = await scrape(registry);
  const pool = { remote: '127.0.0.1:9', local: ANY };
  t.is(sampleValue(s, 'porter_ports_capacity', pool), capacity.explicit + capacity.kernel);
  t.is(sampleValue(s, 'porter_ports_capacity', pool), capacity.perDestination);
  t.is(
    sampleValue(s, 'porter_ports_in_use', pool) + sampleValue(s, 'porter_ports_free', pool),
    capacity.perDestination,
  );
  lease.release({ aging: false });
});
