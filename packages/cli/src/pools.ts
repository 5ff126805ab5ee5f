/** Pool rows as the commands print them and as their JSON carries them. */
import type { PoolCounts } from '@porter/core';

/** One pool: a destination seen from one local address. */
export interface PoolRow {
  /** `address:port` of the destination; an IPv6 address in brackets. */
  remote: string;
  /** The pool's local address (`0.0.0.0` / `::` when the kernel picks the source address). */
  local: string;
  in_use: number;
  aging: number;
  free: number;
}

/** `address:port`, with an IPv6 address in brackets (as @porter/metrics labels it). */
export function remoteLabel(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

export function poolRow(p: PoolCounts): PoolRow {
  return {
    remote: remoteLabel(p.remoteAddress, p.remotePort),
    local: p.localAddress,
    in_use: p.inUse,
    aging: p.aging,
    free: p.free,
  };
}

/** Rows for a table: destination, local address and the three counts. */
export function poolTableRows(rows: readonly PoolRow[]): (string | number)[][] {
  return rows.map((r) => [r.remote, r.local, r.in_use, r.aging, r.free]);
}

export const POOL_HEAD = ['destination', 'local address', 'in use', 'aging', 'free'];
