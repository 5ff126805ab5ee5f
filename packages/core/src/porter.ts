/**
 * Porter: a configured registry of pools, with connect(), createConnection(), allocate()
 * and the inspection methods. A connect's options are checked by connect-options.ts,
 * resolved and tried by dial.ts; everything about ports and sockets happens in the
 * native core. What it reports is mapped to the public shapes by stats.ts.
 */
import { channel } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
import { addAbortSignal } from 'node:stream';
import { type InspectOptionsStylized, inspect } from 'node:util';
import * as native from '@porter/native';
import { canonicalIp } from './address.js';
import { type CheckedConnect, checkConnectOptions } from './connect-options.js';
import { type CreateConnectionArg, createConnectionOn } from './create-connection.js';
import { type Dial, type Dialed, Dialer } from './dial.js';
import { AbortError, callNative, ErrorCodes, fromThrown, invalidArgType, invalidThis, PorterError } from './errors.js';
import { type Lease, PortLease } from './lease.js';
import { resolveOptions, toNative } from './options.js';
import { closeWhenCollected, fast, Routes } from './routes.js';
import { socketFor } from './socket.js';
import { toCapacity, toSnapshot, toStats } from './stats.js';
import type {
  AllocateOptions,
  Capacity,
  ConnectOptions,
  PoolCounts,
  PoolSnapshot,
  PoolSummary,
  PorterOptions,
  PorterStats,
  ResolvedOptions,
} from './types.js';
import { validateInteger, validateIp, validateObject, validatePort } from './validate.js';

/** Where net.connect publishes every client socket it makes; porter's are published too. */
const clientSocketChannel = channel('net.client.socket');

/** A configured registry of pools: porter's ports for connects. See the package README. */
export class Porter {
  readonly #registry: native.Registry;
  readonly #options: ResolvedOptions;
  readonly #routes: Routes;
  readonly #dialer: Dialer;
  /** The connect path createConnection's sockets share (one function per Porter, not per socket). */
  readonly #dial: Dial;
  #closed = false;

  /**
   * @param options how ports are handed out; see {@link PorterOptions}.
   * @param registry internal: an existing native registry (the process default).
   */
  constructor(options?: PorterOptions, registry?: native.Registry) {
    this.#options = resolveOptions(options);
    const config = toNative(this.#options);
    this.#registry = registry ?? callNative(() => new native.Registry(config));
    this.#routes = new Routes(this.#registry, this.#options.localAddresses);
    this.#dialer = new Dialer(this.#routes, this.#options.socketOptions, () => this.#assertOpen());
    this.#dial = (target, timeout, signal, events) => this.#dialer.dial(target, timeout, signal, events);
    closeWhenCollected.register(this, this.#routes.cache, this.#routes.cache);
  }

  /** Throws ERR_INVALID_THIS unless `self` is a Porter (a method called on something else). */
  static #brand(self: unknown): void {
    if (typeof self !== 'object' || self === null || !(#closed in self)) throw invalidThis('Porter');
  }

  /** The configuration in force, normalised. */
  get options(): Readonly<ResolvedOptions> {
    Porter.#brand(this);
    return this.#options;
  }

  /** Whether {@link Porter.close} was called. */
  get closed(): boolean {
    Porter.#brand(this);
    return this.#closed;
  }

  #assertOpen(): void {
    if (this.#closed) throw new PorterError(ErrorCodes.CLOSED, 'the Porter was closed');
  }

  /**
   * Connects to `options.host`:`options.port` from a port porter chose. Resolves once
   * connected to Node's own net.Socket, whose lease follows it (see {@link leaseOf}).
   * Bad options throw synchronously.
   */
  connect(options: ConnectOptions): Promise<Socket> {
    Porter.#brand(this);
    this.#assertOpen();
    const checked = checkConnectOptions(options);
    if (checked.signal?.aborted) {
      return Promise.reject(new AbortError(undefined, { cause: checked.signal.reason }));
    }
    return this.#connect(checked);
  }

  #connect(c: CheckedConnect): Promise<Socket> {
    // `timeout` is the deadline of the whole connect here.
    return this.#dialer.dial(c, c.timeout, c.signal).then((dialed) => this.#wrap(dialed, c));
  }

  /**
   * Node's `net.createConnection` on porter's ports: returns a net.Socket at once, which
   * emits 'connect' (then `connectListener` runs) or 'error' as Node's does. `timeout`
   * is the socket's idle timeout, as in net. See create-connection.ts.
   */
  createConnection(options: CreateConnectionArg, connectListener?: () => void): Socket;
  createConnection(port: number | string, host?: string, connectListener?: () => void): Socket;
  createConnection(port: number | string, connectListener?: () => void): Socket;
  createConnection(...args: unknown[]): Socket {
    Porter.#brand(this);
    this.#assertOpen();
    return createConnectionOn(this.#dial, args);
  }

  /** The socket for a connected descriptor, with net.connect's options applied after the connect. */
  #wrap(dialed: Dialed, options: CheckedConnect): Socket {
    const lease = dialed.lease;
    let socket: Socket;
    try {
      socket = socketFor(dialed.fd, options.allowHalfOpen);
    } catch (err) {
      // socketFor closed the descriptor.
      lease.adopt(dialed.fd);
      lease.releaseAs(true);
      throw err;
    }
    lease.adopt(dialed.fd);
    lease.follow(socket);
    if (options.noDelay) socket.setNoDelay(true);
    // socketOptions.keepAlive, which the core set, wins over net's keepAlive options.
    if (options.keepAlive && !lease.keepAliveFromSocketOptions) {
      socket.setKeepAlive(true, options.keepAliveInitialDelay);
    }
    // As net's: an abort after the connect destroys the socket (with an AbortError).
    if (options.signal !== undefined) addAbortSignal(options.signal, socket);
    if (clientSocketChannel.hasSubscribers) clientSocketChannel.publish({ socket });
    return socket;
  }

  /**
   * Takes a port for the destination without connecting, for users who create sockets
   * themselves (bind it with SO_REUSEADDR). Release it with `lease.release()`.
   * Throws ERR_PORTER_EXHAUSTED when the pool is empty.
   */
  allocate(options: AllocateOptions): Lease {
    Porter.#brand(this);
    this.#assertOpen();
    validateObject(options, 'options');
    const { address, port, localAddress } = options;
    // A cached route means these exact values were validated before.
    const cache = this.#routes.cache;
    let route = cache.last(address, port, localAddress);
    if (route === undefined) {
      route =
        typeof address === 'string' &&
        typeof port === 'number' &&
        (localAddress === undefined || typeof localAddress === 'string')
          ? cache.touch(address, port, localAddress)
          : undefined;
    }
    route ??= this.#routes.open(
      canonicalIp(validateIp(address, 'options.address')),
      validatePort(port, 'options.port'),
      localAddress === undefined ? undefined : canonicalIp(validateIp(localAddress, 'options.localAddress')),
    );
    let leaseId: number;
    try {
      leaseId = fast.allocate(route.native);
    } catch (thrown) {
      throw fromThrown(thrown);
    }
    return new PortLease(route, leaseId);
  }

  /** Everything porter tracks, at this moment (aging expired and idle pools dropped first). */
  snapshot(): PoolSnapshot[] {
    Porter.#brand(this);
    return toSnapshot(callNative(() => this.#registry.snapshot()));
  }

  /**
   * Every pool's counts (ports in use, aging, free), now: {@link Porter.snapshot} without
   * the port lists, cheap enough to call for thousands of destinations (metrics use it).
   */
  poolCounts(): PoolCounts[] {
    Porter.#brand(this);
    return callNative(() => this.#registry.poolCounts());
  }

  /**
   * The `busiest` pools with their own counts (most ports in use first, then most aging;
   * ties by destination, so the choice is stable) and every other pool summed. The
   * selection runs in the core, so the cost in JavaScript grows with `busiest`, not with
   * the number of pools: what an exporter with a cap on its series needs.
   */
  poolSummary(busiest: number): PoolSummary {
    Porter.#brand(this);
    const n = validateInteger(busiest, 'busiest', 0, 2 ** 32 - 1);
    return callNative(() => this.#registry.poolSummary(n));
  }

  /** The counters kept by the core (allocations, releases, retries, errors, durations). */
  stats(): PorterStats {
    Porter.#brand(this);
    return toStats(callNative(() => this.#registry.stats()));
  }

  /**
   * How the range is split between the ports porter binds itself and the kernel's window,
   * per destination and source address, on the host's settings in force (followed while
   * the Porter lives: a change shows here within about a second).
   */
  capacity(): Capacity {
    Porter.#brand(this);
    return toCapacity(callNative(() => this.#registry.capacity()));
  }

  /**
   * Gives the Porter's routes back: later `connect()` and `allocate()` throw
   * ERR_PORTER_CLOSED; leases still open keep working until they are released, and the
   * pools they hold are let go after. Idempotent. Inspection (`snapshot()`, `stats()`)
   * still answers.
   */
  close(): void {
    Porter.#brand(this);
    if (this.#closed) return;
    this.#closed = true;
    closeWhenCollected.unregister(this.#routes.cache);
    this.#routes.cache.closeAll();
  }

  /** {@link Porter.close}, for `using porter = new Porter()`. */
  [Symbol.dispose](): void {
    Porter.#brand(this);
    this.close();
  }

  /** `util.inspect(porter)`: the options in force and the totals over every pool. */
  [inspect.custom](depth: number, options: InspectOptionsStylized, inspectFn: typeof inspect): string {
    Porter.#brand(this);
    let pools: object;
    try {
      const { pools: count, inUse, aging, free } = this.poolSummary(0).others;
      pools = { pools: count, inUse, aging, free };
    } catch (err) {
      pools = { error: (err as Error).message };
    }
    if (depth < 0) return options.stylize('[Porter]', 'special');
    // `depth` is what is left at this level (null: no limit).
    const state = this.#closed ? { closed: true } : {};
    return `Porter ${inspectFn({ options: this.#options, ...state, ...pools }, { ...options, depth })}`;
  }

  /** Whether `other` shares this Porter's registry (true for the default Porters of every thread). */
  sharesRegistryWith(other: Porter): boolean {
    Porter.#brand(this);
    if (typeof other !== 'object' || other === null || !(#closed in other)) {
      throw invalidArgType('other', 'an instance of Porter', other);
    }
    return this.#registry.sameAs(other.#registry);
  }
}
