//! What the threads of a round share: the two registries (exact and free clocks), the
//! shared flows and what the threads recorded about their ports, and the tallies.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use porter_core::{Clock, FlowKey, ManualClock, PortRange, Registry, Released};

use crate::model::{pool_config, pool_registry};
use crate::ops::{shared_which, Which};
use crate::options::Rng;

/// A round's configuration of one registry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Setup {
    pub(crate) range: PortRange,
    pub(crate) aging_us: u64,
}

/// As the property test draws them: 8 to 48 ports (a quarter of the time ending at
/// 65535), aging 0, 1 or 2-299 us.
pub(crate) fn draw_setup(rng: &mut Rng) -> Setup {
    let len = 8 + rng.below(41) as u16;
    let first = if rng.below(4) == 0 {
        65535 - len + 1
    } else {
        1024 + rng.below(60000 - 1024 + 1) as u16
    };
    let aging_us = match rng.below(8) {
        0 => 0,
        1 => 1,
        _ => 2 + rng.below(298),
    };
    Setup {
        range: PortRange::new(first, first + (len - 1)).unwrap(),
        aging_us,
    }
}

pub(crate) struct Side {
    pub(crate) setup: Setup,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) registry: Arc<Registry>,
}

/// The last release of a port of a shared flow: the clock read just before it, and
/// just after it (once known, and while nobody took the port again since).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LastRelease {
    pub(crate) before: u64,
    pub(crate) after: Option<u64>,
    pub(crate) aging: bool,
}

#[derive(Debug, Default)]
pub(crate) struct PortState {
    /// A thread holds the port (allocated, not yet released).
    pub(crate) held: bool,
    /// Allocations of the port so far.
    pub(crate) generation: u64,
    pub(crate) last: Option<LastRelease>,
}

pub(crate) struct SharedFlow {
    pub(crate) which: Which,
    pub(crate) key: FlowKey,
    /// One per port of the range.
    pub(crate) ports: Vec<Mutex<PortState>>,
    /// Ports just outside the range (what the kernel fallback would pick), and how many
    /// holders each has.
    pub(crate) outside: Vec<u16>,
    pub(crate) marks: Vec<AtomicU32>,
}

/// Operation counts of one registry: what its counters must say at the end of a round.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counted {
    pub(crate) allocations: u64,
    pub(crate) releases_aging: u64,
    pub(crate) releases_immediate: u64,
    pub(crate) exhausted: u64,
}

impl Counted {
    pub(crate) fn released(&mut self, r: Released) {
        match r {
            Released::Aging => self.releases_aging += 1,
            Released::Immediate => self.releases_immediate += 1,
            Released::NotInUse => {}
        }
    }
    pub(crate) fn add(&mut self, o: &Counted) {
        self.allocations += o.allocations;
        self.releases_aging += o.releases_aging;
        self.releases_immediate += o.releases_immediate;
        self.exhausted += o.exhausted;
    }
}

/// What the run went through, summed over threads and rounds.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Coverage {
    pub(crate) allocated: u64,
    pub(crate) exhausted: u64,
    pub(crate) released_aging: u64,
    pub(crate) released_immediate: u64,
    pub(crate) released_not_in_use: u64,
    pub(crate) marked_free: u64,
    pub(crate) marked_was_aging: u64,
    pub(crate) marked_already_in_use: u64,
    pub(crate) deadline_checks: u64,
    pub(crate) full_checks: u64,
    pub(crate) handles_dropped: u64,
    pub(crate) shared_allocated: u64,
    pub(crate) shared_exhausted: u64,
    pub(crate) shared_released: u64,
    pub(crate) quiescent_checks: u64,
    pub(crate) pools_retired: u64,
}

impl Coverage {
    pub(crate) fn add(&mut self, o: &Coverage) {
        self.allocated += o.allocated;
        self.exhausted += o.exhausted;
        self.released_aging += o.released_aging;
        self.released_immediate += o.released_immediate;
        self.released_not_in_use += o.released_not_in_use;
        self.marked_free += o.marked_free;
        self.marked_was_aging += o.marked_was_aging;
        self.marked_already_in_use += o.marked_already_in_use;
        self.deadline_checks += o.deadline_checks;
        self.full_checks += o.full_checks;
        self.handles_dropped += o.handles_dropped;
        self.shared_allocated += o.shared_allocated;
        self.shared_exhausted += o.shared_exhausted;
        self.shared_released += o.shared_released;
        self.quiescent_checks += o.quiescent_checks;
        self.pools_retired += o.pools_retired;
    }
}

pub(crate) struct World {
    pub(crate) exact: Side,
    pub(crate) free: Side,
    /// Taken for writing to move the exact registry's clock, for reading by every
    /// other operation on that registry.
    pub(crate) gate: RwLock<()>,
    pub(crate) shared: Vec<SharedFlow>,
    pub(crate) barrier: Barrier,
    pub(crate) counted_exact: Mutex<Counted>,
    pub(crate) counted_free: Mutex<Counted>,
    pub(crate) coverage: Mutex<Coverage>,
}

pub(crate) struct Run {
    pub(crate) stop: AtomicBool,
    pub(crate) violations: Mutex<Vec<String>>,
    pub(crate) done: AtomicU64,
}

impl Run {
    pub(crate) fn violation(&self, msg: String) {
        self.stop.store(true, Ordering::SeqCst);
        self.violations.lock().push(msg);
    }
    pub(crate) fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

impl World {
    pub(crate) fn new(rng: &mut Rng, threads: usize) -> Self {
        let side = |setup: Setup| {
            let clock = Arc::new(ManualClock::new());
            let config = pool_config(setup.range, Duration::from_micros(setup.aging_us));
            Side {
                setup,
                registry: pool_registry(config, clock.clone()),
                clock,
            }
        };
        let exact = side(draw_setup(rng));
        let free = side(draw_setup(rng));
        let local2 = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
        let keys = [
            FlowKey::new(None, SocketAddr::new(local2, 80)),
            FlowKey::new(None, SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 80)),
            FlowKey::new(None, SocketAddr::new(local2, 443)),
            FlowKey::new(Some(local2), SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080)),
        ];
        let shared = keys
            .iter()
            .enumerate()
            .map(|(i, &key)| {
                let which = shared_which(i);
                let range = if which == Which::Exact {
                    exact.setup.range
                } else {
                    free.setup.range
                };
                let outside: Vec<u16> = [-3i32, -2, -1, 1, 2, 3]
                    .iter()
                    .map(|&d| {
                        let p = if d < 0 {
                            i32::from(range.first()) + d
                        } else {
                            i32::from(range.last()) + d
                        };
                        p.clamp(1, 65535) as u16
                    })
                    .filter(|&p| !range.contains(p))
                    .collect();
                SharedFlow {
                    which,
                    key,
                    ports: (0..range.len()).map(|_| Mutex::default()).collect(),
                    marks: outside.iter().map(|_| AtomicU32::new(0)).collect(),
                    outside,
                }
            })
            .collect();
        Self {
            exact,
            free,
            gate: RwLock::new(()),
            shared,
            barrier: Barrier::new(threads),
            counted_exact: Mutex::default(),
            counted_free: Mutex::default(),
            coverage: Mutex::default(),
        }
    }

    pub(crate) fn side(&self, which: Which) -> &Side {
        match which {
            Which::Exact => &self.exact,
            Which::Free => &self.free,
        }
    }

    /// Runs `f` and returns its result with the clock read before and after it: on the
    /// exact registry under the gate, where both readings are the same.
    pub(crate) fn timed<T>(&self, which: Which, f: impl FnOnce() -> T) -> (T, u64, u64) {
        let clock = &self.side(which).clock;
        match which {
            Which::Exact => {
                let _gate = self.gate.read();
                let t = clock.now_us();
                (f(), t, t)
            }
            Which::Free => {
                let before = clock.now_us();
                let r = f();
                (r, before, clock.now_us())
            }
        }
    }

    /// Moves the exact registry's clock; nothing else runs on it meanwhile.
    pub(crate) fn advance_exact(&self, us: u64) {
        let _gate = self.gate.write();
        self.exact.clock.advance_us(us);
    }
}
