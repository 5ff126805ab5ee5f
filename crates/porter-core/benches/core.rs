//! Criterion benchmarks of porter's core: allocate + release pairs (one flow, one pool,
//! two threads), the first allocation for a new destination, and expiring the aging queue.
//!
//! Run: `cargo bench -p porter-core --bench core`. Throughputs are reported per
//! allocate + release pair ("elements") or, for expiry, per expired port.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use porter_core::{Clock, Config, Flow, FlowKey, ManualClock, Mode, Pool, Registry};

fn key(n: u32) -> FlowKey {
    // Distinct destinations: 10.x.y.z:443 (keys only; nothing is sent anywhere).
    FlowKey::new(None, SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | n)), 443))
}

/// `CLOCK_MONOTONIC_COARSE`: the kernel's last tick, read from the vDSO without touching
/// the TSC. Not what the registry uses; here to measure what its clock read costs.
struct CoarseClock;

impl Clock for CoarseClock {
    fn now_us(&self) -> u64 {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: a valid clock id and a pointer to a timespec that outlives the call.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
        ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
    }
}

fn pair(flow: &Flow) {
    let port = flow.allocate_port().unwrap();
    black_box(flow.release(black_box(port), false));
}

fn single_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("pairs");
    g.throughput(Throughput::Elements(1));

    let registry = Registry::new(Config::default()).unwrap();
    let flow = registry.flow(key(1));
    g.bench_function("flow", |b| b.iter(|| pair(&flow)));

    let registry = Registry::with_clock(Config::default(), Arc::new(ManualClock::new())).unwrap();
    let flow = registry.flow(key(1));
    g.bench_function("flow_manual_clock", |b| b.iter(|| pair(&flow)));

    // With one port aging (for an hour) on the flow: every allocate has a deadline to
    // compare, as in a real workload where this side closes first.
    let registry = Registry::new(Config {
        aging: Duration::from_secs(3600),
        ..Config::default()
    })
    .unwrap();
    let flow = registry.flow(key(1));
    let aged = flow.allocate_port().unwrap();
    flow.release(aged, true);
    g.bench_function("flow_one_aging", |b| b.iter(|| pair(&flow)));

    // The same on CLOCK_MONOTONIC_COARSE, to price the clock read (see `CoarseClock`).
    let registry = Registry::with_clock(
        Config {
            aging: Duration::from_secs(3600),
            ..Config::default()
        },
        CoarseClock,
    )
    .unwrap();
    let flow = registry.flow(key(1));
    let aged = flow.allocate_port().unwrap();
    flow.release(aged, true);
    g.bench_function("flow_one_aging_coarse_clock", |b| b.iter(|| pair(&flow)));

    // With 1,000 other ports in use on the flow (a busy destination).
    let registry = Registry::new(Config::default()).unwrap();
    let flow = registry.flow(key(1));
    let held: Vec<u16> = (0..1000).map(|_| flow.allocate_port().unwrap()).collect();
    g.bench_function("flow_1000_in_use", |b| b.iter(|| pair(&flow)));
    drop(held);

    // The bare pool, on the capacity a default registry has on this host.
    let capacity = Registry::new(Config::default()).unwrap().capacity().clone();
    let range = capacity.range();
    let mut pool = Pool::new();
    g.bench_function("pool", |b| {
        b.iter(|| {
            let port = pool.allocate(&capacity, black_box(0)).unwrap();
            black_box(pool.release(range, black_box(port), None));
        })
    });
    g.finish();
}

/// One thread per flow, each doing `iters` pairs on its flow, all released together: the
/// time from the first thread's start to the last thread's end.
fn run_threads(flows: &[Flow], iters: u64) -> Duration {
    let go = Barrier::new(flows.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = flows
            .iter()
            .map(|flow| {
                let go = &go;
                s.spawn(move || {
                    go.wait();
                    let t0 = Instant::now();
                    for _ in 0..iters {
                        pair(flow);
                    }
                    (t0, Instant::now())
                })
            })
            .collect();
        let spans: Vec<(Instant, Instant)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let first = spans.iter().map(|s| s.0).min().unwrap();
        let last = spans.iter().map(|s| s.1).max().unwrap();
        last - first
    })
}

fn two_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("pairs_2_threads");
    // Two pairs per iteration, one on each thread: criterion's rate is pairs/sec in total.
    g.throughput(Throughput::Elements(2));
    let registry = Registry::new(Config::default()).unwrap();
    let two = [registry.flow(key(1)), registry.flow(key(2))];
    g.bench_function("two_destinations", |b| b.iter_custom(|iters| run_threads(&two, iters)));
    let one = registry.flow(key(3));
    let same = [one.clone(), one];
    g.bench_function("same_destination", |b| b.iter_custom(|iters| run_threads(&same, iters)));
    g.finish();
}

fn new_destination(c: &mut Criterion) {
    let mut g = c.benchmark_group("new_destination");
    g.throughput(Throughput::Elements(1));
    g.bench_function("flow_and_first_allocate", |b| {
        b.iter_custom(|iters| {
            // A fresh registry per sample, so the map does not grow without bound.
            let registry = Registry::new(Config::default()).unwrap();
            let t0 = Instant::now();
            for n in 0..iters {
                let flow = registry.flow(key(n as u32));
                black_box(flow.allocate_port().unwrap());
            }
            let elapsed = t0.elapsed();
            drop(registry);
            elapsed
        })
    });
    g.finish();
}

/// A flow whose first `n` ports were taken, then released into aging (`aging` long),
/// the clock moved `gap_us` after each release.
fn aged_flow(n: u32, aging: Duration, gap_us: u64) -> (Arc<ManualClock>, Flow) {
    let clock = Arc::new(ManualClock::new());
    // Mode 'pool': the whole range is porter's, whatever the host's ephemeral range (the
    // default mode would leave that part to the kernel, and fewer than `n` ports here).
    let registry = Registry::with_clock(
        Config {
            aging,
            mode: Mode::Pool,
            ..Config::default()
        },
        clock.clone(),
    )
    .unwrap();
    let flow = registry.flow(key(1));
    let ports: Vec<u16> = (0..n).map(|_| flow.allocate_port().unwrap()).collect();
    for p in ports {
        flow.release(p, true);
        clock.advance_us(gap_us);
    }
    (clock, flow)
}

fn expiry(c: &mut Criterion) {
    let mut g = c.benchmark_group("expire");
    g.sample_size(20);
    for n in [100u32, 1_000, 4_000, 10_000, 60_000] {
        g.throughput(Throughput::Elements(u64::from(n)));
        g.bench_with_input(BenchmarkId::new("aged_ports", n), &n, |b, &n| {
            b.iter_batched_ref(
                || {
                    let (clock, flow) = aged_flow(n, Duration::from_millis(1), 0);
                    clock.advance_ms(1);
                    flow
                },
                // The one allocate that finds every aged port due and frees it.
                |flow| black_box(flow.allocate_port().unwrap()),
                BatchSize::PerIteration,
            )
        });
    }
    // Released one microsecond apart, half of them due: the expiry that has to pick the
    // due ports out of the ones still aging.
    for n in [1_000u32, 4_000, 10_000] {
        let setup = move || {
            let (clock, flow) = aged_flow(n, Duration::from_secs(1), 1);
            // Deadlines run from 1 s to 1 s + n - 1 us; the clock stands at n us: move it
            // to 1 s + n/2 - 1 us, where the first n/2 are due.
            clock.advance_us(1_000_000 + u64::from(n / 2) - 1 - u64::from(n));
            flow
        };
        let check = setup();
        check.allocate_port().unwrap();
        assert_eq!(check.registry().snapshot()[0].aging.len() as u32, n - n / 2);
        g.throughput(Throughput::Elements(u64::from(n / 2)));
        g.bench_with_input(BenchmarkId::new("half_of_aged_ports", n), &n, |b, _| {
            b.iter_batched_ref(
                setup,
                |flow| black_box(flow.allocate_port().unwrap()),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, single_thread, two_threads, new_destination, expiry);
criterion_main!(benches);
