//! The registry: every flow's pool, shared safely by every thread of the process.
//!
//! A flow is (local address, remote address, remote port). Flows live in a map split into
//! shards, each behind its own read-write lock, and each pool has its own mutex, so two
//! threads only meet when they use the same flow. A [`Flow`] handle keeps the pool it
//! found, so callers that hold one (the JavaScript binding does, per destination) skip the
//! map entirely on the allocation path: one uncontended lock per allocate or release.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};
use rustc_hash::{FxBuildHasher, FxHashSet};

use crate::aging::AgingPort;
use crate::blocked::{Blocked, BLOCK_PERIOD};
use crate::clock::{Clock, MonotonicClock};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::host::HostPorts;
use crate::pool::{Marked, Pool, Released};
use crate::stats::{Stats, StatsSnapshot};
use crate::zones::Zones;

const SHARDS: usize = 16;

/// The identity of a pool: (local address, remote address, remote port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    /// Local source address; the unspecified address of the family by default.
    pub local: IpAddr,
    /// Remote address.
    pub remote: IpAddr,
    /// Remote port.
    pub remote_port: u16,
}

impl FlowKey {
    /// The key for `remote` from `local` (or the unspecified address of its family).
    pub fn new(local: Option<IpAddr>, remote: SocketAddr) -> Self {
        let local = local.unwrap_or(match remote {
            SocketAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            SocketAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        });
        Self {
            local,
            remote: remote.ip(),
            remote_port: remote.port(),
        }
    }

    /// The destination as a socket address.
    pub fn remote_addr(&self) -> SocketAddr {
        SocketAddr::new(self.remote, self.remote_port)
    }
}

#[derive(Debug)]
struct FlowEntry {
    key: FlowKey,
    pool: Mutex<Pool>,
}

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

/// All pools of one configuration.
pub struct Registry {
    config: Config,
    host: HostPorts,
    zones: Zones,
    local_addresses: Vec<IpAddr>,
    aging_us: u64,
    clock: Box<dyn Clock>,
    shards: Box<[RwLock<FxHashSet<FlowRef>>]>,
    blocked: Blocked,
    /// State of the registry's random numbers (splitmix64), seeded per registry.
    random: AtomicU64,
    pub(crate) stats: Stats,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// One pool as seen at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSnapshot {
    /// The flow.
    pub key: FlowKey,
    /// Ports in use, ascending.
    pub in_use: Vec<u16>,
    /// Ports aging, by deadline, with the microseconds left.
    pub aging: Vec<(u16, u64)>,
    /// Ports of the range free for this flow.
    pub free: u32,
}

/// One pool's counts at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolCounts {
    /// The flow.
    pub key: FlowKey,
    /// Ports in use.
    pub in_use: u32,
    /// Ports aging.
    pub aging: u32,
    /// Ports of the range free for this flow.
    pub free: u32,
}

/// Counts summed over a number of pools.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolTotals {
    /// How many pools.
    pub pools: u64,
    /// Ports in use.
    pub in_use: u64,
    /// Ports aging.
    pub aging: u64,
    /// Ports free.
    pub free: u64,
}

impl PoolTotals {
    fn add(&mut self, p: &PoolCounts) {
        self.pools += 1;
        self.in_use += u64::from(p.in_use);
        self.aging += u64::from(p.aging);
        self.free += u64::from(p.free);
    }
}

/// The busiest pools with their own counts, and the others summed: what an exporter
/// with a cap on its series needs, without one value per pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSummary {
    /// At most the number asked for, busiest first (see [`Registry::pool_summary`]).
    pub busiest: Vec<PoolCounts>,
    /// Every other pool, summed.
    pub others: PoolTotals,
}

/// Busiest first: more ports in use, then more aging, then by flow key (so that ties
/// always fall the same way).
fn busiest_first(a: &PoolCounts, b: &PoolCounts) -> std::cmp::Ordering {
    b.in_use
        .cmp(&a.in_use)
        .then(b.aging.cmp(&a.aging))
        .then(a.key.cmp(&b.key))
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
    use std::hash::BuildHasher;
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
    /// A registry with the real monotonic clock, on this host's settings (read now, see
    /// [`HostPorts::read`]). Fails when the mode cannot work here ([`Zones::check`]).
    pub fn new(config: Config) -> Result<Arc<Self>> {
        Self::with_clock(config, MonotonicClock::new())
    }

    /// A registry driven by `clock` (a [`crate::ManualClock`] in tests).
    pub fn with_clock(config: Config, clock: impl Clock) -> Result<Arc<Self>> {
        Self::with_host(config, HostPorts::read(), Vec::new(), clock)
    }

    /// A registry whose users take their source addresses from `local_addresses`, in
    /// order (a setting kept with the registry so every thread sees the same).
    pub fn with_local_addresses(config: Config, local_addresses: Vec<IpAddr>) -> Result<Arc<Self>> {
        Self::with_host(config, HostPorts::read(), local_addresses, MonotonicClock::new())
    }

    /// A registry for a host with the settings `host` (read or given by hand).
    pub fn with_host(
        config: Config,
        host: HostPorts,
        local_addresses: Vec<IpAddr>,
        clock: impl Clock,
    ) -> Result<Arc<Self>> {
        let registry = Self::build(config, host, local_addresses, clock);
        registry.zones.check()?;
        Ok(registry)
    }

    fn build(config: Config, host: HostPorts, local_addresses: Vec<IpAddr>, clock: impl Clock) -> Arc<Self> {
        let shards = (0..SHARDS).map(|_| RwLock::new(FxHashSet::default())).collect();
        Arc::new(Self {
            zones: Zones::new(config.range, config.mode, &host),
            host,
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
        GLOBAL.get_or_init(|| Registry::build(Config::default(), HostPorts::read(), Vec::new(), MonotonicClock::new()))
    }

    /// The process-wide registry with `config`: creates it, or returns it if it already
    /// has that configuration; [`Error::GlobalConfigured`] if it has another.
    pub fn init_global(config: Config) -> Result<&'static Arc<Registry>> {
        Self::init_global_with(config, Vec::new())
    }

    /// [`Registry::init_global`] with source addresses (see [`Registry::with_local_addresses`]).
    pub fn init_global_with(config: Config, local_addresses: Vec<IpAddr>) -> Result<&'static Arc<Registry>> {
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

    /// The host's port settings as read when the registry was made.
    pub fn host(&self) -> &HostPorts {
        &self.host
    }

    /// Which ports porter binds itself and which the kernel picks.
    pub fn zones(&self) -> &Zones {
        &self.zones
    }

    /// A random number (splitmix64 over a per-registry seed; not for cryptography).
    pub(crate) fn random(&self) -> u64 {
        mix(self.random.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed))
    }

    /// The source addresses its users take, in order (empty: the unspecified address).
    pub fn local_addresses(&self) -> &[IpAddr] {
        &self.local_addresses
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The registry clock, in microseconds.
    pub fn now_us(&self) -> u64 {
        self.clock.now_us()
    }

    fn shard(&self, key: &FlowKey) -> &RwLock<FxHashSet<FlowRef>> {
        let hash = FxBuildHasher.hash_one(key);
        &self.shards[(hash >> 32) as usize % SHARDS]
    }

    /// The flow for `key`, creating its (empty) pool on first use.
    pub fn flow(self: &Arc<Self>, key: FlowKey) -> Flow {
        let shard = self.shard(&key);
        let found = shard.read().get(&key).map(|f| f.0.clone());
        let entry = match found {
            Some(entry) => entry,
            None => {
                let mut map = shard.write();
                match map.get(&key) {
                    Some(f) => f.0.clone(),
                    None => {
                        // Each pool starts its walk at a random port: processes that share the
                        // host then do not try the same ports in the same order.
                        let start = self.zones.nth_explicit(self.random()).unwrap_or(0);
                        let entry = Arc::new(FlowEntry {
                            key,
                            pool: Mutex::new(Pool::starting_at(start)),
                        });
                        map.insert(FlowRef(entry.clone()));
                        entry
                    }
                }
            }
        };
        Flow {
            registry: self.clone(),
            entry,
        }
    }

    /// Every pool with its ports in use, aging and free, after expiring aging ports.
    /// Sorted by flow.
    pub fn snapshot(&self) -> Vec<PoolSnapshot> {
        let now = self.now_us();
        let range = self.config.range;
        let zones = &self.zones;
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let map = shard.read();
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
        let mut all = self.counts();
        if busiest < all.len() {
            all.select_nth_unstable_by(busiest, busiest_first);
        }
        let rest = all.split_off(busiest.min(all.len()));
        all.sort_unstable_by(busiest_first);
        let mut others = PoolTotals::default();
        for p in &rest {
            others.add(p);
        }
        PoolSummary { busiest: all, others }
    }

    /// Every pool's counts, in no order.
    fn counts(&self) -> Vec<PoolCounts> {
        let now = self.now_us();
        let range = self.config.range;
        let mut out = Vec::with_capacity(self.pool_count());
        for shard in self.shards.iter() {
            for flow in shard.read().iter() {
                let mut pool = flow.0.pool.lock();
                pool.expire(range, now);
                out.push(PoolCounts {
                    key: flow.0.key,
                    in_use: pool.in_use_count() as u32,
                    aging: pool.aging_count() as u32,
                    free: pool.free_count(&self.zones),
                });
            }
        }
        out
    }

    /// Number of pools.
    pub fn pool_count(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }

    /// The counters now.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }
}

/// A handle on one flow's pool. Cheap to clone; keeps the registry alive.
#[derive(Debug, Clone)]
pub struct Flow {
    registry: Arc<Registry>,
    entry: Arc<FlowEntry>,
}

impl Flow {
    /// The flow's key.
    pub fn key(&self) -> &FlowKey {
        &self.entry.key
    }

    /// The registry the flow belongs to.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Takes a port porter binds itself, or `None` when every such port is in use or
    /// aging (or blocked on the flow's local address). The caller owes exactly one
    /// [`Flow::release`] for it; see [`Flow::allocate`] for a guard that gives it back by
    /// itself.
    #[inline]
    pub fn allocate_port(&self) -> Option<u16> {
        let reg = &self.registry;
        let port = if reg.blocked.any() {
            let now = reg.clock.now_us();
            let skip = reg.blocked.ports(self.entry.key.local, now);
            self.entry.pool.lock().allocate_skipping(&reg.zones, now, &skip)
        } else {
            let mut pool = self.entry.pool.lock();
            // The clock only matters when something ages: skip reading it otherwise.
            let now = if pool.aging_count() > 0 { reg.clock.now_us() } else { 0 };
            pool.allocate(&reg.zones, now)
        };
        if port.is_some() {
            self.registry.stats.allocations.inc();
        }
        port
    }

    /// After a collision with a socket porter does not know of (another process's, on the
    /// same port towards the same destination): the next port is looked for at a random
    /// place, not next to this one, where the other process is likely busy too.
    pub fn scatter(&self) {
        if let Some(port) = self.registry.zones.nth_explicit(self.registry.random()) {
            self.entry.pool.lock().jump_to(port);
        }
    }

    /// `bind()` refused `port` on this flow's local address (`EADDRINUSE`: a listener, or
    /// a socket bound without `SO_REUSEADDR`): every flow from that address passes over it
    /// for [`BLOCK_PERIOD`].
    pub fn block_port(&self, port: u16) {
        let reg = &self.registry;
        let until = reg.clock.now_us().saturating_add(BLOCK_PERIOD.as_micros() as u64);
        reg.blocked.block(self.entry.key.local, port, until);
    }

    /// Whether the kernel found its window full for this flow lately (and no port of the
    /// flow came back since): then a connect goes on without asking it again.
    pub fn kernel_window_full(&self) -> bool {
        let pool = self.entry.pool.lock();
        pool.kernel_window_full(self.registry.clock.now_us())
    }

    /// Remembers, for up to a second or until a port of the flow comes back, that the
    /// kernel found no port in its window for this flow.
    pub fn set_kernel_window_full(&self) {
        let until = self.registry.clock.now_us().saturating_add(1_000_000);
        self.entry.pool.lock().set_kernel_window_full(until);
    }

    /// Takes a port as a [`Lease`], or fails with [`Error::Exhausted`].
    pub fn allocate(&self) -> Result<Lease> {
        match self.allocate_port() {
            Some(port) => Ok(Lease {
                flow: self.clone(),
                port,
                armed: true,
            }),
            None => Err(self.exhausted(None)),
        }
    }

    /// Counts an exhaustion of this flow and builds its error (`fallback`: why the kernel
    /// fallback failed, if it was tried).
    pub(crate) fn exhausted(&self, fallback: Option<std::io::Error>) -> Error {
        self.registry
            .stats
            .exhausted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Error::Exhausted {
            local: self.entry.key.local,
            remote: self.entry.key.remote_addr(),
            range: self.registry.config.range,
            kernel_window: self.registry.zones.kernel_window().map(|w| w.ports),
            fallback,
        }
    }

    /// Gives `port` back, into aging or at once. [`Released::NotInUse`] (and no change)
    /// if it was not in use: a port is never released twice.
    #[inline]
    pub fn release(&self, port: u16, aging: bool) -> Released {
        let reg = &self.registry;
        let released = {
            let mut pool = self.entry.pool.lock();
            // Read the clock under the lock, so that deadlines enter the pool's FIFO in
            // order however the threads interleave.
            let deadline = aging.then(|| reg.clock.now_us().saturating_add(reg.aging_us));
            pool.release(reg.config.range, port, deadline)
        };
        match released {
            Released::Aging => reg.stats.releases_aging.inc(),
            Released::Immediate => reg.stats.releases_immediate.inc(),
            Released::NotInUse => {}
        }
        released
    }

    /// Records a port the kernel chose as in use for this flow (one more holder if it was
    /// in use already). The caller owes one [`Flow::release`] for it.
    pub fn mark_in_use(&self, port: u16) -> Marked {
        let marked = self.entry.pool.lock().mark_in_use(self.registry.config.range, port);
        self.registry.stats.allocations.inc();
        marked
    }

    /// Whether `port` is in use for this flow.
    pub fn is_in_use(&self, port: u16) -> bool {
        self.entry.pool.lock().is_in_use(self.registry.config.range, port)
    }

    /// Whether `port` is aging for this flow (expiring first).
    pub fn is_aging(&self, port: u16) -> bool {
        let mut pool = self.entry.pool.lock();
        pool.expire(self.registry.config.range, self.registry.clock.now_us());
        pool.is_aging(self.registry.config.range, port)
    }
}

/// Takes a port from the first of `flows` (the local addresses of one destination, in
/// order) that has one free, and returns its index with the port; the caller owes one
/// [`Flow::release`]. [`Error::Exhausted`] for the first flow (and counted) when none has.
pub fn allocate_first(flows: &[Flow]) -> Result<(usize, u16)> {
    for (i, flow) in flows.iter().enumerate() {
        if let Some(port) = flow.allocate_port() {
            return Ok((i, port));
        }
    }
    let Some(first) = flows.first() else {
        return Err(Error::Io {
            syscall: "allocate",
            source: std::io::Error::from_raw_os_error(libc::EINVAL),
        });
    };
    Err(first.exhausted(None))
}

/// A port taken from a flow. Released into aging when dropped, unless released or
/// handed over with [`Lease::into_port`] first: a port cannot be lost on an error path.
#[derive(Debug)]
pub struct Lease {
    flow: Flow,
    port: u16,
    armed: bool,
}

impl Lease {
    pub(crate) fn new(flow: Flow, port: u16) -> Self {
        Self {
            flow,
            port,
            armed: true,
        }
    }

    /// The local port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The flow it belongs to.
    pub fn flow(&self) -> &Flow {
        &self.flow
    }

    /// The local socket address to bind.
    pub fn local_addr(&self) -> SocketAddr {
        SocketAddr::new(self.flow.key().local, self.port)
    }

    /// Gives the port back, into aging or at once.
    pub fn release(mut self, aging: bool) -> Released {
        self.armed = false;
        self.flow.release(self.port, aging)
    }

    /// Hands the duty to release over to the caller, who must call [`Flow::release`].
    pub fn into_port(mut self) -> u16 {
        self.armed = false;
        self.port
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.armed {
            self.flow.release(self.port, true);
        }
    }
}
