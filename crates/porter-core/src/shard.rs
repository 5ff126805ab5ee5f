//! One shard of a registry's map: its flows behind a read-write lock, and its candidates
//! for retirement (see `retire.rs`). A registry has [`SHARDS`] of them, so that threads
//! creating flows meet only when their keys fall in the same shard.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::RwLock;
use rustc_hash::FxHashSet;

use crate::flow_entry::FlowEntry;
use crate::flow_key::FlowKey;
use crate::range::PortRange;
use crate::retire::{self, Outcome, Retiring};

/// Shards per registry.
pub(crate) const SHARDS: usize = 16;

/// A flow in the map, found by its key.
#[derive(Debug)]
pub(crate) struct FlowRef(pub(crate) Arc<FlowEntry>);

impl Borrow<FlowKey> for FlowRef {
    fn borrow(&self) -> &FlowKey {
        &self.0.key
    }
}
impl Hash for FlowRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.key.hash(state)
    }
}
impl PartialEq for FlowRef {
    fn eq(&self, other: &Self) -> bool {
        self.0.key == other.0.key
    }
}
impl Eq for FlowRef {}

/// One shard: its flows, and its candidates for retirement.
#[derive(Default)]
pub(crate) struct Shard {
    pub(crate) flows: RwLock<FxHashSet<FlowRef>>,
    pub(crate) retiring: Retiring,
}

impl Shard {
    /// Gives back the room of a map or heap that holds far less than it once did.
    pub(crate) fn shrink(&self) {
        let sparse = |len: usize, capacity: usize| capacity > 1024 && len * 4 < capacity;
        {
            let map = self.flows.read();
            if !sparse(map.len(), map.capacity()) {
                return self.retiring.shrink_if(sparse);
            }
        }
        self.flows.write().shrink_to_fit();
        self.retiring.shrink_if(sparse);
    }

    /// Puts `entry` on the shard's candidates for retirement, due at `due_us`.
    pub(crate) fn retire_later(&self, entry: &Arc<FlowEntry>, due_us: u64) {
        self.retiring.push(entry, due_us);
    }

    /// Checks up to `limit` candidates that are due at `now` (their aging expired within
    /// `range` first); how many pools it dropped.
    pub(crate) fn retire_due(&self, now: u64, limit: usize, range: PortRange) -> usize {
        let mut retired = 0;
        for _ in 0..limit {
            let Some(candidate) = self.retiring.pop_due(now) else {
                break;
            };
            let Some(entry) = candidate else { continue };
            match self.try_retire(&entry, now, range) {
                Outcome::Retire => retired += 1,
                Outcome::Later(deadline) => self.retire_later(&entry, deadline),
                Outcome::Keep => {}
            }
        }
        retired
    }

    /// Drops `entry` from the map if it holds nothing and nobody else holds it (see
    /// [`retire::outcome`]).
    fn try_retire(&self, entry: &Arc<FlowEntry>, now: u64, range: PortRange) -> Outcome {
        let mut map = self.flows.write();
        let mut pool = entry.pool.lock();
        pool.expire(range, now);
        let in_map = map.get(&entry.key).is_some_and(|f| Arc::ptr_eq(&f.0, entry));
        // No handle (route, lease, connect) can be taken while the shard is locked.
        let handles = entry.handles.load(Ordering::Acquire);
        let outcome = retire::outcome(&mut pool, in_map, handles, now);
        if matches!(outcome, Outcome::Retire) {
            map.remove(&entry.key);
        }
        outcome
    }
}
