//! The checks made when every thread stands at the barrier: every shared pool in full,
//! allocation until exhaustion, and the registry's counts, summary and counters.

use std::sync::atomic::Ordering;

use porter_core::{Clock, PoolSnapshot, PortRange, Released};

use crate::model::{check_consistent, ensure, Checked};
use crate::ops::Which;
use crate::world::{Counted, LastRelease, SharedFlow, World};

impl World {
    /// On a quiescent world: every shared flow checked in full, then allocated until
    /// exhausted (exactly the free ports) and given back at once. `drained`: every port
    /// must be free.
    pub(crate) fn check_shared_quiescent(&self, drained: bool, counted: &mut [Counted; 2]) -> Checked {
        for which in [Which::Exact, Which::Free] {
            let side = self.side(which);
            let (range, aging_us) = (side.setup.range, side.setup.aging_us);
            let now = side.clock.now_us();
            let snapshot = side.registry.snapshot();
            for s in self.shared.iter().filter(|s| s.which == which) {
                let what = format!("shared flow {:?} ({which:?})", s.key);
                let Some(pool) = snapshot.iter().find(|p| p.key == s.key) else {
                    return Err(format!("{what}: missing from the snapshot while threads hold it"));
                };
                check_consistent(range, aging_us, pool)?;
                check_shared_pool(s, range, aging_us, now, pool, drained, &what)?;
                // Allocation until exhaustion: exactly the free ports, each one free.
                let flow = side.registry.flow(s.key);
                let mut got = Vec::new();
                while let Some(p) = flow.allocate_port() {
                    ensure!(got.len() < range.len() as usize, "{what}: more ports than the range");
                    got.push(p);
                }
                ensure!(
                    got.len() as u32 == pool.free,
                    "{what}: {} ports allocated until exhaustion, snapshot said {} free",
                    got.len(),
                    pool.free
                );
                let idx = which as usize;
                counted[idx].allocations += got.len() as u64;
                for p in got {
                    ensure!(range.contains(p), "{what}: port {p} outside the range");
                    let mut st = s.ports[usize::from(p - range.first())].lock();
                    ensure!(!st.held, "{what}: port {p} handed out while a thread holds it");
                    ensure!(
                        !pool.aging.iter().any(|&(a, _)| a == p),
                        "{what}: port {p} handed out while aging"
                    );
                    st.generation += 1;
                    let r = flow.release(p, false);
                    ensure!(r == Released::Immediate, "{what}: release({p}, false) gave {r:?}");
                    counted[idx].released(r);
                    st.last = Some(LastRelease {
                        before: now,
                        after: Some(now),
                        aging: false,
                    });
                }
            }
            // The whole registry: counts, summary and counters agree with the snapshot.
            let counts = side.registry.pool_counts();
            ensure!(
                counts.len() == snapshot.len(),
                "{which:?}: {} pools counted, {} in the snapshot",
                counts.len(),
                snapshot.len()
            );
            let snapshot = side.registry.snapshot();
            for (c, p) in counts.iter().zip(&snapshot) {
                ensure!(
                    c.key == p.key
                        && c.in_use as usize == p.in_use.len()
                        && c.aging as usize == p.aging.len()
                        && c.free == p.free,
                    "{which:?}: counts {c:?} and snapshot {p:?} disagree"
                );
            }
            let summary = side.registry.pool_summary(2);
            let mut total = summary.others;
            for b in &summary.busiest {
                total.pools += 1;
                total.in_use += u64::from(b.in_use);
                total.aging += u64::from(b.aging);
                total.free += u64::from(b.free);
            }
            let want = counts.iter().fold((0u64, 0u64, 0u64, 0u64), |t, c| {
                (
                    t.0 + 1,
                    t.1 + u64::from(c.in_use),
                    t.2 + u64::from(c.aging),
                    t.3 + u64::from(c.free),
                )
            });
            ensure!(
                (total.pools, total.in_use, total.aging, total.free) == want,
                "{which:?}: summary totals {total:?}, counts {want:?}"
            );
            let stats = side.registry.stats();
            ensure!(
                stats.pools == counts.len() as u64,
                "{which:?}: stats say {} pools, counts {}",
                stats.pools,
                counts.len()
            );
        }
        Ok(())
    }
}
/// One shared pool against what the threads recorded, on a quiescent world.
pub(crate) fn check_shared_pool(
    s: &SharedFlow,
    range: PortRange,
    aging_us: u64,
    now: u64,
    pool: &PoolSnapshot,
    drained: bool,
    what: &str,
) -> Checked {
    let mut in_use: Vec<u16> = Vec::new();
    for (i, st) in s.ports.iter().enumerate() {
        if st.lock().held {
            in_use.push(range.first() + i as u16);
        }
    }
    for (slot, &p) in s.outside.iter().enumerate() {
        if s.marks[slot].load(Ordering::SeqCst) > 0 {
            in_use.push(p);
        }
    }
    in_use.sort_unstable();
    ensure!(
        pool.in_use == in_use,
        "{what}: in use {:?}, the threads hold {in_use:?}",
        pool.in_use
    );
    if drained {
        ensure!(
            in_use.is_empty(),
            "{what}: ports still held after the drain: {in_use:?}"
        );
        ensure!(
            pool.aging.is_empty() && pool.free == range.len(),
            "{what}: not fully free past the aging period: {pool:?}"
        );
    }
    let mut aging_in_range = 0u32;
    for &(p, left) in &pool.aging {
        if !range.contains(p) {
            continue; // a kernel-chosen port: no deadline recorded
        }
        aging_in_range += 1;
        let st = s.ports[usize::from(p - range.first())].lock();
        let Some(last) = st.last.filter(|l| l.aging) else {
            return Err(format!(
                "{what}: port {p} aging, but its last release was not into aging"
            ));
        };
        let after = last.after.unwrap_or(u64::MAX);
        let deadline = now + left;
        ensure!(
            deadline >= last.before + aging_us && deadline <= after.saturating_add(aging_us),
            "{what}: port {p} aging until {deadline}, released between {} and {after} with {aging_us} us of aging",
            last.before
        );
    }
    // Every port neither held nor aging: free, and its deadline (if any) passed.
    for (i, st) in s.ports.iter().enumerate() {
        let p = range.first() + i as u16;
        let st = st.lock();
        if st.held || pool.aging.iter().any(|&(a, _)| a == p) {
            continue;
        }
        if let Some(last) = st.last.filter(|l| l.aging) {
            ensure!(
                last.before + aging_us <= now,
                "{what}: port {p} free at {now}, but released into aging at {} or later ({aging_us} us)",
                last.before
            );
        }
    }
    let held_in_range = pool.in_use.iter().filter(|&&p| range.contains(p)).count() as u32;
    ensure!(
        pool.free == range.len() - held_in_range - aging_in_range,
        "{what}: {} free, {held_in_range} in use and {aging_in_range} aging of {}",
        pool.free,
        range.len()
    );
    Ok(())
}
