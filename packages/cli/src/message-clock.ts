/**
 * The steady send of `--message` at `--message-rate` per connection: one timer for every
 * connection, not one each. Connections are dealt into buckets in turn; each step of the
 * clock serves the next bucket, so that the sends of a period are spread over it. Steps
 * are counted from the clock's start, not from the last timer, so a late timer catches
 * up (at most one full period at once) instead of losing sends.
 */
import type { Link } from './links.js';

const MAX_BUCKETS = 100;
/** The finest step: a timer more often than this costs more than it spreads. */
const MIN_STEP_MS = 10;

export class MessageClock {
  readonly #buckets: Set<Link>[];
  readonly #stepMs: number;
  readonly #send: (link: Link) => void;
  #next = 0;
  #steps = 0;
  #startedAt = 0;
  #timer: NodeJS.Timeout | undefined;

  /** `perSecond` messages per connection; `send` writes one on a link. */
  constructor(perSecond: number, send: (link: Link) => void) {
    const periodMs = 1000 / perSecond;
    const buckets = Math.max(1, Math.min(MAX_BUCKETS, Math.floor(periodMs / MIN_STEP_MS)));
    this.#buckets = Array.from({ length: buckets }, () => new Set<Link>());
    this.#stepMs = periodMs / buckets;
    this.#send = send;
  }

  add(link: Link): void {
    const slot = this.#next++ % this.#buckets.length;
    link.slot = slot;
    this.#buckets[slot]?.add(link);
    if (this.#timer === undefined) {
      this.#startedAt = performance.now();
      this.#steps = 0;
      this.#timer = setInterval(() => this.#tick(), Math.max(1, Math.round(this.#stepMs)));
    }
  }

  remove(link: Link): void {
    if (link.slot >= 0) this.#buckets[link.slot]?.delete(link);
    link.slot = -1;
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    const due = Math.floor((performance.now() - this.#startedAt) / this.#stepMs);
    // A late timer catches up, but never by more than one round of every bucket.
    const from = Math.max(this.#steps, due - this.#buckets.length);
    for (let step = from; step < due; step++) {
      const bucket = this.#buckets[step % this.#buckets.length] as Set<Link>;
      for (const link of bucket) this.#send(link);
    }
    this.#steps = Math.max(this.#steps, due);
  }
}
