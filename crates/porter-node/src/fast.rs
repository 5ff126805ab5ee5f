//! The calls of the allocation path (`allocate`, `release`) and the one each connect makes
//! after the connect itself (`adopt`), as N-API callbacks written by hand.
//!
//! A `#[napi]` function with arguments opens and closes a borrow-tracking scope of
//! napi-rs on every call (a thread-local push and pop, and an allocation): about 1,200
//! machine instructions per call here, more than the allocation itself. These two read
//! their numbers straight from the callback info and call the same route functions as the
//! `#[napi]` ones ([`crate::route`]); errors are thrown with their `code` set, and a panic
//! is caught and thrown as ERR_PORTER_INTERNAL, like everywhere else in the binding.

use std::ffi::CString;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;

use crate::error::Result;
use crate::route;

/// Throws `code` with `message` (as napi_throw_error does: an Error whose `code` is set).
///
/// SAFETY: `env` must be the live env of the current call.
unsafe fn throw(env: sys::napi_env, code: &str, message: &str) -> sys::napi_value {
    let code = CString::new(code).unwrap_or_default();
    let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
    // SAFETY: a live env (our caller's contract) and two NUL-terminated strings that live
    // across the call.
    unsafe { sys::napi_throw_error(env, code.as_ptr(), message.as_ptr()) };
    ptr::null_mut()
}

/// The call's arguments, up to `N` (missing ones stay null).
///
/// SAFETY: `env` and `info` must be those of the current call.
unsafe fn args<const N: usize>(env: sys::napi_env, info: sys::napi_callback_info) -> Option<[sys::napi_value; N]> {
    let mut argc = N;
    let mut argv = [ptr::null_mut(); N];
    // SAFETY: argv has room for argc values; this and data are not asked for.
    let status = unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    (status == sys::Status::napi_ok && argc >= N).then_some(argv)
}

/// A JavaScript number, or `None` when the value is not one.
///
/// SAFETY: `env` must be live and `value` a value of it.
unsafe fn number(env: sys::napi_env, value: sys::napi_value) -> Option<f64> {
    let mut out = 0.0;
    // SAFETY: as above; out is a valid f64 to write.
    (unsafe { sys::napi_get_value_double(env, value, &mut out) } == sys::Status::napi_ok).then_some(out)
}

/// Runs `body` with panics caught, and turns its outcome into the call's return value.
///
/// SAFETY: `env` must be the live env of the current call.
unsafe fn finish(env: sys::napi_env, body: impl FnOnce() -> Result<sys::napi_value>) -> sys::napi_value {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => value,
        // SAFETY (both): our caller's env.
        Ok(Err(e)) => unsafe { throw(env, &e.status, &e.reason) },
        Err(_) => unsafe { throw(env, "ERR_PORTER_INTERNAL", "a panic in porter's native addon (a bug)") },
    }
}

fn bad_args(what: &str) -> napi::Error<String> {
    crate::error::coded("ERR_INVALID_ARG_TYPE", format!("expected {what}"))
}

/// `allocate(route)`: [`route::route_allocate`].
unsafe extern "C" fn allocate(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: the env and callback info of this call, on its thread.
    unsafe {
        finish(env, || {
            let [route] = args::<1>(env, info).ok_or_else(|| bad_args("(route)"))?;
            let route = number(env, route).ok_or_else(|| bad_args("a route id"))?;
            let lease_id = route::route_allocate(route)?;
            let mut out = ptr::null_mut();
            sys::napi_create_double(env, lease_id, &mut out);
            Ok(out)
        })
    }
}

/// `release(route, leaseId, aging)`: [`route::route_release`].
unsafe extern "C" fn release(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: the env and callback info of this call, on its thread.
    unsafe {
        finish(env, || {
            let [route, lease_id, aging] = args::<3>(env, info).ok_or_else(|| bad_args("(route, leaseId, aging)"))?;
            let route = number(env, route).ok_or_else(|| bad_args("a route id"))?;
            let lease_id = number(env, lease_id).ok_or_else(|| bad_args("a lease id"))?;
            let mut flag = false;
            if sys::napi_get_value_bool(env, aging, &mut flag) != sys::Status::napi_ok {
                return Err(bad_args("aging as a boolean"));
            }
            let released = route::route_release(route, lease_id, flag)?;
            let mut out = ptr::null_mut();
            sys::napi_get_boolean(env, released, &mut out);
            Ok(out)
        })
    }
}

/// `adopt(route, leaseId, fd)`: [`route::route_adopt`].
unsafe extern "C" fn adopt(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: the env and callback info of this call, on its thread.
    unsafe {
        finish(env, || {
            let [route, lease_id, fd] = args::<3>(env, info).ok_or_else(|| bad_args("(route, leaseId, fd)"))?;
            let route = number(env, route).ok_or_else(|| bad_args("a route id"))?;
            let lease_id = number(env, lease_id).ok_or_else(|| bad_args("a lease id"))?;
            let fd = number(env, fd)
                .filter(|fd| fd.fract() == 0.0 && (0.0..=f64::from(i32::MAX)).contains(fd))
                .ok_or_else(|| bad_args("a descriptor"))?;
            let adopted = route::route_adopt(route, lease_id, fd as i32)?;
            let mut out = ptr::null_mut();
            sys::napi_get_boolean(env, adopted, &mut out);
            Ok(out)
        })
    }
}

/// The hot path's functions, hand-written (see the module comment): `allocate(route)` as
/// `routeAllocate`, `release(route, leaseId, aging)` as `routeRelease`, and
/// `adopt(route, leaseId, fd)` as `routeAdopt`.
#[napi(
    catch_unwind,
    ts_return_type = "{ allocate(route: number): number; release(route: number, leaseId: number, aging: boolean): boolean; adopt(route: number, leaseId: number, fd: number): boolean }"
)]
pub fn fast_route_functions(env: Env) -> Result<Unknown<'static>> {
    let internal = |what: &str| crate::error::coded("ERR_PORTER_INTERNAL", format!("could not {what}"));
    let mut object = ptr::null_mut();
    // SAFETY: the env of the current call; every out-pointer is a local that outlives it.
    unsafe {
        if sys::napi_create_object(env.raw(), &mut object) != sys::Status::napi_ok {
            return Err(internal("create an object"));
        }
        for (name, cb) in [
            (c"allocate", allocate as unsafe extern "C" fn(_, _) -> _),
            (c"release", release),
            (c"adopt", adopt),
        ] {
            let mut function = ptr::null_mut();
            let ok = sys::napi_create_function(env.raw(), name.as_ptr(), -1, Some(cb), ptr::null_mut(), &mut function)
                == sys::Status::napi_ok
                && sys::napi_set_named_property(env.raw(), object, name.as_ptr(), function) == sys::Status::napi_ok;
            if !ok {
                return Err(internal("create a function"));
            }
        }
        Ok(Unknown::from_raw_unchecked(env.raw(), object))
    }
}
