/**
 * Leases: one local port taken from a pool, released exactly once. A lease attached to
 * a socket follows the socket's lifecycle: released when it closes, into aging when this
 * side closed first (TIME_WAIT is ours), at once when the remote closed first or the
 * connection was reset (no TIME_WAIT here). With `SO_LINGER` zero (`lingerZeroOnClose`)
 * this side's close resets the connection too, so it is released at once, unless the
 * peer's FIN answered this side's `end()` first (the kernel then went to TIME_WAIT before
 * the socket was closed).
 */
import { Socket } from 'node:net';
import { type InspectOptionsStylized, inspect } from 'node:util';
import * as native from '@porter/native';
import { callNative, ErrorCodes, fromThrown, invalidThis, PorterError } from './errors.js';
import { fast, leaseLocal, type Route } from './routes.js';
import { validateBoolean, validateObject } from './validate.js';

/** Options of {@link Lease.release}. */
export interface ReleaseOptions {
  /** Age the port before it is handed out again (default true). */
  aging?: boolean;
}

/** The public view of a lease. */
export interface Lease {
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Whether the port has been given back. */
  readonly released: boolean;
  /** Gives the port back (aging by default). Returns false if it was released already. */
  release(options?: ReleaseOptions): boolean;
}

/**
 * Where a socket keeps its lease: a registered symbol, so that the ESM and CommonJS
 * builds of this package, loaded side by side in one app, find each other's.
 */
const kLease = Symbol.for('@porter/core/lease');

/** An 'end' listener, or several (EventEmitter's `_events` slot). */
type EndSlot = ((this: Socket) => void) | Array<(this: Socket) => void> | undefined;

/** A socket a lease follows. */
type Followed = Socket & {
  [kLease]?: PortLease;
  resetAndDestroy?: () => Socket;
  /** EventEmitter's listeners by event: see {@link netEnd}. */
  _events?: { end?: EndSlot };
};

/**
 * net.Socket's own 'end' listener (`onReadableStreamEnd`, which its constructor adds to
 * every socket), read once from a socket that is never connected; undefined where a
 * runtime has none.
 */
const netEnd: EndSlot = (() => {
  const end = (new Socket() as Followed)._events?.end;
  return typeof end === 'function' ? end : undefined;
})();

/**
 * What a lease knows about its socket and its port, as bits of one small integer: one
 * field where seven booleans took seven (8 bytes each, per open connection).
 */
const RELEASED = 1 << 0;
/** The remote closed first (its FIN came before this side's end()). */
const REMOTE_CLOSED_FIRST = 1 << 1;
/** The connection was reset (RST sent or received): no TIME_WAIT. */
const RESET = 1 << 2;
/** The peer's FIN came after this side's end(): the kernel holds a TIME_WAIT already. */
const FIN_AFTER_OURS = 1 << 3;
/** The socket has SO_LINGER zero: closing it resets the connection. */
const LINGER_ZERO = 1 << 4;
/** The socket's keep-alive comes from `socketOptions.keepAlive`: see keepAliveFromSocketOptions. */
const KEEP_ALIVE_FROM_SOCKET_OPTIONS = 1 << 5;

/** The sockets that had a resetAndDestroy of their own when a lease began to follow them (rare). */
const ownResets = new WeakMap<Socket, () => Socket>();

/**
 * A lease on one port of one route. It follows at most one socket at a time through
 * listeners shared by every lease (no closure per connection). What every lease of a
 * route shares (the destination, the source addresses) is read from the route, and the
 * port from the lease id, so that a lease holds five fields: a porter socket costs
 * about what a net.connect socket costs (docs/ARCHITECTURE.md, "Leases and the socket
 * lifecycle").
 */
export class PortLease implements Lease {
  readonly #route: Route;
  /** The lease id, `flow * 65536 + port`: the source address's position in the route, and the port. */
  readonly #leaseId: number;
  /** The bits above (RELEASED, RESET, ...). */
  #state: number;
  /** The socket followed, if any. */
  #followed: Followed | undefined;
  /**
   * The source address the kernel chose, once read from the followed socket (a pool on
   * the unspecified address); undefined while the route's answers (see localAddress).
   */
  #chosenLocal: string | undefined;

  /**
   * @param lingerZero the socket the lease will follow has SO_LINGER zero
   *   (`lingerZeroOnClose`, from `socketOptions`: closing it leaves no TIME_WAIT).
   * @param keepAlive its keep-alive was set from `socketOptions.keepAlive`.
   */
  constructor(route: Route, leaseId: number, lingerZero = false, keepAlive = false) {
    this.#route = route;
    this.#leaseId = leaseId;
    this.#state = (lingerZero ? LINGER_ZERO : 0) | (keepAlive ? KEEP_ALIVE_FROM_SOCKET_OPTIONS : 0);
  }

  /**
   * The source address. A pool on the unspecified address ('0.0.0.0', '::') lets the
   * kernel choose it at connect; it is then read from the followed socket the first time
   * it is asked for while the socket is open (one getsockname, which Node caches), not on
   * every connect.
   */
  get localAddress(): string {
    if (!PortLease.isLease(this)) throw invalidThis('Lease');
    if (this.#chosenLocal !== undefined) return this.#chosenLocal;
    const local = leaseLocal(this.#route, this.#leaseId);
    if (this.#followed !== undefined && (local === '0.0.0.0' || local === '::')) {
      const actual = this.#followed.localAddress;
      if (actual !== undefined) {
        this.#chosenLocal = actual;
        return actual;
      }
    }
    return local;
  }

  get localPort(): number {
    if (!PortLease.isLease(this)) throw invalidThis('Lease');
    return this.#leaseId % 65536;
  }

  get remoteAddress(): string {
    if (!PortLease.isLease(this)) throw invalidThis('Lease');
    return this.#route.address;
  }

  get remotePort(): number {
    if (!PortLease.isLease(this)) throw invalidThis('Lease');
    return this.#route.port;
  }

  get released(): boolean {
    if (!PortLease.isLease(this)) throw invalidThis('Lease');
    return (this.#state & RELEASED) !== 0;
  }

  /**
   * The socket's keep-alive comes from `socketOptions.keepAlive` (the core set it before
   * the connect): porter's packages leave it alone rather than call setKeepAlive(), which
   * would overwrite TCP_KEEPIDLE (and, with Node's libuv, TCP_KEEPINTVL and TCP_KEEPCNT).
   */
  get keepAliveFromSocketOptions(): boolean {
    return (this.#state & KEEP_ALIVE_FROM_SOCKET_OPTIONS) !== 0;
  }

  /** Whether `value` is a lease of this package (not merely an object that looks like one). */
  static isLease(value: unknown): value is PortLease {
    return typeof value === 'object' && value !== null && #leaseId in value;
  }

  release(options?: ReleaseOptions): boolean {
    if (!PortLease.isLease(this)) throw invalidThis('Lease');
    let aging = true;
    if (options !== undefined) {
      validateObject(options, 'options');
      if (options.aging !== undefined) aging = validateBoolean(options.aging, 'options.aging');
    }
    return this.releaseAs(aging);
  }

  /** Releases without validation; the lifecycle hooks call this. */
  releaseAs(aging: boolean): boolean {
    if ((this.#state & RELEASED) !== 0) return false;
    this.#state |= RELEASED;
    PortLease.#unfollow(this);
    try {
      return fast.release(this.#route.native, this.#leaseId, aging);
    } catch (thrown) {
      throw fromThrown(thrown);
    }
  }

  /**
   * Tells the core that the connected descriptor `fd` it handed over with this lease has
   * its owner now (a socket's handle has it, or it was closed) and that the lease is
   * JavaScript's to release: called once, before the lease is released or follows a
   * socket. Until then the core owns the descriptor, and closes it if this thread stops.
   * (A method, not a field: a lease keeps no descriptor.)
   */
  adopt(fd: number): void {
    try {
      fast.adopt(this.#route.native, this.#leaseId, fd);
    } catch (thrown) {
      throw fromThrown(thrown);
    }
  }

  /** Whether the port is aging now (after release into aging, until its deadline). */
  isAging(): boolean {
    if (!PortLease.isLease(this)) throw invalidThis('Lease');
    return callNative(() => native.routeIsAging(this.#route.native, this.#leaseId));
  }

  /** Ties the lease to `socket`'s lifecycle, leaving any socket it followed before. */
  follow(socket: Socket): void {
    if ((this.#state & RELEASED) !== 0) {
      throw new PorterError(ErrorCodes.LEASE_RELEASED, 'the lease was released already');
    }
    PortLease.#unfollow(this);
    const followed = socket as Followed;
    this.#followed = followed;
    followed[kLease] = this;
    // First in line: a listener added earlier (createConnection's sockets are the user's
    // before they connect) may call end() on 'end', and the port is back by the time
    // anyone else hears 'close'.
    const events = followed._events;
    if (netEnd !== undefined && events !== undefined && events.end === netEnd) {
      // The socket's only 'end' listener is net's own: the lease's takes its place and
      // calls it. A second listener would make the slot an array of two (64 bytes per
      // socket, 8 % of a net.connect socket's heap); 'close', which a socket starts with
      // no listener for, has a slot of its own already.
      events.end = PortLease.#onEndThenNet;
    } else {
      followed.prependListener('end', PortLease.#onEnd);
    }
    followed.prependListener('close', PortLease.#onClose);
    if (typeof followed.resetAndDestroy === 'function') {
      // resetAndDestroy() sends RST: no TIME_WAIT on this side.
      if (Object.hasOwn(followed, 'resetAndDestroy')) ownResets.set(followed, followed.resetAndDestroy);
      followed.resetAndDestroy = PortLease.#resetAndDestroy;
    }
  }

  /**
   * Stops following the socket (it keeps pointing at the lease, for leaseOf()). Static:
   * a private instance method would give every lease a field more (V8's brand check).
   */
  static #unfollow(lease: PortLease): void {
    const socket = lease.#followed;
    if (socket === undefined) return;
    const events = socket._events;
    const end = events?.end;
    if (end === PortLease.#onEndThenNet) {
      (events as { end?: EndSlot }).end = netEnd;
    } else if (Array.isArray(end) && end.includes(PortLease.#onEndThenNet)) {
      // Listeners added after the lease's: net's goes back to the lease's place.
      end[end.indexOf(PortLease.#onEndThenNet)] = netEnd as (this: Socket) => void;
    } else {
      socket.off('end', PortLease.#onEnd);
    }
    socket.off('close', PortLease.#onClose);
    if (socket.resetAndDestroy === PortLease.#resetAndDestroy) {
      // Assigned back rather than deleted: a delete would turn the socket into a slow
      // dictionary-mode object for the rest of its life.
      socket.resetAndDestroy = ownResets.get(socket) ?? (Object.getPrototypeOf(socket) as Followed).resetAndDestroy;
      ownResets.delete(socket);
    }
    lease.#followed = undefined;
  }

  /**
   * 'end' (the peer's FIN) before this side called end(): the remote closed first. After
   * it: the FIN answered ours, and the kernel has put the connection in TIME_WAIT.
   */
  static readonly #onEnd = function onEnd(this: Followed): void {
    const lease = this[kLease];
    if (lease === undefined || lease.#followed !== this) return;
    lease.#state |= this.writableEnded ? FIN_AFTER_OURS : REMOTE_CLOSED_FIRST;
  };

  /** {@link PortLease.#onEnd}, then net's own 'end' listener, whose place it took. */
  static readonly #onEndThenNet = function onEnd(this: Followed): void {
    PortLease.#onEnd.call(this);
    (netEnd as (this: Socket) => void).call(this);
  };

  /**
   * The socket closed: the port goes back, at once when the remote closed first or the
   * connection was reset (a reset by the peer leaves no TIME_WAIT either, nor does this
   * side's close with SO_LINGER zero, unless TIME_WAIT came first: see FIN_AFTER_OURS),
   * into aging otherwise. (No 'error' listener: adding one would change what an
   * unhandled socket error does.)
   *
   * A FIN that reached the kernel after this side's end() but was not read before the
   * socket was destroyed leaves a TIME_WAIT this cannot see: the port is then released at
   * once, and a connect from it to the same destination meets that TIME_WAIT
   * (EADDRNOTAVAIL), which porter retries like any collision, ageing the port.
   */
  static readonly #onClose = function onClose(this: Followed): void {
    const lease = this[kLease];
    if (lease === undefined || lease.#followed !== this) return;
    const errored = (this as Socket & { errored?: NodeJS.ErrnoException | null }).errored;
    if (errored?.code === 'ECONNRESET') lease.#state |= RESET;
    const state = lease.#state;
    const aborted = (state & LINGER_ZERO) !== 0 && (state & FIN_AFTER_OURS) === 0;
    lease.releaseAs(!((state & (REMOTE_CLOSED_FIRST | RESET)) !== 0 || aborted));
  };

  static readonly #resetAndDestroy = function resetAndDestroy(this: Followed): Socket {
    const lease = this[kLease];
    if (lease !== undefined && lease.#followed === this) lease.#state |= RESET;
    const original = ownResets.get(this) ?? (Object.getPrototypeOf(this) as Followed).resetAndDestroy;
    return (original as () => Socket).call(this);
  };

  /** `util.inspect(lease)`: every field, the getters' values included. */
  [inspect.custom](depth: number, options: InspectOptionsStylized, inspectFn: typeof inspect): string {
    if (depth < 0) return options.stylize('[PortLease]', 'special');
    return `PortLease ${inspectFn(this.toJSON(), { ...options, depth })}`;
  }

  toJSON(): object {
    if (!PortLease.isLease(this)) throw invalidThis('Lease');
    return {
      localAddress: this.localAddress,
      localPort: this.localPort,
      remoteAddress: this.remoteAddress,
      remotePort: this.remotePort,
      released: this.released,
    };
  }
}

/** The lease of a socket porter connected (TCP or TLS), or undefined (for anything else too). */
export function leaseOf(socket: object): Lease | undefined {
  if ((typeof socket !== 'object' && typeof socket !== 'function') || socket === null) return undefined;
  return (socket as Followed)[kLease];
}

/** The internal lease object, for packages built on porter (such as @porter/tls). */
export function portLeaseOf(socket: object): PortLease | undefined {
  return (socket as Followed)[kLease];
}
