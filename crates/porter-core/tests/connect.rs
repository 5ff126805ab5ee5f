//! Bind-before-connect on real loopback sockets (127.0.0.0/8 and ::1 only), and the
//! registry shared by threads.
//!
//! Each test binds its porter sockets to its own loopback source address (127.0.0.x),
//! so that the tests, which run in parallel, cannot collide on a port of one another.
//! Every test opens a handful of descriptors, far below the open-file limit.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use porter_core::connect::{connect, CancellationToken, Connected};
use porter_core::{
    Config, Error, Flow, FlowKey, ManualClock, Mode, PortRange, Registry, Released, ServicePorts, SocketOptions,
};
use socket2::{Domain, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use common::free_block;

const AGING: Duration = Duration::from_secs(120);
const TIMEOUT: Option<Duration> = Some(Duration::from_secs(5));

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// Pool mode: porter binds every port of the range itself (the ranges of these tests,
/// from `free_block`, lie below the kernel's ephemeral range anyway).
fn config(first: u16, last: u16, retry_attempts: u32, kernel_fallback: bool) -> Config {
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

fn flow(registry: &Arc<Registry>, local: Option<IpAddr>, remote: SocketAddr) -> Flow {
    registry.flow(FlowKey::new(local, remote))
}

/// The flows to connect from: just `f`.
fn one(f: &Flow) -> &[Flow] {
    std::slice::from_ref(f)
}

fn retries(registry: &Registry, code: &str) -> u64 {
    registry
        .stats()
        .retries
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(0, |(_, n)| *n)
}

fn connect_errors(registry: &Registry, code: &str) -> u64 {
    registry
        .stats()
        .connect_errors
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(0, |(_, n)| *n)
}

/// The socket really is connected to `listener`, from the leased port: bytes go both ways.
async fn exchange(connected: Connected, listener: &TcpListener) -> Connected {
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

fn check_bound(c: &Connected, range: PortRange, local_ip: IpAddr, remote: SocketAddr) {
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

/// A connection closed from this side ages its port for exactly the registry's aging
/// period, on the registry's clock (driven by hand here): refused a microsecond before
/// the deadline, connected again at it. The JavaScript tests run on the real clock and
/// check only what no load can change: never before the deadline.
#[tokio::test]
async fn a_closed_connection_ages_until_its_deadline() {
    let ip = v4(14);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let remote = listener.local_addr().unwrap();
    let p = free_block(ip, 1);
    let clock = Arc::new(ManualClock::new());
    let aging = Config {
        aging: Duration::from_millis(500),
        ..config(p, p, 0, false)
    };
    let registry = Registry::with_clock(aging, clock.clone()).unwrap();
    let f = flow(&registry, Some(ip), remote);
    let c = connect(one(&f), remote, TIMEOUT, None).await.unwrap();
    assert_eq!(c.lease.port(), p);
    let Connected { socket, lease, .. } = exchange(c, &listener).await;
    // Closed with a reset, so that no TIME_WAIT stands in the way of the connect at the
    // deadline: what is tested is the pool's aging, released as a local close releases.
    socket.set_linger(Some(Duration::ZERO)).unwrap();
    drop(socket);
    clock.advance_ms(7);
    assert_eq!(lease.release(true), Released::Aging);
    assert_eq!(registry.snapshot()[0].aging, vec![(p, 500_000)]);

    clock.advance_us(500_000 - 1);
    assert!(f.is_aging(p));
    assert_eq!(registry.snapshot()[0].aging, vec![(p, 1)]);
    let err = connect(one(&f), remote, TIMEOUT, None).await.unwrap_err();
    assert_eq!(err.code(), "ERR_PORTER_EXHAUSTED");

    clock.advance_us(1);
    assert!(!f.is_aging(p));
    let again = connect(one(&f), remote, TIMEOUT, None).await.unwrap();
    assert_eq!(again.lease.port(), p);
    let again = exchange(again, &listener).await;
    assert_eq!(registry.snapshot()[0].in_use, vec![p]);
    drop(again);
}

/// A listener on 127.0.0.1 that never accepts, with the smallest backlog: once its
/// accept queue is full, Linux drops further SYNs, and a connect to it hangs (the client
/// retransmits its SYN for minutes).
fn stuck_listener() -> (Socket, SocketAddr) {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::new(v4(1), 0).into()).unwrap();
    s.listen(0).unwrap();
    let addr = s.local_addr().unwrap().as_socket().unwrap();
    (s, addr)
}

/// Connects to `remote` until a connect does not finish within `timeout`: fills the
/// accept queue. Returns the connections made, and the error of the first that hung with
/// the time it took to fail.
async fn fill(f: &Flow, remote: SocketAddr, timeout: Duration) -> (Vec<Connected>, Error, Duration) {
    let mut held = Vec::new();
    for _ in 0..8 {
        let t0 = Instant::now();
        match connect(one(f), remote, Some(timeout), None).await {
            Ok(c) => held.push(c),
            Err(e) => return (held, e, t0.elapsed()),
        }
    }
    panic!("8 connects to a listener with backlog 0 that never accepts all went through");
}

#[tokio::test]
async fn timeout_gives_the_port_back() {
    let ip = v4(9);
    let (_listener, remote) = stuck_listener();
    let p = free_block(ip, 16);
    let registry = Registry::new(config(p, p + 15, 4, false)).unwrap();
    let f = flow(&registry, Some(ip), remote);
    let (held, err, took) = fill(&f, remote, Duration::from_millis(300)).await;
    assert!(
        !held.is_empty(),
        "not one connect went through before the queue was full"
    );
    // Not before the timeout. (No upper bound: only the timeout can end a connect whose
    // SYN is dropped, well before the kernel's own give-up after about two minutes.)
    assert!(
        took >= Duration::from_millis(300),
        "timed out after {took:?}, before the 300 ms"
    );
    assert!(matches!(err, Error::TimedOut { .. }), "{err:?}");
    assert_eq!(err.code(), "ETIMEDOUT");
    assert_eq!(err.errno(), Some(libc::ETIMEDOUT));
    assert_eq!(err.syscall(), Some("connect"));
    assert_eq!(err.remote(), Some(remote));
    let port = err.local().unwrap().port();
    assert_eq!(err.local().unwrap().ip(), ip);
    assert!(!f.is_in_use(port), "the timed-out port is still in use");
    assert!(f.is_aging(port));
    let mut in_use: Vec<u16> = held.iter().map(|c| c.lease.port()).collect();
    in_use.sort_unstable();
    assert_eq!(registry.snapshot()[0].in_use, in_use);
    assert_eq!(connect_errors(&registry, "ETIMEDOUT"), 1);
}

#[tokio::test]
async fn cancellation_gives_the_port_back() {
    let ip = v4(10);
    let (_listener, remote) = stuck_listener();
    let p = free_block(ip, 16);
    let registry = Registry::new(config(p, p + 15, 4, false)).unwrap();
    let f = flow(&registry, Some(ip), remote);
    let (held, err, _) = fill(&f, remote, Duration::from_millis(300)).await;
    assert_eq!(err.code(), "ETIMEDOUT");
    let before = registry.snapshot().remove(0);

    // Cancelled while waiting.
    let token = CancellationToken::new();
    let canceller = {
        let token = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            token.cancel();
        })
    };
    // The error tells the cancel from the 30 s timeout: no clock needed.
    let err = connect(one(&f), remote, Some(Duration::from_secs(30)), Some(token))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    assert_eq!(err.code(), "ABORT_ERR");
    canceller.await.unwrap();
    let after = registry.snapshot().remove(0);
    assert_eq!(after.in_use, before.in_use, "the cancelled connect kept a port");
    assert_eq!(
        after.aging.len(),
        before.aging.len() + 1,
        "the cancelled port is not aging"
    );
    let (cancelled, _) = after.aging.last().copied().unwrap();
    assert!(!f.is_in_use(cancelled));

    // Cancelled before it starts waiting.
    let token = CancellationToken::new();
    token.cancel();
    let err = connect(one(&f), remote, None, Some(token)).await.unwrap_err();
    assert_eq!(err.code(), "ABORT_ERR");
    assert_eq!(registry.snapshot()[0].in_use, before.in_use);
    assert_eq!(registry.snapshot()[0].aging.len(), before.aging.len() + 2);
    assert_eq!(connect_errors(&registry, "ABORT_ERR"), 2);
    drop(held);
}

#[tokio::test]
async fn a_zero_timeout_fails_a_connect_that_is_still_pending() {
    let ip = v4(11);
    let (_listener, remote) = stuck_listener();
    let p = free_block(ip, 16);
    let registry = Registry::new(config(p, p + 15, 4, false)).unwrap();
    let f = flow(&registry, Some(ip), remote);
    let (_held, _, _) = fill(&f, remote, Duration::from_millis(300)).await;
    let err = connect(one(&f), remote, Some(Duration::ZERO), None).await.unwrap_err();
    assert_eq!(err.code(), "ETIMEDOUT");
    let port = err.local().unwrap().port();
    assert!(!f.is_in_use(port) && f.is_aging(port));
}

fn hammer(f: &Flow, threads: usize, rounds: usize, aging: bool) {
    let taken = Arc::new(Mutex::new(HashSet::new()));
    std::thread::scope(|s| {
        for _ in 0..threads {
            let (f, taken) = (f.clone(), taken.clone());
            s.spawn(move || {
                let mut done = 0;
                while done < rounds {
                    let Some(port) = f.allocate_port() else {
                        std::thread::yield_now();
                        continue;
                    };
                    assert!(
                        taken.lock().unwrap().insert(port),
                        "port {port} handed out twice at once"
                    );
                    std::thread::yield_now();
                    assert!(taken.lock().unwrap().remove(&port));
                    let expected = if aging { Released::Aging } else { Released::Immediate };
                    assert_eq!(f.release(port, aging), expected);
                    done += 1;
                }
            });
        }
    });
    assert!(taken.lock().unwrap().is_empty());
}

#[test]
fn threads_share_one_flow_without_duplicates() {
    let clock = Arc::new(ManualClock::new());
    let config = Config {
        range: PortRange::new(40000, 40007).unwrap(),
        mode: Mode::Pool,
        service_ports: ServicePorts::Use,
        ..Config::default()
    };
    let registry = Registry::with_clock(config, clock).unwrap();
    let remote = SocketAddr::new(v4(1), 9);
    let f = flow(&registry, None, remote);
    hammer(&f, 4, 1000, false);
    let stats = registry.stats();
    assert_eq!(stats.allocations, 4000);
    assert_eq!(stats.releases_immediate, 4000);
    let snap = &registry.snapshot()[0];
    assert!(snap.in_use.is_empty());
    assert_eq!(snap.free, 8);
    // Each thread through its own handle on the same key.
    let other = flow(&registry, None, remote);
    hammer(&other, 4, 1000, false);
    assert_eq!(registry.pool_count(), 1);
}

/// Releases into aging from several threads, on the real clock: the aging queue must
/// stay in deadline order (the snapshot lists it "by deadline", and expiry stops at the
/// first port not yet due, so a port queued behind a later deadline comes back late).
#[test]
fn threads_release_into_aging_in_deadline_order() {
    let config = Config {
        range: PortRange::new(41000, 45999).unwrap(),
        mode: Mode::Pool,
        service_ports: ServicePorts::Use,
        aging: Duration::from_secs(60),
        ..Config::default()
    };
    let registry = Registry::new(config).unwrap();
    let f = flow(&registry, None, SocketAddr::new(v4(1), 9));
    hammer(&f, 4, 1000, true);
    let stats = registry.stats();
    assert_eq!(stats.allocations, 4000);
    assert_eq!(stats.releases_aging, 4000);
    let snap = &registry.snapshot()[0];
    assert!(snap.in_use.is_empty());
    assert_eq!(snap.aging.len(), 4000);
    assert_eq!(snap.free, 1000);
    for w in snap.aging.windows(2) {
        assert!(w[0].1 <= w[1].1, "aging queue out of deadline order: {w:?}");
    }
}

/// `Attempt::poll_now` settles a connect that is already over without the reactor, and
/// hands one still in flight to `finish`: either way the outcome is the same, and a
/// failure leaves the port aging.
#[tokio::test]
async fn poll_now_settles_finished_connects_and_defers_the_rest() {
    use porter_core::connect::{finish, start, Progress};
    let local = v4(30);
    let listener = TcpListener::bind(SocketAddr::new(local, 0)).await.unwrap();
    let target = listener.local_addr().unwrap();
    let first = free_block(local, 1);
    let registry = Registry::new(config(first, first, 0, false)).unwrap();
    let f = flow(&registry, Some(local), target);
    let connected = match start(one(&f), target).unwrap().poll_now() {
        Progress::Done(result) => result.unwrap(),
        Progress::Pending(attempt) => finish(attempt, TIMEOUT, None).await.unwrap(),
    };
    assert_eq!(connected.lease.port(), first);
    let Connected { socket, lease, .. } = exchange(connected, &listener).await;
    // Closed with a reset: no TIME_WAIT holds the 4-tuple, so the port may return at once.
    socket.set_linger(Some(Duration::ZERO)).unwrap();
    drop(socket);
    assert_eq!(lease.release(false), Released::Immediate);

    // Nobody listens there any more: refused, at once or after the wait.
    drop(listener);
    let refused = match start(one(&f), target) {
        Err(e) => Err(e),
        Ok(attempt) => match attempt.poll_now() {
            Progress::Done(result) => result,
            Progress::Pending(attempt) => finish(attempt, TIMEOUT, None).await,
        },
    };
    assert_eq!(refused.unwrap_err().code(), "ECONNREFUSED");
    assert!(!f.is_in_use(first));
    assert!(
        !f.is_aging(first),
        "refused: no state left, so the port is free at once"
    );
}
