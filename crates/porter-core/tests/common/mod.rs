//! Helpers shared by the integration tests.

use std::time::{Duration, Instant};

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
