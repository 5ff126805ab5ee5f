/**
 * Leases: one local port taken from a pool, released exactly once. A lease attached to
 * a socket follows the socket's lifecycle: released when it closes, into aging when this
 * side closed first (TIME_WAIT is ours), at once when the remote closed first or the
 * connection was reset (no TIME_WAIT here).
 */
import type { Socket } from 'node:net';
import { type InspectOptionsStylized, inspect } from 'node:util';
import * as native from '@porter/native';
import { callNative, ErrorCodes, fromThrown, invalidArgType, PorterError } from './errors.js';
import type { NativeRoute } from './routes.js';
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
 * Socket -> lease, kept on globalThis so that the ESM and CommonJS builds of this package,
 * loaded side by side in one app, share it.
 */
const leasesKey = Symbol.for('@porter/core/leases');
const shared = globalThis as { [leasesKey]?: WeakMap<object, PortLease> };
if (shared[leasesKey] === undefined) shared[leasesKey] = new WeakMap<object, PortLease>();
const leases: WeakMap<object, PortLease> = shared[leasesKey];

/** A lease on one port of one route. */
export class PortLease implements Lease {
  readonly #route: NativeRoute;
  /** `flow * 65536 + port`: the source address's position in the route, and the port. */
  readonly #handle: number;
  #released = false;
  #detach: (() => void) | undefined;
  #localAddress: string;
  /** The socket followed while the local address is still the unspecified one. */
  #resolveFrom: Socket | undefined;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;

  constructor(route: NativeRoute, handle: number, localAddress: string, remoteAddress: string, remotePort: number) {
    this.#route = route;
    this.#handle = handle;
    this.#localAddress = localAddress;
    this.localPort = handle % 65536;
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
    if (this.#resolveFrom !== undefined) {
      const actual = this.#resolveFrom.localAddress;
      if (actual !== undefined) {
        this.#localAddress = actual;
        this.#resolveFrom = undefined;
      }
    }
    return this.#localAddress;
  }

  get released(): boolean {
    return this.#released;
  }

  /** Whether `value` is a lease of this package (not merely an object that looks like one). */
  static isLease(value: unknown): value is PortLease {
    return typeof value === 'object' && value !== null && #handle in value;
  }

  release(options?: ReleaseOptions): boolean {
    if (!PortLease.isLease(this)) throw invalidArgType('this', 'a lease of @porter/core', this);
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
    if (this.#detach !== undefined) {
      this.#detach();
      this.#detach = undefined;
    }
    this.#resolveFrom = undefined;
    try {
      return native.routeRelease(this.#route, this.#handle, aging);
    } catch (thrown) {
      throw fromThrown(thrown);
    }
  }

  /** Whether the port is aging now (after release into aging, until its deadline). */
  isAging(): boolean {
    if (!PortLease.isLease(this)) throw invalidArgType('this', 'a lease of @porter/core', this);
    return callNative(() => native.routeIsAging(this.#route, this.#handle));
  }

  /** Ties the lease to `socket`'s lifecycle, leaving any socket it followed before. */
  follow(socket: Socket): void {
    if (this.#released) throw new PorterError(ErrorCodes.LEASE_RELEASED, 'the lease was released already');
    this.#detach?.();
    this.#detach = watch(socket, this);
    if (this.#localAddress === '0.0.0.0' || this.#localAddress === '::') this.#resolveFrom = socket;
    leases.set(socket, this);
  }

  /** `util.inspect(lease)`: every field, the getters' values included. */
  [inspect.custom](depth: number, options: InspectOptionsStylized, inspectFn: typeof inspect): string {
    if (depth < 0) return options.stylize('[PortLease]', 'special');
    return `PortLease ${inspectFn(this.toJSON(), { ...options, depth })}`;
  }

  toJSON(): object {
    return {
      localAddress: this.localAddress,
      localPort: this.localPort,
      remoteAddress: this.remoteAddress,
      remotePort: this.remotePort,
      released: this.#released,
    };
  }
}

type Resettable = Socket & { resetAndDestroy?: () => Socket };

/** Listens to `socket` and releases `lease` once it closes; returns the undo. */
function watch(socket: Socket, lease: PortLease): () => void {
  let remoteClosedFirst = false;
  let reset = false;
  const onEnd = (): void => {
    // 'end' (the peer's FIN) before this side called end(): the remote closed first.
    if (!socket.writableEnded) remoteClosedFirst = true;
  };
  const onClose = (): void => {
    // A reset by the peer leaves no TIME_WAIT either. (No 'error' listener here: adding
    // one would change what an unhandled socket error does.)
    const errored = (socket as Socket & { errored?: NodeJS.ErrnoException | null }).errored;
    if (errored?.code === 'ECONNRESET') reset = true;
    lease.releaseAs(!(remoteClosedFirst || reset));
  };
  const resettable = socket as Resettable;
  const original = Object.hasOwn(resettable, 'resetAndDestroy') ? resettable.resetAndDestroy : undefined;
  const inherited = resettable.resetAndDestroy;
  if (typeof inherited === 'function') {
    // resetAndDestroy() sends RST: no TIME_WAIT on this side.
    resettable.resetAndDestroy = function resetAndDestroy(this: Socket): Socket {
      reset = true;
      return inherited.call(this);
    };
  }
  socket.on('end', onEnd);
  socket.once('close', onClose);
  return () => {
    socket.off('end', onEnd);
    socket.off('close', onClose);
    // Assigned back rather than deleted: a delete would turn the socket into a slow
    // dictionary-mode object for the rest of its life.
    if (typeof inherited === 'function') resettable.resetAndDestroy = original ?? inherited;
  };
}

/** The lease of a socket porter connected (TCP or TLS), or undefined. */
export function leaseOf(socket: object): Lease | undefined {
  return leases.get(socket);
}

/** The internal lease object, for packages built on porter (such as @porter/tls). */
export function portLeaseOf(socket: object): PortLease | undefined {
  return leases.get(socket);
}
