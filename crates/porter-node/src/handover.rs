//! A connect's outcome on its way to JavaScript: a connection packed into one number (or
//! a `Connection` object), or a failure as data (`ConnectFailure`).

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;
use porter_core::connect::Connected;
use porter_core::{HandedOver, RouteId};

use crate::env::with_routes;
use crate::error::ConnectError;

/// A connected descriptor and its lease id, for the rare lease id that does not pack into
/// a number (a route with 256 or more local addresses).
#[napi(object)]
pub struct Connection {
    pub fd: i32,
    pub lease_id: f64,
}

/// A failed connect, as data (so that it reaches JavaScript without a throw).
#[napi(object)]
pub struct ConnectFailure {
    pub error: ConnectError,
}

/// Lease ids below this pack beside the descriptor into one JS number (see [`pack`]).
const PACKED_HANDLE_LIMIT: u64 = 1 << 24;

/// `fd * 2^24 + lease id`: exact in a JS number while the descriptor is below 2^29 (Linux
/// caps descriptors at 2^30 - 1 only with fs.nr_open raised that far) and the id below
/// 2^24. A plain number crosses into JavaScript without allocating an object.
fn pack(fd: i32, lease: u64) -> Option<f64> {
    (lease < PACKED_HANDLE_LIMIT && (0..1 << 29).contains(&fd))
        .then(|| f64::from(fd) * PACKED_HANDLE_LIMIT as f64 + lease as f64)
}

/// A connect's outcome. Until it is converted it owns the socket and the lease: if
/// JavaScript is gone (a worker that exited), dropping it closes the socket and ages the
/// port, so neither leaks. Converting it hands the connection over to the environment's
/// route table, where the descriptor waits until JavaScript adopts it.
pub(crate) struct Handover {
    pub(crate) result: porter_core::Result<Connected>,
    /// The route, for a connect that was in flight on the reactor (pending on its route
    /// until adopted, or until it failed).
    pub(crate) pending_on: Option<RouteId>,
}

impl ToNapiValue for Handover {
    /// Runs on the environment's own thread, which owns the route table. No system call:
    /// JavaScript knows the local address (the pool's, or the socket's own).
    unsafe fn to_napi_value(env: sys::napi_env, value: Self) -> napi::Result<sys::napi_value> {
        // SAFETY (all three): forwarded from our caller, who holds a live env.
        match value.result {
            Ok(connected) => {
                let HandedOver { fd, lease } = with_routes(|t| t.hand_over(connected, value.pending_on.is_some()));
                let lease = lease.to_bits();
                match pack(fd, lease) {
                    Some(packed) => unsafe { f64::to_napi_value(env, packed) },
                    None => unsafe {
                        Connection::to_napi_value(
                            env,
                            Connection {
                                fd,
                                lease_id: lease as f64,
                            },
                        )
                    },
                }
            }
            Err(e) => {
                if let Some(route) = value.pending_on {
                    with_routes(|t| t.connect_failed(route));
                }
                let error = ConnectError::from(&e);
                unsafe { ConnectFailure::to_napi_value(env, ConnectFailure { error }) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use porter_core::LeaseId;

    /// What @porter/core does with a packed connection: `leaseId = v % 2^24`,
    /// `fd = (v - leaseId) / 2^24`, in floating point; then the port is `leaseId % 65536`
    /// and the source address's index `floor(leaseId / 65536)`.
    fn unpack_as_javascript_does(value: f64) -> (i32, u16, u32) {
        let limit = PACKED_HANDLE_LIMIT as f64;
        let lease_id = value % limit;
        let fd = ((value - lease_id) / limit) as i32;
        (fd, (lease_id % 65536.0) as u16, (lease_id / 65536.0).floor() as u32)
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
