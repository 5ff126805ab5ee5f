//! A registry's random numbers: where each pool starts its walk, and where it jumps after
//! a collision, so that processes sharing a host do not walk the range in step. splitmix64
//! over a seed that differs between processes and registries; not for cryptography.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

/// A stream of random numbers, safe to draw from on every thread.
#[derive(Debug)]
pub(crate) struct Random(AtomicU64);

impl Random {
    /// A stream with a seed of its own.
    pub(crate) fn seeded() -> Self {
        Self(AtomicU64::new(seed()))
    }

    /// The next number.
    pub(crate) fn next(&self) -> u64 {
        mix(self.0.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed))
    }
}

/// splitmix64's output function: a well-mixed 64-bit value from a counter.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seed that differs between processes and between registries of one process.
fn seed() -> u64 {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // RandomState's keys come from the OS's randomness.
    std::collections::hash_map::RandomState::new().hash_one((
        std::process::id(),
        nanos,
        COUNT.fetch_add(1, Ordering::Relaxed),
    ))
}
