//! What a registry reports, as JavaScript objects: pools, counts, summaries, counters.

use napi_derive::napi;

use crate::convert::{counts, show, CodeCount};

#[napi(object)]
pub struct AgingPort {
    pub port: u32,
    pub remaining_ms: f64,
}

#[napi(object)]
pub struct PoolSnapshot {
    pub local_address: String,
    pub remote_address: String,
    pub remote_port: u32,
    pub in_use: Vec<u32>,
    pub aging: Vec<AgingPort>,
    pub free: u32,
}

impl From<porter_core::PoolSnapshot> for PoolSnapshot {
    fn from(p: porter_core::PoolSnapshot) -> Self {
        Self {
            local_address: show(p.key.local, p.key.local_scope()),
            remote_address: show(p.key.remote, p.key.remote_scope()),
            remote_port: p.key.remote_port.into(),
            in_use: p.in_use.into_iter().map(u32::from).collect(),
            aging: p
                .aging
                .into_iter()
                .map(|(port, us)| AgingPort {
                    port: port.into(),
                    remaining_ms: us as f64 / 1000.0,
                })
                .collect(),
            free: p.free,
        }
    }
}

#[napi(object)]
pub struct PoolCounts {
    pub local_address: String,
    pub remote_address: String,
    pub remote_port: u32,
    pub in_use: u32,
    pub aging: u32,
    pub free: u32,
}

impl From<&porter_core::PoolCounts> for PoolCounts {
    fn from(p: &porter_core::PoolCounts) -> Self {
        Self {
            local_address: show(p.key.local, p.key.local_scope()),
            remote_address: show(p.key.remote, p.key.remote_scope()),
            remote_port: p.key.remote_port.into(),
            in_use: p.in_use,
            aging: p.aging,
            free: p.free,
        }
    }
}

/// Counts summed over pools (numbers: exact up to 2^53).
#[napi(object)]
pub struct PoolTotals {
    pub pools: f64,
    pub in_use: f64,
    pub aging: f64,
    pub free: f64,
}

/// The busiest pools, busiest first, and the others summed.
#[napi(object)]
pub struct PoolSummary {
    pub busiest: Vec<PoolCounts>,
    pub others: PoolTotals,
}

impl From<porter_core::PoolSummary> for PoolSummary {
    fn from(summary: porter_core::PoolSummary) -> Self {
        let o = summary.others;
        Self {
            busiest: summary.busiest.iter().map(PoolCounts::from).collect(),
            others: PoolTotals {
                pools: o.pools as f64,
                in_use: o.in_use as f64,
                aging: o.aging as f64,
                free: o.free as f64,
            },
        }
    }
}

/// The process-wide socket reserve.
#[napi(object)]
pub struct ReserveStats {
    pub capacity: u32,
    pub ready_ipv4: u32,
    pub ready_ipv6: u32,
    pub taken: f64,
    pub made_inline: f64,
}

fn socket_reserve() -> ReserveStats {
    let r = porter_core::reserve::Reserve::global().stats();
    let small = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    ReserveStats {
        capacity: small(r.capacity),
        ready_ipv4: small(r.ready_ipv4),
        ready_ipv6: small(r.ready_ipv6),
        taken: r.taken as f64,
        made_inline: r.made_inline as f64,
    }
}

#[napi(object)]
pub struct PorterStats {
    pub allocations: f64,
    pub releases_aging: f64,
    pub releases_immediate: f64,
    pub retries: Vec<CodeCount>,
    pub exhausted: f64,
    pub kernel_fallbacks: f64,
    pub kernel_picks: f64,
    pub connect_errors: Vec<CodeCount>,
    pub duration_bounds: Vec<f64>,
    pub duration_buckets: Vec<f64>,
    pub duration_count: f64,
    pub duration_sum_seconds: f64,
    pub pools: f64,
    pub pools_retired: f64,
    /// The process-wide socket reserve (shared by every registry).
    pub socket_reserve: ReserveStats,
}

impl From<porter_core::PorterStats> for PorterStats {
    fn from(s: porter_core::PorterStats) -> Self {
        Self {
            allocations: s.allocations as f64,
            releases_aging: s.releases_aging as f64,
            releases_immediate: s.releases_immediate as f64,
            retries: counts(s.retries),
            exhausted: s.exhausted as f64,
            kernel_fallbacks: s.kernel_fallbacks as f64,
            kernel_picks: s.kernel_picks as f64,
            connect_errors: counts(s.connect_errors),
            duration_bounds: porter_core::DURATION_BUCKETS.to_vec(),
            duration_buckets: s.duration_buckets.into_iter().map(|c| c as f64).collect(),
            duration_count: s.duration_count as f64,
            duration_sum_seconds: s.duration_sum_seconds,
            pools: s.pools as f64,
            pools_retired: s.pools_retired as f64,
            socket_reserve: socket_reserve(),
        }
    }
}
