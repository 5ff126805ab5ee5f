//! Connected descriptors handed to their owner (JavaScript, for the binding) and not yet
//! adopted: between the two, the descriptor belongs to no socket yet, or to one that may
//! already be gone, and only this table knows of its port.
//!
//! When the environment that holds them tears down, every port comes back into aging, and
//! a descriptor is closed only if it is still the connection that was handed over: its
//! owner adopts it only once a socket has it (or it was closed), so a descriptor still
//! waiting may already belong to a socket that was closed since, and its number may have
//! been given to another socket, even of another thread. `getsockname` gives the lease's
//! port and `getpeername` the destination: two system calls per descriptor at teardown,
//! none on the connect path. (A connection the peer reset in that moment reads as not
//! ours and stays open: a descriptor, never a port.)

use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use rustc_hash::FxHashMap;

use crate::flow::Flow;
use crate::sys;

/// A connected descriptor handed over and not yet adopted.
#[derive(Debug)]
struct Waiting {
    flow: Flow,
    port: u16,
    /// Whether it still counts as a pending connect of its route: one that finished on
    /// the reactor does until it is adopted, so that a route closed meanwhile keeps its
    /// slot for the adoption.
    pending: bool,
}

/// Descriptors handed over and not yet adopted, by descriptor.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    waiting: FxHashMap<RawFd, Waiting>,
}

impl InFlight {
    /// `fd`, connected from `port` of `flow`, was handed over.
    pub(crate) fn insert(&mut self, fd: RawFd, flow: Flow, port: u16, pending: bool) {
        self.waiting.insert(fd, Waiting { flow, port, pending });
    }

    /// `fd` was adopted: whether it was waiting, and whether it counted as pending.
    pub(crate) fn adopt(&mut self, fd: RawFd) -> Option<bool> {
        self.waiting.remove(&fd).map(|w| w.pending)
    }

    /// Closes every descriptor still ours and gives every port back into aging.
    pub(crate) fn teardown(&mut self) {
        for (fd, Waiting { flow, port, .. }) in self.waiting.drain() {
            if still_ours(fd, port, flow.key().remote_addr()) {
                // SAFETY: the descriptor is still the connection handed over, and no socket
                // took it (a socket's was closed before its environment tore down), so this
                // table is its only owner.
                drop(unsafe { OwnedFd::from_raw_fd(fd) });
            }
            flow.release(port, true);
        }
    }
}

/// Whether descriptor `fd` is a socket on local port `port` connected to `remote`.
pub(crate) fn still_ours(fd: RawFd, port: u16, remote: SocketAddr) -> bool {
    let canonical = |a: SocketAddr| (a.ip().to_canonical(), a.port());
    sys::socket_name(fd).is_ok_and(|local| local.port() == port)
        && sys::peer_name(fd).is_ok_and(|peer| canonical(peer) == canonical(remote))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_descriptor_is_ours_only_while_it_is_the_connection_handed_over() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let remote = listener.local_addr().unwrap();
        let stream = std::net::TcpStream::connect(remote).unwrap();
        let (fd, port) = (stream.as_raw_fd(), stream.local_addr().unwrap().port());
        assert!(still_ours(fd, port, remote));
        let mapped = SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.to_ipv6_mapped().into(), remote.port());
        assert!(
            still_ours(fd, port, mapped),
            "an IPv4-mapped destination is its IPv4 address"
        );
        assert!(!still_ours(fd, port.wrapping_add(1), remote), "another local port");
        let elsewhere = SocketAddr::new(remote.ip(), remote.port().wrapping_add(1));
        assert!(!still_ours(fd, port, elsewhere), "another destination");
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        assert!(!still_ours(file.as_raw_fd(), port, remote), "not a socket");
        assert!(!still_ours(-1, port, remote), "no descriptor");
    }
}
