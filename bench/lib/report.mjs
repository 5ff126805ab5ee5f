/**
 * The targets, and docs/benchmarks.md written from one result object of bench/run.mjs:
 * the machine and the targets here, then each benchmark's own section (each benchmark
 * module renders its part).
 */
import { agingReport } from '../aging.mjs';
import { capacityReport } from '../capacity.mjs';
import { connectReport } from '../connect-rate.mjs';
import { connectionMemoryReport } from '../connection-memory.mjs';
import { coreReport } from '../core.mjs';
import { destinationsReport } from '../destinations.mjs';
import { holdReport } from '../hold.mjs';
import { hostSocketsReport } from '../host-sockets.mjs';
import { inProcessReport } from '../in-process.mjs';
import { jsReport } from '../js-boundary.mjs';
import { latencyReport } from '../latency.mjs';
import { metricsReport } from '../metrics.mjs';
import { sharedHostReport } from '../shared-host.mjs';
import { fmtB, fmtMs, fmtRate, fmtRatio, num, section, table } from './format.mjs';

export { fmtRate, fmtRatio };

const metCell = (met) => (met === null ? 'not measured' : met ? '**met**' : '**missed**');

/** A target of no failed connect. */
const noneFailed = (name, failed) => ({
  name,
  target: '0',
  value: num(failed) ? String(failed) : 'n/a',
  met: num(failed) ? failed === 0 : null,
});

/** The project's targets, each with the value measured and whether it is met (null: no value). */
export function evaluateTargets(s) {
  const ge = (v, t) => (num(v) ? v >= t : null);
  const le = (v, t) => (num(v) ? v <= t : null);
  return [
    {
      name: 'core allocate + release pairs/s',
      target: '>= 20 M/s',
      value: fmtRate(s.core_alloc_release_per_sec),
      met: ge(s.core_alloc_release_per_sec, 20e6),
    },
    {
      name: 'bytes per idle pool',
      target: '<= 128 B',
      value: fmtB(s.pool_bytes_idle),
      met: le(s.pool_bytes_idle, 128),
    },
    {
      name: 'bytes per port in use',
      target: '<= 4 B',
      value: fmtB(s.pool_bytes_per_port),
      met: le(s.pool_bytes_per_port, 4),
    },
    {
      name: 'JS allocate + release pairs/s',
      target: '>= 3 M/s',
      value: fmtRate(s.js_alloc_release_per_sec),
      met: ge(s.js_alloc_release_per_sec, 3e6),
    },
    {
      name: 'porter.connect (default options) rate / net.connect rate',
      target: '>= 1.00x',
      value: fmtRatio(s.connect_ratio_vs_net),
      met: ge(s.connect_ratio_vs_net, 1),
    },
    {
      name: 'awaited loop to a server in the same process, porter / net.connect time (backlog 511, 64)',
      target: '<= 1.50x',
      value: `${fmtRatio(s.in_process_time_ratio_511)}, ${fmtRatio(s.in_process_time_ratio_64)}`,
      met:
        num(s.in_process_time_ratio_511) && num(s.in_process_time_ratio_64)
          ? s.in_process_time_ratio_511 <= 1.5 && s.in_process_time_ratio_64 <= 1.5
          : null,
    },
    {
      name: 'the same loop, porter: SYNs dropped (ListenDrops), slowest connect',
      target: '0, <= 500 ms',
      value: `${s.in_process_porter_listen_drops ?? 'n/a'}, ${fmtMs(s.in_process_porter_slowest_ms, 1)}`,
      met:
        num(s.in_process_porter_listen_drops) && num(s.in_process_porter_slowest_ms)
          ? s.in_process_porter_listen_drops === 0 && s.in_process_porter_slowest_ms <= 500
          : null,
    },
    {
      name: "connect p99 at 90 % occupancy, porter ('pool') / kernel",
      target: '<= 0.50x',
      value: fmtRatio(s.latency_p99_ratio_at_90pct),
      met: le(s.latency_p99_ratio_at_90pct, 0.5),
    },
    {
      name: 'capacity exact (a: N in total, b: N per destination, c: N per destination + ERR_PORTER_EXHAUSTED)',
      target: 'exact',
      value: s.capacity_exact === null ? 'n/a' : s.capacity_exact ? 'exact' : 'not exact',
      met: s.capacity_exact,
    },
    {
      name: "core allocate + release on one flow / the bare pool's rate",
      target: '>= 0.40x',
      value: fmtRatio(s.core_flow_vs_pool_ratio),
      met: ge(s.core_flow_vs_pool_ratio, 0.4),
    },
    {
      name: 'JS allocate().release() rate / two bare napi calls',
      target: '>= 0.25x',
      value: fmtRatio(s.js_pair_rate_vs_noop_pair),
      met: ge(s.js_pair_rate_vs_noop_pair, 0.25),
    },
    {
      name: `cost per new destination at ${num(s.new_destination_count) ? s.new_destination_count.toLocaleString('en') : 'n/a'} / at 10,000`,
      target: '<= 1.50x',
      value: fmtRatio(s.new_destination_ratio),
      met: le(s.new_destination_ratio, 1.5),
    },
    {
      name: 'pools left once aging ended / the peak',
      target: '<= 1 %',
      value: num(s.pools_after_aging_share) ? `${(s.pools_after_aging_share * 100).toFixed(2)} %` : 'n/a',
      met: le(s.pools_after_aging_share, 0.01),
    },
    {
      name: 'RSS growth after those destinations (aging ended)',
      target: '<= 50 MB',
      value: num(s.destinations_rss_growth_mb) ? `${s.destinations_rss_growth_mb.toFixed(1)} MB` : 'n/a',
      met: le(s.destinations_rss_growth_mb, 50),
    },
    {
      name: `RSS growth after ${num(s.porters_count) ? s.porters_count.toLocaleString('en') : 'n/a'} Porters made and dropped`,
      target: '<= 50 MB',
      value: num(s.porters_rss_growth_mb) ? `${s.porters_rss_growth_mb.toFixed(1)} MB` : 'n/a',
      met: le(s.porters_rss_growth_mb, 50),
    },
    {
      name: 'memory per open connection (15,000 held), porter / net.connect: RSS, JS heap',
      target: '<= 1.10x',
      value: `${fmtRatio(s.connection_rss_ratio)}, ${fmtRatio(s.connection_heap_ratio)}`,
      met:
        num(s.connection_rss_ratio) && num(s.connection_heap_ratio)
          ? s.connection_rss_ratio <= 1.1 && s.connection_heap_ratio <= 1.1
          : null,
    },
    noneFailed('four processes, 15,000 connections each to one destination: failed connects', s.shared_host_failed),
    noneFailed(
      '`porter hold --workers 4`, 60,000 connections to one destination: failed connects',
      s.hold_workers_60000_failed,
    ),
  ];
}

export function markdown(r, chartFile) {
  const m = r.machine;
  const out = [];
  out.push('# Benchmarks');
  out.push('');
  out.push(
    `Written by \`npm run bench\` (bench/run.mjs) on ${r.date}; the raw figures are in \`bench/results/${r.date}.json\`. ` +
      'Do not edit by hand: run the benchmarks again. Benchmarks are measurements, not tests: nothing here asserts a ' +
      'timing. The machine is small and shared, so methods are interleaved (a different order each round) and ' +
      'medians and ratios against a baseline measured in the same run are what to read, more than absolute figures.',
  );
  out.push('');
  out.push('## Machine');
  out.push('');
  out.push(
    table(
      ['what', 'value'],
      [
        ['CPU', `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB`],
        ['kernel', `${m.kernel} (${m.arch})`],
        ['Node', m.node],
        ['rustc', m.rustc ?? 'n/a'],
        ['net.core.somaxconn', m.somaxconn ?? 'n/a'],
        ['host ip_local_port_range', m.ipLocalPortRange ?? 'n/a'],
        ['open files limit', m.openFilesLimit ?? 'n/a'],
        ['total time of the run', `${r.durationSec.toFixed(0)} s`],
      ],
    ),
  );
  out.push('');
  out.push('## Targets');
  out.push('');
  out.push(
    table(
      ['figure', 'target', 'measured', ''],
      r.targets.map((t) => [t.name, t.target, t.value, metCell(t.met)]),
    ),
  );
  out.push('');
  out.push('## The Rust core', '', ...coreReport(r.core), '');
  out.push(...section('From JavaScript', r.js, jsReport));
  out.push(...section('Connect rate', r.connect, connectReport));
  out.push(...section('A server in the same process', r.inProcess, inProcessReport));
  out.push(...section('Processes sharing a host', r.sharedHost, sharedHostReport));
  out.push(...section('Destinations by the million, Porters that come and go', r.destinations, destinationsReport));
  out.push(...section('Memory per open connection', r.connectionMemory, connectionMemoryReport));
  out.push(...section('Capacity', r.capacity, capacityReport));
  out.push(...section('Connect latency at occupancy', r.latency, (lat) => latencyReport(lat, chartFile)));
  out.push(...section('Aging precision', r.aging, agingReport));
  out.push(...section('Metrics overhead', r.metrics, metricsReport));
  out.push(...section("The host's sockets: sock_diag and /proc (porter doctor)", r.hostSockets, hostSocketsReport));
  out.push(...section('porter hold', r.hold, holdReport));
  out.push('## Running them');
  out.push('');
  out.push(
    '`npm run bench` runs everything (a few minutes), writes `bench/results/<date>.json` and this page with its ' +
      'chart. `npm run bench:quick` runs a smaller set in under a minute (after the build) and prints one JSON ' +
      'object as its last line. The capacity, latency, shared-host and connect-rate benchmarks need root for ' +
      "`unshare -n` (a private network namespace; the host's kernel settings are never changed); without it they " +
      'report why they were skipped, and the connect rate falls back to the host loopback. Each part also runs ' +
      'alone: `node bench/js-boundary.mjs`, `node bench/connect-rate.mjs`, `node bench/capacity.mjs`, ' +
      '`node bench/in-process.mjs`, `node bench/latency.mjs`, `node bench/shared-host.mjs`, `node bench/destinations.mjs`, ' +
      '`node bench/connection-memory.mjs`, `node bench/aging.mjs`, `node bench/core.mjs`, `node bench/host-sockets.mjs`, ' +
      '`node bench/hold.mjs`.',
  );
  out.push('');
  return out.join('\n');
}
