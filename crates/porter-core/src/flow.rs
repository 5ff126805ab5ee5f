//! Flows: one pool of ports per (local address, remote address, remote port), and the
//! handles that reach it.
//!
//! A [`Flow`] is a cheap handle on one flow's pool; holding one keeps the pool (and its
//! registry) alive, so callers that keep one per destination (a [`crate::Route`] does)
//! skip the registry's map on the allocation path: one uncontended lock per allocate or
//! release. A [`crate::Lease`] (`lease.rs`) is one port taken from a flow, given back
//! when dropped unless handed over.
//!
//! A pool nobody holds and that holds nothing (no port in use, none aging) is dropped by
//! its registry (see `retire.rs`): a flow that lets go of its last port, or the last
//! handle that lets go of an idle flow, puts it on its shard's list of candidates.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::blocked::BLOCK_PERIOD;
use crate::error::Error;
use crate::flow_entry::FlowEntry;
use crate::flow_key::FlowKey;
use crate::pool::{Marked, Pool, Released};
use crate::registry::Registry;
use crate::shard::FlowRef;

/// Candidates checked for retirement at each creation of a flow in their shard.
const RETIRE_PER_CREATION: usize = 2;

/// A handle on one flow's pool. Cheap to clone; keeps the pool and the registry alive.
#[derive(Debug)]
pub struct Flow {
    pub(crate) registry: Arc<Registry>,
    pub(crate) entry: Arc<FlowEntry>,
}

impl Clone for Flow {
    fn clone(&self) -> Self {
        // This handle is alive: the count is not zero, and no retirement can be under way.
        self.entry.handles.fetch_add(1, Ordering::Relaxed);
        Self {
            registry: self.registry.clone(),
            entry: self.entry.clone(),
        }
    }
}

impl Flow {
    /// The flow's key.
    pub fn key(&self) -> &FlowKey {
        &self.entry.key
    }

    /// The registry the flow belongs to.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Takes a port porter binds itself, or `None` when every such port is in use or
    /// aging (or blocked on the flow's local address). The caller owes exactly one
    /// [`Flow::release`] for it; see [`Flow::allocate`] for a guard that gives it back by
    /// itself.
    #[inline]
    pub fn allocate_port(&self) -> Option<u16> {
        let reg = &self.registry;
        let capacity = reg.capacity();
        let port = if reg.blocked.any() {
            let now = reg.now_us();
            let skip = reg.blocked.ports(self.entry.key.local, now);
            self.entry.pool.lock().allocate_skipping(capacity, now, &skip)
        } else {
            let mut pool = self.entry.pool.lock();
            // The clock only matters when something ages: skip reading it otherwise.
            let now = if pool.aging_count() > 0 { reg.now_us() } else { 0 };
            pool.allocate(capacity, now)
        };
        if port.is_some() {
            reg.stats.allocations.inc();
        }
        port
    }

    /// Counts an exhaustion of this flow and builds its error (`fallback`: why the kernel
    /// fallback failed, if it was tried).
    pub(crate) fn exhausted(&self, fallback: Option<std::io::Error>) -> Error {
        let reg = &self.registry;
        reg.stats.exhausted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Error::Exhausted {
            local: self.entry.key.local,
            remote: self.entry.key.remote_addr(),
            range: (reg.config().range.first(), reg.config().range.last()),
            kernel_window: reg
                .capacity()
                .kernel_window()
                .map(|w| (w.ports.first(), w.ports.last())),
            fallback,
        }
    }

    /// Gives `port` back, into aging or at once. [`Released::NotInUse`] (and no change)
    /// if it was not in use: a port is never released twice.
    #[inline]
    pub fn release(&self, port: u16, aging: bool) -> Released {
        let reg = &self.registry;
        let range = reg.config().range;
        let (released, idle_at) = {
            let mut pool = self.entry.pool.lock();
            // Read the clock under the lock, so that deadlines enter the pool's FIFO in
            // order however the threads interleave.
            let now = aging.then(|| reg.now_us());
            let released = pool.release(range, port, now.map(|t| t.saturating_add(reg.aging_us())));
            (released, Self::now_idle(&mut pool, now))
        };
        match released {
            Released::Aging => reg.stats.releases_aging.inc(),
            Released::Immediate => reg.stats.releases_immediate.inc(),
            Released::NotInUse => {}
        }
        if let Some(due) = idle_at {
            reg.retire_later(&self.entry, due);
        }
        released
    }

    /// When the pool holds no port in use (and is not queued yet): marks it queued and
    /// returns when it will hold nothing at all (its last aging deadline, or now).
    fn now_idle(pool: &mut Pool, now: Option<u64>) -> Option<u64> {
        if pool.queued || pool.in_use_count() > 0 {
            return None;
        }
        pool.queued = true;
        Some(pool.last_aging_deadline().or(now).unwrap_or(0))
    }

    /// After a collision with a socket porter does not know of (another process's, on the
    /// same port towards the same destination): the next port is looked for at a random
    /// place, not next to this one, where the other process is likely busy too.
    pub fn scatter(&self) {
        if let Some(port) = self.registry.capacity().nth_explicit(self.registry.random()) {
            self.entry.pool.lock().jump_to(port);
        }
    }

    /// `bind()` refused `port` on this flow's local address (`EADDRINUSE`: a listener, or
    /// a socket bound without `SO_REUSEADDR`): every flow from that address passes over it
    /// for [`BLOCK_PERIOD`].
    pub fn block_port(&self, port: u16) {
        let reg = &self.registry;
        let until = reg.now_us().saturating_add(BLOCK_PERIOD.as_micros() as u64);
        reg.blocked.block(self.entry.key.local, port, until);
    }

    /// Whether the kernel found its window full for this flow lately (and no port of the
    /// flow came back since): then a connect goes on without asking it again.
    pub fn kernel_window_full(&self) -> bool {
        let pool = self.entry.pool.lock();
        pool.kernel_window_full(self.registry.now_us())
    }

    /// Remembers, for up to a second or until a port of the flow comes back, that the
    /// kernel found no port in its window for this flow.
    pub fn set_kernel_window_full(&self) {
        let until = self.registry.now_us().saturating_add(1_000_000);
        self.entry.pool.lock().set_kernel_window_full(until);
    }

    /// Records a port the kernel chose as in use for this flow (one more holder if it was
    /// in use already). The caller owes one [`Flow::release`] for it.
    pub fn mark_in_use(&self, port: u16) -> Marked {
        let marked = self.entry.pool.lock().mark_in_use(self.registry.config().range, port);
        self.registry.stats.allocations.inc();
        marked
    }

    /// Whether `port` is in use for this flow.
    pub fn is_in_use(&self, port: u16) -> bool {
        self.entry.pool.lock().is_in_use(self.registry.config().range, port)
    }

    /// Whether `port` is aging for this flow (expiring first).
    pub fn is_aging(&self, port: u16) -> bool {
        let range = self.registry.config().range;
        let mut pool = self.entry.pool.lock();
        pool.expire(range, self.registry.now_us());
        pool.is_aging(range, port)
    }

    /// The earliest time a port porter binds itself may come back to this flow without a
    /// release: its first aging deadline (`u64::MAX` when nothing ages).
    pub fn next_return_us(&self) -> u64 {
        self.entry.pool.lock().first_aging_deadline().unwrap_or(u64::MAX)
    }

    /// Whether `other` is a handle on the same pool.
    pub fn same_as(&self, other: &Flow) -> bool {
        Arc::ptr_eq(&self.entry, &other.entry)
    }
}

impl Drop for Flow {
    fn drop(&mut self) {
        // The last handle going: an idle pool may be dropped now.
        if self.entry.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            let idle_at = {
                let mut pool = self.entry.pool.lock();
                Self::now_idle(&mut pool, None)
            };
            if let Some(due) = idle_at {
                self.registry.retire_later(&self.entry, due);
            }
        }
    }
}

impl Registry {
    /// The flow for `key`, creating its (empty) pool on first use. The key is taken in
    /// canonical form (IPv4-mapped IPv6 addresses as IPv4, see [`FlowKey`]).
    pub fn flow(self: &Arc<Self>, key: FlowKey) -> Flow {
        let key = FlowKey::scoped(Some(key.local_addr(0)), key.remote_addr());
        let shard = self.shard(&key);
        // The handle is counted under the shard's lock: a retirement (which takes it for
        // writing) sees it.
        let found = shard.flows.read().get(&key).map(|f| {
            f.0.handles.fetch_add(1, Ordering::AcqRel);
            f.0.clone()
        });
        let entry = match found {
            Some(entry) => entry,
            None => {
                let created = {
                    let mut map = shard.flows.write();
                    match map.get(&key) {
                        Some(f) => {
                            f.0.handles.fetch_add(1, Ordering::AcqRel);
                            f.0.clone()
                        }
                        None => {
                            // Each pool starts its walk at a random port: processes that
                            // share the host then do not try the same ports in the same order.
                            let start = self.capacity().nth_explicit(self.random()).unwrap_or(0);
                            let entry = Arc::new(FlowEntry {
                                key,
                                pool: Mutex::new(Pool::starting_at(start)),
                                handles: AtomicU32::new(1),
                            });
                            map.insert(FlowRef(entry.clone()));
                            entry
                        }
                    }
                };
                self.retire_due(shard, self.now_us(), RETIRE_PER_CREATION);
                created
            }
        };
        Flow {
            registry: self.clone(),
            entry,
        }
    }
}
