/** Reading a Porter's pools in tests, from `porter.snapshot()`. */
import type { PoolSnapshot, Porter } from '@porter/core';

/** The pool of one destination (and local address, if given) in `snapshot`, or undefined. */
export function poolFor(
  snapshot: PoolSnapshot[],
  remoteAddress: string,
  remotePort: number,
  localAddress?: string,
): PoolSnapshot | undefined {
  return snapshot.find(
    (p) =>
      p.remoteAddress === remoteAddress &&
      p.remotePort === remotePort &&
      (localAddress === undefined || p.localAddress === localAddress),
  );
}

/** The pools of `porter` for the destination port `remotePort` (any addresses). */
export function poolsTo(porter: Porter, remotePort: number): PoolSnapshot[] {
  return porter.snapshot().filter((p) => p.remotePort === remotePort);
}

/** Every port `porter` holds in use, over all pools. */
export function inUse(porter: Porter): number[] {
  return porter.snapshot().flatMap((p) => p.inUse);
}

/** Whether `port` is in use or aging in any pool of `snapshot` for that destination. */
export function portState(
  snapshot: PoolSnapshot[],
  remoteAddress: string,
  remotePort: number,
  port: number,
): 'in-use' | 'aging' | 'free' {
  for (const p of snapshot) {
    if (p.remoteAddress !== remoteAddress || p.remotePort !== remotePort) continue;
    if (p.inUse.includes(port)) return 'in-use';
    if (p.aging.some((a) => a.port === port)) return 'aging';
  }
  return 'free';
}
