//! Socket options on real loopback connections: the registry's on every socket it
//! connects (ports porter binds and ports the kernel picks), a connect's own over them, and
//! what a refused option does to the connect and its port. Read back with getsockopt from
//! the connected socket. The options that need privileges, a device or a namespace
//! (SO_MARK, IP_TRANSPARENT, SO_BINDTODEVICE) are tested from JavaScript in namespaces.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use porter_core::connect::{connect, finish, start_from, Connected};
use porter_core::{Config, Error, KeepAlive, Mode, PortRange, Registry, ServicePorts, ShortName, SocketOptions};
use socket2::Socket;
use tokio::net::TcpListener;

use common::loopback::{connect_errors, flow, TIMEOUT};
use common::{ephemeral_range, free_block};

fn name(text: &str) -> ShortName {
    ShortName::new(text).unwrap()
}

/// Options every test sets: none needs a privilege or a device.
fn options() -> SocketOptions {
    SocketOptions {
        user_timeout: Some(Duration::from_millis(2_750)),
        keepalive: Some(KeepAlive::On {
            idle: Some(Duration::from_secs(13)),
            interval: Some(Duration::from_secs(4)),
            count: Some(5),
        }),
        tos: Some(0x28),
        linger_zero_on_close: Some(true),
        congestion: Some(name("reno")),
        ..SocketOptions::default()
    }
}

/// What getsockopt says of the options of [`options`].
#[derive(Debug, PartialEq)]
struct Seen {
    user_timeout: Option<Duration>,
    keepalive: bool,
    idle: Duration,
    interval: Duration,
    count: u32,
    tos: u32,
    linger: Option<Duration>,
    congestion: Vec<u8>,
}

fn seen(socket: &Socket, ipv6: bool) -> Seen {
    let mut congestion = socket.tcp_congestion().unwrap();
    congestion.truncate(congestion.iter().position(|&b| b == 0).unwrap_or(congestion.len()));
    Seen {
        user_timeout: socket.tcp_user_timeout().unwrap(),
        keepalive: socket.keepalive().unwrap(),
        idle: socket.tcp_keepalive_time().unwrap(),
        interval: socket.tcp_keepalive_interval().unwrap(),
        count: socket.tcp_keepalive_retries().unwrap(),
        tos: if ipv6 {
            socket.tclass_v6().unwrap()
        } else {
            socket.tos_v4().unwrap()
        },
        linger: socket.linger().unwrap(),
        congestion,
    }
}

fn expected() -> Seen {
    Seen {
        user_timeout: Some(Duration::from_millis(2_750)),
        keepalive: true,
        idle: Duration::from_secs(13),
        interval: Duration::from_secs(4),
        count: 5,
        tos: 0x28,
        linger: Some(Duration::ZERO),
        congestion: b"reno".to_vec(),
    }
}

fn config(range: PortRange, mode: Mode, kernel_fallback: bool, socket_options: SocketOptions) -> Config {
    Config {
        range,
        mode,
        service_ports: ServicePorts::Use,
        aging: Duration::from_secs(60),
        retry_attempts: 0,
        kernel_fallback,
        socket_options,
    }
}

/// A registry with [`options`], one port of its own on `ip`, and the kernel's fallback:
/// the first connect binds that port, the second is the kernel's choice from `ip`
/// (IP_BIND_ADDRESS_NO_PORT). Both sockets carry the options.
async fn ports_porter_binds_and_ports_the_kernel_picks(ip: IpAddr, listen: &str) {
    let listener = TcpListener::bind(listen).await.unwrap();
    let remote = listener.local_addr().unwrap();
    let p = free_block(ip, 1);
    let range = PortRange::new(p, p).unwrap();
    let registry = Registry::new(config(range, Mode::Pool, true, options())).unwrap();
    let f = flow(&registry, Some(ip), remote);
    let bound = connect(std::slice::from_ref(&f), remote, TIMEOUT, None).await.unwrap();
    assert_eq!((bound.lease.port(), bound.kernel_chosen), (p, false));
    let picked = connect(std::slice::from_ref(&f), remote, TIMEOUT, None).await.unwrap();
    assert!(picked.kernel_chosen);
    for c in [&bound, &picked] {
        assert_eq!(seen(&c.socket, ip.is_ipv6()), expected(), "port {}", c.lease.port());
        assert!(c.socket.reuse_address().unwrap());
    }
}

#[tokio::test]
async fn v4_sockets_porter_binds_and_the_kernels_carry_the_registrys_options() {
    ports_porter_binds_and_ports_the_kernel_picks(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 40)), "127.0.0.1:0").await;
}

#[tokio::test]
async fn v6_sockets_porter_binds_and_the_kernels_carry_the_registrys_options() {
    ports_porter_binds_and_ports_the_kernel_picks(IpAddr::V6(Ipv6Addr::LOCALHOST), "[::1]:0").await;
}

/// Mode 'kernel' over the whole ephemeral range: no bind at all, `connect()` picks the
/// port (the unspecified source address). The socket carries the options all the same.
#[tokio::test]
async fn sockets_whose_port_connect_picks_carry_the_options() {
    let (first, last) = ephemeral_range();
    let ephemeral = PortRange::new(first, last).unwrap();
    for listen in ["127.0.0.1:0", "[::1]:0"] {
        let listener = TcpListener::bind(listen).await.unwrap();
        let remote = listener.local_addr().unwrap();
        let registry = Registry::new(config(ephemeral, Mode::Kernel, false, options())).unwrap();
        let f = flow(&registry, None, remote);
        let c = connect(std::slice::from_ref(&f), remote, TIMEOUT, None).await.unwrap();
        assert!(c.kernel_chosen);
        assert_eq!(seen(&c.socket, remote.is_ipv6()), expected(), "{listen}");
    }
}

#[tokio::test]
async fn a_connect_overrides_the_registrys_options_field_by_field() {
    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 41));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let remote = listener.local_addr().unwrap();
    let p = free_block(ip, 2);
    let range = PortRange::new(p, p + 1).unwrap();
    let registry = Registry::new(config(range, Mode::Pool, false, options())).unwrap();
    let f = flow(&registry, Some(ip), remote);
    let own = SocketOptions {
        user_timeout: Some(Duration::from_millis(900)),
        keepalive: Some(KeepAlive::Off),
        linger_zero_on_close: Some(false),
        ..SocketOptions::default()
    };
    let attempt = start_from(std::slice::from_ref(&f), 0, remote, Some(&own)).unwrap();
    let c: Connected = finish(attempt, TIMEOUT, None).await.unwrap();
    let got = seen(&c.socket, false);
    assert_eq!(got.user_timeout, Some(Duration::from_millis(900)), "the connect's");
    assert!(!got.keepalive, "the connect turned it off");
    assert_eq!(got.linger, None, "the connect turned it off");
    assert_eq!((got.tos, got.congestion), (0x28, b"reno".to_vec()), "the registry's");
}

/// A refusal: an algorithm the kernel does not have (`ENOENT`), on a port porter binds and
/// on the kernel's choice. The connect fails naming the option, nothing is bound or sent,
/// and the one port of the range is free at once.
#[tokio::test]
async fn a_refused_option_fails_the_connect_and_frees_the_port_at_once() {
    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 42));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let remote = listener.local_addr().unwrap();
    let p = free_block(ip, 1);
    let range = PortRange::new(p, p).unwrap();
    let registry = Registry::new(config(range, Mode::Pool, true, SocketOptions::default())).unwrap();
    let f = flow(&registry, Some(ip), remote);
    let unknown = SocketOptions {
        congestion: Some(name("no-such-algo")),
        ..SocketOptions::default()
    };
    for round in 1..=2 {
        let e = start_from(std::slice::from_ref(&f), 0, remote, Some(&unknown)).unwrap_err();
        assert!(
            matches!(
                e,
                Error::SocketOption {
                    option: "TCP_CONGESTION",
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            (e.code(), e.errno(), e.syscall()),
            ("ENOENT", Some(libc::ENOENT), Some("setsockopt"))
        );
        assert_eq!(
            (e.option(), e.remote(), e.local()),
            (Some("TCP_CONGESTION"), Some(remote), None)
        );
        assert!(e.to_string().starts_with("setsockopt TCP_CONGESTION ENOENT"), "{e}");
        let pool = &registry.snapshot()[0];
        assert_eq!(
            (pool.in_use.len(), pool.aging.len(), pool.free),
            (0, 0, 1),
            "round {round}"
        );
        assert_eq!(connect_errors(&registry, "ENOENT"), round);
    }
    // The port is taken at once by the next connect; then the kernel's choice refuses it too.
    let held = connect(std::slice::from_ref(&f), remote, TIMEOUT, None).await.unwrap();
    assert_eq!(held.lease.port(), p);
    let e = start_from(std::slice::from_ref(&f), 0, remote, Some(&unknown)).unwrap_err();
    assert_eq!(e.option(), Some("TCP_CONGESTION"));
    assert_eq!(registry.snapshot()[0].in_use, vec![p], "the kernel picked nothing");
    assert_eq!(registry.stats().kernel_fallbacks, 0);
}

/// The core does not check values the kernel refuses: the kernel's refusal is the
/// connect's error (its errno, `setsockopt`, the option), before anything was bound or
/// sent, so the port comes back at once.
#[tokio::test]
async fn values_the_kernel_refuses_fail_the_connect_and_give_the_port_back() {
    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 44));
    let p = free_block(ip, 1);
    let remote: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let range = PortRange::new(p, p).unwrap();
    let registry = Registry::new(config(range, Mode::Pool, false, SocketOptions::default())).unwrap();
    let f = flow(&registry, Some(ip), remote);
    let count_zero = SocketOptions {
        keepalive: Some(KeepAlive::On {
            idle: None,
            interval: None,
            count: Some(0),
        }),
        ..SocketOptions::default()
    };
    let too_long = SocketOptions {
        user_timeout: Some(Duration::from_millis(i32::MAX as u64 + 1)),
        ..SocketOptions::default()
    };
    for (bad, option) in [(count_zero, "SO_KEEPALIVE"), (too_long, "TCP_USER_TIMEOUT")] {
        let e = start_from(std::slice::from_ref(&f), 0, remote, Some(&bad)).unwrap_err();
        assert_eq!(
            (e.code(), e.syscall(), e.option()),
            ("EINVAL", Some("setsockopt"), Some(option)),
            "{e}"
        );
        let pool = &registry.snapshot()[0];
        assert!(pool.in_use.is_empty() && pool.aging.is_empty(), "{pool:?}");
    }
    assert_eq!(registry.stats().connect_errors, vec![("EINVAL", 2)]);
}
