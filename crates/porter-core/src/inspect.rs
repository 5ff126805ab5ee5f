//! What a registry reports about its pools: a full snapshot, counts per pool, and the
//! busiest pools with the rest summed.

use crate::flow::FlowKey;

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
