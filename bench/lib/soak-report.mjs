/**
 * What bench/soak.mjs prints and judges once its run is over: the samples as a table,
 * the slopes over the second half, the outcomes by kind, and the leaks found.
 */
import os from 'node:os';
import { EXPECTED, KINDS } from './soak-connections.mjs';

export const MB = 2 ** 20;
export const pad = (v, n) => String(v).padStart(n);

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

const COLUMNS = [
  ['    t s', (s) => pad(s.t.toFixed(0), 7)],
  ['   conns', (s) => pad(s.connections, 8)],
  [' rate/s', (s) => pad(s.rate.toFixed(0), 7)],
  ['in flight', (s) => pad(s.inFlight, 9)],
  ['  RSS MB', (s) => pad((s.rss / MB).toFixed(1), 8)],
  [' heap MB', (s) => pad((s.heapUsed / MB).toFixed(2), 8)],
  ['  ext MB', (s) => pad((s.external / MB).toFixed(2), 8)],
  ['  ab MB', (s) => pad((s.arrayBuffers / MB).toFixed(2), 7)],
  [' fds', (s) => pad(s.fds, 4)],
  ['ready', (s) => pad(s.reserveReady, 5)],
  ['pools', (s) => pad(s.pools, 5)],
  ['in use', (s) => pad(s.inUse, 6)],
  ['aging', (s) => pad(s.aging, 5)],
  ['loop p99 ms', (s) => pad(s.loopP99Ms.toFixed(1), 11)],
  ['CPU %', (s) => pad(s.cpuPercent.toFixed(0), 5)],
];

export function printTable(samples) {
  console.log(COLUMNS.map(([header]) => header).join(' '));
  for (const s of samples) console.log(COLUMNS.map(([, cell]) => cell(s)).join(' '));
}

/** The slope per minute of each measure over the second half of the run. */
export function slopesOf(samples, runningSeconds) {
  const half = samples.filter((s) => s.t >= runningSeconds / 2);
  const perMinute = (f) =>
    slope(
      half.map((s) => s.t / 60),
      half.map(f),
    );
  const slopes = {
    rssMBPerMin: perMinute((s) => s.rss) / MB,
    heapUsedMBPerMin: perMinute((s) => s.heapUsed) / MB,
    externalMBPerMin: perMinute((s) => s.external) / MB,
    fdsPerMin: perMinute((s) => s.fds - s.reserveReady),
    inUsePerMin: perMinute((s) => s.inUse),
    agingPerMin: perMinute((s) => s.aging),
  };
  console.log(
    `slopes per minute over the second half (${half.length} samples from t = ${half[0]?.t.toFixed(0)} s): ` +
      `RSS ${slopes.rssMBPerMin.toFixed(3)} MB, heap ${slopes.heapUsedMBPerMin.toFixed(3)} MB, ` +
      `external ${slopes.externalMBPerMin.toFixed(3)} MB, fds ${slopes.fdsPerMin.toFixed(3)} ` +
      `(less the reserve's ready sockets), in use ${slopes.inUsePerMin.toFixed(3)}, aging ${slopes.agingPerMin.toFixed(1)}`,
  );
  return slopes;
}

/** Prints the outcomes by kind; returns those a kind should not end with. */
export function outcomesOf(outcomes, launchedByKind) {
  const unexpected = {};
  console.log('outcomes by kind:');
  for (const kind of KINDS) {
    for (const [code, n] of Object.entries(outcomes[kind])) {
      if (code !== EXPECTED[kind]) unexpected[`${kind}:${code}`] = n;
    }
    const entries = Object.entries(outcomes[kind])
      .map(([code, n]) => `${code} ${n}`)
      .join(', ');
    console.log(`  ${kind.padEnd(8)} launched ${pad(launchedByKind[kind], 8)}: ${entries || 'none'}`);
  }
  return unexpected;
}

/** The leaks found: ports in use at rest, descriptors growing, ports left past aging. */
export function problemsOf({ samples, slopes, after, maxFdSlope }) {
  const problems = [];
  const busy = samples.filter((s) => s.inUse > 0);
  if (busy.length > 0) {
    problems.push(`ports in use at rest in ${busy.length} samples (first at t = ${busy[0].t.toFixed(0)} s)`);
  }
  if (!(slopes.fdsPerMin <= maxFdSlope)) {
    problems.push(`descriptors grow by ${slopes.fdsPerMin.toFixed(3)} per minute (limit ${maxFdSlope})`);
  }
  if (after.inUse !== 0 || after.aging !== 0) {
    problems.push(`past the aging period at the end: ${after.inUse} in use, ${after.aging} aging`);
  }
  const notDrained = samples.filter((s) => s.notDrained > 0);
  if (notDrained.length > 0) problems.push(`connections still under way 10 s into ${notDrained.length} samples`);
  console.log(problems.length === 0 ? 'no leak found' : `LEAK: ${problems.join('; ')}`);
  return problems;
}

/** The machine, for the result. */
export function machineOf(readSysctl) {
  return {
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model?.trim(),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    loadavgAtEnd: os.loadavg(),
    somaxconn: readSysctl('net/core/somaxconn'),
    tcpTwReuse: readSysctl('net/ipv4/tcp_tw_reuse'),
  };
}
