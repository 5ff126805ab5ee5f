/**
 * registerPorterMetrics: porter's gauges, counters and connect-duration histogram in a
 * prom-client Registry. Every value is read from the Porter (its native core) when the
 * registry is scraped, in prom-client `collect()` callbacks; nothing runs on the connect
 * path.
 */
import type { PoolSummary, PorterStats } from '@porter/core';
import {
  invalidArgValue,
  validateInteger,
  validateObject,
  validatePorter,
  validateString,
} from '@porter/core/internal';
import {
  Counter,
  Gauge,
  register as globalRegistry,
  type Metric,
  type Registry,
  type RegistryContentType,
} from 'prom-client';
import { CollectedHistogram } from './histogram.js';
import { type PoolRow, summaryRows } from './pools.js';

/** What registerPorterMetrics reads: a Porter from @porter/core (any copy of it). */
export interface PorterSource {
  poolSummary(busiest: number): PoolSummary;
  stats(): PorterStats;
}

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

/** `read()`, computed at most once per synchronous run (one scrape reads it many times). */
function oncePerTick<T>(read: () => T): () => T {
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

  const n = (suffix: string): string => prefix + suffix;
  const names = [
    'ports_in_use',
    'ports_aging',
    'ports_free',
    'pools',
    'allocations_total',
    'releases_total',
    'retries_total',
    'exhausted_total',
    'kernel_fallbacks_total',
    'kernel_picks_total',
    'connect_errors_total',
    'connect_duration_seconds',
  ].map(n);
  for (const name of names) {
    if (registry.getSingleMetric(name) !== undefined) {
      throw Object.assign(new Error(`A metric named ${name} is already registered; use another prefix or registry`), {
        code: ERR_METRICS_REGISTERED,
      });
    }
  }

  const rows = oncePerTick(() => summaryRows(porter.poolSummary(maxPools)));
  const stats = oncePerTick(() => porter.stats());
  const registers = [registry];
  const metrics: { name: string; metric: unknown }[] = [];

  const poolGauge = (suffix: string, help: string, pick: (row: PoolRow) => number): void => {
    const name = n(suffix);
    const gauge = new Gauge({
      name,
      help,
      labelNames: ['remote', 'local'] as const,
      registers,
      collect() {
        this.reset();
        for (const row of rows()) this.set({ remote: row.remote, local: row.local }, pick(row));
      },
    });
    metrics.push({ name, metric: gauge });
  };
  const counter = <L extends string>(
    suffix: string,
    help: string,
    labelNames: readonly L[],
    read: (s: PorterStats) => [Partial<Record<L, string>>, number][],
  ): void => {
    const name = n(suffix);
    const metric = new Counter<L>({
      name,
      help,
      labelNames,
      registers,
      collect() {
        // The core keeps the totals; a scrape copies them.
        this.reset();
        for (const [labels, value] of read(stats())) this.inc(labels, value);
      },
    });
    metrics.push({ name, metric });
  };
  const byCode = (counts: Record<string, number>): [{ code: string }, number][] =>
    Object.entries(counts).map(([code, value]) => [{ code }, value]);

  poolGauge(
    'ports_in_use',
    'Local ports held by a lease now (connected sockets and allocate() leases), per pool: remote = destination address:port, local = source address. Pools beyond maxPools are summed into remote="other".',
    (r) => r.inUse,
  );
  poolGauge(
    'ports_aging',
    `Local ports resting after this side closed first (their connection may still be in TIME_WAIT); not handed out for that destination until the aging period ends. Per pool, labelled as ${n('ports_in_use')}.`,
    (r) => r.aging,
  );
  poolGauge(
    'ports_free',
    `Local ports of the range that can be handed out now for that destination. Per pool, labelled as ${n('ports_in_use')}.`,
    (r) => r.free,
  );
  const poolsName = n('pools');
  metrics.push({
    name: poolsName,
    metric: new Gauge({
      name: poolsName,
      help: 'Pools porter tracks: one per destination (address:port) and local address.',
      registers,
      collect() {
        this.set(stats().pools);
      },
    }),
  });
  counter(
    'allocations_total',
    'Local ports handed out, by connect() and allocate(), kernel-chosen ones included.',
    [],
    (s) => [[{}, s.allocations]],
  );
  counter(
    'releases_total',
    'Ports given back, by mode: "aging" (this side closed first; the port rests before reuse) or "immediate" (the remote closed first, the socket was reset, or release({ aging: false })).',
    ['mode'],
    (s) => [
      [{ mode: 'aging' }, s.releases.aging],
      [{ mode: 'immediate' }, s.releases.immediate],
    ],
  );
  counter(
    'retries_total',
    'Connects retried on another port, by the error that caused the retry (EADDRINUSE, EADDRNOTAVAIL).',
    ['code'],
    (s) => byCode(s.retries),
  );
  counter(
    'exhausted_total',
    'Times a destination had no free port and no fallback helped: connect() or allocate() failed with ERR_PORTER_EXHAUSTED.',
    [],
    (s) => [[{}, s.exhausted]],
  );
  counter(
    'kernel_fallbacks_total',
    'Connections whose local port the kernel chose outside the range because porter had none left for that destination (kernelFallback).',
    [],
    (s) => [[{}, s.kernelFallbacks]],
  );
  counter(
    'kernel_picks_total',
    "Connections whose local port the kernel chose inside the range: the part of it in the kernel's ephemeral range, which porter never binds itself (mode 'hybrid' or 'kernel').",
    [],
    (s) => [[{}, s.kernelPicks]],
  );
  counter(
    'connect_errors_total',
    'Failed connects, by error code (ECONNREFUSED, ETIMEDOUT, ERR_PORTER_EXHAUSTED, ABORT_ERR, ...).',
    ['code'],
    (s) => byCode(s.connectErrors),
  );
  const durationName = n('connect_duration_seconds');
  const histogram = new CollectedHistogram(
    durationName,
    'Time a successful connect took, from taking a port to the connection being established, in seconds.',
    () => stats().connectDuration,
  );
  registry.registerMetric(histogram as unknown as Metric);
  metrics.push({ name: durationName, metric: histogram });

  return {
    names,
    unregister() {
      for (const { name, metric } of metrics) {
        if (registry.getSingleMetric(name) === metric) registry.removeSingleMetric(name);
      }
    },
  };
}
