//! A registry's capacity as the host's settings change: every version made so far, and the
//! one in force, which the allocation path reads with one atomic load.
//!
//! When the settings watcher (`watch.rs`) sees the ephemeral range, the reserved ports or
//! `/etc/services` change, it publishes the new settings to every registry of that network
//! namespace; the registry makes a new [`Capacity`] and points its current version at it.
//! A connect or an allocation in flight keeps the version it read: every version stays
//! alive (unchanged, at the same address) as long as the registry, so a reference handed
//! out is never left dangling, and no reader ever takes a lock or counts a reference. A
//! version equal to one made before is reused, so settings that go back and forth cost
//! no more memory than each distinct setting once.

use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::capacity::Capacity;
use crate::host::HostPorts;
use crate::mode::{Mode, ServicePorts};
use crate::range::PortRange;

/// The capacity of one registry, in every version made so far.
#[derive(Debug)]
pub(crate) struct LiveCapacity {
    range: PortRange,
    mode: Mode,
    services: ServicePorts,
    /// The version in force: always one of `versions`.
    current: AtomicPtr<Capacity>,
    /// Every version made, never dropped before `self`.
    versions: Mutex<Vec<Arc<Capacity>>>,
}

impl LiveCapacity {
    /// The capacity of `range` for `mode` on a host with the settings `host`.
    pub(crate) fn new(range: PortRange, mode: Mode, services: ServicePorts, host: &HostPorts) -> Self {
        let first = Arc::new(Capacity::new(range, mode, services, host));
        Self {
            range,
            mode,
            services,
            current: AtomicPtr::new(Arc::as_ptr(&first).cast_mut()),
            versions: Mutex::new(vec![first]),
        }
    }

    /// The capacity in force.
    #[inline]
    pub(crate) fn get(&self) -> &Capacity {
        // SAFETY: `current` always points into an `Arc` of `versions`, which holds each
        // of them until `self` is dropped and never hands out a mutable reference; the
        // Release store in `publish` comes after the capacity was written.
        unsafe { &*self.current.load(Ordering::Acquire) }
    }

    /// Makes the capacity in force that of the host's settings `host`; whether they changed.
    pub(crate) fn publish(&self, host: &HostPorts) -> bool {
        let mut versions = self.versions.lock();
        // Versions have distinct settings, the one in force among them.
        let next = match versions.iter().find(|z| z.host() == host) {
            Some(known) if std::ptr::eq(Arc::as_ptr(known), self.get()) => return false,
            Some(known) => Arc::as_ptr(known),
            None => {
                let capacity = Arc::new(Capacity::new(self.range, self.mode, self.services, host));
                let ptr = Arc::as_ptr(&capacity);
                versions.push(capacity);
                ptr
            }
        };
        self.current.store(next.cast_mut(), Ordering::Release);
        true
    }

    /// How many versions were made (distinct settings seen).
    pub(crate) fn versions(&self) -> usize {
        self.versions.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::KernelFeatures;

    fn host(first: u16, last: u16) -> HostPorts {
        HostPorts::new(
            PortRange::new(first, last).unwrap(),
            vec![],
            KernelFeatures {
                bind_address_no_port: true,
                local_port_range: true,
            },
        )
    }

    #[test]
    fn versions_are_kept_and_reused() {
        let live = LiveCapacity::new(
            PortRange::DEFAULT,
            Mode::Hybrid,
            ServicePorts::Avoid,
            &host(32768, 60999),
        );
        let first: *const Capacity = live.get();
        assert!(!live.publish(&host(32768, 60999)), "the same settings change nothing");
        assert!(live.publish(&host(20000, 29999)));
        assert_eq!(live.get().ephemeral(), PortRange::new(20000, 29999).unwrap());
        let held = live.get();
        assert!(live.publish(&host(32768, 60999)));
        assert!(std::ptr::eq(live.get(), first), "a version seen before is reused");
        assert_eq!(held.ephemeral().first(), 20000, "a version read before stays as it was");
        assert!(live.publish(&host(20000, 29999)));
        assert_eq!(live.versions(), 2);
    }
}
