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
import { fork, spawn } from 'node:child_process';
import { readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { namespaceUnavailable, setupNamespace } from './lib/netns.mjs';
import { readSysctl, sleep } from './lib/util.mjs';

const self = fileURLToPath(import.meta.url);
const serverPath = fileURLToPath(new URL('./lib/soak-server.mjs', import.meta.url));

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

// ---------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------

function startServers() {
  return new Promise((resolve, reject) => {
    const child = fork(serverPath, ['serve'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const waiters = [];
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`soak server exited with ${code} before listening`)));
    child.on('message', (msg) => {
      if (msg.ports) {
        child.removeAllListeners('exit');
        resolve({
          ports: msg.ports,
          count: () =>
            new Promise((res) => {
              waiters.push(res);
              child.send({ cmd: 'count' });
            }),
          stop: () =>
            new Promise((res) => {
              if (child.exitCode !== null) return res();
              child.once('exit', () => res());
              child.send({ cmd: 'exit' });
              setTimeout(() => child.kill('SIGKILL'), 2000).unref();
            }),
        });
      } else if ('accepted' in msg) {
        waiters.shift()?.(msg);
      }
    });
  });
}

/** A listener that never accepts, in its own (blocked) process, for `lifetimeMs`. */
function startNoAccept(lifetimeMs) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [serverPath, 'no-accept', String(lifetimeMs)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`no-accept listener exited with ${code}`)));
    child.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      child.removeAllListeners('exit');
      resolve({ port: JSON.parse(out.slice(0, nl)).port, stop: () => child.kill('SIGKILL') });
    });
  });
}

/**
 * Plain connections to a listener that never accepts, until one stays pending: its
 * accept queue is then full, and every later SYN is dropped. Returns the connections
 * that made it into the queue (kept open for the whole run).
 */
async function fillAcceptQueue(port) {
  const sockets = [];
  for (let i = 0; i < 16; i++) {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.on('error', () => {});
    const connected = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), 250);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    if (!connected) {
      socket.destroy();
      return sockets;
    }
    sockets.push(socket);
  }
  throw new Error(`the accept queue of port ${port} did not fill`);
}

// ---------------------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------------------

const KINDS = ['ok', 'refused', 'reset', 'timeout', 'abort', 'destroy'];
const FAULTS = KINDS.slice(1);
/** What each kind of connection should end with. */
const EXPECTED = {
  ok: 'ok',
  refused: 'ECONNREFUSED',
  reset: 'ECONNRESET',
  timeout: 'ETIMEDOUT',
  abort: 'ABORT_ERR',
  destroy: 'destroyed',
};
const PAYLOAD = Buffer.alloc(64, 'porter soak ');
/** A connection that has not finished after this long is destroyed and counted STUCK. */
const WATCHDOG_MS = 15_000;

/** Resolves once `socket` has closed; `onError` sees its error, if any. */
function closed(socket, onError) {
  return new Promise((resolve) => {
    socket.on('error', onError);
    if (socket.closed) resolve();
    else socket.once('close', resolve);
  });
}

/** One connection of `kind`; resolves to its outcome (a code, 'ok' or 'destroyed'). */
async function one(porter, kind, targets) {
  const host = '127.0.0.1';
  let code;
  const onError = (err) => {
    code ??= err.code ?? err.name;
  };
  try {
    switch (kind) {
      case 'ok': {
        const socket = await porter.connect({ host, port: targets.echo, noDelay: true, timeout: 5000 });
        const done = closed(socket, onError);
        let got = 0;
        socket.on('data', (chunk) => {
          got += chunk.length;
          if (got >= PAYLOAD.length) socket.end();
        });
        socket.write(PAYLOAD);
        await done;
        if (code === undefined && got !== PAYLOAD.length) code = `SHORT_ECHO_${got}`;
        return code ?? 'ok';
      }
      case 'refused':
        (await porter.connect({ host, port: targets.refused, timeout: 5000 })).destroy();
        return 'CONNECTED';
      case 'reset': {
        const socket = await porter.connect({ host, port: targets.reset, timeout: 5000 });
        const done = closed(socket, onError);
        socket.write(PAYLOAD);
        await done;
        return code ?? 'NO_RESET';
      }
      case 'timeout':
        (await porter.connect({ host, port: targets.noAccept, timeout: 100 })).destroy();
        return 'CONNECTED';
      case 'abort': {
        const controller = new AbortController();
        const timer = setTimeout(() => controller.abort(), 20);
        try {
          (await porter.connect({ host, port: targets.noAccept, signal: controller.signal })).destroy();
        } finally {
          clearTimeout(timer);
        }
        return 'CONNECTED';
      }
      case 'destroy': {
        const socket = await porter.connect({ host, port: targets.echo, timeout: 5000 });
        const done = closed(socket, onError);
        socket.write(PAYLOAD);
        socket.destroy();
        await done;
        return code ?? 'destroyed';
      }
      default:
        throw new Error(`unknown kind ${kind}`);
    }
  } catch (err) {
    return err?.code ?? err?.name ?? 'THROWN';
  }
}

// ---------------------------------------------------------------------------------------
// Measures
// ---------------------------------------------------------------------------------------

function openFds() {
  // Less the descriptor of the directory being read.
  return readdirSync('/proc/self/fd').length - 1;
}

/** Least-squares slope of `ys` against `xs` (per unit of x); NaN with fewer than 2 points. */
function slope(xs, ys) {
  const n = xs.length;
  if (n < 2) return Number.NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
  }
  return sxx === 0 ? Number.NaN : sxy / sxx;
}

const MB = 2 ** 20;
const pad = (v, n) => String(v).padStart(n);

function printTable(samples) {
  const header = [
    '    t s',
    '   conns',
    ' rate/s',
    'in flight',
    '  RSS MB',
    ' heap MB',
    '  ext MB',
    '  ab MB',
    ' fds',
    'ready',
    'pools',
    'in use',
    'aging',
    'loop p99 ms',
    'CPU %',
  ];
  console.log(header.join(' '));
  for (const s of samples) {
    console.log(
      [
        pad(s.t.toFixed(0), 7),
        pad(s.connections, 8),
        pad(s.rate.toFixed(0), 7),
        pad(s.inFlight, 9),
        pad((s.rss / MB).toFixed(1), 8),
        pad((s.heapUsed / MB).toFixed(2), 8),
        pad((s.external / MB).toFixed(2), 8),
        pad((s.arrayBuffers / MB).toFixed(2), 7),
        pad(s.fds, 4),
        pad(s.reserveReady, 5),
        pad(s.pools, 5),
        pad(s.inUse, 6),
        pad(s.aging, 5),
        pad(s.loopP99Ms.toFixed(1), 11),
        pad(s.cpuPercent.toFixed(0), 5),
      ].join(' '),
    );
  }
}

// ---------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------

async function main() {
  const { Porter } = await import('@porter/core');
  const durationMs = config.minutes * 60_000;
  const gc = typeof globalThis.gc === 'function' ? globalThis.gc : null;
  console.log(
    `soak: ${config.minutes} min at ${config.rate} connections/s, ${(config.faults * 100).toFixed(1)} % faults ` +
      `(${FAULTS.join(', ')}), agingMs ${config.agingMs}, range ${config.range.join('-')}, ` +
      `a sample every ${config.sampleSeconds} s, ${where}${gc ? '' : ', no gc() (run node with --expose-gc)'}`,
  );
  const servers = await startServers();
  const noAccept = await startNoAccept(durationMs + 120_000);
  const fillers = await fillAcceptQueue(noAccept.port);
  const targets = { ...servers.ports, noAccept: noAccept.port };
  const porter = new Porter({ portRange: config.range, agingMs: config.agingMs });

  const outcomes = Object.fromEntries(KINDS.map((k) => [k, {}]));
  let launched = 0;
  let finished = 0;
  let inFlight = 0;
  let okConnections = 0;
  let paused = false;
  let pausedMs = 0;
  const launchedByKind = Object.fromEntries(KINDS.map((k) => [k, 0]));

  const launch = () => {
    let kind = 'ok';
    if (Math.random() < config.faults) kind = FAULTS[Math.floor(Math.random() * FAULTS.length)];
    launched++;
    launchedByKind[kind]++;
    inFlight++;
    let settled = false;
    const watchdog = setTimeout(() => {
      if (settled) return;
      settled = true;
      outcomes[kind].STUCK = (outcomes[kind].STUCK ?? 0) + 1;
      inFlight--;
      finished++;
    }, WATCHDOG_MS);
    one(porter, kind, targets).then((outcome) => {
      clearTimeout(watchdog);
      if (settled) return;
      settled = true;
      outcomes[kind][outcome] = (outcomes[kind][outcome] ?? 0) + 1;
      if (kind === 'ok' && outcome === 'ok') okConnections++;
      inFlight--;
      finished++;
    });
  };

  // The schedule: launched = rate x (time running, less the time held back), checked
  // every 5 ms; a backlog beyond one second of connections is dropped, not burst.
  const t0 = performance.now();
  let skipped = 0;
  let pauseStarted = 0;
  const running = () => performance.now() - t0 - pausedMs;
  const ticker = setInterval(() => {
    if (paused) return;
    const due = Math.floor((running() / 1000) * config.rate);
    if (due - launched > config.rate) {
      skipped += due - launched - config.rate;
      launched = due - config.rate;
    }
    while (launched < due) launch();
  }, 5);

  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const samples = [];
  let last = { t: 0, finished: 0, cpu: process.cpuUsage(), wall: performance.now() };

  /** Holds new connections back until every one under way has finished, then measures. */
  async function sample() {
    paused = true;
    pauseStarted = performance.now();
    const inFlightAtPause = inFlight;
    const drainUntil = performance.now() + 10_000;
    while (inFlight > 0 && performance.now() < drainUntil) await sleep(2);
    gc?.();
    const mem = process.memoryUsage();
    const summary = porter.poolSummary(0).others;
    const stats = porter.stats();
    // The running time when the sample began (the time held back is not counted yet).
    const t = (pauseStarted - t0 - pausedMs) / 1000;
    const cpu = process.cpuUsage(last.cpu);
    const wall = performance.now();
    const s = {
      t,
      connections: okConnections,
      launched: launched,
      rate: (finished - last.finished) / (t - last.t),
      inFlight: inFlightAtPause,
      notDrained: inFlight,
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      heapTotal: mem.heapTotal,
      external: mem.external,
      arrayBuffers: mem.arrayBuffers,
      fds: openFds(),
      reserveReady: stats.socketReserve.ready.ipv4 + stats.socketReserve.ready.ipv6,
      pools: summary.pools,
      inUse: summary.inUse,
      aging: summary.aging,
      loopP99Ms: loop.percentile(99) / 1e6,
      // This process's CPU time over the interval's wall time (held back time included).
      cpuPercent: ((cpu.user + cpu.system) / 1000 / (wall - last.wall)) * 100,
    };
    loop.reset();
    last = { t, finished, cpu: process.cpuUsage(), wall };
    samples.push(s);
    console.log(
      `  ${pad(t.toFixed(0), 4)} s  ${pad(okConnections, 8)} ok  ${pad(s.rate.toFixed(0), 5)}/s  ` +
        `RSS ${(s.rss / MB).toFixed(1)} MB  heap ${(s.heapUsed / MB).toFixed(2)} MB  fds ${s.fds}  ` +
        `in use ${s.inUse}  aging ${s.aging}  pools ${s.pools}${s.notDrained ? `  NOT DRAINED ${s.notDrained}` : ''}`,
    );
    pausedMs += performance.now() - pauseStarted;
    paused = false;
  }

  const sampleMs = config.sampleSeconds * 1000;
  for (let i = 1; i <= Math.max(1, Math.ceil(durationMs / sampleMs)); i++) {
    const next = Math.min(durationMs, i * sampleMs);
    // Timers may fire a little early: wait until the running time is really there.
    while (running() < next) await sleep(Math.max(1, next - running()));
    await sample();
  }
  clearInterval(ticker);
  const wallSeconds = (performance.now() - t0) / 1000;
  const runningSeconds = running() / 1000;
  // Past the aging period, every pool should hold nothing.
  await sleep(config.agingMs + 200);
  const after = porter.poolSummary(0).others;
  const serverCount = await servers.count();

  for (const s of fillers) s.destroy();
  noAccept.stop();
  await servers.stop();

  printTable(samples);
  const half = samples.filter((s) => s.t >= runningSeconds / 2);
  const perMinute = (key, f = (s) => s[key]) =>
    slope(
      half.map((s) => s.t / 60),
      half.map(f),
    );
  const slopes = {
    rssMBPerMin: perMinute('rss') / MB,
    heapUsedMBPerMin: perMinute('heapUsed') / MB,
    externalMBPerMin: perMinute('external') / MB,
    fdsPerMin: perMinute('fds', (s) => s.fds - s.reserveReady),
    inUsePerMin: perMinute('inUse'),
    agingPerMin: perMinute('aging'),
  };
  console.log(
    `slopes per minute over the second half (${half.length} samples from t = ${half[0]?.t.toFixed(0)} s): ` +
      `RSS ${slopes.rssMBPerMin.toFixed(3)} MB, heap ${slopes.heapUsedMBPerMin.toFixed(3)} MB, ` +
      `external ${slopes.externalMBPerMin.toFixed(3)} MB, fds ${slopes.fdsPerMin.toFixed(3)} ` +
      `(less the reserve's ready sockets), in use ${slopes.inUsePerMin.toFixed(3)}, aging ${slopes.agingPerMin.toFixed(1)}`,
  );
  const unexpected = {};
  for (const kind of KINDS) {
    for (const [code, n] of Object.entries(outcomes[kind])) {
      if (code !== EXPECTED[kind]) unexpected[`${kind}:${code}`] = n;
    }
  }
  console.log('outcomes by kind:');
  for (const kind of KINDS) {
    const entries = Object.entries(outcomes[kind])
      .map(([code, n]) => `${code} ${n}`)
      .join(', ');
    console.log(`  ${kind.padEnd(8)} launched ${pad(launchedByKind[kind], 8)}: ${entries || 'none'}`);
  }
  const achieved = finished / runningSeconds;
  console.log(
    `rate: ${achieved.toFixed(1)} connections/s finished over ${runningSeconds.toFixed(0)} s running ` +
      `(${wallSeconds.toFixed(0)} s wall, ${(wallSeconds - runningSeconds).toFixed(1)} s held back for samples), ` +
      `${skipped} dropped from the schedule; load average ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
  );

  const problems = [];
  const busy = samples.filter((s) => s.inUse > 0);
  if (busy.length > 0) {
    problems.push(`ports in use at rest in ${busy.length} samples (first at t = ${busy[0].t.toFixed(0)} s)`);
  }
  if (!(slopes.fdsPerMin <= config.maxFdSlope)) {
    problems.push(`descriptors grow by ${slopes.fdsPerMin.toFixed(3)} per minute (limit ${config.maxFdSlope})`);
  }
  if (after.inUse !== 0 || after.aging !== 0) {
    problems.push(`past the aging period at the end: ${after.inUse} in use, ${after.aging} aging`);
  }
  const notDrained = samples.filter((s) => s.notDrained > 0);
  if (notDrained.length > 0) problems.push(`connections still under way 10 s into ${notDrained.length} samples`);
  console.log(problems.length === 0 ? 'no leak found' : `LEAK: ${problems.join('; ')}`);

  const result = {
    date: new Date().toISOString(),
    where,
    config,
    gc: gc !== null,
    machine: {
      cpus: os.cpus().length,
      cpu: os.cpus()[0]?.model?.trim(),
      kernel: `${os.type()} ${os.release()}`,
      node: process.version,
      loadavgAtEnd: os.loadavg(),
      somaxconn: readSysctl('net/core/somaxconn'),
      tcpTwReuse: readSysctl('net/ipv4/tcp_tw_reuse'),
    },
    wallSeconds,
    runningSeconds,
    launched,
    finished,
    skipped,
    achievedRate: achieved,
    launchedByKind,
    outcomes,
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
const unavailable = flags['in-netns'] === undefined && !flags['no-netns'] ? namespaceUnavailable() : 'not asked';
if (flags['in-netns'] !== undefined) {
  // The child: refuses to go on in the host's namespace, brings loopback up.
  setupNamespace(flags['in-netns']);
  where = 'private network namespace (loopback)';
  await main();
} else if (unavailable === null) {
  const args = [...process.execArgv, self, ...process.argv.slice(2), '--in-netns', netnsId()];
  const child = spawn('unshare', ['-n', '--', process.execPath, ...args], { stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  if (!flags['no-netns']) where = `host loopback (${unavailable})`;
  await main();
}
