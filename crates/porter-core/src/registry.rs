//! The registry: every flow's pool for one configuration (one `Porter`), shared safely by
//! every thread of the process.
//!
//! Flows live in a map split into shards (`shard.rs`), each behind its own read-write
//! lock, and each pool has its own mutex, so two threads only meet when they use the same
//! flow (or, for a moment, when they create flows in the same shard). Creating a flow is
//! one hash lookup and one insert, whatever the number of flows (`flow.rs`). A pool that
//! holds nothing and that nobody holds is dropped (`retire.rs`). The registry also keeps
//! what its flows share: the configuration, the capacity in force (`live_capacity.rs`, following
//! the host's settings through `watch.rs`), the clock, the ports `bind()` refused, the
//! random numbers and the counters. Inspection is in `inspect.rs`, the default
//! registry in `default_registry.rs`.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rustc_hash::FxBuildHasher;

use crate::blocked::Blocked;
use crate::capacity::Capacity;
use crate::clock::{Clock, MonotonicClock};
use crate::config::Config;
use crate::error::Result;
use crate::flow_entry::FlowEntry;
use crate::flow_key::FlowKey;
use crate::host::HostPorts;
use crate::live_capacity::LiveCapacity;
use crate::random::Random;
use crate::retire::POOL_BYTES;
use crate::shard::{Shard, SHARDS};
use crate::stats::{Counters, PorterStats};
use crate::watch::{Follower, HostWatch};

/// About what a dropped registry gives back (shards, counters, capacity).
const REGISTRY_BYTES: usize = 4096;

/// All pools of one configuration.
pub struct Registry {
    config: Config,
    capacity: LiveCapacity,
    /// The watch of the network namespace the registry was made in, which keeps its capacity
    /// in step with the host's settings (none for settings given by hand).
    watch: Option<Arc<HostWatch>>,
    /// Its key among the watch's followers.
    follower_key: u64,
    local_addresses: Vec<IpAddr>,
    aging_us: u64,
    clock: Box<dyn Clock>,
    shards: Box<[Shard]>,
    pub(crate) blocked: Blocked,
    random: Random,
    pub(crate) stats: Counters,
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(watch) = &self.watch {
            watch.unfollow(self.follower_key);
        }
        crate::trim::freed(REGISTRY_BYTES + self.pool_count() * POOL_BYTES);
        // Registries go one by one, as the engine collects dropped Porters: trim once a
        // megabyte of them has gone, not only every TRIM_EVERY bytes.
        crate::trim::settle(crate::trim::TRIM_AFTER_SWEEP);
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// A registry with the real monotonic clock, on the settings of the calling thread's
    /// network namespace, read now and followed from then on (see [`Registry::host`]).
    /// Fails when the mode cannot work here ([`Capacity::check`]).
    pub fn new(config: Config) -> Result<Arc<Self>> {
        Self::with_clock(config, MonotonicClock::new())
    }

    /// A registry driven by `clock` (a [`crate::ManualClock`] in tests).
    pub fn with_clock(config: Config, clock: impl Clock) -> Result<Arc<Self>> {
        Self::watched(config, Vec::new(), clock)
    }

    /// A registry whose users take their source addresses from `local_addresses`, in
    /// order (a setting kept with the registry so every thread sees the same).
    pub fn with_local_addresses(config: Config, local_addresses: Vec<IpAddr>) -> Result<Arc<Self>> {
        Self::watched(config, local_addresses, MonotonicClock::new())
    }

    /// A registry for a host with the settings `host`, given by hand (for tests and tools
    /// that model another host): they change only through [`Registry::set_host`]. Fails
    /// as [`Registry::new`] does.
    pub fn with_host(
        config: Config,
        host: HostPorts,
        local_addresses: Vec<IpAddr>,
        clock: impl Clock,
    ) -> Result<Arc<Self>> {
        Self::checked(Self::build(config, host, None, local_addresses, clock))
    }

    /// A registry on the settings of the calling thread's namespace, following them.
    fn watched(config: Config, local_addresses: Vec<IpAddr>, clock: impl Clock) -> Result<Arc<Self>> {
        Self::checked(Self::following(config, local_addresses, clock))
    }

    fn checked(registry: Arc<Self>) -> Result<Arc<Self>> {
        registry.capacity().check()?;
        Ok(registry)
    }

    /// A registry that follows the settings of the calling thread's network namespace
    /// (or reads them once, where they cannot be followed).
    pub(crate) fn following(config: Config, local_addresses: Vec<IpAddr>, clock: impl Clock) -> Arc<Self> {
        let watch = HostWatch::current();
        let host = watch.as_ref().map_or_else(HostPorts::read, |w| w.host());
        let registry = Self::build(config, host, watch, local_addresses, clock);
        if let Some(watch) = &registry.watch {
            let follower: Arc<dyn Follower> = registry.clone();
            watch.follow(registry.follower_key, Arc::downgrade(&follower));
        }
        registry
    }

    fn build(
        config: Config,
        host: HostPorts,
        watch: Option<Arc<HostWatch>>,
        local_addresses: Vec<IpAddr>,
        clock: impl Clock,
    ) -> Arc<Self> {
        let shards = (0..SHARDS).map(|_| Shard::default()).collect();
        let local_addresses = local_addresses.iter().map(IpAddr::to_canonical).collect();
        Arc::new(Self {
            capacity: LiveCapacity::new(config.range, config.mode, config.service_ports, &host),
            watch,
            follower_key: HostWatch::follower_key(),
            config,
            local_addresses,
            aging_us: u64::try_from(config.aging.as_micros()).unwrap_or(u64::MAX / 4),
            clock: Box::new(clock),
            shards,
            blocked: Blocked::default(),
            random: Random::seeded(),
            stats: Counters::default(),
        })
    }

    /// The host's port settings in force: as last read (about once a second) from the
    /// network namespace the registry was made in, or as given by hand.
    pub fn host(&self) -> &HostPorts {
        self.capacity().host()
    }

    /// Which ports porter binds itself and which the kernel picks, on the host's settings
    /// in force. What it returns stays valid (and unchanged) while the registry lives;
    /// the next call may return a newer one.
    #[inline]
    pub fn capacity(&self) -> &Capacity {
        self.capacity.get()
    }

    /// Makes `host` the settings in force (they are followed by themselves for a registry
    /// made with [`Registry::new`]: this is for settings given by hand). New binds follow
    /// them at once; ports in use or aging stay where they are. Whether anything changed.
    pub fn set_host(&self, host: HostPorts) -> bool {
        self.capacity.publish(&host)
    }

    /// How many versions of its capacity the registry made (one per distinct settings seen).
    pub fn capacity_versions(&self) -> usize {
        self.capacity.versions()
    }

    /// Whether the registry follows the host's settings (false where they were given by
    /// hand, or where `/proc` could not be read).
    pub fn follows_host(&self) -> bool {
        self.watch.is_some()
    }

    /// The source addresses its users take, in order (empty: the unspecified address).
    pub fn local_addresses(&self) -> &[IpAddr] {
        &self.local_addresses
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The aging period, in microseconds.
    pub fn aging_us(&self) -> u64 {
        self.aging_us
    }

    /// The registry clock, in microseconds.
    pub fn now_us(&self) -> u64 {
        self.clock.now_us()
    }

    /// A random number (splitmix64 over a per-registry seed; not for cryptography).
    pub(crate) fn random(&self) -> u64 {
        self.random.next()
    }

    /// Every shard of the map.
    pub(crate) fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// The shard of `key`.
    pub(crate) fn shard(&self, key: &FlowKey) -> &Shard {
        let hash = FxBuildHasher.hash_one(key);
        &self.shards[(hash >> 32) as usize % SHARDS]
    }

    /// Puts `entry` on its shard's candidates for retirement, due at `due_us`.
    pub(crate) fn retire_later(&self, entry: &Arc<FlowEntry>, due_us: u64) {
        self.shard(&entry.key).retire_later(entry, due_us);
    }

    /// Checks up to `limit` candidates of `shard` that are due at `now`, and counts the
    /// pools dropped.
    pub(crate) fn retire_due(&self, shard: &Shard, now: u64, limit: usize) {
        let retired = shard.retire_due(now, limit, self.config.range);
        if retired > 0 {
            self.stats.pools_retired.fetch_add(retired as u64, Ordering::Relaxed);
            crate::trim::freed(retired * POOL_BYTES);
        }
    }

    /// Checks every candidate that is due, in every shard (inspection does this first, so
    /// what it reports has no pool that should be gone).
    pub fn retire_idle(&self) {
        let now = self.now_us();
        for shard in self.shards.iter() {
            self.retire_due(shard, now, usize::MAX);
            shard.shrink();
        }
        crate::trim::settle(crate::trim::TRIM_AFTER_SWEEP);
    }

    /// Number of pools (without dropping idle ones first).
    pub fn pool_count(&self) -> usize {
        self.shards.iter().map(|s| s.flows.read().len()).sum()
    }

    /// The counters now, after dropping the idle pools that are due.
    pub fn stats(&self) -> PorterStats {
        self.retire_idle();
        let mut s = self.stats.snapshot();
        s.pools = self.pool_count() as u64;
        s
    }
}

impl Follower for Registry {
    fn follow(&self, host: &HostPorts) {
        self.capacity.publish(host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_registry_leaves_its_watch() {
        let registry = Registry::new(Config::default()).expect("the default configuration");
        let watch = registry
            .watch
            .clone()
            .expect("the settings are followed where /proc is read");
        let key = registry.follower_key;
        assert!(watch.has_follower(key));
        drop(registry);
        // Nothing is left behind that would keep the registry's allocation.
        assert!(!watch.has_follower(key));
    }
}
