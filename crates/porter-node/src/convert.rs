//! Conversions between JavaScript values and porter-core types, and the error mapping.

use std::net::{IpAddr, SocketAddr};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use porter_core::{Mode, PortRange};

/// A porter-core error as data, in the shape Node gives system errors.
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

/// A thrown napi error whose JS `code` is the core error's code.
pub fn error(e: porter_core::Error) -> Error {
    Error::new(Status::GenericFailure, format!("{}|{}", e.code(), e))
}

/// An invalid argument, with Node's code.
pub fn invalid_arg(message: String) -> Error {
    Error::new(Status::InvalidArg, format!("ERR_INVALID_ARG_VALUE|{message}"))
}

pub fn port(value: u32, what: &str) -> Result<u16> {
    u16::try_from(value).map_err(|_| invalid_arg(format!("{what} must be a port number, got {value}")))
}

pub fn range(first: u32, last: u32) -> Result<PortRange> {
    let (first, last) = (port(first, "range start")?, port(last, "range end")?);
    PortRange::new(first, last).map_err(error)
}

pub fn ip(text: &str) -> Result<IpAddr> {
    text.parse()
        .map_err(|_| invalid_arg(format!("not an IP address: {text:?}")))
}

pub fn socket_addr(address: &str, port_number: u32) -> Result<SocketAddr> {
    Ok(SocketAddr::new(ip(address)?, port(port_number, "port")?))
}

pub fn mode(name: &str) -> Result<Mode> {
    Mode::from_name(name).ok_or_else(|| invalid_arg(format!("mode must be 'hybrid', 'pool' or 'kernel', got {name:?}")))
}

/// An inclusive interval of ports.
#[napi(object)]
pub struct Interval {
    pub first: u32,
    pub last: u32,
}

pub fn interval(first: u16, last: u16) -> Interval {
    Interval {
        first: first.into(),
        last: last.into(),
    }
}
