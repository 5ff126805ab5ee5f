//! One destination's pool: the ports of the range that are not free for that flow.
//!
//! A pool stores only what is taken, so it grows with the ports in use, not with the
//! range: the ports in use (a [`PortSet`]) and the ports aging (an [`Aging`] queue, boxed
//! and absent while nothing ages). Every other port of the range is free. A cursor walks
//! the ports porter binds itself (see [`Capacity`]) circularly, so a released port lies
//! behind it and is handed out again only after the rest of the range has had its turn:
//! least-recently-released first. The cursor starts where the registry says (a random
//! port, so that processes sharing a host do not walk the range in step) and jumps to a
//! random port after a collision with another process's socket.
//!
//! Ports the kernel picked (its window, or the fallback) are recorded here too. The kernel
//! may hand a port to a new socket before the lease of the old one was released (a reset
//! connection leaves no TIME_WAIT); the pool then counts that port once more, and it stays
//! in use until both leases are released.

use crate::aging::{Aging, AgingPort};
use crate::capacity::Capacity;
use crate::portset::PortSet;
use crate::range::PortRange;

/// The taken ports of one flow. Not synchronised: the registry wraps it in a lock.
#[derive(Debug, Default)]
pub struct Pool {
    in_use: PortSet,
    /// Aging ports and what only kernel-picked ports need, boxed and absent while there
    /// is none of either: an idle pool pays one pointer for them.
    more: Option<Box<More>>,
    cursor: u16,
    /// Which interval of porter's ports the cursor was last in (see
    /// [`Capacity::first_explicit_hinted`]); in room the layout leaves free.
    hint: u16,
    /// The registry's mark: the pool's flow is on its shard's candidates for retirement.
    /// Kept here, in room the layout leaves free, so that an idle pool costs no more.
    pub(crate) queued: bool,
}

/// The parts of a pool that most pools do not need most of the time.
#[derive(Debug, Default)]
struct More {
    aging: Aging,
    /// Extra holders of ports in use: one entry per additional socket the kernel put on a
    /// port this pool already counted (sorted, repeats allowed).
    shared: Vec<u16>,
    /// Until when the kernel's window is known to be full for this flow (0: not known).
    kernel_full_until_us: u64,
}

impl More {
    fn is_empty(&self) -> bool {
        self.aging.is_empty() && self.shared.is_empty() && self.kernel_full_until_us == 0
    }
}

/// What a release did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// The port is free again at once.
    Immediate,
    /// The port rests until its deadline.
    Aging,
    /// The port was not in use: nothing changed.
    NotInUse,
}

/// How [`Pool::mark_in_use`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marked {
    /// The port was free and is now in use.
    Free,
    /// The port was aging; it left aging early and is now in use.
    WasAging,
    /// The port was already in use for this flow (its previous socket is gone, or going,
    /// as the kernel handed it out again): it now counts one holder more.
    AlreadyInUse,
}

impl Pool {
    /// An empty pool (no heap memory) whose walk starts at the beginning of the range.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty pool whose walk starts at `port`.
    pub fn starting_at(port: u16) -> Self {
        Self {
            cursor: port,
            ..Self::default()
        }
    }

    /// Moves the cursor to `port`: the next allocation looks there first.
    pub fn jump_to(&mut self, port: u16) {
        self.cursor = port;
    }

    /// The aging ports, when there are any.
    fn aging_ref(&self) -> Option<&Aging> {
        self.more.as_deref().map(|m| &m.aging).filter(|a| !a.is_empty())
    }

    fn more_mut(&mut self) -> &mut More {
        self.more.get_or_insert_with(Box::default)
    }

    /// Gives the boxed parts back once they hold nothing.
    fn tidy(&mut self) {
        if self.more.as_deref().is_some_and(More::is_empty) {
            self.more = None;
        }
    }

    /// Frees every aging port whose deadline is at or before `now_us`.
    pub fn expire(&mut self, range: PortRange, now_us: u64) {
        if let Some(more) = &mut self.more {
            more.aging.expire(range, now_us, |_| {});
            self.tidy();
        }
    }

    /// Takes the next free port porter binds itself after the cursor, expiring aging ports
    /// first. `None` when every such port is in use or aging.
    pub fn allocate(&mut self, capacity: &Capacity, now_us: u64) -> Option<u16> {
        self.allocate_skipping(capacity, now_us, &[])
    }

    /// [`Pool::allocate`], also passing over the ports in `skip` (sorted).
    pub fn allocate_skipping(&mut self, capacity: &Capacity, now_us: u64, skip: &[u16]) -> Option<u16> {
        let range = capacity.range();
        self.expire(range, now_us);
        let first = capacity.first_explicit()?;
        let start = if range.contains(self.cursor) {
            self.cursor
        } else {
            first
        };
        let mut hint = self.hint;
        let port = self.first_free_from(capacity, start, skip, &mut hint).or_else(|| {
            if start > first {
                self.first_free_from(capacity, first, skip, &mut hint)
            } else {
                None
            }
        })?;
        self.hint = hint;
        self.in_use.insert(range, port);
        self.cursor = if port == range.last() { range.first() } else { port + 1 };
        Some(port)
    }

    /// The first port at or after `from`, up to the end of the range, that porter binds
    /// itself and that is neither in use, nor aging, nor in `skip`.
    fn first_free_from(&self, capacity: &Capacity, from: u16, skip: &[u16], hint: &mut u16) -> Option<u16> {
        let range = capacity.range();
        let aging = self.aging_ref();
        let mut candidate = from;
        loop {
            let a = capacity.first_explicit_hinted(candidate, hint)?;
            let b = self.in_use.first_absent_from(range, a)?;
            let c = match aging {
                Some(aging) => aging.first_absent_from(range, b)?,
                None => b,
            };
            if a == c {
                if skip.binary_search(&a).is_err() {
                    return Some(a);
                }
                if a == range.last() {
                    return None;
                }
                candidate = a + 1;
            } else {
                candidate = c;
            }
        }
    }

    /// Gives `port` back: into aging until `aging_deadline_us`, or at once when `None`.
    pub fn release(&mut self, range: PortRange, port: u16, aging_deadline_us: Option<u64>) -> Released {
        let done = if aging_deadline_us.is_some() {
            Released::Aging
        } else {
            Released::Immediate
        };
        if let Some(more) = &mut self.more {
            if let Ok(i) = more.shared.binary_search(&port) {
                // Another socket still holds the port: it stays in use.
                more.shared.remove(i);
                self.tidy();
                return done;
            }
        }
        if !self.in_use.remove(range, port) {
            return Released::NotInUse;
        }
        if let Some(more) = &mut self.more {
            // Something came back: try the kernel's window again the next time it is
            // needed (one failed connect() if it is still full).
            more.kernel_full_until_us = 0;
        }
        match aging_deadline_us {
            Some(deadline) => self.more_mut().aging.push(range, port, deadline),
            None => self.tidy(),
        }
        done
    }

    /// Records `port`, which the kernel chose, as in use, whatever its state was.
    pub fn mark_in_use(&mut self, range: PortRange, port: u16) -> Marked {
        if self.in_use.contains(range, port) {
            let shared = &mut self.more_mut().shared;
            let i = shared.partition_point(|&p| p <= port);
            shared.insert(i, port);
            return Marked::AlreadyInUse;
        }
        let was_aging = match &mut self.more {
            Some(more) => more.aging.remove(range, port),
            None => false,
        };
        self.tidy();
        self.in_use.insert(range, port);
        if was_aging {
            Marked::WasAging
        } else {
            Marked::Free
        }
    }

    /// Whether the kernel's window was found full for this flow and no port of it has
    /// come back since, until `now_us`.
    pub fn kernel_window_full(&self, now_us: u64) -> bool {
        self.more.as_ref().is_some_and(|m| m.kernel_full_until_us > now_us)
    }

    /// Remembers that the kernel found its window full for this flow, until `until_us` or
    /// the next release, whichever comes first.
    pub fn set_kernel_window_full(&mut self, until_us: u64) {
        self.more_mut().kernel_full_until_us = until_us.max(1);
    }

    /// Whether `port` is in use.
    pub fn is_in_use(&self, range: PortRange, port: u16) -> bool {
        self.in_use.contains(range, port)
    }

    /// Whether `port` is aging.
    pub fn is_aging(&self, range: PortRange, port: u16) -> bool {
        self.aging_ref().is_some_and(|a| a.contains(range, port))
    }

    /// Ports in use, ascending (the kernel's choices outside the range included).
    pub fn in_use(&self, range: PortRange) -> Vec<u16> {
        self.in_use.to_vec(range)
    }

    /// Number of ports in use.
    pub fn in_use_count(&self) -> usize {
        self.in_use.len()
    }

    /// Aging ports in deadline order.
    pub fn aging(&self) -> Vec<AgingPort> {
        self.aging_ref().map(|a| a.iter().collect()).unwrap_or_default()
    }

    /// When the first aging port comes back, if any ages.
    pub fn first_aging_deadline(&self) -> Option<u64> {
        self.aging_ref().and_then(|a| a.iter().next()).map(|a| a.deadline_us)
    }

    /// When the last aging port comes back, if any ages.
    pub fn last_aging_deadline(&self) -> Option<u64> {
        self.aging_ref().and_then(Aging::last_deadline)
    }

    /// Number of aging ports.
    pub fn aging_count(&self) -> usize {
        self.aging_ref().map_or(0, |a| a.len())
    }

    /// Whether nothing is in use, nothing ages and nothing is remembered about the kernel.
    pub fn is_idle(&self) -> bool {
        self.in_use.is_empty() && self.more.is_none()
    }

    /// Ports of the flow's capacity (porter's own and the kernel's window) that are
    /// neither in use nor aging. A port taken outside the capacity (a reserved one, held
    /// since before it was reserved, or the kernel fallback's) takes none of it.
    ///
    /// Cheap on every inspection: nothing to count for an idle pool, and a few ports are
    /// looked up in the capacity's intervals (about 130 with `servicePorts: 'avoid'`)
    /// rather than counted interval by interval.
    pub fn free_count(&self, capacity: &Capacity) -> u32 {
        let aging = self.aging_ref();
        if self.in_use.is_empty() && aging.is_none() {
            return capacity.per_destination();
        }
        let (range, counted) = (capacity.range(), capacity.counted());
        let taken = self.in_use.count_in(range, counted) + aging.map_or(0, |g| g.count_in(range, counted));
        capacity.per_destination().saturating_sub(taken)
    }

    /// Heap bytes held by the pool (its own size not included).
    pub fn heap_bytes(&self) -> usize {
        self.in_use.heap_bytes()
            + self.more.as_ref().map_or(0, |m| {
                std::mem::size_of::<More>() + m.aging.heap_bytes() - std::mem::size_of::<Aging>()
                    + m.shared.capacity() * 2
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{HostPorts, KernelFeatures};
    use crate::mode::{Mode, ServicePorts};

    /// [`Pool::free_count`] the long way: every interval of the capacity counted.
    fn free_count_slow(pool: &Pool, capacity: &Capacity) -> u32 {
        let range = capacity.range();
        let aging = pool.aging();
        let taken: u32 = capacity
            .counted()
            .iter()
            .map(|&(a, b)| {
                let aging_here = aging.iter().filter(|g| (a..=b).contains(&g.port)).count() as u32;
                pool.in_use.count_between(range, a, b) + aging_here
            })
            .sum();
        capacity.per_destination().saturating_sub(taken)
    }

    #[test]
    fn free_count_is_the_count_over_every_interval() {
        let range = PortRange::new(1024, 9999).unwrap();
        let host = HostPorts::new(
            PortRange::new(5000, 5999).unwrap(),
            vec![(2000, 2009)],
            KernelFeatures {
                bind_address_no_port: true,
                local_port_range: true,
            },
        )
        // Holes every 50 ports, as /etc/services cuts a range.
        .with_services((1030..10_000).step_by(50).map(|p| (p, p + 2)).collect());
        for services in [ServicePorts::Avoid, ServicePorts::Use] {
            for mode in [Mode::Hybrid, Mode::Pool] {
                let capacity = Capacity::new(range, mode, services, &host);
                // Sparse and dense sets of ports in use, some aging, some in the holes,
                // the reserved ones and outside the range.
                for (in_use, aging) in [(0, 0), (0, 3), (5, 0), (40, 10), (400, 30), (5000, 2000)] {
                    let mut pool = Pool::new();
                    assert_eq!(pool.free_count(&capacity), capacity.per_destination());
                    for i in 0..in_use {
                        pool.mark_in_use(range, 1024 + (i * 7 % 8976) as u16);
                    }
                    for i in 0..aging {
                        let port = 1025 + (i * 11 % 8975) as u16;
                        if pool.mark_in_use(range, port) == Marked::Free {
                            pool.release(range, port, Some(1_000));
                        }
                    }
                    pool.mark_in_use(range, 80);
                    pool.mark_in_use(range, 2003);
                    assert_eq!(
                        pool.free_count(&capacity),
                        free_count_slow(&pool, &capacity),
                        "{mode:?} {services:?}: {in_use} in use, {aging} aging"
                    );
                }
            }
        }
    }
}
