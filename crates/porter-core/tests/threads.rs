//! The registry shared by threads: one flow hammered from several at once, with no port
//! handed out twice and aging deadlines in release order.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use porter_core::{Config, Flow, ManualClock, Mode, PortRange, Registry, Released, ServicePorts};

use common::loopback::*;

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
