/**
 * Porter: a configured registry of pools with connect(), allocate() and the inspection
 * methods. Host names are resolved here, once per connect; everything about ports and
 * sockets happens in the native core.
 */
import { channel } from 'node:diagnostics_channel';
import { closeSync } from 'node:fs';
import { isIP, type Socket } from 'node:net';
import { addAbortSignal } from 'node:stream';
import { type InspectOptionsStylized, inspect } from 'node:util';
import * as native from '@porter/native';
import { canonicalIp, unspecified } from './address.js';
import { allFailed, attemptPlan, type Candidate, resolveCandidates } from './attempts.js';
import { type CreateConnectionArg, createConnectionOn, type Dialed, type DialRequest } from './create-connection.js';
import { race } from './deadline.js';
import {
  AbortError,
  callNative,
  ErrorCodes,
  fromNativeError,
  fromThrown,
  invalidArgType,
  invalidArgValue,
  invalidThis,
  PorterError,
} from './errors.js';
import { type Lease, PortLease } from './lease.js';
import { type PorterOptions, type ResolvedOptions, resolveOptions, toNative } from './options.js';
import { closeWhenCollected, fast, type NativeRoute, type Route, RouteCache } from './routes.js';
import { socketFor } from './socket.js';
import { toNativeSocketOptions, validateSocketOptions } from './sockopts.js';
import { sourceAddress } from './source.js';
import { afterCloses, countConnect } from './turn.js';
import type {
  AllocateOptions,
  Capacity,
  ConnectOptions,
  PoolCounts,
  PoolSnapshot,
  PoolSummary,
  PorterStats,
} from './types.js';
import {
  missingArg,
  validateAbortSignal,
  validateBoolean,
  validateFamily,
  validateFunction,
  validateInteger,
  validateIp,
  validateNumber,
  validateObject,
  validatePort,
} from './validate.js';

/** Where net.connect publishes every client socket it makes; porter's are published too. */
const clientSocketChannel = channel('net.client.socket');

/** Lease handles below this cross from routeConnect packed beside the descriptor. */
const PACKED_HANDLE_LIMIT = 2 ** 24;

/**
 * Tells the core that a connected descriptor it handed over has its owner now (a socket,
 * or closed) and that the lease is JavaScript's to release.
 */
function adopt(route: NativeRoute, handle: number, fd: number): void {
  try {
    fast.adopt(route, handle, fd);
  } catch (thrown) {
    throw fromThrown(thrown);
  }
}

/** A connect's options, checked. */
interface Checked {
  host: string;
  hostFamily: number;
  port: number;
  family: 0 | 4 | 6;
  localAddress: string | undefined;
  timeout: number | undefined;
  signal: AbortSignal | undefined;
  /** The connect's own socket options, for the core (over the Porter's). */
  socketOptions: native.NativeSocketOptions | undefined;
  options: ConnectOptions;
}

/** A configured port allocator. See the package README. */
export class Porter {
  readonly #registry: native.Registry;
  readonly #options: ResolvedOptions;
  readonly #routes = new RouteCache();
  #closed = false;

  /**
   * @param options how ports are handed out; see {@link PorterOptions}.
   * @param registry internal: an existing native registry (the process default).
   */
  constructor(options?: PorterOptions, registry?: native.Registry) {
    this.#options = resolveOptions(options);
    const config = toNative(this.#options);
    this.#registry = registry ?? callNative(() => new native.Registry(config));
    closeWhenCollected.register(this, this.#routes, this.#routes);
  }

  /** The configuration in force, normalised. */
  /** Throws ERR_INVALID_THIS unless `self` is a Porter (a method called on something else). */
  static #brand(self: unknown): void {
    if (typeof self !== 'object' || self === null || !(#closed in self)) throw invalidThis('Porter');
  }

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

  /** The route to `address`:`port` (validated, canonical) from `localAddress` or the Porter's own. */
  #route(address: string, port: number, localAddress: string | undefined): Route {
    const last = this.#routes.last(address, port, localAddress);
    if (last !== undefined) return last;
    return this.#routes.get(address, port, localAddress, () => {
      const family = isIP(address);
      if (localAddress !== undefined && isIP(localAddress) !== family) {
        throw invalidArgValue('options.localAddress', localAddress, `is not of the family of ${address}`);
      }
      const locals =
        localAddress !== undefined
          ? [localAddress]
          : this.#options.localAddresses.map(canonicalIp).filter((a) => isIP(a) === family);
      const handle = callNative(() => this.#registry.route(locals, address, port));
      return { native: handle, address, port, locals, anyLocal: unspecified(family) };
    });
  }

  /** Checks a connect's options synchronously, reading each once. */
  #check(options: ConnectOptions): Checked {
    validateObject(options, 'options');
    const host = options.host ?? 'localhost';
    if (typeof host !== 'string' || host.length === 0) throw invalidArgType('options.host', 'a non-empty string', host);
    // The resolver would cut the name at a NUL and look up what comes before it.
    if (host.includes('\0')) throw invalidArgValue('options.host', host, 'must not contain a NUL character');
    const rawPort = options.port;
    if (rawPort === undefined) throw missingArg('The "options.port" argument must be specified');
    const port = validatePort(rawPort, 'options.port');
    const rawLocal = options.localAddress;
    const localAddress = rawLocal === undefined ? undefined : canonicalIp(validateIp(rawLocal, 'options.localAddress'));
    const localPort = (options as { localPort?: unknown }).localPort;
    if (localPort !== undefined) throw invalidArgValue('options.localPort', localPort, 'is chosen by porter');
    const family = validateFamily(options.family, 'options.family');
    if (options.lookup !== undefined) validateFunction(options.lookup, 'options.lookup');
    if (options.hints !== undefined) validateInteger(options.hints, 'options.hints', 0, 2 ** 31 - 1);
    const timeout = options.timeout === undefined ? undefined : validateNumber(options.timeout, 'options.timeout', 0);
    const signal = validateAbortSignal(options.signal, 'options.signal');
    if (options.noDelay !== undefined) validateBoolean(options.noDelay, 'options.noDelay');
    if (options.keepAlive !== undefined) validateBoolean(options.keepAlive, 'options.keepAlive');
    if (options.allowHalfOpen !== undefined) validateBoolean(options.allowHalfOpen, 'options.allowHalfOpen');
    if (options.keepAliveInitialDelay !== undefined) {
      validateNumber(options.keepAliveInitialDelay, 'options.keepAliveInitialDelay', 0);
    }
    if (options.autoSelectFamily !== undefined) validateBoolean(options.autoSelectFamily, 'options.autoSelectFamily');
    if (options.autoSelectFamilyAttemptTimeout !== undefined) {
      validateInteger(options.autoSelectFamilyAttemptTimeout, 'options.autoSelectFamilyAttemptTimeout', 1, 2 ** 31 - 1);
    }
    const socketOptions =
      options.socketOptions === undefined
        ? undefined
        : toNativeSocketOptions(validateSocketOptions(options.socketOptions, 'options.socketOptions'));
    const literal = isIP(host) === 0 ? host : canonicalIp(validateIp(host, 'options.host'));
    const hostFamily = isIP(literal);
    if (localAddress !== undefined && hostFamily !== 0 && isIP(localAddress) !== hostFamily) {
      throw invalidArgValue('options.localAddress', localAddress, `is not of the family of ${host}`);
    }
    return { host: literal, hostFamily, port, family, localAddress, timeout, signal, socketOptions, options };
  }

  /**
   * Connects to `options.host`:`options.port` from a port porter chose. Resolves once
   * connected to Node's own net.Socket, whose lease follows it (see {@link leaseOf}).
   * Bad options throw synchronously.
   */
  connect(options: ConnectOptions): Promise<Socket> {
    Porter.#brand(this);
    this.#assertOpen();
    const checked = this.#check(options);
    if (checked.signal?.aborted) {
      return Promise.reject(new AbortError(undefined, { cause: checked.signal.reason }));
    }
    return this.#connect(checked);
  }

  async #connect(c: Checked): Promise<Socket> {
    const { options } = c;
    const request: DialRequest = {
      host: c.host,
      port: c.port,
      family: c.family,
      localAddress: c.localAddress,
      timeout: c.timeout,
      signal: c.signal,
    };
    if (c.hostFamily === 0) {
      request.hints = options.hints;
      request.lookup = options.lookup;
      request.autoSelectFamily = options.autoSelectFamily;
      request.attemptTimeout = options.autoSelectFamilyAttemptTimeout;
    }
    if (c.socketOptions !== undefined) request.socketOptions = c.socketOptions;
    return this.#wrap(await this.#dial(request), options);
  }

  /**
   * The connect path up to a connected descriptor and its lease, for options validated
   * by the caller: resolution, the event-loop check, the native connect. Shared by
   * {@link Porter.connect} and {@link Porter.createConnection} (which opens the
   * descriptor on a socket it returned before).
   */
  async #dial(request: DialRequest): Promise<Dialed> {
    const { port, signal, localAddress } = request;
    const deadline = request.timeout === undefined ? undefined : performance.now() + request.timeout;
    const plan = attemptPlan(request.family, localAddress, request.autoSelectFamily, request.attemptTimeout);
    let candidates: Candidate[];
    const hostFamily = isIP(request.host);
    if (hostFamily !== 0) {
      candidates = [{ address: request.host, family: hostFamily === 6 ? 6 : 4 }];
    } else {
      const resolving = resolveCandidates(request.host, request.family, request.hints, request.lookup, plan.all);
      try {
        candidates = await race(resolving, deadline, signal, { address: request.host, port });
      } catch (err) {
        request.onLookup?.(err as Error, undefined, undefined, request.host);
        throw err;
      }
      for (const c of candidates) request.onLookup?.(null, c.address, c.family, request.host);
    }
    if (countConnect()) {
      // A loop of awaited connects that settle at once would starve the event loop.
      await afterCloses();
      if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
    }
    const token = signal ? new native.CancelToken() : undefined;
    const onAbort = (): void => token?.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    const errors: Error[] = [];
    try {
      for (let i = 0; i < candidates.length; i++) {
        const { address: given, family } = candidates[i] as Candidate;
        const address = canonicalIp(given);
        const last = i === candidates.length - 1;
        const remaining = deadline === undefined ? undefined : Math.max(0, deadline - performance.now());
        // Every attempt but the last gets the attempt timeout (Node's happy eyeballs).
        const byAttempt = !last && (remaining === undefined || plan.attemptTimeout < remaining);
        const limit = byAttempt ? plan.attemptTimeout : remaining;
        request.onAttempt?.(address, port, family);
        const outcome = await this.#attempt(address, port, localAddress, limit, token, request.socketOptions);
        if (!('error' in outcome)) {
          if (signal?.aborted) {
            // Aborted after the connect finished but before the descriptor was handed over.
            closeSync(outcome.fd);
            outcome.adopt();
            outcome.lease.releaseAs(true);
            throw new AbortError(undefined, { cause: signal.reason });
          }
          return outcome;
        }
        const e = outcome.error;
        if (e.code === ErrorCodes.ABORT_ERR) throw new AbortError(undefined, { cause: signal?.reason });
        if (e.code === ErrorCodes.CLOSED) throw fromNativeError(e, signal);
        if (e.syscall === 'connect' && (e.localAddress === '0.0.0.0' || e.localAddress === '::')) {
          // The pool's unspecified address: tell the one the kernel used for the connect
          // (a bind error keeps the address it bound).
          e.localAddress = (await sourceAddress(address, port, family)) ?? e.localAddress;
        }
        const err = fromNativeError(e, signal);
        if (byAttempt && e.code === 'ETIMEDOUT') request.onAttemptTimeout?.(address, port, family);
        else request.onAttemptFailed?.(address, port, family, err);
        if (!byAttempt && e.code === 'ETIMEDOUT' && deadline !== undefined) throw err; // the connect's deadline
        errors.push(err);
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    throw allFailed(errors);
  }

  /**
   * One native connect to `address`, with the connect's own socket options over the
   * Porter's, as data: the descriptor and its lease, or the error.
   */
  async #attempt(
    address: string,
    port: number,
    localAddress: string | undefined,
    limit: number | undefined,
    token: native.CancelToken | undefined,
    own: native.NativeSocketOptions | undefined,
  ): Promise<Dialed | { error: native.NativeError }> {
    this.#assertOpen();
    const route = this.#route(address, port, localAddress);
    // Settled at once when the connect is already over (usual on loopback), else a promise.
    const pending = callNative(() => native.routeConnect(route.native, limit, token, own));
    const result = pending instanceof Promise ? await pending : pending;
    let fd: number;
    let handle: number;
    if (typeof result === 'number') {
      // fd * 2^24 + handle: the common case crosses from the core as one number.
      handle = result % PACKED_HANDLE_LIMIT;
      fd = (result - handle) / PACKED_HANDLE_LIMIT;
    } else if ('error' in result) {
      return result;
    } else {
      ({ fd, handle } = result);
    }
    // The core keeps the descriptor and the lease until they are adopted, which the caller
    // does only once the descriptor has its owner (a socket's handle, or closed): a thread
    // that stops at any point in between (a worker terminated or exiting) loses neither,
    // since its teardown closes what was not adopted and is still the connection, and
    // gives back the port of everything not released.
    const local = route.locals[Math.floor(handle / 65536)] ?? route.anyLocal;
    // What the connect's own socket options over the Porter's set, for the lease.
    const ours = this.#options.socketOptions;
    const socket = {
      lingerZero: own?.lingerZeroOnClose ?? ours.lingerZeroOnClose ?? false,
      keepAlive: own?.keepAlive !== undefined || ours.keepAlive !== undefined,
    };
    const lease = new PortLease(route.native, handle, local, address, port, socket);
    return { fd, lease, adopt: () => adopt(route.native, handle, fd) };
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
    return createConnectionOn((request) => this.#dial(request), args);
  }

  #wrap({ fd, lease, adopt }: Dialed, options: ConnectOptions): Socket {
    let socket: Socket;
    try {
      socket = socketFor(fd, options.allowHalfOpen === true);
    } catch (err) {
      // socketFor closed the descriptor.
      adopt();
      lease.releaseAs(true);
      throw err;
    }
    adopt();
    lease.follow(socket);
    if (options.noDelay) socket.setNoDelay(true);
    // socketOptions.keepAlive, which the core set, wins over net's keepAlive options.
    if (options.keepAlive && !lease.keepAliveFromSocketOptions) {
      socket.setKeepAlive(true, options.keepAliveInitialDelay ?? 0);
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
    let route = this.#routes.last(address, port, localAddress);
    if (route === undefined) {
      route =
        typeof address === 'string' &&
        typeof port === 'number' &&
        (localAddress === undefined || typeof localAddress === 'string')
          ? this.#routes.touch(address, port, localAddress)
          : undefined;
    }
    route ??= this.#route(
      canonicalIp(validateIp(address, 'options.address')),
      validatePort(port, 'options.port'),
      localAddress === undefined ? undefined : canonicalIp(validateIp(localAddress, 'options.localAddress')),
    );
    let handle: number;
    try {
      handle = fast.allocate(route.native);
    } catch (thrown) {
      throw fromThrown(thrown);
    }
    const local = route.locals[Math.floor(handle / 65536)] ?? route.anyLocal;
    return new PortLease(route.native, handle, local, route.address, route.port);
  }

  /** Everything porter tracks, at this moment (aging expired and idle pools dropped first). */
  snapshot(): PoolSnapshot[] {
    Porter.#brand(this);
    return callNative(() => this.#registry.snapshot()).map((p) => ({
      localAddress: p.localAddress,
      remoteAddress: p.remoteAddress,
      remotePort: p.remotePort,
      inUse: p.inUse,
      aging: p.aging.map((a) => ({ port: a.port, remainingMs: a.remainingMs })),
      free: p.free,
    }));
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
    const s = callNative(() => this.#registry.stats());
    const byCode = (list: native.CodeCount[]): Record<string, number> =>
      Object.fromEntries(list.map((c) => [c.code, c.count]));
    return {
      allocations: s.allocations,
      releases: { aging: s.releasesAging, immediate: s.releasesImmediate },
      retries: byCode(s.retries),
      exhausted: s.exhausted,
      kernelFallbacks: s.kernelFallbacks,
      kernelPicks: s.kernelPicks,
      connectErrors: byCode(s.connectErrors),
      connectDuration: {
        bounds: s.durationBounds,
        counts: s.durationBuckets,
        count: s.durationCount,
        sumSeconds: s.durationSumSeconds,
      },
      pools: s.pools,
      poolsRetired: s.poolsRetired,
      socketReserve: {
        capacity: s.socketReserve.capacity,
        ready: { ipv4: s.socketReserve.readyIpv4, ipv6: s.socketReserve.readyIpv6 },
        taken: s.socketReserve.taken,
        madeInline: s.socketReserve.madeInline,
      },
    };
  }

  /**
   * How the range is split between the ports porter binds itself and the kernel's window,
   * per destination and source address, on the host's settings in force (followed while
   * the Porter lives: a change shows here within about a second).
   */
  capacity(): Capacity {
    Porter.#brand(this);
    const c = callNative(() => this.#registry.capacity());
    const pair = (i: native.Interval): [number, number] => [i.first, i.last];
    return {
      mode: c.mode as Capacity['mode'],
      explicit: c.explicit,
      kernel: c.kernel,
      perDestination: c.perDestination,
      explicitPorts: c.explicitPorts.map(pair),
      kernelWindow: c.kernelWindow ? pair(c.kernelWindow) : null,
      kernelWindowNarrowed: c.kernelWindowNarrowed,
      ephemeral: pair(c.ephemeral),
      servicePorts: c.servicePorts,
    };
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
    closeWhenCollected.unregister(this.#routes);
    this.#routes.closeAll();
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

  /** Whether `other` shares this Porter's registry (true for default instances everywhere). */
  sharesRegistryWith(other: Porter): boolean {
    Porter.#brand(this);
    if (typeof other !== 'object' || other === null || !(#closed in other)) {
      throw invalidArgType('other', 'an instance of Porter', other);
    }
    return this.#registry.sameAs(other.#registry);
  }
}
