//! Monotonic time for aging deadlines.
//!
//! Aging is expired lazily, at allocation and at inspection, from a [`Clock`]: the real
//! [`MonotonicClock`] in production, and a [`ManualClock`] that tests drive by hand.
//! Time is counted in whole microseconds since the clock's own epoch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A source of monotonic time, in microseconds since an arbitrary epoch.
pub trait Clock: Send + Sync + 'static {
    /// Microseconds elapsed since this clock's epoch. Never goes backwards.
    fn now_us(&self) -> u64;
}

/// The real clock: `CLOCK_MONOTONIC` through [`Instant`], with its epoch at creation.
#[derive(Debug)]
pub struct MonotonicClock {
    epoch: Instant,
}

impl MonotonicClock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        Self { epoch: Instant::now() }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// A clock that only moves when told to: for tests and benchmarks of aging.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicU64,
}

impl ManualClock {
    /// A manual clock standing at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `us` microseconds.
    pub fn advance_us(&self, us: u64) {
        self.now.fetch_add(us, Ordering::SeqCst);
    }

    /// Moves the clock forward by `ms` milliseconds.
    pub fn advance_ms(&self, ms: u64) {
        self.advance_us(ms * 1000);
    }
}

impl Clock for ManualClock {
    fn now_us(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}

impl<C: Clock> Clock for std::sync::Arc<C> {
    fn now_us(&self) -> u64 {
        (**self).now_us()
    }
}
