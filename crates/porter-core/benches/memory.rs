//! Memory per pool and per port, counted by a global allocator that tracks live heap
//! bytes, and a quick allocate + release rate without criterion. Prints one JSON line.
//!
//! Run: `cargo bench -p porter-core --bench memory`.
//!
//! The counts are the bytes asked of the allocator (what porter controls); malloc's own
//! per-chunk overhead (8-16 bytes a chunk with glibc) comes on top.
#![allow(clippy::unwrap_used, missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use porter_core::{Config, FlowKey, ManualClock, Registry};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; only a counter is kept beside.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on to `System`.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::SeqCst)
}

fn key(n: u32) -> FlowKey {
    FlowKey::new(None, SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | n)), 443))
}

/// Heap bytes per idle pool: `n` flows created and held (as a route holds them; a pool
/// nobody holds is dropped once idle), growth / n. The vector that holds the handles is
/// allocated before the count starts.
fn bytes_per_idle_pool(n: u32) -> f64 {
    let registry = Registry::new(Config::default()).unwrap();
    let mut held = Vec::with_capacity(n as usize);
    let before = live();
    for i in 0..n {
        held.push(registry.flow(key(i)));
    }
    let after = live();
    assert_eq!(registry.pool_count(), n as usize);
    drop(held);
    (after - before) as f64 / f64::from(n)
}

/// Heap bytes per port: `n` ports taken on one flow (in use, or released into aging).
fn bytes_per_port(n: u32, aging: bool) -> f64 {
    let registry = Registry::with_clock(Config::default(), Arc::new(ManualClock::new())).unwrap();
    let flow = registry.flow(key(1));
    let mut ports = Vec::with_capacity(n as usize);
    let before = live();
    for _ in 0..n {
        ports.push(flow.allocate_port().unwrap());
    }
    if aging {
        for &p in &ports {
            flow.release(p, true);
        }
    }
    let after = live();
    (after - before) as f64 / f64::from(n)
}

/// Heap bytes a flow keeps once `peak` ports were in use and all but `left` came back:
/// whether the memory follows the ports in use on the way down too.
fn bytes_after_shrinking(peak: u32, left: u32) -> isize {
    let registry = Registry::with_clock(Config::default(), Arc::new(ManualClock::new())).unwrap();
    let flow = registry.flow(key(1));
    let before = live();
    let ports: Vec<u16> = (0..peak).map(|_| flow.allocate_port().unwrap()).collect();
    for &p in &ports[left as usize..] {
        flow.release(p, false);
    }
    let after = live();
    // The list of ports is the benchmark's own: leave it out.
    after - before - (ports.capacity() * 2) as isize
}

/// Allocate + release pairs per second on one flow, one thread, real clock: the median of
/// `rounds` timed runs of `pairs` each (one run on a shared machine is at the mercy of
/// whatever else ran during it).
fn pairs_per_sec(pairs: u64, rounds: usize) -> f64 {
    let registry = Registry::new(Config::default()).unwrap();
    let flow = registry.flow(key(1));
    // Warm up (the first pairs allocate the pool's list).
    for _ in 0..10_000 {
        let p = flow.allocate_port().unwrap();
        flow.release(p, false);
    }
    let mut rates: Vec<f64> = (0..rounds)
        .map(|_| {
            let t0 = Instant::now();
            for _ in 0..pairs {
                let p = flow.allocate_port().unwrap();
                black_box(flow.release(black_box(p), false));
            }
            let elapsed: Duration = t0.elapsed();
            pairs as f64 / elapsed.as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn main() {
    // `cargo test --benches` passes no `--bench`: keep that run short.
    let quick = !std::env::args().any(|a| a == "--bench");
    let (pairs, rounds) = if quick { (100_000, 1) } else { (2_000_000, 7) };

    let idle = bytes_per_idle_pool(100_000);
    let per_port = bytes_per_port(10_000, false);
    let per_port_small: Vec<String> = [10u32, 100, 1_000, 2_049, 4_032]
        .iter()
        .map(|&n| format!("\"{n}\":{:.2}", bytes_per_port(n, false)))
        .collect();
    let per_aging = bytes_per_port(10_000, true);
    let shrunk = bytes_after_shrinking(4_000, 10);
    let rate = pairs_per_sec(pairs, rounds);
    println!(
        "{{\"pool_bytes_idle\":{idle:.2},\"pool_bytes_per_port\":{per_port:.3},\
         \"core_alloc_release_per_sec\":{rate:.0},\"pairs_measured\":{pairs},\"pairs_rounds\":{rounds},\
         \"pool_bytes_per_port_by_count\":{{{}}},\"pool_bytes_per_aging_port\":{per_aging:.3},\
         \"pool_bytes_10_in_use_after_4000\":{shrunk}}}",
        per_port_small.join(",")
    );
}
