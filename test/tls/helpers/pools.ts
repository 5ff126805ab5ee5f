/** Reading a Porter's pools in the TLS tests. */
import type { PoolSnapshot, Porter } from '@porter/core';

/** The pool of `porter` for the destination port `remotePort` (any addresses). */
export function poolsTo(porter: Porter, remotePort: number): PoolSnapshot[] {
  return porter.snapshot().filter((p) => p.remotePort === remotePort);
}

/** Every port `porter` holds in use, over all pools. */
export function inUse(porter: Porter): number[] {
  return porter.snapshot().flatMap((p) => p.inUse);
}

/** Whether `port` is aging in a pool of `porter` towards `remotePort`. */
export function isAging(porter: Porter, remotePort: number, port: number): boolean {
  return poolsTo(porter, remotePort).some((p) => p.aging.some((a) => a.port === port));
}

/** Whether `port` is free again (neither in use nor aging) towards `remotePort`. */
export function isFree(porter: Porter, remotePort: number, port: number): boolean {
  return poolsTo(porter, remotePort).every((p) => !p.inUse.includes(port) && !p.aging.some((a) => a.port === port));
}
