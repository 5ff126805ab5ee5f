/**
 * Per-pool gauge rows from a Porter's pool summary, with bounded cardinality: the busiest
 * `maxPools` pools keep series of their own, the others are summed into one row
 * labelled `remote="other", local="other"`. The core does the choosing and the summing,
 * so a scrape costs the same with a hundred pools or a hundred thousand.
 */
import type { PoolSummary } from '@porter/core';

/** One series of the pool gauges. */
export interface PoolRow {
  /** `address:port` of the destination; an IPv6 address in brackets (`[::1]:443`). */
  remote: string;
  /** The local address the pool is for (`0.0.0.0` / `::` when the kernel picks it). */
  local: string;
  inUse: number;
  aging: number;
  free: number;
  /** Ports porter can give this destination from this local address (summed for `other`). */
  capacity: number;
}

/** The label value of the row that sums every pool beyond `maxPools`. */
export const OTHER = 'other';

/** `address:port`, with an IPv6 address in brackets. */
export function remoteLabel(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * The rows to export: the summary's busiest pools with series of their own (the core
 * chose them: most ports in use, then most aging), plus `other` when any pool was left
 * out. `perDestination` is the Porter's capacity per destination and source address
 * (`Porter#capacity()`), the same for every pool: `other` gets it once per pool it sums.
 */
export function summaryRows(summary: PoolSummary, perDestination: number): PoolRow[] {
  const rows: PoolRow[] = summary.busiest.map((p) => ({
    remote: remoteLabel(p.remoteAddress, p.remotePort),
    local: p.localAddress,
    inUse: p.inUse,
    aging: p.aging,
    free: p.free,
    capacity: perDestination,
  }));
  const { others } = summary;
  if (others.pools > 0) {
    rows.push({
      remote: OTHER,
      local: OTHER,
      inUse: others.inUse,
      aging: others.aging,
      free: others.free,
      capacity: perDestination * others.pools,
    });
  }
  return rows;
}
