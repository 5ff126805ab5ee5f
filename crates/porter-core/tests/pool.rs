//! One pool on its own, without a registry: the order it hands ports out in, aging to
//! the microsecond, kernel-chosen ports, and the memory it takes (a sorted list, a
//! bitmap past the point where that is smaller, and back); and the same on the full
//! range through a registry.
#![allow(clippy::unwrap_used)]

#[path = "common/model.rs"]
mod model;

use std::collections::BTreeSet;

use model::{flow_keys, manual_registry, plain_host};
use porter_core::{Capacity, HostPorts, KernelFeatures, Marked, Mode, Pool, PortRange, Released, ServicePorts};
use std::time::Duration;

/// The capacity of `first..=last` in pool mode, on a host whose ephemeral range lies elsewhere.
fn capacity(first: u16, last: u16) -> Capacity {
    let host = HostPorts::new(
        PortRange::new(60000, 60999).unwrap(),
        vec![],
        KernelFeatures {
            bind_address_no_port: true,
            local_port_range: true,
        },
    );
    Capacity::new(
        PortRange::new(first, last).unwrap(),
        Mode::Pool,
        ServicePorts::Use,
        &host,
    )
}

#[test]
fn hands_out_in_order_and_skips_taken() {
    let z = capacity(100, 104);
    let r = z.range();
    let mut p = Pool::new();
    assert_eq!(p.allocate(&z, 0), Some(100));
    assert_eq!(p.allocate(&z, 0), Some(101));
    assert_eq!(p.release(r, 100, None), Released::Immediate);
    assert_eq!(p.allocate(&z, 0), Some(102));
    assert_eq!(p.allocate(&z, 0), Some(103));
    assert_eq!(p.allocate(&z, 0), Some(104));
    // Wraps round to the one free port, 100.
    assert_eq!(p.allocate(&z, 0), Some(100));
    assert_eq!(p.allocate(&z, 0), None);
    assert_eq!(p.free_count(&z), 0);
}

#[test]
fn starts_where_told_and_jumps() {
    let z = capacity(100, 109);
    let mut p = Pool::starting_at(105);
    assert_eq!(p.allocate(&z, 0), Some(105));
    p.jump_to(101);
    assert_eq!(p.allocate(&z, 0), Some(101));
    assert_eq!(p.allocate(&z, 0), Some(102));
    // A cursor outside the range starts the lap at its first port.
    p.jump_to(7);
    assert_eq!(p.allocate(&z, 0), Some(100));
}

#[test]
fn skips_the_given_ports_and_the_zones_holes() {
    let host = HostPorts::new(
        PortRange::new(103, 105).unwrap(),
        vec![(108, 108)],
        KernelFeatures {
            bind_address_no_port: true,
            local_port_range: true,
        },
    );
    let z = Capacity::new(
        PortRange::new(100, 109).unwrap(),
        Mode::Hybrid,
        ServicePorts::Use,
        &host,
    );
    let mut p = Pool::new();
    let got: Vec<u16> = std::iter::from_fn(|| p.allocate_skipping(&z, 0, &[101, 109])).collect();
    assert_eq!(got, vec![100, 102, 106, 107]);
    // The kernel's window (103-105) counts in the capacity, the reserved port not.
    assert_eq!(z.per_destination(), 9);
    assert_eq!(p.free_count(&z), 5);
}

#[test]
fn least_recently_released_first() {
    let z = capacity(1, 10);
    let r = z.range();
    let mut p = Pool::new();
    let a = p.allocate(&z, 0).unwrap();
    assert_eq!(p.release(r, a, None), Released::Immediate);
    // The port just released is the last to come back.
    let mut seen = vec![];
    for _ in 0..9 {
        let x = p.allocate(&z, 0).unwrap();
        seen.push(x);
        p.release(r, x, None);
    }
    assert!(!seen.contains(&a));
    assert_eq!(p.allocate(&z, 0), Some(a));
}

#[test]
fn aging_comes_back_exactly_at_deadline() {
    let z = capacity(7, 7);
    let r = z.range();
    let mut p = Pool::new();
    assert_eq!(p.allocate(&z, 0), Some(7));
    assert_eq!(p.release(r, 7, Some(1_000)), Released::Aging);
    assert_eq!(p.release(r, 7, Some(1_000)), Released::NotInUse);
    assert_eq!(p.allocate(&z, 999), None);
    assert!(p.is_aging(r, 7));
    assert_eq!(p.allocate(&z, 1_000), Some(7));
    assert_eq!(p.aging_count(), 0);
}

#[test]
fn kernel_ports_are_tracked_and_counted_per_holder() {
    let z = capacity(2000, 2001);
    let r = z.range();
    let mut p = Pool::new();
    assert_eq!(p.mark_in_use(r, 40000), Marked::Free);
    assert_eq!(p.mark_in_use(r, 40000), Marked::AlreadyInUse);
    assert_eq!(p.in_use(r), vec![40000]);
    assert_eq!(p.free_count(&z), 2);
    // The first holder's release leaves the port in use for the second.
    assert_eq!(p.release(r, 40000, Some(5)), Released::Aging);
    assert!(p.is_in_use(r, 40000));
    assert_eq!(p.aging_count(), 0);
    assert_eq!(p.release(r, 40000, Some(5)), Released::Aging);
    assert!(!p.is_in_use(r, 40000));
    assert_eq!(p.release(r, 40000, Some(5)), Released::NotInUse);
    // The kernel may hand out a port the pool still counts as aging.
    assert_eq!(p.mark_in_use(r, 40000), Marked::WasAging);
    assert_eq!(p.aging_count(), 0);
    assert!(p.is_in_use(r, 40000));
}

#[test]
fn kernel_window_full_until_a_release() {
    let z = capacity(1, 3);
    let r = z.range();
    let mut p = Pool::new();
    let port = p.allocate(&z, 0).unwrap();
    assert!(!p.kernel_window_full(0));
    p.set_kernel_window_full(1_000);
    assert!(p.kernel_window_full(999));
    assert!(!p.kernel_window_full(1_000));
    p.set_kernel_window_full(1_000);
    p.release(r, port, None);
    assert!(!p.kernel_window_full(0));
}

#[test]
fn sparse_to_dense_and_back_on_the_full_range() {
    let range = PortRange::DEFAULT;
    assert_eq!(range.len(), 64512);
    let (clock, reg) = manual_registry(range.first(), range.last(), Duration::from_millis(5));
    let flow = reg.flow(flow_keys(1)[0]);
    let other = reg.flow(flow_keys(2)[1]);
    let marker = other.allocate_port().unwrap();

    // Most of the range: past the point where a bitmap is smaller than a list.
    let n = 60_000usize;
    let mut got = Vec::with_capacity(n);
    for _ in 0..n {
        got.push(flow.allocate_port().unwrap());
    }
    let mut distinct: BTreeSet<u16> = got.iter().copied().collect();
    assert_eq!(distinct.len(), n, "a port handed out twice");
    assert!(got.iter().all(|&p| range.contains(p)));
    for p in [got[0], got[n / 2], got[n - 1]] {
        assert!(flow.is_in_use(p));
    }
    let snap = reg.snapshot();
    let mine = snap.iter().find(|s| s.key == *flow.key()).unwrap();
    assert_eq!(mine.in_use, distinct.iter().copied().collect::<Vec<_>>());
    assert_eq!(mine.free, range.len() - n as u32);
    // A kernel-chosen port below the range is tracked beside the bitmap.
    assert_eq!(flow.mark_in_use(80), Marked::Free);
    assert!(flow.is_in_use(80));

    // The rest of the range, then nothing.
    for _ in n..range.len() as usize {
        let p = flow.allocate_port().unwrap();
        assert!(distinct.insert(p), "{p} handed out twice");
    }
    assert_eq!(flow.allocate_port(), None);
    assert_eq!(reg.snapshot().iter().find(|s| s.key == *flow.key()).unwrap().free, 0);

    // Half back at once, half into aging.
    let all: Vec<u16> = (range.first()..=range.last()).collect();
    for (i, &p) in all.iter().enumerate() {
        let expected = if i % 2 == 0 {
            Released::Immediate
        } else {
            Released::Aging
        };
        assert_eq!(flow.release(p, i % 2 == 1), expected);
    }
    assert_eq!(flow.release(all[0], false), Released::NotInUse);
    let mine = reg.snapshot().into_iter().find(|s| s.key == *flow.key()).unwrap();
    assert_eq!(mine.in_use, vec![80]);
    assert_eq!(mine.aging.len(), all.len() / 2);
    assert_eq!(mine.free, range.len() / 2);
    assert!(flow.is_aging(all[1]) && !flow.is_aging(all[0]));
    clock.advance_ms(5);
    assert_eq!(flow.release(80, false), Released::Immediate);
    let mine = reg.snapshot().into_iter().find(|s| s.key == *flow.key()).unwrap();
    assert!(mine.in_use.is_empty() && mine.aging.is_empty());
    assert_eq!(mine.free, range.len());
    // The other flow was never touched.
    assert!(other.is_in_use(marker));
    assert_eq!(
        reg.snapshot().iter().find(|s| s.key == *other.key()).unwrap().in_use,
        vec![marker]
    );
}

#[test]
fn pool_memory_follows_the_ports_taken() {
    let range = PortRange::DEFAULT;
    let capacity = Capacity::new(range, Mode::Pool, ServicePorts::Use, &plain_host());
    let mut pool = Pool::new();
    assert_eq!(pool.heap_bytes(), 0);
    let ten: Vec<u16> = (0..10).map(|_| pool.allocate(&capacity, 0).unwrap()).collect();
    assert!(pool.heap_bytes() <= 64, "ten ports cost {} bytes", pool.heap_bytes());
    // The switch: a list of 4,033 ports (8,066 bytes) outgrows the 8,064-byte bitmap.
    let mut ports = ten;
    while ports.len() < 4032 {
        ports.push(pool.allocate(&capacity, 0).unwrap());
    }
    let sparse = pool.heap_bytes();
    // Room for 4,096 ports, and the list's 16-byte header (its length and capacity).
    assert!(
        (8064..=8192 + 16).contains(&sparse),
        "4,032 ports as a list: {sparse} bytes"
    );
    ports.push(pool.allocate(&capacity, 0).unwrap());
    let dense = pool.heap_bytes();
    assert!(
        (8064..8064 + 128).contains(&dense),
        "4,033 ports as a bitmap: {dense} bytes"
    );
    for _ in 0..20_000 {
        ports.push(pool.allocate(&capacity, 0).unwrap());
    }
    assert_eq!(pool.heap_bytes(), dense, "a bitmap does not grow");
    assert_eq!(
        pool.in_use(range),
        ports
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    for &p in &ports {
        assert_eq!(pool.release(range, p, None), Released::Immediate);
    }
    assert_eq!(pool.in_use_count(), 0);
    assert_eq!(pool.free_count(&capacity), range.len());
    // What an emptied list keeps: its header and room for 8 ports, so that a pool going
    // between empty and a few ports does not allocate every time.
    assert!(
        pool.heap_bytes() <= 32,
        "an empty pool keeps {} bytes",
        pool.heap_bytes()
    );
    // The same through aging.
    for _ in 0..5000 {
        let p = pool.allocate(&capacity, 10).unwrap();
        pool.release(range, p, Some(20));
    }
    assert_eq!(pool.aging_count(), 5000);
    assert_eq!(pool.free_count(&capacity), range.len() - 5000);
    assert_eq!(
        pool.allocate(&capacity, 20).map(|p| pool.release(range, p, None)),
        Some(Released::Immediate)
    );
    assert_eq!(pool.aging_count(), 0);
    assert!(
        pool.heap_bytes() <= 32,
        "nothing taken, yet {} bytes",
        pool.heap_bytes()
    );
}

/// The heap of a pool with `n` ports in use: at most 4 bytes a port (the target), with a
/// little room for the smallest lists and the bitmap's header.
fn assert_within_4_bytes_a_port(pool: &Pool, what: &str) {
    let n = pool.in_use_count();
    let bytes = pool.heap_bytes();
    assert!(bytes <= 4 * n + 64, "{what}: {n} ports in use take {bytes} bytes");
}

#[test]
fn memory_per_port_on_the_way_up() {
    let capacity = Capacity::new(PortRange::DEFAULT, Mode::Pool, ServicePorts::Use, &plain_host());
    let mut pool = Pool::new();
    for _ in 0..20_000 {
        pool.allocate(&capacity, 0).unwrap();
        assert_within_4_bytes_a_port(&pool, "growing");
    }
}

/// Memory should follow the ports in use when they come back too, not stay at its peak.
#[test]
fn memory_per_port_on_the_way_down() {
    let range = PortRange::DEFAULT;
    let capacity = Capacity::new(range, Mode::Pool, ServicePorts::Use, &plain_host());
    for peak in [4_000u16, 20_000] {
        let mut pool = Pool::new();
        let ports: Vec<u16> = (0..peak).map(|_| pool.allocate(&capacity, 0).unwrap()).collect();
        for &p in &ports {
            assert_eq!(pool.release(range, p, None), Released::Immediate);
            assert_within_4_bytes_a_port(&pool, &format!("shrinking from {peak}"));
        }
    }
}
