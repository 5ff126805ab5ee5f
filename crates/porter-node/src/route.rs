//! `Route`: the pools of one destination, one per local address, with allocate, release
//! and connect. JavaScript keeps one per destination, so the allocation path skips the
//! registry's map.

use std::net::SocketAddr;
use std::os::fd::IntoRawFd;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;
use parking_lot::RwLock;
use porter_core::connect::{self, Attempt, Connected, Progress};
use porter_core::{Flow, Released};

use crate::cancel::CancelToken;
use crate::convert::{self, NativeError};

/// A lease handle as JavaScript holds it: `flow index << 16 | port`.
fn handle(index: usize, port: u16) -> u32 {
    (index as u32) << 16 | u32::from(port)
}

pub struct Route {
    flows: Vec<Flow>,
    remote: SocketAddr,
}

/// A connected descriptor and its lease handle, for the rare handle that does not pack
/// into a number (a route with 256 or more local addresses).
#[napi(object)]
pub struct Connection {
    pub fd: i32,
    pub handle: u32,
}

/// A failed connect, as data (so that it reaches JavaScript without a throw).
#[napi(object)]
pub struct ConnectFailure {
    pub error: NativeError,
}

/// Lease handles below this pack beside the descriptor into one JS number (see [`pack`]).
const PACKED_HANDLE_LIMIT: u32 = 1 << 24;

/// `fd * 2^24 + handle`: exact in a JS number while the descriptor is below 2^29 (Linux
/// caps descriptors at 2^30 - 1 only with fs.nr_open raised that far) and the handle
/// below 2^24. A plain number crosses into JavaScript without allocating an object.
fn pack(fd: i32, handle: u32) -> Option<f64> {
    (handle < PACKED_HANDLE_LIMIT && (0..1 << 29).contains(&fd))
        .then(|| f64::from(fd) * f64::from(PACKED_HANDLE_LIMIT) + f64::from(handle))
}

/// The outcome of a connect on its way to JavaScript. Until it is converted it owns the
/// socket and the lease: if JavaScript is gone (a worker that exited), dropping it closes
/// the socket and ages the port, so neither leaks.
struct Outcome {
    result: porter_core::Result<Connected>,
    /// The position of the lease's flow in the route's flows.
    index: usize,
}

impl Outcome {
    fn new(result: porter_core::Result<Connected>, flows: &[Flow]) -> Self {
        let index = match &result {
            Ok(c) => flows.iter().position(|f| f.key() == c.lease.flow().key()).unwrap_or(0),
            Err(_) => 0,
        };
        Self { result, index }
    }
}

impl ToNapiValue for Outcome {
    /// A connection as a packed number (or a `Connection` object), a failure as a
    /// `ConnectFailure`. No system call here: JavaScript knows the local address (the
    /// pool's, or the socket's own when the pool's is unspecified).
    unsafe fn to_napi_value(env: sys::napi_env, value: Self) -> Result<sys::napi_value> {
        // SAFETY (all three): forwarded from our caller, who holds a live env.
        match value.result {
            Ok(Connected { socket, lease, .. }) => {
                let handle = handle(value.index, lease.into_port());
                let fd = socket.into_raw_fd();
                match pack(fd, handle) {
                    Some(packed) => unsafe { f64::to_napi_value(env, packed) },
                    None => unsafe { Connection::to_napi_value(env, Connection { fd, handle }) },
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

/// Every open route, by id. JavaScript calls the route functions with an id (a number)
/// rather than as methods of a class: a plain napi function with number arguments costs
/// about a third of a class method call, which matters on the allocation path.
static ROUTES: RwLock<Vec<Option<Route>>> = RwLock::new(Vec::new());

impl Route {
    pub(crate) fn new(flows: Vec<Flow>, remote: SocketAddr) -> Self {
        Self { flows, remote }
    }

    /// Stores the route and returns its id.
    pub(crate) fn open(self) -> u32 {
        let mut routes = ROUTES.write();
        let id = match routes.iter().position(Option::is_none) {
            Some(free) => {
                routes[free] = Some(self);
                free
            }
            None => {
                routes.push(Some(self));
                routes.len() - 1
            }
        };
        id as u32
    }

    fn with<T>(id: u32, f: impl FnOnce(&Route) -> Result<T>) -> Result<T> {
        let routes = ROUTES.read();
        match routes.get(id as usize) {
            Some(Some(route)) => f(route),
            _ => Err(convert::invalid_arg(format!("unknown route {id}"))),
        }
    }

    fn flow(&self, handle: u32) -> Result<(&Flow, u16)> {
        let flow = self
            .flows
            .get((handle >> 16) as usize)
            .ok_or_else(|| convert::invalid_arg(format!("unknown lease handle {handle}")))?;
        Ok((flow, handle as u16))
    }
}

/// Takes a port from the first local address of the route with one free; returns the
/// lease handle. Throws ERR_PORTER_EXHAUSTED when none has.
#[napi(catch_unwind)]
pub fn route_allocate(route: u32) -> Result<u32> {
    Route::with(route, |r| {
        let (index, port) = porter_core::allocate_first(&r.flows).map_err(convert::error)?;
        Ok(handle(index, port))
    })
}

/// Gives a lease's port back. Returns false (and changes nothing) if it was not in use.
#[napi(catch_unwind)]
pub fn route_release(route: u32, handle: u32, aging: bool) -> Result<bool> {
    Route::with(route, |r| {
        let (flow, port) = r.flow(handle)?;
        Ok(flow.release(port, aging) != Released::NotInUse)
    })
}

/// Whether a lease's port is aging now.
#[napi(catch_unwind)]
pub fn route_is_aging(route: u32, handle: u32) -> Result<bool> {
    Route::with(route, |r| {
        let (flow, port) = r.flow(handle)?;
        Ok(flow.is_aging(port))
    })
}

/// Forgets a route (its pools stay in the registry).
#[napi(catch_unwind)]
pub fn route_close(route: u32) {
    if let Some(slot) = ROUTES.write().get_mut(route as usize) {
        *slot = None;
    }
}

/// Connects. Settles at once when the connect is already over (usual on loopback), else
/// returns a promise. Either way the value is a connection (`fd * 2^24 + handle`, or a
/// `Connection` for a handle too large to pack) or a `ConnectFailure`.
#[napi(
    catch_unwind,
    ts_return_type = "number | Connection | ConnectFailure | Promise<number | Connection | ConnectFailure>"
)]
pub fn route_connect(
    env: Env,
    route: u32,
    timeout_ms: Option<f64>,
    cancel: Option<&CancelToken>,
) -> Result<Unknown<'_>> {
    let timeout = timeout_ms
        .filter(|t| t.is_finite() && *t >= 0.0)
        .map(|t| Duration::from_secs_f64(t / 1000.0));
    let token = cancel.map(|c| c.inner.clone());
    let pending = Route::with(route, |r| {
        Ok(match connect::start(&r.flows, r.remote).map(Attempt::poll_now) {
            Ok(Progress::Pending(attempt)) => Err((attempt, r.flows.clone())),
            Ok(Progress::Done(result)) => Ok(Outcome::new(result, &r.flows)),
            Err(e) => Ok(Outcome::new(Err(e), &r.flows)),
        })
    })?;
    let value = match pending {
        Ok(outcome) => {
            // SAFETY: the env of the current call, on its own thread.
            unsafe { Outcome::to_napi_value(env.raw(), outcome)? }
        }
        Err((attempt, flows)) => env
            .spawn_future(async move {
                let result = connect::finish(attempt, timeout, token).await;
                Ok(Outcome::new(result, &flows))
            })?
            .raw(),
    };
    // SAFETY: a value just made in this env.
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), value) })
}
