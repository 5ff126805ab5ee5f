//! Retirement: a pool that holds nothing (no port in use, none aging) and that nobody
//! holds a handle on is dropped, so memory follows the destinations in use, not every
//! destination ever used. A flow that lets go of its last port in use, or the last handle
//! on an idle flow, puts the flow on its shard's list of candidates (a heap by the time the
//! pool will hold nothing: its last aging deadline, or at once); a candidate is checked
//! when it is due, at the next creation of a flow in that shard (two candidates per
//! creation) or the next inspection of the registry (all that are due). So a pool waits at
//! most its aging period past its last use, and then until the registry is next used.
//!
//! This file holds the candidates and the rule; `shard.rs` applies it under the shard's
//! lock, so that no handle can be taken while it looks at the count of handles.

use std::collections::BinaryHeap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use crate::flow_entry::FlowEntry;
use crate::pool::Pool;

/// About what a dropped pool gives back (its entry, its parts, its map slot).
pub(crate) const POOL_BYTES: usize = 256;

/// A flow that may be dropped once `due_us` has come.
pub(crate) struct Candidate {
    due_us: u64,
    entry: Weak<FlowEntry>,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.due_us == other.due_us
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    /// The earliest due first out of a max-heap.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.due_us.cmp(&self.due_us)
    }
}

/// A shard's candidates for retirement, the earliest due first.
#[derive(Default)]
pub(crate) struct Retiring {
    heap: Mutex<BinaryHeap<Candidate>>,
}

impl Retiring {
    /// Adds `entry`, due at `due_us`.
    pub(crate) fn push(&self, entry: &Arc<FlowEntry>, due_us: u64) {
        self.heap.lock().push(Candidate {
            due_us,
            entry: Arc::downgrade(entry),
        });
    }

    /// The earliest candidate due at `now` that still exists, taken off the queue.
    pub(crate) fn pop_due(&self, now: u64) -> Option<Option<Arc<FlowEntry>>> {
        let mut heap = self.heap.lock();
        match heap.peek() {
            Some(c) if c.due_us <= now => heap.pop().map(|c| c.entry.upgrade()),
            _ => None,
        }
    }

    /// Gives back the room of a heap that holds far less than it once did.
    pub(crate) fn shrink_if(&self, sparse: impl Fn(usize, usize) -> bool) {
        let mut heap = self.heap.lock();
        if sparse(heap.len(), heap.capacity()) {
            heap.shrink_to_fit();
        }
    }
}

/// What a look at a candidate found.
pub(crate) enum Outcome {
    /// Nothing holds it: drop it from the map.
    Retire,
    /// Still aging: to be looked at again at this time.
    Later(u64),
    /// Held, or holding a port: whoever holds it, or the release of its last port,
    /// queues it again.
    Keep,
}

/// The rule, for a pool looked at under its shard's write lock (`in_map`: the map still
/// has this very entry; `handles`: the flow handles alive, which cannot grow meanwhile).
pub(crate) fn outcome(pool: &mut Pool, in_map: bool, handles: u32, now: u64) -> Outcome {
    if !in_map || handles > 0 || pool.in_use_count() > 0 {
        pool.queued = false;
        return Outcome::Keep;
    }
    match pool.last_aging_deadline().filter(|&d| d > now) {
        // Still aging (a port came back and went again since it was queued).
        Some(deadline) => Outcome::Later(deadline),
        None => Outcome::Retire,
    }
}
