//! Starting a connect: which ports are tried, in which order.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::attempt::Attempt;
use super::explicit::{explicit, Explicit};
use super::kernel::{kernel_choice, KernelStep};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::flow::Flow;
use crate::sockopts::SocketOptions;

/// Issues the connect to `remote` from a port for the first of `flows` that has one
/// (each flow a local address for this destination). In order: the ports porter binds
/// itself, on each local address in turn (a collision moves on to the kernel's window,
/// or, where there is none or it is full, to other ports of porter's own as the
/// configuration allows); then the kernel's choice within its window of porter's range,
/// on each local address in turn; then, with the kernel fallback on, the kernel's choice
/// anywhere in its ephemeral range. Every socket gets the registry's
/// [`SocketOptions`] before bind and connect. Never blocks. `flows` must be non-empty and
/// share one registry and one remote address.
pub fn start(flows: &[Flow], remote: SocketAddr) -> Result<Attempt> {
    start_from(flows, 0, remote, None)
}

/// [`start`], looking for ports porter binds itself from the flow at `from` on (the
/// caller knows the flows before it have none free), with `options` (if any) overriding
/// the registry's socket options field by field for this connect.
pub fn start_from(flows: &[Flow], from: usize, remote: SocketAddr, options: Option<&SocketOptions>) -> Result<Attempt> {
    let started = Instant::now();
    let Some(first) = flows.first() else {
        return Err(Error::Io {
            syscall: "connect",
            source: io::Error::from_raw_os_error(libc::EINVAL),
        });
    };
    let registry = first.registry();
    let options = effective_options(registry.config(), options);
    let result = choose(flows, from, first, remote, &options, started);
    if let Err(e) = &result {
        registry.stats.connect_error(e.code());
    }
    result
}

/// The registry's socket options, with a connect's own over them.
fn effective_options(config: &Config, options: Option<&SocketOptions>) -> SocketOptions {
    match options {
        None => config.socket_options,
        Some(options) => config.socket_options.overlay(options),
    }
}

fn choose(
    flows: &[Flow],
    from: usize,
    first: &Flow,
    remote: SocketAddr,
    options: &SocketOptions,
    started: Instant,
) -> Result<Attempt> {
    let registry = first.registry();
    let config = registry.config();
    let capacity = registry.capacity();
    let kernel_window = capacity.kernel_window();
    let fallback = config.kernel_fallback && capacity.fallback_differs();
    let collision = match explicit(flows, from, remote, options, started, config.retry_attempts) {
        Explicit::Started(attempt) => return Ok(attempt),
        Explicit::Failed(e) => return Err(e),
        Explicit::Collided(e) => Some(e),
        Explicit::Empty => None,
    };
    if let Some(e) = collision {
        if kernel_window.is_none() && !fallback {
            // Nothing else to try (the Erlang original's behaviour): the collision is the answer.
            return Err(e);
        }
        // Retried through the kernel's choice.
        registry.stats.retry(e.errno());
    }
    if let Some(window) = kernel_window {
        let narrowed = window.narrowed.then_some(window.ports);
        for (index, flow) in flows.iter().enumerate() {
            if flow.kernel_window_full() {
                continue;
            }
            match kernel_choice(flow, index, remote, options, started, narrowed) {
                KernelStep::Started(attempt) => {
                    registry.stats.kernel_picks.fetch_add(1, Ordering::Relaxed);
                    return Ok(attempt);
                }
                KernelStep::Failed(e) => return Err(e),
                KernelStep::Full(_) => flow.set_kernel_window_full(),
            }
        }
    }
    if fallback {
        return match kernel_choice(first, 0, remote, options, started, None) {
            KernelStep::Started(attempt) => {
                registry.stats.kernel_fallbacks.fetch_add(1, Ordering::Relaxed);
                Ok(attempt)
            }
            KernelStep::Failed(e) => Err(e),
            KernelStep::Full(e) => Err(first.exhausted(Some(e))),
        };
    }
    Err(first.exhausted(None))
}
