//! The one error type of the core, with a stable `code()` for every kind.
//!
//! Its fields are plain values (ports as numbers, a mode by its name), so that this file
//! depends on nothing else of the crate and every other file may use it.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};

use crate::errno::errno_name;

/// Result with the core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in porter's core.
#[derive(Debug)]
pub enum Error {
    /// A port range that is empty or starts at 0.
    InvalidRange {
        /// First port asked for.
        first: u16,
        /// Last port asked for.
        last: u16,
    },
    /// A slice of a range that does not exist.
    InvalidPartition {
        /// Slice asked for.
        index: u32,
        /// Number of slices.
        count: u32,
    },
    /// The default registry exists already with another configuration.
    DefaultConfigured,
    /// A source address of another family than the destination's.
    FamilyMismatch {
        /// The source address.
        local: IpAddr,
        /// The destination.
        remote: SocketAddr,
    },
    /// A lease id that names no flow of its route.
    UnknownLease {
        /// The id, as [`crate::LeaseId::to_bits`] gives it.
        id: u64,
    },
    /// A route id that names no route of its table (see [`crate::RouteTable`]).
    UnknownRoute {
        /// The id, as [`crate::RouteId::to_bits`] gives it.
        id: u64,
    },
    /// A route that was closed, asked for a new lease or connect.
    RouteClosed,
    /// A route table that holds as many routes as its ids can name.
    TooManyRoutes,
    /// The mode cannot keep its promise on this host (see [`crate::Capacity::check`]).
    ModeUnsupported {
        /// The mode asked for, by its name (`kernel`).
        mode: &'static str,
        /// Why, and what to do instead.
        reason: String,
    },
    /// No port is free for the destination and the fallback is off or failed too.
    Exhausted {
        /// The local address whose pool is empty.
        local: IpAddr,
        /// The destination.
        remote: SocketAddr,
        /// The range of the pool, first and last port.
        range: (u16, u16),
        /// The part of the range the kernel picks in, if any (see [`crate::Capacity`]).
        kernel_window: Option<(u16, u16)>,
        /// Why the kernel fallback failed, when it was tried.
        fallback: Option<io::Error>,
    },
    /// The kernel refused a socket option (`setsockopt`), before any bind or connect.
    SocketOption {
        /// The option, as the kernel names it (`SO_MARK`, ...).
        option: &'static str,
        /// The system's error.
        source: io::Error,
        /// The destination.
        remote: SocketAddr,
    },
    /// A system call failed.
    Sys {
        /// The system's error.
        source: io::Error,
        /// `socket`, `bind`, `connect` or `getsockname`.
        syscall: &'static str,
        /// The local address, when one was bound.
        local: Option<SocketAddr>,
        /// The destination.
        remote: SocketAddr,
    },
    /// The connect did not finish in time.
    TimedOut {
        /// The local address bound.
        local: Option<SocketAddr>,
        /// The destination.
        remote: SocketAddr,
    },
    /// The connect was cancelled.
    Cancelled,
    /// An I/O error outside a connect.
    Io {
        /// The system call.
        syscall: &'static str,
        /// The system's error.
        source: io::Error,
    },
}

impl Error {
    /// The stable code users match on: porter's own `ERR_PORTER_*`, Node's codes for bad
    /// input, the system's `E*` name for system errors.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidRange { .. } | Error::InvalidPartition { .. } => "ERR_OUT_OF_RANGE",
            Error::FamilyMismatch { .. } | Error::UnknownLease { .. } | Error::UnknownRoute { .. } => {
                "ERR_INVALID_ARG_VALUE"
            }
            Error::RouteClosed => "ERR_PORTER_CLOSED",
            Error::TooManyRoutes => "ERR_PORTER_INTERNAL",
            Error::DefaultConfigured => "ERR_PORTER_DEFAULT_CONFIGURED",
            Error::ModeUnsupported { .. } => "ERR_PORTER_MODE_UNSUPPORTED",
            Error::Exhausted { .. } => "ERR_PORTER_EXHAUSTED",
            Error::Sys { source, .. } | Error::Io { source, .. } | Error::SocketOption { source, .. } => {
                errno_name(source.raw_os_error())
            }
            Error::TimedOut { .. } => "ETIMEDOUT",
            Error::Cancelled => "ABORT_ERR",
        }
    }

    /// The system's errno, for system errors (and `ETIMEDOUT` for timeouts).
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Sys { source, .. } | Error::Io { source, .. } | Error::SocketOption { source, .. } => {
                source.raw_os_error()
            }
            Error::TimedOut { .. } => Some(libc::ETIMEDOUT),
            _ => None,
        }
    }

    /// The system call that failed, for system errors.
    pub fn syscall(&self) -> Option<&'static str> {
        match self {
            Error::Sys { syscall, .. } | Error::Io { syscall, .. } => Some(syscall),
            Error::SocketOption { .. } => Some("setsockopt"),
            Error::TimedOut { .. } => Some("connect"),
            _ => None,
        }
    }

    /// The socket option the kernel refused, for [`Error::SocketOption`].
    pub fn option(&self) -> Option<&'static str> {
        match self {
            Error::SocketOption { option, .. } => Some(option),
            _ => None,
        }
    }

    /// The local address of the socket, where one was bound.
    pub fn local(&self) -> Option<SocketAddr> {
        match self {
            Error::Sys { local, .. } | Error::TimedOut { local, .. } => *local,
            _ => None,
        }
    }

    /// The destination, for connect errors.
    pub fn remote(&self) -> Option<SocketAddr> {
        match self {
            Error::Sys { remote, .. }
            | Error::SocketOption { remote, .. }
            | Error::TimedOut { remote, .. }
            | Error::Exhausted { remote, .. }
            | Error::FamilyMismatch { remote, .. } => Some(*remote),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidRange { first, last } => {
                write!(f, "invalid port range {first}-{last}: need 1 <= first <= last <= 65535")
            }
            Error::InvalidPartition { index, count } => {
                write!(f, "invalid range partition {index} of {count}")
            }
            Error::DefaultConfigured => {
                write!(
                    f,
                    "the default porter instance is already in use with another configuration"
                )
            }
            Error::FamilyMismatch { local, remote } => {
                write!(f, "local address {local} is not of the family of {}", remote.ip())
            }
            Error::UnknownLease { id } => write!(f, "no lease {id} on this route"),
            Error::UnknownRoute { id } => write!(f, "unknown route {id}"),
            Error::RouteClosed => write!(f, "the route was closed"),
            Error::TooManyRoutes => write!(f, "more than 2^24 routes open in one table"),
            Error::ModeUnsupported { mode, reason } => {
                write!(f, "mode '{mode}' cannot be used on this host: {reason}")
            }
            Error::Exhausted {
                local,
                remote,
                range,
                kernel_window,
                fallback,
            } => {
                let (first, last) = range;
                write!(
                    f,
                    "no local port free for {remote} from {local} in range {first}-{last}"
                )?;
                if let Some((first, last)) = kernel_window {
                    write!(
                        f,
                        " (the kernel found none free in its part of it, {first}-{last}, either)"
                    )?;
                }
                match fallback {
                    Some(e) => write!(f, "; the kernel's choice failed too: {e}"),
                    None => Ok(()),
                }
            }
            Error::SocketOption { option, source, remote } => {
                write!(f, "setsockopt {option} {} {remote}: {source}", self.code())
            }
            Error::Sys {
                source,
                syscall,
                local,
                remote,
            } => {
                write!(f, "{syscall} {} {remote}", self.code())?;
                if let Some(local) = local {
                    write!(f, " - Local ({local})")?;
                }
                write!(f, ": {source}")
            }
            Error::TimedOut { remote, .. } => write!(f, "connect ETIMEDOUT {remote}"),
            Error::Cancelled => write!(f, "The operation was aborted"),
            Error::Io { source, syscall } => write!(f, "{syscall} {}: {source}", self.code()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Sys { source, .. } | Error::Io { source, .. } | Error::SocketOption { source, .. } => Some(source),
            Error::Exhausted { fallback: Some(e), .. } => Some(e),
            _ => None,
        }
    }
}
