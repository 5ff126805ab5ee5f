/**
 * What the native registry reports, in the public shapes of types.ts: the pools
 * (`snapshot`), the counters (`stats`) and how the range is split (`capacity`).
 */
import type * as native from '@porter/native';
import type { Capacity, PoolSnapshot, PorterStats } from './types.js';

/** Every pool, as `porter.snapshot()` gives it. */
export function toSnapshot(pools: native.PoolSnapshot[]): PoolSnapshot[] {
  return pools.map((p) => ({
    localAddress: p.localAddress,
    remoteAddress: p.remoteAddress,
    remotePort: p.remotePort,
    inUse: p.inUse,
    aging: p.aging.map((a) => ({ port: a.port, remainingMs: a.remainingMs })),
    free: p.free,
  }));
}

/** Counts by code, as an object. */
const byCode = (list: native.CodeCount[]): Record<string, number> =>
  Object.fromEntries(list.map((c) => [c.code, c.count]));

/** The core's counters, as `porter.stats()` gives them. */
export function toStats(s: native.PorterStats): PorterStats {
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

/** How the range is split, as `porter.capacity()` gives it. */
export function toCapacity(c: native.Capacity): Capacity {
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
