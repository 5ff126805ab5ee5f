//! A route as a [`crate::RouteTable`] holds it: the route, the ledger of the leases handed
//! out through it and not given back, the connects of it still in flight, and whether it
//! was closed. A closed route keeps its pools until its ledger is empty and no connect of
//! it is in flight.

use rustc_hash::FxHashSet;

use crate::route::{LeaseId, Route};

/// A route, and what was handed out through it.
#[derive(Debug)]
pub(crate) struct HeldRoute {
    pub(crate) route: Route,
    /// Leases handed out and not released, by [`LeaseId::to_bits`].
    ledger: FxHashSet<u64>,
    /// Connects in flight (their outcome not yet handed over, or handed over and not yet
    /// adopted).
    pending: u32,
    closed: bool,
}

impl HeldRoute {
    pub(crate) fn new(route: Route) -> Self {
        Self {
            route,
            ledger: FxHashSet::default(),
            pending: 0,
            closed: false,
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    pub(crate) fn close(&mut self) {
        self.closed = true;
    }

    /// Whether its slot can be given back: closed, and nothing of it out.
    pub(crate) fn settled(&self) -> bool {
        self.closed && self.ledger.is_empty() && self.pending == 0
    }

    /// Notes a lease handed out.
    pub(crate) fn lent(&mut self, id: LeaseId) {
        self.ledger.insert(id.to_bits());
    }

    /// Notes a lease given back.
    pub(crate) fn returned(&mut self, id: LeaseId) {
        self.ledger.remove(&id.to_bits());
    }

    /// A connect of the route went in flight.
    pub(crate) fn connect_pending(&mut self) {
        self.pending += 1;
    }

    /// A connect of the route in flight is over.
    pub(crate) fn connect_over(&mut self) {
        self.pending = self.pending.saturating_sub(1);
    }

    /// Gives every lease of the ledger back into aging (the environment is going, and
    /// whatever held them with it).
    pub(crate) fn release_all(&mut self) {
        for bits in self.ledger.drain() {
            if let Some(id) = LeaseId::from_bits(bits) {
                let _ = self.route.release(id, true);
            }
        }
    }
}
