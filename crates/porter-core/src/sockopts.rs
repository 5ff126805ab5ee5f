//! Socket options Node cannot set: set on every socket porter connects, after it is taken
//! (from the socket [`reserve`](crate::reserve) or made on the spot) and before `bind` and
//! `connect`, the one moment some of them can be set at all.
//!
//! [`SocketOptions`] holds what a registry sets on all its sockets ([`crate::Config`]) and
//! what one connect changes ([`SocketOptions::overlay`], field by field). Each field is
//! `None` when not given, and may hold the value of a new socket (`false`, `0`, an empty
//! name, [`KeepAlive::Off`]) to undo a registry's setting for one connect: such a value is
//! not set, since a new socket has it already (and `SO_MARK` or `IP_TRANSPARENT` would ask
//! for privileges to set even that). [`SocketOptions::apply`] is the one place that sets
//! them, and names the option the kernel refused.
//!
//! Values are not checked here: users' options are validated once, where they are given
//! (in TypeScript, with Node's codes), and a value the kernel refuses is the connect's
//! error (its errno, `setsockopt`, the option's name), before anything is bound or sent,
//! so a port porter took comes back at once. The core refuses only what it cannot hold:
//! a [`ShortName`] of more than [`NAME_MAX`] bytes (the kernel would cut it short without
//! a word) or with a NUL (it could not cross into C). Durations go to the kernel in its
//! units: whole seconds for keep-alive (a fraction is dropped), milliseconds for
//! `TCP_USER_TIMEOUT`.

use std::io;
use std::time::Duration;

use socket2::{Socket, TcpKeepalive};

use crate::error::Result;
use crate::sys;

/// The longest name the kernel keeps for a device (`IFNAMSIZ - 1`) or a congestion
/// control algorithm (`TCP_CA_NAME_MAX - 1`); it cuts longer ones short without a word.
pub const NAME_MAX: usize = 15;

/// A device or congestion control name, at most [`NAME_MAX`] bytes, with no NUL; empty
/// means none (the new socket's state). Kept inline, so options are `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShortName {
    bytes: [u8; NAME_MAX],
    len: u8,
}

impl ShortName {
    /// The name `text`; `None` if it is longer than [`NAME_MAX`] bytes or holds a NUL.
    pub fn new(text: &str) -> Option<Self> {
        if text.len() > NAME_MAX || text.contains('\0') {
            return None;
        }
        let mut bytes = [0; NAME_MAX];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Some(Self {
            bytes,
            len: text.len() as u8,
        })
    }

    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The name (it came from a `&str`, so it is UTF-8).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// Whether it is the empty name (none).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::fmt::Debug for ShortName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

/// TCP keep-alive: `SO_KEEPALIVE`, and the kernel's timings where given (its defaults,
/// `net.ipv4.tcp_keepalive_*`, otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAlive {
    /// No keep-alive (a new socket's state).
    Off,
    /// `SO_KEEPALIVE` on.
    On {
        /// `TCP_KEEPIDLE`: idleness before the first probe, whole seconds, 1 to 32,767 s.
        idle: Option<Duration>,
        /// `TCP_KEEPINTVL`: between probes, whole seconds, 1 to 32,767 s.
        interval: Option<Duration>,
        /// `TCP_KEEPCNT`: probes unanswered before the connection is dropped, 1 to 127.
        count: Option<u32>,
    },
}

/// Socket options set before `bind` and `connect` on every socket porter connects. `None`:
/// not given (the registry's, or the kernel's default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketOptions {
    /// `TCP_USER_TIMEOUT` (Linux 2.6.37): how long sent data may stay unacknowledged
    /// before the connection fails with `ETIMEDOUT`; milliseconds, zero for the kernel's
    /// default (retransmissions for about 15 minutes).
    pub user_timeout: Option<Duration>,
    /// `SO_KEEPALIVE`, `TCP_KEEPIDLE`, `TCP_KEEPINTVL`, `TCP_KEEPCNT` (Linux 2.4).
    pub keepalive: Option<KeepAlive>,
    /// `SO_MARK` (Linux 2.6.25): the mark of every packet, for policy routing and
    /// netfilter; needs `CAP_NET_ADMIN`. Zero: no mark.
    pub mark: Option<u32>,
    /// `SO_BINDTODEVICE` (Linux 2.0.30; without `CAP_NET_RAW` since 5.7): the device
    /// packets leave by (and the only one they are taken from). Empty: no device.
    pub bind_to_device: Option<ShortName>,
    /// `IP_TOS` (IPv4) or `IPV6_TCLASS` (IPv6, Linux 2.6): the DS field of every packet.
    /// The kernel keeps the two low bits (ECN) for itself on TCP sockets, so they must be
    /// zero.
    pub tos: Option<u8>,
    /// `IP_FREEBIND` (IPv4, Linux 2.4) or `IPV6_FREEBIND` (IPv6, Linux 4.15): bind to an
    /// address that is not (yet) the host's.
    pub freebind: Option<bool>,
    /// `IP_TRANSPARENT` (IPv4, Linux 2.6.24) or `IPV6_TRANSPARENT` (IPv6, Linux 2.6.37):
    /// bind to and send from any address, for transparent proxies; needs `CAP_NET_ADMIN`.
    pub transparent: Option<bool>,
    /// `SO_LINGER` with a zero timeout: closing the socket aborts the connection (RST)
    /// instead of ending it, so this side leaves no TIME_WAIT.
    pub linger_zero_on_close: Option<bool>,
    /// `TCP_FASTOPEN_CONNECT` (Linux 4.11): with a Fast Open cookie from an earlier
    /// connection, `connect` returns at once and the SYN leaves with the first data sent.
    pub fast_open: Option<bool>,
    /// `TCP_CONGESTION` (Linux 2.6.13): the congestion control algorithm. Empty: the
    /// kernel's default.
    pub congestion: Option<ShortName>,
}

impl SocketOptions {
    /// `self` with every field `other` gives replaced by `other`'s.
    pub fn overlay(&self, other: &SocketOptions) -> SocketOptions {
        SocketOptions {
            user_timeout: other.user_timeout.or(self.user_timeout),
            keepalive: other.keepalive.or(self.keepalive),
            mark: other.mark.or(self.mark),
            bind_to_device: other.bind_to_device.or(self.bind_to_device),
            tos: other.tos.or(self.tos),
            freebind: other.freebind.or(self.freebind),
            transparent: other.transparent.or(self.transparent),
            linger_zero_on_close: other.linger_zero_on_close.or(self.linger_zero_on_close),
            fast_open: other.fast_open.or(self.fast_open),
            congestion: other.congestion.or(self.congestion),
        }
    }

    /// Whether closing leaves no TIME_WAIT on this side (`SO_LINGER` zero is set).
    pub fn linger_zero(&self) -> bool {
        self.linger_zero_on_close == Some(true)
    }

    /// Sets every option given on `socket` (of family IPv6 when `ipv6`), in this order,
    /// before `bind` and `connect`. A value that is what a new socket has already is not
    /// set. On a refusal: the option's name and the kernel's error.
    pub fn apply(&self, socket: &Socket, ipv6: bool) -> Result<(), (&'static str, io::Error)> {
        let named = |option: &'static str| move |e: io::Error| (option, e);
        if let Some(timeout) = self.user_timeout.filter(|t| !t.is_zero()) {
            socket
                .set_tcp_user_timeout(Some(timeout))
                .map_err(named("TCP_USER_TIMEOUT"))?;
        }
        if let Some(KeepAlive::On { idle, interval, count }) = self.keepalive {
            // Sets SO_KEEPALIVE, then TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT where given.
            let mut params = TcpKeepalive::new();
            if let Some(idle) = idle {
                params = params.with_time(idle);
            }
            if let Some(interval) = interval {
                params = params.with_interval(interval);
            }
            if let Some(count) = count {
                params = params.with_retries(count);
            }
            socket.set_tcp_keepalive(&params).map_err(named("SO_KEEPALIVE"))?;
        }
        if let Some(mark) = self.mark.filter(|&m| m != 0) {
            socket.set_mark(mark).map_err(named("SO_MARK"))?;
        }
        if let Some(device) = self.bind_to_device.filter(|d| !d.is_empty()) {
            socket
                .bind_device(Some(device.as_bytes()))
                .map_err(named("SO_BINDTODEVICE"))?;
        }
        if let Some(tos) = self.tos.filter(|&t| t != 0) {
            if ipv6 {
                socket.set_tclass_v6(tos.into()).map_err(named("IPV6_TCLASS"))?;
            } else {
                socket.set_tos_v4(tos.into()).map_err(named("IP_TOS"))?;
            }
        }
        if self.freebind == Some(true) {
            if ipv6 {
                socket.set_freebind_v6(true).map_err(named("IPV6_FREEBIND"))?;
            } else {
                socket.set_freebind_v4(true).map_err(named("IP_FREEBIND"))?;
            }
        }
        if self.transparent == Some(true) {
            if ipv6 {
                socket.set_ip_transparent_v6(true).map_err(named("IPV6_TRANSPARENT"))?;
            } else {
                socket.set_ip_transparent_v4(true).map_err(named("IP_TRANSPARENT"))?;
            }
        }
        if self.linger_zero() {
            socket.set_linger(Some(Duration::ZERO)).map_err(named("SO_LINGER"))?;
        }
        if self.fast_open == Some(true) {
            sys::set_fastopen_connect(socket, true).map_err(named("TCP_FASTOPEN_CONNECT"))?;
        }
        if let Some(algorithm) = self.congestion.filter(|c| !c.is_empty()) {
            socket
                .set_tcp_congestion(algorithm.as_bytes())
                .map_err(named("TCP_CONGESTION"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Type};

    fn name(text: &str) -> ShortName {
        ShortName::new(text).unwrap()
    }

    /// The congestion control algorithm of `socket` (getsockopt fills the kernel's whole
    /// buffer, NUL-padded).
    fn congestion(socket: &Socket) -> Vec<u8> {
        let mut bytes = socket.tcp_congestion().unwrap();
        bytes.truncate(bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len()));
        bytes
    }

    #[test]
    fn names_fit_what_the_kernel_keeps() {
        assert_eq!(name("eth0").as_str(), "eth0");
        assert_eq!(name("fifteen-bytes-x").as_bytes().len(), NAME_MAX);
        assert!(
            ShortName::new("sixteen-bytes-xx").is_none(),
            "the kernel would cut it short"
        );
        assert!(ShortName::new("a\0b").is_none());
        assert!(name("").is_empty());
    }

    #[test]
    fn a_connect_overrides_field_by_field() {
        let registry = SocketOptions {
            mark: Some(7),
            tos: Some(0x10),
            congestion: Some(name("cubic")),
            ..SocketOptions::default()
        };
        let connect = SocketOptions {
            mark: Some(0),
            fast_open: Some(true),
            ..SocketOptions::default()
        };
        let both = registry.overlay(&connect);
        assert_eq!(both.mark, Some(0), "the connect's value, even the one that undoes");
        assert_eq!(both.tos, Some(0x10), "the registry's where the connect gives none");
        assert_eq!(both.congestion, Some(name("cubic")));
        assert_eq!(both.fast_open, Some(true));
        assert_eq!(both.user_timeout, None);
        assert_eq!(
            SocketOptions::default().overlay(&SocketOptions::default()),
            SocketOptions::default()
        );
    }

    /// What the kernel holds after `apply`, read back with getsockopt (through socket2's
    /// getters, and raw where it has none), on an unbound socket of each family. (The
    /// options that need privileges or a device, SO_MARK, IP_TRANSPARENT and
    /// SO_BINDTODEVICE, are read back on connected sockets in network namespaces by the
    /// JavaScript tests.)
    #[test]
    fn options_are_set_on_the_socket() {
        let options = SocketOptions {
            user_timeout: Some(Duration::from_millis(2_500)),
            keepalive: Some(KeepAlive::On {
                idle: Some(Duration::from_secs(11)),
                interval: Some(Duration::from_secs(3)),
                count: Some(4),
            }),
            tos: Some(0x20),
            freebind: Some(true),
            linger_zero_on_close: Some(true),
            fast_open: Some(true),
            congestion: Some(name("reno")),
            ..SocketOptions::default()
        };
        for (domain, ipv6) in [(Domain::IPV4, false), (Domain::IPV6, true)] {
            let socket = Socket::new(domain, Type::STREAM, None).unwrap();
            options.apply(&socket, ipv6).unwrap();
            assert_eq!(socket.tcp_user_timeout().unwrap(), Some(Duration::from_millis(2_500)));
            assert!(socket.keepalive().unwrap());
            assert_eq!(socket.tcp_keepalive_time().unwrap(), Duration::from_secs(11));
            assert_eq!(socket.tcp_keepalive_interval().unwrap(), Duration::from_secs(3));
            assert_eq!(socket.tcp_keepalive_retries().unwrap(), 4);
            if ipv6 {
                assert_eq!(socket.tclass_v6().unwrap(), 0x20);
                assert!(socket.freebind_v6().unwrap());
            } else {
                assert_eq!(socket.tos_v4().unwrap(), 0x20);
                assert!(socket.freebind_v4().unwrap());
            }
            assert_eq!(socket.linger().unwrap(), Some(Duration::ZERO));
            assert!(sys::fastopen_connect(&socket).unwrap());
            assert_eq!(congestion(&socket), b"reno");
        }
    }

    #[test]
    fn values_a_new_socket_has_are_not_set() {
        // A mark of zero and transparent off would need CAP_NET_ADMIN if they were set.
        let off = SocketOptions {
            user_timeout: Some(Duration::ZERO),
            keepalive: Some(KeepAlive::Off),
            mark: Some(0),
            bind_to_device: Some(name("")),
            tos: Some(0),
            freebind: Some(false),
            transparent: Some(false),
            linger_zero_on_close: Some(false),
            fast_open: Some(false),
            congestion: Some(name("")),
        };
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let before = congestion(&socket);
        off.apply(&socket, false).unwrap();
        assert!(!socket.keepalive().unwrap());
        assert_eq!(socket.linger().unwrap(), None);
        assert_eq!(congestion(&socket), before);
    }

    #[test]
    fn a_refusal_names_the_option() {
        let unknown = SocketOptions {
            congestion: Some(name("no-such-algo")),
            ..SocketOptions::default()
        };
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let (option, e) = unknown.apply(&socket, false).unwrap_err();
        assert_eq!(option, "TCP_CONGESTION");
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        let no_device = SocketOptions {
            bind_to_device: Some(name("no-such-dev0")),
            ..SocketOptions::default()
        };
        let (option, e) = no_device.apply(&socket, false).unwrap_err();
        assert_eq!(option, "SO_BINDTODEVICE");
        // ENODEV; EPERM where unprivileged sockets may not bind to a device (before 5.7).
        assert!(
            matches!(e.raw_os_error(), Some(libc::ENODEV) | Some(libc::EPERM)),
            "{e}"
        );
    }
}
