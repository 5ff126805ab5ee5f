//! The napi-rs binding of porter: every exported item converts types and errors and
//! calls `porter-core`; nothing here decides anything about pools or sockets.
//! Every exported function catches panics, so a Rust panic becomes a JS error
//! (`code` 'GenericFailure' from napi-rs, which @porter/core reports as ERR_PORTER_INTERNAL).
#![allow(missing_docs)]
// napi-rs generates no exports in test builds, which leaves the exported items unused there.
#![cfg_attr(test, allow(dead_code))]

mod cancel;
mod convert;
mod env;
mod error;
#[cfg(not(test))]
mod fast;
mod handover;
mod host_sockets;
mod inspect;
mod registry;
mod route;
mod sockopts;

use napi_derive::napi;

use crate::convert::interval;
use crate::error::{from_core, Result};

/// Does nothing: the cost of a bare call into the addon, for benchmarks.
#[napi(catch_unwind)]
pub fn noop() {}

/// The `index`-th of `count` equal slices of `[first, last]`, as `[first, last]`.
#[napi(catch_unwind)]
pub fn partition_range(first: u32, last: u32, index: u32, count: u32) -> Result<Vec<u32>> {
    let range = convert::range(first, last)?
        .partition(index, count)
        .map_err(from_core)?;
    Ok(vec![range.first().into(), range.last().into()])
}

/// The host's port settings, read now from the calling thread's network namespace.
#[napi(object)]
pub struct HostPorts {
    /// `net.ipv4.ip_local_port_range`.
    pub ephemeral: convert::Interval,
    /// `net.ipv4.ip_local_reserved_ports`, as sorted intervals.
    pub reserved: Vec<convert::Interval>,
    /// False when /proc could not be read and Linux's defaults stand in.
    pub read_from_system: bool,
    /// Whether the kernel has IP_BIND_ADDRESS_NO_PORT (Linux 4.2).
    pub bind_address_no_port: bool,
    /// Whether the kernel has IP_LOCAL_PORT_RANGE (Linux 6.3).
    pub local_port_range: bool,
}

/// The host's port settings (ephemeral and reserved ports, kernel options), read now.
#[napi(catch_unwind)]
pub fn host_ports() -> HostPorts {
    let host = porter_core::HostPorts::read();
    HostPorts {
        ephemeral: interval(host.ephemeral.first(), host.ephemeral.last()),
        reserved: host.reserved.iter().map(|&(a, b)| interval(a, b)).collect(),
        read_from_system: host.read_from_system,
        bind_address_no_port: host.features.bind_address_no_port,
        local_port_range: host.features.local_port_range,
    }
}

/// The collisions a mode retries when the user sets no `retry.attempts`.
#[napi(catch_unwind)]
pub fn default_retries(mode: String) -> Result<u32> {
    Ok(porter_core::Config::default_retries(convert::mode(&mode)?))
}

/// The index of the network interface an IPv6 scope names (`eth0`, or a number), or
/// null when there is no such interface.
#[napi(catch_unwind)]
pub fn interface_index(zone: String) -> Option<u32> {
    porter_core::scope_id(&zone)
}

/// Panics on purpose: proves that a panic reaches JavaScript as an error.
#[napi(catch_unwind)]
pub fn panic_for_test(message: String) {
    panic!("{message}");
}

#[cfg(test)]
mod tests {
    /// The binding's sources, read at compile time.
    const SOURCES: [(&str, &str); 11] = [
        ("lib.rs", include_str!("lib.rs")),
        ("cancel.rs", include_str!("cancel.rs")),
        ("convert.rs", include_str!("convert.rs")),
        ("env.rs", include_str!("env.rs")),
        ("error.rs", include_str!("error.rs")),
        ("handover.rs", include_str!("handover.rs")),
        ("host_sockets.rs", include_str!("host_sockets.rs")),
        ("inspect.rs", include_str!("inspect.rs")),
        ("registry.rs", include_str!("registry.rs")),
        ("route.rs", include_str!("route.rs")),
        ("sockopts.rs", include_str!("sockopts.rs")),
    ];

    /// Every `#[napi ...]` attribute on a function (an exported function, constructor,
    /// factory or method) and the line of the function it is on.
    fn exported_functions(source: &str) -> Vec<(String, String)> {
        let lines: Vec<&str> = source.lines().map(str::trim).collect();
        let mut found = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            if !lines[i].starts_with("#[napi") {
                i += 1;
                continue;
            }
            // The attribute, up to the line where its brackets close.
            let mut attribute = String::new();
            let mut depth = 0i32;
            while i < lines.len() {
                attribute.push_str(lines[i]);
                depth += lines[i].matches('[').count() as i32 - lines[i].matches(']').count() as i32;
                i += 1;
                if depth <= 0 {
                    break;
                }
            }
            while i < lines.len() && (lines[i].starts_with("#[") || lines[i].starts_with("///")) {
                i += 1;
            }
            let item = lines.get(i).copied().unwrap_or_default();
            if item.starts_with("pub fn ") || item.starts_with("fn ") {
                found.push((attribute, item.to_owned()));
            }
        }
        found
    }

    /// docs/ARCHITECTURE.md: every exported function catches panics, so that a Rust
    /// panic reaches JavaScript as an error instead of aborting the process.
    #[test]
    fn every_exported_function_catches_panics() {
        let mut all = Vec::new();
        for (file, source) in SOURCES {
            for (attribute, item) in exported_functions(source) {
                assert!(
                    attribute.contains("catch_unwind"),
                    "{file}: `{item}` is exported with {attribute}, without catch_unwind"
                );
                all.push(item);
            }
        }
        // The scan sees the exports (it would pass vacuously on none).
        for expected in [
            "pub fn noop()",
            "pub fn new() -> Self",
            "pub fn panic_for_test(",
            "pub fn route_connect",
        ] {
            assert!(
                all.iter().any(|item| item.starts_with(expected)),
                "{expected} not found"
            );
        }
        assert!(all.len() >= 20, "only {} exported functions found", all.len());
    }
}
