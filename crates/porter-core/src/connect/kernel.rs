//! Connects whose port the kernel picks at `connect()`, knowing the destination: in its
//! window of porter's range, or anywhere in its ephemeral range (the fallback).

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use socket2::SockAddr;

use super::attempt::Attempt;
use super::socket::{is_collision, issue_connect, new_socket, set_options};
use crate::error::Error;
use crate::flow::Flow;
use crate::lease::Lease;
use crate::range::PortRange;
use crate::sockopts::SocketOptions;
use crate::sys;

/// How a connect through the kernel's choice went.
pub(super) enum KernelStep {
    Started(Attempt),
    /// The kernel found no port free for this destination (in the window, if one was set).
    Full(io::Error),
    Failed(Error),
}

/// Lets the kernel pick the port at `connect()`, knowing the destination: no port is
/// bound before (`IP_BIND_ADDRESS_NO_PORT` when a source address is bound; no bind at all
/// for the unspecified address), within `window` when given (`IP_LOCAL_PORT_RANGE`). A
/// port picked this way is shared with other destinations by the kernel and never kept
/// from anyone else's `connect()`. The port it picked is recorded as in use for the flow.
pub(super) fn kernel_choice(
    flow: &Flow,
    flow_index: usize,
    remote: SocketAddr,
    options: &SocketOptions,
    started: Instant,
    window: Option<PortRange>,
) -> KernelStep {
    let local_ip = flow.key().local;
    // No port of ours is bound here: the errors name none.
    let sys_err = |source, syscall| Error::Sys {
        source,
        syscall,
        local: None,
        remote,
    };
    let socket = match new_socket(remote) {
        Ok(s) => s,
        Err(e) => return KernelStep::Failed(sys_err(e, "socket")),
    };
    // Before the kernel picks a port: a refusal leaves nothing to give back.
    if let Err(e) = set_options(&socket, options, remote) {
        return KernelStep::Failed(e);
    }
    let bind = !local_ip.is_unspecified();
    if bind {
        if let Err(e) = sys::set_bind_address_no_port(&socket, true) {
            return KernelStep::Failed(sys_err(e, "setsockopt"));
        }
    }
    if let Some(window) = window {
        if let Err(e) = sys::set_local_port_range(&socket, window.first(), window.last()) {
            return KernelStep::Failed(sys_err(e, "setsockopt"));
        }
    }
    if bind {
        if let Err(e) = socket.bind(&SockAddr::from(flow.key().local_addr(0))) {
            return KernelStep::Failed(sys_err(e, "bind"));
        }
    }
    let in_progress = match issue_connect(&socket, remote) {
        Ok(in_progress) => in_progress,
        Err(e) if is_collision(&e) => return KernelStep::Full(e),
        Err(e) => return KernelStep::Failed(sys_err(e, "connect")),
    };
    let local = match socket.local_addr().ok().and_then(|a| a.as_socket()) {
        Some(local) => local,
        None => return KernelStep::Failed(sys_err(io::Error::last_os_error(), "getsockname")),
    };
    flow.mark_in_use(local.port());
    KernelStep::Started(Attempt {
        socket,
        lease: Lease::new(flow.clone(), local.port()),
        flow_index,
        local,
        remote,
        started,
        in_progress,
        kernel_chosen: true,
    })
}
