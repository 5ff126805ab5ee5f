/**
 * Runs the benchmarks. `node bench/run.mjs` (npm run bench): everything, then writes
 * bench/results/<YYYY-MM-DD>.json, docs/benchmarks.md and docs/benchmarks-latency.svg.
 * `node bench/run.mjs --quick` (npm run bench:quick): a smaller set in under a minute
 * that writes nothing. Both print one JSON object of the headline figures as the last
 * line of stdout; progress goes to stderr. Nothing here asserts a timing.
 * `node bench/run.mjs --render bench/results/<date>.json` writes the docs again from a
 * results file, without measuring (`--stdout` as well: the page on stdout, nothing written).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runAging } from './aging.mjs';
import { runCapacity } from './capacity.mjs';
import { runConnectRate } from './connect-rate.mjs';
import { connectionMemorySummary, runConnectionMemory } from './connection-memory.mjs';
import { buildCoreBenches, runCriterion, runMemoryBench } from './core.mjs';
import { runDestinations } from './destinations.mjs';
import { holdSummary, latestHold, runHoldBench } from './hold.mjs';
import { latestHostSockets, runHostSockets } from './host-sockets.mjs';
import { inProcessSummary, runInProcess } from './in-process.mjs';
import { runJsBoundary } from './js-boundary.mjs';
import { runLatency } from './latency.mjs';
import { finiteOrNull } from './lib/format.mjs';
import { machine } from './lib/machine.mjs';
import { evaluateTargets, fmtRate, fmtRatio, markdown } from './lib/report.mjs';
import { latencyChart } from './lib/svg.mjs';
import { log } from './lib/util.mjs';
import { runMetricsOverhead } from './metrics.mjs';
import { runSharedHost } from './shared-host.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const quick = process.argv.includes('--quick');

async function section(name, fn) {
  const t0 = performance.now();
  log(`== ${name}`);
  let result;
  try {
    result = await fn();
  } catch (err) {
    result = {
      error: String(err?.stack ?? err)
        .split('\n')
        .slice(0, 3)
        .join(' '),
    };
    log(`   ${name} failed: ${result.error}`);
  }
  const seconds = (performance.now() - t0) / 1000;
  log(`   ${name}: ${seconds.toFixed(1)} s`);
  return { result, seconds };
}

/** docs/benchmarks.md and its chart, from one results object. */
function writeDocs(results) {
  const { latency, date } = results;
  if (Array.isArray(latency?.levels)) {
    writeFileSync(
      join(root, 'docs', 'benchmarks-latency.svg'),
      latencyChart(latency.levels, `N = ${latency.ports} ports, ${latency.samplesPerMethod} samples each, ${date}`),
    );
  }
  writeFileSync(join(root, 'docs', 'benchmarks.md'), markdown(results, 'benchmarks-latency.svg'));
}

/** The headline figures of a run (its sections), the targets' inputs. */
function summaryOf({
  core: { memory, criterion },
  js,
  connect,
  inProcess,
  latency,
  capacity,
  sharedHost,
  destinations,
  connectionMemory,
  aging,
  hostSockets,
  hold,
}) {
  return {
    core_alloc_release_per_sec: finiteOrNull(memory?.core_alloc_release_per_sec),
    pool_bytes_idle: finiteOrNull(memory?.pool_bytes_idle),
    pool_bytes_per_port: finiteOrNull(memory?.pool_bytes_per_port),
    core_pairs_2_threads_two_destinations_per_sec: finiteOrNull(criterion?.pairs_two_threads_two_destinations_per_sec),
    core_pairs_2_threads_same_destination_per_sec: finiteOrNull(criterion?.pairs_two_threads_same_destination_per_sec),
    core_new_destination_ns: finiteOrNull(criterion?.new_destination_first_allocate_ns),
    core_expiry_ns_per_port: finiteOrNull(criterion?.expiry_ns_per_port),
    js_alloc_release_per_sec: finiteOrNull(js?.js_alloc_release_per_sec),
    js_native_pair_per_sec: finiteOrNull(js?.native_alloc_release_per_sec),
    js_noop_pair_per_sec: finiteOrNull(js?.js_noop_pair_per_sec),
    js_pair_cost_vs_noop_pair: finiteOrNull(js?.js_pair_cost_vs_noop_pair),
    connect_ratio_vs_net: finiteOrNull(connect?.tcp?.ratio_porter_vs_net),
    connect_porter_per_sec: finiteOrNull(connect?.tcp?.medians?.porter),
    connect_net_per_sec: finiteOrNull(connect?.tcp?.medians?.net),
    connect_net_js_port_per_sec: finiteOrNull(connect?.tcp?.medians?.net_js_port),
    connect_pool_ratio_vs_net: finiteOrNull(connect?.tcp?.ratio_pool_vs_net),
    connect_kernel_ratio_vs_net: finiteOrNull(connect?.tcp?.ratio_kernel_vs_net),
    tls_connect_ratio_vs_tls: finiteOrNull(connect?.tls?.ratio_porter_vs_tls),
    ...inProcessSummary(inProcess),
    latency_p99_ratio_at_90pct: finiteOrNull(latency?.latency_p99_ratio_at_90pct),
    latency_p50_ratio_at_90pct: finiteOrNull(latency?.latency_p50_ratio_at_90pct),
    capacity_exact: capacity?.summary
      ? capacity.summary.bind_then_connect_exact &&
        capacity.summary.plain_connect_exact &&
        capacity.summary.porter_exact
      : null,
    shared_host_failed: Array.isArray(sharedHost?.cases)
      ? sharedHost.cases.at(-1)?.error
        ? null
        : Object.values(sharedHost.cases.at(-1)?.errors ?? {}).reduce((a, b) => a + b, 0)
      : null,
    shared_host_ratio_vs_net: finiteOrNull(sharedHost?.ratio_porter_vs_net_7000),
    core_flow_vs_pool_ratio: finiteOrNull(criterion?.flow_vs_pool_ratio),
    js_pair_rate_vs_noop_pair: finiteOrNull(js?.js_pair_cost_vs_noop_pair) ? 1 / js.js_pair_cost_vs_noop_pair : null,
    new_destination_ratio: finiteOrNull(destinations?.destinations?.ratioEndVs10k),
    new_destination_count: finiteOrNull(destinations?.destinations?.count),
    pools_after_aging_share: finiteOrNull(destinations?.destinations?.poolsAfterAgingShare),
    destinations_rss_growth_mb: finiteOrNull(destinations?.destinations?.rssGrowthMb),
    porters_count: finiteOrNull(destinations?.porters?.porters),
    porters_rss_growth_mb: finiteOrNull(destinations?.porters?.rssGrowthMb),
    ...connectionMemorySummary(connectionMemory),
    aging_late_p50_ms: finiteOrNull(aging?.late_p50_ms),
    aging_late_p99_ms: finiteOrNull(aging?.late_p99_ms),
    host_sockets_proc_vs_sock_diag: finiteOrNull(hostSockets?.ratio_proc_rust_vs_sock_diag),
    ...holdSummary(hold),
  };
}

async function main() {
  const render = process.argv.indexOf('--render');
  if (render !== -1) {
    const results = JSON.parse(readFileSync(process.argv[render + 1], 'utf8'));
    // A run that did not measure the host's sockets shows the latest separate run's.
    results.hostSockets ??= latestHostSockets();
    // The same for porter hold, with its figures in the summary the targets are read from.
    let summary = results.summary;
    if (results.hold === undefined) {
      results.hold = latestHold();
      summary = { ...summary, ...holdSummary(results.hold) };
    }
    results.targets = evaluateTargets(summary);
    // --stdout: the page on stdout, nothing written (test/packaging/bench-docs.test.ts).
    if (process.argv.includes('--stdout')) {
      process.stdout.write(markdown(results, 'benchmarks-latency.svg'));
      return;
    }
    writeDocs(results);
    log('wrote docs/benchmarks.md, docs/benchmarks-latency.svg');
    return;
  }
  const date = new Date().toISOString().slice(0, 10);
  const info = machine();
  log(
    `porter benchmarks (${quick ? 'quick' : 'full'}): ${info.cpu}, ${info.cores} cores, ${info.kernel}, Node ${info.node}`,
  );

  // Compiling the Rust benches is part of the build, not of the timed run.
  log('== building the Rust benches (not timed)');
  const build = await buildCoreBenches();
  if (!build.ok) log(`   cargo bench --no-run failed: ${build.error}`);

  const started = performance.now();
  const durations = {};
  const timed = async (name, fn) => {
    const { result, seconds } = await section(name, fn);
    durations[name] = Number(seconds.toFixed(1));
    return result;
  };
  const memory = await timed('core memory', runMemoryBench);
  const criterion = quick
    ? { skipped: 'full run only (npm run bench)' }
    : await timed('core criterion', () => runCriterion({ quick: false }));
  const js = await timed('js boundary', () => runJsBoundary({ quick }));
  const aging = await timed('aging', () => runAging({ quick }));
  const connect = await timed('connect rate', () => runConnectRate({ quick }));
  const inProcess = await timed('server in the same process', () => runInProcess({ quick }));
  const latency = await timed('latency at occupancy', () => runLatency({ quick }));
  const capacity = await timed('capacity', () => runCapacity({ quick }));
  const sharedHost = await timed('processes sharing a host', () => runSharedHost({ quick }));
  const destinations = await timed('destinations and Porters', () => runDestinations({ quick }));
  const connectionMemory = await timed('memory per connection', () => runConnectionMemory({ quick }));
  const metrics = await timed('metrics overhead', () => runMetricsOverhead({ quick }));
  const hostSockets = await timed("the host's sockets", () => runHostSockets({ quick }));
  const hold = await timed('porter hold', () => runHoldBench({ quick }));
  const durationSec = (performance.now() - started) / 1000;

  const results = {
    date,
    mode: quick ? 'quick' : 'full',
    machine: info,
    durationSec,
    durations,
    summary: null,
    targets: null,
    core: { build, memory, criterion },
    js,
    connect,
    inProcess,
    latency,
    capacity,
    sharedHost,
    destinations,
    connectionMemory,
    aging,
    metrics,
    hostSockets,
    hold,
  };
  const summary = summaryOf(results);
  results.summary = summary;
  results.targets = evaluateTargets(summary);

  for (const t of results.targets) {
    log(`   ${t.met === null ? 'n/a   ' : t.met ? 'met   ' : 'missed'} ${t.name}: ${t.value} (target ${t.target})`);
  }
  log(
    `   core ${fmtRate(summary.core_alloc_release_per_sec)}, js ${fmtRate(summary.js_alloc_release_per_sec)} ` +
      `(noop pair ${fmtRate(summary.js_noop_pair_per_sec)}), connect porter/net ${fmtRatio(summary.connect_ratio_vs_net)}`,
  );

  if (!quick) {
    // No absolute path of this machine goes into the files written.
    const text = JSON.stringify(results, null, 2).replaceAll(root.replace(/\/$/, ''), '.');
    mkdirSync(join(root, 'bench', 'results'), { recursive: true });
    writeFileSync(join(root, 'bench', 'results', `${date}.json`), `${text}\n`);
    writeDocs(JSON.parse(text));
    log(`   wrote bench/results/${date}.json, docs/benchmarks.md, docs/benchmarks-latency.svg`);
  }
  log(`== done in ${durationSec.toFixed(1)} s (build excluded)`);
  process.stdout.write(
    `${JSON.stringify({ mode: results.mode, duration_sec: Number(durationSec.toFixed(1)), ...summary })}\n`,
  );
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${err?.stack ?? err}\n`);
    process.exit(1);
  },
);
