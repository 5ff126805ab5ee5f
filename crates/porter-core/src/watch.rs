//! Following the host's port settings while porter runs.
//!
//! `ip_local_port_range` and `ip_local_reserved_ports` may change at any time (an operator,
//! a configuration tool, a container runtime), and porter must never bind inside the
//! ephemeral range or a reserved port as it is *now*. Reading them on every connect would
//! cost two file reads per connect; instead one thread of the process ("porter-host")
//! reads them once a second, for every network namespace a registry was made in, and
//! publishes any change to that namespace's registries (each makes a new capacity: see
//! `live_capacity.rs`). A change takes effect for new binds within about a second, and costs
//! the connect path nothing: it reads the capacity in force with one atomic load, as before.
//!
//! The settings belong to the network namespace of the thread that reads them. A registry
//! is made in its creator's namespace, which need not be the watcher thread's (a thread
//! may have moved with `setns`): so each namespace's watch keeps the two files open, as
//! opened in that namespace, and reads them again through those descriptors, which keep
//! answering for the namespace they were opened in. Namespaces are told apart by the inode
//! of `/proc/thread-self/ns/net`. One watch per namespace, shared by its registries, is
//! dropped (and its two descriptors closed) with the last of them; the thread ends when no
//! watch is left, and starts again with the next. Where `/proc` cannot be read, a
//! registry reads the settings once, when it is made.
//!
//! `/etc/services` is looked at on the same tick (its size, time and inode; read again
//! when they change): see `services.rs`.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use crate::host::{HostPorts, PORT_RANGE_PATH, RESERVED_PATH};
use crate::services;

/// How often the settings are read again.
pub const WATCH_PERIOD: Duration = Duration::from_secs(1);

/// What follows a namespace's settings (a registry).
pub(crate) trait Follower: Send + Sync {
    /// The settings are now `host`.
    fn follow(&self, host: &HostPorts);
}

/// The settings of one network namespace and the registries that follow them.
pub(crate) struct HostWatch {
    /// The namespace: device and inode of its nsfs file.
    namespace: (u64, u64),
    port_range: File,
    reserved: File,
    state: Mutex<State>,
}

struct State {
    host: HostPorts,
    /// The followers by the key [`HostWatch::follow`] gave them. A follower leaves when it
    /// is dropped ([`HostWatch::unfollow`]), so no entry outlives it: a dead `Weak` would
    /// keep its whole allocation (a registry's, with its shards and counters) until pruned.
    followers: FxHashMap<u64, Weak<dyn Follower>>,
}

/// The key of the next follower, unique in the process.
static NEXT_FOLLOWER: AtomicU64 = AtomicU64::new(0);

/// Every namespace's watch, and whether the thread runs.
struct Watches {
    list: Vec<Weak<HostWatch>>,
    running: bool,
}

static WATCHES: Mutex<Watches> = Mutex::new(Watches {
    list: Vec::new(),
    running: false,
});

fn namespace() -> Option<(u64, u64)> {
    let m = std::fs::metadata("/proc/thread-self/ns/net").ok()?;
    Some((m.dev(), m.ino()))
}

/// The text of a `/proc/sys` file, read again from its start through `file`.
fn read_text(file: &File) -> Option<String> {
    let mut buf = [0u8; 8192];
    let n = file.read_at(&mut buf, 0).ok()?;
    // The reserved ports of a host that reserves very many may not fit: then read it whole.
    if n == buf.len() {
        let mut all = Vec::new();
        let mut offset = 0;
        loop {
            let n = file.read_at(&mut buf, offset).ok()?;
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            offset += n as u64;
        }
        return String::from_utf8(all).ok();
    }
    std::str::from_utf8(&buf[..n]).ok().map(str::to_owned)
}

/// The settings, read through the two files' descriptors.
fn read(port_range: &File, reserved: &File) -> HostPorts {
    HostPorts::from_texts(read_text(port_range).as_deref(), read_text(reserved).as_deref())
}

impl HostWatch {
    /// The watch of the calling thread's network namespace, made on first use (and the
    /// thread started); `None` where the namespace or its settings cannot be read.
    pub(crate) fn current() -> Option<Arc<HostWatch>> {
        let namespace = namespace()?;
        let mut watches = WATCHES.lock();
        if let Some(found) = watches
            .list
            .iter()
            .filter_map(Weak::upgrade)
            .find(|w| w.namespace == namespace)
        {
            return Some(found);
        }
        let port_range = File::open(PORT_RANGE_PATH).ok()?;
        let reserved = File::open(RESERVED_PATH).ok()?;
        let host = read(&port_range, &reserved);
        let watch = Arc::new(HostWatch {
            namespace,
            port_range,
            reserved,
            state: Mutex::new(State {
                host,
                followers: FxHashMap::default(),
            }),
        });
        watches.list.retain(|w| w.strong_count() > 0);
        watches.list.push(Arc::downgrade(&watch));
        if !watches.running {
            watches.running = std::thread::Builder::new()
                .name("porter-host".into())
                .spawn(run)
                .is_ok();
        }
        Some(watch)
    }

    /// The settings as last read.
    pub(crate) fn host(&self) -> HostPorts {
        self.state.lock().host.clone()
    }

    /// A key for a follower to come, to give [`HostWatch::follow`] and, when it is
    /// dropped, [`HostWatch::unfollow`].
    pub(crate) fn follower_key() -> u64 {
        NEXT_FOLLOWER.fetch_add(1, Ordering::Relaxed)
    }

    /// Adds `follower` under `key`, and tells it the settings now (they may have changed
    /// since it read them).
    pub(crate) fn follow(&self, key: u64, follower: Weak<dyn Follower>) {
        let mut state = self.state.lock();
        if let Some(f) = follower.upgrade() {
            f.follow(&state.host);
        }
        state.followers.insert(key, follower);
    }

    /// Removes the follower of `key` (from its `Drop`).
    pub(crate) fn unfollow(&self, key: u64) {
        self.state.lock().followers.remove(&key);
    }

    /// Whether the follower of `key` is there (for tests).
    #[cfg(test)]
    pub(crate) fn has_follower(&self, key: u64) -> bool {
        self.state.lock().followers.contains_key(&key)
    }

    /// Reads the settings again, and tells every follower if they changed. Followers are
    /// told under the lock, so one that was just added never misses a change.
    fn refresh(&self) {
        let host = read(&self.port_range, &self.reserved);
        let mut state = self.state.lock();
        if host == state.host {
            return;
        }
        state.host = host;
        for f in state.followers.values().filter_map(Weak::upgrade) {
            f.follow(&state.host);
        }
    }
}

/// The watcher thread: every [`WATCH_PERIOD`], every namespace's settings; ends when no
/// registry is left to follow them.
fn run() {
    loop {
        std::thread::sleep(WATCH_PERIOD);
        let live: Vec<Arc<HostWatch>> = {
            let mut watches = WATCHES.lock();
            watches.list.retain(|w| w.strong_count() > 0);
            if watches.list.is_empty() {
                watches.running = false;
                return;
            }
            watches.list.iter().filter_map(Weak::upgrade).collect()
        };
        services::refresh();
        for watch in live {
            watch.refresh();
        }
    }
}

/// Whether the watcher thread runs now (for tests).
pub fn watching() -> bool {
    WATCHES.lock().running
}
