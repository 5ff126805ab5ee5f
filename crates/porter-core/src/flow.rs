//! Flows: one pool of ports per (local address, remote address, remote port), and the
//! handles that reach it.
//!
//! A [`Flow`] is a cheap handle on one flow's pool; holding one keeps the pool (and its
//! registry) alive, so callers that keep one per destination (a [`crate::Route`] does)
//! skip the registry's map on the allocation path: one uncontended lock per allocate or
//! release. A [`Lease`] is one port taken from a flow, given back when dropped unless
//! handed over.
//!
//! A pool nobody holds and that holds nothing (no port in use, none aging) is dropped by
//! its registry (see `registry.rs`, "retirement"): a flow that lets go of its last port,
//! or the last handle that lets go of an idle flow, puts it on its shard's list of
//! candidates.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::blocked::BLOCK_PERIOD;
use crate::error::{Error, Result};
use crate::pool::{Marked, Pool, Released};
use crate::registry::Registry;

/// The identity of a pool: (local address, remote address, remote port), and for a
/// link-local IPv6 flow the interface it goes through (its scope).
///
/// Addresses are kept in canonical form: an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`)
/// is the IPv4 address it maps, since the kernel gives both the same 4-tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowKey {
    /// Local address (the unspecified address when the kernel chooses it).
    pub local: IpAddr,
    /// Remote address.
    pub remote: IpAddr,
    /// Remote port.
    pub remote_port: u16,
    /// The interface index of a flow from or to a link-local IPv6 address (fe80::/10): the
    /// remote address's scope, or else the local one's; 0 for every other flow. One per
    /// flow, since a socket goes through one interface.
    pub scope: u32,
}

/// Whether the kernel reads a scope for `ip`: a link-local IPv6 address (fe80::/10).
fn is_link_local(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}

/// The scope id of `addr` where the kernel reads one, else 0.
fn scope_of(addr: SocketAddr) -> u32 {
    match addr {
        SocketAddr::V6(a) if is_link_local(IpAddr::V6(*a.ip())) => a.scope_id(),
        _ => 0,
    }
}

impl FlowKey {
    /// The key for `remote` from `local` (or the unspecified address of its family), both
    /// in canonical form; the scope is `remote`'s.
    pub fn new(local: Option<IpAddr>, remote: SocketAddr) -> Self {
        Self::scoped(local.map(|ip| SocketAddr::new(ip, 0)), remote)
    }

    /// [`FlowKey::new`] with the local address's scope too (the port of `local` is
    /// ignored): the flow's scope is the remote address's, or else the local one's.
    pub fn scoped(local: Option<SocketAddr>, remote: SocketAddr) -> Self {
        let remote_ip = remote.ip().to_canonical();
        let local_ip = local.map_or_else(|| unspecified_like(remote_ip), |l| l.ip().to_canonical());
        let scope = match scope_of(remote) {
            0 => local.map_or(0, scope_of),
            s => s,
        };
        Self {
            local: local_ip,
            remote: remote_ip,
            remote_port: remote.port(),
            scope,
        }
    }

    /// The scope of the local address (the flow's, when that address is link-local).
    pub fn local_scope(&self) -> u32 {
        if is_link_local(self.local) {
            self.scope
        } else {
            0
        }
    }

    /// The scope of the remote address (the flow's, when that address is link-local).
    pub fn remote_scope(&self) -> u32 {
        if is_link_local(self.remote) {
            self.scope
        } else {
            0
        }
    }

    /// The destination as a socket address (with its scope).
    pub fn remote_addr(&self) -> SocketAddr {
        with_scope(self.remote, self.remote_port, self.remote_scope())
    }

    /// The source address as a socket address with `port` (and its scope).
    pub fn local_addr(&self, port: u16) -> SocketAddr {
        with_scope(self.local, port, self.local_scope())
    }
}

fn with_scope(ip: IpAddr, port: u16, scope: u32) -> SocketAddr {
    match ip {
        IpAddr::V6(v6) => SocketAddr::V6(std::net::SocketAddrV6::new(v6, port, 0, scope)),
        IpAddr::V4(_) => SocketAddr::new(ip, port),
    }
}

/// The unspecified address of `ip`'s family.
pub(crate) fn unspecified_like(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// One flow as the registry's map holds it.
#[derive(Debug)]
pub(crate) struct FlowEntry {
    pub(crate) key: FlowKey,
    pub(crate) pool: Mutex<Pool>,
    /// [`Flow`] handles alive. Counted apart from the `Arc`'s references (the registry
    /// takes some of its own for a moment): when the last two handles go at once on two
    /// threads, each reading the `Arc`'s count before its own reference goes would see
    /// the other's, and neither would put the idle pool up for retirement. The handle
    /// that takes this count to zero does. The first handle is counted under the shard's
    /// lock (see `Registry::flow`), so a pool being retired never gains one.
    pub(crate) handles: AtomicU32,
}

/// A handle on one flow's pool. Cheap to clone; keeps the pool and the registry alive.
#[derive(Debug)]
pub struct Flow {
    pub(crate) registry: Arc<Registry>,
    pub(crate) entry: Arc<FlowEntry>,
}

impl Clone for Flow {
    fn clone(&self) -> Self {
        // This handle is alive: the count is not zero, and no retirement can be under way.
        self.entry.handles.fetch_add(1, Ordering::Relaxed);
        Self {
            registry: self.registry.clone(),
            entry: self.entry.clone(),
        }
    }
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
        let zones = reg.zones();
        let port = if reg.blocked.any() {
            let now = reg.now_us();
            let skip = reg.blocked.ports(self.entry.key.local, now);
            self.entry.pool.lock().allocate_skipping(zones, now, &skip)
        } else {
            let mut pool = self.entry.pool.lock();
            // The clock only matters when something ages: skip reading it otherwise.
            let now = if pool.aging_count() > 0 { reg.now_us() } else { 0 };
            pool.allocate(zones, now)
        };
        if port.is_some() {
            reg.stats.allocations.inc();
        }
        port
    }

    /// Takes a port as a [`Lease`], or fails with [`Error::Exhausted`].
    pub fn allocate(&self) -> Result<Lease> {
        match self.allocate_port() {
            Some(port) => Ok(Lease::new(self.clone(), port)),
            None => Err(self.exhausted(None)),
        }
    }

    /// Counts an exhaustion of this flow and builds its error (`fallback`: why the kernel
    /// fallback failed, if it was tried).
    pub(crate) fn exhausted(&self, fallback: Option<std::io::Error>) -> Error {
        let reg = &self.registry;
        reg.stats.exhausted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Error::Exhausted {
            local: self.entry.key.local,
            remote: self.entry.key.remote_addr(),
            range: reg.config().range,
            kernel_window: reg.zones().kernel_window().map(|w| w.ports),
            fallback,
        }
    }

    /// Gives `port` back, into aging or at once. [`Released::NotInUse`] (and no change)
    /// if it was not in use: a port is never released twice.
    #[inline]
    pub fn release(&self, port: u16, aging: bool) -> Released {
        let reg = &self.registry;
        let range = reg.config().range;
        let (released, idle_at) = {
            let mut pool = self.entry.pool.lock();
            // Read the clock under the lock, so that deadlines enter the pool's FIFO in
            // order however the threads interleave.
            let now = aging.then(|| reg.now_us());
            let released = pool.release(range, port, now.map(|t| t.saturating_add(reg.aging_us())));
            (released, Self::now_idle(&mut pool, now))
        };
        match released {
            Released::Aging => reg.stats.releases_aging.inc(),
            Released::Immediate => reg.stats.releases_immediate.inc(),
            Released::NotInUse => {}
        }
        if let Some(due) = idle_at {
            reg.retire_later(&self.entry, due);
        }
        released
    }

    /// When the pool holds no port in use (and is not queued yet): marks it queued and
    /// returns when it will hold nothing at all (its last aging deadline, or now).
    fn now_idle(pool: &mut Pool, now: Option<u64>) -> Option<u64> {
        if pool.queued || pool.in_use_count() > 0 {
            return None;
        }
        pool.queued = true;
        Some(pool.last_aging_deadline().or(now).unwrap_or(0))
    }

    /// After a collision with a socket porter does not know of (another process's, on the
    /// same port towards the same destination): the next port is looked for at a random
    /// place, not next to this one, where the other process is likely busy too.
    pub fn scatter(&self) {
        if let Some(port) = self.registry.zones().nth_explicit(self.registry.random()) {
            self.entry.pool.lock().jump_to(port);
        }
    }

    /// `bind()` refused `port` on this flow's local address (`EADDRINUSE`: a listener, or
    /// a socket bound without `SO_REUSEADDR`): every flow from that address passes over it
    /// for [`BLOCK_PERIOD`].
    pub fn block_port(&self, port: u16) {
        let reg = &self.registry;
        let until = reg.now_us().saturating_add(BLOCK_PERIOD.as_micros() as u64);
        reg.blocked.block(self.entry.key.local, port, until);
    }

    /// Whether the kernel found its window full for this flow lately (and no port of the
    /// flow came back since): then a connect goes on without asking it again.
    pub fn kernel_window_full(&self) -> bool {
        let pool = self.entry.pool.lock();
        pool.kernel_window_full(self.registry.now_us())
    }

    /// Remembers, for up to a second or until a port of the flow comes back, that the
    /// kernel found no port in its window for this flow.
    pub fn set_kernel_window_full(&self) {
        let until = self.registry.now_us().saturating_add(1_000_000);
        self.entry.pool.lock().set_kernel_window_full(until);
    }

    /// Records a port the kernel chose as in use for this flow (one more holder if it was
    /// in use already). The caller owes one [`Flow::release`] for it.
    pub fn mark_in_use(&self, port: u16) -> Marked {
        let marked = self.entry.pool.lock().mark_in_use(self.registry.config().range, port);
        self.registry.stats.allocations.inc();
        marked
    }

    /// Whether `port` is in use for this flow.
    pub fn is_in_use(&self, port: u16) -> bool {
        self.entry.pool.lock().is_in_use(self.registry.config().range, port)
    }

    /// Whether `port` is aging for this flow (expiring first).
    pub fn is_aging(&self, port: u16) -> bool {
        let range = self.registry.config().range;
        let mut pool = self.entry.pool.lock();
        pool.expire(range, self.registry.now_us());
        pool.is_aging(range, port)
    }

    /// The earliest time a port porter binds itself may come back to this flow without a
    /// release: its first aging deadline (`u64::MAX` when nothing ages).
    pub fn next_return_us(&self) -> u64 {
        self.entry.pool.lock().first_aging_deadline().unwrap_or(u64::MAX)
    }

    /// Whether `other` is a handle on the same pool.
    pub fn same_as(&self, other: &Flow) -> bool {
        Arc::ptr_eq(&self.entry, &other.entry)
    }
}

impl Drop for Flow {
    fn drop(&mut self) {
        // The last handle going: an idle pool may be dropped now.
        if self.entry.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            let idle_at = {
                let mut pool = self.entry.pool.lock();
                Self::now_idle(&mut pool, None)
            };
            if let Some(due) = idle_at {
                self.registry.retire_later(&self.entry, due);
            }
        }
    }
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
        self.flow.key().local_addr(self.port)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_mapped_addresses_are_their_ipv4_form() {
        let v4: SocketAddr = "10.1.1.1:80".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:10.1.1.1]:80".parse().unwrap();
        assert_eq!(FlowKey::new(None, v4), FlowKey::new(None, mapped));
        assert_eq!(FlowKey::new(None, mapped).local, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let local: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        assert_eq!(
            FlowKey::new(Some(local), v4).local,
            "127.0.0.2".parse::<IpAddr>().unwrap()
        );
        // A real IPv6 address stays what it is.
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        assert_eq!(FlowKey::new(None, v6).local, IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    }

    #[test]
    fn scoped_addresses_keep_their_scope_and_differ_by_it() {
        let on =
            |ip: &str, port, scope| SocketAddr::V6(std::net::SocketAddrV6::new(ip.parse().unwrap(), port, 0, scope));
        let a = FlowKey::scoped(Some(on("fe80::1", 0, 1)), on("fe80::2", 80, 1));
        assert_eq!((a.scope, a.local_scope(), a.remote_scope()), (1, 1, 1));
        assert_eq!(a.remote_addr(), on("fe80::2", 80, 1));
        assert_eq!(a.local_addr(9), on("fe80::1", 9, 1));
        assert_ne!(a, FlowKey::scoped(Some(on("fe80::1", 0, 2)), on("fe80::2", 80, 2)));
        // From the unspecified address: the destination's scope.
        let any = FlowKey::scoped(None, on("fe80::2", 80, 3));
        assert_eq!(
            (any.scope, any.local_scope(), any.remote_addr()),
            (3, 0, on("fe80::2", 80, 3))
        );
        // From a scoped source to an unscoped link-local destination: the source's.
        let from = FlowKey::scoped(Some(on("fe80::1", 0, 4)), on("fe80::2", 80, 0));
        assert_eq!(from.remote_addr(), on("fe80::2", 80, 4));
        // From a link-local source to a global destination: only the source has it.
        let out = FlowKey::scoped(Some(on("fe80::1", 0, 5)), on("2001:db8::1", 80, 0));
        assert_eq!(
            (out.local_addr(0), out.remote_addr()),
            (on("fe80::1", 0, 5), on("2001:db8::1", 80, 0))
        );
        // IPv4 has no scope, whatever the mapped form carried.
        assert_eq!(FlowKey::new(None, on("::ffff:10.0.0.1", 80, 3)).scope, 0);
        // Nor has an address the kernel reads no scope for.
        assert_eq!(
            FlowKey::new(None, on("::1", 80, 3)),
            FlowKey::new(None, "[::1]:80".parse().unwrap())
        );
    }
}
