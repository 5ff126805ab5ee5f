//! Conversions between JavaScript values and porter-core types.

use std::net::{IpAddr, SocketAddr};

use napi_derive::napi;
use porter_core::{Mode, PortRange};

use crate::error::{from_core, invalid_arg, Result};

pub fn port(value: u32, what: &str) -> Result<u16> {
    u16::try_from(value).map_err(|_| invalid_arg(format!("{what} must be a port number, got {value}")))
}

pub fn range(first: u32, last: u32) -> Result<PortRange> {
    let (first, last) = (port(first, "range start")?, port(last, "range end")?);
    PortRange::new(first, last).map_err(from_core)
}

pub fn ip(text: &str) -> Result<IpAddr> {
    text.parse().map_err(|_| coded_ip(text))
}

fn coded_ip(text: &str) -> napi::Error<String> {
    crate::error::coded("ERR_INVALID_IP_ADDRESS", format!("Invalid IP address: {text}"))
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

/// A count per code (connect errors, retries).
#[napi(object)]
pub struct CodeCount {
    pub code: String,
    pub count: f64,
}

pub fn counts(list: Vec<(&'static str, u64)>) -> Vec<CodeCount> {
    list.into_iter()
        .map(|(code, count)| CodeCount {
            code: code.to_owned(),
            count: count as f64,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_ports_and_modes() {
        assert_eq!(socket_addr("::1", 80).unwrap(), "[::1]:80".parse().unwrap());
        assert_eq!(ip("nope").unwrap_err().status, "ERR_INVALID_IP_ADDRESS");
        assert_eq!(port(65_536, "port").unwrap_err().status, "ERR_INVALID_ARG_VALUE");
        assert_eq!(range(10, 5).unwrap_err().status, "ERR_OUT_OF_RANGE");
        assert_eq!(range(1024, 65535).unwrap(), PortRange::DEFAULT);
        assert_eq!(mode("kernel").unwrap(), Mode::Kernel);
        assert!(mode("fast").is_err());
    }
}
