/**
 * `porter hold` as a load tool, in a private network namespace, against a listener in
 * another process that never accepts (its accept queue, 65,535 deep, holds every
 * connection at no descriptor's cost, so only the client side is measured):
 *
 * 1. Open rate and memory per held connection: `porter hold` (the command, as a user runs
 *    it, 100 connects in flight) beside plain holders, a Node script that opens the same
 *    connections at the same concurrency and holds them, with net.connect (the baseline) or
 *    with porter.connect (what hold adds to porter itself). Rate: connections
 *    from the first connect to the last settled. Memory: the growth of the process's RSS
 *    between a run of 1,000 connections and a run of N, per connection (the slope, which
 *    leaves out what each process costs before its first connection). Methods in turn,
 *    alternating which goes first; medians of the rounds.
 * 2. Past one process's open-file limit: `porter hold --workers 4` with 60,000 connections
 *    to one destination (each worker process 15,000 under its 20,000 limit, with a quarter
 *    of porter's range 1024-65535: the ports it binds outside the kernel's ephemeral range,
 *    the kernel's own picks inside). Baseline in the same run: 28,000 connections (the most
 *    the kernel's ephemeral range gives one destination) by --workers 4, and by four
 *    net.connect holders of 7,000 each, started together.
 *
 * Run directly: node bench/hold.mjs [--quick] [--write] [--parts memory|workers]. Last
 * line: JSON. With --write (full runs of both parts only), also
 * bench/results/hold-<date>.json, which docs/benchmarks.md shows when the full run (npm run
 * bench) did not measure this.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { netnsUnavailableReason } from '../test/helpers/netns.mjs';
import { startServers } from '../test/helpers/servers.mjs';
import { errorsCell, finiteOrNull, fmtRate, fmtRatio, table } from './lib/format.mjs';
import { latestResult, writeResult } from './lib/machine.mjs';
import { runIfChild, runInNamespace, setupNamespace } from './lib/netns.mjs';
import { lastJsonLine, log, median, rotate, tail } from './lib/util.mjs';

const self = fileURLToPath(import.meta.url);
const bin = fileURLToPath(new URL('../packages/cli/bin/porter.js', import.meta.url));
const CONCURRENCY = 100;

const rssOf = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024;

/**
 * Runs `command`, reads its RSS once it says (on stderr) that it holds everything, then
 * lets it go (SIGINT for hold, a line on stdin for the holder). Resolves to its last JSON
 * line and that RSS.
 */
function runHolding(command, args, holding, release) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let out = '';
    let err = '';
    let rss = null;
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
      if (rss === null && holding.test(err)) {
        rss = rssOf(child.pid);
        release(child);
      }
    });
    child.once('close', (code) => {
      const json = lastJsonLine(out);
      resolve(json && rss !== null ? { ...json, rss } : { error: `exit ${code}: ${tail(err, 3)}` });
    });
  });
}

const runHold = (port, count, extra = []) =>
  runHolding(
    process.execPath,
    [bin, 'hold', `127.0.0.1:${port}`, '-n', String(count), '-c', String(CONCURRENCY), '-d', '60', '--json', ...extra],
    /holding [\d,]+/,
    (child) => child.kill('SIGINT'),
  );

/** A plain holder: `kind` 'net' (net.connect) or 'porter' (porter.connect). */
const runHolder = (kind, port, count) =>
  runHolding(process.execPath, [self, '--holder', kind, String(port), String(count)], /^holding$/m, (child) =>
    child.stdin.end('done\n'),
  );

/** A plain holder: opens with `kind`, CONCURRENCY in flight, then holds until told (stdin). */
async function holder(kind, port, count, waitForGo) {
  /** Resolves to the socket, or rejects. */
  let open = (options) =>
    new Promise((resolve, reject) => {
      const s = netConnect(options);
      s.once('connect', () => resolve(s)).once('error', reject);
    });
  if (kind === 'porter') {
    const { Porter } = await import('@porter/core');
    const porter = new Porter();
    open = (options) => porter.connect(options);
  }
  const lines = createInterface({ input: process.stdin });
  const next = () => new Promise((resolve) => lines.once('line', resolve));
  if (waitForGo) {
    process.stdout.write('ready\n');
    await next();
  }
  const sockets = [];
  const errors = {};
  let started = 0;
  let first = null;
  let last = null;
  const one = () => {
    first ??= performance.now();
    return open({ host: '127.0.0.1', port }).then(
      (s) => {
        sockets.push(s);
        last = performance.now();
      },
      (e) => {
        errors[e.code] = (errors[e.code] ?? 0) + 1;
        last = performance.now();
      },
    );
  };
  const worker = async () => {
    while (started < count) {
      started++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const ms = last - first;
  process.stderr.write('holding\n');
  process.stdout.write(
    `${JSON.stringify({ opened: sockets.length, errors, ms, rate_per_sec: (sockets.length * 1000) / ms })}\n`,
  );
  // Held until the parent says so (a line) or goes (stdin closed).
  await Promise.race([next(), new Promise((resolve) => lines.once('close', resolve))]);
  for (const s of sockets) s.destroy();
}

/** One round of part 1: each method at 1,000 and at `count`, in the round's order. */
async function memoryRound(port, count, order) {
  const round = {};
  for (const method of order) {
    const run = method === 'hold' ? runHold : (port, n) => runHolder(method, port, n);
    const small = await run(port, 1000);
    const big = await run(port, count);
    if (small.error || big.error) {
      round[method] = { error: small.error ?? big.error };
      continue;
    }
    round[method] = {
      rate: big.rate_per_sec,
      rssPerConnection: (big.rss - small.rss) / (count - 1000),
      opened: big.opened,
    };
  }
  return round;
}

/** Four net.connect holders of `each`, started together: connections over the slowest one's time. */
async function netHolders(port, each) {
  const children = Array.from({ length: 4 }, () =>
    spawn(process.execPath, [self, '--holder', 'net', String(port), String(each), '--go'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    }),
  );
  const readers = children.map((c) => createInterface({ input: c.stdout }));
  const line = (i) => new Promise((resolve) => readers[i].once('line', resolve));
  await Promise.all(children.map((_, i) => line(i)));
  const results = children.map((_, i) => line(i));
  for (const c of children) c.stdin.write('go\n');
  const reports = (await Promise.all(results)).map((l) => JSON.parse(l));
  for (const c of children) c.stdin.end();
  await Promise.all(children.map((c) => new Promise((resolve) => c.once('close', resolve))));
  const opened = reports.reduce((n, r) => n + r.opened, 0);
  const errors = {};
  for (const r of reports) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
  return { opened, errors, rate: (opened * 1000) / Math.max(...reports.map((r) => r.ms)) };
}

/** `porter hold --workers 4` with `count` connections. */
async function holdWorkers(port, count) {
  const r = await runHold(port, count, ['--workers', '4', '-c', '400']);
  if (r.error) return r;
  return {
    opened: r.opened,
    errors: r.errors,
    rate: r.rate_per_sec,
    openMs: r.open_ms,
    kernelPicks: r.kernel_picks,
    retries: r.retries,
  };
}

async function child(config) {
  setupNamespace(config.hostNetns, null);
  writeFileSync('/proc/sys/net/core/somaxconn', '65535\n');
  const fresh = () => startServers({ mode: 'no-accept', backlog: 65535, lifetimeMs: 900_000 });
  const rounds = [];
  for (let round = 0; round < (config.parts.includes('memory') ? config.rounds : 0); round++) {
    const listener = await fresh();
    // A different order each round.
    const order = rotate(['hold', 'porter', 'net'], round);
    const r = await memoryRound(listener.ports[0], config.count, order);
    await listener.stop();
    const show = (m) =>
      r[m].error ? `${m} ${r[m].error}` : `${m} ${fmtRate(r[m].rate)}, ${r[m].rssPerConnection.toFixed(0)} B`;
    log(`  round ${round + 1}: ${show('hold')}; ${show('porter')}; ${show('net')}`);
    rounds.push(r);
  }
  const ok = rounds.filter((r) => !r.hold.error && !r.net.error && !r.porter.error);
  const med = (f) => (ok.length ? median(ok.map(f)) : null);
  const cases = [];
  const workersCases = [
    ['4 net.connect holders x 7,000', (port) => netHolders(port, 7000)],
    ['porter hold --workers 4, 28,000', (port) => holdWorkers(port, 28_000)],
    [
      `porter hold --workers 4, ${config.workersCount.toLocaleString('en')}`,
      (port) => holdWorkers(port, config.workersCount),
    ],
  ];
  for (const [label, run] of config.parts.includes('workers') ? workersCases : []) {
    const listener = await fresh();
    const result = { label, ...(await run(listener.ports[0])) };
    await listener.stop();
    log(
      `  ${label}: ${result.error ?? `${result.opened} opened, ${fmtRate(result.rate)}, errors ${errorsCell(result.errors)}`}`,
    );
    cases.push(result);
  }
  return {
    count: config.count,
    concurrency: CONCURRENCY,
    rounds,
    holdRate: med((r) => r.hold.rate),
    porterRate: med((r) => r.porter.rate),
    netRate: med((r) => r.net.rate),
    rateRatio: med((r) => r.hold.rate / r.net.rate),
    holdRssPerConnection: med((r) => r.hold.rssPerConnection),
    porterRssPerConnection: med((r) => r.porter.rssPerConnection),
    netRssPerConnection: med((r) => r.net.rssPerConnection),
    rssRatio: med((r) => r.hold.rssPerConnection / r.net.rssPerConnection),
    rssRatioVsPorter: med((r) => r.hold.rssPerConnection / r.porter.rssPerConnection),
    workers: cases,
  };
}

/** `parts`: 'memory,workers' (both), or one of them (`node bench/hold.mjs --parts memory`). */
export async function runHoldBench({ quick = false, parts = 'memory,workers' } = {}) {
  const why = netnsUnavailableReason();
  if (why !== undefined) return { skipped: why };
  const config = {
    ...(quick ? { count: 5000, rounds: 1 } : { count: 15_000, rounds: 3 }),
    workersCount: 60_000,
    parts,
  };
  log(
    `porter hold: ${config.count} connections held, ${config.rounds} rounds; --workers 4 up to ${config.workersCount}`,
  );
  return runInNamespace(self, config, { timeoutMs: 900_000 });
}

/** The latest result of a separate run (bench/results/hold-<date>.json), or null. */
export const latestHold = () => latestResult('hold');

/** This benchmark's headline figures, for the summary of a run. */
export function holdSummary(hold) {
  const last = Array.isArray(hold?.workers) ? hold.workers.at(-1) : undefined;
  return {
    hold_rate_ratio_vs_net: finiteOrNull(hold?.rateRatio),
    hold_rss_ratio_vs_net: finiteOrNull(hold?.rssRatio),
    hold_workers_60000_failed:
      last === undefined || last.error ? null : Object.values(last.errors ?? {}).reduce((a, b) => a + b, 0),
  };
}

/** This benchmark's part of docs/benchmarks.md (lines, without the heading). */
export function holdReport(r) {
  const b = (v) => (typeof v === 'number' ? `${v.toFixed(0)} B` : 'n/a');
  return [
    ...(r.date
      ? [`Measured alone (\`node bench/hold.mjs --write\`) on ${r.date}: bench/results/hold-${r.date}.json.`, '']
      : []),
    'In a private network namespace, against a listener in another process whose accept queue holds every ' +
      `connection: \`porter hold\` (the command, ${r.concurrency} connects in flight) beside a Node script that ` +
      `opens the same ${r.count.toLocaleString('en')} connections at the same concurrency and holds them, with ` +
      '`net.connect` (the baseline) or with `porter.connect` (what `hold` adds to porter itself). ' +
      'Rate: from the first connect to the last settled. Memory: growth of RSS per connection between ' +
      `a run of 1,000 and one of ${r.count.toLocaleString('en')}. ${r.rounds.length} rounds, medians.`,
    '',
    table(
      ['method', 'open rate', 'RSS per held connection'],
      [
        ['`porter hold`', fmtRate(r.holdRate), b(r.holdRssPerConnection)],
        ['`porter.connect` holder', fmtRate(r.porterRate), b(r.porterRssPerConnection)],
        ['`net.connect` holder', fmtRate(r.netRate), b(r.netRssPerConnection)],
        ['porter hold / net.connect', `**${fmtRatio(r.rateRatio)}**`, `**${fmtRatio(r.rssRatio)}**`],
        ['porter hold / porter.connect holder', '', fmtRatio(r.rssRatioVsPorter)],
      ],
    ),
    '',
    'Past one process: `porter hold --workers 4` (400 connects in flight in all) to one destination, each worker ' +
      "under the 20,000 open-file limit and with a quarter of porter's range; 28,000 is the most the kernel's " +
      'ephemeral range gives one destination, which four `net.connect` processes (7,000 each, started together) ' +
      'reach too.',
    '',
    table(
      ['case', 'opened', 'failed', 'rate', 'kernel picks', 'retries'],
      r.workers.map((c) =>
        c.error
          ? [c.label, 'n/a', c.error, '', '', '']
          : [
              c.label,
              c.opened,
              errorsCell(c.errors),
              fmtRate(c.rate),
              c.kernelPicks ?? 'n/a',
              c.retries ? errorsCell(c.retries) : 'n/a',
            ],
      ),
    ),
  ];
}

const holderArg = process.argv.indexOf('--holder');
if (holderArg !== -1) {
  const [kind, port, count] = process.argv.slice(holderArg + 1);
  await holder(kind, Number(port), Number(count), process.argv.includes('--go'));
  process.exit(0);
} else if (!runIfChild(child) && process.argv[1] === self) {
  const parts = process.argv.indexOf('--parts');
  const r = await runHoldBench({
    quick: process.argv.includes('--quick'),
    ...(parts !== -1 ? { parts: process.argv[parts + 1] } : {}),
  });
  if (process.argv.includes('--write') && !process.argv.includes('--quick') && parts === -1 && r.workers) {
    writeResult('hold', r);
  }
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
