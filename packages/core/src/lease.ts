/**
 * Leases: one local port taken from a pool, released exactly once. A lease attached to
 * a socket follows the socket's lifecycle: released when it closes, into aging when this
 * side closed first (TIME_WAIT is ours), at once when the remote closed first or the
 * connection was reset (no TIME_WAIT here). With `SO_LINGER` zero (`lingerZeroOnClose`)
 * this side's close resets the connection too, so it is released at once, unless the
 * peer's FIN answered this side's `end()` first (the kernel then went to TIME_WAIT before
 * the socket was closed).
 */
import type { Socket } from 'node:net';
import { type InspectOptionsStylized, inspect } from 'node:util';
import * as native from '@porter/native';
import { callNative, ErrorCodes, fromThrown, invalidThis, PorterError } from './errors.js';
import { fast, type NativeRoute } from './routes.js';
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

/** A socket a lease follows. */
type Followed = Socket & { [kLease]?: PortLease; resetAndDestroy?: () => Socket };

/**
 * A lease on one port of one route. It follows at most one socket at a time through
 * listeners shared by every lease (no closure per connection: a porter socket costs about
 * what a net.connect socket costs).
 */
export class PortLease implements Lease {
  readonly #route: NativeRoute;
  /** The lease id, `flow * 65536 + port`: the source address's position in the route, and the port. */
  readonly #leaseId: number;
  #released = false;
  #localAddress: string;
  /** The socket followed, if any. */
  #followed: Followed | undefined;
  /** Whether the local address must still be read from the followed socket. */
  #unresolved = false;
  /** The remote closed first (its FIN came before this side's end()). */
  #remoteClosedFirst = false;
  /** The connection was reset (RST sent or received): no TIME_WAIT. */
  #reset = false;
  /** The socket has SO_LINGER zero: closing it resets the connection. */
  readonly #lingerZero: boolean;
  /**
   * The socket's keep-alive comes from `socketOptions.keepAlive` (the core set it before
   * the connect): porter's packages leave it alone rather than call setKeepAlive(), which
   * would overwrite TCP_KEEPIDLE (and, with Node's libuv, TCP_KEEPINTVL and TCP_KEEPCNT).
   */
  readonly keepAliveFromSocketOptions: boolean;
  /** The peer's FIN came after this side's end(): the kernel holds a TIME_WAIT already. */
  #finAfterOurs = false;
  /** The socket's own resetAndDestroy when it had one (null: the prototype's). */
  #ownReset: (() => Socket) | null = null;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;

  /**
   * @param socket what `socketOptions` (the connect's over the Porter's) set on the socket
   *   the lease will follow: SO_LINGER zero (`lingerZeroOnClose`: closing it leaves no
   *   TIME_WAIT), and keep-alive.
   */
  constructor(
    route: NativeRoute,
    leaseId: number,
    localAddress: string,
    remoteAddress: string,
    remotePort: number,
    socket: { lingerZero: boolean; keepAlive: boolean } = { lingerZero: false, keepAlive: false },
  ) {
    this.#route = route;
    this.#lingerZero = socket.lingerZero;
    this.keepAliveFromSocketOptions = socket.keepAlive;
    this.#leaseId = leaseId;
    this.#localAddress = localAddress;
    this.localPort = leaseId % 65536;
    this.remoteAddress = remoteAddress;
    this.remotePort = remotePort;
  }

  /**
   * The source address. A pool on the unspecified address ('0.0.0.0', '::') lets the
   * kernel choose it at connect; it is then read from the followed socket the first time
   * it is asked for while the socket is open (one getsockname, which Node caches), not on
   * every connect.
   */
  get localAddress(): string {
    if (!PortLease.isLease(this)) throw invalidThis('Lease');
    if (this.#unresolved && this.#followed !== undefined) {
      const actual = this.#followed.localAddress;
      if (actual !== undefined) {
        this.#localAddress = actual;
        this.#unresolved = false;
      }
    }
    return this.#localAddress;
  }

  get released(): boolean {
    if (!PortLease.isLease(this)) throw invalidThis('Lease');
    return this.#released;
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
    if (this.#released) return false;
    this.#released = true;
    this.#unfollow();
    this.#unresolved = false;
    try {
      return fast.release(this.#route, this.#leaseId, aging);
    } catch (thrown) {
      throw fromThrown(thrown);
    }
  }

  /** Whether the port is aging now (after release into aging, until its deadline). */
  isAging(): boolean {
    if (!PortLease.isLease(this)) throw invalidThis('Lease');
    return callNative(() => native.routeIsAging(this.#route, this.#leaseId));
  }

  /** Ties the lease to `socket`'s lifecycle, leaving any socket it followed before. */
  follow(socket: Socket): void {
    if (this.#released) throw new PorterError(ErrorCodes.LEASE_RELEASED, 'the lease was released already');
    this.#unfollow();
    const followed = socket as Followed;
    this.#followed = followed;
    this.#unresolved = this.#localAddress === '0.0.0.0' || this.#localAddress === '::';
    followed[kLease] = this;
    // First in line: a listener added earlier (createConnection's sockets are the user's
    // before they connect) may call end() on 'end', and the port is back by the time
    // anyone else hears 'close'.
    followed.prependListener('end', PortLease.#onEnd);
    followed.prependListener('close', PortLease.#onClose);
    if (typeof followed.resetAndDestroy === 'function') {
      // resetAndDestroy() sends RST: no TIME_WAIT on this side.
      this.#ownReset = Object.hasOwn(followed, 'resetAndDestroy') ? followed.resetAndDestroy : null;
      followed.resetAndDestroy = PortLease.#resetAndDestroy;
    }
  }

  /** Stops following the socket (it keeps pointing at this lease, for leaseOf()). */
  #unfollow(): void {
    const socket = this.#followed;
    if (socket === undefined) return;
    socket.off('end', PortLease.#onEnd);
    socket.off('close', PortLease.#onClose);
    if (socket.resetAndDestroy === PortLease.#resetAndDestroy) {
      // Assigned back rather than deleted: a delete would turn the socket into a slow
      // dictionary-mode object for the rest of its life.
      socket.resetAndDestroy = this.#ownReset ?? (Object.getPrototypeOf(socket) as Followed).resetAndDestroy;
    }
    this.#followed = undefined;
  }

  /**
   * 'end' (the peer's FIN) before this side called end(): the remote closed first. After
   * it: the FIN answered ours, and the kernel has put the connection in TIME_WAIT.
   */
  static readonly #onEnd = function onEnd(this: Followed): void {
    const lease = this[kLease];
    if (lease === undefined || lease.#followed !== this) return;
    if (this.writableEnded) lease.#finAfterOurs = true;
    else lease.#remoteClosedFirst = true;
  };

  /**
   * The socket closed: the port goes back, at once when the remote closed first or the
   * connection was reset (a reset by the peer leaves no TIME_WAIT either, nor does this
   * side's close with SO_LINGER zero, unless TIME_WAIT came first: see #finAfterOurs),
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
    if (errored?.code === 'ECONNRESET') lease.#reset = true;
    const aborted = lease.#lingerZero && !lease.#finAfterOurs;
    lease.releaseAs(!(lease.#remoteClosedFirst || lease.#reset || aborted));
  };

  static readonly #resetAndDestroy = function resetAndDestroy(this: Followed): Socket {
    const lease = this[kLease];
    if (lease !== undefined && lease.#followed === this) lease.#reset = true;
    const own = lease === undefined ? null : lease.#ownReset;
    const original = own ?? (Object.getPrototypeOf(this) as Followed).resetAndDestroy;
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
      released: this.#released,
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
