/** Reading porter snapshots in tests. */
import type { PoolSnapshot } from '@porter/core';

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
