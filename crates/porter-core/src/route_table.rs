//! The routes one environment holds (the main thread's, or one worker thread's, for the
//! binding), by [`RouteId`], with what was handed out through them: the ledger of leases
//! not given back, the connects in flight, and the connected descriptors not yet adopted
//! by their owner. [`RouteTable::teardown`] gives all of it back when the environment
//! goes, so that no port is lost and no descriptor leaks.
//!
//! Opening a route takes a free slot off a list, closing one puts it back: O(1) whatever
//! the number of routes (it replaced a process-wide slab searched for a free slot under a
//! write lock: 582 µs per new destination at 200,000 destinations). A closed route keeps
//! its slot (and so its pools) until its last lease is back and no connect of it is in
//! flight; a connect that finished on the reactor counts as in flight until its
//! descriptor is adopted. Not synchronised: one table per thread.

use std::os::fd::{IntoRawFd, RawFd};

use crate::connect::{Attempt, Connected, Progress};
use crate::error::{Error, Result};
use crate::held_route::HeldRoute;
use crate::in_flight::InFlight;
use crate::pool::Released;
use crate::route::{LeaseId, Route};
use crate::route_id::{RouteId, GENERATION_LIMIT, INDEX_LIMIT};
use crate::sockopts::SocketOptions;

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    held: Option<HeldRoute>,
}

/// One environment's routes, and what they handed out.
#[derive(Debug, Default)]
pub struct RouteTable {
    slots: Vec<Slot>,
    free: Vec<u32>,
    in_flight: InFlight,
}

/// A connection handed over: its descriptor (now the caller's) and its lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandedOver {
    /// The connected socket's descriptor.
    pub fd: RawFd,
    /// Its lease, to give to [`RouteTable::adopt`] and later [`RouteTable::release`].
    pub lease: LeaseId,
}

impl RouteTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes `route` in; its id. [`Error::TooManyRoutes`] past 2^24 routes open.
    pub fn open(&mut self, route: Route) -> Result<RouteId> {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                let index = u32::try_from(self.slots.len()).unwrap_or(INDEX_LIMIT);
                if index >= INDEX_LIMIT {
                    return Err(Error::TooManyRoutes);
                }
                self.slots.push(Slot::default());
                index
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.held = Some(HeldRoute::new(route));
        Ok(RouteId {
            index,
            generation: slot.generation,
        })
    }

    fn held(&mut self, id: RouteId) -> Result<&mut HeldRoute> {
        self.slots
            .get_mut(id.index as usize)
            .filter(|s| s.generation == id.generation)
            .and_then(|s| s.held.as_mut())
            .ok_or(Error::UnknownRoute { id: id.to_bits() })
    }

    /// The route of `id`, open for new work: [`Error::RouteClosed`] once closed.
    fn open_route(&mut self, id: RouteId) -> Result<&mut HeldRoute> {
        let held = self.held(id)?;
        if held.is_closed() {
            return Err(Error::RouteClosed);
        }
        Ok(held)
    }

    /// The route of `id`. [`Error::UnknownRoute`] if the id names none (any more).
    pub fn route(&mut self, id: RouteId) -> Result<&Route> {
        Ok(&self.held(id)?.route)
    }

    /// Frees the slot of `id` if its route is closed and nothing of it is out.
    fn settle(&mut self, id: RouteId) {
        let Some(slot) = self.slots.get_mut(id.index as usize) else {
            return;
        };
        if slot.generation == id.generation && slot.held.as_ref().is_some_and(HeldRoute::settled) {
            slot.held = None;
            slot.generation = (slot.generation + 1) % GENERATION_LIMIT;
            self.free.push(id.index);
        }
    }

    /// Takes a port from the route (see [`Route::allocate`]) and notes the lease.
    pub fn allocate(&mut self, id: RouteId) -> Result<LeaseId> {
        let held = self.open_route(id)?;
        let lease = held.route.allocate()?;
        held.lent(lease);
        Ok(lease)
    }

    /// Gives a lease's port back (see [`Route::release`]): whether it was in use.
    pub fn release(&mut self, id: RouteId, lease: LeaseId, aging: bool) -> Result<bool> {
        let held = self.held(id)?;
        let released = held.route.release(lease, aging)?;
        held.returned(lease);
        self.settle(id);
        Ok(released != Released::NotInUse)
    }

    /// Whether the port of `lease` is aging now.
    pub fn is_aging(&mut self, id: RouteId, lease: LeaseId) -> Result<bool> {
        self.held(id)?.route.is_aging(lease)
    }

    /// Closes the route: later allocations and connects fail with
    /// [`Error::RouteClosed`]; its leases still release, and its slot is freed once they
    /// have and no connect of it is in flight. An id that names nothing does nothing.
    pub fn close(&mut self, id: RouteId) {
        if let Ok(held) = self.held(id) {
            held.close();
            self.settle(id);
        }
    }

    /// Starts a connect through the route (see [`Route::start_with`]) and looks at once
    /// whether it is over ([`Attempt::poll_now`]). The outer error is the table's (an
    /// unknown or closed route); the inner result is the connect's. A connect still in
    /// flight counts as pending on the route until [`RouteTable::connect_failed`] or
    /// [`RouteTable::hand_over`] and [`RouteTable::adopt`].
    pub fn start(&mut self, id: RouteId, options: Option<&SocketOptions>) -> Result<Result<Progress>> {
        let held = self.open_route(id)?;
        let progress = held.route.start_with(options).map(Attempt::poll_now);
        if matches!(progress, Ok(Progress::Pending(_))) {
            held.connect_pending();
        }
        Ok(progress)
    }

    /// A connect of `id` that was in flight failed: it no longer keeps the route.
    pub fn connect_failed(&mut self, id: RouteId) {
        if let Ok(held) = self.held(id) {
            held.connect_over();
            self.settle(id);
        }
    }

    /// Hands a connection over to its owner: the caller gets the descriptor, and the
    /// table notes it as waiting for [`RouteTable::adopt`] (`pending`: the connect was in
    /// flight on the reactor and still counts on its route until then).
    pub fn hand_over(&mut self, connected: Connected, pending: bool) -> HandedOver {
        let Connected {
            socket,
            lease,
            flow_index,
            ..
        } = connected;
        let flow = lease.flow().clone();
        let port = lease.into_port();
        let fd = socket.into_raw_fd();
        self.in_flight.insert(fd, flow, port, pending);
        HandedOver {
            fd,
            lease: LeaseId {
                flow: flow_index as u32,
                port,
            },
        }
    }

    /// The owner adopted descriptor `fd` (a socket has it, or it was closed) and took its
    /// lease: from here on the lease is in the route's ledger. False if `fd` was not
    /// waiting.
    pub fn adopt(&mut self, id: RouteId, lease: LeaseId, fd: RawFd) -> Result<bool> {
        let Some(pending) = self.in_flight.adopt(fd) else {
            return Ok(false);
        };
        let held = self.held(id)?;
        held.lent(lease);
        if pending {
            held.connect_over();
        }
        Ok(true)
    }

    /// The environment is going: closes every descriptor handed over and not adopted
    /// that is still the connection handed over, and gives every port back into aging
    /// (those of the descriptors, and every lease of every ledger). The table is empty
    /// afterwards.
    pub fn teardown(&mut self) {
        self.in_flight.teardown();
        for held in self.slots.drain(..).filter_map(|s| s.held) {
            let mut held = held;
            held.release_all();
        }
        self.free.clear();
    }
}
