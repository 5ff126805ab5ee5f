//! The aging wheel of one pool: ports resting after release, each with its own deadline.
//!
//! Every port ages for the same period, so release order is deadline order and a FIFO
//! queue is already sorted: O(1) push at release, O(1) pop at expiry. Each entry packs the
//! deadline (microseconds, 48 bits: about 8.9 years of uptime) and the port into one `u64`.
//! A sparse [`PortSet`] beside the queue answers "is this port aging?" in O(log n).
//! The whole structure lives behind an `Option<Box<_>>` in the pool, so a pool with
//! nothing aging pays 8 bytes for it.

use std::collections::VecDeque;

use crate::portset::PortSet;
use crate::range::PortRange;

const PORT_BITS: u32 = 16;
const DEADLINE_MAX: u64 = (1 << (64 - PORT_BITS)) - 1;

/// Ports aging in one pool.
#[derive(Debug, Default)]
pub(crate) struct Aging {
    queue: VecDeque<u64>,
    ports: PortSet,
}

/// One aging port, as reported by a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgingPort {
    /// The local port.
    pub port: u16,
    /// When it becomes free, in the registry clock's microseconds.
    pub deadline_us: u64,
}

impl Aging {
    /// Starts aging `port` until `deadline_us`. Deadlines must not decrease between calls.
    pub(crate) fn push(&mut self, range: PortRange, port: u16, deadline_us: u64) {
        let deadline = deadline_us.min(DEADLINE_MAX);
        debug_assert!(self.queue.back().is_none_or(|&e| e >> PORT_BITS <= deadline));
        self.queue.push_back(deadline << PORT_BITS | u64::from(port));
        self.ports.insert(range, port);
    }

    /// Pops every port whose deadline is at or before `now_us`, calling `free` for each.
    pub(crate) fn expire(&mut self, range: PortRange, now_us: u64, mut free: impl FnMut(u16)) {
        let due = self.queue.partition_point(|&e| e >> PORT_BITS <= now_us);
        if due == 0 {
            return;
        }
        if due == self.queue.len() {
            // Everything is due: no need to take the ports out of the set one by one.
            self.queue.drain(..).for_each(|e| free(e as u16));
            self.ports = PortSet::default();
        } else {
            // One pass over the set, not one shift of a sorted list per port.
            let mut ports: Vec<u16> = self.queue.drain(..due).map(|e| e as u16).collect();
            ports.sort_unstable();
            self.ports.remove_sorted(range, &ports);
            ports.into_iter().for_each(&mut free);
        }
        if self.queue.capacity() > 16 && self.queue.len() * 4 <= self.queue.capacity() {
            self.queue.shrink_to(self.queue.len() * 2);
        }
    }

    /// Whether `port` is aging.
    pub(crate) fn contains(&self, range: PortRange, port: u16) -> bool {
        self.ports.contains(range, port)
    }

    /// Takes `port` out of aging before its deadline (the kernel proved it usable).
    pub(crate) fn remove(&mut self, range: PortRange, port: u16) -> bool {
        if !self.ports.remove(range, port) {
            return false;
        }
        if let Some(i) = self.queue.iter().position(|&e| e as u16 == port) {
            self.queue.remove(i);
        }
        true
    }

    /// The first port at or after `from` (up to the range's end) that is not aging.
    pub(crate) fn first_absent_from(&self, range: PortRange, from: u16) -> Option<u16> {
        self.ports.first_absent_from(range, from)
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// The latest deadline (of the last port pushed), if any port ages.
    pub(crate) fn last_deadline(&self) -> Option<u64> {
        self.queue.back().map(|&e| e >> PORT_BITS)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Aging ports in deadline order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = AgingPort> + '_ {
        self.queue.iter().map(|&e| AgingPort {
            port: e as u16,
            deadline_us: e >> PORT_BITS,
        })
    }

    /// Number of aging ports in the intervals `within` (sorted, disjoint, inside `range`).
    pub(crate) fn count_in(&self, range: PortRange, within: &[(u16, u16)]) -> u32 {
        self.ports.count_in(range, within)
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.queue.capacity() * 8 + self.ports.heap_bytes()
    }
}
