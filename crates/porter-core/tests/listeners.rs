//! Services on the host: porter never binds a port that a listener holds, whichever of
//! the host's addresses it listens on and whether or not it set `SO_REUSEADDR`; the port
//! is then passed over for every destination. (That a service starting *later* finds its
//! port free is the job of `ServicePorts::Avoid`: tested from JavaScript in a namespace.)
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use porter_core::connect::connect;
use porter_core::{Config, FlowKey, Mode, PortRange, Registry, ServicePorts};
use socket2::{Domain, Socket, Type};
use tokio::net::TcpListener;

use common::free_block;

/// A listener on `addr`, with `SO_REUSEADDR` as `reuse` says.
fn listener(addr: SocketAddr, reuse: bool) -> Socket {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.set_reuse_address(reuse).unwrap();
    s.bind(&addr.into()).unwrap();
    s.listen(8).unwrap();
    s
}

async fn never_bound_over(listen_on: Ipv4Addr, reuse: bool) {
    let p = free_block(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 1);
    let _service = listener(SocketAddr::new(listen_on.into(), p), reuse);
    let config = Config {
        range: PortRange::new(p, p).unwrap(),
        mode: Mode::Pool,
        service_ports: ServicePorts::Use,
        retry_attempts: 0,
        kernel_fallback: false,
        ..Config::default()
    };
    let registry = Registry::new(config).unwrap();
    let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let remote = server.local_addr().unwrap();
    // The flow of the unspecified address binds 0.0.0.0:p, which every listener on p
    // conflicts with.
    let flow = registry.flow(FlowKey::new(None, remote));
    let err = connect(std::slice::from_ref(&flow), remote, Some(Duration::from_secs(5)), None)
        .await
        .unwrap_err();
    assert_eq!((err.code(), err.syscall()), ("EADDRINUSE", Some("bind")), "{err}");
    let other = registry.flow(FlowKey::new(None, SocketAddr::new(remote.ip(), remote.port() ^ 1)));
    assert_eq!(other.allocate_port(), None, "passed over for every destination");
    assert!(registry.snapshot().iter().all(|pool| pool.in_use.is_empty()));
}

#[tokio::test]
async fn a_listener_on_a_loopback_address_with_reuseaddr() {
    never_bound_over(Ipv4Addr::LOCALHOST, true).await;
}

#[tokio::test]
async fn a_listener_on_every_address_without_reuseaddr() {
    never_bound_over(Ipv4Addr::UNSPECIFIED, false).await;
}
