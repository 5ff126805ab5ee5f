/**
 * The cost seen from JavaScript: `porter.allocate(...).release({ aging: false })` pairs
 * per second, the raw native pair (routeAllocate + routeRelease) and, as the baseline
 * measured in the same run, two bare calls into the addon (noop twice: as many native
 * calls as one pair). Each task call does a batch of operations so that the timer's
 * own cost does not count; the tasks are interleaved over rounds, in a different order
 * each round, and the medians are reported.
 *
 * Run directly: node bench/js-boundary.mjs [--quick].
 */
import { fileURLToPath } from 'node:url';
import { Porter } from '@porter/core';
import * as native from '@porter/native';
import { Bench } from 'tinybench';
import { fmtRate, fmtRatio, table } from './lib/format.mjs';
import { log, median, ratio, rotate } from './lib/util.mjs';

const BATCH = 1000;

export async function runJsBoundary({ quick = false } = {}) {
  const rounds = quick ? 3 : 7;
  const time = quick ? 300 : 1000;
  const destination = { address: '127.0.0.1', port: 9 };
  const porter = new Porter({ portRange: [10000, 59999], agingMs: 1000 });
  const registry = new native.Registry({
    rangeFirst: 10000,
    rangeLast: 59999,
    mode: 'hybrid',
    agingMs: 1000,
    retryAttempts: 0,
    kernelFallback: false,
  });
  const route = registry.route([], '127.0.0.1', 9);
  const { noop } = native;
  const { allocate: routeAllocate, release: routeRelease } = native.fastRouteFunctions();

  const tasks = {
    porter_allocate_release: () => {
      for (let i = 0; i < BATCH; i++) porter.allocate(destination).release({ aging: false });
    },
    native_allocate_release: () => {
      for (let i = 0; i < BATCH; i++) routeRelease(route, routeAllocate(route), false);
    },
    napi_noop_pair: () => {
      for (let i = 0; i < BATCH; i++) {
        noop();
        noop();
      }
    },
  };
  const rates = Object.fromEntries(Object.keys(tasks).map((k) => [k, []]));
  for (let round = 0; round < rounds; round++) {
    const bench = new Bench({ time, warmupTime: 100 });
    for (const name of rotate(Object.keys(tasks), round)) bench.add(name, tasks[name]);
    await bench.run();
    for (const task of bench.tasks) {
      const r = task.result;
      if (r?.state !== 'completed') throw new Error(`${task.name}: ${r?.state} ${r?.error ?? ''}`);
      // Median time of one batch, in ms -> operations per second.
      rates[task.name].push((BATCH * 1000) / r.latency.p50);
    }
    log(
      `  js round ${round + 1}: ${Object.entries(rates)
        .map(([k, v]) => `${k} ${(v.at(-1) / 1e6).toFixed(2)}M/s`)
        .join(', ')}`,
    );
  }
  const med = Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, median(v)]));
  return {
    batch: BATCH,
    rounds,
    timePerTaskMs: time,
    rates,
    js_alloc_release_per_sec: med.porter_allocate_release,
    native_alloc_release_per_sec: med.native_allocate_release,
    js_noop_pair_per_sec: med.napi_noop_pair,
    // Time ratios: how many bare two-call round trips one pair costs.
    js_pair_cost_vs_noop_pair: ratio(med.napi_noop_pair, med.porter_allocate_release),
    native_pair_cost_vs_noop_pair: ratio(med.napi_noop_pair, med.native_allocate_release),
    js_pair_cost_vs_native_pair: ratio(med.native_allocate_release, med.porter_allocate_release),
  };
}

/** This benchmark's part of docs/benchmarks.md (lines, without the heading). */
export function jsReport(js) {
  const out = [];
  out.push(
    `tinybench, ${js.rounds} interleaved rounds, each task call a batch of ${js.batch} operations; medians. The ` +
      'baseline is a bare N-API call that does nothing (`noop` of @porter/native), made twice per operation: as ' +
      'many calls into the addon as one allocate + release.',
  );
  out.push('');
  out.push(
    table(
      ['operation', 'per second', 'cost vs. two bare calls'],
      [
        [
          '`porter.allocate({ address, port }).release({ aging: false })`',
          fmtRate(js.js_alloc_release_per_sec),
          fmtRatio(js.js_pair_cost_vs_noop_pair),
        ],
        [
          '`routeRelease(route, routeAllocate(route), false)` (the raw native pair)',
          fmtRate(js.native_alloc_release_per_sec),
          fmtRatio(js.native_pair_cost_vs_noop_pair),
        ],
        ['`noop(); noop()` (baseline)', fmtRate(js.js_noop_pair_per_sec), '1.00x'],
      ],
    ),
  );
  out.push('');
  out.push(
    `The TypeScript layer over the raw native pair costs ${fmtRatio(js.js_pair_cost_vs_native_pair)} the time of the raw pair.`,
  );
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = await runJsBoundary({ quick: process.argv.includes('--quick') });
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
