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

/// What a connect resolves to: a connected descriptor, or an error as data.
#[napi(object)]
pub struct ConnectResult {
    pub fd: Option<i32>,
    pub handle: Option<u32>,
    pub local_address: Option<String>,
    pub local_port: Option<u32>,
    pub kernel_chosen: Option<bool>,
    pub error: Option<NativeError>,
}

/// The outcome of a connect on its way to JavaScript. Until it is converted it owns the
/// socket and the lease: if JavaScript is gone (a worker that exited), dropping it closes
/// the socket and ages the port, so neither leaks.
struct Outcome {
    result: porter_core::Result<Connected>,
    flows: Vec<Flow>,
}

impl ToNapiValue for Outcome {
    unsafe fn to_napi_value(env: sys::napi_env, value: Self) -> Result<sys::napi_value> {
        let result = match value.result {
            Ok(Connected {
                socket,
                lease,
                local,
                kernel_chosen,
                ..
            }) => {
                let local = socket.local_addr().ok().and_then(|a| a.as_socket()).unwrap_or(local);
                let index = value
                    .flows
                    .iter()
                    .position(|f| f.key() == lease.flow().key())
                    .unwrap_or(0);
                let port = lease.into_port();
                ConnectResult {
                    fd: Some(socket.into_raw_fd()),
                    handle: Some(handle(index, port)),
                    local_address: Some(local.ip().to_string()),
                    local_port: Some(port.into()),
                    kernel_chosen: Some(kernel_chosen),
                    error: None,
                }
            }
            Err(e) => ConnectResult {
                fd: None,
                handle: None,
                local_address: None,
                local_port: None,
                kernel_chosen: None,
                error: Some(NativeError::from(&e)),
            },
        };
        // SAFETY: forwarded from our caller, who holds a live env.
        unsafe { ConnectResult::to_napi_value(env, result) }
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

/// Connects. Returns the descriptor and lease handle, or an error as data: at once when
/// the connect is already over (usual on loopback), else as a promise.
#[napi(catch_unwind, ts_return_type = "ConnectResult | Promise<ConnectResult>")]
pub fn route_connect(
    env: Env,
    route: u32,
    timeout_ms: Option<f64>,
    cancel: Option<&CancelToken>,
) -> Result<Object<'_>> {
    let timeout = timeout_ms
        .filter(|t| t.is_finite() && *t >= 0.0)
        .map(|t| Duration::from_secs_f64(t / 1000.0));
    let token = cancel.map(|c| c.inner.clone());
    let (started, flows) = Route::with(route, |r| Ok((connect::start(&r.flows, r.remote), r.flows.clone())))?;
    let attempt = match started.map(Attempt::poll_now) {
        Ok(Progress::Pending(attempt)) => attempt,
        Ok(Progress::Done(result)) => return now(env, Outcome { result, flows }),
        Err(e) => return now(env, Outcome { result: Err(e), flows }),
    };
    let promise = env.spawn_future(async move {
        let result = connect::finish(attempt, timeout, token).await;
        Ok(Outcome { result, flows })
    })?;
    Ok(Object::from_raw(env.raw(), promise.raw()))
}

/// An outcome as a plain JS object, returned without a promise.
fn now(env: Env, outcome: Outcome) -> Result<Object<'static>> {
    // SAFETY: the env of the current call, on its own thread.
    let value = unsafe { Outcome::to_napi_value(env.raw(), outcome)? };
    Ok(Object::from_raw(env.raw(), value))
}
