//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test uses its own part

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

pub mod loopback;

/// Polls `cond` every 2 ms for up to 5 s; whether it became true.
pub fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

/// A reserve of `capacity` IPv4 sockets that a first take has woken, once its helper has
/// filled it.
pub fn filled_reserve(capacity: usize) -> porter_core::reserve::Reserve {
    let reserve = porter_core::reserve::Reserve::new(capacity);
    drop(reserve.take(socket2::Domain::IPV4).unwrap());
    assert!(
        wait_for(|| reserve.ready(socket2::Domain::IPV4) == capacity),
        "the helper filled the reserve"
    );
    reserve
}

/// The kernel's ephemeral range here (`ip_local_port_range`).
pub fn ephemeral_range() -> (u16, u16) {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let mut it = text.split_whitespace().map(|p| p.parse::<u16>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

/// The first of `size` consecutive ports below the kernel's ephemeral range (ports porter
/// binds explicitly, which the kernel never hands out by itself), each free on `ip` right
/// now. Drawn at random, so that test processes running at the same time rarely meet.
pub fn free_block(ip: IpAddr, size: u16) -> u16 {
    let (ephemeral_first, _) = ephemeral_range();
    let (low, high) = (10_000u32, u32::from(ephemeral_first) - u32::from(size));
    assert!(high > low, "no room below the ephemeral range {ephemeral_first}");
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        ^ std::process::id().rotate_left(16);
    for _ in 0..100 {
        // xorshift: a fresh candidate each round.
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let first = (low + seed % (high - low)) as u16;
        let all_free = (first..first + size).all(|p| std::net::TcpListener::bind(SocketAddr::new(ip, p)).is_ok());
        if all_free {
            return first;
        }
    }
    panic!("no {size} free ports below {ephemeral_first} on {ip}");
}
