/**
 * The gauges: per pool (ports in use, aging, free, and the capacity they share), and the
 * number of pools. Read from the pool summary at scrape time.
 */
import { Gauge } from 'prom-client';
import type { MetricContext, Registered } from './context.js';
import type { PoolRow } from './pools.js';

interface PoolGauge {
  suffix: string;
  help(name: (suffix: string) => string): string;
  pick(row: PoolRow): number;
}

const POOL_GAUGES: readonly PoolGauge[] = [
  {
    suffix: 'ports_in_use',
    help: () =>
      'Local ports held by a lease now (connected sockets and allocate() leases), per pool: remote = destination address:port, local = source address. Pools beyond maxPools are summed into remote="other".',
    pick: (r) => r.inUse,
  },
  {
    suffix: 'ports_aging',
    help: (n) =>
      `Local ports resting after this side closed first (their connection may still be in TIME_WAIT); not handed out for that destination until the aging period ends. Per pool, labelled as ${n('ports_in_use')}.`,
    pick: (r) => r.aging,
  },
  {
    suffix: 'ports_free',
    help: (n) =>
      `Local ports of the range that can be handed out now for that destination. Per pool, labelled as ${n('ports_in_use')}.`,
    pick: (r) => r.free,
  },
  {
    suffix: 'ports_capacity',
    help: (n) =>
      `Local ports porter can give that destination from that source address: those it binds itself plus the kernel's window (Porter#capacity().perDestination); for remote="other", that times the pools summed there. Ports in use beyond it came from the kernel fallback. Per pool, labelled as ${n('ports_in_use')}.`,
    pick: (r) => r.capacity,
  },
];

/** The suffixes of the gauges, in the order they are registered. */
export const GAUGE_SUFFIXES: readonly string[] = [...POOL_GAUGES.map((g) => g.suffix), 'pools'];

/** Registers the pool gauges and `pools`. */
export function createGauges(ctx: MetricContext): Registered[] {
  const made: Registered[] = POOL_GAUGES.map(({ suffix, help, pick }) => {
    const name = ctx.name(suffix);
    const metric = new Gauge({
      name,
      help: help(ctx.name),
      labelNames: ['remote', 'local'] as const,
      registers: ctx.registers,
      collect() {
        this.reset();
        for (const row of ctx.rows()) this.set({ remote: row.remote, local: row.local }, pick(row));
      },
    });
    return { name, metric };
  });
  const poolsName = ctx.name('pools');
  made.push({
    name: poolsName,
    metric: new Gauge({
      name: poolsName,
      help: 'Pools porter tracks: one per destination (address:port) and local address.',
      registers: ctx.registers,
      collect() {
        this.set(ctx.stats().pools);
      },
    }),
  });
  return made;
}
