/**
 * Per-pool gauge rows from a Porter's pool counts, with bounded cardinality: the busiest
 * `maxPools` pools keep series of their own, the others are summed into one row
 * labelled `remote="other", local="other"`.
 */
import type { PoolCounts } from '@porter/core';

/** One series of the pool gauges. */
export interface PoolRow {
  /** `address:port` of the destination; an IPv6 address in brackets (`[::1]:443`). */
  remote: string;
  /** The local address the pool is for (`0.0.0.0` / `::` when the kernel picks it). */
  local: string;
  inUse: number;
  aging: number;
  free: number;
}

/** The label value of the row that sums every pool beyond `maxPools`. */
export const OTHER = 'other';

/** `address:port`, with an IPv6 address in brackets. */
export function remoteLabel(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Busiest first: by ports in use, then aging, then by labels so the order is stable. */
function busiestFirst(a: PoolRow, b: PoolRow): number {
  return (
    b.inUse - a.inUse ||
    b.aging - a.aging ||
    (a.remote < b.remote ? -1 : a.remote > b.remote ? 1 : 0) ||
    (a.local < b.local ? -1 : a.local > b.local ? 1 : 0)
  );
}

/** The rows to export for `pools`: at most `maxPools` of their own, plus `other`. */
export function poolRows(pools: readonly PoolCounts[], maxPools: number): PoolRow[] {
  // Keyed by labels, so two pools that would share a label set add up instead of
  // one hiding the other.
  const byKey = new Map<string, PoolRow>();
  for (const p of pools) {
    const remote = remoteLabel(p.remoteAddress, p.remotePort);
    const key = `${p.localAddress} ${remote}`;
    const row = byKey.get(key);
    if (row === undefined) {
      byKey.set(key, { remote, local: p.localAddress, inUse: p.inUse, aging: p.aging, free: p.free });
    } else {
      row.inUse += p.inUse;
      row.aging += p.aging;
      row.free += p.free;
    }
  }
  const rows = [...byKey.values()];
  if (rows.length <= maxPools) return rows;
  rows.sort(busiestFirst);
  const other: PoolRow = { remote: OTHER, local: OTHER, inUse: 0, aging: 0, free: 0 };
  for (let i = maxPools; i < rows.length; i++) {
    const row = rows[i]!;
    other.inUse += row.inUse;
    other.aging += row.aging;
    other.free += row.free;
  }
  rows.length = maxPools;
  rows.push(other);
  return rows;
}
