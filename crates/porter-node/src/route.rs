//! Routes as JavaScript holds them: a number naming a route of its environment's
//! `RouteTable` (porter-core), and the functions that allocate, release and connect
//! through it. Each converts its numbers and forwards to the table; the table keeps the
//! ledger of what was handed out, and gives it all back when the environment goes
//! (`env.rs`).
//!
//! Plain functions with number arguments rather than methods of a class: a napi call with
//! a class instance as argument costs about three times one with numbers.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use porter_core::connect::{self, Progress};
use porter_core::{LeaseId, Route, RouteId};

use crate::cancel::CancelToken;
use crate::convert;
use crate::env::{self, with_routes};
use crate::error::{coded, from_core, invalid_arg, Result};
use crate::handover::Handover;
use crate::sockopts::{self, SocketOptions};

/// The largest integer a JavaScript number holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// A whole JavaScript number as an integer.
fn integer(value: f64) -> Option<u64> {
    (value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= MAX_SAFE_INTEGER).then_some(value as u64)
}

fn route_id(route: f64) -> Result<RouteId> {
    integer(route)
        .and_then(RouteId::from_bits)
        .ok_or_else(|| invalid_arg(format!("unknown route {route}")))
}

fn lease_id_of(lease_id: f64) -> Result<LeaseId> {
    integer(lease_id)
        .and_then(LeaseId::from_bits)
        .ok_or_else(|| invalid_arg(format!("not a lease id: {lease_id}")))
}

/// Opens a route in this environment's table; its id.
pub(crate) fn open(env: &Env, route: Route) -> Result<f64> {
    env::hook_cleanup(env);
    let id = with_routes(|t| t.open(route)).map_err(from_core)?;
    Ok(id.to_bits() as f64)
}

/// Takes a port from the first source address of the route with one free; returns the
/// lease id (`flow * 65536 + port`). Throws ERR_PORTER_EXHAUSTED when none has.
#[napi(catch_unwind)]
pub fn route_allocate(route: f64) -> Result<f64> {
    let id = route_id(route)?;
    let lease = with_routes(|t| t.allocate(id)).map_err(from_core)?;
    Ok(lease.to_bits() as f64)
}

/// Gives a lease's port back. Returns false (and changes nothing) if it was not in use.
#[napi(catch_unwind)]
pub fn route_release(route: f64, lease_id: f64, aging: bool) -> Result<bool> {
    let (id, lease) = (route_id(route)?, lease_id_of(lease_id)?);
    with_routes(|t| t.release(id, lease, aging)).map_err(from_core)
}

/// Whether a lease's port is aging now.
#[napi(catch_unwind)]
pub fn route_is_aging(route: f64, lease_id: f64) -> Result<bool> {
    let (id, lease) = (route_id(route)?, lease_id_of(lease_id)?);
    with_routes(|t| t.is_aging(id, lease)).map_err(from_core)
}

/// Closes the route: later allocations and connects through it fail with
/// ERR_PORTER_CLOSED; its leases still release, and it lets its pools go once they have
/// and no connect of it is in flight. Closing a route twice, or one already gone, does
/// nothing.
#[napi(catch_unwind)]
pub fn route_close(route: f64) -> Result<()> {
    if let Ok(id) = route_id(route) {
        with_routes(|t| t.close(id));
    }
    Ok(())
}

/// JavaScript gave a connected descriptor (`fd`) its owner (a socket, or closed it) and
/// took its lease: from here on the lease is in the route's ledger and the descriptor is
/// JavaScript's. False if the descriptor was not waiting.
#[napi(catch_unwind)]
pub fn route_adopt(route: f64, lease_id: f64, fd: i32) -> Result<bool> {
    let (id, lease) = (route_id(route)?, lease_id_of(lease_id)?);
    with_routes(|t| t.adopt(id, lease, fd)).map_err(from_core)
}

/// Connects, with `socketOptions` (if given) over the registry's, field by field.
/// Settles at once when the connect is already over (usual on loopback), else returns a
/// promise. Either way the value is a connection (`fd * 2^24 + leaseId`, or a `Connection`
/// for a lease id too large to pack) or a `ConnectFailure`. The caller owes a `routeAdopt`
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
    socket_options: Option<SocketOptions>,
) -> Result<Unknown<'env>> {
    env::hook_cleanup(env);
    let id = route_id(route)?;
    let own = socket_options.as_ref().map(sockopts::to_core).transpose()?;
    let timeout = timeout_ms.and_then(convert::timeout);
    let progress = with_routes(|t| t.start(id, own.as_ref())).map_err(from_core)?;
    let internal = |e: napi::Error| coded("ERR_PORTER_INTERNAL", e.reason.clone());
    let now = |result| Handover {
        result,
        pending_on: None,
    };
    let value = match progress {
        Ok(Progress::Pending(attempt)) => {
            // A connect that waits is cancelled when its environment goes: through the
            // caller's token (a child of the environment's), or the environment's own.
            let token = cancel.map_or_else(env::token, |c| c.inner.clone());
            env.spawn_future(async move {
                Ok(Handover {
                    result: connect::finish(attempt, timeout, Some(token)).await,
                    pending_on: Some(id),
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
    fn ids_are_whole_numbers_a_javascript_number_holds() {
        assert_eq!(route_id(5.0).unwrap(), RouteId::from_bits(5).unwrap());
        for bad in [-1.0, 0.5, f64::NAN, f64::INFINITY, 1e300, 2f64.powi(52)] {
            assert_eq!(route_id(bad).unwrap_err().status, "ERR_INVALID_ARG_VALUE", "{bad}");
        }
        let lease = LeaseId { flow: 3, port: 80 };
        assert_eq!(lease_id_of(lease.to_bits() as f64).unwrap(), lease);
        assert!(lease_id_of(MAX_SAFE_INTEGER + 1.0).is_err());
    }
}
