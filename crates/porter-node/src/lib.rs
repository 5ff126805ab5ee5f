//! The napi-rs binding of porter: every exported item converts types and errors and
//! calls `porter-core`; nothing here decides anything about pools or sockets.
//! Every exported function catches panics, so a Rust panic becomes a JS error.
#![allow(missing_docs)]
// napi-rs generates no exports in test builds, which leaves the exported items unused there.
#![cfg_attr(test, allow(dead_code))]

mod allocator;
mod cancel;
mod convert;
mod route;

use napi::bindgen_prelude::*;
use napi_derive::napi;

/// Does nothing: the cost of a bare call into the addon, for benchmarks.
#[napi]
pub fn noop() {}

/// The `index`-th of `count` equal slices of `[first, last]`, as `[first, last]`.
#[napi(catch_unwind)]
pub fn partition_range(first: u32, last: u32, index: u32, count: u32) -> Result<Vec<u32>> {
    let range = convert::range(first, last)?
        .partition(index, count)
        .map_err(convert::error)?;
    Ok(vec![range.first().into(), range.last().into()])
}

/// The system's `ip_local_port_range`, as `[first, last]`.
#[napi(catch_unwind)]
pub fn system_port_range() -> Result<Vec<u32>> {
    let range = porter_core::PortRange::from_system().map_err(convert::error)?;
    Ok(vec![range.first().into(), range.last().into()])
}

/// Panics on purpose: proves that a panic reaches JavaScript as an error.
#[napi(catch_unwind)]
pub fn panic_for_test(message: String) {
    panic!("{message}");
}
