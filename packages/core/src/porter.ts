/**
 * Porter: a configured allocator (one native registry) with connect(), allocate() and
 * snapshot(). Host names are resolved here, once per connect; everything about ports
 * and sockets happens in the native core.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { closeSync } from 'node:fs';
import { isIP, type LookupFunction, type Socket } from 'node:net';
import { type InspectOptionsStylized, inspect } from 'node:util';
import * as native from '@porter/native';
import {
  AbortError,
  callNative,
  fromNative,
  fromThrown,
  invalidArgType,
  invalidArgValue,
  systemError,
} from './errors.js';
import { type Lease, PortLease } from './lease.js';
import { type PorterOptions, type PortMode, type ResolvedOptions, resolveOptions, toNative } from './options.js';
import { socketFor } from './socket.js';
import {
  validateAbortSignal,
  validateBoolean,
  validateFamily,
  validateInteger,
  validateIp,
  validateNumber,
  validateObject,
  validatePort,
} from './validate.js';

/** Options of {@link Porter.connect}: those of `net.connect` that make sense here. */
export interface ConnectOptions {
  /** Host name or IP literal (default 'localhost'). Names resolve through dns.lookup. */
  host?: string;
  port: number | string;
  /** A source address (IP literal) for this connect, instead of the Porter's own. */
  localAddress?: string;
  /** Address family for name resolution: 0 (any), 4 or 6. */
  family?: number;
  /** A custom resolver with the signature of dns.lookup. */
  lookup?: LookupFunction;
  /** dns.lookup hints. */
  hints?: number;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  allowHalfOpen?: boolean;
  /** Milliseconds for the whole connect, resolution included; rejects with ETIMEDOUT. */
  timeout?: number;
  /** Aborts the connect; rejects with an AbortError (code ABORT_ERR). */
  signal?: AbortSignal;
}

/** Options of {@link Porter.allocate}. */
export interface AllocateOptions {
  /** The remote address (an IP literal). */
  address: string;
  /** The remote port. */
  port: number;
  /** The local address the port is for (default: the Porter's, or unspecified). */
  localAddress?: string;
}

/** One pool in a snapshot. */
export interface PoolSnapshot {
  localAddress: string;
  remoteAddress: string;
  remotePort: number;
  inUse: number[];
  aging: { port: number; remainingMs: number }[];
  free: number;
}

/** One pool's counts in {@link Porter.poolCounts}. */
export interface PoolCounts {
  localAddress: string;
  remoteAddress: string;
  remotePort: number;
  inUse: number;
  aging: number;
  free: number;
}

/** The busiest pools and the others summed, from {@link Porter.poolSummary}. */
export interface PoolSummary {
  /** At most the number asked for: most ports in use first, then most aging. */
  busiest: PoolCounts[];
  /** Every other pool, summed (`pools`: how many). */
  others: { pools: number; inUse: number; aging: number; free: number };
}

/** Counters and the connect-duration histogram, read from the core. */
export interface PorterStats {
  allocations: number;
  releases: { aging: number; immediate: number };
  retries: Record<string, number>;
  exhausted: number;
  /** Connections whose port the kernel picked outside the range (the fallback). */
  kernelFallbacks: number;
  /** Connections whose port the kernel picked inside the range (its window; see `mode`). */
  kernelPicks: number;
  connectErrors: Record<string, number>;
  connectDuration: { bounds: number[]; counts: number[]; count: number; sumSeconds: number };
  pools: number;
  /**
   * The process-wide reserve of ready sockets (the same for every Porter): its capacity
   * per family, the sockets ready now, and how many connects took one (`taken`) or made
   * their own because none was ready or the reserve is off (`madeInline`).
   */
  socketReserve: { capacity: number; ready: { ipv4: number; ipv6: number }; taken: number; madeInline: number };
}

/** How a Porter's range is split between porter and the kernel, from {@link Porter.capacity}. */
export interface Capacity {
  mode: PortMode;
  /** Ports porter binds itself, per destination and source address. */
  explicit: number;
  /** Ports the kernel may pick in its window of the range, per destination and source address. */
  kernel: number;
  /** `explicit + kernel`: connections per destination and source address. */
  perDestination: number;
  /** The ports porter binds itself, as inclusive `[first, last]` intervals. */
  explicitPorts: [number, number][];
  /** The part of the range the kernel picks in, or null (mode 'pool', or no overlap). */
  kernelWindow: [number, number] | null;
  /** Whether sockets carry IP_LOCAL_PORT_RANGE to keep the kernel inside its window. */
  kernelWindowNarrowed: boolean;
  /** The kernel's ephemeral range, as read when the Porter was made. */
  ephemeral: [number, number];
}

/** One destination (from one choice of local addresses) and its native route. */
interface Route {
  id: number;
  address: string;
  port: number;
  locals: string[];
  /** The unspecified address of the destination's family. */
  anyLocal: string;
}

const unspecified = (family: number): string => (family === 6 ? '::' : '0.0.0.0');
/** Lease handles below this cross from routeConnect packed beside the descriptor. */
const PACKED_HANDLE_LIMIT = 2 ** 24;

function lookupOnce(
  host: string,
  family: 0 | 4 | 6,
  hints: number | undefined,
  lookup: LookupFunction | undefined,
): Promise<LookupAddress> {
  return new Promise((resolve, reject) => {
    const fn = (lookup ?? dnsLookup) as (
      hostname: string,
      options: object,
      cb: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
    ) => void;
    fn(host, { family, hints, all: false }, (err, address, fam) => {
      if (err) reject(err);
      else if (typeof address === 'string') resolve({ address, family: fam ?? isIP(address) });
      else if (Array.isArray(address) && address[0]) resolve(address[0]);
      else reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND', hostname: host }));
    });
  });
}

function timeoutError(target: { address: string; port: number }): Error {
  return systemError({
    code: 'ETIMEDOUT',
    message: '',
    errno: 110,
    syscall: 'connect',
    address: target.address,
    port: target.port,
  });
}

/** A configured port allocator. See the package README. */
export class Porter {
  readonly #allocator: native.Allocator;
  readonly #options: ResolvedOptions;
  /** Routes by `localAddress|address|port`; a key is only ever added once validated. */
  readonly #routes = new Map<string, Route>();
  /** The last route used, with the local address asked for: a one-entry cache. */
  #lastRoute: Route | undefined;
  #lastLocal: string | undefined;

  /**
   * @param options how ports are handed out; see {@link PorterOptions}.
   * @param allocator internal: an existing native allocator (the process default).
   */
  constructor(options?: PorterOptions, allocator?: native.Allocator) {
    this.#options = resolveOptions(options);
    const config = toNative(this.#options);
    this.#allocator = allocator ?? callNative(() => new native.Allocator(config));
  }

  /** The configuration in force, normalised. */
  get options(): Readonly<ResolvedOptions> {
    return this.#options;
  }

  /** The route to `address`:`port` from `localAddress` (or the Porter's own). */
  #route(address: string, port: number, localAddress: string | undefined): Route {
    const last = this.#lastRoute;
    if (last !== undefined && last.address === address && last.port === port && this.#lastLocal === localAddress) {
      return last;
    }
    const key = `${localAddress ?? ''}|${address}|${port}`;
    let route = this.#routes.get(key);
    if (route === undefined) {
      const family = isIP(address);
      if (localAddress !== undefined && isIP(localAddress) !== family) {
        throw invalidArgValue('options.localAddress', localAddress, `is not of the family of ${address}`);
      }
      const locals =
        localAddress !== undefined ? [localAddress] : this.#options.localAddresses.filter((a) => isIP(a) === family);
      const id = callNative(() => this.#allocator.route(locals, address, port));
      route = { id, address, port, locals, anyLocal: unspecified(family) };
      this.#routes.set(key, route);
    }
    this.#lastRoute = route;
    this.#lastLocal = localAddress;
    return route;
  }

  /**
   * Connects to `options.host`:`options.port` from a port porter chose. Resolves once
   * connected to Node's own net.Socket, whose lease follows it (see {@link leaseOf}).
   * Bad options throw synchronously.
   */
  connect(options: ConnectOptions): Promise<Socket> {
    validateObject(options, 'options');
    const host = options.host ?? 'localhost';
    if (typeof host !== 'string' || host.length === 0) throw invalidArgType('options.host', 'a non-empty string', host);
    if (options.port === undefined) throw invalidArgValue('options.port', undefined, 'is required');
    const port = validatePort(options.port, 'options.port');
    const localAddress =
      options.localAddress === undefined ? undefined : validateIp(options.localAddress, 'options.localAddress');
    if ('localPort' in options && (options as { localPort?: unknown }).localPort !== undefined) {
      throw invalidArgValue('options.localPort', (options as { localPort?: unknown }).localPort, 'is chosen by porter');
    }
    const family = validateFamily(options.family, 'options.family');
    if (options.lookup !== undefined && typeof options.lookup !== 'function') {
      throw invalidArgType('options.lookup', 'of type function', options.lookup);
    }
    const timeout = options.timeout === undefined ? undefined : validateNumber(options.timeout, 'options.timeout', 0);
    const signal = validateAbortSignal(options.signal, 'options.signal');
    if (options.noDelay !== undefined) validateBoolean(options.noDelay, 'options.noDelay');
    if (options.keepAlive !== undefined) validateBoolean(options.keepAlive, 'options.keepAlive');
    if (options.allowHalfOpen !== undefined) validateBoolean(options.allowHalfOpen, 'options.allowHalfOpen');
    if (options.keepAliveInitialDelay !== undefined) {
      validateNumber(options.keepAliveInitialDelay, 'options.keepAliveInitialDelay', 0);
    }
    const hostFamily = isIP(host);
    if (localAddress !== undefined && hostFamily !== 0 && isIP(localAddress) !== hostFamily) {
      throw invalidArgValue('options.localAddress', localAddress, `is not of the family of ${host}`);
    }
    if (signal?.aborted) return Promise.reject(new AbortError(undefined, { cause: signal.reason }));
    return this.#connect(options, host, hostFamily !== 0, port, family, localAddress, timeout, signal);
  }

  async #connect(
    options: ConnectOptions,
    host: string,
    hostIsIp: boolean,
    port: number,
    family: 0 | 4 | 6,
    localAddress: string | undefined,
    timeout: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Socket> {
    const deadline = timeout === undefined ? undefined : performance.now() + timeout;
    let address = host;
    if (!hostIsIp) {
      const resolved = lookupOnce(host, family, options.hints, options.lookup);
      address = (await race(resolved, deadline, signal, { address: host, port })).address;
    }
    if (countConnect()) {
      // Connects usually settle at once on loopback, so a loop of awaited connects could
      // run without the event loop ever turning, starving close events (which release
      // ports), timers and other sockets. Every so many, wait until it has turned.
      await afterCloses();
      if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
    }
    const route = this.#route(address, port, localAddress);
    const remaining = deadline === undefined ? undefined : Math.max(0, deadline - performance.now());
    const token = signal ? new native.CancelToken() : undefined;
    const onAbort = (): void => token?.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    let result: Awaited<ReturnType<typeof native.routeConnect>>;
    try {
      // Settled at once when the connect is already over (usual on loopback), else a promise.
      const pending = callNative(() => native.routeConnect(route.id, remaining, token));
      result = pending instanceof Promise ? await pending : pending;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    let fd: number;
    let handle: number;
    if (typeof result === 'number') {
      // fd * 2^24 + handle: the common case crosses from the core as one number.
      handle = result % PACKED_HANDLE_LIMIT;
      fd = (result - handle) / PACKED_HANDLE_LIMIT;
    } else if ('error' in result) {
      throw fromNative(result.error, signal);
    } else {
      ({ fd, handle } = result);
    }
    const lease = new PortLease(route.id, handle, route.locals[handle >>> 16] ?? route.anyLocal, address, port);
    if (signal?.aborted) {
      // Aborted after the connect finished but before the socket was handed over.
      closeSync(fd);
      lease.releaseAs(true);
      throw new AbortError(undefined, { cause: signal.reason });
    }
    return this.#wrap(fd, lease, options);
  }

  #wrap(fd: number, lease: PortLease, options: ConnectOptions): Socket {
    let socket: Socket;
    try {
      socket = socketFor(fd, options.allowHalfOpen === true);
    } catch (err) {
      lease.releaseAs(true);
      throw err;
    }
    lease.follow(socket);
    if (options.noDelay) socket.setNoDelay(true);
    if (options.keepAlive) socket.setKeepAlive(true, options.keepAliveInitialDelay ?? 0);
    return socket;
  }

  /**
   * Takes a port for the destination without connecting, for users who create sockets
   * themselves (bind it with SO_REUSEADDR). Release it with `lease.release()`.
   * Throws ERR_PORTER_EXHAUSTED when the pool is empty.
   */
  allocate(options: AllocateOptions): Lease {
    validateObject(options, 'options');
    const { address, port, localAddress } = options;
    // A cached route means these exact values were validated before.
    let route = this.#lastRoute;
    if (route === undefined || route.address !== address || route.port !== port || this.#lastLocal !== localAddress) {
      route =
        typeof address === 'string' &&
        typeof port === 'number' &&
        (localAddress === undefined || typeof localAddress === 'string')
          ? this.#routes.get(`${localAddress ?? ''}|${address}|${port}`)
          : undefined;
    }
    if (route === undefined) {
      route = this.#route(
        validateIp(address, 'options.address'),
        validatePort(port, 'options.port'),
        localAddress === undefined ? undefined : validateIp(localAddress, 'options.localAddress'),
      );
    }
    this.#lastRoute = route;
    this.#lastLocal = localAddress;
    let handle: number;
    try {
      handle = native.routeAllocate(route.id);
    } catch (thrown) {
      throw fromThrown(thrown);
    }
    return new PortLease(route.id, handle, route.locals[handle >>> 16] ?? route.anyLocal, route.address, route.port);
  }

  /** Everything porter tracks, at this moment (aging expired first). */
  snapshot(): PoolSnapshot[] {
    return callNative(() => this.#allocator.snapshot()).map((p) => ({
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
    return callNative(() => this.#allocator.poolCounts());
  }

  /**
   * The `busiest` pools with their own counts (most ports in use first, then most aging;
   * ties by destination, so the choice is stable) and every other pool summed. The
   * selection runs in the core, so the cost in JavaScript grows with `busiest`, not with
   * the number of pools: what an exporter with a cap on its series needs.
   */
  poolSummary(busiest: number): PoolSummary {
    const n = validateInteger(busiest, 'busiest', 0, 2 ** 32 - 1);
    return callNative(() => this.#allocator.poolSummary(n));
  }

  /** The counters kept by the core (allocations, releases, retries, errors, durations). */
  stats(): PorterStats {
    const s = callNative(() => this.#allocator.stats());
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
   * per destination and source address, on the host settings read when it was made.
   */
  capacity(): Capacity {
    const c = callNative(() => this.#allocator.capacity());
    const pair = (i: native.Interval): [number, number] => [i.first, i.last];
    return {
      mode: c.mode as PortMode,
      explicit: c.explicit,
      kernel: c.kernel,
      perDestination: c.perDestination,
      explicitPorts: c.explicitPorts.map(pair),
      kernelWindow: c.kernelWindow ? pair(c.kernelWindow) : null,
      kernelWindowNarrowed: c.kernelWindowNarrowed,
      ephemeral: pair(c.ephemeral),
    };
  }

  /** `util.inspect(porter)`: the options in force and the totals over every pool. */
  [inspect.custom](depth: number, options: InspectOptionsStylized, inspectFn: typeof inspect): string {
    let pools: object;
    try {
      const { pools: count, inUse, aging, free } = this.poolSummary(0).others;
      pools = { pools: count, inUse, aging, free };
    } catch (err) {
      pools = { error: (err as Error).message };
    }
    if (depth < 0) return options.stylize('[Porter]', 'special');
    // `depth` is what is left at this level (null: no limit).
    return `Porter ${inspectFn({ options: this.#options, ...pools }, { ...options, depth })}`;
  }

  /** Whether `other` shares this Porter's registry (true for default instances everywhere). */
  sharesRegistryWith(other: Porter): boolean {
    return this.#allocator.sameAs(other.#allocator);
  }
}

/** Connects started since the event loop last reached its check phase. */
let connectsSinceTurn = 0;
/** How many connects may start before one waits for the event loop to turn. */
const CONNECTS_PER_TURN = 32;

function resetConnectCount(): void {
  connectsSinceTurn = 0;
}

/** Counts a connect; true when it should wait for the event loop first. */
function countConnect(): boolean {
  if (connectsSinceTurn === 0) setImmediate(resetConnectCount);
  connectsSinceTurn += 1;
  return connectsSinceTurn > CONNECTS_PER_TURN;
}

/**
 * Resolves once the event loop has gone through a close phase: two check phases apart,
 * so the closes of sockets destroyed before the call have run (and released their ports).
 */
function afterCloses(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}

/** Waits for `promise`, or rejects at the deadline or when `signal` aborts. */
function race<T>(
  promise: Promise<T>,
  deadline: number | undefined,
  signal: AbortSignal | undefined,
  target: { address: string; port: number },
): Promise<T> {
  if (deadline === undefined && signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const timer =
      deadline === undefined
        ? undefined
        : setTimeout(() => settle(() => reject(timeoutError(target))), Math.max(0, deadline - performance.now()));
    const onAbort = (): void => settle(() => reject(new AbortError(undefined, { cause: signal?.reason })));
    signal?.addEventListener('abort', onAbort, { once: true });
    function settle(fn: () => void): void {
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      fn();
    }
    promise.then(
      (v) => settle(() => resolve(v)),
      (e) => settle(() => reject(e)),
    );
  });
}

/** The `index`-th of `count` equal slices of `range`: one per process of a cluster. */
export function partitionRange(range: readonly [number, number], index: number, count: number): [number, number] {
  const [first, last] = callNative(() => native.partitionRange(range[0], range[1], index, count));
  return [first as number, last as number];
}

/** The host's port settings, read now (see {@link hostPorts}). */
export interface HostPorts {
  /** `net.ipv4.ip_local_port_range`: where the kernel picks ports for everyone's connect(). */
  ephemeral: [number, number];
  /** `net.ipv4.ip_local_reserved_ports`, as inclusive `[first, last]` intervals. */
  reserved: [number, number][];
  /** False when /proc could not be read and Linux's defaults (32768-60999) stand in. */
  readFromSystem: boolean;
  /** The kernel options porter uses to let the kernel pick ports. */
  features: {
    /** IP_BIND_ADDRESS_NO_PORT (Linux 4.2). */
    bindAddressNoPort: boolean;
    /** IP_LOCAL_PORT_RANGE (Linux 6.3). */
    localPortRange: boolean;
  };
}

/**
 * The host's port settings as the kernel reports them now, for this process's network
 * namespace: what a Porter reads when it is made (a Porter never reads them again).
 */
export function hostPorts(): HostPorts {
  const h = callNative(() => native.hostPorts());
  return {
    ephemeral: [h.ephemeral.first, h.ephemeral.last],
    reserved: h.reserved.map((i) => [i.first, i.last] as [number, number]),
    readFromSystem: h.readFromSystem,
    features: { bindAddressNoPort: h.bindAddressNoPort, localPortRange: h.localPortRange },
  };
}
