//! The operations of a thread on the flows every thread shares, each answer checked
//! against what holds under concurrency; and the drain at the end of a round.

use std::sync::atomic::Ordering;

use porter_core::{Clock, Lease, Marked, Released};

use crate::model::{check_consistent, ensure, Checked};
use crate::ops::{Which, PRIVATE_FLOWS, SHARED_FLOWS};
use crate::worker::Worker;
use crate::world::LastRelease;

impl Worker<'_> {
    /// Releases the `pick`-th port the thread holds in the flow (allocated or marked);
    /// allocates one when it holds none.
    pub(crate) fn shared_release_pick(&mut self, flow: usize, pick: u64, aging: bool) -> Checked {
        let held = self.held[flow].len() as u64;
        let marked = self.marked[flow].len() as u64;
        if held + marked == 0 {
            return self.shared_allocate(flow, false);
        }
        let i = pick % (held + marked);
        if i < held {
            self.shared_release(flow, i as usize, aging)
        } else {
            self.shared_unmark(flow, (i - held) as usize, aging)
        }
    }

    /// Marks a port just outside the range in use (what the kernel fallback picks).
    pub(crate) fn shared_mark(&mut self, flow: usize, slot: usize) -> Checked {
        let s = &self.world.shared[flow];
        if s.outside.is_empty() {
            return Ok(());
        }
        let slot = slot % s.outside.len();
        let port = s.outside[slot];
        let h = self.shared[flow].clone();
        let (got, _, _) = self.world.timed(s.which, || h.mark_in_use(port));
        s.marks[slot].fetch_add(1, Ordering::SeqCst);
        self.counted[s.which as usize].allocations += 1;
        self.marked[flow].push(slot);
        match got {
            Marked::Free => self.cov.marked_free += 1,
            Marked::WasAging => self.cov.marked_was_aging += 1,
            Marked::AlreadyInUse => self.cov.marked_already_in_use += 1,
        }
        Ok(())
    }

    /// A snapshot of a registry while other threads work: consistent, and the ports this
    /// thread holds in use.
    pub(crate) fn shared_inspect(&mut self, which: Which) -> Checked {
        let side = self.world.side(which);
        let (snapshot, before, after) = self.world.timed(which, || side.registry.snapshot());
        // The time that passed during the snapshot (none on the exact registry).
        let max_left = side.setup.aging_us + (after - before);
        for pool in &snapshot {
            check_consistent(side.setup.range, max_left, pool)?;
        }
        for (f, s) in self.world.shared.iter().enumerate().filter(|(_, s)| s.which == which) {
            let Some(pool) = snapshot.iter().find(|p| p.key == s.key) else {
                return Err(format!("shared flow {f} missing from a snapshot while held"));
            };
            let mine = self.held[f]
                .iter()
                .copied()
                .chain(self.marked[f].iter().map(|&slot| s.outside[slot]));
            for p in mine {
                ensure!(
                    pool.in_use.binary_search(&p).is_ok(),
                    "shared flow {f}: port {p}, held by this thread, not in use in a snapshot"
                );
            }
        }
        Ok(())
    }

    pub(crate) fn shared_allocate(&mut self, flow: usize, lease: bool) -> Checked {
        let s = &self.world.shared[flow];
        let side = self.world.side(s.which);
        let (range, aging_us) = (side.setup.range, side.setup.aging_us);
        let h = self.shared[flow].clone();
        let idx = s.which as usize;
        let (got, _, after) = self.world.timed(s.which, || {
            if lease {
                h.allocate().ok().map(Lease::into_port)
            } else {
                h.allocate_port()
            }
        });
        let Some(p) = got else {
            self.cov.shared_exhausted += 1;
            if lease {
                self.counted[idx].exhausted += 1;
            }
            return Ok(());
        };
        self.counted[idx].allocations += 1;
        self.cov.shared_allocated += 1;
        ensure!(range.contains(p), "shared flow {flow}: port {p} outside {range:?}");
        let mut st = s.ports[usize::from(p - range.first())].lock();
        ensure!(
            !st.held,
            "shared flow {flow}: port {p} handed out while another thread holds it"
        );
        if let Some(last) = st.last.filter(|l| l.aging) {
            ensure!(
                after >= last.before + aging_us,
                "shared flow {flow}: port {p} handed out by {after}, released into aging at {} or later ({aging_us} us)",
                last.before
            );
        }
        st.held = true;
        st.generation += 1;
        drop(st);
        self.held[flow].push(p);
        Ok(())
    }

    pub(crate) fn shared_release(&mut self, flow: usize, i: usize, aging: bool) -> Checked {
        let s = &self.world.shared[flow];
        let range = self.world.side(s.which).setup.range;
        let p = self.held[flow].swap_remove(i);
        let h = self.shared[flow].clone();
        let port_state = &s.ports[usize::from(p - range.first())];
        let (r, _, after, generation) = {
            let run = || {
                // Recorded before the release: once it is done, another thread may take
                // the port and look.
                let generation = {
                    let mut st = port_state.lock();
                    st.held = false;
                    st.last = Some(LastRelease {
                        before: self.world.side(s.which).clock.now_us(),
                        after: None,
                        aging,
                    });
                    st.generation
                };
                (h.release(p, aging), generation)
            };
            let ((r, generation), before, after) = self.world.timed(s.which, run);
            (r, before, after, generation)
        };
        {
            let mut st = port_state.lock();
            if st.generation == generation {
                if let Some(last) = st.last.as_mut() {
                    last.after = Some(after);
                }
            }
        }
        let expected = if aging { Released::Aging } else { Released::Immediate };
        ensure!(
            r == expected,
            "shared flow {flow}: release({p}, {aging}) of a port held gave {r:?}"
        );
        self.counted[s.which as usize].released(r);
        self.cov.shared_released += 1;
        Ok(())
    }

    pub(crate) fn shared_unmark(&mut self, flow: usize, i: usize, aging: bool) -> Checked {
        let s = &self.world.shared[flow];
        let slot = self.marked[flow].swap_remove(i);
        let p = s.outside[slot];
        s.marks[slot].fetch_sub(1, Ordering::SeqCst);
        let h = self.shared[flow].clone();
        let (r, _, _) = self.world.timed(s.which, || h.release(p, aging));
        ensure!(
            r != Released::NotInUse,
            "shared flow {flow}: release({p}) of a kernel-chosen port held gave {r:?}"
        );
        self.counted[s.which as usize].released(r);
        self.cov.shared_released += 1;
        Ok(())
    }

    /// Releases everything the thread holds.
    pub(crate) fn drain(&mut self) -> Checked {
        for f in 0..PRIVATE_FLOWS {
            for port in self.private[f].model.holders() {
                let aging = self.rng.coin();
                self.release_private(f, port, aging)?;
            }
        }
        for f in 0..SHARED_FLOWS {
            while !self.held[f].is_empty() {
                let aging = self.rng.coin();
                self.shared_release(f, 0, aging)?;
            }
            while !self.marked[f].is_empty() {
                let aging = self.rng.coin();
                self.shared_unmark(f, 0, aging)?;
            }
        }
        Ok(())
    }
}
