//! The host's port settings change under a registry: new binds follow the ephemeral range
//! and the reserved ports in force; ports held across a change stay held, and once back
//! they are not handed out again where porter may no longer bind. On settings given by
//! hand ([`Registry::set_host`]) and a manual clock, and, for the settings watcher, in a
//! network namespace of a thread's own (root only).
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use porter_core::{
    Config, Flow, FlowKey, HostPorts, KernelFeatures, ManualClock, Mode, PortRange, Registry, Released, ServicePorts,
};

const RANGE: (u16, u16) = (20_000, 29_999);
const EPHEMERAL_AFTER: (u16, u16) = (20_000, 20_999);
const RESERVED_AFTER: [(u16, u16); 2] = [(21_000, 21_199), (22_500, 22_599)];

fn features() -> KernelFeatures {
    KernelFeatures {
        bind_address_no_port: true,
        local_port_range: true,
    }
}

fn default_host() -> HostPorts {
    HostPorts::new(PortRange::LINUX_EPHEMERAL, vec![], features())
}

fn changed_host() -> HostPorts {
    let (a, b) = EPHEMERAL_AFTER;
    HostPorts::new(PortRange::new(a, b).unwrap(), RESERVED_AFTER.to_vec(), features())
}

fn forbidden_after(port: u16) -> bool {
    let in_ephemeral = (EPHEMERAL_AFTER.0..=EPHEMERAL_AFTER.1).contains(&port);
    in_ephemeral || RESERVED_AFTER.iter().any(|&(a, b)| (a..=b).contains(&port))
}

fn registry(clock: Arc<ManualClock>) -> Arc<Registry> {
    let config = Config {
        range: PortRange::new(RANGE.0, RANGE.1).unwrap(),
        aging: Duration::from_millis(100),
        ..Config::default()
    };
    Registry::with_host(config, default_host(), vec![], clock).unwrap()
}

fn flow(registry: &Arc<Registry>) -> Flow {
    registry.flow(FlowKey::new(
        None,
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 443),
    ))
}

fn take(flow: &Flow, n: usize) -> Vec<u16> {
    (0..n).map_while(|_| flow.allocate_port()).collect()
}

#[test]
fn new_binds_follow_the_settings_in_force() {
    let clock = Arc::new(ManualClock::new());
    let reg = registry(clock.clone());
    let f = flow(&reg);
    assert_eq!(
        reg.capacity().explicit_ports(),
        &[RANGE],
        "the whole range is porter's own before"
    );
    reg.set_host(changed_host());
    let capacity = reg.capacity();
    assert_eq!(capacity.explicit_ports(), &[(21_200, 22_499), (22_600, 29_999)]);
    assert_eq!(
        (capacity.explicit(), capacity.kernel(), capacity.per_destination()),
        (8_700, 1_000, 9_700)
    );
    let w = capacity.kernel_window().unwrap();
    assert_eq!((w.ports, w.narrowed), (PortRange::new(20_000, 20_999).unwrap(), false));
    let got = take(&f, 10_000);
    assert_eq!(got.len(), 8_700, "every port porter may bind, and no other");
    assert!(!got.iter().any(|&p| forbidden_after(p)));
    assert_eq!(reg.snapshot()[0].free, 1_000, "the kernel's window is left");
}

#[test]
fn ports_held_across_a_change_stay_held_and_are_not_handed_out_again() {
    let clock = Arc::new(ManualClock::new());
    let reg = registry(clock.clone());
    let f = flow(&reg);
    // 9,000 of the 10,000 ports: a run that covers ports of the future ephemeral range
    // and reserved ports whatever port the walk started at.
    let before = take(&f, 9_000);
    let inside: Vec<u16> = before.iter().copied().filter(|&p| forbidden_after(p)).collect();
    assert!(!inside.is_empty());
    assert!(reg.set_host(changed_host()));
    assert!(inside.iter().all(|&p| f.is_in_use(p)), "nothing is taken back");
    // Ports outside the new capacity (reserved ones) take none of it.
    let held_counted = before
        .iter()
        .filter(|&&p| !RESERVED_AFTER.iter().any(|&(a, b)| (a..=b).contains(&p)))
        .count();
    assert_eq!(reg.snapshot()[0].free, 9_700 - held_counted as u32);
    // Half come back at once, half into aging, which then passes.
    for (i, &p) in before.iter().enumerate() {
        assert_ne!(f.release(p, i % 2 == 0), Released::NotInUse);
    }
    clock.advance_ms(100);
    let after = take(&f, 10_000);
    assert_eq!(after.len(), 8_700);
    assert!(
        !after.iter().any(|&p| forbidden_after(p)),
        "no port of the new capacity is bound again"
    );
    // And back: the old settings' capacity is used again (not made twice).
    for &p in &after {
        f.release(p, false);
    }
    assert!(reg.set_host(default_host()));
    assert_eq!(take(&f, 10_001).len(), 10_000);
    assert!(!reg.set_host(default_host()), "the same settings again change nothing");
    assert_eq!(reg.capacity_versions(), 2);
}

#[test]
fn services_skipped_follow_the_settings() {
    let clock = Arc::new(ManualClock::new());
    let config = Config {
        range: PortRange::new(RANGE.0, RANGE.1).unwrap(),
        ..Config::default()
    };
    let reg = Registry::with_host(config, default_host(), vec![], clock.clone()).unwrap();
    assert_eq!(reg.capacity().service_ports(), 0);
    reg.set_host(default_host().with_services(vec![(22, 22), (24_000, 24_009)]));
    assert_eq!(reg.capacity().service_ports(), 10);
    let got = take(&flow(&reg), 10_000);
    assert_eq!(got.len(), 9_990);
    assert!(!got.iter().any(|p| (24_000..24_010).contains(p)));
    let using = Registry::with_host(
        Config {
            service_ports: ServicePorts::Use,
            mode: Mode::Pool,
            ..config
        },
        default_host().with_services(vec![(24_000, 24_009)]),
        vec![],
        clock,
    )
    .unwrap();
    assert_eq!(take(&flow(&using), 10_000).len(), 10_000);
}

/// Runs `body` on a thread of its own moved into a new network namespace, and keeps that
/// thread (and so the namespace) alive until `body`'s result has been used: the closure
/// gets a sender for "done". `None` when the thread could not enter a namespace.
fn in_new_netns<T: Send + 'static>(
    body: impl FnOnce() -> T + Send + 'static,
) -> Option<(T, mpsc::Sender<()>, std::thread::JoinHandle<()>)> {
    let (result_tx, result_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let handle = std::thread::spawn(move || {
        // SAFETY: unshare on the calling thread only (CLONE_NEWNET), no pointer.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            let _ = result_tx.send(None);
            return;
        }
        let _ = result_tx.send(Some(body()));
        let _ = done_rx.recv();
    });
    match result_rx.recv().ok().flatten() {
        Some(value) => Some((value, done_tx, handle)),
        None => {
            let _ = handle.join();
            None
        }
    }
}

fn write_sysctl(path: &str, value: &str) {
    std::fs::write(path, format!("{value}\n")).unwrap();
}

/// The settings watcher reads a registry's settings from the namespace it was made in,
/// whatever namespace the watcher itself runs in, and the registries of other namespaces
/// keep theirs.
#[test]
fn a_registry_follows_the_settings_of_the_namespace_it_was_made_in() {
    let host_ephemeral = HostPorts::read().ephemeral;
    // Made first, so that the watcher thread starts in this namespace, not the new one.
    let here = Registry::new(Config::default()).unwrap();
    let made = in_new_netns(|| {
        write_sysctl("/proc/sys/net/ipv4/ip_local_port_range", "40000 40999");
        let reg = Registry::new(Config::default()).unwrap();
        let seen = reg.host().ephemeral;
        write_sysctl("/proc/sys/net/ipv4/ip_local_port_range", "41000 41999");
        write_sysctl("/proc/sys/net/ipv4/ip_local_reserved_ports", "1500-1599");
        (reg, seen)
    });
    let Some(((reg, seen), done, thread)) = made else {
        // Skipped where a thread may not enter a namespace (not root); CI runs as root.
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI must run this as root");
        eprintln!("skipped: unshare(CLONE_NEWNET) failed (not root?)");
        return;
    };
    assert!(reg.follows_host() && here.follows_host());
    assert_eq!(
        seen,
        PortRange::new(40_000, 40_999).unwrap(),
        "read in its namespace when made"
    );
    assert!(
        common::wait_for(|| reg.host().ephemeral == PortRange::new(41_000, 41_999).unwrap()),
        "the change in its namespace reached it from this thread's: {:?}",
        reg.host()
    );
    assert_eq!(reg.host().reserved, vec![(1500, 1599)]);
    assert!(reg
        .capacity()
        .explicit_ports()
        .iter()
        .all(|&(a, b)| b < 1500 || a > 1599));
    assert!(porter_core::watching());
    assert_eq!(
        here.host().ephemeral,
        host_ephemeral,
        "this namespace's registry keeps its own"
    );
    drop(done);
    thread.join().unwrap();
}
