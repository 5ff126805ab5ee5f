//! Property tests of the registry against a plain model (a `BTreeSet` of ports in use
//! and a list of aging ports with their deadlines, per flow), plus the orderings and
//! the sparse/dense switch that the model does not pin down.
#![allow(clippy::unwrap_used)]

#[path = "common/model.rs"]
mod model;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use model::{flow_keys, manual_registry, near, ok, pool_config, pool_registry, ModelFlow, ModelOp};
use porter_core::{Error, Flow, FlowKey, Lease, ManualClock, PortRange, Registry, Released};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// The model (tests/common/model.rs) against a registry
// ---------------------------------------------------------------------------------------

struct Harness {
    range: PortRange,
    aging_us: u64,
    clock: Arc<ManualClock>,
    registry: Arc<Registry>,
    keys: Vec<FlowKey>,
    flows: Vec<Flow>,
    /// Ports taken as a `Lease`, per flow (released through it).
    leases: Vec<BTreeMap<u16, Lease>>,
    model: Vec<ModelFlow>,
    now: u64,
}

impl Harness {
    fn new(range: PortRange, aging_us: u64, nflows: usize) -> Self {
        let clock = Arc::new(ManualClock::new());
        let registry = pool_registry(pool_config(range, Duration::from_micros(aging_us)), clock.clone());
        let keys = flow_keys(nflows);
        let flows = keys.iter().map(|&k| registry.flow(k)).collect();
        Self {
            range,
            aging_us,
            clock,
            registry,
            keys,
            flows,
            leases: (0..nflows).map(|_| BTreeMap::new()).collect(),
            model: vec![ModelFlow::default(); nflows],
            now: 0,
        }
    }

    fn advance(&mut self, us: u64) {
        self.clock.advance_us(us);
        self.now += us;
        assert_eq!(self.registry.now_us(), self.now);
    }

    fn allocate(&mut self, f: usize, lease: bool) {
        let got = if lease {
            match self.flows[f].allocate() {
                Ok(l) => {
                    let port = l.port();
                    self.leases[f].insert(port, l);
                    Some(port)
                }
                Err(Error::Exhausted { .. }) => None,
                Err(e) => panic!("allocate() failed: {e}"),
            }
        } else {
            self.flows[f].allocate_port()
        };
        ok(self.model[f].allocated(self.range, self.now, got, &format!("flow {f}")));
    }

    /// Releases one holder of `port` (through its lease if it has one).
    fn release(&mut self, f: usize, port: u16, aging: bool) {
        let expected = self.model[f].release(port, aging, self.now, self.aging_us);
        let got = match self.leases[f].remove(&port) {
            Some(lease) => lease.release(aging),
            None => self.flows[f].release(port, aging),
        };
        assert_eq!(got, expected, "release({port}, {aging}) in flow {f}");
    }

    fn mark_in_use(&mut self, f: usize, port: u16) {
        let got = self.flows[f].mark_in_use(port);
        ok(self.model[f].marked(port, self.now, got, &format!("flow {f}")));
    }

    /// Lets go of the handle on flow `f` and takes it again: a pool that holds nothing
    /// is queued for retirement and must survive, as a handle is taken again.
    fn drop_handle(&mut self, f: usize) {
        let key = self.keys[f];
        self.flows[f] = self.registry.flow(key);
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

    /// The counts of every pool, and the summary without a cap, equal the model.
    fn check_counts(&mut self) {
        let (range, now) = (self.range, self.now);
        let counts = self.registry.pool_counts();
        let summary = self.registry.pool_summary(usize::MAX);
        assert_eq!(summary.others.pools, 0, "a summary with no cap left pools out");
        for (f, key) in self.keys.iter().enumerate() {
            let c = counts.iter().find(|c| c.key == *key).unwrap();
            ok(self.model[f].check_counts(range, now, c, &format!("flow {f}")));
            let s = summary.busiest.iter().find(|c| c.key == *key).unwrap();
            ok(self.model[f].check_counts(range, now, s, &format!("flow {f} in the summary")));
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

    fn double_release(&mut self, f: usize, pick: u64, first_aging: bool, second_aging: bool) {
        let Some(port) = self.model[f].pick_held_once(pick) else {
            return;
        };
        self.release(f, port, first_aging);
        let before = self.registry.snapshot();
        let stats = self.registry.stats();
        assert_eq!(self.flows[f].release(port, second_aging), Released::NotInUse);
        assert_eq!(self.registry.snapshot(), before, "a second release changed a pool");
        assert_eq!(self.registry.stats(), stats, "a second release was counted");
    }

    fn advance_to_next_deadline(&mut self, before: bool) {
        let Some((f, port, deadline)) = self.next_deadline() else {
            return;
        };
        if before {
            self.advance(deadline - 1 - self.now);
            assert!(
                self.flows[f].is_aging(port),
                "port {port} free one microsecond before its deadline"
            );
        } else {
            self.advance(deadline - self.now);
            assert!(!self.flows[f].is_aging(port), "port {port} still aging at its deadline");
        }
        assert!(!self.flows[f].is_in_use(port));
    }

    fn apply(&mut self, op: ModelOp) {
        let range = self.range;
        match op {
            ModelOp::Allocate { flow, lease } => self.allocate(flow, lease),
            ModelOp::Release { flow, pick, aging } => {
                let port = self.model[flow].pick(range, pick);
                self.release(flow, port, aging);
            }
            ModelOp::DoubleRelease {
                flow,
                pick,
                first_aging,
                second_aging,
            } => self.double_release(flow, pick, first_aging, second_aging),
            ModelOp::ReleaseAny { flow, offset, aging } => self.release(flow, near(range, offset, 2), aging),
            ModelOp::MarkInUse { flow, offset } => self.mark_in_use(flow, near(range, offset, 3)),
            ModelOp::DropHandle { flow } => self.drop_handle(flow),
            ModelOp::Check => self.check(),
            ModelOp::Counts => self.check_counts(),
            ModelOp::Advance { us } => self.advance(us),
            ModelOp::ToNextDeadline { before } => self.advance_to_next_deadline(before),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Random operations
// ---------------------------------------------------------------------------------------

fn op(nflows: usize, span: u16) -> impl Strategy<Value = ModelOp> {
    let f = 0..nflows;
    prop_oneof![
        6 => (f.clone(), prop::bool::weighted(0.25)).prop_map(|(flow, lease)| ModelOp::Allocate { flow, lease }),
        3 => (f.clone(), any::<u64>(), any::<bool>()).prop_map(|(flow, pick, aging)| ModelOp::Release { flow, pick, aging }),
        1 => (f.clone(), any::<u64>(), any::<bool>(), any::<bool>())
            .prop_map(|(flow, pick, first_aging, second_aging)| ModelOp::DoubleRelease { flow, pick, first_aging, second_aging }),
        1 => (f.clone(), 0..span + 4, any::<bool>()).prop_map(|(flow, offset, aging)| ModelOp::ReleaseAny { flow, offset, aging }),
        1 => (f.clone(), 0..span + 6).prop_map(|(flow, offset)| ModelOp::MarkInUse { flow, offset }),
        1 => f.prop_map(|flow| ModelOp::DropHandle { flow }),
        2 => (0u64..120).prop_map(|us| ModelOp::Advance { us }),
        2 => any::<bool>().prop_map(|before| ModelOp::ToNextDeadline { before }),
        2 => Just(ModelOp::Check),
        1 => Just(ModelOp::Counts),
    ]
}

fn run(range: PortRange, aging_us: u64, nflows: usize, ops: &[ModelOp]) {
    let mut h = Harness::new(range, aging_us, nflows);
    h.check();
    for &op in ops {
        h.apply(op);
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
        let (clock, reg) = manual_registry(7000, 7009, Duration::from_micros(100));
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
