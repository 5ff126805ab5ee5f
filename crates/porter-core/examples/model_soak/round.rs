//! A round, as each thread runs it: segments of operations, each followed by quiescent
//! checks at a barrier; then the drain and the end-of-round checks.

use std::sync::atomic::Ordering;

use crate::model::ensure;
use crate::ops::Which;
use crate::worker::Worker;

impl Worker<'_> {
    /// One round: segments of operations, each followed by quiescent checks; then the
    /// drain and the end-of-round checks. Every thread waits at the same barriers
    /// whatever happens, so a violation stops the work, never the barriers.
    pub(crate) fn round(&mut self, round: u64, ops: u64, segments: u64) {
        let world = self.world;
        for segment in 0..segments {
            let n = ops * (segment + 1) / segments - ops * segment / segments;
            let mut done = 0;
            while done < n && !self.run.stopped() {
                self.step(round);
                done += 1;
            }
            self.run.done.fetch_add(done, Ordering::Relaxed);
            world.barrier.wait();
            if self.leader() {
                let mut counted = self.counted;
                self.checked(round, |w| w.world.check_shared_quiescent(false, &mut counted));
                self.counted = counted;
                self.cov.quiescent_checks += 1;
            }
            world.barrier.wait();
            self.checked(round, |w| w.check_private(false));
            world.barrier.wait();
        }
        // The drain, then time past every deadline.
        self.checked(round, Worker::drain);
        world.barrier.wait();
        if self.leader() {
            world.advance_exact(world.exact.setup.aging_us + 1);
            world.free.clock.advance_us(world.free.setup.aging_us + 1);
        }
        world.barrier.wait();
        if self.leader() {
            let mut counted = self.counted;
            self.checked(round, |w| w.world.check_shared_quiescent(true, &mut counted));
            self.counted = counted;
        }
        world.barrier.wait();
        self.checked(round, |w| w.check_private(true));
        world.barrier.wait();
        // Every handle goes: every pool must then be dropped.
        for p in &mut self.private {
            p.handle = None;
        }
        self.shared.clear();
        world.counted_exact.lock().add(&self.counted[0]);
        world.counted_free.lock().add(&self.counted[1]);
        world.barrier.wait();
        if self.leader() {
            self.checked(round, |w| {
                for (which, counted) in [
                    (Which::Exact, *w.world.counted_exact.lock()),
                    (Which::Free, *w.world.counted_free.lock()),
                ] {
                    let registry = &w.world.side(which).registry;
                    let snapshot = registry.snapshot();
                    ensure!(
                        snapshot.is_empty() && registry.pool_count() == 0,
                        "{which:?}: pools left once nothing is held: {snapshot:?}"
                    );
                    let stats = registry.stats();
                    w.cov.pools_retired += stats.pools_retired;
                    let got = (
                        stats.allocations,
                        stats.releases_aging,
                        stats.releases_immediate,
                        stats.exhausted,
                    );
                    let want = (
                        counted.allocations,
                        counted.releases_aging,
                        counted.releases_immediate,
                        counted.exhausted,
                    );
                    ensure!(
                        got == want,
                        "{which:?}: counters (allocations, releases into aging, immediate, exhausted) {got:?}, operations {want:?}"
                    );
                }
                Ok(())
            });
        }
        world.coverage.lock().add(&self.cov);
    }
}
