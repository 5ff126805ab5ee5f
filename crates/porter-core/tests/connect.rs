//! Bind-before-connect on real loopback sockets (127.0.0.0/8 and ::1 only): the leased
//! port, the kernel's choice and its fallback, collisions and what they do to the ports.
//!
//! Each test binds its porter sockets to its own loopback source address (127.0.0.x),
//! so that the tests, which run in parallel, cannot collide on a port of one another.
//! Every test opens a handful of descriptors, far below the open-file limit.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use porter_core::connect::connect;
use porter_core::{Error, Registry, Released};
use socket2::{Domain, Socket, Type};
use tokio::net::TcpListener;

use common::free_block;
use common::loopback::*;

#[tokio::test]
async fn connects_v4_from_the_leased_port() {
    let ip = v4(2);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let remote = listener.local_addr().unwrap();
    let p = free_block(ip, 32);
    // A few retries in case a port of the range is busy on this host.
    let registry = Registry::new(config(p, p + 31, 8, false)).unwrap();
    let f = flow(&registry, Some(ip), remote);
    let c = connect(one(&f), remote, TIMEOUT, None).await.unwrap();
    check_bound(&c, registry.config().range, ip, remote);
    let c = exchange(c, &listener).await;
    let port = c.lease.port();
    assert_eq!(registry.snapshot()[0].in_use, vec![port]);
    assert_eq!(registry.stats().duration_count, 1);
    // Dropping the lease (our side closes first) puts the port into aging.
    drop(c);
    assert!(!f.is_in_use(port));
    assert!(f.is_aging(port));
}

#[tokio::test]
async fn connects_v6_from_the_unspecified_address() {
    let listener = TcpListener::bind("[::1]:0").await.unwrap();
    let remote = listener.local_addr().unwrap();
    let p = free_block(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 32);
    let registry = Registry::new(config(p, p + 31, 8, false)).unwrap();
    let f = flow(&registry, None, remote);
    assert_eq!(f.key().local, IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    let c = connect(one(&f), remote, TIMEOUT, None).await.unwrap();
    check_bound(&c, registry.config().range, V6, remote);
    let c = exchange(c, &listener).await;
    let port = c.lease.port();
    // Remote closed first: the port is free again at once.
    assert_eq!(c.lease.release(false), Released::Immediate);
    assert!(!f.is_in_use(port) && !f.is_aging(port));
    assert_eq!(registry.snapshot()[0].free, registry.config().range.len());
}

#[tokio::test]
async fn one_port_serves_two_destinations_at_once() {
    let ip = v4(3);
    let a = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (ra, rb) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    let p = free_block(ip, 1);
    let registry = Registry::new(config(p, p, 0, false)).unwrap();
    let (fa, fb) = (flow(&registry, Some(ip), ra), flow(&registry, Some(ip), rb));
    let ca = connect(one(&fa), ra, TIMEOUT, None).await.unwrap();
    let cb = connect(one(&fb), rb, TIMEOUT, None).await.unwrap();
    assert_eq!((ca.lease.port(), cb.lease.port()), (p, p));
    check_bound(&ca, registry.config().range, ip, ra);
    check_bound(&cb, registry.config().range, ip, rb);
    // Both are open at the same time, both carry data.
    let ca = exchange(ca, &a).await;
    let cb = exchange(cb, &b).await;
    assert_eq!(ca.local, SocketAddr::new(ip, p));
    assert_eq!(cb.local, SocketAddr::new(ip, p));
    assert!(fa.is_in_use(p) && fb.is_in_use(p));

    // The one port is taken towards `a`, and the fallback is off.
    let err = connect(one(&fa), ra, TIMEOUT, None).await.unwrap_err();
    assert!(matches!(err, Error::Exhausted { fallback: None, .. }), "{err:?}");
    assert_eq!(err.code(), "ERR_PORTER_EXHAUSTED");
    assert_eq!(err.remote(), Some(ra));
    assert_eq!(registry.stats().exhausted, 1);
    assert_eq!(connect_errors(&registry, "ERR_PORTER_EXHAUSTED"), 1);
    assert!(matches!(fa.allocate(), Err(Error::Exhausted { .. })));
    // Nothing changed for the connections that hold the port.
    assert!(fa.is_in_use(p) && fb.is_in_use(p));
    drop((ca, cb));
}

async fn kernel_fallback(ip: IpAddr, listen: &str) {
    let listener = TcpListener::bind(listen).await.unwrap();
    let remote = listener.local_addr().unwrap();
    let p = free_block(ip, 1);
    let registry = Registry::new(config(p, p, 0, true)).unwrap();
    let f = flow(&registry, Some(ip), remote);
    let first = connect(one(&f), remote, TIMEOUT, None).await.unwrap();
    assert_eq!(first.lease.port(), p);
    assert!(!first.kernel_chosen);
    let first = exchange(first, &listener).await;

    let second = connect(one(&f), remote, TIMEOUT, None).await.unwrap();
    assert!(second.kernel_chosen);
    let kp = second.lease.port();
    assert_ne!(kp, p);
    assert_eq!(
        second.socket.local_addr().unwrap().as_socket().unwrap(),
        SocketAddr::new(ip, kp)
    );
    assert!(second.socket.reuse_address().unwrap());
    let second = exchange(second, &listener).await;
    assert!(f.is_in_use(kp), "the kernel's port is not tracked");
    let stats = registry.stats();
    assert_eq!(stats.kernel_fallbacks, 1);
    assert_eq!(stats.exhausted, 0);
    let mut expected = vec![p, kp];
    expected.sort_unstable();
    assert_eq!(registry.snapshot()[0].in_use, expected);
    // The kernel's port is released like any other.
    assert_eq!(second.lease.release(true), Released::Aging);
    assert!(!f.is_in_use(kp));
    assert!(f.is_aging(kp));
    drop(first);
}

#[tokio::test]
async fn kernel_fallback_v4_tracks_the_kernels_port() {
    kernel_fallback(v4(4), "127.0.0.1:0").await;
}

#[tokio::test]
async fn kernel_fallback_v6_tracks_the_kernels_port() {
    kernel_fallback(V6, "[::1]:0").await;
}

/// A listener on port `p` of the source address `ip`, so that porter's bind to `ip:p`
/// fails with EADDRINUSE.
fn blocker(ip: IpAddr, p: u16) -> std::net::TcpListener {
    std::net::TcpListener::bind(SocketAddr::new(ip, p)).unwrap()
}

/// A connection from `ip:p` to `remote`, bound with SO_REUSEADDR as porter's sockets are:
/// porter's bind to `ip:p` succeeds, and its connect to `remote` fails with EADDRNOTAVAIL
/// (the 4-tuple is taken).
fn four_tuple_holder(ip: IpAddr, p: u16, remote: SocketAddr) -> Socket {
    let s = Socket::new(Domain::for_address(remote), Type::STREAM, None).unwrap();
    s.set_reuse_address(true).unwrap();
    s.bind(&SocketAddr::new(ip, p).into()).unwrap();
    s.connect(&remote.into()).unwrap();
    s
}

/// The pool walks its range from wherever it starts: with one of two ports taken, the
/// first connect lands on the other whichever it tried first, and after a second connect
/// the taken port has collided (and aged) in every order.
#[tokio::test]
async fn retries_another_port_after_eaddrinuse() {
    let ip = v4(5);
    let p = free_block(ip, 2);
    let _blocker = blocker(ip, p);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let remote = listener.local_addr().unwrap();
    let registry = Registry::new(config(p, p + 1, 1, false)).unwrap();
    let f = flow(&registry, Some(ip), remote);
    let c = connect(one(&f), remote, TIMEOUT, None).await.unwrap();
    assert_eq!(c.lease.port(), p + 1);
    check_bound(&c, registry.config().range, ip, remote);
    let _c = exchange(c, &listener).await;
    let err = connect(one(&f), remote, TIMEOUT, None).await.unwrap_err();
    assert_eq!(err.code(), "ERR_PORTER_EXHAUSTED");
    assert!(f.is_aging(p), "the port that failed is not aging");
    assert!(!f.is_in_use(p));
    assert_eq!(retries(&registry, "EADDRINUSE"), 1);
    assert_eq!(retries(&registry, "EADDRNOTAVAIL"), 0);
    assert_eq!(registry.stats().kernel_fallbacks, 0);
}

#[tokio::test]
async fn bind_error_without_retry_or_fallback() {
    let ip = v4(6);
    let p = free_block(ip, 1);
    let _blocker = blocker(ip, p);
    let remote = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let registry = Registry::new(config(p, p, 0, false)).unwrap();
    let f = flow(&registry, Some(ip), remote);
    let err = connect(one(&f), remote, TIMEOUT, None).await.unwrap_err();
    assert!(matches!(err, Error::Sys { syscall: "bind", .. }), "{err:?}");
    assert_eq!(err.code(), "EADDRINUSE");
    assert_eq!(err.errno(), Some(libc::EADDRINUSE));
    assert_eq!(err.syscall(), Some("bind"));
    assert_eq!(err.local(), Some(SocketAddr::new(ip, p)));
    assert_eq!(err.remote(), Some(remote));
    assert!(f.is_aging(p) && !f.is_in_use(p));
    assert_eq!(retries(&registry, "EADDRINUSE"), 0);
    assert_eq!(connect_errors(&registry, "EADDRINUSE"), 1);
    assert_eq!(registry.snapshot()[0].in_use, Vec::<u16>::new());
}

#[tokio::test]
async fn bind_error_then_kernel_fallback() {
    let ip = v4(7);
    let p = free_block(ip, 1);
    let _blocker = blocker(ip, p);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let remote = listener.local_addr().unwrap();
    let registry = Registry::new(config(p, p, 0, true)).unwrap();
    let f = flow(&registry, Some(ip), remote);
    let c = connect(one(&f), remote, TIMEOUT, None).await.unwrap();
    assert!(c.kernel_chosen);
    assert_ne!(c.lease.port(), p);
    assert!(f.is_aging(p));
    assert!(f.is_in_use(c.lease.port()));
    let _c = exchange(c, &listener).await;
    assert_eq!(registry.stats().kernel_fallbacks, 1);
}

/// EADDRNOTAVAIL at connect: both ports of the range have their 4-tuple to the
/// destination taken. The first collision is retried on the other port, the second
/// through the kernel's choice; both ports age, for that destination only.
#[tokio::test]
async fn connect_error_eaddrnotavail_is_retried_and_the_ports_age() {
    let ip = v4(12);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let remote = listener.local_addr().unwrap();
    let p = free_block(ip, 2);
    let _holders = [four_tuple_holder(ip, p, remote), four_tuple_holder(ip, p + 1, remote)];
    // The listener's side of the holders' connections, accepted first.
    let _accepted = [listener.accept().await.unwrap(), listener.accept().await.unwrap()];
    let registry = Registry::new(config(p, p + 1, 1, true)).unwrap();
    let f = flow(&registry, Some(ip), remote);
    let c = connect(one(&f), remote, TIMEOUT, None).await.unwrap();
    assert!(c.kernel_chosen);
    let kp = c.lease.port();
    assert!(kp != p && kp != p + 1);
    let _c = exchange(c, &listener).await;
    assert!(f.is_aging(p) && f.is_aging(p + 1));
    // Both collisions count: the first retried on the other port, the second through the
    // kernel's choice.
    assert_eq!(retries(&registry, "EADDRNOTAVAIL"), 2);
    assert_eq!(retries(&registry, "EADDRINUSE"), 0);
    assert_eq!(registry.stats().kernel_fallbacks, 1);
    // Without the fallback, the last collision is the error, from connect.
    let strict = Registry::new(config(p, p + 1, 1, false)).unwrap();
    let g = flow(&strict, Some(ip), remote);
    let err = connect(one(&g), remote, TIMEOUT, None).await.unwrap_err();
    assert!(matches!(err, Error::Sys { syscall: "connect", .. }), "{err:?}");
    assert_eq!(err.code(), "EADDRNOTAVAIL");
    assert!(g.is_aging(p) && g.is_aging(p + 1));
    // Another destination: those ports are free there.
    let elsewhere = flow(&strict, Some(ip), SocketAddr::new(v4(13), remote.port()));
    assert!(!elsewhere.is_aging(p) && !elsewhere.is_aging(p + 1));
}

#[tokio::test]
async fn a_refused_connect_gives_its_port_back_at_once() {
    let ip = v4(8);
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let p = free_block(ip, 1);
    let registry = Registry::new(config(p, p, 0, false)).unwrap();
    let f = flow(&registry, Some(ip), dead);
    let err = connect(one(&f), dead, TIMEOUT, None).await.unwrap_err();
    assert!(matches!(err, Error::Sys { syscall: "connect", .. }), "{err:?}");
    assert_eq!(err.code(), "ECONNREFUSED");
    assert_eq!(err.errno(), Some(libc::ECONNREFUSED));
    assert_eq!(err.local(), Some(SocketAddr::new(ip, p)));
    assert_eq!(err.remote(), Some(dead));
    assert!(!f.is_in_use(p), "a refused connect kept its port");
    // The peer's RST left no TIME_WAIT on either side: nothing to age.
    assert!(!f.is_aging(p), "a refused connect aged its port");
    assert_eq!(connect_errors(&registry, "ECONNREFUSED"), 1);
    let snap = &registry.snapshot()[0];
    assert!(snap.in_use.is_empty() && snap.aging.is_empty());
    // So a client retrying a server that is down keeps its one-port pool.
    for _ in 0..20 {
        let err = connect(one(&f), dead, TIMEOUT, None).await.unwrap_err();
        assert_eq!(err.code(), "ECONNREFUSED");
    }
    assert_eq!(connect_errors(&registry, "ECONNREFUSED"), 21);
}
