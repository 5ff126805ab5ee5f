//! Routes as JavaScript holds them: an opaque handle on a porter-core [`Route`], and the
//! functions that allocate, release and connect through it.
//!
//! The handle also keeps the ledger of what its environment (the main thread or one worker
//! thread) holds: every lease handed to JavaScript and not given back, and every connected
//! descriptor on its way to JavaScript and not yet adopted by a socket. When the
//! environment tears down (a worker that exits or is terminated), its cleanup hook gives
//! every such port back into aging and closes every such descriptor, so none is lost; a
//! handle collected with leases still open gives them back too.
//!
//! Plain functions on the handle rather than methods of a class: a napi function with
//! number arguments costs about a third of a class method call on this path.

use std::cell::{Cell, RefCell};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;
use porter_core::connect::{self, Attempt, Connected, Progress};
use porter_core::{Flow, LeaseId, Released, Route};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::cancel::CancelToken;
use crate::error::{coded, from_core, invalid_arg, NativeError, Result};

/// A route and what its environment holds through it.
pub struct RouteState {
    /// `None` once closed and every lease is back.
    route: RefCell<Option<Route>>,
    /// Leases handed to JavaScript and not released, by [`LeaseId::to_bits`].
    ledger: RefCell<FxHashSet<u64>>,
    /// Connects still in flight on the reactor (their outcome not yet in JavaScript).
    pending: Arc<AtomicU32>,
    closed: Cell<bool>,
}

/// The opaque value JavaScript holds for a route.
pub struct RouteHandle(Rc<RouteState>);

/// What V8 is told a route costs beyond its JavaScript object.
const ROUTE_BYTES: usize = 256;

thread_local! {
    /// The routes of this thread's environment (one environment per thread in Node).
    static ROUTES: RefCell<Vec<Weak<RouteState>>> = const { RefCell::new(Vec::new()) };
    /// Connected descriptors handed to JavaScript and not yet adopted, with their port.
    static IN_FLIGHT: RefCell<FxHashMap<i32, (Flow, u16)>> = RefCell::new(FxHashMap::default());
    static CLEANUP_HOOKED: Cell<bool> = const { Cell::new(false) };
}

impl RouteState {
    /// Gives every lease of the ledger back into aging.
    fn release_all(&self) {
        let leases: Vec<u64> = self.ledger.borrow_mut().drain().collect();
        if let Some(route) = self.route.borrow().as_ref() {
            for bits in leases {
                if let Some(id) = LeaseId::from_bits(bits) {
                    let _ = route.release(id, true);
                }
            }
        }
    }

    /// Drops the route's flows once it is closed and nothing is out (no lease, no connect
    /// in flight), so that its pools can be let go.
    fn settle(&self) {
        if self.closed.get() && self.ledger.borrow().is_empty() && self.pending.load(Ordering::Acquire) == 0 {
            self.route.borrow_mut().take();
        }
    }
}

impl Drop for RouteHandle {
    fn drop(&mut self) {
        // Collected with leases out (an allocate() lease lost without release): give them back.
        self.0.release_all();
    }
}

impl RouteHandle {
    pub(crate) fn external(route: Route) -> External<RouteHandle> {
        let size = ROUTE_BYTES + route.flows().len() * 64;
        let state = Rc::new(RouteState {
            route: RefCell::new(Some(route)),
            ledger: RefCell::default(),
            pending: Arc::default(),
            closed: Cell::new(false),
        });
        ROUTES.with_borrow_mut(|routes| {
            if routes.len() == routes.capacity() {
                routes.retain(|w| w.strong_count() > 0);
            }
            routes.push(Rc::downgrade(&state));
        });
        External::new_with_size_hint(RouteHandle(state), size)
    }

    fn open<T>(&self, f: impl FnOnce(&Route) -> Result<T>) -> Result<T> {
        if self.0.closed.get() {
            return Err(coded("ERR_PORTER_CLOSED", "the route was closed"));
        }
        match self.0.route.borrow().as_ref() {
            Some(route) => f(route),
            None => Err(coded("ERR_PORTER_CLOSED", "the route was closed")),
        }
    }
}

/// Registers, once per environment, the hook that gives back what the environment holds
/// when it tears down.
pub(crate) fn hook_cleanup(env: &Env) {
    if CLEANUP_HOOKED.get() {
        return;
    }
    if env.add_env_cleanup_hook((), |()| teardown()).is_ok() {
        CLEANUP_HOOKED.set(true);
    }
}

/// The environment is going: close every descriptor not adopted, give every port back.
fn teardown() {
    let in_flight: Vec<(i32, (Flow, u16))> = IN_FLIGHT.with_borrow_mut(|m| m.drain().collect());
    for (fd, (flow, port)) in in_flight {
        // SAFETY: the descriptor was handed to JavaScript and never adopted (adoption
        // removes it from this table), so this table is its only owner.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
        flow.release(port, true);
    }
    let routes: Vec<Weak<RouteState>> = ROUTES.with_borrow_mut(std::mem::take);
    for state in routes.iter().filter_map(Weak::upgrade) {
        state.release_all();
    }
    CLEANUP_HOOKED.set(false);
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
#[napi(catch_unwind, ts_args_type = "route: ExternalObject<'Route'>")]
pub fn route_allocate(route: &External<RouteHandle>) -> Result<f64> {
    let bits = route.open(|r| r.allocate().map(LeaseId::to_bits).map_err(from_core))?;
    route.0.ledger.borrow_mut().insert(bits);
    Ok(bits as f64)
}

/// Gives a lease's port back. Returns false (and changes nothing) if it was not in use.
#[napi(
    catch_unwind,
    ts_args_type = "route: ExternalObject<'Route'>, handle: number, aging: boolean"
)]
pub fn route_release(route: &External<RouteHandle>, handle: f64, aging: bool) -> Result<bool> {
    let id = lease_id(handle)?;
    let state = &route.0;
    let released = match state.route.borrow().as_ref() {
        Some(r) => r.release(id, aging).map_err(from_core)?,
        None => return Ok(false),
    };
    state.ledger.borrow_mut().remove(&id.to_bits());
    state.settle();
    Ok(released != Released::NotInUse)
}

/// Whether a lease's port is aging now.
#[napi(catch_unwind, ts_args_type = "route: ExternalObject<'Route'>, handle: number")]
pub fn route_is_aging(route: &External<RouteHandle>, handle: f64) -> Result<bool> {
    let id = lease_id(handle)?;
    match route.0.route.borrow().as_ref() {
        Some(r) => r.is_aging(id).map_err(from_core),
        None => Ok(false),
    }
}

/// Closes the route: later allocations and connects through it fail with
/// ERR_PORTER_CLOSED; its leases still release, and its pools are let go once they have.
#[napi(catch_unwind, ts_args_type = "route: ExternalObject<'Route'>")]
pub fn route_close(route: &External<RouteHandle>) {
    route.0.closed.set(true);
    route.0.settle();
}

/// JavaScript took over a connected descriptor (`fd`) and its lease: from here on the
/// lease is in the route's ledger and the descriptor is JavaScript's to close. False if
/// the descriptor was not waiting.
#[napi(
    catch_unwind,
    ts_args_type = "route: ExternalObject<'Route'>, handle: number, fd: number"
)]
pub fn route_adopt(route: &External<RouteHandle>, handle: f64, fd: i32) -> Result<bool> {
    let id = lease_id(handle)?;
    let waiting = IN_FLIGHT.with_borrow_mut(|m| m.remove(&fd)).is_some();
    if waiting {
        route.0.ledger.borrow_mut().insert(id.to_bits());
    }
    route.0.settle();
    Ok(waiting)
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

/// The outcome of a connect on its way to JavaScript. Until it is converted it owns the
/// socket and the lease: if JavaScript is gone (a worker that exited), dropping it closes
/// the socket and ages the port, so neither leaks. Once converted, the descriptor waits in
/// the environment's in-flight table until JavaScript adopts it.
struct Outcome {
    result: porter_core::Result<Connected>,
    /// The route's count of connects in flight, for one that was.
    pending: Option<Arc<AtomicU32>>,
}

impl ToNapiValue for Outcome {
    /// A connection as a packed number (or a `Connection` object), a failure as a
    /// `ConnectFailure`. No system call here: JavaScript knows the local address (the
    /// pool's, or the socket's own when the pool's is unspecified).
    unsafe fn to_napi_value(env: sys::napi_env, value: Self) -> napi::Result<sys::napi_value> {
        if let Some(pending) = &value.pending {
            pending.fetch_sub(1, Ordering::AcqRel);
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
                IN_FLIGHT.with_borrow_mut(|m| m.insert(fd, (flow, port)));
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

/// Connects. Settles at once when the connect is already over (usual on loopback), else
/// returns a promise. Either way the value is a connection (`fd * 2^24 + handle`, or a
/// `Connection` for a handle too large to pack) or a `ConnectFailure`. The caller owes a
/// `routeAdopt` for a connection.
#[napi(
    catch_unwind,
    ts_args_type = "route: ExternalObject<'Route'>, timeoutMs?: number | undefined | null, cancel?: CancelToken | undefined | null",
    ts_return_type = "number | Connection | ConnectFailure | Promise<number | Connection | ConnectFailure>"
)]
pub fn route_connect<'env>(
    env: &'env Env,
    route: &External<RouteHandle>,
    timeout_ms: Option<f64>,
    cancel: Option<&CancelToken>,
) -> Result<Unknown<'env>> {
    hook_cleanup(env);
    let timeout = timeout_ms
        .filter(|t| t.is_finite() && *t >= 0.0)
        .map(|t| Duration::from_secs_f64(t / 1000.0));
    let token = cancel.map(|c| c.inner.clone());
    let progress = route.open(|r| Ok(r.start().map(Attempt::poll_now)))?;
    let now = |result| Outcome { result, pending: None };
    let value = match progress {
        Ok(Progress::Pending(attempt)) => {
            let pending = route.0.pending.clone();
            pending.fetch_add(1, Ordering::AcqRel);
            env.spawn_future(async move {
                Ok(Outcome {
                    result: connect::finish(attempt, timeout, token).await,
                    pending: Some(pending),
                })
            })
            .map_err(|e| coded("ERR_PORTER_INTERNAL", e.reason.clone()))?
            .raw()
        }
        // SAFETY (both): the env of the current call, on its own thread.
        Ok(Progress::Done(result)) => unsafe { Outcome::to_napi_value(env.raw(), now(result)) }
            .map_err(|e| coded("ERR_PORTER_INTERNAL", e.reason.clone()))?,
        Err(e) => unsafe { Outcome::to_napi_value(env.raw(), now(Err(e))) }
            .map_err(|e| coded("ERR_PORTER_INTERNAL", e.reason.clone()))?,
    };
    // SAFETY: a value just made in this env.
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), value) })
}

#[cfg(test)]
mod tests {
    use porter_core::LeaseId;

    use super::*;

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
