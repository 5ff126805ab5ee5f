//! The ports porter binds itself: bind-before-connect on a leased port, and the walk over
//! the flows with its retries after collisions.

use std::net::SocketAddr;
use std::time::Instant;

use socket2::SockAddr;

use super::attempt::Attempt;
use super::socket::{is_collision, issue_connect, new_socket, set_options};
use crate::error::Error;
use crate::flow::Flow;
use crate::lease::Lease;
use crate::sockopts::SocketOptions;

enum Step {
    Started(Attempt),
    Collision(Error),
    Failed(Error),
}

/// Binds a port porter chose and connects.
fn try_port(lease: Lease, flow_index: usize, remote: SocketAddr, options: &SocketOptions, started: Instant) -> Step {
    let local = lease.local_addr();
    let sys_err = |source, syscall, bound: bool| Error::Sys {
        source,
        syscall,
        local: bound.then_some(local),
        remote,
    };
    let socket = match new_socket(remote) {
        Ok(s) => s,
        Err(e) => {
            lease.release(false);
            return Step::Failed(sys_err(e, "socket", false));
        }
    };
    if let Err(e) = set_options(&socket, options, remote) {
        // Nothing was bound or sent: the port comes back at once.
        lease.release(false);
        return Step::Failed(e);
    }
    if let Err(e) = socket.bind(&SockAddr::from(local)) {
        // EADDRINUSE: something holds the port on this address without SO_REUSEADDR (a
        // listener, usually): pass over it on this address for a while, age it here.
        // Anything else (EADDRNOTAVAIL: the address is not the host's) is no collision,
        // and nothing left the host: the port comes back at once.
        let collision = e.raw_os_error() == Some(libc::EADDRINUSE);
        if collision {
            lease.flow().block_port(lease.port());
        }
        lease.release(collision);
        let err = sys_err(e, "bind", true);
        return if collision {
            Step::Collision(err)
        } else {
            Step::Failed(err)
        };
    }
    match issue_connect(&socket, remote) {
        Ok(in_progress) => Step::Started(Attempt {
            socket,
            lease,
            flow_index,
            local,
            remote,
            started,
            in_progress,
            kernel_chosen: false,
        }),
        Err(e) => {
            // EADDRNOTAVAIL: the 4-tuple is taken (another process's socket, or a
            // TIME_WAIT the kernel will not reuse).
            // ECONNREFUSED here: refused at once (loopback); like any refusal, it left no
            // connection on either side, so the port comes back at once (see `settle`).
            let collision = is_collision(&e);
            lease.release(collision);
            let err = sys_err(e, "connect", true);
            if collision {
                Step::Collision(err)
            } else {
                Step::Failed(err)
            }
        }
    }
}

/// How the ports porter binds itself went.
pub(super) enum Explicit {
    Started(Attempt),
    /// A failure to give the caller.
    Failed(Error),
    /// The last of the collisions the retry policy allows.
    Collided(Error),
    /// No port porter binds itself is free on any local address.
    Empty,
}

/// Tries ports porter binds itself, of each flow in turn. After a collision (a socket
/// porter does not know of holds the port: another process's), the next port is looked
/// for at a random place ([`Flow::scatter`]); the connect moves on to the kernel's window
/// at once when the flow has one with room (the kernel's own search never collides), and
/// otherwise tries up to `retries` more ports of porter's own.
pub(super) fn explicit(
    flows: &[Flow],
    from: usize,
    remote: SocketAddr,
    options: &SocketOptions,
    started: Instant,
    retries: u32,
) -> Explicit {
    let registry = flows[0].registry();
    let has_window = registry.capacity().kernel_window().is_some();
    let mut retries_left = retries;
    for (index, flow) in flows.iter().enumerate().skip(from) {
        while let Some(port) = flow.allocate_port() {
            match try_port(Lease::new(flow.clone(), port), index, remote, options, started) {
                Step::Started(attempt) => return Explicit::Started(attempt),
                Step::Failed(e) => return Explicit::Failed(e),
                Step::Collision(e) => {
                    flow.scatter();
                    if retries_left == 0 || (has_window && !flow.kernel_window_full()) {
                        return Explicit::Collided(e);
                    }
                    registry.stats.retry(e.errno());
                    retries_left -= 1;
                }
            }
        }
    }
    Explicit::Empty
}
