//! The reserve of ready sockets: what it hands out, and how it refills.

mod common;

use std::os::fd::AsRawFd;

use common::wait_for;
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
