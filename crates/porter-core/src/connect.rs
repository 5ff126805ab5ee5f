//! Bind-before-connect on leased ports, and connects whose port the kernel picks.
//!
//! [`start`] runs on the caller's thread and never waits on the network: it takes a port
//! and a non-blocking, close-on-exec socket with `SO_REUSEADDR` (from the [`reserve`](crate::reserve),
//! made ahead on a helper thread, or made there and then), sets the
//! [`SocketOptions`] of the registry and of the connect on it, binds it and calls
//! `connect`, trying other ports on `EADDRINUSE` / `EADDRNOTAVAIL` as the retry policy
//! allows; then it lets the kernel pick within porter's range where the
//! [`Zones`](crate::Zones) say so, and anywhere in its ephemeral range as the fallback. [`finish`] waits
//! for the socket to become writable (tokio's reactor), reads `SO_ERROR`, and applies the
//! timeout and cancellation. Whatever fails, the port goes back: into aging once a SYN
//! may have left, at once otherwise (and when the peer refused: no state is left).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use socket2::{Domain, SockAddr, Socket};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
pub use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::flow::{Flow, Lease};
use crate::range::PortRange;
use crate::reserve::Reserve;
use crate::sockopts::SocketOptions;
use crate::sys;

/// A socket whose `connect` has been issued, holding its port.
#[derive(Debug)]
pub struct Attempt {
    socket: Socket,
    lease: Lease,
    flow_index: usize,
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
    /// The position of the lease's flow among the flows the connect was given.
    pub flow_index: usize,
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

    /// The position of its flow among the flows the connect was given.
    pub fn flow_index(&self) -> usize {
        self.flow_index
    }
}

/// A socket for `remote`'s family, from the process's reserve of ready ones.
fn new_socket(remote: SocketAddr) -> io::Result<Socket> {
    Reserve::global().take(Domain::for_address(remote))
}

/// Sets `options` on a socket for `remote` before bind and connect; a refusal is the
/// connect's error, naming the option.
fn set_options(socket: &Socket, options: &SocketOptions, remote: SocketAddr) -> Result<()> {
    options
        .apply(socket, remote.is_ipv6())
        .map_err(|(option, source)| Error::SocketOption { option, source, remote })
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

/// How a connect through the kernel's choice went.
enum KernelStep {
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
fn kernel_choice(
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
        if let Err(e) = sys::set_local_port_range(&socket, window) {
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
    // Bad values are the caller's error, not a failed connect: not counted.
    let options = effective_options(registry.config(), options)?;
    let result = choose(flows, from, first, remote, &options, started);
    if let Err(e) = &result {
        registry.stats.connect_error(e.code());
    }
    result
}

/// The registry's socket options, with a connect's own over them (checked).
fn effective_options(config: &Config, options: Option<&SocketOptions>) -> Result<SocketOptions> {
    match options {
        None => Ok(config.socket_options),
        Some(options) => {
            options.check()?;
            Ok(config.socket_options.overlay(options))
        }
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
    let zones = registry.zones();
    let kernel_window = zones.kernel_window();
    let fallback = config.kernel_fallback && zones.fallback_differs();
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

/// How the ports porter binds itself went.
enum Explicit {
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
fn explicit(
    flows: &[Flow],
    from: usize,
    remote: SocketAddr,
    options: &SocketOptions,
    started: Instant,
    retries: u32,
) -> Explicit {
    let registry = flows[0].registry();
    let has_window = registry.zones().kernel_window().is_some();
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
            flow_index,
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
                flow_index,
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
    flow_index: usize,
    local: SocketAddr,
    remote: SocketAddr,
    started: Instant,
    kernel_chosen: bool,
}

impl Outcome {
    /// Counts the outcome; on failure gives the port back into aging (a SYN has left),
    /// but at once when the peer refused: its RST leaves no TIME_WAIT on either side, so
    /// a client retrying a server that is down does not burn a port per attempt.
    fn settle(self, result: Result<Socket>) -> Result<Connected> {
        let Outcome {
            lease,
            flow_index,
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
                    flow_index,
                    local,
                    remote,
                    kernel_chosen,
                })
            }
            Err(e) => {
                registry.stats.connect_error(e.code());
                lease.release(!refused(&e));
                Err(e)
            }
        }
    }
}

/// Whether the peer refused the connect (answered the SYN with a RST).
fn refused(e: &Error) -> bool {
    matches!(e, Error::Sys { source, syscall: "connect", .. } if source.raw_os_error() == Some(libc::ECONNREFUSED))
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
