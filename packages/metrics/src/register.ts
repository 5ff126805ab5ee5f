/**
 * registerPorterMetrics: porter's gauges, counters and connect-duration histogram in a
 * prom-client Registry. Every value is read from the Porter (its native core) when the
 * registry is scraped, in prom-client `collect()` callbacks; nothing runs on the connect
 * path.
 */
import type { Porter } from '@porter/core';
import {
  invalidArgValue,
  validateInteger,
  validateObject,
  validatePorter,
  validateString,
} from '@porter/core/internal';
import { register as globalRegistry, type Registry, type RegistryContentType } from 'prom-client';
import { type MetricContext, oncePerTick } from './context.js';
import { COUNTER_SUFFIXES, createCounters } from './counters.js';
import { createGauges, GAUGE_SUFFIXES } from './gauges.js';
import { createHistogram, HISTOGRAM_SUFFIX } from './histogram.js';
import { summaryRows } from './pools.js';

/**
 * What registerPorterMetrics takes: a Porter from @porter/core (either copy, CommonJS or
 * ESM), recognised as every package's `porter` option is, by the six methods below. Of
 * them it reads `poolSummary()`, `stats()` and `capacity().perDestination`.
 */
export type PorterSource = Pick<
  Porter,
  'connect' | 'createConnection' | 'snapshot' | 'poolSummary' | 'stats' | 'capacity'
>;

/** Options of {@link registerPorterMetrics}. */
export interface PorterMetricsOptions {
  /** The Porter to report on (default: the process-wide default instance, defaultPorter()). */
  porter?: PorterSource;
  /** A prom-client Registry (default: prom-client's global `register`). */
  registry?: Registry<RegistryContentType>;
  /** Prefix of every metric name (default 'porter_'). */
  prefix?: string;
  /**
   * Most pools exported with series of their own (default 100): the busiest by ports in
   * use, then aging. The others are summed into `remote="other", local="other"`.
   */
  maxPools?: number;
}

/** What {@link registerPorterMetrics} returns. */
export interface PorterMetrics {
  /** The names of the metrics registered, prefix included. */
  readonly names: readonly string[];
  /** Removes these metrics from the registry (those still registered by this call). */
  unregister(): void;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/** Code of the error thrown when a metric of the same name is already in the registry. */
export const ERR_METRICS_REGISTERED = 'ERR_PORTER_METRICS_REGISTERED';

/**
 * Registers porter's metrics in `registry`. Throws ERR_PORTER_METRICS_REGISTERED (and
 * registers nothing) if one of the names is taken: use another `prefix` or registry for
 * a second Porter.
 */
export function registerPorterMetrics(options: PorterMetricsOptions = {}): PorterMetrics {
  validateObject(options, 'options');
  const porter: PorterSource = validatePorter(options.porter);
  const registry: Registry<RegistryContentType> = options.registry ?? globalRegistry;
  if (typeof registry?.registerMetric !== 'function' || typeof registry?.getSingleMetric !== 'function') {
    throw invalidArgValue('options.registry', typeof registry, 'must be a prom-client Registry');
  }
  const prefix = options.prefix === undefined ? 'porter_' : validateString(options.prefix, 'options.prefix');
  if (prefix !== '' && !METRIC_NAME.test(prefix)) {
    throw invalidArgValue('options.prefix', prefix, 'must be a valid start of a Prometheus metric name');
  }
  const maxPools =
    options.maxPools === undefined ? 100 : validateInteger(options.maxPools, 'options.maxPools', 0, 2 ** 31 - 1);

  const name = (suffix: string): string => prefix + suffix;
  const names = [...GAUGE_SUFFIXES, ...COUNTER_SUFFIXES, HISTOGRAM_SUFFIX].map(name);
  for (const taken of names) {
    if (registry.getSingleMetric(taken) !== undefined) {
      throw Object.assign(new Error(`A metric named ${taken} is already registered; use another prefix or registry`), {
        code: ERR_METRICS_REGISTERED,
      });
    }
  }
  const ctx: MetricContext = {
    name,
    registers: [registry],
    rows: oncePerTick(() => summaryRows(porter.poolSummary(maxPools), porter.capacity().perDestination)),
    stats: oncePerTick(() => porter.stats()),
  };
  const metrics = [...createGauges(ctx), ...createCounters(ctx), createHistogram(ctx)];

  return {
    names,
    unregister() {
      for (const m of metrics) {
        if (registry.getSingleMetric(m.name) === m.metric) registry.removeSingleMetric(m.name);
      }
    },
  };
}
