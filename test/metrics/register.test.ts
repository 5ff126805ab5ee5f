import type { Socket } from 'node:net';
import { Porter } from '@porter/core';
import { ERR_METRICS_REGISTERED, registerPorterMetrics } from '@porter/metrics';
import test, { type ExecutionContext } from 'ava';
import { Registry, type RegistryContentType } from 'prom-client';
import { collide } from '../helpers/collisions.js';
import {
  parseExposition,
  promtoolCheck,
  promtoolPath,
  type Sample,
  sampleValue,
  scrape,
  select,
  sumOf,
} from '../helpers/exposition.js';
import { findFreePortBlock, freePort } from '../helpers/ports.js';
import { testIf } from '../helpers/requirements.js';
import { startServers } from '../helpers/servers.mjs';
import { closed, destroyAll, endAndWait } from '../helpers/sockets.js';

const ANY = '0.0.0.0';

/** The `_bucket` values of the histogram, in order, checked to be cumulative. */
function buckets(samples: Sample[], name: string): { le: string; value: number }[] {
  return select(samples, `${name}_bucket`).map((s) => ({ le: s.labels['le']!, value: s.value }));
}

/** Before the first connect: no pool series, every counter at 0. */
function nothingYet(t: ExecutionContext, s: Sample[]): void {
  t.is(select(s, 'porter_ports_in_use').length, 0, 'no pool yet, no pool series');
  t.is(sampleValue(s, 'porter_pools'), 0);
  t.is(sampleValue(s, 'porter_allocations_total'), 0);
  t.is(sampleValue(s, 'porter_releases_total', { mode: 'aging' }), 0);
  t.is(sampleValue(s, 'porter_releases_total', { mode: 'immediate' }), 0);
  t.is(sampleValue(s, 'porter_exhausted_total'), 0);
  t.is(sampleValue(s, 'porter_kernel_fallbacks_total'), 0);
  t.is(select(s, 'porter_connect_errors_total').length, 0);
  t.is(sampleValue(s, 'porter_connect_duration_seconds_count'), 0);
}

/** The histogram after 3 connects: 16 core buckets + +Inf, cumulative, +Inf = _count = 3. */
function threeConnectsTimed(t: ExecutionContext, s: Sample[], porter: Porter): void {
  const hb = buckets(s, 'porter_connect_duration_seconds');
  t.is(hb.length, porter.stats().connectDuration.bounds.length + 1);
  t.deepEqual(
    hb.map((b) => b.le),
    [...porter.stats().connectDuration.bounds.map(String), '+Inf'],
  );
  for (let i = 1; i < hb.length; i++) t.true(hb[i]!.value >= hb[i - 1]!.value, 'buckets are cumulative');
  t.is(hb.at(-1)!.value, 3);
  t.is(hb.at(-2)!.value, 3, 'a loopback connect takes less than 10 s');
  t.is(sampleValue(s, 'porter_connect_duration_seconds_count'), 3);
  const sum = sampleValue(s, 'porter_connect_duration_seconds_sum');
  t.true(sum > 0 && sum < 30, `sum ${sum}`);
}

/** Every port handed out is in use or was given back, and the exposition agrees with the core's own counters. */
function agreesWithTheCore(t: ExecutionContext, s: Sample[], porter: Porter): void {
  t.is(sampleValue(s, 'porter_allocations_total'), sumOf(s, 'porter_ports_in_use') + sumOf(s, 'porter_releases_total'));
  const stats = porter.stats();
  t.is(sampleValue(s, 'porter_exhausted_total'), stats.exhausted);
  for (const [code, count] of Object.entries(stats.connectErrors)) {
    t.is(sampleValue(s, 'porter_connect_errors_total', { code }), count);
  }
  t.is(
    sumOf(s, 'porter_connect_errors_total'),
    Object.values(stats.connectErrors).reduce((a, b) => a + b, 0),
  );
  // No connect collided here: both retry series are there, at 0 (the retry test below
  // makes them count).
  t.deepEqual(
    select(s, 'porter_retries_total').map((x) => [x.labels['code'], x.value]),
    [
      ['EADDRINUSE', 0],
      ['EADDRNOTAVAIL', 0],
    ],
  );
  t.deepEqual(stats.retries, { EADDRINUSE: 0, EADDRNOTAVAIL: 0 });
}

test('gauges and counters follow real connections, releases, exhaustion and refusals', async (t) => {
  const echo = await startServers({ mode: 'echo' });
  const closer = await startServers({ mode: 'close-first' });
  const [first, last] = await findFreePortBlock(4);
  const porter = new Porter({ portRange: [first, last], kernelFallback: false, agingMs: 60_000 });
  const registry = new Registry();
  const sockets: Socket[] = [];
  t.teardown(async () => {
    await destroyAll(sockets);
    await echo.stop();
    await closer.stop();
  });
  registerPorterMetrics({ porter, registry });
  const echoPort = echo.ports[0]!;
  const echoPool = { remote: `127.0.0.1:${echoPort}`, local: ANY };

  let s = await scrape(registry);
  nothingYet(t, s);

  for (let i = 0; i < 3; i++) sockets.push(await porter.connect({ host: '127.0.0.1', port: echoPort }));
  s = await scrape(registry);
  t.is(sampleValue(s, 'porter_ports_in_use', echoPool), 3);
  t.is(sampleValue(s, 'porter_ports_aging', echoPool), 0);
  t.is(sampleValue(s, 'porter_ports_free', echoPool), 1);
  t.is(sampleValue(s, 'porter_ports_capacity', echoPool), 4, 'the whole range of 4, per destination');
  t.is(sampleValue(s, 'porter_pools'), 1);
  t.is(sampleValue(s, 'porter_allocations_total'), 3);
  threeConnectsTimed(t, s, porter);

  // The same values through the metric objects.
  const inUse = await registry.getSingleMetric('porter_ports_in_use')!.get();
  t.is(String(inUse.type), 'gauge');
  t.deepEqual(
    inUse.values.map((v) => [v.labels, v.value]),
    [[echoPool, 3]],
  );

  // This side closes first: the port ages.
  await endAndWait(sockets.shift()!);
  // Reset: the port comes back at once.
  const reset = sockets.shift()!;
  const resetClosed = closed(reset);
  reset.resetAndDestroy();
  await resetClosed;
  s = await scrape(registry);
  t.is(sampleValue(s, 'porter_ports_in_use', echoPool), 1);
  t.is(sampleValue(s, 'porter_ports_aging', echoPool), 1);
  t.is(sampleValue(s, 'porter_ports_free', echoPool), 2);
  t.is(sampleValue(s, 'porter_releases_total', { mode: 'aging' }), 1);
  t.is(sampleValue(s, 'porter_releases_total', { mode: 'immediate' }), 1);

  // The remote closes first: released at once, in a second pool.
  const closerPool = { remote: `127.0.0.1:${closer.ports[0]}`, local: ANY };
  const byServer = await porter.connect({ host: '127.0.0.1', port: closer.ports[0]! });
  await closed(byServer);
  s = await scrape(registry);
  t.is(sampleValue(s, 'porter_pools'), 2);
  t.is(sampleValue(s, 'porter_ports_in_use', closerPool), 0);
  t.is(sampleValue(s, 'porter_ports_aging', closerPool), 0);
  t.is(sampleValue(s, 'porter_ports_free', closerPool), 4);
  t.is(sampleValue(s, 'porter_ports_capacity', closerPool), 4, 'each destination gets the whole range');
  t.is(sampleValue(s, 'porter_releases_total', { mode: 'immediate' }), 2);
  t.is(sampleValue(s, 'porter_allocations_total'), 4);
  t.is(sampleValue(s, 'porter_connect_duration_seconds_count'), 4);

  // Exhaustion: 1 in use + 1 aging + 2 more = the whole range of 4.
  for (let i = 0; i < 2; i++) sockets.push(await porter.connect({ host: '127.0.0.1', port: echoPort }));
  const err = await t.throwsAsync(porter.connect({ host: '127.0.0.1', port: echoPort }));
  t.is((err as NodeJS.ErrnoException).code, 'ERR_PORTER_EXHAUSTED');
  t.is(
    (t.throws(() => porter.allocate({ address: '127.0.0.1', port: echoPort })) as NodeJS.ErrnoException).code,
    'ERR_PORTER_EXHAUSTED',
  );
  s = await scrape(registry);
  t.is(sampleValue(s, 'porter_ports_in_use', echoPool), 3);
  t.is(sampleValue(s, 'porter_ports_aging', echoPool), 1);
  t.is(sampleValue(s, 'porter_ports_free', echoPool), 0);
  t.is(sampleValue(s, 'porter_ports_capacity', echoPool), 4);
  t.is(sampleValue(s, 'porter_exhausted_total'), 2);
  t.is(sampleValue(s, 'porter_kernel_fallbacks_total'), 0);
  t.is(sampleValue(s, 'porter_allocations_total'), 6);
  t.is(sampleValue(s, 'porter_connect_duration_seconds_count'), 6, 'failed connects are not timed');

  // A refused connect, to a port nothing listens on.
  const refusedPort = await freePort();
  const refused = await t.throwsAsync(porter.connect({ host: '127.0.0.1', port: refusedPort }));
  t.is((refused as NodeJS.ErrnoException).code, 'ECONNREFUSED');
  s = await scrape(registry);
  t.is(sampleValue(s, 'porter_connect_errors_total', { code: 'ECONNREFUSED' }), 1);
  t.is(sampleValue(s, 'porter_ports_in_use', { remote: `127.0.0.1:${refusedPort}`, local: ANY }), 0);
  t.is(sampleValue(s, 'porter_pools'), 3);
  t.is(sampleValue(s, 'porter_allocations_total'), 7);
  t.is(sampleValue(s, 'porter_connect_duration_seconds_count'), 6);
  agreesWithTheCore(t, s, porter);
});

for (const holder of ['listener', '4-tuple'] as const) {
  const code = holder === 'listener' ? 'EADDRINUSE' : 'EADDRNOTAVAIL';
  test(`porter_retries_total{code="${code}"} and porter_kernel_fallbacks_total count real collisions`, async (t) => {
    // Both ports of the range collide: the first is retried on the second, which collides
    // too, and is retried through the kernel's choice. Two retries, one fallback.
    const { porter, port, first, last, sockets } = await collide(t, holder, 2, 2, {
      retry: { attempts: 1 },
      kernelFallback: true,
    });
    const registry = new Registry();
    registerPorterMetrics({ porter, registry });
    const pool = { remote: `127.0.0.1:${port}`, local: ANY };
    sockets.push(await porter.connect({ host: '127.0.0.1', port }));
    let s = await scrape(registry);
    t.is(sampleValue(s, 'porter_retries_total', { code }), 2);
    t.is(sampleValue(s, 'porter_retries_total', { code: code === 'EADDRINUSE' ? 'EADDRNOTAVAIL' : 'EADDRINUSE' }), 0);
    t.is(sampleValue(s, 'porter_kernel_fallbacks_total'), 1);
    t.is(sampleValue(s, 'porter_ports_aging', pool), 2, `${first} and ${last} age`);
    t.is(sampleValue(s, 'porter_ports_in_use', pool), 1);
    t.is(sampleValue(s, 'porter_ports_free', pool), 0);
    // Both ports aging: the next connect goes straight to the kernel, no retry.
    sockets.push(await porter.connect({ host: '127.0.0.1', port }));
    s = await scrape(registry);
    t.is(sampleValue(s, 'porter_retries_total', { code }), 2);
    t.is(sampleValue(s, 'porter_kernel_fallbacks_total'), 2);
    t.is(sampleValue(s, 'porter_ports_in_use', pool), 2);
    // The capacity is the range's 2 ports; the kernel's 2 are in use beyond it.
    t.is(sampleValue(s, 'porter_ports_capacity', pool), 2);
    t.is(
      sampleValue(s, 'porter_ports_in_use', pool) + sampleValue(s, 'porter_ports_aging', pool),
      sampleValue(s, 'porter_ports_capacity', pool) + sampleValue(s, 'porter_kernel_fallbacks_total'),
    );
    t.is(sampleValue(s, 'porter_allocations_total'), 4, 'two ports of the range and two of the kernel');
    t.is(sampleValue(s, 'porter_exhausted_total'), 0);
    t.is(select(s, 'porter_connect_errors_total').length, 0, 'no connect failed');
  });
}

const promtool = promtoolPath();

testIf(promtool === undefined ? 'promtool (Debian package prometheus)' : undefined)(
  'promtool check metrics is clean on the exposition',
  async (t) => {
    const echo = await startServers({ mode: 'echo' });
    const [first, last] = await findFreePortBlock(3);
    const porter = new Porter({ portRange: [first, last], kernelFallback: false });
    const registry = new Registry();
    const sockets: Socket[] = [];
    t.teardown(async () => {
      await destroyAll(sockets);
      await echo.stop();
    });
    registerPorterMetrics({ porter, registry, maxPools: 1 });
    for (let i = 0; i < 2; i++) sockets.push(await porter.connect({ host: '127.0.0.1', port: echo.ports[0]! }));
    await t.throwsAsync(porter.connect({ host: '127.0.0.1', port: await freePort() }));
    porter.allocate({ address: '::1', port: 443 }).release();
    const text = await registry.metrics();
    // Every kind of series is there: pools, other, labelled counters, the histogram.
    t.regex(text, /porter_ports_in_use\{remote="other",local="other"\} \d/);
    t.regex(text, /porter_connect_errors_total\{code="ECONNREFUSED"\} 1/);
    t.regex(text, /porter_connect_duration_seconds_bucket\{le="\+Inf"\} 2/);
    const { status, output } = promtoolCheck(promtool as string, text);
    t.is(output.trim(), '', output);
    t.is(status, 0);
  },
);

test('unregister removes the metrics; a second registration under the same names is refused', async (t) => {
  const [first, last] = await findFreePortBlock(2);
  const porter = new Porter({ portRange: [first, last] });
  const registry = new Registry();
  const metrics = registerPorterMetrics({ porter, registry });
  t.is(metrics.names.length, 13);
  for (const name of metrics.names) t.truthy(registry.getSingleMetric(name), name);
  const err = t.throws(() => registerPorterMetrics({ porter, registry }));
  t.is((err as NodeJS.ErrnoException).code, ERR_METRICS_REGISTERED);
  t.is(registry.getMetricsAsArray().length, 13, 'the failed call registered nothing');
  // Another prefix can live beside it.
  const second = registerPorterMetrics({ porter, registry, prefix: 'edge_porter_' });
  t.true(second.names.every((n) => n.startsWith('edge_porter_')));
  t.regex(await registry.metrics(), /^edge_porter_pools 0$/m);
  metrics.unregister();
  t.is(registry.getMetricsAsArray().length, 13);
  t.true(metrics.names.every((n) => registry.getSingleMetric(n) === undefined));
  second.unregister();
  t.is(await registry.metrics(), '\n');
  // Registering again after unregister works.
  registerPorterMetrics({ porter, registry }).unregister();
});

test('resetMetrics() leaves the core counters alone; JSON and OpenMetrics output carry them', async (t) => {
  const [first, last] = await findFreePortBlock(2);
  const porter = new Porter({ portRange: [first, last] });
  const registry = new Registry<RegistryContentType>();
  registerPorterMetrics({ porter, registry });
  porter.allocate({ address: '127.0.0.1', port: 5 }).release({ aging: false });
  registry.resetMetrics();
  const s = await scrape(registry);
  t.is(sampleValue(s, 'porter_allocations_total'), 1);
  t.is(sampleValue(s, 'porter_releases_total', { mode: 'immediate' }), 1);
  const json = await registry.getMetricsAsJSON();
  const histogram = json.find((m) => m.name === 'porter_connect_duration_seconds');
  t.is(String(histogram?.type), 'histogram');
  t.is(
    histogram?.values.find((v) => (v as { metricName?: string }).metricName === 'porter_connect_duration_seconds_count')
      ?.value,
    0,
  );
  registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  const open = await registry.metrics();
  t.regex(open, /^porter_allocations_total 1$/m);
  t.regex(open, /^# TYPE porter_allocations counter$/m);
  t.regex(open, /^porter_connect_duration_seconds_bucket\{le="\+Inf"\} 0$/m);
  t.regex(open, /# EOF\n$/);
});

test('the default porter and registry are used when none are given', async (t) => {
  const { register } = await import('prom-client');
  const { allocate, defaultPorter } = await import('@porter/core');
  const metrics = registerPorterMetrics();
  t.teardown(() => metrics.unregister());
  t.truthy(register.getSingleMetric('porter_pools'));
  // Nothing else in this file uses the default instance: it has exactly these pools.
  const leases = [defaultPorter().allocate({ address: '127.0.0.1', port: 7 }), allocate({ address: '::1', port: 7 })];
  t.teardown(() => {
    for (const l of leases) l.release({ aging: false });
  });
  const s = parseExposition(await register.metrics());
  t.is(sampleValue(s, 'porter_pools'), 2);
  t.is(sampleValue(s, 'porter_allocations_total'), 2);
  t.is(sampleValue(s, 'porter_ports_in_use', { remote: '127.0.0.1:7', local: ANY }), 1);
  t.is(sampleValue(s, 'porter_ports_in_use', { remote: '[::1]:7', local: '::' }), 1);
  // And not those of another Porter in this file.
  t.is(select(s, 'porter_ports_in_use').length, 2);
});

test('bad options throw as Node does', (t) => {
  const registry = new Registry();
  t.is(
    (t.throws(() => registerPorterMetrics({ maxPools: -1, registry })) as NodeJS.ErrnoException).code,
    'ERR_OUT_OF_RANGE',
  );
  t.is(
    (t.throws(() => registerPorterMetrics({ maxPools: 1.5, registry })) as NodeJS.ErrnoException).code,
    'ERR_OUT_OF_RANGE',
  );
  t.is(
    (t.throws(() => registerPorterMetrics({ maxPools: '3' as unknown as number, registry })) as NodeJS.ErrnoException)
      .code,
    'ERR_INVALID_ARG_TYPE',
  );
  t.is(
    (t.throws(() => registerPorterMetrics({ prefix: 'bad-prefix', registry })) as NodeJS.ErrnoException).code,
    'ERR_INVALID_ARG_VALUE',
  );
  t.is(
    (t.throws(() => registerPorterMetrics({ porter: {} as Porter, registry })) as NodeJS.ErrnoException).code,
    'ERR_INVALID_ARG_TYPE',
  );
  t.is(
    (t.throws(() => registerPorterMetrics({ registry: {} as Registry })) as NodeJS.ErrnoException).code,
    'ERR_INVALID_ARG_VALUE',
  );
  t.is(registry.getMetricsAsArray().length, 0);
});
