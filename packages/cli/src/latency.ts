/**
 * Connect latencies: every sample kept (8 bytes each) for exact percentiles, and the
 * counts per bucket of porter's own connect-duration histogram, so that what `hold`
 * shows reads the same as what @porter/metrics exports.
 */

/** The upper bounds, in seconds, of porter's connect-duration buckets (see @porter/metrics). */
export const BUCKET_BOUNDS_SECONDS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
] as const;

/** One bucket: samples up to `le` seconds (and above the previous bucket's); `+Inf` last. */
export interface Bucket {
  le: number | '+Inf';
  count: number;
}

export class Latencies {
  #samples = new Float64Array(1024);
  #count = 0;
  #sorted = true;

  /** Adds one sample, in milliseconds. */
  add(ms: number): void {
    if (this.#count === this.#samples.length) {
      const grown = new Float64Array(this.#samples.length * 2);
      grown.set(this.#samples);
      this.#samples = grown;
    }
    this.#samples[this.#count++] = ms;
    this.#sorted = false;
  }

  /** Adds samples, in milliseconds. */
  addAll(samples: ArrayLike<number>): void {
    for (let i = 0; i < samples.length; i++) this.add(samples[i] as number);
  }

  get count(): number {
    return this.#count;
  }

  #view(): Float64Array {
    const view = this.#samples.subarray(0, this.#count);
    if (!this.#sorted) {
      view.sort();
      this.#sorted = true;
    }
    return view;
  }

  /** The q-quantile (0..1) in ms, nearest rank; undefined without samples. */
  quantile(q: number): number | undefined {
    if (this.#count === 0) return undefined;
    const view = this.#view();
    const rank = Math.min(this.#count - 1, Math.max(0, Math.ceil(q * this.#count) - 1));
    return view[rank];
  }

  /** Counts per bucket (not cumulative), one per bound and `+Inf`. */
  buckets(bounds: readonly number[] = BUCKET_BOUNDS_SECONDS): Bucket[] {
    const view = this.#view();
    const out: Bucket[] = [];
    let i = 0;
    for (const le of bounds) {
      let count = 0;
      while (i < view.length && (view[i] as number) <= le * 1000) {
        count++;
        i++;
      }
      out.push({ le, count });
    }
    out.push({ le: '+Inf', count: view.length - i });
    return out;
  }
}

/** `0.25 ms`, `1.5 ms`, `2.0 s`: a duration in ms for people. */
export function formatMs(ms: number | undefined): string {
  if (ms === undefined || Number.isNaN(ms)) return '-';
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

/** A bucket bound for people: `≤0.25 ms`, `≤1 s`, `>10 s`. */
export function bucketLabel(le: number | '+Inf', previous: number | undefined): string {
  if (le === '+Inf') return `>${secondsLabel(previous ?? 0)}`;
  return `≤${secondsLabel(le)}`;
}

function secondsLabel(s: number): string {
  return s >= 1 ? `${s} s` : `${Number((s * 1000).toPrecision(3))} ms`;
}

/** Rounds to 3 decimals for JSON (microsecond resolution in ms). */
export function round3(n: number | undefined): number | null {
  return n === undefined ? null : Math.round(n * 1000) / 1000;
}
