/**
 * A {@link Runner} is one process's part of a `porter hold` run, seen from the process
 * that draws the view and writes the result: {@link LocalRunner} runs it here (a Porter,
 * the engine, optionally a metrics server); with --workers, workers.ts runs a
 * LocalRunner in each child process and speaks to it over IPC through the same
 * interface. What they report merges with {@link mergePools}.
 */
import { hostPorts, type PoolSummary, Porter, type PorterOptions } from '@porter/core';
import { type MetricsServer, registerPorterMetrics, serveMetrics } from '@porter/metrics';
import { Registry } from 'prom-client';
import { makeDialer } from './dialer.js';
import { type EngineCounts, type EngineOptions, HoldEngine } from './engine.js';
import type { LinkContext } from './links.js';
import { byBusiest, type OtherPools, type PoolRow, poolRow } from './pools.js';
import { UsageCodes, UsageError } from './usage.js';

/** The pools and the Porter's counters at one moment. */
export interface PoolState {
  pools: PoolRow[];
  others: OtherPools;
  stats: { kernelPicks: number; kernelFallbacks: number; retries: Record<string, number> };
}

/** What a runner reports for the live view: counters, samples since the last report, the busiest pools. */
export interface RunnerProgress {
  counts: EngineCounts;
  latencies: Float64Array;
  rtts: Float64Array;
  pools: PoolRow[];
  others: OtherPools;
}

/** Everything a process needs to run its part. Serializable: it crosses to a worker. */
export interface WorkerSpec {
  engine: EngineOptions;
  porter: PorterOptions;
  link: Omit<LinkContext, 'porter'>;
  /** Serve this process's @porter/metrics there (port 0: any free port). */
  metrics: { host: string; port: number } | undefined;
}

export interface Runner {
  /** Starts; resolves to the metrics URL it serves (or null) once connecting has begun. */
  start(): Promise<string | null>;
  /** The latest report (samples since the previous call), or undefined before the first. */
  progress(): RunnerProgress | undefined;
  /** Resolves once its first connects have all settled, with the pools then. */
  readonly settled: Promise<PoolState>;
  /** Opens nothing more (Ctrl-C). */
  stop(): void;
  /** Closes everything; resolves with the pools as they were just before. */
  close(): Promise<PoolState>;
  /** Why this runner ended before it was closed (a worker that exited), if it did. */
  readonly failure: string | undefined;
}

/** Pools shown in the live view, and kept in the result. */
export const VIEW_POOLS = 6;
export const MAX_POOLS = 100;

const others = (s: PoolSummary): OtherPools => ({
  pools: s.others.pools,
  in_use: s.others.inUse,
  aging: s.others.aging,
  free: s.others.free,
});

/** A Porter for these options; a mode this host cannot honour is a usage error. */
export function makePorter(options: PorterOptions): Porter {
  try {
    return new Porter(options);
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code !== UsageCodes.MODE_UNSUPPORTED) throw err;
    const ephemeral = hostPorts().ephemeral;
    throw new UsageError(
      UsageCodes.MODE_UNSUPPORTED,
      '--mode',
      e.message,
      `use --mode hybrid, or a --range that covers the kernel's ephemeral range, e.g. --range ${ephemeral[0]}-${ephemeral[1]}`,
    );
  }
}

/** One process's part, run in this process. */
export class LocalRunner implements Runner {
  readonly failure = undefined;
  readonly settled: Promise<PoolState>;
  #spec: WorkerSpec;
  #porter: Porter;
  #engine: HoldEngine | undefined;
  #metrics: MetricsServer | undefined;
  #settled: (state: PoolState) => void = () => {};

  constructor(spec: WorkerSpec) {
    this.#spec = spec;
    this.#porter = makePorter(spec.porter);
    this.settled = new Promise((resolve) => {
      this.#settled = resolve;
    });
  }

  async start(): Promise<string | null> {
    const spec = this.#spec;
    const porter = this.#porter;
    if (spec.metrics !== undefined) {
      const registry = new Registry();
      registerPorterMetrics({ porter, registry });
      this.#metrics = await serveMetrics({ host: spec.metrics.host, port: spec.metrics.port, registry });
    }
    const dial = await makeDialer({ ...spec.link, porter }, spec.engine.destinations);
    const engine = new HoldEngine(spec.engine, dial);
    this.#engine = engine;
    void engine.settled.then(() => this.#settled(this.state()));
    engine.start();
    return this.#metrics?.url ?? null;
  }

  /** The pools (the busiest MAX_POOLS) and the Porter's counters now. */
  state(): PoolState {
    const summary = this.#porter.poolSummary(MAX_POOLS);
    const stats = this.#porter.stats();
    return {
      pools: summary.busiest.map(poolRow),
      others: others(summary),
      stats: {
        kernelPicks: stats.kernelPicks,
        kernelFallbacks: stats.kernelFallbacks,
        retries: Object.fromEntries(Object.entries(stats.retries).filter(([, n]) => n > 0)),
      },
    };
  }

  progress(): RunnerProgress | undefined {
    const engine = this.#engine;
    if (engine === undefined) return undefined;
    const summary = this.#porter.poolSummary(VIEW_POOLS);
    return {
      counts: { ...engine.counts, errors: { ...engine.counts.errors } },
      ...engine.drain(),
      pools: summary.busiest.map(poolRow),
      others: others(summary),
    };
  }

  stop(): void {
    this.#engine?.stop();
  }

  async close(): Promise<PoolState> {
    const before = this.state();
    await this.#engine?.close();
    await this.#metrics?.close();
    return before;
  }
}

/**
 * The pools of several processes towards the same destinations, as one: ports in use and
 * aging add up. With `disjoint` ranges (each process its slice), free ports add up too;
 * else each process sees the whole range, which they share, and free is what is left of
 * it once all of them are counted.
 */
export function mergePools(lists: readonly PoolRow[][], disjoint = false): PoolRow[] {
  if (lists.length === 1) return lists[0] ?? [];
  const merged = new Map<string, PoolRow & { size: number }>();
  for (const list of lists) {
    for (const row of list) {
      const key = `${row.remote}\u0000${row.local}`;
      const size = row.in_use + row.aging + row.free;
      const seen = merged.get(key);
      if (seen === undefined) {
        merged.set(key, { ...row, size });
      } else {
        seen.in_use += row.in_use;
        seen.aging += row.aging;
        seen.size = disjoint ? seen.size + size : Math.max(seen.size, size);
      }
    }
  }
  return [...merged.values()]
    .map(({ size, ...row }) => ({ ...row, free: Math.max(0, size - row.in_use - row.aging) }))
    .sort(byBusiest);
}
