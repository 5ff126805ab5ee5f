/** Port intervals and numbers as the doctor counts and writes them. */

/** An inclusive interval of ports. */
export type Interval = readonly [number, number];

export const size = (r: Interval): number => r[1] - r[0] + 1;

/** Ports in all of `intervals` (disjoint). */
export const total = (intervals: readonly Interval[]): number => intervals.reduce((n, r) => n + size(r), 0);

export const finite = (n: number | 'unlimited' | undefined | null): number =>
  n === undefined || n === null || n === 'unlimited' ? Number.POSITIVE_INFINITY : n;

export const fmt = (n: number): string => (Number.isFinite(n) ? n.toLocaleString('en-US') : 'unlimited');

export const span = ([a, b]: Interval): string => (a === b ? `${a}` : `${a}-${b}`);

export const plural = (n: number, word: string): string => `${fmt(n)} ${word}${n === 1 ? '' : 's'}`;

/** `range` less every port of `excluded`, as sorted disjoint intervals. */
export function subtract(range: Interval, excluded: readonly Interval[]): [number, number][] {
  const out: [number, number][] = [];
  let next = range[0];
  for (const [a, b] of [...excluded].sort((x, y) => x[0] - y[0])) {
    if (b < next || a > range[1]) continue;
    if (a > next) out.push([next, a - 1]);
    next = Math.max(next, b + 1);
  }
  if (next <= range[1]) out.push([next, range[1]]);
  return out;
}

/** Ports of `range` in none of `excluded`. */
export const outside = (range: Interval, excluded: readonly Interval[]): number => total(subtract(range, excluded));

/** Whether `port` lies in one of `intervals`. */
export const within = (port: number, intervals: readonly Interval[]): boolean =>
  intervals.some(([a, b]) => port >= a && port <= b);

/** Sorted, merged intervals of `intervals` and `ports`, as ip_local_reserved_ports writes them: `5432,6379,8000-8010`. */
export function compress(intervals: readonly Interval[], ports: readonly number[] = []): string {
  const all = [
    ...intervals.map(([a, b]) => [a, b] as [number, number]),
    ...ports.map((p) => [p, p] as [number, number]),
  ];
  all.sort((x, y) => x[0] - y[0]);
  const merged: [number, number][] = [];
  for (const [a, b] of all) {
    const last = merged.at(-1);
    if (last !== undefined && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else merged.push([a, b]);
  }
  return merged.map(span).join(',');
}
