/**
 * The routes a Porter keeps: one per destination (and choice of source addresses), each
 * a native route (a number naming it in this thread's table), in a cache of bounded size.
 * A route evicted from the cache (or the Porter closed, or collected) is closed natively
 * at once; its leases still release, and the native side lets its pools go once they
 * have (so a Porter's memory follows the destinations it uses, not every destination it
 * ever used).
 */
import { isIP } from 'node:net';
import * as native from '@porter/native';
import { canonicalIp, unspecified } from './address.js';
import { checkSameFamily } from './connect-options.js';
import { callNative } from './errors.js';

/** A native route's id in this thread's table. */
export type NativeRoute = number;

/**
 * The hot path's native calls, hand-written in the binding (cheaper than its generated
 * functions): `allocate(route)` (a lease id), `release(route, leaseId, aging)`, `adopt(route, leaseId, fd)`.
 */
export const fast = native.fastRouteFunctions();

/** One destination from one choice of source addresses. */
export interface Route {
  readonly native: NativeRoute;
  /** The destination's address (canonical: IPv4-mapped addresses as IPv4) and port. */
  readonly address: string;
  readonly port: number;
  /** The source addresses, in order; empty for the unspecified address of the family. */
  readonly locals: readonly string[];
  /** The unspecified address of the destination's family. */
  readonly anyLocal: string;
}

/** The source address of a lease: its flow's (`leaseId / 65536`), or the unspecified one. */
export function leaseLocal(route: Route, leaseId: number): string {
  return route.locals[Math.floor(leaseId / 65536)] ?? route.anyLocal;
}

/** How many routes a Porter keeps open. */
export const ROUTE_CACHE_SIZE = 1024;

/** Routes by `localAddress|address|port`, least recently used first, and the last one. */
export class RouteCache {
  readonly #routes = new Map<string, Route>();
  readonly #limit: number;
  #last: Route | undefined;
  #lastLocal: string | undefined;

  constructor(limit = ROUTE_CACHE_SIZE) {
    this.#limit = limit;
  }

  /** The route last used, if it is the one asked for: no key built, no map lookup. */
  last(address: unknown, port: unknown, localAddress: unknown): Route | undefined {
    const last = this.#last;
    return last !== undefined && last.address === address && last.port === port && this.#lastLocal === localAddress
      ? last
      : undefined;
  }

  /** The route for these (validated) values, opened with `open` when not cached. */
  get(address: string, port: number, localAddress: string | undefined, open: () => Route): Route {
    const key = `${localAddress ?? ''}|${address}|${port}`;
    let route = this.#routes.get(key);
    if (route === undefined) {
      route = open();
      if (this.#routes.size >= this.#limit) this.#evictOldest();
    } else {
      // Most recently used last.
      this.#routes.delete(key);
    }
    this.#routes.set(key, route);
    this.#last = route;
    this.#lastLocal = localAddress;
    return route;
  }

  /**
   * The cached route for these values, if any, made the last used (for inputs that were
   * validated when the route was made: a hit means they are valid).
   */
  touch(address: string, port: number, localAddress: string | undefined): Route | undefined {
    const key = `${localAddress ?? ''}|${address}|${port}`;
    const route = this.#routes.get(key);
    if (route !== undefined) {
      this.#routes.delete(key);
      this.#routes.set(key, route);
      this.#last = route;
      this.#lastLocal = localAddress;
    }
    return route;
  }

  #evictOldest(): void {
    const oldest = this.#routes.entries().next();
    if (oldest.done) return;
    this.#routes.delete(oldest.value[0]);
    if (this.#last === oldest.value[1]) this.#last = undefined;
    closeRoute(oldest.value[1]);
  }

  /** Closes every route (leases still release). */
  closeAll(): void {
    for (const route of this.#routes.values()) closeRoute(route);
    this.#routes.clear();
    this.#last = undefined;
  }

  get size(): number {
    return this.#routes.size;
  }
}

/**
 * A Porter's routes: opened on its native registry from its source addresses (or a
 * connect's own), kept in a {@link RouteCache}.
 */
export class Routes {
  readonly #registry: native.Registry;
  /** The Porter's source addresses, canonical. */
  readonly #locals: readonly string[];
  readonly #cache = new RouteCache();

  constructor(registry: native.Registry, localAddresses: readonly string[]) {
    this.#registry = registry;
    this.#locals = localAddresses.map(canonicalIp);
  }

  /** The cache, for the allocate path's lookups and for closing. */
  get cache(): RouteCache {
    return this.#cache;
  }

  /**
   * The route to `address`:`port` (validated, canonical) from `localAddress`, or from the
   * Porter's source addresses of the destination's family.
   */
  open(address: string, port: number, localAddress: string | undefined): Route {
    const last = this.#cache.last(address, port, localAddress);
    if (last !== undefined) return last;
    return this.#cache.get(address, port, localAddress, () => {
      // An address a name resolved to may be of the other family than the connect's own
      // source address (a literal host was checked at the call).
      checkSameFamily(localAddress, address);
      const family = isIP(address);
      const locals = localAddress !== undefined ? [localAddress] : this.#locals.filter((a) => isIP(a) === family);
      const id = callNative(() => this.#registry.route(locals, address, port));
      return { native: id, address, port, locals, anyLocal: unspecified(family) };
    });
  }
}

function closeRoute(route: Route): void {
  callNative(() => native.routeClose(route.native));
}

/** Closes the routes of a Porter that was collected without being closed. */
export const closeWhenCollected = new FinalizationRegistry<RouteCache>((routes) => routes.closeAll());
