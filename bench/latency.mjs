/**
 * Connect latency at occupancy: in a private network namespace whose port range holds N
 * ports, with 0 %, 50 %, 90 % and 99 % of them in use to one destination, the latency of
 * one more connect (one at a time), porter beside the kernel's own choice (connect()
 * without bind). The occupying connections are made by the method being measured, as
 * they would be in real use; each sample is closed with a reset, so no TIME_WAIT stays.
 *
 * Run directly: node bench/latency.mjs [N] [samples].
 */
import { fileURLToPath } from 'node:url';
import { drive, netConnect, quiet, resetAll } from './lib/connectors.mjs';
import { runIfChild, runInNamespace, setupNamespace } from './lib/netns.mjs';
import { startServer } from './lib/spawn-server.mjs';
import { log, quantile, ratio, rotate } from './lib/util.mjs';

const self = fileURLToPath(import.meta.url);
const RANGE_FIRST = 20000;
export const LEVELS = [0, 0.5, 0.9, 0.99];

export async function runLatency({ quick = false, ports, samples } = {}) {
  const n = ports ?? (quick ? 2000 : 4000);
  const range = [RANGE_FIRST, RANGE_FIRST + n - 1];
  const config = { range, samples: samples ?? (quick ? 400 : 1000), rounds: quick ? 2 : 4, levels: LEVELS };
  log(`latency: ${n} ports, ${config.samples} samples per method and level`);
  const out = await runInNamespace(self, config, { timeoutMs: 300_000 });
  if (out.levels) {
    const at90 = out.levels.find((l) => l.occupancy === 0.9);
    out.latency_p99_ratio_at_90pct = at90 ? ratio(at90.porter.p99Us, at90.kernel.p99Us) : null;
    out.latency_p50_ratio_at_90pct = at90 ? ratio(at90.porter.p50Us, at90.kernel.p50Us) : null;
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
  const server = await startServer({ count: 1, mode: 'keep', host: '127.0.0.1' });
  setupNamespace(hostNetns, range);
  const target = { host: '127.0.0.1', port: server.ports[0] };
  const { Porter } = await import('@porter/core');
  const porter = new Porter({ portRange: range });
  const methods = {
    porter: quiet(() => porter.connect(target)),
    kernel: () => netConnect(target),
  };
  const result = { ports: n, range, samplesPerMethod: samples, rounds, levels: [] };
  const values = levels.map(() => ({ porter: [], kernel: [] }));
  const fillErrors = levels.map(() => ({}));
  // Rounds go up the levels, then down, and so on; the methods take turns going first.
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? levels.map((_, i) => i) : levels.map((_, i) => levels.length - 1 - i);
    for (const li of order) {
      const held = Math.round(levels[li] * n);
      for (const name of rotate(Object.keys(methods), round + li)) {
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
    const level = {
      occupancy,
      held: Math.round(occupancy * n),
      porter: summary(values[li].porter),
      kernel: summary(values[li].kernel),
      fillErrors: fillErrors[li],
    };
    log(
      `  ${Math.round(occupancy * 100)}%: porter p50 ${level.porter.p50Us.toFixed(0)} us p99 ${level.porter.p99Us.toFixed(0)} us;` +
        ` kernel p50 ${level.kernel.p50Us.toFixed(0)} us p99 ${level.kernel.p99Us.toFixed(0)} us`,
    );
    result.levels.push(level);
  });
  const stats = porter.stats();
  result.porterStats = { retries: stats.retries, kernelFallbacks: stats.kernelFallbacks, exhausted: stats.exhausted };
  await server.stop();
  return result;
}

if (!runIfChild(child) && process.argv[1] === self) {
  const r = await runLatency({
    ports: Number(process.argv[2]) || undefined,
    samples: Number(process.argv[3]) || undefined,
  });
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
