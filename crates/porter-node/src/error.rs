//! The one error channel of the binding: every error thrown to JavaScript is a napi error
//! whose `code` property is the core error's stable code (`ERR_PORTER_*`, Node's codes
//! for bad input, the system's `E*` name). Connect failures travel as data instead
//! ([`ConnectError`]), so that they reach JavaScript without a throw.

use napi_derive::napi;

/// What a binding function returns: thrown to JavaScript with `code` set.
pub type Result<T> = napi::Result<T, String>;

/// A thrown error with `code`.
pub fn coded(code: &str, message: impl Into<String>) -> napi::Error<String> {
    napi::Error::new(code.to_owned(), message.into())
}

/// A core error, thrown with its code.
pub fn from_core(e: porter_core::Error) -> napi::Error<String> {
    coded(e.code(), e.to_string())
}

/// A bad argument that reached the binding (the TypeScript layer validates first).
pub fn invalid_arg(message: impl Into<String>) -> napi::Error<String> {
    coded("ERR_INVALID_ARG_VALUE", message)
}

/// A porter-core error as data, in the shape Node gives system errors. For system errors
/// `errno` is set and JavaScript names it (`util.getSystemErrorName`); `code` is the
/// core's name for it.
#[napi(object)]
#[derive(Debug)]
pub struct ConnectError {
    pub code: String,
    pub message: String,
    pub errno: Option<i32>,
    pub syscall: Option<String>,
    pub address: Option<String>,
    pub port: Option<u32>,
    pub local_address: Option<String>,
    pub local_port: Option<u32>,
    /// The socket option the kernel refused (`SO_MARK`, ...), for `syscall: 'setsockopt'`.
    pub option: Option<String>,
}

impl From<&porter_core::Error> for ConnectError {
    fn from(e: &porter_core::Error) -> Self {
        let remote = e.remote();
        let local = e.local();
        ConnectError {
            code: e.code().to_owned(),
            message: e.to_string(),
            errno: e.errno(),
            syscall: e.syscall().map(str::to_owned),
            address: remote.map(|a| a.ip().to_string()),
            port: remote.map(|a| a.port().into()),
            local_address: local.map(|a| a.ip().to_string()),
            local_port: local.map(|a| a.port().into()),
            option: e.option().map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_keep_their_code_and_shape() {
        let remote: std::net::SocketAddr = "127.0.0.1:80".parse().unwrap();
        let e = porter_core::Error::Sys {
            source: std::io::Error::from_raw_os_error(libc::ECONNREFUSED),
            syscall: "connect",
            local: Some("0.0.0.0:2000".parse().unwrap()),
            remote,
        };
        let data = ConnectError::from(&e);
        assert_eq!(data.code, "ECONNREFUSED");
        assert_eq!(data.errno, Some(libc::ECONNREFUSED));
        assert_eq!(data.syscall.as_deref(), Some("connect"));
        assert_eq!((data.address.as_deref(), data.port), (Some("127.0.0.1"), Some(80)));
        assert_eq!(
            (data.local_address.as_deref(), data.local_port),
            (Some("0.0.0.0"), Some(2000))
        );
        let thrown = from_core(porter_core::Error::DefaultConfigured);
        assert_eq!(thrown.status, "ERR_PORTER_DEFAULT_CONFIGURED");
    }

    fn remote() -> std::net::SocketAddr {
        "10.1.4.148:8883".parse().unwrap()
    }

    #[test]
    fn an_ipv6_error_gives_bare_addresses_and_no_local_where_none_was_bound() {
        let e = porter_core::Error::Sys {
            source: std::io::Error::from_raw_os_error(libc::EADDRNOTAVAIL),
            syscall: "connect",
            local: None,
            remote: "[::1]:443".parse().unwrap(),
        };
        let n = ConnectError::from(&e);
        assert_eq!((n.code.as_str(), n.errno), ("EADDRNOTAVAIL", Some(libc::EADDRNOTAVAIL)));
        assert_eq!(n.address.as_deref(), Some("::1"), "no brackets: Node's `address` field");
        assert_eq!(n.port, Some(443));
        assert_eq!((n.local_address, n.local_port), (None, None));
        assert_eq!(n.message, e.to_string());
    }

    #[test]
    fn a_refused_socket_option_names_the_option_and_no_local_address() {
        let e = porter_core::Error::SocketOption {
            option: "SO_MARK",
            source: std::io::Error::from_raw_os_error(libc::EPERM),
            remote: remote(),
        };
        let n = ConnectError::from(&e);
        assert_eq!((n.code.as_str(), n.errno), ("EPERM", Some(libc::EPERM)));
        assert_eq!(
            (n.syscall.as_deref(), n.option.as_deref()),
            (Some("setsockopt"), Some("SO_MARK"))
        );
        assert_eq!((n.address.as_deref(), n.port), (Some("10.1.4.148"), Some(8883)));
        assert_eq!((n.local_address, n.local_port), (None, None), "nothing was bound");
        assert!(
            n.message.starts_with("setsockopt SO_MARK EPERM 10.1.4.148:8883"),
            "{}",
            n.message
        );
    }

    #[test]
    fn porter_errors_carry_no_errno_and_timeouts_carry_etimedout() {
        let exhausted = ConnectError::from(&porter_core::Error::Exhausted {
            local: "0.0.0.0".parse().unwrap(),
            remote: remote(),
            range: (20000, 20009),
            kernel_window: None,
            fallback: None,
        });
        assert_eq!(exhausted.code, "ERR_PORTER_EXHAUSTED");
        assert_eq!((exhausted.errno, exhausted.syscall.as_deref()), (None, None));
        assert_eq!(
            (exhausted.address.as_deref(), exhausted.port),
            (Some("10.1.4.148"), Some(8883))
        );
        assert!(exhausted.message.contains("20000-20009"), "{}", exhausted.message);

        let timed_out = ConnectError::from(&porter_core::Error::TimedOut {
            local: Some("127.0.0.1:20001".parse().unwrap()),
            remote: remote(),
        });
        assert_eq!(timed_out.code, "ETIMEDOUT");
        assert_eq!(timed_out.errno, Some(libc::ETIMEDOUT));
        assert_eq!(timed_out.syscall.as_deref(), Some("connect"));
        assert_eq!(timed_out.local_port, Some(20001));

        let cancelled = ConnectError::from(&porter_core::Error::Cancelled);
        assert_eq!(cancelled.code, "ABORT_ERR");
        assert_eq!((cancelled.errno, cancelled.address, cancelled.port), (None, None, None));
    }

    /// @porter/core's `fromThrown` keeps a thrown error's `code` only when it starts with
    /// `ERR_`; anything else reaches users as ERR_PORTER_INTERNAL. Every core error that is
    /// thrown (rather than returned as data) must keep its code.
    #[test]
    fn thrown_core_errors_keep_a_code_javascript_reads_back() {
        let thrown = [
            porter_core::Error::InvalidRange { first: 0, last: 5 },
            porter_core::Error::InvalidPartition { index: 4, count: 4 },
            porter_core::Error::DefaultConfigured,
            porter_core::Error::ModeUnsupported {
                mode: porter_core::Mode::Kernel.name(),
                reason: "no IP_LOCAL_PORT_RANGE here".into(),
            },
            porter_core::Error::Exhausted {
                local: "::".parse().unwrap(),
                remote: "[::1]:443".parse().unwrap(),
                range: (1024, 65535),
                kernel_window: Some((32768, 60999)),
                fallback: Some(std::io::Error::from_raw_os_error(libc::EADDRNOTAVAIL)),
            },
        ];
        for e in thrown {
            let (code, text) = (e.code(), e.to_string());
            let napi = from_core(e);
            assert_eq!((napi.status.as_str(), napi.reason.as_str()), (code, text.as_str()));
            assert!(
                code.starts_with("ERR_"),
                "{code} would reach users as ERR_PORTER_INTERNAL"
            );
        }
        assert_eq!(invalid_arg("x").status, "ERR_INVALID_ARG_VALUE");
    }
}
