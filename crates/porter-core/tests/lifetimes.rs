//! Lifetimes of pools and routes: a pool that holds nothing and that nobody holds is
//! dropped (at once when idle, or once its last aging port is due), never while a route,
//! a lease or a port in use keeps it; creating flows keeps the number of idle pools
//! bounded without anyone inspecting the registry. Driven by a manual clock.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use porter_core::{
    Config, FlowKey, HostPorts, KernelFeatures, LeaseId, ManualClock, Mode, PortRange, Registry, Released, Route,
};

fn registry(aging: Duration) -> (Arc<ManualClock>, Arc<Registry>) {
    let clock = Arc::new(ManualClock::new());
    let config = Config {
        range: PortRange::new(10_000, 10_009).unwrap(),
        mode: Mode::Pool,
        aging,
        retry_attempts: 0,
        kernel_fallback: false,
        ..Config::default()
    };
    let host = HostPorts::new(PortRange::LINUX_EPHEMERAL, vec![], KernelFeatures::probe());
    (clock.clone(), Registry::with_host(config, host, vec![], clock).unwrap())
}

fn destination(n: u32) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | n)), 443)
}

#[test]
fn an_idle_unheld_pool_is_dropped_once_its_aging_is_over() {
    let (clock, reg) = registry(Duration::from_millis(10));
    let flow = reg.flow(FlowKey::new(None, destination(1)));
    let port = flow.allocate_port().unwrap();
    assert_eq!(flow.release(port, true), Released::Aging);
    drop(flow);
    // Still aging: it stays, and shows.
    assert_eq!(reg.stats().pools, 1);
    assert_eq!(reg.snapshot()[0].aging.len(), 1);
    clock.advance_ms(10);
    let stats = reg.stats();
    assert_eq!(stats.pools, 0);
    assert_eq!(stats.pools_retired, 1);
    assert!(reg.snapshot().is_empty());
    // The destination used again gets a fresh pool.
    let again = reg.flow(FlowKey::new(None, destination(1)));
    assert_eq!(reg.pool_count(), 1);
    assert!(!again.is_aging(port));
}

#[test]
fn a_held_route_keeps_its_pools_until_it_goes() {
    let (_clock, reg) = registry(Duration::ZERO);
    let route = Route::new(&reg, &[], destination(2)).unwrap();
    let id = route.allocate().unwrap();
    assert_eq!(route.release(id, false).unwrap(), Released::Immediate);
    // Idle, but held by the route.
    assert_eq!(reg.stats().pools, 1);
    drop(route);
    assert_eq!(reg.stats().pools, 0);
}

#[test]
fn a_port_in_use_keeps_its_pool_without_any_handle() {
    let (_clock, reg) = registry(Duration::ZERO);
    let key = FlowKey::new(None, destination(3));
    let port = reg.flow(key).allocate_port().unwrap();
    // No handle left, but a port in use: it must stay, or a new pool could hand the same
    // port out again.
    assert_eq!(reg.stats().pools, 1);
    let flow = reg.flow(key);
    assert!(flow.is_in_use(port));
    assert_eq!(flow.release(port, false), Released::Immediate);
    drop(flow);
    assert_eq!(reg.stats().pools, 0);
}

#[test]
fn creating_flows_drops_idle_ones_without_an_inspection() {
    let (_clock, reg) = registry(Duration::ZERO);
    for n in 0..20_000 {
        let flow = reg.flow(FlowKey::new(None, destination(n)));
        let port = flow.allocate_port().unwrap();
        flow.release(port, false);
    }
    // pool_count() itself drops nothing: the creations did.
    let waiting = reg.pool_count();
    assert!(waiting < 100, "{waiting} idle pools left after 20,000 destinations");
}

#[test]
fn ipv4_mapped_destinations_and_sources_share_their_ipv4_pools() {
    let (_clock, reg) = registry(Duration::from_secs(60));
    let v4 = Route::new(&reg, &[], "127.0.0.1:80".parse().unwrap()).unwrap();
    let mapped = Route::new(&reg, &[], "[::ffff:127.0.0.1]:80".parse().unwrap()).unwrap();
    assert!(v4.flows()[0].same_as(&mapped.flows()[0]));
    assert_eq!(mapped.remote(), "127.0.0.1:80".parse().unwrap());
    // Ten ports for the one 4-tuple space, whichever form asks.
    let mut ids = Vec::new();
    for i in 0..10 {
        let route = if i % 2 == 0 { &v4 } else { &mapped };
        ids.push(route.allocate().unwrap());
    }
    assert!(v4.allocate().is_err() && mapped.allocate().is_err());
    let local: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
    let from = Route::new(&reg, &[local], "127.0.0.1:80".parse().unwrap()).unwrap();
    assert_eq!(from.local_ip(0), Some("127.0.0.2".parse().unwrap()));
    // A source of the other family is refused.
    let err = Route::new(&reg, &["::1".parse().unwrap()], "127.0.0.1:80".parse().unwrap()).unwrap_err();
    assert_eq!(err.code(), "ERR_INVALID_ARG_VALUE");
}

#[test]
fn lease_ids_name_the_right_flow_past_65536_source_addresses() {
    let (_clock, reg) = registry(Duration::ZERO);
    let config = *reg.config();
    // One port per source address: the 65,537th lease comes from the 65,537th address.
    let one_port = Registry::with_host(
        Config {
            range: PortRange::new(20_000, 20_000).unwrap(),
            ..config
        },
        reg.host().clone(),
        vec![],
        ManualClock::new(),
    )
    .unwrap();
    let locals: Vec<IpAddr> = (0..65_537u32)
        .map(|i| IpAddr::V4(Ipv4Addr::from(0x7f00_0000 | (i + 1))))
        .collect();
    let route = Route::new(&one_port, &locals, destination(9)).unwrap();
    let ids: Vec<LeaseId> = (0..65_537).map(|_| route.allocate().unwrap()).collect();
    let last = *ids.last().unwrap();
    assert_eq!(last.flow, 65_536);
    assert_eq!(route.local_ip(last.flow), Some(locals[65_536]));
    let round_trip = LeaseId::from_bits(last.to_bits()).unwrap();
    assert_eq!(route.release(round_trip, false).unwrap(), Released::Immediate);
    // The first address's port is still in use: the release did not land there.
    assert!(route.flows()[0].is_in_use(20_000));
    assert!(!route.flows()[65_536].is_in_use(20_000));
    assert!(route.release(LeaseId { flow: 70_000, port: 1 }, false).is_err());
}

#[test]
fn a_route_hands_out_from_its_first_source_address_with_a_port() {
    let clock = Arc::new(ManualClock::new());
    let config = Config {
        range: PortRange::new(20_000, 20_000).unwrap(),
        mode: Mode::Pool,
        aging: Duration::from_millis(5),
        retry_attempts: 0,
        kernel_fallback: false,
        ..Config::default()
    };
    let host = HostPorts::new(PortRange::LINUX_EPHEMERAL, vec![], KernelFeatures::probe());
    let reg = Registry::with_host(config, host, vec![], clock.clone()).unwrap();
    let locals: Vec<IpAddr> = (1..=3).map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i))).collect();
    let route = Route::new(&reg, &locals, destination(7)).unwrap();
    let ids: Vec<LeaseId> = (0..3).map(|_| route.allocate().unwrap()).collect();
    assert_eq!(ids.iter().map(|id| id.flow).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert!(route.allocate().is_err());
    // Released at once: the first address is first again.
    route.release(ids[0], false).unwrap();
    assert_eq!(route.allocate().unwrap().flow, 0);
    // Released into aging: it comes back at its deadline, without another release.
    route.release(ids[1], true).unwrap();
    assert!(route.allocate().is_err());
    clock.advance_ms(5);
    assert_eq!(route.allocate().unwrap().flow, 1);
}
