/**
 * When each connect of `porter hold` is due: `--rate` connects a second in all, reached
 * linearly over `--ramp` seconds (the rate at time t is rate * t / ramp until then). The
 * schedule is one for the whole run; with --workers each process takes every n-th slot
 * of it (slots offset, offset + n, ...), so that together they follow it exactly.
 *
 * Slots allowed by time t (seconds), for rate R and ramp T:
 *   N(t) = R t^2 / (2T)           while t < T
 *   N(t) = R T / 2 + R (t - T)    after
 * and slot g is due when N(t) = g.
 */
export class Pacer {
  readonly #rate: number;
  readonly #ramp: number;
  readonly #offset: number;
  readonly #stride: number;

  /** `rate` per second in all (0: no limit), `ramp` in seconds; this process takes slots offset + k * stride. */
  constructor(rate: number, ramp: number, offset = 0, stride = 1) {
    this.#rate = rate;
    this.#ramp = rate > 0 ? ramp : 0;
    this.#offset = offset;
    this.#stride = stride;
  }

  /** Milliseconds after the start at which this process's k-th slot is due. */
  dueMs(k: number): number {
    const rate = this.#rate;
    if (rate <= 0) return 0;
    const g = k * this.#stride + this.#offset;
    const ramp = this.#ramp;
    const inRamp = (rate * ramp) / 2;
    const seconds = g < inRamp ? Math.sqrt((2 * ramp * g) / rate) : ramp + (g - inRamp) / rate;
    return seconds * 1000;
  }

  /** This process's first slot that is not due before `ms` after the start (for a run that sat idle). */
  firstSlotAt(ms: number): number {
    const rate = this.#rate;
    if (rate <= 0) return 0;
    const t = ms / 1000;
    const ramp = this.#ramp;
    const allowed = t < ramp ? (rate * t * t) / (2 * ramp) : (rate * ramp) / 2 + rate * (t - ramp);
    return Math.max(0, Math.ceil((allowed - this.#offset) / this.#stride));
  }
}
