//! The one error type of the core, with a stable `code()` for every kind.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};

use crate::mode::Mode;
use crate::range::PortRange;

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
    /// A socket option outside what the kernel takes (see [`crate::SocketOptions::check`]).
    InvalidSocketOption {
        /// The option, as JavaScript names it (`keepAlive.idleMs`, ...).
        option: &'static str,
        /// What it must be.
        reason: &'static str,
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
            Error::FamilyMismatch { .. } | Error::UnknownLease { .. } | Error::InvalidSocketOption { .. } => {
                "ERR_INVALID_ARG_VALUE"
            }
            Error::GlobalConfigured => "ERR_PORTER_DEFAULT_CONFIGURED",
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
            Error::GlobalConfigured => {
                write!(
                    f,
                    "the default porter instance is already in use with another configuration"
                )
            }
            Error::FamilyMismatch { local, remote } => {
                write!(f, "local address {local} is not of the family of {}", remote.ip())
            }
            Error::UnknownLease { id } => write!(f, "no lease {id} on this route"),
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
            Error::InvalidSocketOption { option, reason } => write!(f, "socketOptions.{option} {reason}"),
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

/// The symbolic name of an errno on Linux (`ECONNREFUSED`, ...), for the core's messages
/// and codes. JavaScript names errnos with Node's own `util.getSystemErrorName`.
pub fn errno_name(errno: Option<i32>) -> &'static str {
    let Some(errno) = errno else {
        return "EUNKNOWN";
    };
    match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::E2BIG => "E2BIG",
        libc::ENOEXEC => "ENOEXEC",
        libc::EBADF => "EBADF",
        libc::ECHILD => "ECHILD",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::ENOTBLK => "ENOTBLK",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENODEV => "ENODEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::ENFILE => "ENFILE",
        libc::EMFILE => "EMFILE",
        libc::ENOTTY => "ENOTTY",
        libc::ETXTBSY => "ETXTBSY",
        libc::EFBIG => "EFBIG",
        libc::ENOSPC => "ENOSPC",
        libc::ESPIPE => "ESPIPE",
        libc::EROFS => "EROFS",
        libc::EMLINK => "EMLINK",
        libc::EPIPE => "EPIPE",
        libc::EDOM => "EDOM",
        libc::ERANGE => "ERANGE",
        libc::EDEADLK => "EDEADLK",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOLCK => "ENOLCK",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ELOOP => "ELOOP",
        libc::ENOMSG => "ENOMSG",
        libc::EIDRM => "EIDRM",
        libc::ECHRNG => "ECHRNG",
        libc::EL2NSYNC => "EL2NSYNC",
        libc::EL3HLT => "EL3HLT",
        libc::EL3RST => "EL3RST",
        libc::ELNRNG => "ELNRNG",
        libc::EUNATCH => "EUNATCH",
        libc::ENOCSI => "ENOCSI",
        libc::EL2HLT => "EL2HLT",
        libc::EBADE => "EBADE",
        libc::EBADR => "EBADR",
        libc::EXFULL => "EXFULL",
        libc::ENOANO => "ENOANO",
        libc::EBADRQC => "EBADRQC",
        libc::EBADSLT => "EBADSLT",
        libc::EBFONT => "EBFONT",
        libc::ENOSTR => "ENOSTR",
        libc::ENODATA => "ENODATA",
        libc::ETIME => "ETIME",
        libc::ENOSR => "ENOSR",
        libc::ENONET => "ENONET",
        libc::ENOPKG => "ENOPKG",
        libc::EREMOTE => "EREMOTE",
        libc::ENOLINK => "ENOLINK",
        libc::EADV => "EADV",
        libc::ESRMNT => "ESRMNT",
        libc::ECOMM => "ECOMM",
        libc::EPROTO => "EPROTO",
        libc::EMULTIHOP => "EMULTIHOP",
        libc::EDOTDOT => "EDOTDOT",
        libc::EBADMSG => "EBADMSG",
        libc::EOVERFLOW => "EOVERFLOW",
        libc::ENOTUNIQ => "ENOTUNIQ",
        libc::EBADFD => "EBADFD",
        libc::EREMCHG => "EREMCHG",
        libc::ELIBACC => "ELIBACC",
        libc::ELIBBAD => "ELIBBAD",
        libc::ELIBSCN => "ELIBSCN",
        libc::ELIBMAX => "ELIBMAX",
        libc::ELIBEXEC => "ELIBEXEC",
        libc::EILSEQ => "EILSEQ",
        libc::ERESTART => "ERESTART",
        libc::ESTRPIPE => "ESTRPIPE",
        libc::EUSERS => "EUSERS",
        libc::ENOTSOCK => "ENOTSOCK",
        libc::EDESTADDRREQ => "EDESTADDRREQ",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::EPROTOTYPE => "EPROTOTYPE",
        libc::ENOPROTOOPT => "ENOPROTOOPT",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::ESOCKTNOSUPPORT => "ESOCKTNOSUPPORT",
        libc::ENOTSUP => "ENOTSUP",
        libc::EPFNOSUPPORT => "EPFNOSUPPORT",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::ENETDOWN => "ENETDOWN",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ENETRESET => "ENETRESET",
        libc::ECONNABORTED => "ECONNABORTED",
        libc::ECONNRESET => "ECONNRESET",
        libc::ENOBUFS => "ENOBUFS",
        libc::EISCONN => "EISCONN",
        libc::ENOTCONN => "ENOTCONN",
        libc::ESHUTDOWN => "ESHUTDOWN",
        libc::ETOOMANYREFS => "ETOOMANYREFS",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::EHOSTDOWN => "EHOSTDOWN",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::EALREADY => "EALREADY",
        libc::EINPROGRESS => "EINPROGRESS",
        libc::ESTALE => "ESTALE",
        libc::EUCLEAN => "EUCLEAN",
        libc::ENOTNAM => "ENOTNAM",
        libc::ENAVAIL => "ENAVAIL",
        libc::EISNAM => "EISNAM",
        libc::EREMOTEIO => "EREMOTEIO",
        libc::EDQUOT => "EDQUOT",
        libc::ENOMEDIUM => "ENOMEDIUM",
        libc::EMEDIUMTYPE => "EMEDIUMTYPE",
        libc::ECANCELED => "ECANCELED",
        libc::ENOKEY => "ENOKEY",
        libc::EKEYEXPIRED => "EKEYEXPIRED",
        libc::EKEYREVOKED => "EKEYREVOKED",
        libc::EKEYREJECTED => "EKEYREJECTED",
        libc::EOWNERDEAD => "EOWNERDEAD",
        libc::ENOTRECOVERABLE => "ENOTRECOVERABLE",
        libc::ERFKILL => "ERFKILL",
        _ => "EUNKNOWN",
    }
}
