//! Counters and the connect-duration histogram of a registry, read at scrape time.
//!
//! Hot counters (allocations, releases) are striped over cache-padded atomics, one stripe
//! per thread slot, so that threads allocating at once do not fight over one cache line.
//! Rare events (retries, errors, fallbacks) use plain atomics or a small locked map.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

const STRIPES: usize = 8;

#[repr(align(64))]
#[derive(Default)]
struct Padded(AtomicU64);

/// A counter striped over [`STRIPES`] cache lines.
#[derive(Default)]
pub struct StripedCounter {
    stripes: [Padded; STRIPES],
}

fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    SLOT.with(|s| *s)
}

impl StripedCounter {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.stripes[stripe()].0.fetch_add(1, Ordering::Relaxed);
    }

    /// The sum over every stripe.
    pub fn get(&self) -> u64 {
        self.stripes.iter().map(|s| s.0.load(Ordering::Relaxed)).sum()
    }
}

impl std::fmt::Debug for StripedCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.get())
    }
}

/// Upper bounds of the connect-duration buckets, in seconds (Prometheus `le`).
pub const DURATION_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Every counter of a registry.
#[derive(Debug, Default)]
pub struct Counters {
    pub(crate) allocations: StripedCounter,
    pub(crate) releases_aging: StripedCounter,
    pub(crate) releases_immediate: StripedCounter,
    pub(crate) retries_addr_in_use: AtomicU64,
    pub(crate) retries_addr_not_avail: AtomicU64,
    pub(crate) exhausted: AtomicU64,
    pub(crate) kernel_fallbacks: AtomicU64,
    pub(crate) kernel_picks: AtomicU64,
    pub(crate) pools_retired: AtomicU64,
    connect_errors: Mutex<BTreeMap<&'static str, u64>>,
    duration_buckets: [AtomicU64; DURATION_BUCKETS.len()],
    duration_count: AtomicU64,
    duration_sum_ns: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PorterStats {
    /// Ports handed out (the kernel's choices included).
    pub allocations: u64,
    /// Releases into aging.
    pub releases_aging: u64,
    /// Releases straight back to the pool.
    pub releases_immediate: u64,
    /// Retries by the code that caused them.
    pub retries: Vec<(&'static str, u64)>,
    /// Times a destination had no port and no fallback helped.
    pub exhausted: u64,
    /// Connections whose port the kernel chose outside porter's range (the fallback).
    pub kernel_fallbacks: u64,
    /// Connections whose port the kernel chose inside porter's range (its window).
    pub kernel_picks: u64,
    /// Pools now (set by the registry).
    pub pools: u64,
    /// Idle pools dropped so far.
    pub pools_retired: u64,
    /// Failed connects by code.
    pub connect_errors: Vec<(&'static str, u64)>,
    /// Connect durations: counts per bucket of [`DURATION_BUCKETS`] (not cumulative).
    pub duration_buckets: Vec<u64>,
    /// Number of connects timed (successful ones).
    pub duration_count: u64,
    /// Sum of their durations, seconds.
    pub duration_sum_seconds: f64,
}

impl Counters {
    pub(crate) fn retry(&self, errno: Option<i32>) {
        if errno == Some(libc::EADDRINUSE) {
            self.retries_addr_in_use.fetch_add(1, Ordering::Relaxed);
        } else {
            self.retries_addr_not_avail.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn connect_error(&self, code: &'static str) {
        *self.connect_errors.lock().entry(code).or_default() += 1;
    }

    pub(crate) fn connect_duration(&self, elapsed: std::time::Duration) {
        let secs = elapsed.as_secs_f64();
        if let Some(i) = DURATION_BUCKETS.iter().position(|&le| secs <= le) {
            self.duration_buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.duration_count.fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.duration_sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> PorterStats {
        PorterStats {
            allocations: self.allocations.get(),
            releases_aging: self.releases_aging.get(),
            releases_immediate: self.releases_immediate.get(),
            retries: vec![
                ("EADDRINUSE", self.retries_addr_in_use.load(Ordering::Relaxed)),
                ("EADDRNOTAVAIL", self.retries_addr_not_avail.load(Ordering::Relaxed)),
            ],
            exhausted: self.exhausted.load(Ordering::Relaxed),
            kernel_fallbacks: self.kernel_fallbacks.load(Ordering::Relaxed),
            kernel_picks: self.kernel_picks.load(Ordering::Relaxed),
            pools: 0,
            pools_retired: self.pools_retired.load(Ordering::Relaxed),
            connect_errors: self.connect_errors.lock().iter().map(|(k, v)| (*k, *v)).collect(),
            duration_buckets: self
                .duration_buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            duration_count: self.duration_count.load(Ordering::Relaxed),
            duration_sum_seconds: self.duration_sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}
