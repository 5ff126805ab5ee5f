/**
 * What every metric of registerPorterMetrics is made with: the prefixed name, the
 * registry, and the Porter's readings, each taken at most once per scrape.
 */
import type { PorterStats } from '@porter/core';
import type { Registry, RegistryContentType } from 'prom-client';
import type { PoolRow } from './pools.js';

/** The shared inputs of the metric factories (gauges.ts, counters.ts, histogram.ts). */
export interface MetricContext {
  /** The metric name of `suffix`, prefix included. */
  name(suffix: string): string;
  /** The registries the metrics go into (one). */
  registers: Registry<RegistryContentType>[];
  /** The pool rows of this scrape (busiest pools, then `other`). */
  rows(): PoolRow[];
  /** The core's counters of this scrape. */
  stats(): PorterStats;
}

/** A metric registered by a factory, with its full name (to unregister it). */
export interface Registered {
  name: string;
  metric: unknown;
}

/** `read()`, computed at most once per synchronous run (one scrape reads it many times). */
export function oncePerTick<T>(read: () => T): () => T {
  let cached: { value: T } | undefined;
  return () => {
    if (cached === undefined) {
      cached = { value: read() };
      queueMicrotask(() => {
        cached = undefined;
      });
    }
    return cached.value;
  };
}
