//! The one error type of the core, with a stable `code()` for every kind.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};

use crate::range::PortRange;
use crate::zones::Mode;

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
    /// The process-wide registry exists already with another configuration.
    GlobalConfigured,
    /// The mode cannot keep its promise on this host (see [`crate::Zones::check`]).
    ModeUnsupported {
        /// The mode asked for.
        mode: Mode,
        /// Why, and what to do instead.
        reason: String,
    },
    /// No port is free for the destination and the fallback is off or failed too.
    Exhausted {
        /// The local address whose pool is empty.
        local: IpAddr,
        /// The destination.
        remote: SocketAddr,
        /// The range of the pool.
        range: PortRange,
        /// The part of the range the kernel picks in, if any (see [`crate::Zones`]).
        kernel_window: Option<PortRange>,
        /// Why the kernel fallback failed, when it was tried.
        fallback: Option<io::Error>,
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
            Error::GlobalConfigured => "ERR_PORTER_DEFAULT_CONFIGURED",
            Error::ModeUnsupported { .. } => "ERR_PORTER_MODE_UNSUPPORTED",
            Error::Exhausted { .. } => "ERR_PORTER_EXHAUSTED",
            Error::Sys { source, .. } | Error::Io { source, .. } => errno_name(source.raw_os_error()),
            Error::TimedOut { .. } => "ETIMEDOUT",
            Error::Cancelled => "ABORT_ERR",
        }
    }

    /// The system's errno, for system errors (and `ETIMEDOUT` for timeouts).
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Sys { source, .. } | Error::Io { source, .. } => source.raw_os_error(),
            Error::TimedOut { .. } => Some(libc::ETIMEDOUT),
            _ => None,
        }
    }

    /// The system call that failed, for system errors.
    pub fn syscall(&self) -> Option<&'static str> {
        match self {
            Error::Sys { syscall, .. } | Error::Io { syscall, .. } => Some(syscall),
            Error::TimedOut { .. } => Some("connect"),
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
            Error::Sys { remote, .. } | Error::TimedOut { remote, .. } | Error::Exhausted { remote, .. } => {
                Some(*remote)
            }
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
            Error::GlobalConfigured => {
                write!(
                    f,
                    "the default porter instance is already in use with another configuration"
                )
            }
            Error::ModeUnsupported { mode, reason } => {
                write!(f, "mode '{}' cannot be used on this host: {reason}", mode.name())
            }
            Error::Exhausted {
                local,
                remote,
                range,
                kernel_window,
                fallback,
            } => {
                write!(
                    f,
                    "no local port free for {remote} from {local} in range {}-{}",
                    range.first(),
                    range.last()
                )?;
                if let Some(w) = kernel_window {
                    write!(
                        f,
                        " (the kernel found none free in its part of it, {}-{}, either)",
                        w.first(),
                        w.last()
                    )?;
                }
                match fallback {
                    Some(e) => write!(f, "; the kernel's choice failed too: {e}"),
                    None => Ok(()),
                }
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
            Error::Sys { source, .. } | Error::Io { source, .. } => Some(source),
            Error::Exhausted { fallback: Some(e), .. } => Some(e),
            _ => None,
        }
    }
}

/// The symbolic name of an errno, as Node spells it (`ECONNREFUSED`, ...).
pub fn errno_name(errno: Option<i32>) -> &'static str {
    match errno {
        Some(libc::EADDRINUSE) => "EADDRINUSE",
        Some(libc::EADDRNOTAVAIL) => "EADDRNOTAVAIL",
        Some(libc::ECONNREFUSED) => "ECONNREFUSED",
        Some(libc::ECONNRESET) => "ECONNRESET",
        Some(libc::ECONNABORTED) => "ECONNABORTED",
        Some(libc::ETIMEDOUT) => "ETIMEDOUT",
        Some(libc::ENETUNREACH) => "ENETUNREACH",
        Some(libc::EHOSTUNREACH) => "EHOSTUNREACH",
        Some(libc::ENETDOWN) => "ENETDOWN",
        Some(libc::EHOSTDOWN) => "EHOSTDOWN",
        Some(libc::EACCES) => "EACCES",
        Some(libc::EPERM) => "EPERM",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::EAFNOSUPPORT) => "EAFNOSUPPORT",
        Some(libc::EMFILE) => "EMFILE",
        Some(libc::ENFILE) => "ENFILE",
        Some(libc::ENOBUFS) => "ENOBUFS",
        Some(libc::ENOMEM) => "ENOMEM",
        Some(libc::EPIPE) => "EPIPE",
        Some(libc::EAGAIN) => "EAGAIN",
        Some(libc::EINTR) => "EINTR",
        Some(libc::EBADF) => "EBADF",
        Some(libc::EPROTO) => "EPROTO",
        Some(libc::EISCONN) => "EISCONN",
        _ => "EIO",
    }
}
