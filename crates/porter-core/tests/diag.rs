//! The host's sockets as `HostSockets` reads them, on real loopback connections: a
//! listener and the connections to it, some closed by the client first (`TIME_WAIT`),
//! read from netlink `sock_diag` and from `/proc/net/tcp{,6}`, which agree.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};

use common::wait_for;
use porter_core::{Destination, HostSockets, SocketSource, TcpState};

const TIME_WAIT: usize = 5;

fn state_index(state: TcpState) -> usize {
    TcpState::HOLDING.iter().position(|&s| s == state).unwrap()
}

fn destination(h: &HostSockets, to: SocketAddr) -> Option<&Destination> {
    h.destinations
        .iter()
        .find(|d| d.address == to.ip() && d.port == to.port())
}

/// 20 connections to a listener of `ip`, the first TIME_WAIT of them closed by the
/// client first; both sources then list them under one destination, by state, and the
/// accepted side under the listener.
fn lists_connections_and_listener(ip: IpAddr) {
    let listener = TcpListener::bind(SocketAddr::new(ip, 0)).unwrap();
    let to = listener.local_addr().unwrap();
    let clients: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(to).unwrap()).collect();
    let mut accepted: Vec<TcpStream> = (0..20).map(|_| listener.accept().unwrap().0).collect();
    let mut ports: Vec<u16> = clients.iter().map(|c| c.local_addr().unwrap().port()).collect();
    ports.sort_unstable();
    // The client closes first, then the server: the client's side ends in TIME_WAIT.
    let mut clients = clients;
    let closed: Vec<u16> = clients
        .drain(..TIME_WAIT)
        .map(|c| c.local_addr().unwrap().port())
        .collect();
    for server in accepted.iter_mut() {
        let peer = server.peer_addr().unwrap().port();
        if closed.contains(&peer) {
            // Reading the client's FIN, then closing, lets the client reach TIME_WAIT.
            let _ = std::io::Read::read(server, &mut [0u8; 1]);
        }
    }
    accepted.retain(|s| !closed.contains(&s.peer_addr().unwrap().port()));

    let settled = |h: &HostSockets| destination(h, to).map(|d| d.states[state_index(TcpState::TimeWait)]);
    for source in [SocketSource::SockDiag, SocketSource::ProcNet] {
        assert!(
            wait_for(|| settled(&HostSockets::read(Some(source)).unwrap()) == Some(TIME_WAIT as u32)),
            "{source:?}: {TIME_WAIT} connections reach TIME_WAIT"
        );
        let h = HostSockets::read(Some(source)).unwrap();
        assert_eq!(h.source, source);
        let d = destination(&h, to).unwrap();
        assert_eq!(d.connections(), 20, "{source:?}");
        assert_eq!(d.states[state_index(TcpState::Established)], 15, "{source:?}");
        assert_eq!(d.sources.len(), 1);
        assert_eq!(d.sources[0].address, ip);
        assert_eq!(d.sources[0].ports, ports, "{source:?}: every port, TIME_WAIT included");
        // Every port of theirs is taken for this destination; the listener's too.
        let zone = [(ports[0], ports[19])];
        let between = u32::from(ports[19] - ports[0]) + 1;
        assert!(h.taken(d, &zone) >= 20 && h.taken(d, &zone) <= between);
        assert_eq!(h.taken(d, &[(to.port(), to.port())]), 1, "the listener's port");

        let l = h.listeners.iter().find(|l| l.port == to.port()).unwrap();
        assert_eq!(l.address, ip);
        assert_eq!(l.connections, 15, "{source:?}: the accepted side, not a destination");
        assert!(l.inode > 0);
        assert!(
            h.destinations
                .iter()
                .all(|d| !ports.contains(&d.port) || d.address != ip),
            "{source:?}: no accepted connection is listed as a destination"
        );
    }
    drop(clients);
}

#[test]
fn lists_ipv4_connections_from_both_sources() {
    lists_connections_and_listener(IpAddr::V4(Ipv4Addr::LOCALHOST));
}

#[test]
fn lists_ipv6_connections_from_both_sources() {
    if TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_err() {
        eprintln!("no ::1 here: skipped");
        return;
    }
    lists_connections_and_listener(IpAddr::V6(Ipv6Addr::LOCALHOST));
}

#[test]
fn the_default_source_is_sock_diag() {
    assert_eq!(HostSockets::read(None).unwrap().source, SocketSource::SockDiag);
}
