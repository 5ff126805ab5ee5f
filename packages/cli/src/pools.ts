/** Pool rows as the commands print them and as their JSON carries them. */
import type { PoolCounts } from '@porter/core';
import { table } from './render.js';

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

/** Pools beyond the busiest, summed. */
export interface OtherPools {
  pools: number;
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

/** Busiest first: the most ports in use, then the most aging. */
export const byBusiest = (a: PoolRow, b: PoolRow): number => b.in_use - a.in_use || b.aging - a.aging;

/** Other pools (of several processes, or of several pools each) summed. */
export function mergeOthers(list: readonly OtherPools[]): OtherPools {
  return list.reduce(
    (a, b) => ({
      pools: a.pools + b.pools,
      in_use: a.in_use + b.in_use,
      aging: a.aging + b.aging,
      free: a.free + b.free,
    }),
    { pools: 0, in_use: 0, aging: 0, free: 0 },
  );
}

/**
 * The busiest `max` of `pools`, and the rest summed. They are sorted only when some are
 * left over: up to `max` keep their order.
 */
export function busiest(pools: readonly PoolRow[], max: number): { shown: readonly PoolRow[]; others: OtherPools } {
  const sorted = pools.length > max ? [...pools].sort(byBusiest) : pools;
  const rest = sorted.slice(max).map((p) => ({ pools: 1, in_use: p.in_use, aging: p.aging, free: p.free }));
  return { shown: sorted.slice(0, max), others: mergeOthers(rest) };
}

const POOL_HEAD = ['destination', 'local address', 'in use', 'aging', 'free'];

/**
 * The pools table: destination, local address and the three counts of each pool, then one
 * row for the others when there are any (`count` writes how many there are).
 */
export function poolsTable(
  pools: readonly PoolRow[],
  others: OtherPools | null,
  color: boolean,
  count: (n: number) => string,
): string {
  const rows: (string | number)[][] = pools.map((r) => [r.remote, r.local, r.in_use, r.aging, r.free]);
  if (others !== null && others.pools > 0) {
    rows.push([`${count(others.pools)} other pools`, '', others.in_use, others.aging, others.free]);
  }
  return table(POOL_HEAD, rows, color);
}
