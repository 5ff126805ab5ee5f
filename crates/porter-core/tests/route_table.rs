//! One environment's routes (`RouteTable`), on real loopback sockets: ids that name
//! nothing once their slot was reused, closed routes kept while a lease or a connect of
//! theirs is out, connects in flight until their descriptor is adopted, and the teardown
//! of an environment that goes: every port back into aging, every descriptor handed over
//! and not adopted closed if it still is the connection, and none that is not.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use porter_core::connect::{Connected, Progress};
use porter_core::{Config, HandedOver, Mode, PortRange, Registry, Route, RouteId, RouteTable, ServicePorts};
use socket2::Socket;

use common::free_block;
use common::loopback::stuck_listener;

/// A registry binding a block of free ports of its own on `ip`.
fn registry(ip: IpAddr, size: u16) -> Arc<Registry> {
    let first = free_block(ip, size);
    let config = Config {
        range: PortRange::new(first, first + size - 1).unwrap(),
        mode: Mode::Pool,
        service_ports: ServicePorts::Use,
        retry_attempts: 0,
        kernel_fallback: false,
        ..Config::default()
    };
    Registry::new(config).unwrap()
}

fn route(registry: &Arc<Registry>, ip: IpAddr, remote: SocketAddr) -> Route {
    Route::new(registry, &[ip], remote).unwrap()
}

fn connected(progress: Progress) -> Connected {
    match progress {
        Progress::Done(result) => result.unwrap(),
        Progress::Pending(_) => panic!("still in flight"),
    }
}

/// A connect through route `id` that is over at once, handed over.
fn connect_now(table: &mut RouteTable, id: RouteId) -> HandedOver {
    let c = connected(table.start(id, None).unwrap().unwrap());
    table.hand_over(c, false)
}

/// A route to a listener whose accept queue is full after a first connection: the
/// second connect through it is still in flight.
struct Waiting {
    _registry: Arc<Registry>,
    listener: Socket,
    table: RouteTable,
    id: RouteId,
    first: HandedOver,
    attempt: porter_core::connect::Attempt,
}

/// [`Waiting`], from 127.0.0.`last`.
fn second_waits(last: u8) -> Waiting {
    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, last));
    let registry = registry(ip, 4);
    let (listener, remote) = stuck_listener();
    let mut table = RouteTable::new();
    let id = table.open(route(&registry, ip, remote)).unwrap();
    let first = connect_now(&mut table, id);
    let Progress::Pending(attempt) = table.start(id, None).unwrap().unwrap() else {
        panic!("the accept queue is full: the second connect waits");
    };
    Waiting {
        _registry: registry,
        listener,
        table,
        id,
        first,
        attempt,
    }
}

#[test]
fn ids_are_reused_with_a_new_generation() {
    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 31));
    let reg = registry(ip, 4);
    let remote = "127.0.0.1:9".parse().unwrap();
    let mut table = RouteTable::new();
    let a = table.open(route(&reg, ip, remote)).unwrap();
    let b = table.open(route(&reg, ip, remote)).unwrap();
    assert_ne!(a, b);
    table.close(a);
    assert_eq!(
        table.route(a).unwrap_err().code(),
        "ERR_INVALID_ARG_VALUE",
        "a freed id names nothing"
    );
    let c = table.open(route(&reg, ip, remote)).unwrap();
    assert_ne!(c, a, "the slot is reused under another generation");
    assert_eq!(c.to_bits() % (1 << 24), a.to_bits() % (1 << 24));
    assert!(table.route(b).is_ok());
    assert!(table.route(RouteId::from_bits(123_456).unwrap()).is_err());
    table.close(RouteId::from_bits(123_456).unwrap());
}

#[test]
fn a_closed_route_keeps_its_slot_while_a_lease_is_out() {
    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 32));
    let reg = registry(ip, 4);
    let mut table = RouteTable::new();
    let id = table.open(route(&reg, ip, "127.0.0.1:9".parse().unwrap())).unwrap();
    let lease = table.allocate(id).unwrap();
    table.close(id);
    assert_eq!(table.allocate(id).unwrap_err().code(), "ERR_PORTER_CLOSED");
    assert!(table.route(id).is_ok(), "kept: a lease is out");
    assert!(table.release(id, lease, false).unwrap());
    assert!(table.route(id).is_err(), "freed with its last lease");
    assert!(reg.snapshot().iter().all(|p| p.in_use.is_empty()));
}

#[test]
fn a_connect_in_flight_keeps_its_closed_route_until_its_descriptor_is_adopted() {
    let Waiting {
        mut table,
        id,
        first,
        attempt,
        listener,
        ..
    } = second_waits(33);
    table.close(id);
    let _accepted = listener.accept().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let second = runtime
        .block_on(porter_core::connect::finish(
            attempt,
            Some(Duration::from_secs(5)),
            None,
        ))
        .unwrap();
    let second = table.hand_over(second, true);
    assert!(table.adopt(id, first.lease, first.fd).unwrap());
    assert!(table.route(id).is_ok(), "the second connect still counts");
    assert!(table.adopt(id, second.lease, second.fd).unwrap());
    assert!(!table.adopt(id, second.lease, second.fd).unwrap(), "adopted once");
    for HandedOver { fd, lease } in [first, second] {
        // SAFETY: the descriptors were handed over to this test, which owns them now.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
        table.release(id, lease, false).unwrap();
    }
    assert!(table.route(id).is_err(), "freed once both are back");
}

#[test]
fn a_connect_that_fails_in_flight_lets_its_closed_route_go() {
    let Waiting {
        mut table, id, first, ..
    } = second_waits(34);
    assert!(table.adopt(id, first.lease, first.fd).unwrap());
    table.close(id);
    // SAFETY: handed over to this test.
    drop(unsafe { OwnedFd::from_raw_fd(first.fd) });
    table.release(id, first.lease, false).unwrap();
    assert!(table.route(id).is_ok(), "kept: a connect is in flight");
    table.connect_failed(id);
    assert!(table.route(id).is_err());
}

#[test]
fn teardown_gives_every_port_back_and_closes_only_what_is_still_the_connection() {
    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 35));
    let reg = registry(ip, 8);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let remote = listener.local_addr().unwrap();
    let mut table = RouteTable::new();
    let id = table.open(route(&reg, ip, remote)).unwrap();
    // Handed over and never adopted: still the connection.
    let waiting = connect_now(&mut table, id);
    let (mut peer_of_waiting, _) = listener.accept().unwrap();
    // Handed over, its socket closed, and its number given to another connection before
    // the teardown: not ours to close.
    let gone = connect_now(&mut table, id);
    let _ = listener.accept().unwrap();
    // SAFETY: handed over to this test (as to a socket that then closed it).
    drop(unsafe { OwnedFd::from_raw_fd(gone.fd) });
    // The kernel gives the lowest free number: a connection or two from now (another
    // thread of the test process may take one first) has the number of `gone`.
    let mut others = Vec::new();
    let (other, mut peer_of_other) = loop {
        let other = TcpStream::connect(remote).unwrap();
        let (peer, _) = listener.accept().unwrap();
        if other.as_raw_fd() == gone.fd {
            break (other, peer);
        }
        assert!(others.len() < 100, "descriptor {} never came back", gone.fd);
        others.push((other, peer));
    };
    // Adopted: its lease is in the ledger; its socket is its owner's.
    let adopted = connect_now(&mut table, id);
    assert!(table.adopt(id, adopted.lease, adopted.fd).unwrap());
    // A lease allocated for a socket made elsewhere.
    let allocated = table.allocate(id).unwrap();

    table.teardown();

    let mut byte = [0u8; 1];
    peer_of_waiting.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(
        peer_of_waiting.read(&mut byte).unwrap(),
        0,
        "the waiting descriptor was closed"
    );
    peer_of_other.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let still_open = peer_of_other.read(&mut byte).unwrap_err();
    assert_eq!(
        still_open.kind(),
        std::io::ErrorKind::WouldBlock,
        "the reused descriptor is still open"
    );
    let pool = &reg.snapshot()[0];
    assert!(pool.in_use.is_empty(), "every port is back: {pool:?}");
    let aging: Vec<u16> = pool.aging.iter().map(|&(p, _)| p).collect();
    for lease in [waiting.lease, gone.lease, adopted.lease, allocated] {
        assert!(aging.contains(&lease.port), "{lease:?} ages");
    }
    assert!(table.route(id).is_err(), "the table is empty");
    // SAFETY: the adopted descriptor is this test's (its owner's).
    drop(unsafe { OwnedFd::from_raw_fd(adopted.fd) });
    drop(other);
}
