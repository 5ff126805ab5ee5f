//! The operations of a thread on its own flows of the exact registry ([`ModelOp`]), each
//! answer checked against the model of that flow.

use porter_core::{Clock, Error, Flow, Marked, PoolSnapshot, Released};

use crate::model::{ensure, near, Checked, ModelOp};
use crate::ops::PRIVATE_FLOWS;
use crate::worker::Worker;

impl Worker<'_> {
    pub(crate) fn apply_own(&mut self, op: ModelOp) -> Checked {
        let range = self.exact().setup.range;
        match op {
            ModelOp::Allocate { flow, lease } => self.own_allocate(flow, lease),
            ModelOp::Release { flow, pick, aging } => {
                let port = self.private[flow].model.pick(range, pick);
                self.release_private(flow, port, aging)
            }
            ModelOp::DoubleRelease {
                flow,
                pick,
                first_aging,
                second_aging,
            } => self.own_double_release(flow, pick, first_aging, second_aging),
            ModelOp::ReleaseAny { flow, offset, aging } => self.release_private(flow, near(range, offset, 2), aging),
            ModelOp::MarkInUse { flow, offset } => self.own_mark(flow, near(range, offset, 3)),
            ModelOp::DropHandle { flow } => {
                if self.private[flow].handle.take().is_some() {
                    self.cov.handles_dropped += 1;
                }
                Ok(())
            }
            ModelOp::Check => self.check_private(false),
            ModelOp::Counts => self.own_counts(),
            ModelOp::Advance { us } => {
                self.world.advance_exact(us);
                Ok(())
            }
            ModelOp::ToNextDeadline { before } => self.own_to_next_deadline(before),
        }
    }

    fn own_allocate(&mut self, flow: usize, lease: bool) -> Checked {
        let range = self.exact().setup.range;
        let h = self.handle(flow);
        let _gate = self.world.gate.read();
        let now = self.exact().clock.now_us();
        let (port, lease) = if lease {
            match h.allocate() {
                Ok(l) => (Some(l.port()), Some(l)),
                Err(Error::Exhausted { .. }) => {
                    self.counted[0].exhausted += 1;
                    (None, None)
                }
                Err(e) => return Err(format!("allocate() failed: {e}")),
            }
        } else {
            (h.allocate_port(), None)
        };
        let p = &mut self.private[flow];
        p.model.allocated(range, now, port, &format!("flow {flow}"))?;
        match port {
            Some(port) => {
                self.counted[0].allocations += 1;
                self.cov.allocated += 1;
                if let Some(l) = lease {
                    p.leases.insert(port, l);
                }
            }
            None => self.cov.exhausted += 1,
        }
        Ok(())
    }

    fn own_double_release(&mut self, flow: usize, pick: u64, first_aging: bool, second_aging: bool) -> Checked {
        let Some(port) = self.private[flow].model.pick_held_once(pick) else {
            return Ok(());
        };
        self.release_private(flow, port, first_aging)?;
        let h = self.handle(flow);
        let _gate = self.world.gate.read();
        let registry = &self.exact().registry;
        let mine = |snapshot: Vec<PoolSnapshot>| snapshot.into_iter().find(|p| p.key == *h.key());
        let before = mine(registry.snapshot());
        let r = h.release(port, second_aging);
        ensure!(r == Released::NotInUse, "second release({port}) gave {r:?}");
        self.cov.released_not_in_use += 1;
        let after = mine(registry.snapshot());
        ensure!(
            before == after,
            "a second release changed the pool: {before:?} -> {after:?}"
        );
        Ok(())
    }

    fn own_mark(&mut self, flow: usize, port: u16) -> Checked {
        let h = self.handle(flow);
        let _gate = self.world.gate.read();
        let now = self.exact().clock.now_us();
        let got = h.mark_in_use(port);
        self.counted[0].allocations += 1;
        match got {
            Marked::Free => self.cov.marked_free += 1,
            Marked::WasAging => self.cov.marked_was_aging += 1,
            Marked::AlreadyInUse => self.cov.marked_already_in_use += 1,
        }
        self.private[flow].model.marked(port, now, got, &format!("flow {flow}"))
    }

    fn own_counts(&mut self) -> Checked {
        let range = self.exact().setup.range;
        let _gate = self.world.gate.read();
        let now = self.exact().clock.now_us();
        let registry = &self.exact().registry;
        let counts = registry.pool_counts();
        let summary = registry.pool_summary(usize::MAX);
        ensure!(
            summary.others.pools == 0,
            "a summary with no cap left {} pools out",
            summary.others.pools
        );
        for (f, p) in self.private.iter_mut().enumerate() {
            let what = format!("flow {f}");
            match counts.iter().find(|c| c.key == p.key) {
                Some(c) => p.model.check_counts(range, now, c, &what)?,
                None => ensure!(
                    p.handle.is_none() && p.leases.is_empty() && !p.model.holds_anything(now),
                    "{what}: not counted, yet held or holding ports"
                ),
            }
            if let Some(c) = summary.busiest.iter().find(|c| c.key == p.key) {
                p.model.check_counts(range, now, c, &format!("{what} in the summary"))?;
            }
        }
        Ok(())
    }

    fn own_to_next_deadline(&mut self, before: bool) -> Checked {
        let handles: Vec<Flow> = (0..PRIVATE_FLOWS).map(|f| self.handle(f)).collect();
        let _gate = self.world.gate.write();
        let clock = &self.exact().clock;
        let now = clock.now_us();
        let next = self
            .private
            .iter()
            .enumerate()
            .filter_map(|(f, p)| p.model.next_deadline(now).map(|(port, d)| (f, port, d)))
            .min_by_key(|&(_, _, d)| d);
        let Some((f, port, deadline)) = next else {
            return Ok(());
        };
        let target = if before { deadline - 1 } else { deadline };
        clock.advance_us(target - now);
        let h = &handles[f];
        self.cov.deadline_checks += 1;
        ensure!(!h.is_in_use(port), "port {port} in use while aging, flow {f}");
        if before {
            ensure!(
                h.is_aging(port),
                "port {port} free one microsecond before its deadline {deadline}, flow {f}"
            );
        } else {
            ensure!(
                !h.is_aging(port),
                "port {port} still aging at its deadline {deadline}, flow {f}"
            );
        }
        Ok(())
    }
}
