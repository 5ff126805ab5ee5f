/**
 * Soak: porter.connect at a steady rate for a long time (10 minutes by default), with
 * faults mixed in, watching the process for leaks. Not a benchmark and not a test: a job
 * of its own (`npm run soak` runs it after the model check), never part of `npm test`.
 *
 * Each connection is one of:
 *   ok        connect to an echo server, write 64 bytes, read them back, end, wait for
 *             'close' (the client closes first: its port goes into aging)
 *   refused   connect to a port where nothing listens (ECONNREFUSED)
 *   reset     connect to a server that resets the connection on the first data, write
 *             (ECONNRESET)
 *   timeout   connect with a 100 ms timeout to a listener whose accept queue is full
 *             (ETIMEDOUT)
 *   abort     connect to that listener, aborted through an AbortSignal after 20 ms
 *             (ABORT_ERR)
 *   destroy   connect to the echo server, write, destroy the socket at once, before the
 *             echo comes back
 * the last five `--faults` of the time in all (5 %), in equal shares.
 *
 * Every `--sample` seconds new connections are held back until every connection under way
 * has finished (the time held back does not count towards the rate), a garbage collection
 * runs when `global.gc` is there (node --expose-gc), and the process is measured at rest:
 * RSS, V8 heap used, external and array buffer memory, open descriptors (/proc/self/fd,
 * less the sockets the reserve holds ready), porter's pools / ports in use / aging, the
 * connections made and the outcomes by code. At the end: the table, and the least-squares
 * slope per minute of each over the second half of the run (the first half is warm-up).
 *
 * It fails (exit 1) on a leak:
 *   - any port in use at a sample: at rest every connection has closed, so every lease
 *     must have been released (exact, no noise);
 *   - descriptors growing by more than --max-fd-slope per minute (default 0.5) over the
 *     second half: at rest the count is exact, so a steady count has a slope of 0; one
 *     descriptor lost per 10 s sampling interval would be 6 per minute, and 0.5 per
 *     minute is less than one lost over the second half of a 10-minute run.
 * RSS and heap slopes are reported, not judged: the allocator and the JIT move them by
 * themselves, and a leak of the core's or the binding's memory without a descriptor or a
 * port would show there first.
 *
 * It runs in a private network namespace when it can (root: its own loopback, port
 * ranges, TIME_WAIT table and nothing left behind on the host), else on the host's
 * loopback. The servers run in child processes.
 *
 *   node --expose-gc bench/soak.mjs [--minutes 10] [--rate 2000] [--faults 0.05]
 *     [--sample 10] [--aging-ms 2000] [--range 20000-29999] [--max-fd-slope 0.5]
 *     [--json FILE] [--no-netns]
 *
 * Needs `npm run build` first. The last line of stdout is one JSON object of the results.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { netnsUnavailableReason } from '../test/helpers/netns.mjs';
import { setupNamespace } from './lib/netns.mjs';
import { FAULTS, KINDS, one, startTargets } from './lib/soak-connections.mjs';
import { MB, machineOf, outcomesOf, pad, printTable, problemsOf, slopesOf } from './lib/soak-report.mjs';
import { readSysctl, sleep } from './lib/util.mjs';

const self = fileURLToPath(import.meta.url);

const { values: flags } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    rate: { type: 'string', default: '2000' },
    faults: { type: 'string', default: '0.05' },
    sample: { type: 'string', default: '10' },
    'aging-ms': { type: 'string', default: '2000' },
    range: { type: 'string', default: '20000-29999' },
    'max-fd-slope': { type: 'string', default: '0.5' },
    json: { type: 'string' },
    'no-netns': { type: 'boolean', default: false },
    'in-netns': { type: 'string' },
  },
});

const number = (name, min) => {
  const v = Number(flags[name]);
  if (!Number.isFinite(v) || v < min) {
    process.stderr.write(`--${name}: expected a number >= ${min}, got ${flags[name]}\n`);
    process.exit(2);
  }
  return v;
};
const config = {
  minutes: number('minutes', 0.1),
  rate: number('rate', 1),
  faults: number('faults', 0),
  sampleSeconds: number('sample', 1),
  agingMs: number('aging-ms', 0),
  maxFdSlope: number('max-fd-slope', 0),
  range: flags.range.split('-').map(Number),
};
if (config.faults > 1 || config.range.length !== 2 || !(config.range[0] <= config.range[1])) {
  process.stderr.write('--faults is a share (0 to 1); --range is FIRST-LAST\n');
  process.exit(2);
}

/** A connection that has not finished after this long is destroyed and counted STUCK. */
const WATCHDOG_MS = 15_000;

function openFds() {
  // Less the descriptor of the directory being read.
  return readdirSync('/proc/self/fd').length - 1;
}

/**
 * The load: connections launched at `config.rate` (a share `config.faults` of them
 * faults), counted by kind and outcome; `hold()` holds new ones back (for a sample), and
 * the time held back does not count towards the rate.
 */
class Load {
  outcomes = Object.fromEntries(KINDS.map((k) => [k, {}]));
  launchedByKind = Object.fromEntries(KINDS.map((k) => [k, 0]));
  launched = 0;
  finished = 0;
  inFlight = 0;
  okConnections = 0;
  /** Connections the schedule dropped: a backlog beyond one second of them is not burst. */
  skipped = 0;
  #held = false;
  #heldMs = 0;
  #t0 = performance.now();
  #ticker;

  constructor(porter, targets) {
    this.porter = porter;
    this.targets = targets;
    // launched = rate x the time running, checked every 5 ms.
    this.#ticker = setInterval(() => {
      if (this.#held) return;
      const due = Math.floor((this.running() / 1000) * config.rate);
      if (due - this.launched > config.rate) {
        this.skipped += due - this.launched - config.rate;
        this.launched = due - config.rate;
      }
      while (this.launched < due) this.#launch();
    }, 5);
  }

  /** Milliseconds since the start, less the time held back. */
  running() {
    return this.runningAt(performance.now());
  }

  /** The running time at `time` (performance.now()), with the time held back before. */
  runningAt(time) {
    return time - this.#t0 - this.#heldMs;
  }

  wallSeconds() {
    return (performance.now() - this.#t0) / 1000;
  }

  /** Holds new connections back until `release(since)`. */
  hold() {
    this.#held = true;
  }

  release(since) {
    this.#heldMs += performance.now() - since;
    this.#held = false;
  }

  stop() {
    clearInterval(this.#ticker);
  }

  #launch() {
    let kind = 'ok';
    if (Math.random() < config.faults) kind = FAULTS[Math.floor(Math.random() * FAULTS.length)];
    this.launched++;
    this.launchedByKind[kind]++;
    this.inFlight++;
    let settled = false;
    const end = (outcome) => {
      if (settled) return;
      settled = true;
      this.outcomes[kind][outcome] = (this.outcomes[kind][outcome] ?? 0) + 1;
      if (kind === 'ok' && outcome === 'ok') this.okConnections++;
      this.inFlight--;
      this.finished++;
    };
    const watchdog = setTimeout(() => end('STUCK'), WATCHDOG_MS);
    one(this.porter, kind, this.targets).then((outcome) => {
      clearTimeout(watchdog);
      end(outcome);
    });
  }
}

/**
 * Measures the process at rest: holds new connections back until every one under way
 * has finished (at most 10 s), collects garbage when it can, reads memory, descriptors,
 * porter's pools and the event loop's delay since `last`.
 */
async function sampleAtRest(load, porter, loop, last, gc) {
  const since = performance.now();
  load.hold();
  const inFlightAtPause = load.inFlight;
  const drainUntil = performance.now() + 10_000;
  while (load.inFlight > 0 && performance.now() < drainUntil) await sleep(2);
  gc?.();
  const mem = process.memoryUsage();
  const summary = porter.poolSummary(0).others;
  const ready = porter.stats().socketReserve.ready;
  // The running time when the sample began (the time held back is not counted yet).
  const t = load.runningAt(since) / 1000;
  const cpu = process.cpuUsage(last.cpu);
  const wall = performance.now();
  const s = {
    t,
    connections: load.okConnections,
    launched: load.launched,
    rate: (load.finished - last.finished) / (t - last.t),
    inFlight: inFlightAtPause,
    notDrained: load.inFlight,
    rss: mem.rss,
    heapUsed: mem.heapUsed,
    heapTotal: mem.heapTotal,
    external: mem.external,
    arrayBuffers: mem.arrayBuffers,
    fds: openFds(),
    reserveReady: ready.ipv4 + ready.ipv6,
    pools: summary.pools,
    inUse: summary.inUse,
    aging: summary.aging,
    loopP99Ms: loop.percentile(99) / 1e6,
    // This process's CPU time over the interval's wall time (held back time included).
    cpuPercent: ((cpu.user + cpu.system) / 1000 / (wall - last.wall)) * 100,
  };
  loop.reset();
  console.log(
    `  ${pad(t.toFixed(0), 4)} s  ${pad(s.connections, 8)} ok  ${pad(s.rate.toFixed(0), 5)}/s  ` +
      `RSS ${(s.rss / MB).toFixed(1)} MB  heap ${(s.heapUsed / MB).toFixed(2)} MB  fds ${s.fds}  ` +
      `in use ${s.inUse}  aging ${s.aging}  pools ${s.pools}${s.notDrained ? `  NOT DRAINED ${s.notDrained}` : ''}`,
  );
  load.release(since);
  return { sample: s, last: { t, finished: load.finished, cpu: process.cpuUsage(), wall } };
}

/** The load for `durationMs` of running time, a sample every `config.sampleSeconds`. */
async function runLoad(porter, targets, durationMs, gc) {
  const load = new Load(porter, targets);
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const samples = [];
  let last = { t: 0, finished: 0, cpu: process.cpuUsage(), wall: performance.now() };
  const sampleMs = config.sampleSeconds * 1000;
  for (let i = 1; i <= Math.max(1, Math.ceil(durationMs / sampleMs)); i++) {
    const next = Math.min(durationMs, i * sampleMs);
    // Timers may fire a little early: wait until the running time is really there.
    while (load.running() < next) await sleep(Math.max(1, next - load.running()));
    const measured = await sampleAtRest(load, porter, loop, last, gc);
    samples.push(measured.sample);
    last = measured.last;
  }
  load.stop();
  return { load, samples };
}

async function main() {
  const { Porter } = await import('@porter/core');
  const durationMs = config.minutes * 60_000;
  const gc = typeof globalThis.gc === 'function' ? globalThis.gc : null;
  console.log(
    `soak: ${config.minutes} min at ${config.rate} connections/s, ${(config.faults * 100).toFixed(1)} % faults ` +
      `(${FAULTS.join(', ')}), agingMs ${config.agingMs}, range ${config.range.join('-')}, ` +
      `a sample every ${config.sampleSeconds} s, ${where}${gc ? '' : ', no gc() (run node with --expose-gc)'}`,
  );
  const servers = await startTargets(durationMs);
  const porter = new Porter({ portRange: config.range, agingMs: config.agingMs });
  const { load, samples } = await runLoad(porter, servers.targets, durationMs, gc);
  const wallSeconds = load.wallSeconds();
  const runningSeconds = load.running() / 1000;
  // Past the aging period, every pool should hold nothing.
  await sleep(config.agingMs + 200);
  const after = porter.poolSummary(0).others;
  const serverCount = await servers.count();
  await servers.stop();

  printTable(samples);
  const slopes = slopesOf(samples, runningSeconds);
  const unexpected = outcomesOf(load.outcomes, load.launchedByKind);
  const achieved = load.finished / runningSeconds;
  const loadavg = os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  console.log(
    `rate: ${achieved.toFixed(1)} connections/s finished over ${runningSeconds.toFixed(0)} s running ` +
      `(${wallSeconds.toFixed(0)} s wall, ${(wallSeconds - runningSeconds).toFixed(1)} s held back for samples), ` +
      `${load.skipped} dropped from the schedule; load average ${loadavg}`,
  );
  const problems = problemsOf({ samples, slopes, after, maxFdSlope: config.maxFdSlope });
  const result = {
    date: new Date().toISOString(),
    where,
    config,
    gc: gc !== null,
    machine: machineOf(readSysctl),
    wallSeconds,
    runningSeconds,
    launched: load.launched,
    finished: load.finished,
    skipped: load.skipped,
    achievedRate: achieved,
    launchedByKind: load.launchedByKind,
    outcomes: load.outcomes,
    unexpected,
    slopes,
    afterAging: after,
    server: serverCount,
    samples,
    problems,
  };
  if (flags.json) writeFileSync(flags.json, `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify({ ...result, samples: undefined }));
  porter.close();
  process.exit(problems.length === 0 ? 0 : 1);
}

// ---------------------------------------------------------------------------------------
// Where it runs: a private network namespace when possible
// ---------------------------------------------------------------------------------------

const netnsId = () => readlinkSync('/proc/self/ns/net');
let where = 'host loopback';
const unavailable =
  flags['in-netns'] === undefined && !flags['no-netns'] ? (netnsUnavailableReason() ?? null) : 'not asked';
if (flags['in-netns'] !== undefined) {
  // The child: refuses to go on in the host's namespace (loopback is up already).
  setupNamespace(flags['in-netns'], null);
  where = 'private network namespace (loopback)';
  await main();
} else if (unavailable === null) {
  const args = [...process.execArgv, self, ...process.argv.slice(2), '--in-netns', netnsId()];
  const shell = 'ip link set lo up && exec "$0" "$@"';
  const child = spawn('unshare', ['-n', '--', 'sh', '-c', shell, process.execPath, ...args], { stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  if (!flags['no-netns']) where = `host loopback (${unavailable})`;
  await main();
}
