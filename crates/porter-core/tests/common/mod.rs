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
