//! One flow as its registry's map holds it: the key, the pool behind its lock, and how
//! many handles ([`crate::Flow`]) hold it.

use std::sync::atomic::AtomicU32;

use parking_lot::Mutex;

use crate::flow_key::FlowKey;
use crate::pool::Pool;

/// One flow as the registry's map holds it.
#[derive(Debug)]
pub(crate) struct FlowEntry {
    pub(crate) key: FlowKey,
    pub(crate) pool: Mutex<Pool>,
    /// [`Flow`] handles alive. Counted apart from the `Arc`'s references (the registry
    /// takes some of its own for a moment): when the last two handles go at once on two
    /// threads, each reading the `Arc`'s count before its own reference goes would see
    /// the other's, and neither would put the idle pool up for retirement. The handle
    /// that takes this count to zero does. The first handle is counted under the shard's
    /// lock (see `Registry::flow` in `flow.rs`), so a pool being retired never gains one.
    pub(crate) handles: AtomicU32,
}
