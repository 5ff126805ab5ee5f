//! Property tests of the registry against a plain model (a `BTreeSet` of ports in use
//! and a list of aging ports with their deadlines, per flow), plus the orderings and
//! the sparse/dense switch that the model does not pin down.
#![allow(clippy::unwrap_used)]

#[path = "common/model.rs"]
mod model;

use std::collections::{BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use model::{near, ok, plain_host, pool_config, pool_registry, ModelFlow};
use porter_core::{Flow, FlowKey, ManualClock, Marked, Mode, Pool, PortRange, Registry, Released, ServicePorts, Zones};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// The model (tests/common/model.rs) against a registry
// ---------------------------------------------------------------------------------------

struct Harness {
    range: PortRange,
    aging_us: u64,
    clock: Arc<ManualClock>,
    registry: Arc<Registry>,
    flows: Vec<Flow>,
    model: Vec<ModelFlow>,
    now: u64,
}

fn flow_keys(n: usize) -> Vec<FlowKey> {
    let all = [
        FlowKey::new(None, SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 80)),
        FlowKey::new(None, SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 443)),
        FlowKey::new(None, SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 80)),
    ];
    all[..n].to_vec()
}

impl Harness {
    fn new(range: PortRange, aging_us: u64, nflows: usize) -> Self {
        let clock = Arc::new(ManualClock::new());
        let registry = pool_registry(pool_config(range, Duration::from_micros(aging_us)), clock.clone());
        let flows = flow_keys(nflows).into_iter().map(|k| registry.flow(k)).collect();
        Self {
            range,
            aging_us,
            clock,
            registry,
            flows,
            model: vec![ModelFlow::default(); nflows],
            now: 0,
        }
    }

    fn advance(&mut self, us: u64) {
        self.clock.advance_us(us);
        self.now += us;
        assert_eq!(self.registry.now_us(), self.now);
    }

    fn allocate(&mut self, f: usize) {
        let got = self.flows[f].allocate_port();
        ok(self.model[f].allocated(self.range, self.now, got, &format!("flow {f}")));
    }

    fn release(&mut self, f: usize, port: u16, aging: bool) {
        let expected = self.model[f].release(port, aging, self.now, self.aging_us);
        assert_eq!(
            self.flows[f].release(port, aging),
            expected,
            "release({port}, {aging}) in flow {f}"
        );
    }

    fn mark_in_use(&mut self, f: usize, port: u16) {
        let got = self.flows[f].mark_in_use(port);
        ok(self.model[f].marked(port, self.now, got, &format!("flow {f}")));
    }

    /// Everything observable equals the model: the snapshot of every pool, and the state
    /// of every port in (and around) the range.
    fn check(&mut self) {
        let (range, now) = (self.range, self.now);
        let snapshot = self.registry.snapshot();
        assert_eq!(snapshot.len(), self.flows.len());
        for (f, flow) in self.flows.iter().enumerate() {
            let what = format!("flow {f}");
            let pool = snapshot.iter().find(|s| s.key == *flow.key()).unwrap();
            ok(self.model[f].check_snapshot(range, now, pool, &what));
            ok(self.model[f].check_ports(range, now, flow, &what));
        }
    }

    /// The earliest deadline still ahead, over every flow.
    fn next_deadline(&self) -> Option<(usize, u16, u64)> {
        self.model
            .iter()
            .enumerate()
            .filter_map(|(f, m)| m.next_deadline(self.now).map(|(p, d)| (f, p, d)))
            .min_by_key(|&(_, _, d)| d)
    }
}

// ---------------------------------------------------------------------------------------
// Random operations
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Allocate {
        flow: usize,
    },
    /// Release the `pick`-th port in use (a port of the range when none is).
    Release {
        flow: usize,
        pick: usize,
        aging: bool,
    },
    /// Release a port twice: the second time must change nothing.
    DoubleRelease {
        flow: usize,
        pick: usize,
        first_aging: bool,
        second_aging: bool,
    },
    /// Release any port near the range, mostly one that is not in use.
    ReleaseAny {
        flow: usize,
        offset: u16,
        aging: bool,
    },
    /// What the kernel fallback does with the port it got.
    MarkInUse {
        flow: usize,
        offset: u16,
    },
    Advance {
        us: u64,
    },
    /// Move the clock to the next deadline, or to one microsecond before it.
    ToNextDeadline {
        before: bool,
    },
    Check,
}

fn op(nflows: usize, span: u16) -> impl Strategy<Value = Op> {
    let f = 0..nflows;
    prop_oneof![
        6 => f.clone().prop_map(|flow| Op::Allocate { flow }),
        3 => (f.clone(), any::<usize>(), any::<bool>()).prop_map(|(flow, pick, aging)| Op::Release { flow, pick, aging }),
        1 => (f.clone(), any::<usize>(), any::<bool>(), any::<bool>())
            .prop_map(|(flow, pick, first_aging, second_aging)| Op::DoubleRelease { flow, pick, first_aging, second_aging }),
        1 => (f.clone(), 0..span + 4, any::<bool>()).prop_map(|(flow, offset, aging)| Op::ReleaseAny { flow, offset, aging }),
        1 => (f, 0..span + 6).prop_map(|(flow, offset)| Op::MarkInUse { flow, offset }),
        2 => (0u64..120).prop_map(|us| Op::Advance { us }),
        2 => any::<bool>().prop_map(|before| Op::ToNextDeadline { before }),
        2 => Just(Op::Check),
    ]
}

fn run(range: PortRange, aging_us: u64, nflows: usize, ops: &[Op]) {
    let mut h = Harness::new(range, aging_us, nflows);
    h.check();
    for op in ops {
        match *op {
            Op::Allocate { flow } => h.allocate(flow),
            Op::Release { flow, pick, aging } => {
                let in_use = &h.model[flow].in_use;
                let port = match in_use.len() {
                    0 => range.first() + (pick % range.len() as usize) as u16,
                    n => *in_use.iter().nth(pick % n).unwrap(),
                };
                h.release(flow, port, aging);
            }
            Op::DoubleRelease {
                flow,
                pick,
                first_aging,
                second_aging,
            } => {
                let in_use = &h.model[flow].in_use;
                if in_use.is_empty() {
                    continue;
                }
                let port = *in_use.iter().nth(pick % in_use.len()).unwrap();
                if h.model[flow].extra.contains_key(&port) {
                    continue; // held more than once: the second release is a real one
                }
                h.release(flow, port, first_aging);
                let before = h.registry.snapshot();
                let stats = h.registry.stats();
                assert_eq!(h.flows[flow].release(port, second_aging), Released::NotInUse);
                assert_eq!(h.registry.snapshot(), before, "a second release changed a pool");
                assert_eq!(h.registry.stats(), stats, "a second release was counted");
            }
            Op::ReleaseAny { flow, offset, aging } => h.release(flow, near(range, offset, 2), aging),
            Op::MarkInUse { flow, offset } => h.mark_in_use(flow, near(range, offset, 3)),
            Op::Advance { us } => h.advance(us),
            Op::ToNextDeadline { before } => {
                let Some((f, port, deadline)) = h.next_deadline() else {
                    continue;
                };
                if before {
                    h.advance(deadline - 1 - h.now);
                    assert!(
                        h.flows[f].is_aging(port),
                        "port {port} free one microsecond before its deadline"
                    );
                    assert!(!h.flows[f].is_in_use(port));
                } else {
                    h.advance(deadline - h.now);
                    assert!(!h.flows[f].is_aging(port), "port {port} still aging at its deadline");
                    assert!(!h.flows[f].is_in_use(port));
                }
            }
            Op::Check => h.check(),
        }
    }
    h.check();
}

fn small_range() -> impl Strategy<Value = PortRange> {
    (8u16..=20, prop_oneof![3 => 1024u16..=60000, 1 => Just(0u16)]).prop_map(|(len, first)| {
        // `first == 0` stands for a range that ends at 65535.
        let first = if first == 0 { 65535 - len + 1 } else { first };
        PortRange::new(first, first + (len - 1)).unwrap()
    })
}

/// 512 cases unless `PROPTEST_CASES` asks for more (or fewer).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(cases()) })]

    #[test]
    fn registry_matches_model(
        range in small_range(),
        aging_us in prop_oneof![1 => Just(0u64), 1 => Just(1u64), 6 => 2u64..300],
        (nflows, ops) in (2usize..=3).prop_flat_map(|n| (Just(n), prop::collection::vec(op(n, 20), 1..250))),
    ) {
        run(range, aging_us, nflows, &ops);
    }
}

// ---------------------------------------------------------------------------------------
// Fixed cases
// ---------------------------------------------------------------------------------------

fn registry(first: u16, last: u16, aging: Duration) -> (Arc<ManualClock>, Arc<Registry>) {
    let clock = Arc::new(ManualClock::new());
    let config = pool_config(PortRange::new(first, last).unwrap(), aging);
    (clock.clone(), pool_registry(config, clock))
}

#[test]
fn flows_are_independent() {
    let (clock, reg) = registry(5000, 5000, Duration::from_millis(10));
    let keys = flow_keys(3);
    let flows: Vec<Flow> = keys.iter().map(|k| reg.flow(*k)).collect();
    // The one port of the range is in use towards three destinations at once.
    for f in &flows {
        assert_eq!(f.allocate_port(), Some(5000));
        assert_eq!(f.allocate_port(), None);
    }
    assert_eq!(flows[0].release(5000, true), Released::Aging);
    assert_eq!(flows[1].release(5000, false), Released::Immediate);
    assert!(flows[0].is_aging(5000));
    assert!(!flows[1].is_aging(5000) && !flows[1].is_in_use(5000));
    assert!(flows[2].is_in_use(5000));
    assert_eq!(flows[1].allocate_port(), Some(5000));
    assert_eq!(flows[0].allocate_port(), None);
    clock.advance_ms(10);
    assert_eq!(flows[0].allocate_port(), Some(5000));
    // The same key gives the same pool.
    let again = reg.flow(keys[0]);
    assert!(again.is_in_use(5000));
    assert_eq!(again.allocate_port(), None);
    assert_eq!(reg.pool_count(), 3);
}

#[test]
fn snapshot_and_pool_counts_are_sorted_by_flow() {
    let (_clock, reg) = registry(5000, 5001, Duration::from_millis(10));
    // Created in reverse order, across both families and many shards (and held: a pool
    // that holds nothing and that nobody holds is dropped).
    let mut held = Vec::new();
    for port in (1..=64u16).rev() {
        for ip in [IpAddr::V6(Ipv6Addr::LOCALHOST), IpAddr::V4(Ipv4Addr::LOCALHOST)] {
            held.push(reg.flow(FlowKey::new(None, SocketAddr::new(ip, port))));
        }
    }
    let snapshot: Vec<FlowKey> = reg.snapshot().iter().map(|p| p.key).collect();
    let counts: Vec<FlowKey> = reg.pool_counts().iter().map(|p| p.key).collect();
    let mut sorted = snapshot.clone();
    sorted.sort();
    assert_eq!(snapshot.len(), 128);
    assert_eq!(snapshot, sorted);
    assert_eq!(counts, sorted);
}

#[test]
fn aging_port_returns_exactly_at_its_own_deadline() {
    let (clock, reg) = registry(6000, 6002, Duration::from_micros(1000));
    let flow = reg.flow(flow_keys(1)[0]);
    let ports: Vec<u16> = (0..3).map(|_| flow.allocate_port().unwrap()).collect();
    // Released 100 us apart: each comes back at its own deadline, not in a batch.
    for (i, &p) in ports.iter().enumerate() {
        if i > 0 {
            clock.advance_us(100);
        }
        assert_eq!(flow.release(p, true), Released::Aging);
    }
    let snap = &reg.snapshot()[0];
    assert_eq!(snap.aging, vec![(ports[0], 800), (ports[1], 900), (ports[2], 1000)]);
    assert_eq!(snap.free, 0);
    clock.advance_us(799); // t = 999: the first is due at 1000
    assert_eq!(flow.allocate_port(), None);
    assert!(flow.is_aging(ports[0]));
    clock.advance_us(1); // t = 1000
    assert!(!flow.is_aging(ports[0]));
    assert!(flow.is_aging(ports[1]));
    assert_eq!(reg.snapshot()[0].free, 1);
    assert_eq!(flow.allocate_port(), Some(ports[0]));
    assert_eq!(flow.allocate_port(), None);
    clock.advance_us(99);
    assert_eq!(flow.allocate_port(), None);
    clock.advance_us(1);
    assert_eq!(flow.allocate_port(), Some(ports[1]));
}

#[test]
fn released_port_waits_for_every_other_free_port() {
    // One allocate/release cycle after another, some ports held meanwhile: a released
    // port is handed out again only after every other free port has had its turn.
    let (clock, reg) = registry(7000, 7009, Duration::from_micros(50));
    let flow = reg.flow(flow_keys(1)[0]);
    let held: Vec<u16> = (0..3).map(|_| flow.allocate_port().unwrap()).collect();
    let free = 10 - held.len();
    let mut order = Vec::new();
    for i in 0..40 {
        let p = flow.allocate_port().unwrap();
        assert!(!held.contains(&p));
        order.push(p);
        if i % 2 == 0 {
            flow.release(p, false);
        } else {
            flow.release(p, true);
            clock.advance_us(50);
        }
    }
    for w in order.windows(free) {
        let distinct: HashSet<u16> = w.iter().copied().collect();
        assert_eq!(distinct.len(), free, "a port came back early in {order:?}");
    }
}

#[test]
fn expired_port_queues_behind_never_used_ports() {
    let (clock, reg) = registry(8000, 8009, Duration::from_micros(10));
    let flow = reg.flow(flow_keys(1)[0]);
    let first = flow.allocate_port().unwrap();
    flow.release(first, true);
    clock.advance_us(1000); // long expired
    let next: Vec<u16> = (0..9).map(|_| flow.allocate_port().unwrap()).collect();
    assert!(
        !next.contains(&first),
        "{first} came back before the ports never used: {next:?}"
    );
    assert_eq!(flow.allocate_port(), Some(first));
}

/// Past one lap of the cursor the order is the cursor's, not the release order: strict
/// least-recently-released-first would need an order for every free port ever released,
/// memory that grows with the range, not with the ports in use (docs/ARCHITECTURE.md).
/// Every port was handed out, so the cursor stands where the walk started (a random
/// port); ports released in another order come back in the cursor's order from there.
#[test]
fn after_a_full_lap_ports_come_back_in_cursor_order() {
    let (_clock, reg) = registry(9000, 9009, Duration::from_micros(10));
    let flow = reg.flow(flow_keys(1)[0]);
    let start = flow.allocate_port().unwrap();
    for _ in 1..10 {
        flow.allocate_port().unwrap();
    }
    for p in [9009, 9005, 9000] {
        assert_eq!(flow.release(p, false), Released::Immediate);
    }
    let got: Vec<u16> = (0..3).map(|_| flow.allocate_port().unwrap()).collect();
    let mut want = vec![9000, 9005, 9009];
    let at = want.iter().position(|&p| p >= start).unwrap_or(0);
    want.rotate_left(at);
    assert_eq!(got, want, "walk started at {start}");
    assert_eq!(flow.allocate_port(), None);
}

/// Two registries (two processes) towards one destination do not walk the range in
/// step: their pools start at different, random places.
#[test]
fn walks_start_at_random_places() {
    let starts: BTreeSet<u16> = (0..8)
        .map(|_| {
            let (_clock, reg) = registry(10_000, 29_999, Duration::from_micros(10));
            reg.flow(flow_keys(1)[0]).allocate_port().unwrap()
        })
        .collect();
    assert!(starts.len() >= 7, "eight registries started at {starts:?}");
}

#[test]
fn sparse_to_dense_and_back_on_the_full_range() {
    let range = PortRange::DEFAULT;
    assert_eq!(range.len(), 64512);
    let (clock, reg) = registry(range.first(), range.last(), Duration::from_millis(5));
    let flow = reg.flow(flow_keys(1)[0]);
    let other = reg.flow(flow_keys(2)[1]);
    let marker = other.allocate_port().unwrap();

    // Most of the range: past the point where a bitmap is smaller than a list.
    let n = 60_000usize;
    let mut got = Vec::with_capacity(n);
    for _ in 0..n {
        got.push(flow.allocate_port().unwrap());
    }
    let mut distinct: BTreeSet<u16> = got.iter().copied().collect();
    assert_eq!(distinct.len(), n, "a port handed out twice");
    assert!(got.iter().all(|&p| range.contains(p)));
    for p in [got[0], got[n / 2], got[n - 1]] {
        assert!(flow.is_in_use(p));
    }
    let snap = reg.snapshot();
    let mine = snap.iter().find(|s| s.key == *flow.key()).unwrap();
    assert_eq!(mine.in_use, distinct.iter().copied().collect::<Vec<_>>());
    assert_eq!(mine.free, range.len() - n as u32);
    // A kernel-chosen port below the range is tracked beside the bitmap.
    assert_eq!(flow.mark_in_use(80), Marked::Free);
    assert!(flow.is_in_use(80));

    // The rest of the range, then nothing.
    for _ in n..range.len() as usize {
        let p = flow.allocate_port().unwrap();
        assert!(distinct.insert(p), "{p} handed out twice");
    }
    assert_eq!(flow.allocate_port(), None);
    assert_eq!(reg.snapshot().iter().find(|s| s.key == *flow.key()).unwrap().free, 0);

    // Half back at once, half into aging.
    let all: Vec<u16> = (range.first()..=range.last()).collect();
    for (i, &p) in all.iter().enumerate() {
        let expected = if i % 2 == 0 {
            Released::Immediate
        } else {
            Released::Aging
        };
        assert_eq!(flow.release(p, i % 2 == 1), expected);
    }
    assert_eq!(flow.release(all[0], false), Released::NotInUse);
    let mine = reg.snapshot().into_iter().find(|s| s.key == *flow.key()).unwrap();
    assert_eq!(mine.in_use, vec![80]);
    assert_eq!(mine.aging.len(), all.len() / 2);
    assert_eq!(mine.free, range.len() / 2);
    assert!(flow.is_aging(all[1]) && !flow.is_aging(all[0]));
    clock.advance_ms(5);
    assert_eq!(flow.release(80, false), Released::Immediate);
    let mine = reg.snapshot().into_iter().find(|s| s.key == *flow.key()).unwrap();
    assert!(mine.in_use.is_empty() && mine.aging.is_empty());
    assert_eq!(mine.free, range.len());
    // The other flow was never touched.
    assert!(other.is_in_use(marker));
    assert_eq!(
        reg.snapshot().iter().find(|s| s.key == *other.key()).unwrap().in_use,
        vec![marker]
    );
}

#[test]
fn pool_memory_follows_the_ports_taken() {
    let range = PortRange::DEFAULT;
    let zones = Zones::new(range, Mode::Pool, ServicePorts::Use, &plain_host());
    let mut pool = Pool::new();
    assert_eq!(pool.heap_bytes(), 0);
    let ten: Vec<u16> = (0..10).map(|_| pool.allocate(&zones, 0).unwrap()).collect();
    assert!(pool.heap_bytes() <= 64, "ten ports cost {} bytes", pool.heap_bytes());
    // The switch: a list of 4,033 ports (8,066 bytes) outgrows the 8,064-byte bitmap.
    let mut ports = ten;
    while ports.len() < 4032 {
        ports.push(pool.allocate(&zones, 0).unwrap());
    }
    let sparse = pool.heap_bytes();
    // Room for 4,096 ports, and the list's 16-byte header (its length and capacity).
    assert!(
        (8064..=8192 + 16).contains(&sparse),
        "4,032 ports as a list: {sparse} bytes"
    );
    ports.push(pool.allocate(&zones, 0).unwrap());
    let dense = pool.heap_bytes();
    assert!(
        (8064..8064 + 128).contains(&dense),
        "4,033 ports as a bitmap: {dense} bytes"
    );
    for _ in 0..20_000 {
        ports.push(pool.allocate(&zones, 0).unwrap());
    }
    assert_eq!(pool.heap_bytes(), dense, "a bitmap does not grow");
    assert_eq!(
        pool.in_use(range),
        ports
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    for &p in &ports {
        assert_eq!(pool.release(range, p, None), Released::Immediate);
    }
    assert_eq!(pool.in_use_count(), 0);
    assert_eq!(pool.free_count(&zones), range.len());
    // What an emptied list keeps: its header and room for 8 ports, so that a pool going
    // between empty and a few ports does not allocate every time.
    assert!(
        pool.heap_bytes() <= 32,
        "an empty pool keeps {} bytes",
        pool.heap_bytes()
    );
    // The same through aging.
    for _ in 0..5000 {
        let p = pool.allocate(&zones, 10).unwrap();
        pool.release(range, p, Some(20));
    }
    assert_eq!(pool.aging_count(), 5000);
    assert_eq!(pool.free_count(&zones), range.len() - 5000);
    assert_eq!(
        pool.allocate(&zones, 20).map(|p| pool.release(range, p, None)),
        Some(Released::Immediate)
    );
    assert_eq!(pool.aging_count(), 0);
    assert!(
        pool.heap_bytes() <= 32,
        "nothing taken, yet {} bytes",
        pool.heap_bytes()
    );
}

/// The heap of a pool with `n` ports in use: at most 4 bytes a port (the target), with a
/// little room for the smallest lists and the bitmap's header.
fn assert_within_4_bytes_a_port(pool: &Pool, what: &str) {
    let n = pool.in_use_count();
    let bytes = pool.heap_bytes();
    assert!(bytes <= 4 * n + 64, "{what}: {n} ports in use take {bytes} bytes");
}

#[test]
fn memory_per_port_on_the_way_up() {
    let zones = Zones::new(PortRange::DEFAULT, Mode::Pool, ServicePorts::Use, &plain_host());
    let mut pool = Pool::new();
    for _ in 0..20_000 {
        pool.allocate(&zones, 0).unwrap();
        assert_within_4_bytes_a_port(&pool, "growing");
    }
}

/// Memory should follow the ports in use when they come back too, not stay at its peak.
#[test]
fn memory_per_port_on_the_way_down() {
    let range = PortRange::DEFAULT;
    let zones = Zones::new(range, Mode::Pool, ServicePorts::Use, &plain_host());
    for peak in [4_000u16, 20_000] {
        let mut pool = Pool::new();
        let ports: Vec<u16> = (0..peak).map(|_| pool.allocate(&zones, 0).unwrap()).collect();
        for &p in &ports {
            assert_eq!(pool.release(range, p, None), Released::Immediate);
            assert_within_4_bytes_a_port(&pool, &format!("shrinking from {peak}"));
        }
    }
}

// ---------------------------------------------------------------------------------------
// pool_summary against a full sort of pool_counts
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(cases() / 4) })]

    /// Pools with random numbers of ports in use and aging (ties on purpose: few
    /// distinct counts); every cap from 0 to past the number of pools.
    #[test]
    fn pool_summary_is_the_top_of_a_full_sort(
        pools in prop::collection::vec((0u16..4, 0u16..3, any::<bool>()), 0..40),
    ) {
        let (clock, reg) = registry(7000, 7009, Duration::from_micros(100));
        let mut held = Vec::new();
        for (i, &(in_use, aging, v6)) in pools.iter().enumerate() {
            let remote = if v6 {
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 1 + i as u16)
            } else {
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 1 + i as u16)
            };
            let flow = reg.flow(FlowKey::new(None, remote));
            for _ in 0..aging {
                let p = flow.allocate_port().unwrap();
                flow.release(p, true);
            }
            for _ in 0..in_use {
                flow.allocate_port().unwrap();
            }
            held.push(flow);
        }
        clock.advance_us(1);
        let mut sorted = reg.pool_counts();
        sorted.sort_by(|a, b| b.in_use.cmp(&a.in_use).then(b.aging.cmp(&a.aging)).then(a.key.cmp(&b.key)));
        for cap in 0..=pools.len() + 1 {
            let summary = reg.pool_summary(cap);
            let top = cap.min(sorted.len());
            prop_assert_eq!(&summary.busiest[..], &sorted[..top]);
            let rest = &sorted[top..];
            prop_assert_eq!(summary.others.pools, rest.len() as u64);
            prop_assert_eq!(summary.others.in_use, rest.iter().map(|p| u64::from(p.in_use)).sum::<u64>());
            prop_assert_eq!(summary.others.aging, rest.iter().map(|p| u64::from(p.aging)).sum::<u64>());
            prop_assert_eq!(summary.others.free, rest.iter().map(|p| u64::from(p.free)).sum::<u64>());
        }
        // Past the aging period the aging ports count as free in both.
        clock.advance_us(100);
        let all = reg.pool_summary(0).others;
        prop_assert_eq!(all.aging, 0);
        prop_assert_eq!(all.pools, pools.len() as u64);
    }
}
