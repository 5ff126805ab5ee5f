//! Bind-before-connect on leased ports.
//!
//! [`start`] runs on the caller's thread and never waits on the network: it takes a port
//! and a non-blocking, close-on-exec socket with `SO_REUSEADDR` (from the [`reserve`](crate::reserve),
//! made ahead on a helper thread, or made there and then), binds it and calls
//! `connect`, trying other ports on `EADDRINUSE` / `EADDRNOTAVAIL` as the retry policy
//! allows, then letting the kernel choose if the configuration says so. [`finish`] waits
//! for the socket to become writable (tokio's reactor), reads `SO_ERROR`, and applies the
//! timeout and cancellation. Whatever fails, the port goes back: into aging once a SYN
//! may have left, at once otherwise.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use socket2::{Domain, SockAddr, Socket};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
pub use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::pool::Marked;
use crate::registry::{Flow, Lease};
use crate::reserve::Reserve;
use crate::sys;

/// A socket whose `connect` has been issued, holding its port.
#[derive(Debug)]
pub struct Attempt {
    socket: Socket,
    lease: Lease,
    local: SocketAddr,
    remote: SocketAddr,
    started: Instant,
    in_progress: bool,
    kernel_chosen: bool,
}

/// A connected socket and the lease of its port.
#[derive(Debug)]
pub struct Connected {
    /// The socket: connected, non-blocking, close-on-exec.
    pub socket: Socket,
    /// Its port. Release it when the socket closes (aging if this side closed first).
    pub lease: Lease,
    /// The local address.
    pub local: SocketAddr,
    /// The remote address.
    pub remote: SocketAddr,
    /// Whether the kernel chose the port (the fallback).
    pub kernel_chosen: bool,
}

impl Attempt {
    /// The local address bound.
    pub fn local(&self) -> SocketAddr {
        self.local
    }
}

/// A socket for `remote`'s family, from the process's reserve of ready ones.
fn new_socket(remote: SocketAddr) -> io::Result<Socket> {
    Reserve::global().take(Domain::for_address(remote))
}

fn is_collision(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EADDRINUSE) | Some(libc::EADDRNOTAVAIL))
}

/// `connect` on a non-blocking socket: `Ok(true)` while in progress, `Ok(false)` if done.
fn issue_connect(socket: &Socket, remote: SocketAddr) -> io::Result<bool> {
    match socket.connect(&SockAddr::from(remote)) {
        Ok(()) => Ok(false),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(true),
        Err(e) => Err(e),
    }
}

enum Step {
    Started(Attempt),
    Collision(Error),
    Failed(Error),
}

fn try_port(lease: Lease, remote: SocketAddr, started: Instant) -> Step {
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
    if let Err(e) = socket.bind(&SockAddr::from(local)) {
        let collision = is_collision(&e);
        // Nothing left the host: a failed bind only ages the port when it collided.
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
            local,
            remote,
            started,
            in_progress,
            kernel_chosen: false,
        }),
        Err(e) => {
            let collision = is_collision(&e);
            let syn_left = e.raw_os_error() == Some(libc::ECONNREFUSED);
            lease.release(collision || syn_left);
            let err = sys_err(e, "connect", true);
            if collision {
                Step::Collision(err)
            } else {
                Step::Failed(err)
            }
        }
    }
}

fn kernel_fallback(flow: &Flow, remote: SocketAddr, started: Instant) -> Result<Attempt> {
    let local_ip = flow.key().local;
    let registry = flow.registry();
    let exhausted = |e: io::Error| flow.exhausted(Some(e));
    // No port of ours is bound here: the errors name none.
    let sys_err = |source, syscall| Error::Sys {
        source,
        syscall,
        local: None,
        remote,
    };
    // A collision means the kernel found no port either.
    let collided_or = |e: io::Error, syscall| {
        if is_collision(&e) {
            exhausted(e)
        } else {
            sys_err(e, syscall)
        }
    };
    let socket = new_socket(remote).map_err(|e| sys_err(e, "socket"))?;
    let unbound = SocketAddr::new(local_ip, 0);
    sys::set_bind_address_no_port(&socket, true).map_err(|e| sys_err(e, "setsockopt"))?;
    socket
        .bind(&SockAddr::from(unbound))
        .map_err(|e| collided_or(e, "bind"))?;
    let in_progress = issue_connect(&socket, remote).map_err(|e| collided_or(e, "connect"))?;
    let local = socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .ok_or_else(|| sys_err(io::Error::last_os_error(), "getsockname"))?;
    match flow.mark_in_use(local.port()) {
        Marked::AlreadyInUse => Err(exhausted(io::Error::from_raw_os_error(libc::EADDRINUSE))),
        Marked::Free | Marked::WasAging => {
            registry
                .stats
                .kernel_fallbacks
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let lease = Lease::new(flow.clone(), local.port());
            Ok(Attempt {
                socket,
                lease,
                local,
                remote,
                started,
                in_progress,
                kernel_chosen: true,
            })
        }
    }
}

/// Issues the connect to `remote` from a port of the first of `flows` that has one
/// (each flow a local address for this destination), with the registry's retry policy
/// and kernel fallback. Never blocks. `flows` must be non-empty and share one registry
/// and one remote address.
pub fn start(flows: &[Flow], remote: SocketAddr) -> Result<Attempt> {
    let started = Instant::now();
    let Some(first) = flows.first() else {
        return Err(Error::Io {
            syscall: "connect",
            source: io::Error::from_raw_os_error(libc::EINVAL),
        });
    };
    let registry = first.registry();
    let config = *registry.config();
    let result = match search(flows, remote, started, config.retry_attempts) {
        Ok(attempt) => Ok(attempt),
        Err(Some(failed)) => Err(failed),
        Err(None) if config.kernel_fallback => kernel_fallback(first, remote, started),
        Err(None) => Err(first.exhausted(None)),
    };
    if let Err(e) = &result {
        registry.stats.connect_error(e.code());
    }
    result
}

/// Tries ports of each flow in turn. `Err(None)`: every pool is empty, or the retries ran
/// out and the fallback is on; `Err(Some(e))`: give `e` to the caller.
fn search(flows: &[Flow], remote: SocketAddr, started: Instant, retries: u32) -> Result<Attempt, Option<Error>> {
    let registry = flows[0].registry();
    let mut retries_left = retries;
    for flow in flows {
        while let Some(port) = flow.allocate_port() {
            match try_port(Lease::new(flow.clone(), port), remote, started) {
                Step::Started(attempt) => return Ok(attempt),
                Step::Failed(e) => return Err(Some(e)),
                Step::Collision(e) if retries_left == 0 => {
                    return Err(if registry.config().kernel_fallback {
                        None
                    } else {
                        Some(e)
                    });
                }
                Step::Collision(e) => {
                    registry.stats.retry(e.errno());
                    retries_left -= 1;
                }
            }
        }
    }
    Err(None)
}

/// Whether the connect of a writable socket succeeded: `Ok(false)` while it is still in
/// progress, the connect's error (`SO_ERROR`) if it failed.
fn is_connected(socket: &Socket) -> io::Result<bool> {
    if let Some(e) = socket.take_error()? {
        return Err(e);
    }
    match socket.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Where an attempt stands, seen without waiting.
#[derive(Debug)]
pub enum Progress {
    /// The connect is over: connected, or failed (and the port released).
    Done(Result<Connected>),
    /// The handshake is still in flight: [`finish`] waits for it.
    Pending(Attempt),
}

impl Attempt {
    /// Finishes the attempt at once if its connect is already over, as it usually is on
    /// loopback and fast links by the time `connect()` returns; never waits. This saves
    /// the trip through the reactor for those connects.
    pub fn poll_now(self) -> Progress {
        // One system call: a peer name means the handshake is over and succeeded. Anything
        // else (still in progress, or failed) is left to `finish`, which reads SO_ERROR.
        if self.in_progress && self.socket.peer_addr().is_err() {
            return Progress::Pending(self);
        }
        let (socket, outcome) = self.split();
        Progress::Done(outcome.settle(Ok(socket)))
    }

    fn split(self) -> (Socket, Outcome) {
        let Attempt {
            socket,
            lease,
            local,
            remote,
            started,
            in_progress: _,
            kernel_chosen,
        } = self;
        (
            socket,
            Outcome {
                lease,
                local,
                remote,
                started,
                kernel_chosen,
            },
        )
    }
}

/// Everything of an attempt but its socket: what settling its outcome needs.
struct Outcome {
    lease: Lease,
    local: SocketAddr,
    remote: SocketAddr,
    started: Instant,
    kernel_chosen: bool,
}

impl Outcome {
    /// Counts the outcome; on failure gives the port back into aging (a SYN has left).
    fn settle(self, result: Result<Socket>) -> Result<Connected> {
        let Outcome {
            lease,
            local,
            remote,
            started,
            kernel_chosen,
        } = self;
        let registry = lease.flow().registry().clone();
        match result {
            Ok(socket) => {
                registry.stats.connect_duration(started.elapsed());
                Ok(Connected {
                    socket,
                    lease,
                    local,
                    remote,
                    kernel_chosen,
                })
            }
            Err(e) => {
                registry.stats.connect_error(e.code());
                lease.release(true);
                Err(e)
            }
        }
    }
}

/// Waits for the connect of `attempt` to finish, for at most `timeout`, unless `cancel`
/// fires first. Must run inside a tokio runtime. On failure the port goes back into aging
/// (a SYN has left) and the socket is closed.
pub async fn finish(
    attempt: Attempt,
    timeout: Option<Duration>,
    cancel: Option<CancellationToken>,
) -> Result<Connected> {
    let in_progress = attempt.in_progress;
    let (socket, outcome) = attempt.split();
    let result = if in_progress {
        wait_connected(socket, outcome.local, outcome.remote, timeout, cancel).await
    } else {
        Ok(socket)
    };
    outcome.settle(result)
}
async fn wait_connected(
    socket: Socket,
    local: SocketAddr,
    remote: SocketAddr,
    timeout: Option<Duration>,
    cancel: Option<CancellationToken>,
) -> Result<Socket> {
    let sys_err = |source| Error::Sys {
        source,
        syscall: "connect",
        local: Some(local),
        remote,
    };
    // SAFETY: the socket owns its descriptor, which stays open and unchanged until
    // `into_inner` gives the socket back (or the AsyncFd drops it).
    let fd = unsafe { AsyncFd::register_with_interest(socket, Interest::WRITABLE) }
        .map_err(|e| sys_err(e.into_parts().1))?;
    let writable = async {
        loop {
            let mut guard = fd.writable().await?;
            if is_connected(fd.get_ref())? {
                return Ok(());
            }
            guard.clear_ready();
        }
    };
    let expiry = async {
        match timeout {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let cancelled = async {
        match &cancel {
            Some(token) => token.cancelled().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        done = writable => done.map_err(sys_err)?,
        () = cancelled => return Err(Error::Cancelled),
        () = expiry => return Err(Error::TimedOut { local: Some(local), remote }),
    }
    Ok(fd.into_inner())
}

/// [`start`] then [`finish`].
pub async fn connect(
    flows: &[Flow],
    remote: SocketAddr,
    timeout: Option<Duration>,
    cancel: Option<CancellationToken>,
) -> Result<Connected> {
    let attempt = start(flows, remote)?;
    finish(attempt, timeout, cancel).await
}
