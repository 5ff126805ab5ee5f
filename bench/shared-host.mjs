/**
 * Processes sharing a host: in a private network namespace with the kernel's default
 * ephemeral range (32768-60999), four processes open connections to one destination all
 * at once and hold them (the destination never accepts: its accept queue holds them).
 * Cases: porter with default options, 15,000 connections each (60,000 in all: past the
 * 36,280 ports porter binds itself, into the kernel's window); porter and net.connect
 * with 7,000 each (28,000: what the kernel's 28,232 ephemeral ports can hold for one
 * destination), the baseline. Reported: connections per second over all four processes
 * (60,000 or 28,000 over the slowest process's time), failures, and porter's retries.
 * The fixture is the one test/core/shared-host.test.ts runs.
 *
 * Run directly: node bench/shared-host.mjs [--quick].
 */
import { fileURLToPath } from 'node:url';
import { netnsUnavailableReason, runInNetns } from '../test/helpers/netns.mjs';
import { errorsCell, fmtRate, fmtRatio, table } from './lib/format.mjs';
import { lastJsonLine, log, tail } from './lib/util.mjs';

const self = fileURLToPath(import.meta.url);
const fixture = fileURLToPath(new URL('../test/core/fixtures/shared-host.mjs', import.meta.url));

async function runCase(label, args) {
  const res = await runInNetns(fixture, [JSON.stringify(args)], { timeoutMs: 600_000 });
  const out = lastJsonLine(res.stdout);
  if (res.code !== 0 || !out) return { label, error: `exit ${res.code}: ${tail(res.stderr || res.stdout, 3)}` };
  const reports = out.reports;
  const total = reports.reduce((n, r) => n + r.opened, 0);
  const slowest = Math.max(...reports.map((r) => r.seconds));
  const retries = reports.reduce((n, r) => n + Object.values(r.retries ?? {}).reduce((a, b) => a + b, 0), 0);
  const errors = {};
  for (const r of reports) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
  const result = {
    label,
    ...args,
    opened: total,
    errors,
    seconds: slowest,
    perSecond: total / slowest,
    retries,
    retriesPerConnect: total ? retries / total : null,
    maxRetriesPerConnect: Math.max(...reports.map((r) => r.maxRetriesPerConnect)),
    kernelPicks: reports.reduce((n, r) => n + (r.kernelPicks ?? 0), 0),
    established: out.established,
    distinct: out.distinct,
  };
  log(
    `  ${label}: ${total} opened in ${slowest.toFixed(1)} s (${fmtRate(result.perSecond)}), errors ${errorsCell(errors)}, ` +
      `retries ${retries}, kernel picks ${result.kernelPicks}, ${out.distinct} distinct 4-tuples`,
  );
  return result;
}

export async function runSharedHost({ quick = false } = {}) {
  const why = netnsUnavailableReason();
  if (why !== undefined) return { skipped: why };
  const big = quick ? 10_000 : 15_000;
  const cases = [];
  // The baseline and porter on the same load, then porter past the kernel's capacity.
  cases.push(
    await runCase('net.connect, 4 x 7,000', { processes: 4, connections: 7_000, concurrency: 1, method: 'net' }),
  );
  cases.push(await runCase('porter, 4 x 7,000', { processes: 4, connections: 7_000, concurrency: 1 }));
  cases.push(
    await runCase(`porter, 4 x ${big.toLocaleString('en')}`, { processes: 4, connections: big, concurrency: 1 }),
  );
  const [net, small] = cases;
  return {
    cases,
    ratio_porter_vs_net_7000: net?.perSecond && small?.perSecond ? small.perSecond / net.perSecond : null,
  };
}

/** This benchmark's part of docs/benchmarks.md (lines, without the heading). */
export function sharedHostReport(r) {
  return [
    'Four processes, each with its own Porter (default options) or with `net.connect`, open connections to one ' +
      'destination all at once (one at a time per process) and hold them, in a private network namespace with the ' +
      "kernel's default ephemeral range (32768-60999, 28,232 ports). Rate: connections over the slowest " +
      "process's time. The kernel alone can hold 28,232 connections to one destination; porter's default range " +
      'holds 64,512 (36,280 it binds itself, the rest picked by the kernel).',
    '',
    table(
      ['case', 'opened', 'failed', 'rate', 'retries per connect (max in one)', 'kernel picks', 'distinct 4-tuples'],
      r.cases.map((c) =>
        c.error
          ? [c.label, 'n/a', c.error, '', '', '', '']
          : [
              c.label,
              c.opened,
              errorsCell(c.errors),
              fmtRate(c.perSecond),
              c.method === 'net' ? 'n/a' : `${c.retriesPerConnect.toFixed(3)} (${c.maxRetriesPerConnect})`,
              c.method === 'net' ? 'n/a' : c.kernelPicks,
              c.distinct,
            ],
      ),
    ),
    '',
    `porter / net.connect at 4 x 7,000: **${fmtRatio(r.ratio_porter_vs_net_7000)}**. A collision between the ` +
      "processes (EADDRNOTAVAIL at connect) moves that connect to the kernel's choice, so a connect makes at most " +
      'one retry while the kernel has room; the kernel searches its range for every connect of its own, and the ' +
      'search takes longer the fuller the range.',
  ];
}

if (process.argv[1] === self) {
  const r = await runSharedHost({ quick: process.argv.includes('--quick') });
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
