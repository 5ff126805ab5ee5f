//! The host's TCP sockets as the kernel sees them, whoever opened them: every listener,
//! and every outgoing connection grouped by destination with the local ports it holds
//! there. What `porter doctor` reports about the host, beside porter's own pools.
//!
//! A connection holds its 4-tuple (local address and port, remote address and port) in
//! every state but `LISTEN` and `CLOSE`: `TIME_WAIT` too (for 60 s, unless `tcp_tw_reuse`
//! lets an outgoing connection take it over), so a port counts as taken for a destination
//! while any socket in those states holds it. A connection is incoming (accepted by a
//! listener of this host, not a destination of its own) when its local port is a
//! listener's, on the listener's address or the unspecified one.
//!
//! Read from netlink `sock_diag` ([`crate::sockdiag`]) or, where that is missing, from
//! `/proc/net/tcp{,6}` ([`crate::procnet`]): the calling thread's network namespace only.

use std::io;
use std::net::{IpAddr, SocketAddr};

use rustc_hash::FxHashMap;

use crate::intervals;
use crate::socket_entry::SocketEntry;
use crate::tcpstate::{state_mask, TcpState};

/// Where the sockets were read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketSource {
    /// Netlink `sock_diag` (`NETLINK_SOCK_DIAG`).
    SockDiag,
    /// `/proc/net/tcp` and `/proc/net/tcp6`.
    ProcNet,
}

impl SocketSource {
    /// `sock_diag` or `proc`.
    pub fn name(self) -> &'static str {
        match self {
            SocketSource::SockDiag => "sock_diag",
            SocketSource::ProcNet => "proc",
        }
    }

    /// The source called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sock_diag" => Some(SocketSource::SockDiag),
            "proc" => Some(SocketSource::ProcNet),
            _ => None,
        }
    }
}

/// A listening socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// The address it listens on (the unspecified one for every address).
    pub address: IpAddr,
    /// Its port.
    pub port: u16,
    /// The user that owns it.
    pub uid: u32,
    /// Its inode (`socket:[inode]` in its process's `/proc/<pid>/fd`).
    pub inode: u32,
    /// Connections waiting in its accept queue.
    pub queued: u32,
    /// Connections to it (accepted or queued) in a state that holds a 4-tuple.
    pub connections: u32,
}

/// The local ports one source address holds towards a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePorts {
    /// The local address.
    pub address: IpAddr,
    /// Its ports towards the destination, sorted and distinct.
    pub ports: Vec<u16>,
}

/// The host's connections to one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The remote address (an IPv4-mapped IPv6 address is read as IPv4).
    pub address: IpAddr,
    /// The remote port.
    pub port: u16,
    /// Sockets towards it per state, in the order of [`TcpState::HOLDING`].
    pub states: [u32; 9],
    /// The local ports held towards it, per source address, sorted by address.
    pub sources: Vec<SourcePorts>,
}

impl Destination {
    /// Sockets towards it in a state that holds a 4-tuple.
    pub fn connections(&self) -> u32 {
        self.states.iter().sum()
    }
}

/// The host's TCP sockets at one moment: listeners, and outgoing connections per
/// destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSockets {
    /// Where they were read from.
    pub source: SocketSource,
    /// Every listening socket, sorted by port then address.
    pub listeners: Vec<Listener>,
    /// Every destination of an outgoing connection, busiest first (then by address).
    pub destinations: Vec<Destination>,
    /// Connections accepted by (or queued at) this host's listeners.
    pub incoming: u32,
    /// The ports with a listener, sorted and distinct.
    listening: Vec<u16>,
}

impl HostSockets {
    /// Reads the sockets of the calling thread's network namespace from `source`, or,
    /// without one, from `sock_diag` and then `/proc/net/tcp{,6}` if that fails. The
    /// error is that of the last source tried.
    pub fn read(source: Option<SocketSource>) -> io::Result<Self> {
        let mask = state_mask();
        let mut entries = Vec::new();
        let read = |s: SocketSource, entries: &mut Vec<SocketEntry>| -> io::Result<()> {
            entries.clear();
            let mut push = |e: SocketEntry| entries.push(e);
            match s {
                SocketSource::SockDiag => crate::sockdiag::dump(mask, &mut push),
                SocketSource::ProcNet => crate::procnet::read(mask, &mut push),
            }
        };
        let used = match source {
            Some(s) => read(s, &mut entries).map(|()| s)?,
            None => match read(SocketSource::SockDiag, &mut entries) {
                Ok(()) => SocketSource::SockDiag,
                Err(_) => read(SocketSource::ProcNet, &mut entries).map(|()| SocketSource::ProcNet)?,
            },
        };
        Ok(Self::from_entries(used, entries))
    }

    /// Groups `entries`: listeners, incoming connections, destinations.
    pub(crate) fn from_entries(source: SocketSource, entries: Vec<SocketEntry>) -> Self {
        let canonical = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
        let mut listeners: Vec<Listener> = entries
            .iter()
            .filter(|e| e.state == TcpState::Listen)
            .map(|e| Listener {
                address: e.local.ip().to_canonical(),
                port: e.local.port(),
                uid: e.uid,
                inode: e.inode,
                queued: e.queued,
                connections: 0,
            })
            .collect();
        listeners.sort_by_key(|l| (l.port, l.address));

        let mut incoming = 0;
        let mut by_destination: FxHashMap<SocketAddr, Tally> = FxHashMap::default();
        for e in &entries {
            let Some(index) = e.state.holding_index() else { continue };
            let (local, remote) = (canonical(e.local), canonical(e.remote));
            if remote.port() == 0 {
                continue;
            }
            if let Some(l) = listener_of(&mut listeners, local) {
                l.connections += 1;
                incoming += 1;
                continue;
            }
            let (states, sources) = by_destination.entry(remote).or_default();
            states[index] += 1;
            sources.entry(local.ip()).or_default().push(local.port());
        }

        let mut destinations: Vec<Destination> = by_destination
            .into_iter()
            .map(|(remote, (states, sources))| {
                let mut sources: Vec<SourcePorts> = sources
                    .into_iter()
                    .map(|(address, mut ports)| {
                        ports.sort_unstable();
                        ports.dedup();
                        SourcePorts { address, ports }
                    })
                    .collect();
                sources.sort_by_key(|s| s.address);
                Destination {
                    address: remote.ip(),
                    port: remote.port(),
                    states,
                    sources,
                }
            })
            .collect();
        destinations.sort_by(|a, b| {
            b.connections()
                .cmp(&a.connections())
                .then_with(|| (a.address, a.port).cmp(&(b.address, b.port)))
        });
        let mut listening: Vec<u16> = listeners.iter().map(|l| l.port).collect();
        listening.dedup();
        Self {
            source,
            listeners,
            destinations,
            incoming,
            listening,
        }
    }

    /// The ports with a listener, sorted and distinct.
    #[cfg(test)]
    fn listening_ports(&self) -> &[u16] {
        &self.listening
    }

    /// The ports of `zone` (sorted, disjoint, inclusive intervals) that a new connection
    /// to `destination` cannot have: those its busiest source address holds towards it,
    /// and those a listener has bound (the kernel skips them at `connect()`, and a bind
    /// to them fails with `EADDRINUSE`).
    pub fn taken(&self, destination: &Destination, zone: &[(u16, u16)]) -> u32 {
        let most = destination
            .sources
            .iter()
            .map(|s| s.ports.as_slice())
            .max_by_key(|p| p.len())
            .unwrap_or_default();
        // Each port once: the busiest source's, then the listening ports not among them
        // (both lists are sorted and distinct).
        let held = most.iter().filter(|&&p| intervals::contains(zone, p)).count();
        let listening = self
            .listening
            .iter()
            .filter(|&&p| intervals::contains(zone, p) && most.binary_search(&p).is_err())
            .count();
        (held + listening) as u32
    }
}

/// Per destination while grouping: sockets per state, and ports per source address.
type Tally = ([u32; 9], FxHashMap<IpAddr, Vec<u16>>);

/// The listener whose port and address (or the unspecified one) `local` has.
fn listener_of(listeners: &mut [Listener], local: SocketAddr) -> Option<&mut Listener> {
    let first = listeners.partition_point(|l| l.port < local.port());
    let same_port = listeners[first..].iter().take_while(|l| l.port == local.port()).count();
    let candidates = &mut listeners[first..first + same_port];
    let exact = candidates.iter().position(|l| l.address == local.ip());
    let any = candidates.iter().position(|l| l.address.is_unspecified());
    exact.or(any).map(move |i| &mut candidates[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(state: TcpState, local: &str, remote: &str) -> SocketEntry {
        SocketEntry {
            state,
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
            queued: 0,
            uid: 0,
            inode: 0,
        }
    }

    #[test]
    fn groups_outgoing_connections_by_destination_and_leaves_incoming_ones_to_their_listener() {
        use TcpState::*;
        let entries = vec![
            entry(Listen, "0.0.0.0:6500", "0.0.0.0:0"),
            entry(Listen, "127.0.0.1:7000", "0.0.0.0:0"),
            // Outgoing to 127.0.0.1:6500 from two sources, the server's side of each incoming.
            entry(Established, "127.0.0.1:40000", "127.0.0.1:6500"),
            entry(Established, "127.0.0.1:6500", "127.0.0.1:40000"),
            entry(TimeWait, "127.0.0.1:40001", "127.0.0.1:6500"),
            entry(SynSent, "127.0.0.2:40000", "127.0.0.1:6500"),
            // An IPv4-mapped address is the IPv4 one.
            entry(Established, "[::ffff:127.0.0.1]:40002", "[::ffff:127.0.0.1]:6500"),
            // To a remote host; a socket closed holds nothing.
            entry(Established, "10.0.0.1:50000", "10.0.0.9:443"),
            entry(Close, "10.0.0.1:50001", "10.0.0.9:443"),
            // Local port 7000 but another address than the listener's: outgoing.
            entry(Established, "127.0.0.3:7000", "127.0.0.9:80"),
        ];
        let h = HostSockets::from_entries(SocketSource::ProcNet, entries);
        assert_eq!(h.incoming, 1);
        assert_eq!(h.listeners.iter().map(|l| l.connections).collect::<Vec<_>>(), [1, 0]);
        assert_eq!(h.listening_ports(), [6500, 7000]);
        assert_eq!(h.destinations.len(), 3);
        let d = &h.destinations[0];
        assert_eq!((d.address.to_string(), d.port), ("127.0.0.1".into(), 6500));
        assert_eq!(d.connections(), 4);
        assert_eq!(d.states[0], 2); // established
        assert_eq!(d.states[1], 1); // syn_sent
        assert_eq!(d.states[5], 1); // time_wait
        assert_eq!(d.sources.len(), 2);
        assert_eq!(d.sources[0].ports, [40000, 40001, 40002]);
        assert_eq!(d.sources[1].ports, [40000]);
        assert_eq!(h.destinations[1].port, 443);
        assert_eq!(h.destinations[1].connections(), 1);
    }

    #[test]
    fn taken_counts_the_busiest_source_and_the_listening_ports_in_the_zone_once_each() {
        use TcpState::*;
        let entries = vec![
            entry(Listen, "0.0.0.0:40001", "0.0.0.0:0"),
            entry(Listen, "[::]:40001", "[::]:0"),
            entry(Listen, "0.0.0.0:5000", "0.0.0.0:0"),
            entry(Established, "127.0.0.1:40000", "127.0.0.9:80"),
            entry(Established, "127.0.0.1:40002", "127.0.0.9:80"),
            entry(TimeWait, "127.0.0.1:40002", "127.0.0.9:81"),
            entry(Established, "127.0.0.2:40003", "127.0.0.9:80"),
        ];
        let h = HostSockets::from_entries(SocketSource::SockDiag, entries);
        let d = &h.destinations[0];
        assert_eq!(d.port, 80);
        // 40000 and 40002 (127.0.0.1, the busiest source), 40001 (a listener).
        assert_eq!(h.taken(d, &[(40000, 40010)]), 3);
        assert_eq!(h.taken(d, &[(40000, 40000), (40002, 40002)]), 2);
        assert_eq!(h.taken(d, &[(1024, 39999)]), 1, "the listener on 5000");
        assert_eq!(h.taken(d, &[]), 0);
    }

    #[test]
    fn taken_counts_a_listening_port_the_busiest_source_holds_once() {
        use TcpState::*;
        let entries = vec![
            entry(Listen, "127.0.0.5:40002", "0.0.0.0:0"),
            entry(Listen, "0.0.0.0:40004", "0.0.0.0:0"),
            entry(Established, "127.0.0.1:40000", "127.0.0.9:80"),
            entry(Established, "127.0.0.1:40002", "127.0.0.9:80"),
        ];
        let h = HostSockets::from_entries(SocketSource::SockDiag, entries);
        let d = &h.destinations[0];
        assert_eq!(h.listening_ports(), [40002, 40004]);
        assert_eq!(h.taken(d, &[(40000, 40010)]), 3, "40000, 40002 (both), 40004");
        assert_eq!(h.taken(d, &[(40001, 40003)]), 1);
    }
}
