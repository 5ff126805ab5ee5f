//! The reserve under descriptor pressure. Its own test binary (so its own process): it
//! lowers this process's RLIMIT_NOFILE, which would disturb any test running beside it.

mod common;

use std::os::fd::OwnedFd;

use common::{filled_reserve, wait_for};
use porter_core::reserve::PRESSURE_BACKOFF;
use socket2::Domain;

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn set_soft_limit(n: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on this process with a valid struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        let old = lim.rlim_cur;
        lim.rlim_cur = n;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        old
    }
}

#[test]
fn out_of_descriptors_the_reserve_gives_its_sockets_back_and_pauses() {
    let reserve = filled_reserve(32);

    // Room for only a few more descriptors.
    let old = set_soft_limit((open_descriptors() + 4) as u64);
    // Use the room up, as the application would.
    let mut mine: Vec<OwnedFd> = Vec::new();
    while let Ok(s) = socket2::Socket::new(Domain::IPV4, socket2::Type::STREAM, None) {
        mine.push(s.into());
    }
    assert!(!mine.is_empty());
    // Draining to the low-water mark wakes the helper, whose socket() now fails EMFILE.
    let taken: Vec<_> = (0..24).map(|_| reserve.take(Domain::IPV4).unwrap()).collect();
    assert!(
        wait_for(|| reserve.ready(Domain::IPV4) == 0),
        "the reserve closed what it held"
    );
    // Those descriptors are the application's again.
    let before = mine.len();
    while let Ok(s) = socket2::Socket::new(Domain::IPV4, socket2::Type::STREAM, None) {
        mine.push(s.into());
    }
    assert!(mine.len() >= before + 8, "got {} back", mine.len() - before);

    // Room again: within the pause nothing is made, after it the reserve refills.
    drop(mine);
    drop(taken);
    set_soft_limit(old);
    let _ = reserve.take(Domain::IPV4).unwrap();
    std::thread::sleep(PRESSURE_BACKOFF / 4);
    assert_eq!(reserve.ready(Domain::IPV4), 0, "paused");
    std::thread::sleep(PRESSURE_BACKOFF);
    let _ = reserve.take(Domain::IPV4).unwrap();
    assert!(
        wait_for(|| reserve.ready(Domain::IPV4) == 32),
        "refilled after the pause"
    );
}
