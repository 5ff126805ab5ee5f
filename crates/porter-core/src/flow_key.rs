//! The identity of a pool: a (local address, remote address, remote port) triple, in
//! canonical form, with the scope of a link-local IPv6 flow.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The identity of a pool: (local address, remote address, remote port), and for a
/// link-local IPv6 flow the interface it goes through (its scope).
///
/// Addresses are kept in canonical form: an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`)
/// is the IPv4 address it maps, since the kernel gives both the same 4-tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowKey {
    /// Local address (the unspecified address when the kernel chooses it).
    pub local: IpAddr,
    /// Remote address.
    pub remote: IpAddr,
    /// Remote port.
    pub remote_port: u16,
    /// The interface index of a flow from or to a link-local IPv6 address (fe80::/10): the
    /// remote address's scope, or else the local one's; 0 for every other flow. One per
    /// flow, since a socket goes through one interface.
    pub scope: u32,
}

/// Whether the kernel reads a scope for `ip`: a link-local IPv6 address (fe80::/10).
fn is_link_local(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}

/// The scope id of `addr` where the kernel reads one, else 0.
fn scope_of(addr: SocketAddr) -> u32 {
    match addr {
        SocketAddr::V6(a) if is_link_local(IpAddr::V6(*a.ip())) => a.scope_id(),
        _ => 0,
    }
}

impl FlowKey {
    /// The key for `remote` from `local` (or the unspecified address of its family), both
    /// in canonical form; the scope is `remote`'s.
    pub fn new(local: Option<IpAddr>, remote: SocketAddr) -> Self {
        Self::scoped(local.map(|ip| SocketAddr::new(ip, 0)), remote)
    }

    /// [`FlowKey::new`] with the local address's scope too (the port of `local` is
    /// ignored): the flow's scope is the remote address's, or else the local one's.
    pub fn scoped(local: Option<SocketAddr>, remote: SocketAddr) -> Self {
        let remote_ip = remote.ip().to_canonical();
        let local_ip = local.map_or_else(|| unspecified_like(remote_ip), |l| l.ip().to_canonical());
        let scope = match scope_of(remote) {
            0 => local.map_or(0, scope_of),
            s => s,
        };
        Self {
            local: local_ip,
            remote: remote_ip,
            remote_port: remote.port(),
            scope,
        }
    }

    /// The scope of the local address (the flow's, when that address is link-local).
    pub fn local_scope(&self) -> u32 {
        if is_link_local(self.local) {
            self.scope
        } else {
            0
        }
    }

    /// The scope of the remote address (the flow's, when that address is link-local).
    pub fn remote_scope(&self) -> u32 {
        if is_link_local(self.remote) {
            self.scope
        } else {
            0
        }
    }

    /// The destination as a socket address (with its scope).
    pub fn remote_addr(&self) -> SocketAddr {
        with_scope(self.remote, self.remote_port, self.remote_scope())
    }

    /// The source address as a socket address with `port` (and its scope).
    pub fn local_addr(&self, port: u16) -> SocketAddr {
        with_scope(self.local, port, self.local_scope())
    }
}

fn with_scope(ip: IpAddr, port: u16, scope: u32) -> SocketAddr {
    match ip {
        IpAddr::V6(v6) => SocketAddr::V6(std::net::SocketAddrV6::new(v6, port, 0, scope)),
        IpAddr::V4(_) => SocketAddr::new(ip, port),
    }
}

/// The unspecified address of `ip`'s family.
pub(crate) fn unspecified_like(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_mapped_addresses_are_their_ipv4_form() {
        let v4: SocketAddr = "10.1.1.1:80".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:10.1.1.1]:80".parse().unwrap();
        assert_eq!(FlowKey::new(None, v4), FlowKey::new(None, mapped));
        assert_eq!(FlowKey::new(None, mapped).local, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let local: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        assert_eq!(
            FlowKey::new(Some(local), v4).local,
            "127.0.0.2".parse::<IpAddr>().unwrap()
        );
        // A real IPv6 address stays what it is.
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        assert_eq!(FlowKey::new(None, v6).local, IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    }

    #[test]
    fn scoped_addresses_keep_their_scope_and_differ_by_it() {
        let on =
            |ip: &str, port, scope| SocketAddr::V6(std::net::SocketAddrV6::new(ip.parse().unwrap(), port, 0, scope));
        let a = FlowKey::scoped(Some(on("fe80::1", 0, 1)), on("fe80::2", 80, 1));
        assert_eq!((a.scope, a.local_scope(), a.remote_scope()), (1, 1, 1));
        assert_eq!(a.remote_addr(), on("fe80::2", 80, 1));
        assert_eq!(a.local_addr(9), on("fe80::1", 9, 1));
        assert_ne!(a, FlowKey::scoped(Some(on("fe80::1", 0, 2)), on("fe80::2", 80, 2)));
        // From the unspecified address: the destination's scope.
        let any = FlowKey::scoped(None, on("fe80::2", 80, 3));
        assert_eq!(
            (any.scope, any.local_scope(), any.remote_addr()),
            (3, 0, on("fe80::2", 80, 3))
        );
        // From a scoped source to an unscoped link-local destination: the source's.
        let from = FlowKey::scoped(Some(on("fe80::1", 0, 4)), on("fe80::2", 80, 0));
        assert_eq!(from.remote_addr(), on("fe80::2", 80, 4));
        // From a link-local source to a global destination: only the source has it.
        let out = FlowKey::scoped(Some(on("fe80::1", 0, 5)), on("2001:db8::1", 80, 0));
        assert_eq!(
            (out.local_addr(0), out.remote_addr()),
            (on("fe80::1", 0, 5), on("2001:db8::1", 80, 0))
        );
        // IPv4 has no scope, whatever the mapped form carried.
        assert_eq!(FlowKey::new(None, on("::ffff:10.0.0.1", 80, 3)).scope, 0);
        // Nor has an address the kernel reads no scope for.
        assert_eq!(
            FlowKey::new(None, on("::1", 80, 3)),
            FlowKey::new(None, "[::1]:80".parse().unwrap())
        );
    }
}
