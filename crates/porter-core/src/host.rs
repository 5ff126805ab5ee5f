//! What the host says about local ports: the kernel's ephemeral range
//! (`net.ipv4.ip_local_port_range`), its reserved ports (`net.ipv4.ip_local_reserved_ports`),
//! which of the socket options porter relies on it has, and the ports `/etc/services`
//! names for TCP.
//!
//! The two settings belong to the network namespace of the thread that reads them, and
//! apply to IPv4 and IPv6 alike; porter never writes them. A registry reads them when it
//! is made and follows them afterwards (see `watch.rs`).

use std::sync::OnceLock;

use crate::intervals;
use crate::range::PortRange;
use crate::services::{self, Intervals};
use crate::sys;

pub(crate) const PORT_RANGE_PATH: &str = "/proc/sys/net/ipv4/ip_local_port_range";
pub(crate) const RESERVED_PATH: &str = "/proc/sys/net/ipv4/ip_local_reserved_ports";

/// Linux's own default ephemeral range, used when the setting cannot be read.
pub const LINUX_DEFAULT_EPHEMERAL: PortRange = PortRange::LINUX_EPHEMERAL;

/// The socket options of the kernel porter uses to let it choose ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelFeatures {
    /// `IP_BIND_ADDRESS_NO_PORT` (Linux 4.2): `bind(ip, 0)` leaves the port to `connect`.
    pub bind_address_no_port: bool,
    /// `IP_LOCAL_PORT_RANGE` (Linux 6.3): a per-socket window inside the ephemeral range.
    pub local_port_range: bool,
}

impl KernelFeatures {
    /// What this kernel accepts, probed once per process on a throwaway socket.
    pub fn probe() -> Self {
        static FEATURES: OnceLock<KernelFeatures> = OnceLock::new();
        *FEATURES.get_or_init(|| KernelFeatures {
            bind_address_no_port: sys::supports(sys::SocketOption::BindAddressNoPort),
            local_port_range: sys::supports(sys::SocketOption::LocalPortRange),
        })
    }
}

/// The host's port settings, as read at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPorts {
    /// The range the kernel picks ports from for `connect()` and `bind(ip, 0)`.
    pub ephemeral: PortRange,
    /// Ports the kernel never picks itself, as sorted, disjoint, inclusive intervals.
    pub reserved: Vec<(u16, u16)>,
    /// The ports `/etc/services` names for TCP, as sorted, disjoint, inclusive intervals
    /// (none when the file is absent).
    pub services: Intervals,
    /// Whether the two settings were read (false: the Linux defaults stand in).
    pub read_from_system: bool,
    /// The socket options the kernel has.
    pub features: KernelFeatures,
}

impl HostPorts {
    /// Reads the settings of the calling thread's network namespace (and `/etc/services`).
    /// Where `/proc` cannot be read, Linux's defaults stand in (32768-60999, nothing
    /// reserved) and `read_from_system` says so.
    pub fn read() -> Self {
        let ephemeral = std::fs::read_to_string(PORT_RANGE_PATH).ok();
        let reserved = std::fs::read_to_string(RESERVED_PATH).ok();
        Self::from_texts(ephemeral.as_deref(), reserved.as_deref())
    }

    /// The settings from the text of the two files (`None`: could not be read).
    pub(crate) fn from_texts(ephemeral: Option<&str>, reserved: Option<&str>) -> Self {
        let ephemeral = ephemeral.and_then(parse_port_range);
        let reserved = reserved.and_then(parse_reserved);
        Self {
            read_from_system: ephemeral.is_some() && reserved.is_some(),
            ephemeral: ephemeral.unwrap_or(LINUX_DEFAULT_EPHEMERAL),
            reserved: reserved.unwrap_or_default(),
            services: services::current(),
            features: KernelFeatures::probe(),
        }
    }

    /// Settings given by hand (for tests and tools that model another host), with no
    /// service ports (see [`HostPorts::with_services`]).
    pub fn new(ephemeral: PortRange, reserved: Vec<(u16, u16)>, features: KernelFeatures) -> Self {
        Self {
            ephemeral,
            reserved: intervals::normalize(reserved),
            services: Intervals::default(),
            read_from_system: false,
            features,
        }
    }

    /// These settings with `services` as the ports services listen on.
    pub fn with_services(mut self, services: Vec<(u16, u16)>) -> Self {
        self.services = intervals::normalize(services).into();
        self
    }

    /// Whether `port` is reserved.
    pub fn is_reserved(&self, port: u16) -> bool {
        intervals::contains(&self.reserved, port)
    }
}

/// `"32768\t60999\n"` into a range.
pub(crate) fn parse_port_range(text: &str) -> Option<PortRange> {
    let mut it = text.split_whitespace().map(str::parse::<u16>);
    match (it.next(), it.next(), it.next()) {
        (Some(Ok(first)), Some(Ok(last)), None) => PortRange::new(first, last).ok(),
        _ => None,
    }
}

/// `"8080,9000-9010\n"` (or an empty line) into sorted, merged intervals.
pub(crate) fn parse_reserved(text: &str) -> Option<Vec<(u16, u16)>> {
    let mut out = Vec::new();
    for item in text.trim().split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (first, last) = match item.split_once('-') {
            Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
            None => {
                let p = item.parse().ok()?;
                (p, p)
            }
        };
        if first > last {
            return None;
        }
        out.push((first, last));
    }
    Some(intervals::normalize(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernel_formats() {
        assert_eq!(parse_port_range("32768\t60999\n"), PortRange::new(32768, 60999).ok());
        assert_eq!(parse_port_range("2000 1000"), None);
        assert_eq!(parse_port_range("1 2 3"), None);
        assert_eq!(parse_reserved("\n"), Some(vec![]));
        assert_eq!(
            parse_reserved("9000-9010,8080,9011,100-200\n"),
            Some(vec![(100, 200), (8080, 8080), (9000, 9011)])
        );
        assert_eq!(parse_reserved("x"), None);
        assert_eq!(parse_reserved("10-5"), None);
    }

    #[test]
    fn reserved_lookup() {
        let h = HostPorts::new(
            LINUX_DEFAULT_EPHEMERAL,
            vec![(10, 20), (30, 30)],
            KernelFeatures::probe(),
        );
        assert!(!h.is_reserved(9));
        assert!(h.is_reserved(10) && h.is_reserved(20) && h.is_reserved(30));
        assert!(!h.is_reserved(21) && !h.is_reserved(31));
    }

    #[test]
    fn reads_this_host() {
        let h = HostPorts::read();
        let text = std::fs::read_to_string(PORT_RANGE_PATH).unwrap();
        assert_eq!(Some(h.ephemeral), parse_port_range(&text));
        assert!(h.read_from_system);
    }
}
