//! One thread of the model check: its flows, its log of operations, and how it applies
//! an operation and checks the answer (its own flows in `own.rs`, the shared ones in
//! `shared.rs`, a round in `round.rs`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use porter_core::{Clock, Flow, FlowKey, Lease, Released};

use crate::model::{check_consistent, ensure, Checked, ModelFlow};
use crate::ops::{draw_op, Op, PRIVATE_FLOWS, SHARED_FLOWS};
use crate::options::Rng;
use crate::world::{Counted, Coverage, Run, Setup, Side, World};

pub(crate) struct Private {
    pub(crate) key: FlowKey,
    pub(crate) handle: Option<Flow>,
    pub(crate) model: ModelFlow,
    /// Ports taken as a `Lease` (released through it).
    pub(crate) leases: BTreeMap<u16, Lease>,
}

pub(crate) struct Worker<'w> {
    pub(crate) id: usize,
    pub(crate) world: &'w World,
    pub(crate) run: &'w Run,
    pub(crate) rng: Rng,
    pub(crate) private: Vec<Private>,
    pub(crate) shared: Vec<Flow>,
    /// Ports this thread holds in each shared flow: allocated, and outside-range slots marked.
    pub(crate) held: Vec<Vec<u16>>,
    pub(crate) marked: Vec<Vec<usize>>,
    pub(crate) counted: [Counted; 2],
    pub(crate) cov: Coverage,
    pub(crate) log: Vec<Op>,
    pub(crate) ops: u64,
}

pub(crate) const LOG: usize = 32;

impl<'w> Worker<'w> {
    pub(crate) fn new(id: usize, world: &'w World, run: &'w Run, rng: Rng) -> Self {
        let private = (0..PRIVATE_FLOWS)
            .map(|i| {
                let port = 10_000 + (id * PRIVATE_FLOWS + i) as u16;
                let ip = if i % 2 == 0 {
                    IpAddr::V4(Ipv4Addr::LOCALHOST)
                } else {
                    IpAddr::V6(Ipv6Addr::LOCALHOST)
                };
                Private {
                    key: FlowKey::new(None, SocketAddr::new(ip, port)),
                    handle: None,
                    model: ModelFlow::default(),
                    leases: BTreeMap::new(),
                }
            })
            .collect();
        let shared = world
            .shared
            .iter()
            .map(|s| world.side(s.which).registry.flow(s.key))
            .collect();
        Self {
            id,
            world,
            run,
            rng,
            private,
            shared,
            held: vec![Vec::new(); SHARED_FLOWS],
            marked: vec![Vec::new(); SHARED_FLOWS],
            counted: [Counted::default(); 2],
            cov: Coverage::default(),
            log: Vec::with_capacity(LOG),
            ops: 0,
        }
    }

    pub(crate) fn exact(&self) -> &'w Side {
        &self.world.exact
    }

    /// The handle on a private flow, taken again from the registry if it was dropped.
    pub(crate) fn handle(&mut self, f: usize) -> Flow {
        let registry = &self.world.exact.registry;
        let p = &mut self.private[f];
        p.handle.get_or_insert_with(|| registry.flow(p.key)).clone()
    }

    pub(crate) fn fail(&self, round: u64, msg: String) {
        let mut s = format!(
            "thread {} round {round} op {}: {msg}\n  last operations (oldest first):",
            self.id, self.ops
        );
        for op in &self.log {
            let _ = write!(s, "\n    {op:?}");
        }
        self.run.violation(s);
    }

    pub(crate) fn record(&mut self, op: Op) {
        if self.log.len() == LOG {
            self.log.remove(0);
        }
        self.log.push(op);
    }

    pub(crate) fn step(&mut self, round: u64) {
        let span = self.exact().setup.range.len() as u16;
        let op = draw_op(&mut self.rng, span);
        self.record(op);
        self.ops += 1;
        match catch_unwind(AssertUnwindSafe(|| self.apply(op))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => self.fail(round, e),
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
                    .unwrap_or_default();
                self.fail(round, format!("panicked: {msg}"));
            }
        }
    }

    fn apply(&mut self, op: Op) -> Checked {
        match op {
            Op::Own(op) => self.apply_own(op),
            Op::SharedAllocate { flow, lease } => self.shared_allocate(flow, lease),
            Op::SharedRelease { flow, pick, aging } => self.shared_release_pick(flow, pick, aging),
            Op::SharedMark { flow, slot } => self.shared_mark(flow, slot),
            Op::SharedInspect { which } => self.shared_inspect(which),
            Op::FreeAdvance { us } => {
                self.world.free.clock.advance_us(us);
                Ok(())
            }
        }
    }

    /// Releases one holder of `port` of a private flow (through its lease if it has one)
    /// and checks the answer against the model.
    pub(crate) fn release_private(&mut self, flow: usize, port: u16, aging: bool) -> Checked {
        let h = self.handle(flow);
        let _gate = self.world.gate.read();
        let now = self.exact().clock.now_us();
        let aging_us = self.exact().setup.aging_us;
        let p = &mut self.private[flow];
        let (expected, got) = match p.leases.remove(&port) {
            // Dropped, a lease goes into aging.
            Some(lease) if aging && self.rng.below(4) == 0 => {
                drop(lease);
                (p.model.release(port, true, now, aging_us), None)
            }
            Some(lease) => (p.model.release(port, aging, now, aging_us), Some(lease.release(aging))),
            None => (
                p.model.release(port, aging, now, aging_us),
                Some(h.release(port, aging)),
            ),
        };
        if let Some(got) = got {
            ensure!(
                got == expected,
                "release({port}, {aging}) gave {got:?}, model {expected:?}, flow {flow}"
            );
        }
        self.counted[0].released(expected);
        match expected {
            Released::Aging => self.cov.released_aging += 1,
            Released::Immediate => self.cov.released_immediate += 1,
            Released::NotInUse => self.cov.released_not_in_use += 1,
        }
        Ok(())
    }

    /// Every private flow against its model, at one moment of the exact registry's clock.
    /// `drained`: the model must hold nothing.
    pub(crate) fn check_private(&mut self, drained: bool) -> Checked {
        let handles: Vec<Flow> = (0..PRIVATE_FLOWS).map(|f| self.handle(f)).collect();
        let _gate = self.world.gate.read();
        let Setup { range, aging_us } = self.exact().setup;
        let now = self.exact().clock.now_us();
        let snapshot = self.exact().registry.snapshot();
        for pool in &snapshot {
            check_consistent(range, aging_us, pool)?;
        }
        self.cov.full_checks += 1;
        for (f, p) in self.private.iter_mut().enumerate() {
            let what = format!("flow {f}");
            let Some(pool) = snapshot.iter().find(|s| s.key == p.key) else {
                return Err(format!("{what}: missing from the snapshot while held"));
            };
            p.model.check_snapshot(range, now, pool, &what)?;
            p.model.check_ports(range, now, &handles[f], &what)?;
            if drained {
                ensure!(
                    !p.model.holds_anything(now) && pool.free == range.len(),
                    "{what}: not fully free past the aging period: {pool:?}"
                );
            }
        }
        Ok(())
    }

    /// Runs `f` unless the run has stopped, recording what it found.
    pub(crate) fn checked(&mut self, round: u64, f: impl FnOnce(&mut Self) -> Checked) {
        if self.run.stopped() {
            return;
        }
        match catch_unwind(AssertUnwindSafe(|| f(self))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => self.fail(round, e),
            Err(_) => self.fail(round, "a check panicked".into()),
        }
    }

    pub(crate) fn leader(&self) -> bool {
        self.id == 0
    }
}
