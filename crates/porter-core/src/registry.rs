//! The registry: every flow's pool for one configuration (one `Porter`), shared safely by
//! every thread of the process.
//!
//! Flows live in a map split into shards, each behind its own read-write lock, and each
//! pool has its own mutex, so two threads only meet when they use the same flow (or, for a
//! moment, when they create flows in the same shard). Creating a flow is one hash lookup
//! and one insert, whatever the number of flows.
//!
//! **Retirement.** A pool that holds nothing (no port in use, none aging) and that nobody
//! holds a handle on is dropped, so memory follows the destinations in use, not every
//! destination ever used. A flow that lets go of its last port in use, or the last handle
//! on an idle flow, puts the flow on its shard's list of candidates (a heap by the time the
//! pool will hold nothing: its last aging deadline, or at once); a candidate is checked
//! when it is due, at the next creation of a flow in that shard (two candidates per
//! creation) or the next inspection of the registry (all that are due). So a pool waits at
//! most its aging period past its last use, and then until the registry is next used.

use std::borrow::Borrow;
use std::collections::BinaryHeap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::{Mutex, RwLock};
use rustc_hash::{FxBuildHasher, FxHashSet};

use crate::aging::AgingPort;
use crate::blocked::Blocked;
use crate::clock::{Clock, MonotonicClock};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::flow::{Flow, FlowEntry, FlowKey};
use crate::host::HostPorts;
use crate::inspect::{summarize, PoolCounts, PoolSnapshot, PoolSummary};
use crate::live_zones::LiveZones;
use crate::pool::Pool;
use crate::stats::{Stats, StatsSnapshot};
use crate::watch::{Follower, HostWatch};
use crate::zones::Zones;

const SHARDS: usize = 16;
/// About what a dropped pool gives back (its entry, its parts, its map slot).
const POOL_BYTES: usize = 256;
/// About what a dropped registry gives back (shards, counters, zones).
const REGISTRY_BYTES: usize = 4096;
/// Candidates checked for retirement at each creation of a flow in their shard.
const RETIRE_PER_CREATION: usize = 2;

#[derive(Debug)]
struct FlowRef(Arc<FlowEntry>);

impl Borrow<FlowKey> for FlowRef {
    fn borrow(&self) -> &FlowKey {
        &self.0.key
    }
}
impl Hash for FlowRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.key.hash(state)
    }
}
impl PartialEq for FlowRef {
    fn eq(&self, other: &Self) -> bool {
        self.0.key == other.0.key
    }
}
impl Eq for FlowRef {}

/// A flow that may be dropped once `due_us` has come.
struct Candidate {
    due_us: u64,
    entry: Weak<FlowEntry>,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.due_us == other.due_us
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    /// The earliest due first out of a max-heap.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.due_us.cmp(&self.due_us)
    }
}

/// One shard: its flows, and its candidates for retirement.
#[derive(Default)]
struct Shard {
    flows: RwLock<FxHashSet<FlowRef>>,
    retiring: Mutex<BinaryHeap<Candidate>>,
}

impl Shard {
    /// Gives back the room of a map or heap that holds far less than it once did.
    fn shrink(&self) {
        let sparse = |len: usize, capacity: usize| capacity > 1024 && len * 4 < capacity;
        {
            let map = self.flows.read();
            if !sparse(map.len(), map.capacity()) {
                return self.shrink_heap(sparse);
            }
        }
        self.flows.write().shrink_to_fit();
        self.shrink_heap(sparse);
    }

    fn shrink_heap(&self, sparse: impl Fn(usize, usize) -> bool) {
        let mut heap = self.retiring.lock();
        if sparse(heap.len(), heap.capacity()) {
            heap.shrink_to_fit();
        }
    }
}

/// All pools of one configuration.
pub struct Registry {
    config: Config,
    zones: LiveZones,
    /// The watch of the network namespace the registry was made in, which keeps its zones
    /// in step with the host's settings (none for settings given by hand).
    watch: Option<Arc<HostWatch>>,
    local_addresses: Vec<IpAddr>,
    aging_us: u64,
    clock: Box<dyn Clock>,
    shards: Box<[Shard]>,
    pub(crate) blocked: Blocked,
    /// State of the registry's random numbers (splitmix64), seeded per registry.
    random: AtomicU64,
    pub(crate) stats: Stats,
}

impl Drop for Registry {
    fn drop(&mut self) {
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

static GLOBAL: OnceLock<Arc<Registry>> = OnceLock::new();

/// splitmix64's output function: a well-mixed 64-bit value from a counter.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seed that differs between processes and between registries of one process.
fn seed() -> u64 {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // RandomState's keys come from the OS's randomness.
    std::collections::hash_map::RandomState::new().hash_one((
        std::process::id(),
        nanos,
        COUNT.fetch_add(1, Ordering::Relaxed),
    ))
}

impl Registry {
    /// A registry with the real monotonic clock, on the settings of the calling thread's
    /// network namespace, read now and followed from then on (see [`Registry::host`]).
    /// Fails when the mode cannot work here ([`Zones::check`]) or a socket option is out
    /// of what the kernel takes ([`crate::SocketOptions::check`]).
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
        registry.config.socket_options.check()?;
        registry.zones().check()?;
        Ok(registry)
    }

    /// A registry that follows the settings of the calling thread's network namespace
    /// (or reads them once, where they cannot be followed).
    fn following(config: Config, local_addresses: Vec<IpAddr>, clock: impl Clock) -> Arc<Self> {
        let watch = HostWatch::current();
        let host = watch.as_ref().map_or_else(HostPorts::read, |w| w.host());
        let registry = Self::build(config, host, watch, local_addresses, clock);
        if let Some(watch) = &registry.watch {
            let follower: Arc<dyn Follower> = registry.clone();
            watch.follow(Arc::downgrade(&follower));
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
            zones: LiveZones::new(config.range, config.mode, config.service_ports, &host),
            watch,
            config,
            local_addresses,
            aging_us: u64::try_from(config.aging.as_micros()).unwrap_or(u64::MAX / 4),
            clock: Box::new(clock),
            shards,
            blocked: Blocked::default(),
            random: AtomicU64::new(seed()),
            stats: Stats::default(),
        })
    }

    /// The process-wide registry, shared by every thread (and so every worker thread of
    /// Node), created with the default configuration on first use.
    pub fn global() -> &'static Arc<Registry> {
        // The default mode (hybrid) works on every host: nothing to check.
        GLOBAL.get_or_init(|| Registry::following(Config::default(), Vec::new(), MonotonicClock::new()))
    }

    /// The process-wide registry with `config`: creates it, or returns it if it already
    /// has that configuration; [`Error::GlobalConfigured`] if it has another.
    pub fn init_global(config: Config) -> Result<&'static Arc<Registry>> {
        Self::init_global_with(config, Vec::new())
    }

    /// [`Registry::init_global`] with source addresses (see [`Registry::with_local_addresses`]).
    pub fn init_global_with(config: Config, local_addresses: Vec<IpAddr>) -> Result<&'static Arc<Registry>> {
        let local_addresses: Vec<IpAddr> = local_addresses.iter().map(IpAddr::to_canonical).collect();
        if GLOBAL.get().is_none() {
            // Checked before it becomes the global one: a failed check leaves none.
            let registry = Registry::with_local_addresses(config, local_addresses.clone())?;
            let _ = GLOBAL.set(registry);
        }
        let global = Self::global();
        if global.config == config && global.local_addresses == local_addresses {
            Ok(global)
        } else {
            Err(Error::GlobalConfigured)
        }
    }

    /// The host's port settings in force: as last read (about once a second) from the
    /// network namespace the registry was made in, or as given by hand.
    pub fn host(&self) -> &HostPorts {
        self.zones().host()
    }

    /// Which ports porter binds itself and which the kernel picks, on the host's settings
    /// in force. What it returns stays valid (and unchanged) while the registry lives;
    /// the next call may return newer zones.
    #[inline]
    pub fn zones(&self) -> &Zones {
        self.zones.get()
    }

    /// Makes `host` the settings in force (they are followed by themselves for a registry
    /// made with [`Registry::new`]: this is for settings given by hand). New binds follow
    /// them at once; ports in use or aging stay where they are. Whether anything changed.
    pub fn set_host(&self, host: HostPorts) -> bool {
        self.zones.publish(&host)
    }

    /// How many versions of its zones the registry made (one per distinct settings seen).
    pub fn zones_versions(&self) -> usize {
        self.zones.versions()
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
        mix(self.random.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed))
    }

    fn shard(&self, key: &FlowKey) -> &Shard {
        let hash = FxBuildHasher.hash_one(key);
        &self.shards[(hash >> 32) as usize % SHARDS]
    }

    /// The flow for `key`, creating its (empty) pool on first use. The key is taken in
    /// canonical form (IPv4-mapped IPv6 addresses as IPv4, see [`FlowKey`]).
    pub fn flow(self: &Arc<Self>, key: FlowKey) -> Flow {
        let key = FlowKey::scoped(Some(key.local_addr(0)), key.remote_addr());
        let shard = self.shard(&key);
        // The handle is counted under the shard's lock: a retirement (which takes it for
        // writing) sees it.
        let found = shard.flows.read().get(&key).map(|f| {
            f.0.handles.fetch_add(1, Ordering::AcqRel);
            f.0.clone()
        });
        let entry = match found {
            Some(entry) => entry,
            None => {
                let created = {
                    let mut map = shard.flows.write();
                    match map.get(&key) {
                        Some(f) => {
                            f.0.handles.fetch_add(1, Ordering::AcqRel);
                            f.0.clone()
                        }
                        None => {
                            // Each pool starts its walk at a random port: processes that
                            // share the host then do not try the same ports in the same order.
                            let start = self.zones().nth_explicit(self.random()).unwrap_or(0);
                            let entry = Arc::new(FlowEntry {
                                key,
                                pool: Mutex::new(Pool::starting_at(start)),
                                handles: AtomicU32::new(1),
                            });
                            map.insert(FlowRef(entry.clone()));
                            entry
                        }
                    }
                };
                self.retire_due(shard, self.now_us(), RETIRE_PER_CREATION);
                created
            }
        };
        Flow {
            registry: self.clone(),
            entry,
        }
    }

    /// Puts `entry` on its shard's candidates for retirement, due at `due_us`.
    pub(crate) fn retire_later(&self, entry: &Arc<FlowEntry>, due_us: u64) {
        self.shard(&entry.key).retiring.lock().push(Candidate {
            due_us,
            entry: Arc::downgrade(entry),
        });
    }

    /// Checks up to `limit` candidates of `shard` that are due at `now`.
    fn retire_due(&self, shard: &Shard, now: u64, limit: usize) {
        for _ in 0..limit {
            let candidate = {
                let mut heap = shard.retiring.lock();
                match heap.peek() {
                    Some(c) if c.due_us <= now => heap.pop(),
                    _ => None,
                }
            };
            let Some(candidate) = candidate else { return };
            if let Some(entry) = candidate.entry.upgrade() {
                self.try_retire(shard, entry, now);
            }
        }
    }

    /// Drops `entry` from the map if it holds nothing and nobody else holds it; otherwise
    /// leaves it to be queued again when that changes.
    fn try_retire(&self, shard: &Shard, entry: Arc<FlowEntry>, now: u64) {
        let mut map = shard.flows.write();
        let mut pool = entry.pool.lock();
        pool.expire(self.config.range, now);
        let in_map = map.get(&entry.key).is_some_and(|f| Arc::ptr_eq(&f.0, &entry));
        // No handle (route, lease, connect) holds it, and none can be taken while the
        // shard is locked.
        let unheld = entry.handles.load(Ordering::Acquire) == 0;
        if !in_map || !unheld || pool.in_use_count() > 0 {
            // Whoever holds it, or the release of its last port, queues it again.
            pool.queued = false;
            return;
        }
        if let Some(deadline) = pool.last_aging_deadline().filter(|&d| d > now) {
            // Still aging (a port came back and went again since it was queued).
            drop(pool);
            drop(map);
            self.retire_later(&entry, deadline);
            return;
        }
        map.remove(&entry.key);
        self.stats.pools_retired.fetch_add(1, Ordering::Relaxed);
        drop(pool);
        drop(map);
        crate::trim::freed(POOL_BYTES);
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

    /// Every pool with its ports in use, aging and free, after expiring aging ports and
    /// dropping idle pools. Sorted by flow.
    pub fn snapshot(&self) -> Vec<PoolSnapshot> {
        self.retire_idle();
        let now = self.now_us();
        let range = self.config.range;
        let zones = self.zones();
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let map = shard.flows.read();
            for flow in map.iter() {
                let mut pool = flow.0.pool.lock();
                pool.expire(range, now);
                out.push(PoolSnapshot {
                    key: flow.0.key,
                    in_use: pool.in_use(range),
                    aging: pool
                        .aging()
                        .into_iter()
                        .map(|AgingPort { port, deadline_us }| (port, deadline_us.saturating_sub(now)))
                        .collect(),
                    free: pool.free_count(zones),
                });
            }
        }
        out.sort_by_key(|p| p.key);
        out
    }

    /// Every pool's counts (in use, aging, free) after expiring aging ports: what
    /// [`Registry::snapshot`] gives, without copying the ports themselves. Sorted by flow.
    pub fn pool_counts(&self) -> Vec<PoolCounts> {
        let mut out = self.counts();
        out.sort_by_key(|p| p.key);
        out
    }

    /// The `busiest` pools with the most ports in use (then aging; ties by flow key),
    /// busiest first, and the others summed; aging ports expired first. Linear in the
    /// number of pools plus `busiest * log(busiest)`.
    pub fn pool_summary(&self, busiest: usize) -> PoolSummary {
        summarize(self.counts(), busiest)
    }

    /// Every pool's counts, in no order.
    fn counts(&self) -> Vec<PoolCounts> {
        self.retire_idle();
        let now = self.now_us();
        let range = self.config.range;
        let zones = self.zones();
        let mut out = Vec::with_capacity(self.pool_count());
        for shard in self.shards.iter() {
            for flow in shard.flows.read().iter() {
                let mut pool = flow.0.pool.lock();
                pool.expire(range, now);
                out.push(PoolCounts {
                    key: flow.0.key,
                    in_use: pool.in_use_count() as u32,
                    aging: pool.aging_count() as u32,
                    free: pool.free_count(zones),
                });
            }
        }
        out
    }

    /// Number of pools (without dropping idle ones first).
    pub fn pool_count(&self) -> usize {
        self.shards.iter().map(|s| s.flows.read().len()).sum()
    }

    /// The counters now, after dropping the idle pools that are due.
    pub fn stats(&self) -> StatsSnapshot {
        self.retire_idle();
        let mut s = self.stats.snapshot();
        s.pools = self.pool_count() as u64;
        s
    }
}

impl Follower for Registry {
    fn follow(&self, host: &HostPorts) {
        self.zones.publish(host);
    }
}
