/**
 * Connect latency at occupancy: in a private network namespace, each method has N ports
 * for one destination, and with 0 %, 50 %, 90 % and 99 % of them in use, the latency of
 * one more connect (one at a time) is sampled. The methods, all with a capacity of N:
 * - `kernel`: net.connect, the kernel's own choice in its ephemeral range, set to N ports;
 * - `pool`: porter in mode 'pool' on N ports below the ephemeral range (porter binds them);
 * - `kernelMode`: porter in mode 'kernel' on the ephemeral range (the kernel picks them);
 * - `hybrid`: porter in the default mode on N ports of which the lower half lies below the
 *   ephemeral range (porter binds those) and the upper half in it (the kernel picks those,
 *   kept to them with IP_LOCAL_PORT_RANGE).
 * The occupying connections are made by the method being measured, as they would be in
 * real use; each sample is closed with a reset, so no TIME_WAIT stays.
 *
 * Run directly: node bench/latency.mjs [N] [samples].
 */
import { fileURLToPath } from 'node:url';
import { startServers } from '../test/helpers/servers.mjs';
import { drive, netConnect, quiet, resetAll } from './lib/connectors.mjs';
import { fmtRatio, fmtUs, table } from './lib/format.mjs';
import { runIfChild, runInNamespace, setupNamespace } from './lib/netns.mjs';
import { log, quantile, ratio, rotate } from './lib/util.mjs';

const self = fileURLToPath(import.meta.url);
/** The namespace's ephemeral range starts here; mode 'pool' takes N ports from POOL_FIRST. */
const EPHEMERAL_FIRST = 20000;
const POOL_FIRST = 10000;
export const LEVELS = [0, 0.5, 0.9, 0.99];
export const METHODS = ['kernel', 'pool', 'kernelMode', 'hybrid'];

export async function runLatency({ quick = false, ports, samples } = {}) {
  const n = ports ?? (quick ? 2000 : 4000);
  const range = [EPHEMERAL_FIRST, EPHEMERAL_FIRST + n - 1];
  const config = { range, samples: samples ?? (quick ? 300 : 800), rounds: quick ? 2 : 4, levels: LEVELS };
  log(`latency: ${n} ports, ${config.samples} samples per method and level`);
  const out = await runInNamespace(self, config, { timeoutMs: 300_000 });
  if (out.levels) {
    const at90 = out.levels.find((l) => l.occupancy === 0.9);
    // The headline figure: porter binding its own ports against the kernel's search.
    out.latency_p99_ratio_at_90pct = at90 ? ratio(at90.pool.p99Us, at90.kernel.p99Us) : null;
    out.latency_p50_ratio_at_90pct = at90 ? ratio(at90.pool.p50Us, at90.kernel.p50Us) : null;
  }
  return out;
}

/** Sequential samples of connect latency, in microseconds. */
async function sample(connect, count, warmup) {
  const values = [];
  for (let i = 0; i < count + warmup; i++) {
    const t0 = performance.now();
    const socket = await connect();
    const us = (performance.now() - t0) * 1000;
    if (i >= warmup) values.push(us);
    await resetAll([socket]);
  }
  return values;
}

async function child(config) {
  const { range, samples, rounds, levels, hostNetns } = config;
  const n = range[1] - range[0] + 1;
  setupNamespace(hostNetns, null);
  // The server listens on a port of the default ephemeral range, away from every range here.
  const server = await startServers({ mode: 'echo', backlog: 4096 });
  setupNamespace(hostNetns, range);
  const target = { host: '127.0.0.1', port: server.ports[0] };
  const { Porter } = await import('@porter/core');
  const half = Math.floor(n / 2);
  const porters = {
    // servicePorts 'use': all N ports, as the other methods have (by default porter leaves
    // out those /etc/services names).
    pool: new Porter({ mode: 'pool', servicePorts: 'use', portRange: [POOL_FIRST, POOL_FIRST + n - 1] }),
    kernelMode: new Porter({ mode: 'kernel', portRange: range }),
    hybrid: new Porter({ portRange: [range[0] - half, range[0] + (n - half) - 1] }),
  };
  const methods = {
    kernel: () => netConnect(target),
    ...Object.fromEntries(Object.entries(porters).map(([k, p]) => [k, quiet(() => p.connect(target))])),
  };
  const result = {
    ports: n,
    range,
    samplesPerMethod: samples,
    rounds,
    capacity: Object.fromEntries(Object.entries(porters).map(([k, p]) => [k, p.capacity()])),
    levels: [],
  };
  const values = levels.map(() => Object.fromEntries(METHODS.map((k) => [k, []])));
  const fillErrors = levels.map(() => ({}));
  // Rounds go up the levels, then down, and so on; the methods take turns going first.
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? levels.map((_, i) => i) : levels.map((_, i) => levels.length - 1 - i);
    for (const li of order) {
      const held = Math.round(levels[li] * n);
      for (const name of rotate(METHODS, round + li)) {
        const fill = await drive(methods[name], [target], { concurrency: 32, total: held, maxAttempts: held + 100 });
        for (const [code, count] of Object.entries(fill.errors)) {
          fillErrors[li][`${name}:${code}`] = (fillErrors[li][`${name}:${code}`] ?? 0) + count;
        }
        values[li][name].push(...(await sample(methods[name], Math.ceil(samples / rounds), 10)));
        await resetAll(fill.sockets);
      }
    }
  }
  const summary = (v) => ({
    p50Us: quantile(v, 0.5),
    p90Us: quantile(v, 0.9),
    p99Us: quantile(v, 0.99),
    maxUs: Math.max(...v),
    samples: v.length,
  });
  levels.forEach((occupancy, li) => {
    const level = { occupancy, held: Math.round(occupancy * n), fillErrors: fillErrors[li] };
    for (const k of METHODS) level[k] = summary(values[li][k]);
    log(
      `  ${Math.round(occupancy * 100)}%: ${METHODS.map((k) => `${k} p50 ${level[k].p50Us.toFixed(0)} us p99 ${level[k].p99Us.toFixed(0)} us`).join('; ')}`,
    );
    result.levels.push(level);
  });
  result.porterStats = Object.fromEntries(
    Object.entries(porters).map(([k, p]) => {
      const s = p.stats();
      return [
        k,
        { retries: s.retries, kernelPicks: s.kernelPicks, kernelFallbacks: s.kernelFallbacks, exhausted: s.exhausted },
      ];
    }),
  );
  await server.stop();
  return result;
}

const LABELS = {
  kernel: 'net.connect (kernel)',
  pool: "porter 'pool'",
  kernelMode: "porter 'kernel'",
  hybrid: 'porter default',
};

/** This benchmark's part of docs/benchmarks.md (lines, without the heading). */
export function latencyReport(lat, chartFile) {
  const out = [];
  const n = lat.ports;
  out.push(
    `In a private network namespace, each method has N = ${n} ports for one destination; with 0 %, 50 %, 90 % and ` +
      '99 % of them in use (held by the method being measured), the latency of one more connect, one at a time, ' +
      `${lat.samplesPerMethod} samples per method and level, in ${lat.rounds ?? 2} rounds that go up the levels and ` +
      'back down, the methods taking turns to go first. Each sample is closed with a reset, so no TIME_WAIT stays ' +
      `behind. The namespace's ephemeral range is ${lat.range[0]}-${lat.range[1]} (N ports): \`net.connect\` and ` +
      "mode 'kernel' search it; mode 'pool' binds N ports below it; the default mode has the lower half of its N " +
      'ports below it (porter binds those) and the upper half in it (the kernel picks those, kept to them with ' +
      'IP_LOCAL_PORT_RANGE), so past 50 % it is the kernel that searches.',
  );
  out.push('');
  out.push(`![connect latency p50 and p99 against occupancy](${chartFile})`);
  out.push('');
  const methods = METHODS.filter((k) => lat.levels[0]?.[k]);
  out.push(
    table(
      ['in use', ...methods.flatMap((k) => [`${LABELS[k]} p50`, 'p99'])],
      lat.levels.map((l) => [
        `${Math.round(l.occupancy * 100)} % (${l.held})`,
        ...methods.flatMap((k) => [fmtUs(l[k].p50Us), fmtUs(l[k].p99Us)]),
      ]),
    ),
  );
  out.push('');
  out.push(
    table(
      ['in use', ...methods.filter((k) => k !== 'kernel').map((k) => `p99 ${LABELS[k]} / kernel`)],
      lat.levels.map((l) => [
        `${Math.round(l.occupancy * 100)} %`,
        ...methods.filter((k) => k !== 'kernel').map((k) => fmtRatio(l[k].p99Us / l.kernel.p99Us)),
      ]),
    ),
  );
  out.push('');
  out.push(
    `latency_p99_ratio_at_90pct = porter ('pool') p99 / kernel p99 at 90 % = **${fmtRatio(lat.latency_p99_ratio_at_90pct)}** ` +
      `(p50: ${fmtRatio(lat.latency_p50_ratio_at_90pct)}). A p99 of ${lat.samplesPerMethod} samples on a shared ` +
      'machine is a noisy figure; the p50 columns are the steadier ones. The kernel searches its range for a port ' +
      'free towards the destination, which takes longer the fuller the range; porter takes the next port of its ' +
      "pool. Mode 'kernel' pays the kernel's search plus porter's bookkeeping; the default mode pays porter's cost " +
      'while its own half lasts, then the search in a window half the size.',
  );
  if (lat.porterStats) out.push('', `Counters of the Porters: ${JSON.stringify(lat.porterStats)}.`);
  return out;
}

if (!runIfChild(child) && process.argv[1] === self) {
  const r = await runLatency({
    ports: Number(process.argv[2]) || undefined,
    samples: Number(process.argv[3]) || undefined,
  });
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
