//! The plain model of one flow's pool that the registry is checked against: a set of
//! ports in use (with extra holders, when the kernel handed a port in use out again) and
//! a list of aging ports with their deadlines.
//!
//! Shared by the property test (`tests/model.rs`) and the model check at scale
//! (`examples/model_soak/`), which both include this file by path. Every check returns
//! what disagreed as an `Err` instead of panicking, so that the check at scale can count
//! and report a violation; the property test turns it into a panic with [`ok`].
#![allow(dead_code)] // each includer uses its own part

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use porter_core::{
    Config, Flow, FlowKey, HostPorts, KernelFeatures, ManualClock, Marked, Mode, PoolCounts, PoolSnapshot, PortRange,
    Registry, Released,
};

/// What a check found: nothing, or what disagreed.
pub type Checked = Result<(), String>;

/// Returns `Err(message)` from the enclosing function unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(format!($($arg)+));
        }
    };
}
#[allow(unused_imports)] // the property test asserts instead
pub(crate) use ensure;

/// Panics with the message of a failed check (for the property test).
#[track_caller]
pub fn ok(checked: Checked) {
    if let Err(e) = checked {
        panic!("{e}");
    }
}

/// A host with nothing reserved: the model knows of no port the pool must pass over.
pub fn plain_host() -> HostPorts {
    HostPorts::new(PortRange::LINUX_EPHEMERAL, vec![], KernelFeatures::probe())
}

/// A configuration in pool mode (every port of the range bound by porter), without
/// retries or kernel fallback.
pub fn pool_config(range: PortRange, aging: Duration) -> Config {
    Config {
        range,
        mode: Mode::Pool,
        aging,
        retry_attempts: 0,
        kernel_fallback: false,
        ..Config::default()
    }
}

/// A registry in pool mode on a plain host, driven by `clock`.
pub fn pool_registry(config: Config, clock: Arc<ManualClock>) -> Arc<Registry> {
    Registry::with_host(config, plain_host(), vec![], clock).unwrap()
}

/// A registry in pool mode on `first..=last`, aging for `aging`, on a manual clock.
pub fn manual_registry(first: u16, last: u16, aging: Duration) -> (Arc<ManualClock>, Arc<Registry>) {
    let clock = Arc::new(ManualClock::new());
    let config = pool_config(PortRange::new(first, last).unwrap(), aging);
    (clock.clone(), pool_registry(config, clock))
}

/// The first `n` (up to 3) of three destinations on loopback.
pub fn flow_keys(n: usize) -> Vec<FlowKey> {
    let all = [
        FlowKey::new(None, SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 80)),
        FlowKey::new(None, SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 443)),
        FlowKey::new(None, SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 80)),
    ];
    all[..n].to_vec()
}

/// A port near the range: `offset` 0 is `below` ports below its first port.
pub fn near(range: PortRange, offset: u16, below: u16) -> u16 {
    (u32::from(range.first()) + u32::from(offset))
        .saturating_sub(u32::from(below))
        .clamp(1, 65535) as u16
}

/// An operation on flows checked against the model: what the property test draws
/// (`tests/model.rs`) and what every thread of the model check at scale does on flows of
/// its own (`examples/model_soak`).
#[derive(Debug, Clone, Copy)]
pub enum ModelOp {
    /// Take a port (through a `Lease` when `lease`).
    Allocate { flow: usize, lease: bool },
    /// Release the `pick`-th port in use (a port of the range when none is).
    Release { flow: usize, pick: u64, aging: bool },
    /// Release a port twice: the second time must change nothing.
    DoubleRelease {
        flow: usize,
        pick: u64,
        first_aging: bool,
        second_aging: bool,
    },
    /// Release any port near the range, mostly one that is not in use.
    ReleaseAny { flow: usize, offset: u16, aging: bool },
    /// What the kernel fallback does with the port it got.
    MarkInUse { flow: usize, offset: u16 },
    /// Let go of the handle on the flow: a pool that holds nothing may then be dropped.
    DropHandle { flow: usize },
    /// Compare every pool and every port with the model.
    Check,
    /// Compare the counts and the summary of the pools with the model.
    Counts,
    /// Move the clock.
    Advance { us: u64 },
    /// Move the clock to the next deadline, or to one microsecond before it.
    ToNextDeadline { before: bool },
}

/// What one flow should hold. A port is aging while its deadline is strictly after now.
#[derive(Debug, Default, Clone)]
pub struct ModelFlow {
    /// Ports in use.
    pub in_use: BTreeSet<u16>,
    /// Extra holders of ports in use (the kernel handed a port in use out again).
    pub extra: BTreeMap<u16, u32>,
    /// Release order, which is deadline order (the clock never goes back).
    pub aging: Vec<(u16, u64)>,
}

impl ModelFlow {
    /// Forgets the aging ports whose deadline is at or before `now`.
    pub fn expire(&mut self, now: u64) {
        self.aging.retain(|&(_, deadline)| deadline > now);
    }

    /// Whether `port` is aging at `now`.
    pub fn is_aging(&self, port: u16, now: u64) -> bool {
        self.aging.iter().any(|&(p, d)| p == port && d > now)
    }

    /// The ports of the range neither in use nor aging at `now`.
    pub fn free(&self, range: PortRange, now: u64) -> BTreeSet<u16> {
        (range.first()..=range.last())
            .filter(|p| !self.in_use.contains(p) && !self.is_aging(*p, now))
            .collect()
    }

    /// How many ports of the range are free at `now` (the size of [`ModelFlow::free`]).
    pub fn free_count(&self, range: PortRange, now: u64) -> u32 {
        let in_use = self.in_use.range(range.first()..=range.last()).count() as u32;
        let aging = self
            .aging
            .iter()
            .filter(|&&(p, d)| d > now && range.contains(p))
            .count() as u32;
        range.len() - in_use - aging
    }

    /// Whether the pool must still exist: a port in use, or one aging at `now`.
    pub fn holds_anything(&self, now: u64) -> bool {
        !self.in_use.is_empty() || self.aging.iter().any(|&(_, d)| d > now)
    }

    /// The port [`ModelOp::Release`] releases: the `pick`-th in use, or a port of the range
    /// when none is.
    pub fn pick(&self, range: PortRange, pick: u64) -> u16 {
        match self.in_use.len() as u64 {
            0 => range.first() + (pick % u64::from(range.len())) as u16,
            n => *self.in_use.iter().nth((pick % n) as usize).unwrap(),
        }
    }

    /// The port [`ModelOp::DoubleRelease`] releases twice: the `pick`-th in use, unless it
    /// has more than one holder (then its second release is a real one) or none is in use.
    pub fn pick_held_once(&self, pick: u64) -> Option<u16> {
        let n = self.in_use.len() as u64;
        let port = *self.in_use.iter().nth((pick % n.max(1)) as usize)?;
        (!self.extra.contains_key(&port)).then_some(port)
    }

    /// Every holder of every port in use (a port as many times as it has holders).
    pub fn holders(&self) -> Vec<u16> {
        let mut out: Vec<u16> = self.in_use.iter().copied().collect();
        for (&p, &n) in &self.extra {
            out.extend(std::iter::repeat_n(p, n as usize));
        }
        out
    }

    /// The earliest aging deadline after `now`, with its port.
    pub fn next_deadline(&self, now: u64) -> Option<(u16, u64)> {
        self.aging
            .iter()
            .copied()
            .filter(|&(_, d)| d > now)
            .min_by_key(|&(_, d)| d)
    }

    /// Checks what `allocate_port` gave at `now` (`what` names the flow in messages)
    /// and records the port as in use.
    pub fn allocated(&mut self, range: PortRange, now: u64, got: Option<u16>, what: &str) -> Checked {
        self.expire(now);
        match got {
            None => {
                let free = self.free(range, now);
                ensure!(free.is_empty(), "allocate gave None with {free:?} free in {what}");
            }
            Some(p) => {
                ensure!(range.contains(p), "port {p} outside {range:?} in {what}");
                ensure!(!self.in_use.contains(&p), "port {p} handed out while in use in {what}");
                ensure!(!self.is_aging(p, now), "port {p} handed out while aging in {what}");
                self.in_use.insert(p);
            }
        }
        Ok(())
    }

    /// What `release(port, aging)` at `now` must answer, with the release recorded.
    pub fn release(&mut self, port: u16, aging: bool, now: u64, aging_us: u64) -> Released {
        if let Some(n) = self.extra.get_mut(&port) {
            // Another holder keeps the port in use.
            *n -= 1;
            if *n == 0 {
                self.extra.remove(&port);
            }
            return if aging { Released::Aging } else { Released::Immediate };
        }
        if !self.in_use.remove(&port) {
            return Released::NotInUse;
        }
        if aging {
            self.aging.push((port, now + aging_us));
            Released::Aging
        } else {
            Released::Immediate
        }
    }

    /// Checks what `mark_in_use(port)` gave at `now` and records the port as in use.
    pub fn marked(&mut self, port: u16, now: u64, got: Marked, what: &str) -> Checked {
        if self.in_use.contains(&port) {
            ensure!(
                got == Marked::AlreadyInUse,
                "mark_in_use({port}) of a port in use gave {got:?} in {what}"
            );
            *self.extra.entry(port).or_default() += 1;
            return Ok(());
        }
        if self.is_aging(port, now) {
            ensure!(
                got == Marked::WasAging,
                "mark_in_use({port}) of an aging port gave {got:?} in {what}"
            );
        } else if self.aging.iter().any(|&(p, _)| p == port) {
            // Its deadline has passed but the pool may not have expired it yet: both
            // answers mean "it was not in use", which is all the caller relies on.
            ensure!(
                matches!(got, Marked::Free | Marked::WasAging),
                "mark_in_use({port}) gave {got:?} in {what}"
            );
        } else {
            ensure!(
                got == Marked::Free,
                "mark_in_use({port}) of a free port gave {got:?} in {what}"
            );
        }
        self.aging.retain(|&(p, _)| p != port);
        self.in_use.insert(port);
        Ok(())
    }

    /// Checks one pool of a snapshot taken at `now`: ports in use, ports aging with the
    /// exact time each has left, and the number free.
    pub fn check_snapshot(&mut self, range: PortRange, now: u64, pool: &PoolSnapshot, what: &str) -> Checked {
        self.expire(now);
        let in_use: Vec<u16> = self.in_use.iter().copied().collect();
        ensure!(
            pool.in_use == in_use,
            "in use, {what}: {:?}, model {in_use:?}",
            pool.in_use
        );
        let aging: Vec<(u16, u64)> = self.aging.iter().map(|&(p, d)| (p, d - now)).collect();
        ensure!(pool.aging == aging, "aging, {what}: {:?}, model {aging:?}", pool.aging);
        ensure!(
            pool.aging.iter().all(|&(_, left)| left > 0),
            "a port aging with nothing left in {what}: {:?}",
            pool.aging
        );
        let free = self.free_count(range, now);
        ensure!(pool.free == free, "free, {what}: {}, model {free}", pool.free);
        Ok(())
    }

    /// Checks one pool's counts taken at `now`.
    pub fn check_counts(&mut self, range: PortRange, now: u64, counts: &PoolCounts, what: &str) -> Checked {
        self.expire(now);
        let want = (
            self.in_use.len() as u32,
            self.aging.len() as u32,
            self.free_count(range, now),
        );
        let got = (counts.in_use, counts.aging, counts.free);
        ensure!(got == want, "(in use, aging, free) of {what}: {got:?}, model {want:?}");
        Ok(())
    }

    /// Checks `is_in_use` and `is_aging` at `now` for every port of the range and a few
    /// on either side.
    pub fn check_ports(&self, range: PortRange, now: u64, flow: &Flow, what: &str) -> Checked {
        let lo = range.first().saturating_sub(3).max(1);
        let hi = range.last().saturating_add(3);
        for p in lo..=hi {
            let (in_use, aging) = (flow.is_in_use(p), flow.is_aging(p));
            ensure!(
                in_use == self.in_use.contains(&p),
                "is_in_use({p}) = {in_use} in {what}"
            );
            ensure!(aging == self.is_aging(p, now), "is_aging({p}) = {aging} in {what}");
        }
        Ok(())
    }
}

/// What holds for any one pool of any snapshot, even one taken while other threads use
/// the pool (each pool is read under its lock): ports in use ascending and distinct, none
/// of them aging, aging ports in deadline order with time left, the numbers adding up.
///
/// `max_left`: the most time an aging port may have left, the aging period when the
/// clock stood still during the snapshot. (A snapshot reads the clock once, before it
/// walks the pools: a port released on another thread during the walk, at a later time,
/// has more than the aging period left from the snapshot's time.)
pub fn check_consistent(range: PortRange, max_left: u64, pool: &PoolSnapshot) -> Checked {
    let key = pool.key;
    ensure!(
        pool.in_use.windows(2).all(|w| w[0] < w[1]),
        "{key:?}: ports in use not ascending: {:?}",
        pool.in_use
    );
    ensure!(
        pool.aging.windows(2).all(|w| w[0].1 <= w[1].1),
        "{key:?}: aging ports not in deadline order: {:?}",
        pool.aging
    );
    ensure!(
        pool.aging.iter().all(|&(_, left)| left > 0 && left <= max_left),
        "{key:?}: aging ports with no time left or more than {max_left} us: {:?}",
        pool.aging
    );
    let aging: BTreeSet<u16> = pool.aging.iter().map(|&(p, _)| p).collect();
    ensure!(
        aging.len() == pool.aging.len(),
        "{key:?}: a port aging twice: {:?}",
        pool.aging
    );
    ensure!(
        pool.in_use.iter().all(|p| !aging.contains(p)),
        "{key:?}: a port both in use and aging: {:?} / {:?}",
        pool.in_use,
        pool.aging
    );
    let taken = pool.in_use.iter().filter(|&&p| range.contains(p)).count() as u32
        + aging.iter().filter(|&&p| range.contains(p)).count() as u32;
    ensure!(
        pool.free + taken == range.len(),
        "{key:?}: {} free + {taken} taken != {} ports",
        pool.free,
        range.len()
    );
    Ok(())
}
