//! What a registry reports about its pools: a full snapshot, counts per pool, and the
//! busiest pools with the rest summed. Each looks at every pool after dropping the idle
//! pools that are due and expiring aging ports, so what it reports is as of now.

use crate::aging::AgingPort;
use crate::flow_key::FlowKey;
use crate::registry::Registry;

/// One pool as seen at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSnapshot {
    /// The flow.
    pub key: FlowKey,
    /// Ports in use, ascending.
    pub in_use: Vec<u16>,
    /// Ports aging, by deadline, with the microseconds left.
    pub aging: Vec<(u16, u64)>,
    /// Ports of the flow's capacity free for this flow.
    pub free: u32,
}

/// One pool's counts at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolCounts {
    /// The flow.
    pub key: FlowKey,
    /// Ports in use.
    pub in_use: u32,
    /// Ports aging.
    pub aging: u32,
    /// Ports of the flow's capacity free for this flow.
    pub free: u32,
}

/// Counts summed over a number of pools.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolTotals {
    /// How many pools.
    pub pools: u64,
    /// Ports in use.
    pub in_use: u64,
    /// Ports aging.
    pub aging: u64,
    /// Ports free.
    pub free: u64,
}

impl PoolTotals {
    pub(crate) fn add(&mut self, p: &PoolCounts) {
        self.pools += 1;
        self.in_use += u64::from(p.in_use);
        self.aging += u64::from(p.aging);
        self.free += u64::from(p.free);
    }
}

/// The busiest pools with their own counts, and the others summed: what an exporter
/// with a cap on its series needs, without one value per pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSummary {
    /// At most the number asked for, busiest first (see [`crate::Registry::pool_summary`]).
    pub busiest: Vec<PoolCounts>,
    /// Every other pool, summed.
    pub others: PoolTotals,
}

/// Busiest first: more ports in use, then more aging, then by flow key (so that ties
/// always fall the same way).
pub(crate) fn busiest_first(a: &PoolCounts, b: &PoolCounts) -> std::cmp::Ordering {
    b.in_use
        .cmp(&a.in_use)
        .then(b.aging.cmp(&a.aging))
        .then(a.key.cmp(&b.key))
}

/// The `busiest` of `all` (busiest first) and the others summed. Linear in the number of
/// pools plus `busiest * log(busiest)`.
pub(crate) fn summarize(mut all: Vec<PoolCounts>, busiest: usize) -> PoolSummary {
    if busiest < all.len() {
        all.select_nth_unstable_by(busiest, busiest_first);
    }
    let rest = all.split_off(busiest.min(all.len()));
    all.sort_unstable_by(busiest_first);
    let mut others = PoolTotals::default();
    for p in &rest {
        others.add(p);
    }
    PoolSummary { busiest: all, others }
}

impl Registry {
    /// Every pool with its ports in use, aging and free, after expiring aging ports and
    /// dropping idle pools. Sorted by flow.
    pub fn snapshot(&self) -> Vec<PoolSnapshot> {
        self.retire_idle();
        let now = self.now_us();
        let range = self.config().range;
        let capacity = self.capacity();
        let mut out = Vec::new();
        for shard in self.shards().iter() {
            for flow in shard.flows.read().iter() {
                let mut pool = flow.0.pool.lock();
                pool.expire(range, now);
                out.push(PoolSnapshot {
                    key: flow.0.key,
                    in_use: pool.in_use(range),
                    aging: pool
                        .aging()
                        .into_iter()
                        .map(|AgingPort { port, deadline_us }| (port, deadline_us.saturating_sub(now)))
                        .collect(),
                    free: pool.free_count(capacity),
                });
            }
        }
        out.sort_by_key(|p| p.key);
        out
    }

    /// Every pool's counts (in use, aging, free) after expiring aging ports: what
    /// [`Registry::snapshot`] gives, without copying the ports themselves. Sorted by flow.
    pub fn pool_counts(&self) -> Vec<PoolCounts> {
        let mut out = self.counts();
        out.sort_by_key(|p| p.key);
        out
    }

    /// The `busiest` pools with the most ports in use (then aging; ties by flow key),
    /// busiest first, and the others summed; aging ports expired first. Linear in the
    /// number of pools plus `busiest * log(busiest)`.
    pub fn pool_summary(&self, busiest: usize) -> PoolSummary {
        summarize(self.counts(), busiest)
    }

    /// Every pool's counts, in no order.
    fn counts(&self) -> Vec<PoolCounts> {
        self.retire_idle();
        let now = self.now_us();
        let range = self.config().range;
        let capacity = self.capacity();
        let mut out = Vec::with_capacity(self.pool_count());
        for shard in self.shards().iter() {
            for flow in shard.flows.read().iter() {
                let mut pool = flow.0.pool.lock();
                pool.expire(range, now);
                out.push(PoolCounts {
                    key: flow.0.key,
                    in_use: pool.in_use_count() as u32,
                    aging: pool.aging_count() as u32,
                    free: pool.free_count(capacity),
                });
            }
        }
        out
    }
}
