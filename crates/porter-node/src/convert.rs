//! Conversions between JavaScript values and porter-core types.

use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};

use napi_derive::napi;
use porter_core::{Mode, PortRange, ServicePorts};

use crate::error::{from_core, invalid_arg, Result};

pub fn port(value: u32, what: &str) -> Result<u16> {
    u16::try_from(value).map_err(|_| invalid_arg(format!("{what} must be a port number, got {value}")))
}

pub fn range(first: u32, last: u32) -> Result<PortRange> {
    let (first, last) = (port(first, "range start")?, port(last, "range end")?);
    PortRange::new(first, last).map_err(from_core)
}

/// An IP literal; an IPv6 one may carry a scope (`fe80::1%eth0`, `fe80::1%2`), which is
/// read and dropped (see [`scoped`] to keep it).
pub fn ip(text: &str) -> Result<IpAddr> {
    Ok(scoped(text, 0)?.ip())
}

/// An IP literal and `port_number` as a socket address; an IPv6 literal's scope, given
/// as an interface's name or index after `%`, is its scope id.
pub fn scoped(text: &str, port_number: u32) -> Result<SocketAddr> {
    let port = port(port_number, "port")?;
    let Some((address, zone)) = text.split_once('%') else {
        return text
            .parse()
            .map(|ip| SocketAddr::new(ip, port))
            .map_err(|_| coded_ip(text));
    };
    let ip: Ipv6Addr = address.parse().map_err(|_| coded_ip(text))?;
    let scope = porter_core::scope_id(zone).ok_or_else(|| {
        crate::error::coded(
            "ERR_INVALID_IP_ADDRESS",
            format!("Invalid IP address: {text} (no network interface {zone:?})"),
        )
    })?;
    Ok(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope)))
}

/// `ip` as text, with `%` and its interface's name (or index) where it has a scope.
pub fn show(ip: IpAddr, scope: u32) -> String {
    match (scope, porter_core::scope_name(scope)) {
        (0, _) => ip.to_string(),
        (_, Some(name)) => format!("{ip}%{name}"),
        (_, None) => format!("{ip}%{scope}"),
    }
}

fn coded_ip(text: &str) -> napi::Error<String> {
    crate::error::coded("ERR_INVALID_IP_ADDRESS", format!("Invalid IP address: {text}"))
}

pub fn socket_addr(address: &str, port_number: u32) -> Result<SocketAddr> {
    scoped(address, port_number)
}

/// A timeout in milliseconds: none for a value that is not a number of milliseconds
/// from 0 up, or one too large to wait for.
pub fn timeout(ms: f64) -> Option<std::time::Duration> {
    (ms >= 0.0)
        .then(|| std::time::Duration::try_from_secs_f64(ms / 1000.0).ok())
        .flatten()
}

/// Milliseconds as a duration, for values validated where they were given: anything
/// else converts without a panic (not a number or below zero: none; too large: the
/// largest).
pub fn duration(ms: f64) -> std::time::Duration {
    if ms.is_nan() || ms <= 0.0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::try_from_secs_f64(ms / 1000.0).unwrap_or(std::time::Duration::MAX)
}

pub fn mode(name: &str) -> Result<Mode> {
    Mode::from_name(name).ok_or_else(|| invalid_arg(format!("mode must be 'hybrid', 'pool' or 'kernel', got {name:?}")))
}

pub fn service_ports(name: &str) -> Result<ServicePorts> {
    ServicePorts::from_name(name)
        .ok_or_else(|| invalid_arg(format!("servicePorts must be 'avoid' or 'use', got {name:?}")))
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
    fn ipv6_scopes_by_interface_name_or_index() {
        let lo = porter_core::scope_id("lo").expect("a loopback interface");
        let on = |scope| SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 80, 0, scope));
        assert_eq!(scoped("fe80::1%lo", 80).unwrap(), on(lo));
        assert_eq!(scoped(&format!("fe80::1%{lo}"), 80).unwrap(), on(lo));
        assert_eq!(ip("fe80::1%lo").unwrap(), "fe80::1".parse::<IpAddr>().unwrap());
        assert_eq!(show("fe80::1".parse().unwrap(), lo), "fe80::1%lo");
        assert_eq!(show("::1".parse().unwrap(), 0), "::1");
        for bad in [
            "fe80::1%",
            "fe80::1%no-such-if0",
            "fe80::1%0",
            "fe80::1%2147483647",
            "127.0.0.1%lo",
            "fe80::1%l\0o",
            "fe80::1%%lo",
        ] {
            let e = scoped(bad, 80).unwrap_err();
            assert_eq!(e.status, "ERR_INVALID_IP_ADDRESS", "{bad}");
        }
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
    fn durations_never_panic() {
        assert_eq!(duration(2500.0), std::time::Duration::from_millis(2500));
        assert_eq!(duration(f64::NAN), std::time::Duration::ZERO);
        assert_eq!(duration(-5.0), std::time::Duration::ZERO);
        assert_eq!(duration(f64::INFINITY), std::time::Duration::MAX);
    }

    #[test]
    fn timeouts_never_panic() {
        assert_eq!(timeout(1500.0), Some(std::time::Duration::from_millis(1500)));
        for none in [-1.0, f64::NAN, f64::INFINITY, 1e300] {
            assert_eq!(timeout(none), None, "{none}");
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
