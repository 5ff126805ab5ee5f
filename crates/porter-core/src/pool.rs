//! One destination's pool: the ports of the range that are not free for that flow.
//!
//! A pool stores only what is taken, so it grows with the ports in use, not with the
//! range: the ports in use (a [`PortSet`]) and the ports aging (an [`Aging`] queue, boxed
//! and absent while nothing ages). Every other port of the range is free. A cursor walks
//! the range circularly, so a released port lies behind it and is handed out again only
//! after the rest of the range has had its turn: least-recently-released first.

use crate::aging::{Aging, AgingPort};
use crate::portset::PortSet;
use crate::range::PortRange;

/// The taken ports of one flow. Not synchronised: the registry wraps it in a lock.
#[derive(Debug, Default)]
pub struct Pool {
    in_use: PortSet,
    aging: Option<Box<Aging>>,
    cursor: u16,
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
    /// The port is already in use for this flow: nothing changed.
    AlreadyInUse,
}

impl Pool {
    /// An empty pool (no heap memory).
    pub fn new() -> Self {
        Self::default()
    }

    /// Frees every aging port whose deadline is at or before `now_us`.
    pub fn expire(&mut self, range: PortRange, now_us: u64) {
        if let Some(aging) = &mut self.aging {
            aging.expire(range, now_us, |_| {});
            if aging.is_empty() {
                self.aging = None;
            }
        }
    }

    /// Takes the next free port after the cursor, expiring aging ports first.
    /// `None` when every port of the range is in use or aging.
    pub fn allocate(&mut self, range: PortRange, now_us: u64) -> Option<u16> {
        self.expire(range, now_us);
        let start = if range.contains(self.cursor) {
            self.cursor
        } else {
            range.first()
        };
        let port = self.first_free_from(range, start).or_else(|| {
            if start > range.first() {
                self.first_free_from(range, range.first())
            } else {
                None
            }
        })?;
        self.in_use.insert(range, port);
        self.cursor = if port == range.last() { range.first() } else { port + 1 };
        Some(port)
    }

    /// The first port at or after `from`, up to the end of the range, neither in use nor aging.
    fn first_free_from(&self, range: PortRange, from: u16) -> Option<u16> {
        let mut candidate = from;
        loop {
            let a = self.in_use.first_absent_from(range, candidate)?;
            let b = match &self.aging {
                Some(aging) => aging.first_absent_from(range, a)?,
                None => a,
            };
            if a == b {
                return Some(a);
            }
            candidate = b;
        }
    }

    /// Gives `port` back: into aging until `aging_deadline_us`, or at once when `None`.
    pub fn release(&mut self, range: PortRange, port: u16, aging_deadline_us: Option<u64>) -> Released {
        if !self.in_use.remove(range, port) {
            return Released::NotInUse;
        }
        match aging_deadline_us {
            Some(deadline) => {
                self.aging.get_or_insert_with(Box::default).push(range, port, deadline);
                Released::Aging
            }
            None => Released::Immediate,
        }
    }

    /// Records `port` (which the kernel chose) as in use, whatever its state was.
    pub fn mark_in_use(&mut self, range: PortRange, port: u16) -> Marked {
        if self.in_use.contains(range, port) {
            return Marked::AlreadyInUse;
        }
        let was_aging = match &mut self.aging {
            Some(aging) => {
                let removed = aging.remove(range, port);
                if aging.is_empty() {
                    self.aging = None;
                }
                removed
            }
            None => false,
        };
        self.in_use.insert(range, port);
        if was_aging {
            Marked::WasAging
        } else {
            Marked::Free
        }
    }

    /// Whether `port` is in use.
    pub fn is_in_use(&self, range: PortRange, port: u16) -> bool {
        self.in_use.contains(range, port)
    }

    /// Whether `port` is aging.
    pub fn is_aging(&self, range: PortRange, port: u16) -> bool {
        self.aging.as_ref().is_some_and(|a| a.contains(range, port))
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
        self.aging.as_ref().map(|a| a.iter().collect()).unwrap_or_default()
    }

    /// Number of aging ports.
    pub fn aging_count(&self) -> usize {
        self.aging.as_ref().map_or(0, |a| a.len())
    }

    /// Ports of the range that are neither in use nor aging.
    pub fn free_count(&self, range: PortRange) -> u32 {
        let aging = self.aging.as_ref().map_or(0, |a| a.count_in(range));
        range.len() - self.in_use.count_in(range) - aging
    }

    /// Heap bytes held by the pool (its own size not included).
    pub fn heap_bytes(&self) -> usize {
        self.in_use.heap_bytes() + self.aging.as_ref().map_or(0, |a| a.heap_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_in_order_and_skips_taken() {
        let r = PortRange::new(100, 104).unwrap();
        let mut p = Pool::new();
        assert_eq!(p.allocate(r, 0), Some(100));
        assert_eq!(p.allocate(r, 0), Some(101));
        assert_eq!(p.release(r, 100, None), Released::Immediate);
        assert_eq!(p.allocate(r, 0), Some(102));
        assert_eq!(p.allocate(r, 0), Some(103));
        assert_eq!(p.allocate(r, 0), Some(104));
        // Wraps round to the one free port, 100.
        assert_eq!(p.allocate(r, 0), Some(100));
        assert_eq!(p.allocate(r, 0), None);
        assert_eq!(p.free_count(r), 0);
    }

    #[test]
    fn least_recently_released_first() {
        let r = PortRange::new(1, 10).unwrap();
        let mut p = Pool::new();
        let a = p.allocate(r, 0).unwrap();
        assert_eq!(p.release(r, a, None), Released::Immediate);
        // The port just released is the last to come back.
        let mut seen = vec![];
        for _ in 0..9 {
            let x = p.allocate(r, 0).unwrap();
            seen.push(x);
            p.release(r, x, None);
        }
        assert!(!seen.contains(&a));
        assert_eq!(p.allocate(r, 0), Some(a));
    }

    #[test]
    fn aging_comes_back_exactly_at_deadline() {
        let r = PortRange::new(7, 7).unwrap();
        let mut p = Pool::new();
        assert_eq!(p.allocate(r, 0), Some(7));
        assert_eq!(p.release(r, 7, Some(1_000)), Released::Aging);
        assert_eq!(p.release(r, 7, Some(1_000)), Released::NotInUse);
        assert_eq!(p.allocate(r, 999), None);
        assert!(p.is_aging(r, 7));
        assert_eq!(p.allocate(r, 1_000), Some(7));
        assert_eq!(p.aging_count(), 0);
    }

    #[test]
    fn kernel_ports_outside_the_range_are_tracked() {
        let r = PortRange::new(2000, 2001).unwrap();
        let mut p = Pool::new();
        assert_eq!(p.mark_in_use(r, 40000), Marked::Free);
        assert_eq!(p.mark_in_use(r, 40000), Marked::AlreadyInUse);
        assert_eq!(p.in_use(r), vec![40000]);
        assert_eq!(p.free_count(r), 2);
        assert_eq!(p.release(r, 40000, Some(5)), Released::Aging);
        assert_eq!(p.mark_in_use(r, 40000), Marked::WasAging);
        assert_eq!(p.aging_count(), 0);
    }
}
