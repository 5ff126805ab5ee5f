//! Routes as JavaScript holds them: a number naming a porter-core [`Route`] in its
//! environment's table, and the functions that allocate, release and connect through it.
//!
//! Each environment (the main thread, or one worker thread: one per thread in Node) has
//! its own table of routes, reached without a lock. Opening a route takes a free slot off
//! a list, closing one puts it back: O(1) whatever the number of routes. An id is the
//! slot's index and a generation, so an id whose slot was reused names nothing.
//!
//! The table also keeps the ledger of what its environment holds: every lease handed to
//! JavaScript and not given back, and every connected descriptor on its way to
//! JavaScript and not yet adopted by a socket. When the environment tears down (a worker
//! that exits or is terminated), its cleanup hook closes every such descriptor and gives
//! every such port back into aging, so none is lost, and cancels every connect of the
//! environment still waiting on the reactor (which then closes its socket and ages its
//! port). A closed route keeps its slot (and its pools) until its leases are back and no
//! connect of it is in flight.
//!
//! Plain functions with number arguments rather than methods of a class: a napi call with
//! a class instance as argument costs about three times one with numbers.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;
use porter_core::connect::{self, Attempt, CancellationToken, Connected, Progress};
use porter_core::{Flow, LeaseId, Released, Route};
use rustc_hash::{FxHashMap, FxHashSet};
use socket2::SockAddr;

use crate::cancel::CancelToken;
use crate::error::{coded, from_core, invalid_arg, NativeError, Result};
use crate::sockopts::{self, NativeSocketOptions};

/// A route and what its environment holds through it.
struct RouteState {
    route: Route,
    /// Leases handed to JavaScript and not released, by [`LeaseId::to_bits`].
    ledger: FxHashSet<u64>,
    /// Connects in flight on the reactor (their outcome not yet in JavaScript).
    pending: u32,
    closed: bool,
}

impl RouteState {
    /// Whether the slot can be given back: closed, and nothing of it out.
    fn settled(&self) -> bool {
        self.closed && self.ledger.is_empty() && self.pending == 0
    }

    /// Gives every lease of the ledger back into aging.
    fn release_all(&mut self) {
        for bits in self.ledger.drain() {
            if let Some(id) = LeaseId::from_bits(bits) {
                let _ = self.route.release(id, true);
            }
        }
    }
}

#[derive(Default)]
struct Slot {
    generation: u32,
    state: Option<RouteState>,
}

/// One environment's routes.
#[derive(Default)]
struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

/// Slot indexes below this fit beside the generation in an id (a JavaScript number).
const INDEX_LIMIT: u32 = 1 << 24;
const GENERATION_LIMIT: u32 = 1 << 28;

impl Table {
    fn open(&mut self, route: Route) -> Result<f64> {
        let state = RouteState {
            route,
            ledger: FxHashSet::default(),
            pending: 0,
            closed: false,
        };
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                let index = u32::try_from(self.slots.len()).unwrap_or(INDEX_LIMIT);
                if index >= INDEX_LIMIT {
                    return Err(coded("ERR_PORTER_INTERNAL", "more than 2^24 routes open in one thread"));
                }
                self.slots.push(Slot::default());
                index
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.state = Some(state);
        Ok(f64::from(slot.generation) * f64::from(INDEX_LIMIT) + f64::from(index))
    }

    fn slot_of(id: f64) -> Option<(usize, u32)> {
        (id.is_finite() && id >= 0.0 && id.fract() == 0.0 && id < f64::from(INDEX_LIMIT) * f64::from(GENERATION_LIMIT))
            .then(|| {
                let bits = id as u64;
                (
                    (bits % u64::from(INDEX_LIMIT)) as usize,
                    (bits / u64::from(INDEX_LIMIT)) as u32,
                )
            })
    }

    fn get(&mut self, id: f64) -> Result<&mut RouteState> {
        let found = Self::slot_of(id).and_then(|(index, generation)| {
            self.slots
                .get_mut(index)
                .filter(|s| s.generation == generation)
                .and_then(|s| s.state.as_mut())
        });
        found.ok_or_else(|| invalid_arg(format!("unknown route {id}")))
    }

    /// The route of `id`, open for new work.
    fn open_route(&mut self, id: f64) -> Result<&mut RouteState> {
        let state = self.get(id)?;
        if state.closed {
            return Err(coded("ERR_PORTER_CLOSED", "the route was closed"));
        }
        Ok(state)
    }

    /// Frees the slot of `id` if its route is closed and nothing of it is out.
    fn settle(&mut self, id: f64) {
        if let Some((index, generation)) = Self::slot_of(id) {
            if let Some(slot) = self.slots.get_mut(index) {
                if slot.generation == generation && slot.state.as_ref().is_some_and(RouteState::settled) {
                    slot.state = None;
                    slot.generation = (slot.generation + 1) % GENERATION_LIMIT;
                    self.free.push(index as u32);
                }
            }
        }
    }
}

thread_local! {
    /// This thread's environment's routes.
    static ROUTES: RefCell<Table> = RefCell::default();
    /// Connected descriptors handed to JavaScript and not yet adopted.
    static IN_FLIGHT: RefCell<FxHashMap<i32, InFlight>> = RefCell::new(FxHashMap::default());
    static CLEANUP_HOOKED: Cell<bool> = const { Cell::new(false) };
    /// Cancelled when this environment tears down: every connect of it waiting on the
    /// reactor waits on this token (or on a child of it, see [`env_child_token`]).
    static ENV_GONE: RefCell<CancellationToken> = RefCell::default();
}

/// A token cancelled by the caller or when this thread's environment tears down,
/// whichever comes first (the `CancelToken` JavaScript gives a connect with a signal).
pub(crate) fn env_child_token() -> CancellationToken {
    ENV_GONE.with_borrow(CancellationToken::child_token)
}

/// A connected descriptor handed to JavaScript and not yet adopted.
struct InFlight {
    flow: Flow,
    port: u16,
    /// Whether it still counts as pending on its route: a connect that finished on the
    /// reactor does until it is adopted, so that a route closed meanwhile keeps its slot
    /// (and its ledger) for the adoption. One that finished at once is adopted before
    /// JavaScript can close anything.
    pending: bool,
}

fn with_routes<T>(f: impl FnOnce(&mut Table) -> Result<T>) -> Result<T> {
    ROUTES.with_borrow_mut(f)
}

/// Registers, once per environment, the hook that gives back what the environment holds
/// when it tears down.
fn hook_cleanup(env: &Env) {
    if CLEANUP_HOOKED.get() {
        return;
    }
    if env.add_env_cleanup_hook((), |()| teardown()).is_ok() {
        CLEANUP_HOOKED.set(true);
    }
}

/// The environment is going: cancel its connects still in flight on the reactor (each
/// then closes its socket and gives its port back into aging, as any cancelled connect
/// does; their promises are gone with the environment), close every descriptor not
/// adopted, give every port back.
fn teardown() {
    ENV_GONE.with_borrow_mut(std::mem::take).cancel();
    let in_flight: Vec<(i32, InFlight)> = IN_FLIGHT.with_borrow_mut(|m| m.drain().collect());
    for (fd, InFlight { flow, port, .. }) in in_flight {
        if still_ours(fd, port, flow.key().remote_addr()) {
            // SAFETY: the descriptor is still the connection porter handed over, and no
            // socket took it (Node's teardown closed those before this hook ran), so
            // this table is its only owner.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        flow.release(port, true);
    }
    let table = ROUTES.with_borrow_mut(std::mem::take);
    for mut state in table.slots.into_iter().filter_map(|s| s.state) {
        state.release_all();
    }
    CLEANUP_HOOKED.set(false);
}

/// Whether descriptor `fd` is still the connection handed to JavaScript: a socket on local
/// port `port` connected to `remote`. JavaScript adopts a descriptor only once its socket
/// has it (or it was closed), so a descriptor still waiting may already belong to a socket
/// that Node's teardown has closed since, and its number may have been reused by another
/// thread: that one is not ours to close. (A connection the peer reset in that moment
/// reads as not ours and stays open: a descriptor, never a port.)
fn still_ours(fd: i32, port: u16, remote: SocketAddr) -> bool {
    type NameCall = unsafe extern "C" fn(libc::c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> libc::c_int;
    let name = |call: NameCall| {
        // SAFETY: the kernel writes at most `len` bytes into the zeroed storage; the
        // descriptor is only named (a closed one fails with EBADF).
        let named = unsafe {
            SockAddr::try_init(|storage, len| match call(fd, storage.cast(), len) {
                0 => Ok(()),
                _ => Err(io::Error::last_os_error()),
            })
        };
        named.ok().and_then(|((), addr)| addr.as_socket())
    };
    let canonical = |a: SocketAddr| (a.ip().to_canonical(), a.port());
    name(libc::getsockname).is_some_and(|local| local.port() == port)
        && name(libc::getpeername).is_some_and(|peer| canonical(peer) == canonical(remote))
}

/// Opens a route in this environment's table; its id.
pub(crate) fn open(env: &Env, route: Route) -> Result<f64> {
    hook_cleanup(env);
    with_routes(|t| t.open(route))
}

fn lease_id(handle: f64) -> Result<LeaseId> {
    let valid = handle.is_finite() && handle >= 0.0 && handle.fract() == 0.0 && handle < 9_007_199_254_740_992.0;
    valid
        .then(|| LeaseId::from_bits(handle as u64))
        .flatten()
        .ok_or_else(|| invalid_arg(format!("not a lease handle: {handle}")))
}

/// Takes a port from the first source address of the route with one free; returns the
/// lease handle (`flow * 65536 + port`). Throws ERR_PORTER_EXHAUSTED when none has.
#[napi(catch_unwind)]
pub fn route_allocate(route: f64) -> Result<f64> {
    with_routes(|t| {
        let state = t.open_route(route)?;
        let bits = state.route.allocate().map_err(from_core)?.to_bits();
        state.ledger.insert(bits);
        Ok(bits as f64)
    })
}

/// Gives a lease's port back. Returns false (and changes nothing) if it was not in use.
#[napi(catch_unwind)]
pub fn route_release(route: f64, handle: f64, aging: bool) -> Result<bool> {
    let id = lease_id(handle)?;
    with_routes(|t| {
        let state = t.get(route)?;
        let released = state.route.release(id, aging).map_err(from_core)?;
        state.ledger.remove(&id.to_bits());
        t.settle(route);
        Ok(released != Released::NotInUse)
    })
}

/// Whether a lease's port is aging now.
#[napi(catch_unwind)]
pub fn route_is_aging(route: f64, handle: f64) -> Result<bool> {
    let id = lease_id(handle)?;
    with_routes(|t| t.get(route)?.route.is_aging(id).map_err(from_core))
}

/// Closes the route: later allocations and connects through it fail with
/// ERR_PORTER_CLOSED; its leases still release, and it lets its pools go once they have
/// and no connect of it is in flight. Closing a route twice, or one already gone, does
/// nothing.
#[napi(catch_unwind)]
pub fn route_close(route: f64) -> Result<()> {
    with_routes(|t| {
        if let Ok(state) = t.get(route) {
            state.closed = true;
            t.settle(route);
        }
        Ok(())
    })
}

/// JavaScript gave a connected descriptor (`fd`) its owner (a socket, or closed it) and
/// took its lease: from here on the lease is in the route's ledger and the descriptor is
/// JavaScript's. False if the descriptor was not waiting.
#[napi(catch_unwind)]
pub fn route_adopt(route: f64, handle: f64, fd: i32) -> Result<bool> {
    let id = lease_id(handle)?;
    let Some(waiting) = IN_FLIGHT.with_borrow_mut(|m| m.remove(&fd)) else {
        return Ok(false);
    };
    with_routes(|t| {
        let state = t.get(route)?;
        state.ledger.insert(id.to_bits());
        if waiting.pending {
            state.pending -= 1;
        }
        Ok(true)
    })
}

/// A connected descriptor and its lease handle, for the rare handle that does not pack
/// into a number (a route with 256 or more local addresses).
#[napi(object)]
pub struct Connection {
    pub fd: i32,
    pub handle: f64,
}

/// A failed connect, as data (so that it reaches JavaScript without a throw).
#[napi(object)]
pub struct ConnectFailure {
    pub error: NativeError,
}

/// Lease handles below this pack beside the descriptor into one JS number (see [`pack`]).
const PACKED_HANDLE_LIMIT: u64 = 1 << 24;

/// `fd * 2^24 + handle`: exact in a JS number while the descriptor is below 2^29 (Linux
/// caps descriptors at 2^30 - 1 only with fs.nr_open raised that far) and the handle
/// below 2^24. A plain number crosses into JavaScript without allocating an object.
fn pack(fd: i32, handle: u64) -> Option<f64> {
    (handle < PACKED_HANDLE_LIMIT && (0..1 << 29).contains(&fd))
        .then(|| f64::from(fd) * PACKED_HANDLE_LIMIT as f64 + handle as f64)
}

/// A connect's outcome on its way to JavaScript. Until it is converted it owns the socket
/// and the lease: if JavaScript is gone (a worker that exited), dropping it closes the
/// socket and ages the port, so neither leaks. Once converted, the descriptor waits in
/// the environment's in-flight table until JavaScript adopts it.
struct Handover {
    result: porter_core::Result<Connected>,
    /// The route, for a connect that was in flight on the reactor (its count of pending
    /// connects, which a connection keeps until it is adopted).
    pending_on: Option<f64>,
}

impl ToNapiValue for Handover {
    /// A connection as a packed number (or a `Connection` object), a failure as a
    /// `ConnectFailure`. No system call here: JavaScript knows the local address (the
    /// pool's, or the socket's own when the pool's is unspecified). Runs on the
    /// environment's own thread, which owns the route table.
    unsafe fn to_napi_value(env: sys::napi_env, value: Self) -> napi::Result<sys::napi_value> {
        if let (Some(route), Err(_)) = (value.pending_on, &value.result) {
            let _ = with_routes(|t| {
                if let Ok(state) = t.get(route) {
                    state.pending -= 1;
                    t.settle(route);
                }
                Ok(())
            });
        }
        // SAFETY (all three): forwarded from our caller, who holds a live env.
        match value.result {
            Ok(Connected {
                socket,
                lease,
                flow_index,
                ..
            }) => {
                let flow = lease.flow().clone();
                let port = lease.into_port();
                let handle = LeaseId {
                    flow: flow_index as u32,
                    port,
                }
                .to_bits();
                let fd = socket.into_raw_fd();
                let pending = value.pending_on.is_some();
                IN_FLIGHT.with_borrow_mut(|m| m.insert(fd, InFlight { flow, port, pending }));
                match pack(fd, handle) {
                    Some(packed) => unsafe { f64::to_napi_value(env, packed) },
                    None => unsafe {
                        Connection::to_napi_value(
                            env,
                            Connection {
                                fd,
                                handle: handle as f64,
                            },
                        )
                    },
                }
            }
            Err(e) => unsafe {
                ConnectFailure::to_napi_value(
                    env,
                    ConnectFailure {
                        error: NativeError::from(&e),
                    },
                )
            },
        }
    }
}

/// Connects, with `socketOptions` (if given) over the registry's, field by field.
/// Settles at once when the connect is already over (usual on loopback), else returns a
/// promise. Either way the value is a connection (`fd * 2^24 + handle`, or a `Connection`
/// for a handle too large to pack) or a `ConnectFailure`. The caller owes a `routeAdopt`
/// for a connection.
#[napi(
    catch_unwind,
    ts_return_type = "number | Connection | ConnectFailure | Promise<number | Connection | ConnectFailure>"
)]
pub fn route_connect<'env>(
    env: &'env Env,
    route: f64,
    timeout_ms: Option<f64>,
    cancel: Option<&CancelToken>,
    socket_options: Option<NativeSocketOptions>,
) -> Result<Unknown<'env>> {
    hook_cleanup(env);
    let own = socket_options.as_ref().map(sockopts::to_core).transpose()?;
    let timeout = timeout_ms
        .filter(|t| t.is_finite() && *t >= 0.0)
        .map(|t| Duration::from_secs_f64(t / 1000.0));
    let progress = with_routes(|t| {
        let state = t.open_route(route)?;
        let progress = state.route.start_with(own.as_ref()).map(Attempt::poll_now);
        if matches!(progress, Ok(Progress::Pending(_))) {
            state.pending += 1;
        }
        Ok(progress)
    })?;
    let internal = |e: napi::Error| coded("ERR_PORTER_INTERNAL", e.reason.clone());
    let now = |result| Handover {
        result,
        pending_on: None,
    };
    let value = match progress {
        Ok(Progress::Pending(attempt)) => {
            // A connect that waits is cancelled when its environment goes: through the
            // caller's token (a child of the environment's), or the environment's own.
            let token = cancel.map_or_else(|| ENV_GONE.with_borrow(Clone::clone), |c| c.inner.clone());
            env.spawn_future(async move {
                Ok(Handover {
                    result: connect::finish(attempt, timeout, Some(token)).await,
                    pending_on: Some(route),
                })
            })
            .map_err(internal)?
            .raw()
        }
        // SAFETY (both): the env of the current call, on its own thread.
        Ok(Progress::Done(result)) => unsafe { Handover::to_napi_value(env.raw(), now(result)) }.map_err(internal)?,
        Err(e) => unsafe { Handover::to_napi_value(env.raw(), now(Err(e))) }.map_err(internal)?,
    };
    // SAFETY: a value just made in this env.
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), value) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_reused_with_a_new_generation() {
        let mut table = Table::default();
        let registry = porter_core::Registry::new(porter_core::Config::default()).unwrap();
        let remote = "127.0.0.1:9".parse().unwrap();
        let a = table.open(Route::new(&registry, &[], remote).unwrap()).unwrap();
        let b = table.open(Route::new(&registry, &[], remote).unwrap()).unwrap();
        assert_ne!(a, b);
        table.get(a).unwrap().closed = true;
        table.settle(a);
        assert!(table.get(a).is_err(), "a freed id names nothing");
        let c = table.open(Route::new(&registry, &[], remote).unwrap()).unwrap();
        assert_ne!(c, a, "the slot is reused under another generation");
        assert_eq!(Table::slot_of(c).unwrap().0, Table::slot_of(a).unwrap().0);
        assert!(table.get(b).is_ok());
        for bad in [-1.0, 0.5, f64::NAN, f64::INFINITY, 1e300] {
            assert!(table.get(bad).is_err());
        }
    }

    #[test]
    fn a_closed_route_keeps_its_slot_while_a_lease_is_out() {
        let mut table = Table::default();
        let registry = porter_core::Registry::new(porter_core::Config::default()).unwrap();
        let id = table
            .open(Route::new(&registry, &[], "127.0.0.1:9".parse().unwrap()).unwrap())
            .unwrap();
        let state = table.get(id).unwrap();
        let lease = state.route.allocate().unwrap();
        state.ledger.insert(lease.to_bits());
        state.closed = true;
        table.settle(id);
        assert!(table.get(id).is_ok(), "kept: a lease is out");
        let state = table.get(id).unwrap();
        state.route.release(lease, false).unwrap();
        state.ledger.remove(&lease.to_bits());
        table.settle(id);
        assert!(table.get(id).is_err());
    }

    #[test]
    fn a_descriptor_is_ours_only_while_it_is_the_connection_handed_over() {
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let remote = listener.local_addr().unwrap();
        let stream = std::net::TcpStream::connect(remote).unwrap();
        let (fd, port) = (stream.as_raw_fd(), stream.local_addr().unwrap().port());
        assert!(still_ours(fd, port, remote));
        let mapped = SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.to_ipv6_mapped().into(), remote.port());
        assert!(
            still_ours(fd, port, mapped),
            "an IPv4-mapped destination is its IPv4 address"
        );
        assert!(!still_ours(fd, port.wrapping_add(1), remote), "another local port");
        let elsewhere = SocketAddr::new(remote.ip(), remote.port().wrapping_add(1));
        assert!(!still_ours(fd, port, elsewhere), "another destination");
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        assert!(!still_ours(file.as_raw_fd(), port, remote), "not a socket");
        assert!(!still_ours(-1, port, remote), "no descriptor");
    }

    /// What @porter/core does with a packed connection: `handle = v % 2^24`,
    /// `fd = (v - handle) / 2^24`, in floating point; then the port is `handle % 65536`
    /// and the source address's index `floor(handle / 65536)`.
    fn unpack_as_javascript_does(value: f64) -> (i32, u16, u32) {
        let limit = PACKED_HANDLE_LIMIT as f64;
        let handle = value % limit;
        let fd = ((value - handle) / limit) as i32;
        (fd, (handle % 65536.0) as u16, (handle / 65536.0).floor() as u32)
    }

    #[test]
    fn descriptor_and_lease_pack_into_one_exact_javascript_number() {
        let largest_fd = (1 << 29) - 1;
        for (fd, flow, port) in [(0, 0, 1), (3, 0, 1024), (19_999, 7, 40000), (largest_fd, 255, 65535)] {
            let bits = LeaseId { flow, port }.to_bits();
            let packed = pack(fd, bits).unwrap();
            assert!(packed < 2f64.powi(53), "{packed} is not exact in a JS number");
            assert_eq!(packed.fract(), 0.0);
            assert_eq!(unpack_as_javascript_does(packed), (fd, port, flow));
        }
    }

    #[test]
    fn what_does_not_pack_crosses_as_an_object() {
        // A route with 256 or more source addresses: the lease needs more than 24 bits.
        assert_eq!(pack(3, LeaseId { flow: 256, port: 1024 }.to_bits()), None);
        assert_eq!(pack(3, PACKED_HANDLE_LIMIT), None);
        // A descriptor at or above 2^29 would make the number inexact.
        assert_eq!(pack(1 << 29, 0), None);
        assert_eq!(pack(-1, 0), None);
    }
}
