//! A connect that was issued ([`Attempt`]), what it becomes ([`Connected`]), and how its
//! outcome is settled: counted, and on failure its port given back.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use socket2::Socket;

use crate::error::{Error, Result};
use crate::lease::Lease;

/// A socket whose `connect` has been issued, holding its port.
#[derive(Debug)]
pub struct Attempt {
    pub(super) socket: Socket,
    pub(super) lease: Lease,
    pub(super) flow_index: usize,
    pub(super) local: SocketAddr,
    pub(super) remote: SocketAddr,
    pub(super) started: Instant,
    pub(super) in_progress: bool,
    pub(super) kernel_chosen: bool,
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

/// Whether the connect of a writable socket succeeded: `Ok(false)` while it is still in
/// progress, the connect's error (`SO_ERROR`) if it failed.
pub(super) fn is_connected(socket: &Socket) -> io::Result<bool> {
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
    /// The handshake is still in flight: `finish` waits for it.
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

    pub(super) fn split(self) -> (Socket, Outcome) {
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
pub(super) struct Outcome {
    lease: Lease,
    flow_index: usize,
    pub(super) local: SocketAddr,
    pub(super) remote: SocketAddr,
    started: Instant,
    kernel_chosen: bool,
}

impl Outcome {
    /// Counts the outcome; on failure gives the port back into aging (a SYN has left),
    /// but at once when the peer refused: its RST leaves no TIME_WAIT on either side, so
    /// a client retrying a server that is down does not burn a port per attempt.
    pub(super) fn settle(self, result: Result<Socket>) -> Result<Connected> {
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
