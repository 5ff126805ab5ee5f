//! The reserve of ready sockets: what it hands out, and how it refills.

mod common;

use std::os::fd::AsRawFd;

use common::{filled_reserve, wait_for};
use porter_core::reserve::Reserve;
use socket2::{Domain, Socket, Type};

fn assert_ready_socket(socket: &Socket) {
    let fd = socket.as_raw_fd();
    // SAFETY: fcntl on a descriptor the caller owns.
    let (status, descriptor) = unsafe { (libc::fcntl(fd, libc::F_GETFL), libc::fcntl(fd, libc::F_GETFD)) };
    assert_ne!(status & libc::O_NONBLOCK, 0, "non-blocking");
    assert_ne!(descriptor & libc::FD_CLOEXEC, 0, "close-on-exec");
    assert!(socket.reuse_address().unwrap(), "SO_REUSEADDR");
    assert_eq!(socket.r#type().unwrap(), Type::STREAM);
    assert!(
        socket.local_addr().unwrap().as_socket().is_none_or(|a| a.port() == 0),
        "unbound"
    );
}

#[test]
fn only_asked_families_are_stocked_and_the_helper_fills_them() {
    let reserve = Reserve::new(8);
    assert_eq!(reserve.ready(Domain::IPV4), 0);
    // The first take finds nothing, makes its socket, and wakes the helper.
    let first = reserve.take(Domain::IPV4).unwrap();
    assert_ready_socket(&first);
    assert!(wait_for(|| reserve.ready(Domain::IPV4) == 8));
    assert_eq!(reserve.ready(Domain::IPV6), 0, "IPv6 was never asked for");
    for _ in 0..8 {
        let s = reserve.take(Domain::IPV4).unwrap();
        assert_ready_socket(&s);
    }
    let stats = reserve.stats();
    assert_eq!((stats.capacity, stats.taken, stats.made_inline), (8, 8, 1));
    // Falling to the low-water mark (2) woke the helper again.
    assert!(wait_for(|| reserve.ready(Domain::IPV4) >= 6));
}

#[test]
fn sockets_of_the_other_family_are_of_that_family() {
    let reserve = Reserve::new(4);
    let _ = reserve.take(Domain::IPV6).unwrap();
    reserve.refill();
    assert_eq!(reserve.ready(Domain::IPV6), 4);
    let s = reserve.take(Domain::IPV6).unwrap();
    assert_eq!(s.domain().unwrap(), Domain::IPV6);
    assert_ready_socket(&s);
}

#[test]
fn refill_never_exceeds_capacity() {
    let reserve = Reserve::new(5);
    let _ = reserve.take(Domain::IPV4).unwrap();
    reserve.refill();
    reserve.refill();
    assert!(wait_for(|| reserve.ready(Domain::IPV4) == 5));
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(reserve.ready(Domain::IPV4), 5);
}

/// The nice value of every thread of this process named `name` (field 19 of its stat).
fn nice_of_threads(name: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let path = task.path();
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).unwrap();
        // After the ")" that ends the command name: state is field 3, nice field 19.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        out.push(rest.split(' ').nth(16).unwrap().parse().unwrap());
    }
    out
}

#[test]
fn the_helper_runs_at_a_lower_priority() {
    let _reserve = filled_reserve(4);
    // (Other tests of this binary start helpers of their own; each lowers its priority
    // first thing, so wait for any that has only just started.)
    let lowered = wait_for(|| {
        let nices = nice_of_threads("porter-sockets");
        !nices.is_empty() && nices.iter().all(|&n| n == porter_core::reserve::HELPER_NICE)
    });
    assert!(lowered, "{:?}", nice_of_threads("porter-sockets"));
}
