/**
 * The counters: allocations, releases, retries, exhaustion, the kernel's picks and
 * fallbacks, connect errors. The core keeps the totals; a scrape copies them.
 */
import type { PorterStats } from '@porter/core';
import { Counter } from 'prom-client';
import type { MetricContext, Registered } from './context.js';

type Rows = [Record<string, string>, number][];

interface CounterSpec {
  suffix: string;
  help: string;
  labelNames: readonly string[];
  read(s: PorterStats): Rows;
}

const byCode = (counts: Record<string, number>): Rows =>
  Object.entries(counts).map(([code, value]) => [{ code }, value]);

const COUNTERS: readonly CounterSpec[] = [
  {
    suffix: 'allocations_total',
    help: 'Local ports handed out, by connect() and allocate(), kernel-chosen ones included.',
    labelNames: [],
    read: (s) => [[{}, s.allocations]],
  },
  {
    suffix: 'releases_total',
    help: 'Ports given back, by mode: "aging" (this side closed first; the port rests before reuse) or "immediate" (the remote closed first, the socket was reset, or release({ aging: false })).',
    labelNames: ['mode'],
    read: (s) => [
      [{ mode: 'aging' }, s.releases.aging],
      [{ mode: 'immediate' }, s.releases.immediate],
    ],
  },
  {
    suffix: 'retries_total',
    help: 'Connects retried on another port, by the error that caused the retry (EADDRINUSE, EADDRNOTAVAIL).',
    labelNames: ['code'],
    read: (s) => byCode(s.retries),
  },
  {
    suffix: 'exhausted_total',
    help: 'Times a destination had no free port and no fallback helped: connect() or allocate() failed with ERR_PORTER_EXHAUSTED.',
    labelNames: [],
    read: (s) => [[{}, s.exhausted]],
  },
  {
    suffix: 'kernel_fallbacks_total',
    help: 'Connections whose local port the kernel chose outside the range because porter had none left for that destination (kernelFallback).',
    labelNames: [],
    read: (s) => [[{}, s.kernelFallbacks]],
  },
  {
    suffix: 'kernel_picks_total',
    help: "Connections whose local port the kernel chose inside the range: the part of it in the kernel's ephemeral range, which porter never binds itself (mode 'hybrid' or 'kernel').",
    labelNames: [],
    read: (s) => [[{}, s.kernelPicks]],
  },
  {
    suffix: 'connect_errors_total',
    help: 'Failed connects, by error code (ECONNREFUSED, ETIMEDOUT, ERR_PORTER_EXHAUSTED, ABORT_ERR, ...).',
    labelNames: ['code'],
    read: (s) => byCode(s.connectErrors),
  },
];

/** The suffixes of the counters, in the order they are registered. */
export const COUNTER_SUFFIXES: readonly string[] = COUNTERS.map((c) => c.suffix);

/** Registers the counters. */
export function createCounters(ctx: MetricContext): Registered[] {
  return COUNTERS.map(({ suffix, help, labelNames, read }) => {
    const name = ctx.name(suffix);
    const metric = new Counter({
      name,
      help,
      labelNames,
      registers: ctx.registers,
      collect() {
        this.reset();
        for (const [labels, value] of read(ctx.stats())) this.inc(labels, value);
      },
    });
    return { name, metric };
  });
}
