//! Giving freed memory back to the operating system.
//!
//! Pools and registries are many small allocations; once a great many are dropped (a
//! crawler's destinations after their aging, Porters made and dropped), glibc's malloc
//! keeps the freed pages in its arenas, and the process's RSS stays at its peak.
//! `malloc_trim(0)` hands free pages back. It walks the arenas, so it runs only once
//! [`TRIM_EVERY`] bytes have been freed since the last time. On other C libraries
//! (musl returns memory more eagerly) this does nothing.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes freed between two trims.
pub(crate) const TRIM_EVERY: usize = 16 << 20;

static FREED: AtomicUsize = AtomicUsize::new(0);

/// Trims at the end of a sweep once at least this much was freed since the last trim.
pub(crate) const TRIM_AFTER_SWEEP: usize = 1 << 20;

/// Notes that about `bytes` were freed; trims when enough has been.
pub(crate) fn freed(bytes: usize) {
    let before = FREED.fetch_add(bytes, Ordering::Relaxed);
    if before + bytes >= TRIM_EVERY {
        settle(TRIM_EVERY);
    }
}

/// Trims if at least `at_least` bytes were freed since the last trim.
pub(crate) fn settle(at_least: usize) {
    if FREED.load(Ordering::Relaxed) >= at_least && FREED.swap(0, Ordering::Relaxed) >= at_least {
        crate::sys::malloc_trim();
    }
}
