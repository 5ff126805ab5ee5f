/**
 * Memory per open connection: in a private network namespace, a process opens and holds
 * 15,000 connections to one destination (a listener in another process that never
 * accepts: its accept queue holds them) with porter.connect (default options), another
 * with net.connect; each reports how much its RSS and its JavaScript heap grew, after a
 * garbage collection, per connection. The ratio is porter's over net.connect's, measured
 * in the same run, one method after the other, alternating which goes first.
 *
 * Run directly: node bench/connection-memory.mjs [--quick]. Last line: JSON.
 */
import { writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { netnsUnavailableReason } from '../test/helpers/netns.mjs';
import { run } from '../test/helpers/run.mjs';
import { startServers } from '../test/helpers/servers.mjs';
import { fmtRatio, table } from './lib/format.mjs';
import { runIfChild, runInNamespace, setupNamespace } from './lib/netns.mjs';
import { lastJsonLine, log, median, tail } from './lib/util.mjs';

const self = fileURLToPath(import.meta.url);

const gc = async () => {
  for (let i = 0; i < 3; i++) {
    globalThis.gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
};

/** One method in a process of its own: holds `count` connections, reports its growth. */
async function holder(method, port, count) {
  const { Porter } = await import('@porter/core');
  const porter = new Porter();
  const open =
    method === 'porter'
      ? () => porter.connect({ host: '127.0.0.1', port })
      : () =>
          new Promise((resolve, reject) => {
            const s = netConnect({ host: '127.0.0.1', port });
            s.once('connect', () => resolve(s)).once('error', reject);
          });
  // Warm-up: the addon, its socket reserve, the JIT.
  const warm = [];
  for (let i = 0; i < 500; i++) warm.push(await open());
  for (const s of warm) s.resetAndDestroy();
  await new Promise((resolve) => setTimeout(resolve, 100));
  await gc();
  const before = process.memoryUsage();
  const held = [];
  for (let i = 0; i < count; i++) held.push(await open());
  await gc();
  const after = process.memoryUsage();
  const result = {
    method,
    held: held.length,
    rssPerConnection: (after.rss - before.rss) / held.length,
    heapPerConnection: (after.heapUsed - before.heapUsed) / held.length,
  };
  for (const s of held) s.resetAndDestroy();
  return result;
}

async function runHolder(method, port, count) {
  const res = await run(process.execPath, ['--expose-gc', self, '--holder', method, String(port), String(count)]);
  const json = lastJsonLine(res.stdout);
  return res.code === 0 && json ? json : { method, error: `exit ${res.code}: ${tail(res.stderr, 3)}` };
}

async function child(config) {
  setupNamespace(config.hostNetns, null);
  writeFileSync('/proc/sys/net/core/somaxconn', '65535\n');
  const rounds = [];
  for (let round = 0; round < config.rounds; round++) {
    const order = round % 2 === 0 ? ['porter', 'net'] : ['net', 'porter'];
    const results = {};
    for (const method of order) {
      // A fresh listener each time: its accept queue holds only this run's connections.
      const listener = await startServers({ mode: 'no-accept', backlog: 65535, lifetimeMs: 600_000 });
      results[method] = await runHolder(method, listener.ports[0], config.count);
      await listener.stop();
    }
    log(
      `  round ${round + 1}: ${Object.values(results)
        .map((r) =>
          r.error
            ? `${r.method} ${r.error}`
            : `${r.method} ${r.rssPerConnection.toFixed(0)} B RSS, ${r.heapPerConnection.toFixed(0)} B heap`,
        )
        .join('; ')}`,
    );
    rounds.push(results);
  }
  const ok = rounds.filter((r) => !r.porter.error && !r.net.error);
  const med = (f) => (ok.length ? median(ok.map(f)) : null);
  return {
    count: config.count,
    rounds,
    porterRssPerConnection: med((r) => r.porter.rssPerConnection),
    netRssPerConnection: med((r) => r.net.rssPerConnection),
    porterHeapPerConnection: med((r) => r.porter.heapPerConnection),
    netHeapPerConnection: med((r) => r.net.heapPerConnection),
    rssRatio: med((r) => r.porter.rssPerConnection / r.net.rssPerConnection),
    heapRatio: med((r) => r.porter.heapPerConnection / r.net.heapPerConnection),
  };
}

export async function runConnectionMemory({ quick = false } = {}) {
  const why = netnsUnavailableReason();
  if (why !== undefined) return { skipped: why };
  const config = { count: 15_000, rounds: quick ? 1 : 3 };
  log(`connection memory: ${config.count} connections held, ${config.rounds} rounds`);
  return runInNamespace(self, config, { timeoutMs: 600_000 });
}

/** This benchmark's part of docs/benchmarks.md (lines, without the heading). */
export function connectionMemoryReport(r) {
  const b = (v) => (typeof v === 'number' ? `${v.toFixed(0)} B` : 'n/a');
  return [
    `In a private network namespace, a process holds ${r.count.toLocaleString('en')} connections to one ` +
      'destination (whose accept queue holds them; the listener is another process), opened one at a time with ' +
      '`porter.connect` (default options) or with `net.connect`; each method in a process of its own, in turn, ' +
      `${r.rounds.length} rounds. Growth of RSS and of the JavaScript heap after a garbage collection, per ` +
      'connection; medians of the rounds.',
    '',
    table(
      ['method', 'RSS per connection', 'JS heap per connection'],
      [
        ['`porter.connect`', b(r.porterRssPerConnection), b(r.porterHeapPerConnection)],
        ['`net.connect`', b(r.netRssPerConnection), b(r.netHeapPerConnection)],
        ['porter / net.connect', `**${fmtRatio(r.rssRatio)}**`, `**${fmtRatio(r.heapRatio)}**`],
      ],
    ),
  ];
}

const holderArg = process.argv.indexOf('--holder');
if (holderArg !== -1) {
  const [method, port, count] = process.argv.slice(holderArg + 1);
  const result = await holder(method, Number(port), Number(count));
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
} else if (!runIfChild(child) && process.argv[1] === self) {
  const r = await runConnectionMemory({ quick: process.argv.includes('--quick') });
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
