//! The order a registry hands ports out in, on a manual clock: flows apart from each
//! other, inspection sorted by flow, each aging port back at its own deadline, the least
//! recently released first (and the cursor's order past a lap), and walks that start at
//! random places.
#![allow(clippy::unwrap_used)]

#[path = "common/model.rs"]
mod model;

use std::collections::{BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use model::{flow_keys, manual_registry};
use porter_core::{Flow, FlowKey, Released};

#[test]
fn flows_are_independent() {
    let (clock, reg) = manual_registry(5000, 5000, Duration::from_millis(10));
    let keys = flow_keys(3);
    let flows: Vec<Flow> = keys.iter().map(|k| reg.flow(*k)).collect();
    // The one port of the range is in use towards three destinations at once.
    for f in &flows {
        assert_eq!(f.allocate_port(), Some(5000));
        assert_eq!(f.allocate_port(), None);
    }
    assert_eq!(flows[0].release(5000, true), Released::Aging);
    assert_eq!(flows[1].release(5000, false), Released::Immediate);
    assert!(flows[0].is_aging(5000));
    assert!(!flows[1].is_aging(5000) && !flows[1].is_in_use(5000));
    assert!(flows[2].is_in_use(5000));
    assert_eq!(flows[1].allocate_port(), Some(5000));
    assert_eq!(flows[0].allocate_port(), None);
    clock.advance_ms(10);
    assert_eq!(flows[0].allocate_port(), Some(5000));
    // The same key gives the same pool.
    let again = reg.flow(keys[0]);
    assert!(again.is_in_use(5000));
    assert_eq!(again.allocate_port(), None);
    assert_eq!(reg.pool_count(), 3);
}

#[test]
fn snapshot_and_pool_counts_are_sorted_by_flow() {
    let (_clock, reg) = manual_registry(5000, 5001, Duration::from_millis(10));
    // Created in reverse order, across both families and many shards (and held: a pool
    // that holds nothing and that nobody holds is dropped).
    let mut held = Vec::new();
    for port in (1..=64u16).rev() {
        for ip in [IpAddr::V6(Ipv6Addr::LOCALHOST), IpAddr::V4(Ipv4Addr::LOCALHOST)] {
            held.push(reg.flow(FlowKey::new(None, SocketAddr::new(ip, port))));
        }
    }
    let snapshot: Vec<FlowKey> = reg.snapshot().iter().map(|p| p.key).collect();
    let counts: Vec<FlowKey> = reg.pool_counts().iter().map(|p| p.key).collect();
    let mut sorted = snapshot.clone();
    sorted.sort();
    assert_eq!(snapshot.len(), 128);
    assert_eq!(snapshot, sorted);
    assert_eq!(counts, sorted);
}

#[test]
fn aging_port_returns_exactly_at_its_own_deadline() {
    let (clock, reg) = manual_registry(6000, 6002, Duration::from_micros(1000));
    let flow = reg.flow(flow_keys(1)[0]);
    let ports: Vec<u16> = (0..3).map(|_| flow.allocate_port().unwrap()).collect();
    // Released 100 us apart: each comes back at its own deadline, not in a batch.
    for (i, &p) in ports.iter().enumerate() {
        if i > 0 {
            clock.advance_us(100);
        }
        assert_eq!(flow.release(p, true), Released::Aging);
    }
    let snap = &reg.snapshot()[0];
    assert_eq!(snap.aging, vec![(ports[0], 800), (ports[1], 900), (ports[2], 1000)]);
    assert_eq!(snap.free, 0);
    clock.advance_us(799); // t = 999: the first is due at 1000
    assert_eq!(flow.allocate_port(), None);
    assert!(flow.is_aging(ports[0]));
    clock.advance_us(1); // t = 1000
    assert!(!flow.is_aging(ports[0]));
    assert!(flow.is_aging(ports[1]));
    assert_eq!(reg.snapshot()[0].free, 1);
    assert_eq!(flow.allocate_port(), Some(ports[0]));
    assert_eq!(flow.allocate_port(), None);
    clock.advance_us(99);
    assert_eq!(flow.allocate_port(), None);
    clock.advance_us(1);
    assert_eq!(flow.allocate_port(), Some(ports[1]));
}

#[test]
fn released_port_waits_for_every_other_free_port() {
    // One allocate/release cycle after another, some ports held meanwhile: a released
    // port is handed out again only after every other free port has had its turn.
    let (clock, reg) = manual_registry(7000, 7009, Duration::from_micros(50));
    let flow = reg.flow(flow_keys(1)[0]);
    let held: Vec<u16> = (0..3).map(|_| flow.allocate_port().unwrap()).collect();
    let free = 10 - held.len();
    let mut order = Vec::new();
    for i in 0..40 {
        let p = flow.allocate_port().unwrap();
        assert!(!held.contains(&p));
        order.push(p);
        if i % 2 == 0 {
            flow.release(p, false);
        } else {
            flow.release(p, true);
            clock.advance_us(50);
        }
    }
    for w in order.windows(free) {
        let distinct: HashSet<u16> = w.iter().copied().collect();
        assert_eq!(distinct.len(), free, "a port came back early in {order:?}");
    }
}

#[test]
fn expired_port_queues_behind_never_used_ports() {
    let (clock, reg) = manual_registry(8000, 8009, Duration::from_micros(10));
    let flow = reg.flow(flow_keys(1)[0]);
    let first = flow.allocate_port().unwrap();
    flow.release(first, true);
    clock.advance_us(1000); // long expired
    let next: Vec<u16> = (0..9).map(|_| flow.allocate_port().unwrap()).collect();
    assert!(
        !next.contains(&first),
        "{first} came back before the ports never used: {next:?}"
    );
    assert_eq!(flow.allocate_port(), Some(first));
}

/// Past one lap of the cursor the order is the cursor's, not the release order: strict
/// least-recently-released-first would need an order for every free port ever released,
/// memory that grows with the range, not with the ports in use (docs/ARCHITECTURE.md).
/// Every port was handed out, so the cursor stands where the walk started (a random
/// port); ports released in another order come back in the cursor's order from there.
#[test]
fn after_a_full_lap_ports_come_back_in_cursor_order() {
    let (_clock, reg) = manual_registry(9000, 9009, Duration::from_micros(10));
    let flow = reg.flow(flow_keys(1)[0]);
    let start = flow.allocate_port().unwrap();
    for _ in 1..10 {
        flow.allocate_port().unwrap();
    }
    for p in [9009, 9005, 9000] {
        assert_eq!(flow.release(p, false), Released::Immediate);
    }
    let got: Vec<u16> = (0..3).map(|_| flow.allocate_port().unwrap()).collect();
    let mut want = vec![9000, 9005, 9009];
    let at = want.iter().position(|&p| p >= start).unwrap_or(0);
    want.rotate_left(at);
    assert_eq!(got, want, "walk started at {start}");
    assert_eq!(flow.allocate_port(), None);
}

/// Two registries (two processes) towards one destination do not walk the range in
/// step: their pools start at different, random places.
#[test]
fn walks_start_at_random_places() {
    let starts: BTreeSet<u16> = (0..8)
        .map(|_| {
            let (_clock, reg) = manual_registry(10_000, 29_999, Duration::from_micros(10));
            reg.flow(flow_keys(1)[0]).allocate_port().unwrap()
        })
        .collect();
    assert!(starts.len() >= 7, "eight registries started at {starts:?}");
}
