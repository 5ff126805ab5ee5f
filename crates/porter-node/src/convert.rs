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

    #[test]
    fn ports_are_1_to_65535_and_anything_larger_is_an_invalid_value() {
        assert_eq!(port(1, "port").unwrap(), 1);
        assert_eq!(port(65535, "port").unwrap(), 65535);
        let e = port(65536, "range end").unwrap_err();
        assert_eq!(e.status, "ERR_INVALID_ARG_VALUE");
        assert_eq!(e.reason, "range end must be a port number, got 65536");
        assert!(port(u32::MAX, "port").is_err());
    }

    #[test]
    fn ranges_are_checked_by_the_core_and_thrown_with_its_code() {
        let one = range(20000, 20000).unwrap();
        assert_eq!((one.first(), one.last(), one.len()), (20000, 20000, 1));
        for (first, last) in [(0, 10), (2000, 1024)] {
            let e = range(first, last).unwrap_err();
            assert_eq!(e.status, "ERR_OUT_OF_RANGE");
            assert!(e.reason.contains(&format!("{first}-{last}")), "{}", e.reason);
        }
        // A number that is no port fails as such before the range is looked at.
        assert_eq!(range(1024, 70000).unwrap_err().status, "ERR_INVALID_ARG_VALUE");
    }

    #[test]
    fn addresses_are_ip_literals_only() {
        assert_eq!(ip("127.0.0.2").unwrap(), IpAddr::from([127, 0, 0, 2]));
        assert_eq!(ip("::").unwrap(), IpAddr::from([0u16; 8]));
        for bad in ["localhost", "", " 127.0.0.1", "127.0.0.256", "[::1]", "10.0.0.1:80"] {
            let e = ip(bad).unwrap_err();
            assert_eq!(e.status, "ERR_INVALID_IP_ADDRESS");
            assert_eq!(e.reason, format!("Invalid IP address: {bad}"));
        }
        assert!(socket_addr("127.0.0.1", 65536).is_err());
        assert!(socket_addr("broker", 1883).is_err());
    }

    #[test]
    fn modes_by_their_names_only() {
        assert_eq!(mode("hybrid").unwrap(), Mode::Hybrid);
        assert_eq!(mode("pool").unwrap(), Mode::Pool);
        for bad in ["Hybrid", "", "fast"] {
            let e = mode(bad).unwrap_err();
            assert_eq!(e.status, "ERR_INVALID_ARG_VALUE");
            assert!(e.reason.contains(&format!("{bad:?}")), "{}", e.reason);
        }
    }

    #[test]
    fn intervals_and_counts() {
        let i = interval(1024, 65535);
        assert_eq!((i.first, i.last), (1024, 65535));
        let c = counts(vec![("EADDRINUSE", 3), ("EADDRNOTAVAIL", 0)]);
        assert_eq!(
            c.iter().map(|c| (c.code.as_str(), c.count)).collect::<Vec<_>>(),
            [("EADDRINUSE", 3.0), ("EADDRNOTAVAIL", 0.0)]
        );
    }
}
