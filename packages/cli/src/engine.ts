/**
 * The connections of one `porter hold` process: starts connects on the {@link Pacer}'s
 * schedule with at most `concurrency` in flight, holds what opened, closes each at the
 * end of its `lifetime` and opens another in its place, sends `--message` on every open
 * connection at its rate, and counts everything. It never gives a connect an AbortSignal
 * (a listener on one signal per held connection was the MaxListenersExceededWarning): a
 * connect has its deadline (porter's own for raw links), and when the run stops, those
 * still connecting are given up and destroyed as soon as they have a socket.
 */
import type { Destination } from './destinations.js';
import type { Link, LinkSink } from './links.js';
import { MessageClock } from './message-clock.js';
import { Pacer } from './pacer.js';

/** What one process's engine does (its share of the run with --workers). */
export interface EngineOptions {
  destinations: Destination[];
  /** Connections for this process. */
  count: number;
  /** Connects a second for the whole run (0: no limit), reached over `ramp` seconds. */
  rate: number;
  ramp: number;
  /** This process's slots of the run's schedule: offset, offset + stride, ... */
  offset: number;
  stride: number;
  concurrency: number;
  /** Milliseconds for a connect (and its handshake, CONNACK or upgrade). */
  timeout: number;
  /** Seconds after which a connection is closed and another opened; undefined: held. */
  lifetime: number | undefined;
  /** Messages a second per connection (with a message to send). */
  messageRate: number | undefined;
  message: Buffer | undefined;
}

/** The counters of one process; `wall` times are epoch milliseconds, comparable between processes. */
export interface EngineCounts {
  opened: number;
  failed: number;
  errors: Record<string, number>;
  dropped: number;
  churned: number;
  /** Open now. */
  held: number;
  /** Of the first `count` connects: opened, when the first started and the last settled. */
  initialOpened: number;
  firstStartWall: number | null;
  lastSettledWall: number | null;
  messagesSent: number;
  messagesReceived: number;
  messagesSkipped: number;
  bytesSent: number;
  bytesReceived: number;
  firstMessageWall: number | null;
}

/** Starts a link of the right kind for a destination; `index` is the connection's number in the run. */
export type Dialer = (sink: LinkSink, destination: Destination, index: number) => Link;

/** Sends at most this many messages unanswered per connection before its round trips stop being timed. */
const MAX_UNANSWERED = 1024;
/** How long a connection closed from this side may take before it is destroyed. */
export const CLOSE_GRACE_MS = 5_000;

/** Counters before anything happened. */
export function zeroCounts(): EngineCounts {
  return {
    opened: 0,
    failed: 0,
    errors: {},
    dropped: 0,
    churned: 0,
    held: 0,
    initialOpened: 0,
    firstStartWall: null,
    lastSettledWall: null,
    messagesSent: 0,
    messagesReceived: 0,
    messagesSkipped: 0,
    bytesSent: 0,
    bytesReceived: 0,
    firstMessageWall: null,
  };
}

const wall = (): number => performance.timeOrigin + performance.now();

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.length > 0) return code;
  if (typeof code === 'number') return String(code);
  return 'UNKNOWN';
}

export class HoldEngine implements LinkSink {
  readonly counts: EngineCounts = zeroCounts();
  readonly #o: EngineOptions;
  readonly #dial: Dialer;
  readonly #pacer: Pacer;
  readonly #open = new Set<Link>();
  readonly #connecting = new Set<Link>();
  readonly #clock: MessageClock | undefined;
  #initialLeft: number;
  #initialConnecting = 0;
  #replacements = 0;
  #slot = 0;
  #t0 = 0;
  #timer: NodeJS.Timeout | undefined;
  /** One timer for every connect's deadline (not one per connect). */
  #sweeper: NodeJS.Timeout | undefined;
  #stopped = false;
  #latencies: number[] = [];
  #rtts: number[] = [];
  #settle: () => void = () => {};
  #allClosed: (() => void) | undefined;
  /** Resolves once each of the first `count` connects has opened or failed (or the run stopped). */
  readonly settled: Promise<void>;

  constructor(options: EngineOptions, dial: Dialer) {
    this.#o = options;
    this.#dial = dial;
    this.#initialLeft = options.count;
    this.#pacer = new Pacer(options.rate, options.ramp, options.offset, options.stride);
    this.settled = new Promise((resolve) => {
      this.#settle = resolve;
    });
    const { message, messageRate } = options;
    if (message !== undefined && messageRate !== undefined && messageRate > 0) {
      this.#clock = new MessageClock(messageRate, (link) => this.#sendOn(link, message));
    }
  }

  /** Starts opening. */
  start(): void {
    this.#t0 = performance.now();
    this.#pump();
    this.#checkSettled();
  }

  /** Opens no more connections, and gives up those still connecting (they count neither way). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    // Given up, and settled here and now: what they report later is not counted.
    for (const link of this.#connecting) {
      link.endedByUs = true;
      link.abandon(Object.assign(new Error('the run stopped'), { code: 'ABORT_ERR' }));
      this.#settledOne(link);
    }
    this.#checkSettled();
  }

  /** Closes every connection from this side; destroys those still open after `graceMs`. */
  async close(graceMs = CLOSE_GRACE_MS): Promise<void> {
    this.stop();
    this.#clock?.stop();
    if (this.#open.size === 0) return;
    const closed = new Promise<void>((resolve) => {
      this.#allClosed = resolve;
    });
    for (const link of this.#open) {
      clearTimeout(link.timer);
      link.endedByUs = true;
      link.end();
    }
    const late = setTimeout(() => {
      for (const link of this.#open) link.destroy();
    }, graceMs);
    await closed;
    clearTimeout(late);
  }

  /** The connect latencies and round trips (ms) measured since the last call. */
  drain(): { latencies: Float64Array; rtts: Float64Array } {
    const out = { latencies: Float64Array.from(this.#latencies), rtts: Float64Array.from(this.#rtts) };
    this.#latencies = [];
    this.#rtts = [];
    return out;
  }

  #pump(): void {
    const o = this.#o;
    while (!this.#stopped && this.#connecting.size < o.concurrency && this.#initialLeft + this.#replacements > 0) {
      const due = this.#t0 + this.#pacer.dueMs(this.#slot);
      const now = performance.now();
      if (due > now) {
        this.#timer ??= setTimeout(() => {
          this.#timer = undefined;
          this.#pump();
        }, due - now);
        return;
      }
      const index = this.#slot * o.stride + o.offset;
      this.#slot++;
      const initial = this.#initialLeft > 0;
      if (initial) this.#initialLeft--;
      else this.#replacements--;
      this.#begin(index, initial);
    }
  }

  #begin(index: number, initial: boolean): void {
    const o = this.#o;
    const link = this.#dial(this, o.destinations[index % o.destinations.length] as Destination, index);
    link.initial = initial;
    if (initial) {
      this.#initialConnecting++;
      this.counts.firstStartWall ??= wall();
    }
    this.#connecting.add(link);
    link.startedAt = performance.now();
    // A tenth of the timeout late at most: connects are in the set in the order they started.
    this.#sweeper ??= setInterval(() => this.#sweep(), Math.min(1000, Math.max(10, o.timeout / 10)));
    link.start();
  }

  /** Gives up the connects whose deadline passed (the oldest first, in the order they started). */
  #sweep(): void {
    const timeout = this.#o.timeout;
    const now = performance.now();
    for (const link of this.#connecting) {
      if (link.startedAt + timeout > now) break;
      if (!link.ownDeadline)
        link.abandon(Object.assign(new Error(`no connection within ${timeout} ms`), { code: 'ETIMEDOUT' }));
    }
    if (this.#connecting.size === 0) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  #settledOne(link: Link): void {
    this.#connecting.delete(link);
    if (link.initial) {
      this.#initialConnecting--;
      this.counts.lastSettledWall = wall();
    }
  }

  opened(link: Link): void {
    this.#settledOne(link);
    const c = this.counts;
    this.#latencies.push(performance.now() - link.startedAt);
    c.opened++;
    if (link.initial) c.initialOpened++;
    this.#open.add(link);
    c.held = this.#open.size;
    const lifetime = this.#o.lifetime;
    if (lifetime !== undefined) {
      link.timer = setTimeout(() => {
        link.lifetimeEnded = true;
        link.endedByUs = true;
        this.#clock?.remove(link);
        link.end();
        link.timer = setTimeout(() => link.destroy(), CLOSE_GRACE_MS);
      }, lifetime * 1000);
    }
    if (this.#clock !== undefined) {
      link.inFlight = [];
      this.#clock.add(link);
    }
    this.#pump();
    this.#checkSettled();
  }

  failed(link: Link, err: unknown): void {
    if (!this.#connecting.has(link)) return; // given up when the run stopped
    this.#settledOne(link);
    if (!link.endedByUs) {
      const code = codeOf(err);
      this.counts.failed++;
      this.counts.errors[code] = (this.counts.errors[code] ?? 0) + 1;
    }
    this.#pump();
    this.#checkSettled();
  }

  closed(link: Link): void {
    clearTimeout(link.timer);
    this.#open.delete(link);
    this.#clock?.remove(link);
    const c = this.counts;
    c.held = this.#open.size;
    if (!link.endedByUs) c.dropped++;
    if (link.lifetimeEnded) {
      c.churned++;
      if (!this.#stopped) {
        // After a pause with nothing to open, no slots are saved up for a burst.
        if (this.#initialLeft + this.#replacements === 0) {
          this.#slot = Math.max(this.#slot, this.#pacer.firstSlotAt(performance.now() - this.#t0));
        }
        this.#replacements++;
        this.#pump();
      }
    }
    if (this.#allClosed !== undefined && this.#open.size === 0) this.#allClosed();
  }

  received(link: Link, messages: number, bytes: number): void {
    const c = this.counts;
    c.bytesReceived += bytes;
    if (messages <= 0) return;
    c.messagesReceived += messages;
    const now = performance.now();
    for (let i = 0; i < messages; i++) {
      const sentAt = link.inFlight?.shift();
      if (sentAt !== undefined) this.#rtts.push(now - sentAt);
    }
  }

  #sendOn(link: Link, message: Buffer): void {
    const c = this.counts;
    if (!link.write(message)) {
      c.messagesSkipped++;
      return;
    }
    c.messagesSent++;
    c.bytesSent += message.length;
    c.firstMessageWall ??= wall();
    const inFlight = link.inFlight;
    if (inFlight === undefined) return;
    if (inFlight.length < MAX_UNANSWERED) inFlight.push(performance.now());
    else link.inFlight = undefined; // nothing comes back: stop timing this connection
  }

  #checkSettled(): void {
    if (this.#initialConnecting === 0 && (this.#initialLeft === 0 || this.#stopped)) this.#settle();
  }
}
