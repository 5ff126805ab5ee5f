/**
 * The totals of a `porter hold` run over its runners (one, or one per worker): counters
 * summed, every connect latency and round trip kept (for exact percentiles), those of the
 * current second kept apart when --ndjson asks for them, pools merged, and the most ports
 * aging at once.
 */
import { type EngineCounts, zeroCounts } from './engine.js';
import { Latencies } from './latency.js';
import { mergeOthers, type OtherPools, type PoolRow } from './pools.js';
import { mergePools, type Runner } from './runner.js';

function sum(list: readonly EngineCounts[]): EngineCounts {
  const out = zeroCounts();
  const min = (a: number | null, b: number | null): number | null => (a === null ? b : b === null ? a : Math.min(a, b));
  const max = (a: number | null, b: number | null): number | null => (a === null ? b : b === null ? a : Math.max(a, b));
  for (const c of list) {
    for (const key of [
      'opened',
      'failed',
      'dropped',
      'churned',
      'held',
      'initialOpened',
      'messagesSent',
      'messagesReceived',
      'messagesSkipped',
      'bytesSent',
      'bytesReceived',
    ] as const) {
      out[key] += c[key];
    }
    for (const [code, n] of Object.entries(c.errors)) out.errors[code] = (out.errors[code] ?? 0) + n;
    out.firstStartWall = min(out.firstStartWall, c.firstStartWall);
    out.lastSettledWall = max(out.lastSettledWall, c.lastSettledWall);
    out.firstMessageWall = min(out.firstMessageWall, c.firstMessageWall);
  }
  return out;
}

export class Tally {
  readonly latencies = new Latencies();
  readonly rtts = new Latencies();
  counts: EngineCounts = zeroCounts();
  pools: PoolRow[] = [];
  others: OtherPools = { pools: 0, in_use: 0, aging: 0, free: 0 };
  /** The most ports aging at once in all pools, at any report before closing began. */
  agingMax = 0;
  /** The current second's samples, kept only with `perSecond` (--ndjson reads them with takeSecond). */
  #second: { latencies: Latencies; rtts: Latencies; opened: number; at: number } | undefined;
  readonly #latest = new Map<Runner, { counts: EngineCounts; pools: PoolRow[]; others: OtherPools }>();

  /**
   * `disjoint`: the runners' Porters have disjoint slices of the range (see mergePools).
   * `perSecond`: keep the samples of the current second apart too, for takeSecond.
   */
  constructor(
    private readonly runners: readonly Runner[],
    private readonly disjoint = false,
    perSecond = false,
  ) {
    if (perSecond)
      this.#second = { latencies: new Latencies(), rtts: new Latencies(), opened: 0, at: performance.now() };
  }

  /** Takes every runner's latest report; `closing` leaves aging out of agingMax. */
  collect(closing = false): void {
    for (const runner of this.runners) {
      const p = runner.progress();
      if (p === undefined) continue;
      this.latencies.addAll(p.latencies);
      this.rtts.addAll(p.rtts);
      if (this.#second !== undefined) {
        this.#second.latencies.addAll(p.latencies);
        this.#second.rtts.addAll(p.rtts);
      }
      this.#latest.set(runner, { counts: p.counts, pools: p.pools, others: p.others });
    }
    const latest = [...this.#latest.values()];
    this.counts = sum(latest.map((l) => l.counts));
    this.pools = mergePools(
      latest.map((l) => l.pools),
      this.disjoint,
    );
    this.others = mergeOthers(latest.map((l) => l.others));
    if (!closing) {
      const aging = this.pools.reduce((n, p) => n + p.aging, 0) + this.others.aging;
      this.agingMax = Math.max(this.agingMax, aging);
    }
  }

  /** The samples and connections of the second (or so) since the last call (needs `perSecond`). */
  takeSecond(): { latencies: Latencies; rtts: Latencies; opened: number; seconds: number } {
    const now = performance.now();
    const s = this.#second;
    if (s === undefined) throw new Error('Tally: takeSecond needs a tally made with perSecond');
    const out = {
      latencies: s.latencies,
      rtts: s.rtts,
      opened: this.counts.opened - s.opened,
      seconds: (now - s.at) / 1000,
    };
    this.#second = { latencies: new Latencies(), rtts: new Latencies(), opened: this.counts.opened, at: now };
    return out;
  }
}
