/**
 * A Prometheus histogram whose buckets live elsewhere (in porter's native core) and are
 * read at scrape time. prom-client's own Histogram can only be fed by observe(), so this
 * is a metric object of the shape prom-client's Registry reads: `name`, `help`, `type`,
 * `aggregator`, `get()` and `reset()`.
 */
import type { PorterStats } from '@porter/core';
import type { Metric } from 'prom-client';
import type { MetricContext, Registered } from './context.js';

type Duration = PorterStats['connectDuration'];

interface HistogramValue {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

/** The histogram as prom-client's Registry expects a metric's `get()` to return it. */
export interface HistogramData {
  name: string;
  help: string;
  type: 'histogram';
  aggregator: 'sum';
  values: HistogramValue[];
}

/**
 * Turns the core's per-bucket counts (not cumulative, no overflow bucket) into
 * Prometheus' cumulative `_bucket` series, `+Inf`, `_sum` and `_count`.
 */
export function histogramValues(name: string, d: Duration): HistogramValue[] {
  const values: HistogramValue[] = [];
  let cumulative = 0;
  d.bounds.forEach((le, i) => {
    cumulative += d.counts[i] ?? 0;
    values.push({ metricName: `${name}_bucket`, labels: { le }, value: cumulative });
  });
  // The core bumps a bucket before the count, and they are read one after the other:
  // never let +Inf fall below the last bucket.
  const count = Math.max(d.count, cumulative);
  values.push({ metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: count });
  values.push({ metricName: `${name}_sum`, labels: {}, value: d.sumSeconds });
  values.push({ metricName: `${name}_count`, labels: {}, value: count });
  return values;
}

/** A histogram read from `read()` at each scrape; register it with registry.registerMetric. */
export class CollectedHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly labelNames: string[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly read: () => Duration,
  ) {}

  async get(): Promise<HistogramData> {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.values() };
  }

  values(): HistogramValue[] {
    return histogramValues(this.name, this.read());
  }

  /** registry.resetMetrics() calls this; the counts belong to the core, so it does nothing. */
  reset(): void {}
}

/** The suffix of the connect-duration histogram. */
export const HISTOGRAM_SUFFIX = 'connect_duration_seconds';

/** Registers the connect-duration histogram, read from the core's buckets. */
export function createHistogram(ctx: MetricContext): Registered {
  const name = ctx.name(HISTOGRAM_SUFFIX);
  const histogram = new CollectedHistogram(
    name,
    'Time a successful connect took, from taking a port to the connection being established, in seconds.',
    () => ctx.stats().connectDuration,
  );
  for (const registry of ctx.registers) registry.registerMetric(histogram as unknown as Metric);
  return { name, metric: histogram };
}
