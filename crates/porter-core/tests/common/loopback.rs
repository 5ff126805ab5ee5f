//! What the connect tests share: per-test loopback source addresses, a pool-mode
//! configuration on a block of free ports, a listener whose accept queue fills at once,
//! and a connection checked both ways.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use porter_core::connect::Connected;
use porter_core::{Config, Flow, FlowKey, Mode, PortRange, Registry, ServicePorts, SocketOptions};
use socket2::{Domain, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const AGING: Duration = Duration::from_secs(120);
pub const TIMEOUT: Option<Duration> = Some(Duration::from_secs(5));

pub fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

pub const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// Pool mode: porter binds every port of the range itself (the ranges of these tests,
/// from `free_block`, lie below the kernel's ephemeral range anyway).
pub fn config(first: u16, last: u16, retry_attempts: u32, kernel_fallback: bool) -> Config {
    Config {
        range: PortRange::new(first, last).unwrap(),
        mode: Mode::Pool,
        service_ports: ServicePorts::Use,
        aging: AGING,
        retry_attempts,
        kernel_fallback,
        socket_options: SocketOptions::default(),
    }
}

pub fn flow(registry: &Arc<Registry>, local: Option<IpAddr>, remote: SocketAddr) -> Flow {
    registry.flow(FlowKey::new(local, remote))
}

/// A listener on 127.0.0.1 that never accepts, with the smallest backlog: once its
/// accept queue is full (after one connection), Linux drops further SYNs, and a connect
/// to it hangs (the client retransmits its SYN for minutes) until one is accepted.
pub fn stuck_listener() -> (Socket, SocketAddr) {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::new(v4(1), 0).into()).unwrap();
    s.listen(0).unwrap();
    let addr = s.local_addr().unwrap().as_socket().unwrap();
    (s, addr)
}

/// The flows to connect from: just `f`.
pub fn one(f: &Flow) -> &[Flow] {
    std::slice::from_ref(f)
}

/// The count of `code` in a list of counts by code.
fn count_of(list: &[(&str, u64)], code: &str) -> u64 {
    list.iter().find(|(c, _)| *c == code).map_or(0, |(_, n)| *n)
}

/// Retries the registry counted for `code`.
pub fn retries(registry: &Registry, code: &str) -> u64 {
    count_of(&registry.stats().retries, code)
}

/// Failed connects the registry counted for `code`.
pub fn connect_errors(registry: &Registry, code: &str) -> u64 {
    count_of(&registry.stats().connect_errors, code)
}

/// The socket really is connected to `listener`, from the leased port: bytes go both ways.
pub async fn exchange(connected: Connected, listener: &TcpListener) -> Connected {
    let (mut server, peer) = listener.accept().await.unwrap();
    assert_eq!(
        peer,
        connected.socket.local_addr().unwrap().as_socket().unwrap(),
        "the listener sees another source"
    );
    assert_eq!(peer.port(), connected.lease.port());
    let Connected {
        socket,
        lease,
        flow_index,
        local,
        remote,
        kernel_chosen,
    } = connected;
    let mut client = TcpStream::from_std(std::net::TcpStream::from(socket)).unwrap();
    client.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    server.write_all(b"pong").await.unwrap();
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"pong");
    let socket = Socket::from(client.into_std().unwrap());
    Connected {
        socket,
        lease,
        flow_index,
        local,
        remote,
        kernel_chosen,
    }
}

pub fn check_bound(c: &Connected, range: PortRange, local_ip: IpAddr, remote: SocketAddr) {
    let local = c.socket.local_addr().unwrap().as_socket().unwrap();
    assert_eq!(local.port(), c.lease.port());
    assert_eq!(local.ip(), local_ip);
    assert_eq!(c.local.port(), c.lease.port());
    // `Connected::local` is the address bound: the flow's, unspecified or not.
    assert_eq!(c.local.ip(), c.lease.flow().key().local);
    assert!(range.contains(local.port()), "{local} outside {range:?}");
    assert_eq!(c.socket.peer_addr().unwrap().as_socket().unwrap(), remote);
    assert!(c.socket.reuse_address().unwrap(), "SO_REUSEADDR is off");
    assert!(!c.kernel_chosen);
    assert!(c.lease.flow().is_in_use(local.port()));
}
