//! `Allocator`: one porter-core registry (a `Porter` instance, or the process default).

use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use porter_core::{Config, FlowKey, Registry};

use crate::convert;
use crate::route::Route;

#[napi(object)]
pub struct AllocatorOptions {
    pub range_first: u32,
    pub range_last: u32,
    /// 'hybrid', 'pool' or 'kernel'.
    pub mode: String,
    pub aging_ms: f64,
    pub retry_attempts: u32,
    pub kernel_fallback: bool,
    pub local_addresses: Option<Vec<String>>,
}

/// How a registry's range is split between porter and the kernel.
#[napi(object)]
pub struct CapacityInfo {
    pub mode: String,
    /// Ports porter binds itself, per destination and source address.
    pub explicit: u32,
    /// Ports of the kernel's window, per destination and source address.
    pub kernel: u32,
    pub per_destination: u32,
    pub explicit_ports: Vec<convert::Interval>,
    pub kernel_window: Option<convert::Interval>,
    /// Whether sockets carry IP_LOCAL_PORT_RANGE to keep the kernel in its window.
    pub kernel_window_narrowed: bool,
    /// The ephemeral range read when the registry was made.
    pub ephemeral: convert::Interval,
}

#[napi(object)]
pub struct AgingInfo {
    pub port: u32,
    pub remaining_ms: f64,
}

#[napi(object)]
pub struct PoolInfo {
    pub local_address: String,
    pub remote_address: String,
    pub remote_port: u32,
    pub in_use: Vec<u32>,
    pub aging: Vec<AgingInfo>,
    pub free: u32,
}

#[napi(object)]
pub struct PoolCountsInfo {
    pub local_address: String,
    pub remote_address: String,
    pub remote_port: u32,
    pub in_use: u32,
    pub aging: u32,
    pub free: u32,
}

impl From<&porter_core::PoolCounts> for PoolCountsInfo {
    fn from(p: &porter_core::PoolCounts) -> Self {
        Self {
            local_address: p.key.local.to_string(),
            remote_address: p.key.remote.to_string(),
            remote_port: p.key.remote_port.into(),
            in_use: p.in_use,
            aging: p.aging,
            free: p.free,
        }
    }
}

/// Counts summed over pools (numbers: exact up to 2^53).
#[napi(object)]
pub struct PoolTotalsInfo {
    pub pools: f64,
    pub in_use: f64,
    pub aging: f64,
    pub free: f64,
}

/// The busiest pools, busiest first, and the others summed.
#[napi(object)]
pub struct PoolSummaryInfo {
    pub busiest: Vec<PoolCountsInfo>,
    pub others: PoolTotalsInfo,
}

#[napi(object)]
pub struct CodeCount {
    pub code: String,
    pub count: f64,
}

#[napi(object)]
pub struct NativeStats {
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
    pub pools: u32,
    /// The process-wide socket reserve (shared by every Allocator).
    pub socket_reserve: ReserveInfo,
}

/// The process-wide reserve of ready sockets.
#[napi(object)]
pub struct ReserveInfo {
    pub capacity: u32,
    pub ready_ipv4: u32,
    pub ready_ipv6: u32,
    pub taken: f64,
    pub made_inline: f64,
}

fn reserve_info() -> ReserveInfo {
    let r = porter_core::reserve::Reserve::global().stats();
    let small = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    ReserveInfo {
        capacity: small(r.capacity),
        ready_ipv4: small(r.ready_ipv4),
        ready_ipv6: small(r.ready_ipv6),
        taken: r.taken as f64,
        made_inline: r.made_inline as f64,
    }
}

fn config(options: &AllocatorOptions) -> Result<Config> {
    if !(options.aging_ms.is_finite() && options.aging_ms >= 0.0) {
        return Err(convert::invalid_arg(format!(
            "agingMs must be a finite number >= 0, got {}",
            options.aging_ms
        )));
    }
    Ok(Config {
        range: convert::range(options.range_first, options.range_last)?,
        mode: convert::mode(&options.mode)?,
        aging: Duration::from_secs_f64(options.aging_ms / 1000.0),
        retry_attempts: options.retry_attempts,
        kernel_fallback: options.kernel_fallback,
    })
}

fn local_addresses(options: &AllocatorOptions) -> Result<Vec<std::net::IpAddr>> {
    options
        .local_addresses
        .iter()
        .flatten()
        .map(|a| convert::ip(a))
        .collect()
}

fn counts(list: Vec<(&'static str, u64)>) -> Vec<CodeCount> {
    list.into_iter()
        .map(|(code, count)| CodeCount {
            code: code.to_owned(),
            count: count as f64,
        })
        .collect()
}

#[napi]
pub struct Allocator {
    inner: Arc<Registry>,
}

#[napi]
impl Allocator {
    /// A registry of its own.
    #[napi(constructor, catch_unwind)]
    pub fn new(options: AllocatorOptions) -> Result<Self> {
        Ok(Self {
            inner: Registry::new(config(&options)?).map_err(convert::error)?,
        })
    }

    /// The process-wide registry, the same from every worker thread. With `options`, it
    /// must not exist yet with other options.
    #[napi(factory, catch_unwind)]
    pub fn shared(options: Option<AllocatorOptions>) -> Result<Self> {
        let registry = match options {
            Some(options) => {
                Registry::init_global_with(config(&options)?, local_addresses(&options)?).map_err(convert::error)?
            }
            None => Registry::global(),
        };
        Ok(Self {
            inner: registry.clone(),
        })
    }

    /// The options the registry was made with.
    #[napi(catch_unwind)]
    pub fn options(&self) -> AllocatorOptions {
        let config = self.inner.config();
        AllocatorOptions {
            range_first: config.range.first().into(),
            range_last: config.range.last().into(),
            mode: config.mode.name().to_owned(),
            aging_ms: config.aging.as_secs_f64() * 1000.0,
            retry_attempts: config.retry_attempts,
            kernel_fallback: config.kernel_fallback,
            local_addresses: Some(self.inner.local_addresses().iter().map(ToString::to_string).collect()),
        }
    }

    /// How the range is split between porter and the kernel, per destination.
    #[napi(catch_unwind)]
    pub fn capacity(&self) -> CapacityInfo {
        let zones = self.inner.zones();
        CapacityInfo {
            mode: zones.mode().name().to_owned(),
            explicit: zones.explicit_len(),
            kernel: zones.kernel_len(),
            per_destination: zones.capacity(),
            explicit_ports: zones.explicit().iter().map(|&(a, b)| convert::interval(a, b)).collect(),
            kernel_window: zones
                .kernel_window()
                .map(|w| convert::interval(w.ports.first(), w.ports.last())),
            kernel_window_narrowed: zones.kernel_window().is_some_and(|w| w.narrowed),
            ephemeral: convert::interval(zones.ephemeral().first(), zones.ephemeral().last()),
        }
    }

    /// Whether `other` is the same registry.
    #[napi(catch_unwind)]
    pub fn same_as(&self, other: &Allocator) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The handle on the pools of one destination, one flow per local address
    /// (`locals` empty: the unspecified address of the destination's family).
    #[napi(catch_unwind)]
    pub fn route(&self, locals: Vec<String>, remote_address: String, remote_port: u32) -> Result<u32> {
        let remote = convert::socket_addr(&remote_address, remote_port)?;
        let mut flows = Vec::with_capacity(locals.len().max(1));
        if locals.is_empty() {
            flows.push(self.inner.flow(FlowKey::new(None, remote)));
        }
        for local in &locals {
            let ip = convert::ip(local)?;
            if ip.is_ipv4() != remote.is_ipv4() {
                return Err(convert::invalid_arg(format!(
                    "local address {local} and remote address {remote_address} are of different families"
                )));
            }
            flows.push(self.inner.flow(FlowKey::new(Some(ip), remote)));
        }
        Ok(Route::new(flows, remote).open())
    }

    /// Every pool, after expiring aging ports.
    #[napi(catch_unwind)]
    pub fn snapshot(&self) -> Vec<PoolInfo> {
        self.inner
            .snapshot()
            .into_iter()
            .map(|p| PoolInfo {
                local_address: p.key.local.to_string(),
                remote_address: p.key.remote.to_string(),
                remote_port: p.key.remote_port.into(),
                in_use: p.in_use.into_iter().map(u32::from).collect(),
                aging: p
                    .aging
                    .into_iter()
                    .map(|(port, us)| AgingInfo {
                        port: port.into(),
                        remaining_ms: us as f64 / 1000.0,
                    })
                    .collect(),
                free: p.free,
            })
            .collect()
    }

    /// Every pool's counts, after expiring aging ports (a snapshot without the ports).
    #[napi(catch_unwind)]
    pub fn pool_counts(&self) -> Vec<PoolCountsInfo> {
        self.inner.pool_counts().iter().map(PoolCountsInfo::from).collect()
    }

    /// The `busiest` pools with the most ports in use (then aging), busiest first, and
    /// every other pool summed; aging ports expired first. One object per pool returned,
    /// not per pool tracked.
    #[napi(catch_unwind)]
    pub fn pool_summary(&self, busiest: u32) -> PoolSummaryInfo {
        let summary = self.inner.pool_summary(busiest as usize);
        let o = summary.others;
        PoolSummaryInfo {
            busiest: summary.busiest.iter().map(PoolCountsInfo::from).collect(),
            others: PoolTotalsInfo {
                pools: o.pools as f64,
                in_use: o.in_use as f64,
                aging: o.aging as f64,
                free: o.free as f64,
            },
        }
    }

    /// The counters.
    #[napi(catch_unwind)]
    pub fn stats(&self) -> NativeStats {
        let s = self.inner.stats();
        NativeStats {
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
            pools: u32::try_from(self.inner.pool_count()).unwrap_or(u32::MAX),
            socket_reserve: reserve_info(),
        }
    }
}
