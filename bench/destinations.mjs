/**
 * Destinations by the million, and Porters that come and go.
 *
 * 1. One Porter, `count` destinations (10.0.0.0/8, nothing is sent anywhere: allocate()
 *    binds nothing), each used once: allocate + release into aging. The cost per new
 *    destination is timed over windows of 1,000 destinations at 10,000 and at the end,
 *    the number of pools sampled along the way; then, once every aging period is over,
 *    the pools left and RSS against where it started.
 * 2. `porters` Porters, each made, used for one destination and dropped (every other one
 *    closed first), with garbage collections along the way: RSS against where it started.
 *
 * Each part in a process of its own, with --expose-gc. Run directly:
 * node bench/destinations.mjs [--quick]. Last line: JSON.
 */
import { fileURLToPath } from 'node:url';
import { run } from '../test/helpers/run.mjs';
import { fmtRatio, num, table } from './lib/format.mjs';
import { lastJsonLine, log, tail } from './lib/util.mjs';

const self = fileURLToPath(import.meta.url);
const AGING_MS = 1_000;

const gc = async () => {
  for (let i = 0; i < 3; i++) {
    globalThis.gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
};
const rssMb = () => process.memoryUsage().rss / 2 ** 20;
const address = (i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

async function destinationsChild(count) {
  const { Porter } = await import('@porter/core');
  const porter = new Porter({ portRange: [20_000, 20_063], agingMs: AGING_MS });
  // Warm up on other destinations, then start from a quiet heap.
  for (let i = 0; i < 20_000; i++) porter.allocate({ address: address(count + i), port: 80 }).release({ aging: false });
  await gc();
  const startRss = rssMb();
  const windows = {};
  const marks = [10_000, count];
  let peakPools = 0;
  let t0 = 0;
  for (let i = 1; i <= count; i++) {
    if (marks.includes(i + 999)) t0 = performance.now();
    porter.allocate({ address: address(i), port: 443 }).release({ aging: true });
    if (marks.includes(i)) windows[i] = ((performance.now() - t0) * 1000) / 1000; // µs per destination
    if (i % 50_000 === 0) peakPools = Math.max(peakPools, porter.stats().pools);
  }
  peakPools = Math.max(peakPools, porter.stats().pools);
  const rssAtPeak = rssMb();
  await new Promise((resolve) => setTimeout(resolve, AGING_MS + 200));
  const after = porter.stats();
  await gc();
  return {
    count,
    agingMs: AGING_MS,
    usPerDestinationAt10k: windows[10_000],
    usPerDestinationAtEnd: windows[count],
    ratioEndVs10k: windows[count] / windows[10_000],
    peakPools,
    poolsAfterAging: after.pools,
    poolsRetired: after.poolsRetired,
    poolsAfterAgingShare: after.pools / peakPools,
    rssStartMb: startRss,
    rssAtPeakMb: rssAtPeak,
    rssAfterMb: rssMb(),
    rssGrowthMb: rssMb() - startRss,
  };
}

async function portersChild(porters) {
  const { Porter } = await import('@porter/core');
  for (let i = 0; i < 2_000; i++)
    new Porter({ portRange: [20_000, 20_009] }).allocate({ address: '10.9.0.1', port: 80 });
  await gc();
  const startRss = rssMb();
  const t0 = performance.now();
  for (let i = 0; i < porters; i++) {
    const porter = new Porter({ portRange: [20_000, 20_009] });
    porter.allocate({ address: address(i), port: 443 }).release();
    if (i % 2 === 0) porter.close();
    if (i % 10_000 === 9_999) await gc();
  }
  const seconds = (performance.now() - t0) / 1000;
  await gc();
  return { porters, usPerPorter: (seconds * 1e6) / porters, rssStartMb: startRss, rssGrowthMb: rssMb() - startRss };
}

async function runChild(part, arg) {
  // A million destinations take a while on a slow machine: an hour before it is killed.
  const res = await run(process.execPath, ['--expose-gc', self, '--part', part, String(arg)], { timeoutMs: 3_600_000 });
  const json = lastJsonLine(res.stdout);
  return res.code === 0 && json ? json : { error: `exit ${res.code}: ${tail(res.stderr, 3)}` };
}

export async function runDestinations({ quick = false } = {}) {
  const count = quick ? 200_000 : 1_000_000;
  const porters = quick ? 20_000 : 100_000;
  log(`destinations: ${count.toLocaleString('en')} destinations, then ${porters.toLocaleString('en')} Porters`);
  const destinations = await runChild('destinations', count);
  if (!destinations.error) {
    log(
      `  per new destination: ${destinations.usPerDestinationAt10k.toFixed(2)} us at 10k, ` +
        `${destinations.usPerDestinationAtEnd.toFixed(2)} us at ${count} (x${destinations.ratioEndVs10k.toFixed(2)}); ` +
        `pools ${destinations.peakPools} at peak, ${destinations.poolsAfterAging} after aging; ` +
        `RSS +${destinations.rssGrowthMb.toFixed(1)} MB`,
    );
  }
  const dropped = await runChild('porters', porters);
  if (!dropped.error) log(`  ${porters} Porters made and dropped: RSS +${dropped.rssGrowthMb.toFixed(1)} MB`);
  return { destinations, porters: dropped };
}

/** This benchmark's part of docs/benchmarks.md (lines, without the heading). */
export function destinationsReport(r) {
  const d = r.destinations;
  const p = r.porters;
  const out = [];
  const mb = (v) => (num(v) ? `${v.toFixed(1)} MB` : 'n/a');
  if (d?.error) out.push(`Destinations: ${d.error}.`);
  else {
    out.push(
      `One Porter, ${d.count.toLocaleString('en')} destinations each used once (allocate + release into aging, ` +
        `agingMs ${d.agingMs}; allocate() sends nothing), in a process of its own. The cost of a new destination ` +
        'is timed over 1,000 destinations at 10,000 and at the end; the pools are counted along the way and once ' +
        'every aging period is over (a pool that holds nothing and that nobody holds is dropped).',
    );
    out.push('');
    out.push(
      table(
        ['figure', 'value'],
        [
          ['per new destination at 10,000', `${d.usPerDestinationAt10k.toFixed(2)} us`],
          [`per new destination at ${d.count.toLocaleString('en')}`, `${d.usPerDestinationAtEnd.toFixed(2)} us`],
          ['at the end / at 10,000', `**${fmtRatio(d.ratioEndVs10k)}**`],
          ['pools at the peak', d.peakPools],
          [
            'pools once aging is over',
            `${d.poolsAfterAging} (${(d.poolsAfterAgingShare * 100).toFixed(2)} % of the peak)`,
          ],
          ['RSS: start, at the peak, after', `${mb(d.rssStartMb)}, ${mb(d.rssAtPeakMb)}, ${mb(d.rssAfterMb)}`],
          ['RSS after, against the start', `**+${mb(d.rssGrowthMb)}**`],
        ],
      ),
    );
  }
  out.push('');
  if (p?.error) out.push(`Porters: ${p.error}.`);
  else {
    out.push(
      `${p.porters.toLocaleString('en')} Porters, each made, used for one destination and dropped (every other one ` +
        `closed first): ${p.usPerPorter.toFixed(1)} us each; RSS after, against the start: **+${mb(p.rssGrowthMb)}**. ` +
        "A Porter's native state is accounted to V8 as external memory, so that dropped ones are collected.",
    );
  }
  return out;
}

const part = process.argv.indexOf('--part');
if (part !== -1) {
  const which = process.argv[part + 1];
  const arg = Number(process.argv[part + 2]);
  const result = which === 'destinations' ? await destinationsChild(arg) : await portersChild(arg);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
} else if (process.argv[1] === self) {
  const r = await runDestinations({ quick: process.argv.includes('--quick') });
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
