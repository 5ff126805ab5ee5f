//! Ports that `bind()` refused on a local address, skipped there for a while.
//!
//! `EADDRINUSE` at `bind()` (with `SO_REUSEADDR` set, as porter sets it) means a listener,
//! or a socket bound without `SO_REUSEADDR`, holds the port on that address: usually for
//! long, and for every destination alike. Rather than find that out again on every lap of
//! every pool, the registry remembers the port for the local address, and every flow from
//! that address passes over it until [`BLOCK_PERIOD`] has gone by; then one bind tries it
//! again. The check costs one relaxed load while nothing is blocked.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

/// How long a refused port is passed over on its local address.
pub const BLOCK_PERIOD: Duration = Duration::from_secs(60);

/// Refused ports by local address, each with the time it may be tried again.
#[derive(Debug, Default)]
pub(crate) struct Blocked {
    /// Ports blocked now or lately (an upper bound: expiry is lazy).
    count: AtomicUsize,
    by_address: Mutex<FxHashMap<IpAddr, Vec<(u16, u64)>>>,
}

impl Blocked {
    /// Passes over `port` on `local` until `until_us`.
    pub(crate) fn block(&self, local: IpAddr, port: u16, until_us: u64) {
        let mut map = self.by_address.lock();
        let list = map.entry(local).or_default();
        match list.binary_search_by_key(&port, |&(p, _)| p) {
            Ok(i) => list[i].1 = until_us,
            Err(i) => {
                list.insert(i, (port, until_us));
                self.count.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The ports blocked on `local` at `now_us`, sorted (forgetting those whose time is up);
    /// empty without taking the lock while nothing is blocked anywhere.
    pub(crate) fn ports(&self, local: IpAddr, now_us: u64) -> Vec<u16> {
        if self.count.load(Ordering::Relaxed) == 0 {
            return Vec::new();
        }
        let mut map = self.by_address.lock();
        let Some(list) = map.get_mut(&local) else {
            return Vec::new();
        };
        let before = list.len();
        list.retain(|&(_, until)| until > now_us);
        self.count.fetch_sub(before - list.len(), Ordering::Relaxed);
        let ports = list.iter().map(|&(p, _)| p).collect();
        if list.is_empty() {
            map.remove(&local);
        }
        ports
    }

    /// Whether anything may be blocked (cheap; expiry is lazy).
    pub(crate) fn any(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn blocks_per_address_until_the_deadline() {
        let b = Blocked::default();
        let a = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let other = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        assert!(!b.any());
        b.block(a, 7000, 100);
        b.block(a, 6000, 200);
        b.block(a, 7000, 150);
        assert_eq!(b.ports(a, 0), vec![6000, 7000]);
        assert!(b.ports(other, 0).is_empty());
        assert_eq!(b.ports(a, 150), vec![6000]);
        assert!(b.ports(a, 200).is_empty());
        assert!(!b.any());
    }
}
