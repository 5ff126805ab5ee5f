//! The one error channel of the binding: every error thrown to JavaScript is a napi error
//! whose `code` property is the core error's stable code (`ERR_PORTER_*`, Node's codes
//! for bad input, the system's `E*` name). Connect failures travel as data instead
//! ([`NativeError`]), so that they reach JavaScript without a throw.

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
pub struct NativeError {
    pub code: String,
    pub message: String,
    pub errno: Option<i32>,
    pub syscall: Option<String>,
    pub address: Option<String>,
    pub port: Option<u32>,
    pub local_address: Option<String>,
    pub local_port: Option<u32>,
}

impl From<&porter_core::Error> for NativeError {
    fn from(e: &porter_core::Error) -> Self {
        let remote = e.remote();
        let local = e.local();
        NativeError {
            code: e.code().to_owned(),
            message: e.to_string(),
            errno: e.errno(),
            syscall: e.syscall().map(str::to_owned),
            address: remote.map(|a| a.ip().to_string()),
            port: remote.map(|a| a.port().into()),
            local_address: local.map(|a| a.ip().to_string()),
            local_port: local.map(|a| a.port().into()),
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
        let data = NativeError::from(&e);
        assert_eq!(data.code, "ECONNREFUSED");
        assert_eq!(data.errno, Some(libc::ECONNREFUSED));
        assert_eq!(data.syscall.as_deref(), Some("connect"));
        assert_eq!((data.address.as_deref(), data.port), (Some("127.0.0.1"), Some(80)));
        assert_eq!(
            (data.local_address.as_deref(), data.local_port),
            (Some("0.0.0.0"), Some(2000))
        );
        let thrown = from_core(porter_core::Error::GlobalConfigured);
        assert_eq!(thrown.status, "ERR_PORTER_DEFAULT_CONFIGURED");
    }
}
