/**
 * What @porter/metrics costs the connect path: the connect rate through porter with the
 * metrics registered and scraped over HTTP every 100 ms, beside the rate with no metrics
 * at all. The values are read from the native core at scrape time, so the only cost
 * should be the scrapes themselves (collect + serialise, on the same event loop).
 *
 * The TCP server (test/helpers/servers.mjs, which closes every connection first) and the
 * scraper run in child processes of their own. The Porter also holds one lease to each
 * of `pools` other destinations, so that a scrape walks a realistic number of pools and
 * caps them with maxPools. Rounds of a fixed duration alternate without / with metrics
 * (the order flips every pair); the ratio is the median "with" rate over the median
 * "without" rate. Then the cost of one scrape against the number of pools (up to
 * 100,000). Last line: JSON.
 *
 * Run after `npm run build`: node bench/metrics-overhead.mjs [--quick]
 */
import { spawn } from 'node:child_process';
import { Porter } from '@porter/core';
import { registerPorterMetrics, serveMetrics } from '@porter/metrics';
import { Registry } from 'prom-client';
import { startServers } from '../test/helpers/servers.mjs';

const quick = process.argv.includes('--quick');
const PAIRS = quick ? 3 : 8;
const ROUND_MS = quick ? 1_000 : 1_200;
const CONCURRENCY = 64;
const POOLS = 1_000;
const SCRAPE_MS = 100;
/** Below the kernel's ephemeral range, so that the kernel never picks these itself. */
const PORT_RANGE = [10_000, 19_999];

// The scraper: GETs the URL it is sent every SCRAPE_MS, until sent null; then reports.
const SCRAPER = `
let url = null, timer = null, scrapes = 0, failures = 0, totalMs = 0, bytes = 0;
async function scrape() {
  if (url === null) return;
  const started = performance.now();
  try {
    const res = await fetch(url);
    const body = await res.text();
    if (!res.ok) throw new Error(String(res.status));
    scrapes++; bytes = body.length; totalMs += performance.now() - started;
  } catch { failures++; }
}
process.on('message', (msg) => {
  if (msg.url) { url = msg.url; scrapes = failures = totalMs = 0; timer = setInterval(scrape, msg.everyMs); scrape(); }
  else { clearInterval(timer); url = null; process.send({ scrapes, failures, meanMs: scrapes ? totalMs / scrapes : null, bytes }); }
});
process.on('disconnect', () => process.exit(0));
`;

function startScraper() {
  const child = spawn(process.execPath, ['-e', SCRAPER], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return {
    start: (url) => child.send({ url, everyMs: SCRAPE_MS }),
    stop: () =>
      new Promise((resolve) => {
        child.once('message', resolve);
        child.send({ stop: true });
      }),
    exit: () => child.kill(),
  };
}

const median = (values) => {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

/** Connects for `ms` with CONCURRENCY in flight; the server closes each connection first. */
async function round(porter, target, ms) {
  const open = new Set();
  let ok = 0;
  let failed = 0;
  const started = performance.now();
  const deadline = started + ms;
  async function worker() {
    while (performance.now() < deadline) {
      try {
        const socket = await porter.connect(target);
        ok++;
        socket.on('error', () => {});
        open.add(socket);
        socket.once('close', () => open.delete(socket));
      } catch {
        failed++;
      }
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const elapsed = performance.now() - started;
  // Let every port come back before the next round.
  await Promise.all([...open].map((s) => new Promise((resolve) => (s.closed ? resolve() : s.once('close', resolve)))));
  return { rate: (ok * 1000) / elapsed, failed };
}

const server = await startServers({ mode: 'close-first', backlog: 4096 });
const scraper = startScraper();
const target = { host: '127.0.0.1', port: server.ports[0] };
const porter = new Porter({ portRange: PORT_RANGE, agingMs: 30_000, kernelFallback: true });
const background = Array.from({ length: POOLS }, (_, i) => porter.allocate({ address: '127.0.0.2', port: 1 + i }));

/**
 * One scrape's cost (registry.metrics(), median of 5, milliseconds) against the number of
 * pools, each Porter holding `n` pools (a third of them with a port aging). Beside it,
 * in the same run, porter.poolCounts() alone: one object per pool, what an exporter
 * would read without the core's summary. Bookkeeping only: nothing is sent anywhere.
 */
async function scrapeCostByPools(sizes) {
  const out = { scrape: {}, poolCounts: {} };
  for (const n of sizes) {
    const p = new Porter({ portRange: [20_000, 20_099], agingMs: 600_000 });
    for (let i = 0; i < n; i++) {
      p.allocate({ address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 443 }).release({
        aging: i % 3 === 0,
      });
    }
    const registry = new Registry();
    registerPorterMetrics({ porter: p, registry });
    const timeOf = async (fn) => {
      const times = [];
      for (let k = 0; k < 5; k++) {
        const t0 = performance.now();
        await fn();
        times.push(performance.now() - t0);
      }
      return Number(median(times).toFixed(2));
    };
    out.scrape[n] = await timeOf(() => registry.metrics());
    out.poolCounts[n] = await timeOf(() => p.poolCounts());
    console.error(`scrape with ${n} pools: ${out.scrape[n]} ms (poolCounts alone ${out.poolCounts[n]} ms)`);
  }
  return out;
}

try {
  await round(porter, target, 500); // warm-up
  const rates = { without: [], with: [] };
  const scrapes = [];
  let failures = 0;
  for (let pair = 0; pair < PAIRS; pair++) {
    const order = pair % 2 === 0 ? ['without', 'with'] : ['with', 'without'];
    for (const mode of order) {
      if (mode === 'without') {
        const r = await round(porter, target, ROUND_MS);
        rates.without.push(r.rate);
        failures += r.failed;
        continue;
      }
      const registry = new Registry();
      const metrics = registerPorterMetrics({ porter, registry });
      const http = await serveMetrics({ port: 0, registry });
      scraper.start(http.url);
      const r = await round(porter, target, ROUND_MS);
      scrapes.push(await scraper.stop());
      await http.close();
      metrics.unregister();
      rates.with.push(r.rate);
      failures += r.failed;
    }
    console.error(
      `pair ${pair + 1}/${PAIRS}: without ${Math.round(rates.without.at(-1))}/s, with ${Math.round(rates.with.at(-1))}/s`,
    );
  }
  const scrapeCost = await scrapeCostByPools(quick ? [1_000, 10_000] : [1_000, 10_000, 100_000]);
  const without = median(rates.without);
  const withMetrics = median(rates.with);
  const totalScrapes = scrapes.reduce((a, s) => a + s.scrapes, 0);
  const scrapeMs = scrapes.filter((s) => s.meanMs !== null).map((s) => s.meanMs);
  console.log(
    JSON.stringify({
      bench: 'metrics-overhead',
      pairs: PAIRS,
      roundMs: ROUND_MS,
      concurrency: CONCURRENCY,
      pools: POOLS + 1,
      scrapeEveryMs: SCRAPE_MS,
      connectsPerSecWithout: Math.round(without),
      connectsPerSecWith: Math.round(withMetrics),
      ratio: Number((withMetrics / without).toFixed(4)),
      scrapes: totalScrapes,
      scrapeFailures: scrapes.reduce((a, s) => a + s.failures, 0),
      scrapeMeanMs: scrapeMs.length ? Number(median(scrapeMs).toFixed(2)) : null,
      scrapeBytes: scrapes.at(-1)?.bytes ?? null,
      connectFailures: failures,
      scrapeMsByPools: scrapeCost.scrape,
      poolCountsMsByPools: scrapeCost.poolCounts,
    }),
  );
} finally {
  for (const lease of background) lease.release({ aging: false });
  scraper.exit();
  await server.stop();
}
