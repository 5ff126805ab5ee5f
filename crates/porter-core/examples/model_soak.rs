//! The registry against its model at scale: millions of random operations from several
//! threads at once, every answer checked. `npm run soak` runs it; by hand:
//!
//! ```text
//! cargo run --release -p porter-core --example model_soak -- --ops 10000000 --threads 4
//! ```
//!
//! Flags: `--ops N` (operations in all, default 10,000,000), `--threads N` (default 4),
//! `--seed N` (default: from the time; printed), `--round-ops N` (operations per round,
//! default 250,000), `--sync-every N` (operations per thread between two quiescent
//! checks, default 10,000).
//!
//! The run is a series of rounds; each round draws a configuration (a range of 8 to 48
//! ports, sometimes ending at 65535; an aging period of 0, 1 or 2-299 us) and makes two
//! registries on `ManualClock`s:
//!
//! - **exact**: time moves only between operations (an advance takes a write lock that
//!   every other operation takes for reading), so each thread knows the exact
//!   microsecond of everything it does. Each thread drives two flows of its own there
//!   against the model of `tests/common/model.rs`, exactly as the property test does
//!   (allocate, as a port or a `Lease`; release into aging or not, twice, or of a port
//!   not in use; kernel-chosen ports marked in use; handles dropped so that idle pools
//!   are retired and made again; snapshots, counts and summaries compared; the clock
//!   moved to one microsecond before a port's deadline and to the deadline), and every
//!   thread also uses two flows that all threads share.
//! - **free**: the clock moves under the threads (any thread advances it, with no lock),
//!   for two more shared flows: what a release reads from the clock then races with the
//!   advances, as on the real clock.
//!
//! Every answer is checked when it comes: a private flow's against its model; a shared
//! flow's against what holds under concurrency (a port is never handed out while
//! another thread holds it, nor before the deadline of its last release, reckoned from
//! the clock read before that release; a release of a port held never finds it not in
//! use; the ports a thread holds are in use in every snapshot; every snapshot is
//! consistent). Every `--sync-every` operations the threads stop at a barrier: every pool
//! is checked in full (the shared ones too: ports in use, and each aging port's deadline
//! within the release's own bracket of clock readings, exact on the exact registry),
//! allocation until exhaustion gives exactly the free ports, and the counts, the summary
//! and the counters agree with the snapshot. At the end of a round everything is
//! released, the clocks move past the aging period, every pool must be fully free, and
//! once the handles are gone, every pool must have been dropped; the registry's counters
//! must equal the operations the threads counted.
//!
//! The seed fixes each thread's stream of random choices; which port the registry
//! answers with (each pool starts its walk at a random port) and how the threads
//! interleave are not fixed, so a failure prints the thread's last operations. Exits 1 on
//! any violation, 2 on bad flags.

#[path = "../tests/common/model.rs"]
mod model;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use model::{check_consistent, ensure, near, pool_config, pool_registry, Checked, ModelFlow};
use parking_lot::{Mutex, RwLock};
use porter_core::{
    Clock, Error, Flow, FlowKey, Lease, ManualClock, Marked, PoolSnapshot, PortRange, Registry, Released,
};

// ---------------------------------------------------------------------------------------
// Flags, random numbers
// ---------------------------------------------------------------------------------------

struct Options {
    ops: u64,
    threads: usize,
    seed: u64,
    round_ops: u64,
    sync_every: u64,
}

const USAGE: &str =
    "usage: model_soak [--ops N] [--threads N] [--seed N] [--round-ops N] [--sync-every N] (see the file's header)";

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        ops: 10_000_000,
        threads: 4,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        round_ops: 250_000,
        sync_every: 10_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let n: u64 = value
            .replace('_', "")
            .parse()
            .map_err(|_| format!("{flag}: not a number: {value}"))?;
        match flag.as_str() {
            "--ops" => o.ops = n,
            "--threads" => o.threads = n as usize,
            "--seed" => o.seed = n,
            "--round-ops" => o.round_ops = n,
            "--sync-every" => o.sync_every = n,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if o.threads == 0 || o.threads > 64 || o.ops == 0 || o.round_ops == 0 || o.sync_every == 0 {
        return Err("--ops, --round-ops and --sync-every must be positive, --threads 1 to 64".into());
    }
    Ok(o)
}

/// splitmix64: small, fast, and the same stream for the same seed everywhere.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Self {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        r.next();
        r
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

// ---------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------

/// The registries of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Exact,
    Free,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    // A flow of the thread's own, on the exact registry, against the model.
    Allocate {
        flow: usize,
        lease: bool,
    },
    Release {
        flow: usize,
        pick: u64,
        aging: bool,
    },
    DoubleRelease {
        flow: usize,
        pick: u64,
        first_aging: bool,
        second_aging: bool,
    },
    ReleaseAny {
        flow: usize,
        offset: u16,
        aging: bool,
    },
    MarkInUse {
        flow: usize,
        offset: u16,
    },
    DropHandle {
        flow: usize,
    },
    Check,
    Counts,
    Advance {
        us: u64,
    },
    ToNextDeadline {
        before: bool,
    },
    // A flow every thread uses.
    SharedAllocate {
        flow: usize,
        lease: bool,
    },
    SharedRelease {
        flow: usize,
        pick: u64,
        aging: bool,
    },
    SharedMark {
        flow: usize,
        slot: usize,
    },
    SharedInspect {
        which: Which,
    },
    FreeAdvance {
        us: u64,
    },
}

const PRIVATE_FLOWS: usize = 2;
/// Shared flows: the first half on the exact registry, the rest on the free one.
const SHARED_FLOWS: usize = 4;

fn shared_which(flow: usize) -> Which {
    if flow < SHARED_FLOWS / 2 {
        Which::Exact
    } else {
        Which::Free
    }
}

fn draw_op(rng: &mut Rng, span: u16) -> Op {
    // Weights out of 55: 35 on the thread's own flows, 20 on the shared ones.
    let flow = rng.below(PRIVATE_FLOWS as u64) as usize;
    let shared = rng.below(SHARED_FLOWS as u64) as usize;
    match rng.below(55) {
        0..=9 => Op::Allocate {
            flow,
            lease: rng.below(4) == 0,
        },
        10..=17 => Op::Release {
            flow,
            pick: rng.next(),
            aging: rng.coin(),
        },
        18..=19 => Op::DoubleRelease {
            flow,
            pick: rng.next(),
            first_aging: rng.coin(),
            second_aging: rng.coin(),
        },
        20..=21 => Op::ReleaseAny {
            flow,
            offset: rng.below(u64::from(span) + 4) as u16,
            aging: rng.coin(),
        },
        22..=23 => Op::MarkInUse {
            flow,
            offset: rng.below(u64::from(span) + 6) as u16,
        },
        24 => Op::DropHandle { flow },
        25..=26 => Op::Check,
        27 => Op::Counts,
        28..=31 => Op::Advance { us: rng.below(60) },
        32..=34 => Op::ToNextDeadline { before: rng.coin() },
        35..=42 => Op::SharedAllocate {
            flow: shared,
            lease: rng.below(4) == 0,
        },
        43..=50 => Op::SharedRelease {
            flow: shared,
            pick: rng.next(),
            aging: rng.coin(),
        },
        51 => Op::SharedMark {
            flow: shared,
            slot: rng.below(6) as usize,
        },
        52 => Op::SharedInspect {
            which: if rng.coin() { Which::Exact } else { Which::Free },
        },
        _ => Op::FreeAdvance { us: rng.below(60) },
    }
}

// ---------------------------------------------------------------------------------------
// What the threads share
// ---------------------------------------------------------------------------------------

/// A round's configuration of one registry.
#[derive(Debug, Clone, Copy)]
struct Setup {
    range: PortRange,
    aging_us: u64,
}

/// As the property test draws them: 8 to 48 ports (a quarter of the time ending at
/// 65535), aging 0, 1 or 2-299 us.
fn draw_setup(rng: &mut Rng) -> Setup {
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

struct Side {
    setup: Setup,
    clock: Arc<ManualClock>,
    registry: Arc<Registry>,
}

/// The last release of a port of a shared flow: the clock read just before it, and
/// just after it (once known, and while nobody took the port again since).
#[derive(Debug, Clone, Copy)]
struct LastRelease {
    before: u64,
    after: Option<u64>,
    aging: bool,
}

#[derive(Debug, Default)]
struct PortState {
    /// A thread holds the port (allocated, not yet released).
    held: bool,
    /// Allocations of the port so far.
    generation: u64,
    last: Option<LastRelease>,
}

struct SharedFlow {
    which: Which,
    key: FlowKey,
    /// One per port of the range.
    ports: Vec<Mutex<PortState>>,
    /// Ports just outside the range (what the kernel fallback would pick), and how many
    /// holders each has.
    outside: Vec<u16>,
    marks: Vec<AtomicU32>,
}

/// Operation counts of one registry: what its counters must say at the end of a round.
#[derive(Debug, Default, Clone, Copy)]
struct Counted {
    allocations: u64,
    releases_aging: u64,
    releases_immediate: u64,
    exhausted: u64,
}

impl Counted {
    fn released(&mut self, r: Released) {
        match r {
            Released::Aging => self.releases_aging += 1,
            Released::Immediate => self.releases_immediate += 1,
            Released::NotInUse => {}
        }
    }
    fn add(&mut self, o: &Counted) {
        self.allocations += o.allocations;
        self.releases_aging += o.releases_aging;
        self.releases_immediate += o.releases_immediate;
        self.exhausted += o.exhausted;
    }
}

/// What the run went through, summed over threads and rounds.
#[derive(Debug, Default, Clone, Copy)]
struct Coverage {
    allocated: u64,
    exhausted: u64,
    released_aging: u64,
    released_immediate: u64,
    released_not_in_use: u64,
    marked_free: u64,
    marked_was_aging: u64,
    marked_already_in_use: u64,
    deadline_checks: u64,
    full_checks: u64,
    handles_dropped: u64,
    shared_allocated: u64,
    shared_exhausted: u64,
    shared_released: u64,
    quiescent_checks: u64,
    pools_retired: u64,
}

impl Coverage {
    fn add(&mut self, o: &Coverage) {
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

struct World {
    exact: Side,
    free: Side,
    /// Taken for writing to move the exact registry's clock, for reading by every
    /// other operation on that registry.
    gate: RwLock<()>,
    shared: Vec<SharedFlow>,
    barrier: Barrier,
    counted_exact: Mutex<Counted>,
    counted_free: Mutex<Counted>,
    coverage: Mutex<Coverage>,
}

struct Run {
    stop: AtomicBool,
    violations: Mutex<Vec<String>>,
    done: AtomicU64,
}

impl Run {
    fn violation(&self, msg: String) {
        self.stop.store(true, Ordering::SeqCst);
        self.violations.lock().push(msg);
    }
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

impl World {
    fn new(rng: &mut Rng, threads: usize) -> Self {
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

    fn side(&self, which: Which) -> &Side {
        match which {
            Which::Exact => &self.exact,
            Which::Free => &self.free,
        }
    }

    /// Runs `f` and returns its result with the clock read before and after it: on the
    /// exact registry under the gate, where both readings are the same.
    fn timed<T>(&self, which: Which, f: impl FnOnce() -> T) -> (T, u64, u64) {
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
    fn advance_exact(&self, us: u64) {
        let _gate = self.gate.write();
        self.exact.clock.advance_us(us);
    }

    /// On a quiescent world: every shared flow checked in full, then allocated until
    /// exhausted (exactly the free ports) and given back at once. `drained`: every port
    /// must be free.
    fn check_shared_quiescent(&self, drained: bool, counted: &mut [Counted; 2]) -> Checked {
        for which in [Which::Exact, Which::Free] {
            let side = self.side(which);
            let (range, aging_us) = (side.setup.range, side.setup.aging_us);
            let now = side.clock.now_us();
            let snapshot = side.registry.snapshot();
            for s in self.shared.iter().filter(|s| s.which == which) {
                let what = format!("shared flow {:?} ({which:?})", s.key);
                let Some(pool) = snapshot.iter().find(|p| p.key == s.key) else {
                    return Err(format!("{what}: missing from the snapshot while threads hold it"));
                };
                check_consistent(range, aging_us, pool)?;
                check_shared_pool(s, range, aging_us, now, pool, drained, &what)?;
                // Allocation until exhaustion: exactly the free ports, each one free.
                let flow = side.registry.flow(s.key);
                let mut got = Vec::new();
                while let Some(p) = flow.allocate_port() {
                    ensure!(got.len() < range.len() as usize, "{what}: more ports than the range");
                    got.push(p);
                }
                ensure!(
                    got.len() as u32 == pool.free,
                    "{what}: {} ports allocated until exhaustion, snapshot said {} free",
                    got.len(),
                    pool.free
                );
                let idx = which as usize;
                counted[idx].allocations += got.len() as u64;
                for p in got {
                    ensure!(range.contains(p), "{what}: port {p} outside the range");
                    let mut st = s.ports[usize::from(p - range.first())].lock();
                    ensure!(!st.held, "{what}: port {p} handed out while a thread holds it");
                    ensure!(
                        !pool.aging.iter().any(|&(a, _)| a == p),
                        "{what}: port {p} handed out while aging"
                    );
                    st.generation += 1;
                    let r = flow.release(p, false);
                    ensure!(r == Released::Immediate, "{what}: release({p}, false) gave {r:?}");
                    counted[idx].released(r);
                    st.last = Some(LastRelease {
                        before: now,
                        after: Some(now),
                        aging: false,
                    });
                }
            }
            // The whole registry: counts, summary and counters agree with the snapshot.
            let counts = side.registry.pool_counts();
            ensure!(
                counts.len() == snapshot.len(),
                "{which:?}: {} pools counted, {} in the snapshot",
                counts.len(),
                snapshot.len()
            );
            let snapshot = side.registry.snapshot();
            for (c, p) in counts.iter().zip(&snapshot) {
                ensure!(
                    c.key == p.key
                        && c.in_use as usize == p.in_use.len()
                        && c.aging as usize == p.aging.len()
                        && c.free == p.free,
                    "{which:?}: counts {c:?} and snapshot {p:?} disagree"
                );
            }
            let summary = side.registry.pool_summary(2);
            let mut total = summary.others;
            for b in &summary.busiest {
                total.pools += 1;
                total.in_use += u64::from(b.in_use);
                total.aging += u64::from(b.aging);
                total.free += u64::from(b.free);
            }
            let want = counts.iter().fold((0u64, 0u64, 0u64, 0u64), |t, c| {
                (
                    t.0 + 1,
                    t.1 + u64::from(c.in_use),
                    t.2 + u64::from(c.aging),
                    t.3 + u64::from(c.free),
                )
            });
            ensure!(
                (total.pools, total.in_use, total.aging, total.free) == want,
                "{which:?}: summary totals {total:?}, counts {want:?}"
            );
            let stats = side.registry.stats();
            ensure!(
                stats.pools == counts.len() as u64,
                "{which:?}: stats say {} pools, counts {}",
                stats.pools,
                counts.len()
            );
        }
        Ok(())
    }
}

/// One shared pool against what the threads recorded, on a quiescent world.
fn check_shared_pool(
    s: &SharedFlow,
    range: PortRange,
    aging_us: u64,
    now: u64,
    pool: &PoolSnapshot,
    drained: bool,
    what: &str,
) -> Checked {
    let mut in_use: Vec<u16> = Vec::new();
    for (i, st) in s.ports.iter().enumerate() {
        if st.lock().held {
            in_use.push(range.first() + i as u16);
        }
    }
    for (slot, &p) in s.outside.iter().enumerate() {
        if s.marks[slot].load(Ordering::SeqCst) > 0 {
            in_use.push(p);
        }
    }
    in_use.sort_unstable();
    ensure!(
        pool.in_use == in_use,
        "{what}: in use {:?}, the threads hold {in_use:?}",
        pool.in_use
    );
    if drained {
        ensure!(
            in_use.is_empty(),
            "{what}: ports still held after the drain: {in_use:?}"
        );
        ensure!(
            pool.aging.is_empty() && pool.free == range.len(),
            "{what}: not fully free past the aging period: {pool:?}"
        );
    }
    let mut aging_in_range = 0u32;
    for &(p, left) in &pool.aging {
        if !range.contains(p) {
            continue; // a kernel-chosen port: no deadline recorded
        }
        aging_in_range += 1;
        let st = s.ports[usize::from(p - range.first())].lock();
        let Some(last) = st.last.filter(|l| l.aging) else {
            return Err(format!(
                "{what}: port {p} aging, but its last release was not into aging"
            ));
        };
        let after = last.after.unwrap_or(u64::MAX);
        let deadline = now + left;
        ensure!(
            deadline >= last.before + aging_us && deadline <= after.saturating_add(aging_us),
            "{what}: port {p} aging until {deadline}, released between {} and {after} with {aging_us} us of aging",
            last.before
        );
    }
    // Every port neither held nor aging: free, and its deadline (if any) passed.
    for (i, st) in s.ports.iter().enumerate() {
        let p = range.first() + i as u16;
        let st = st.lock();
        if st.held || pool.aging.iter().any(|&(a, _)| a == p) {
            continue;
        }
        if let Some(last) = st.last.filter(|l| l.aging) {
            ensure!(
                last.before + aging_us <= now,
                "{what}: port {p} free at {now}, but released into aging at {} or later ({aging_us} us)",
                last.before
            );
        }
    }
    let held_in_range = pool.in_use.iter().filter(|&&p| range.contains(p)).count() as u32;
    ensure!(
        pool.free == range.len() - held_in_range - aging_in_range,
        "{what}: {} free, {held_in_range} in use and {aging_in_range} aging of {}",
        pool.free,
        range.len()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// One thread
// ---------------------------------------------------------------------------------------

struct Private {
    key: FlowKey,
    handle: Option<Flow>,
    model: ModelFlow,
    /// Ports taken as a `Lease` (released through it).
    leases: BTreeMap<u16, Lease>,
}

struct Worker<'w> {
    id: usize,
    world: &'w World,
    run: &'w Run,
    rng: Rng,
    private: Vec<Private>,
    shared: Vec<Flow>,
    /// Ports this thread holds in each shared flow: allocated, and outside-range slots marked.
    held: Vec<Vec<u16>>,
    marked: Vec<Vec<usize>>,
    counted: [Counted; 2],
    cov: Coverage,
    log: Vec<Op>,
    ops: u64,
}

const LOG: usize = 32;

impl<'w> Worker<'w> {
    fn new(id: usize, world: &'w World, run: &'w Run, rng: Rng) -> Self {
        let private = (0..PRIVATE_FLOWS)
            .map(|i| {
                let port = 10_000 + (id * PRIVATE_FLOWS + i) as u16;
                let ip = if i % 2 == 0 {
                    IpAddr::V4(Ipv4Addr::LOCALHOST)
                } else {
                    IpAddr::V6(Ipv6Addr::LOCALHOST)
                };
                Private {
                    key: FlowKey::new(None, SocketAddr::new(ip, port)),
                    handle: None,
                    model: ModelFlow::default(),
                    leases: BTreeMap::new(),
                }
            })
            .collect();
        let shared = world
            .shared
            .iter()
            .map(|s| world.side(s.which).registry.flow(s.key))
            .collect();
        Self {
            id,
            world,
            run,
            rng,
            private,
            shared,
            held: vec![Vec::new(); SHARED_FLOWS],
            marked: vec![Vec::new(); SHARED_FLOWS],
            counted: [Counted::default(); 2],
            cov: Coverage::default(),
            log: Vec::with_capacity(LOG),
            ops: 0,
        }
    }

    fn exact(&self) -> &'w Side {
        &self.world.exact
    }

    /// The handle on a private flow, taken again from the registry if it was dropped.
    fn handle(&mut self, f: usize) -> Flow {
        let registry = &self.world.exact.registry;
        let p = &mut self.private[f];
        p.handle.get_or_insert_with(|| registry.flow(p.key)).clone()
    }

    fn fail(&self, round: u64, msg: String) {
        let mut s = format!(
            "thread {} round {round} op {}: {msg}\n  last operations (oldest first):",
            self.id, self.ops
        );
        for op in &self.log {
            let _ = write!(s, "\n    {op:?}");
        }
        self.run.violation(s);
    }

    fn record(&mut self, op: Op) {
        if self.log.len() == LOG {
            self.log.remove(0);
        }
        self.log.push(op);
    }

    fn step(&mut self, round: u64) {
        let span = self.exact().setup.range.len() as u16;
        let op = draw_op(&mut self.rng, span);
        self.record(op);
        self.ops += 1;
        match catch_unwind(AssertUnwindSafe(|| self.apply(op))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => self.fail(round, e),
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
                    .unwrap_or_default();
                self.fail(round, format!("panicked: {msg}"));
            }
        }
    }

    fn apply(&mut self, op: Op) -> Checked {
        let range = self.exact().setup.range;
        match op {
            Op::Allocate { flow, lease } => {
                let h = self.handle(flow);
                let _gate = self.world.gate.read();
                let now = self.exact().clock.now_us();
                let (port, lease) = if lease {
                    match h.allocate() {
                        Ok(l) => (Some(l.port()), Some(l)),
                        Err(Error::Exhausted { .. }) => {
                            self.counted[0].exhausted += 1;
                            (None, None)
                        }
                        Err(e) => return Err(format!("allocate() failed: {e}")),
                    }
                } else {
                    (h.allocate_port(), None)
                };
                let p = &mut self.private[flow];
                p.model.allocated(range, now, port, &format!("flow {flow}"))?;
                match port {
                    Some(port) => {
                        self.counted[0].allocations += 1;
                        self.cov.allocated += 1;
                        if let Some(l) = lease {
                            p.leases.insert(port, l);
                        }
                    }
                    None => self.cov.exhausted += 1,
                }
                Ok(())
            }
            Op::Release { flow, pick, aging } => {
                let in_use = &self.private[flow].model.in_use;
                let port = match in_use.len() {
                    0 => range.first() + (pick % u64::from(range.len())) as u16,
                    n => *in_use.iter().nth((pick % n as u64) as usize).unwrap(),
                };
                self.release_private(flow, port, aging)
            }
            Op::DoubleRelease {
                flow,
                pick,
                first_aging,
                second_aging,
            } => {
                let model = &self.private[flow].model;
                if model.in_use.is_empty() {
                    return Ok(());
                }
                let port = *model
                    .in_use
                    .iter()
                    .nth((pick % model.in_use.len() as u64) as usize)
                    .unwrap();
                if model.extra.contains_key(&port) {
                    return Ok(()); // held more than once: the second release is a real one
                }
                self.release_private(flow, port, first_aging)?;
                let h = self.handle(flow);
                let _gate = self.world.gate.read();
                let registry = &self.exact().registry;
                let mine = |snapshot: Vec<PoolSnapshot>| snapshot.into_iter().find(|p| p.key == *h.key());
                let before = mine(registry.snapshot());
                let r = h.release(port, second_aging);
                ensure!(r == Released::NotInUse, "second release({port}) gave {r:?}");
                self.cov.released_not_in_use += 1;
                let after = mine(registry.snapshot());
                ensure!(
                    before == after,
                    "a second release changed the pool: {before:?} -> {after:?}"
                );
                Ok(())
            }
            Op::ReleaseAny { flow, offset, aging } => self.release_private(flow, near(range, offset, 2), aging),
            Op::MarkInUse { flow, offset } => {
                let port = near(range, offset, 3);
                let h = self.handle(flow);
                let _gate = self.world.gate.read();
                let now = self.exact().clock.now_us();
                let got = h.mark_in_use(port);
                self.counted[0].allocations += 1;
                match got {
                    Marked::Free => self.cov.marked_free += 1,
                    Marked::WasAging => self.cov.marked_was_aging += 1,
                    Marked::AlreadyInUse => self.cov.marked_already_in_use += 1,
                }
                self.private[flow].model.marked(port, now, got, &format!("flow {flow}"))
            }
            Op::DropHandle { flow } => {
                if self.private[flow].handle.take().is_some() {
                    self.cov.handles_dropped += 1;
                }
                Ok(())
            }
            Op::Check => self.check_private(false),
            Op::Counts => {
                let _gate = self.world.gate.read();
                let now = self.exact().clock.now_us();
                let registry = &self.exact().registry;
                let counts = registry.pool_counts();
                let summary = registry.pool_summary(usize::MAX);
                ensure!(
                    summary.others.pools == 0,
                    "a summary with no cap left {} pools out",
                    summary.others.pools
                );
                for (f, p) in self.private.iter_mut().enumerate() {
                    let what = format!("flow {f}");
                    match counts.iter().find(|c| c.key == p.key) {
                        Some(c) => p.model.check_counts(range, now, c, &what)?,
                        None => ensure!(
                            p.handle.is_none() && p.leases.is_empty() && !p.model.holds_anything(now),
                            "{what}: not counted, yet held or holding ports"
                        ),
                    }
                    if let Some(c) = summary.busiest.iter().find(|c| c.key == p.key) {
                        p.model.check_counts(range, now, c, &format!("{what} in the summary"))?;
                    }
                }
                Ok(())
            }
            Op::Advance { us } => {
                self.world.advance_exact(us);
                Ok(())
            }
            Op::ToNextDeadline { before } => {
                let handles: Vec<Flow> = (0..PRIVATE_FLOWS).map(|f| self.handle(f)).collect();
                let _gate = self.world.gate.write();
                let clock = &self.exact().clock;
                let now = clock.now_us();
                let next = self
                    .private
                    .iter()
                    .enumerate()
                    .filter_map(|(f, p)| p.model.next_deadline(now).map(|(port, d)| (f, port, d)))
                    .min_by_key(|&(_, _, d)| d);
                let Some((f, port, deadline)) = next else {
                    return Ok(());
                };
                let target = if before { deadline - 1 } else { deadline };
                clock.advance_us(target - now);
                let h = &handles[f];
                self.cov.deadline_checks += 1;
                ensure!(!h.is_in_use(port), "port {port} in use while aging, flow {f}");
                if before {
                    ensure!(
                        h.is_aging(port),
                        "port {port} free one microsecond before its deadline {deadline}, flow {f}"
                    );
                } else {
                    ensure!(
                        !h.is_aging(port),
                        "port {port} still aging at its deadline {deadline}, flow {f}"
                    );
                }
                Ok(())
            }
            Op::SharedAllocate { flow, lease } => self.shared_allocate(flow, lease),
            Op::SharedRelease { flow, pick, aging } => {
                let held = self.held[flow].len() as u64;
                let marked = self.marked[flow].len() as u64;
                if held + marked == 0 {
                    return self.shared_allocate(flow, false);
                }
                let i = pick % (held + marked);
                if i < held {
                    self.shared_release(flow, i as usize, aging)
                } else {
                    self.shared_unmark(flow, (i - held) as usize, aging)
                }
            }
            Op::SharedMark { flow, slot } => {
                let s = &self.world.shared[flow];
                if s.outside.is_empty() {
                    return Ok(());
                }
                let slot = slot % s.outside.len();
                let port = s.outside[slot];
                let h = self.shared[flow].clone();
                let (got, _, _) = self.world.timed(s.which, || h.mark_in_use(port));
                s.marks[slot].fetch_add(1, Ordering::SeqCst);
                self.counted[s.which as usize].allocations += 1;
                self.marked[flow].push(slot);
                match got {
                    Marked::Free => self.cov.marked_free += 1,
                    Marked::WasAging => self.cov.marked_was_aging += 1,
                    Marked::AlreadyInUse => self.cov.marked_already_in_use += 1,
                }
                Ok(())
            }
            Op::SharedInspect { which } => {
                let side = self.world.side(which);
                let (snapshot, before, after) = self.world.timed(which, || side.registry.snapshot());
                // The time that passed during the snapshot (none on the exact registry).
                let max_left = side.setup.aging_us + (after - before);
                for pool in &snapshot {
                    check_consistent(side.setup.range, max_left, pool)?;
                }
                for (f, s) in self.world.shared.iter().enumerate().filter(|(_, s)| s.which == which) {
                    let Some(pool) = snapshot.iter().find(|p| p.key == s.key) else {
                        return Err(format!("shared flow {f} missing from a snapshot while held"));
                    };
                    let mine = self.held[f]
                        .iter()
                        .copied()
                        .chain(self.marked[f].iter().map(|&slot| s.outside[slot]));
                    for p in mine {
                        ensure!(
                            pool.in_use.binary_search(&p).is_ok(),
                            "shared flow {f}: port {p}, held by this thread, not in use in a snapshot"
                        );
                    }
                }
                Ok(())
            }
            Op::FreeAdvance { us } => {
                self.world.free.clock.advance_us(us);
                Ok(())
            }
        }
    }

    /// Releases one holder of `port` of a private flow (through its lease if it has one)
    /// and checks the answer against the model.
    fn release_private(&mut self, flow: usize, port: u16, aging: bool) -> Checked {
        let h = self.handle(flow);
        let _gate = self.world.gate.read();
        let now = self.exact().clock.now_us();
        let aging_us = self.exact().setup.aging_us;
        let p = &mut self.private[flow];
        let (expected, got) = match p.leases.remove(&port) {
            // Dropped, a lease goes into aging.
            Some(lease) if aging && self.rng.below(4) == 0 => {
                drop(lease);
                (p.model.release(port, true, now, aging_us), None)
            }
            Some(lease) => (p.model.release(port, aging, now, aging_us), Some(lease.release(aging))),
            None => (
                p.model.release(port, aging, now, aging_us),
                Some(h.release(port, aging)),
            ),
        };
        if let Some(got) = got {
            ensure!(
                got == expected,
                "release({port}, {aging}) gave {got:?}, model {expected:?}, flow {flow}"
            );
        }
        self.counted[0].released(expected);
        match expected {
            Released::Aging => self.cov.released_aging += 1,
            Released::Immediate => self.cov.released_immediate += 1,
            Released::NotInUse => self.cov.released_not_in_use += 1,
        }
        Ok(())
    }

    /// Every private flow against its model, at one moment of the exact registry's clock.
    /// `drained`: the model must hold nothing.
    fn check_private(&mut self, drained: bool) -> Checked {
        let handles: Vec<Flow> = (0..PRIVATE_FLOWS).map(|f| self.handle(f)).collect();
        let _gate = self.world.gate.read();
        let Setup { range, aging_us } = self.exact().setup;
        let now = self.exact().clock.now_us();
        let snapshot = self.exact().registry.snapshot();
        for pool in &snapshot {
            check_consistent(range, aging_us, pool)?;
        }
        self.cov.full_checks += 1;
        for (f, p) in self.private.iter_mut().enumerate() {
            let what = format!("flow {f}");
            let Some(pool) = snapshot.iter().find(|s| s.key == p.key) else {
                return Err(format!("{what}: missing from the snapshot while held"));
            };
            p.model.check_snapshot(range, now, pool, &what)?;
            p.model.check_ports(range, now, &handles[f], &what)?;
            if drained {
                ensure!(
                    !p.model.holds_anything(now) && pool.free == range.len(),
                    "{what}: not fully free past the aging period: {pool:?}"
                );
            }
        }
        Ok(())
    }

    fn shared_allocate(&mut self, flow: usize, lease: bool) -> Checked {
        let s = &self.world.shared[flow];
        let side = self.world.side(s.which);
        let (range, aging_us) = (side.setup.range, side.setup.aging_us);
        let h = self.shared[flow].clone();
        let idx = s.which as usize;
        let (got, _, after) = self.world.timed(s.which, || {
            if lease {
                h.allocate().ok().map(Lease::into_port)
            } else {
                h.allocate_port()
            }
        });
        let Some(p) = got else {
            self.cov.shared_exhausted += 1;
            if lease {
                self.counted[idx].exhausted += 1;
            }
            return Ok(());
        };
        self.counted[idx].allocations += 1;
        self.cov.shared_allocated += 1;
        ensure!(range.contains(p), "shared flow {flow}: port {p} outside {range:?}");
        let mut st = s.ports[usize::from(p - range.first())].lock();
        ensure!(
            !st.held,
            "shared flow {flow}: port {p} handed out while another thread holds it"
        );
        if let Some(last) = st.last.filter(|l| l.aging) {
            ensure!(
                after >= last.before + aging_us,
                "shared flow {flow}: port {p} handed out by {after}, released into aging at {} or later ({aging_us} us)",
                last.before
            );
        }
        st.held = true;
        st.generation += 1;
        drop(st);
        self.held[flow].push(p);
        Ok(())
    }

    fn shared_release(&mut self, flow: usize, i: usize, aging: bool) -> Checked {
        let s = &self.world.shared[flow];
        let range = self.world.side(s.which).setup.range;
        let p = self.held[flow].swap_remove(i);
        let h = self.shared[flow].clone();
        let port_state = &s.ports[usize::from(p - range.first())];
        let (r, _, after, generation) = {
            let run = || {
                // Recorded before the release: once it is done, another thread may take
                // the port and look.
                let generation = {
                    let mut st = port_state.lock();
                    st.held = false;
                    st.last = Some(LastRelease {
                        before: self.world.side(s.which).clock.now_us(),
                        after: None,
                        aging,
                    });
                    st.generation
                };
                (h.release(p, aging), generation)
            };
            let ((r, generation), before, after) = self.world.timed(s.which, run);
            (r, before, after, generation)
        };
        {
            let mut st = port_state.lock();
            if st.generation == generation {
                if let Some(last) = st.last.as_mut() {
                    last.after = Some(after);
                }
            }
        }
        let expected = if aging { Released::Aging } else { Released::Immediate };
        ensure!(
            r == expected,
            "shared flow {flow}: release({p}, {aging}) of a port held gave {r:?}"
        );
        self.counted[s.which as usize].released(r);
        self.cov.shared_released += 1;
        Ok(())
    }

    fn shared_unmark(&mut self, flow: usize, i: usize, aging: bool) -> Checked {
        let s = &self.world.shared[flow];
        let slot = self.marked[flow].swap_remove(i);
        let p = s.outside[slot];
        s.marks[slot].fetch_sub(1, Ordering::SeqCst);
        let h = self.shared[flow].clone();
        let (r, _, _) = self.world.timed(s.which, || h.release(p, aging));
        ensure!(
            r != Released::NotInUse,
            "shared flow {flow}: release({p}) of a kernel-chosen port held gave {r:?}"
        );
        self.counted[s.which as usize].released(r);
        self.cov.shared_released += 1;
        Ok(())
    }

    /// Releases everything the thread holds.
    fn drain(&mut self) -> Checked {
        for f in 0..PRIVATE_FLOWS {
            for port in self.private[f].model.holders() {
                let aging = self.rng.coin();
                self.release_private(f, port, aging)?;
            }
        }
        for f in 0..SHARED_FLOWS {
            while !self.held[f].is_empty() {
                let aging = self.rng.coin();
                self.shared_release(f, 0, aging)?;
            }
            while !self.marked[f].is_empty() {
                let aging = self.rng.coin();
                self.shared_unmark(f, 0, aging)?;
            }
        }
        Ok(())
    }

    /// Runs `f` unless the run has stopped, recording what it found.
    fn checked(&mut self, round: u64, f: impl FnOnce(&mut Self) -> Checked) {
        if self.run.stopped() {
            return;
        }
        match catch_unwind(AssertUnwindSafe(|| f(self))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => self.fail(round, e),
            Err(_) => self.fail(round, "a check panicked".into()),
        }
    }

    fn leader(&self) -> bool {
        self.id == 0
    }

    /// One round: segments of operations, each followed by quiescent checks; then the
    /// drain and the end-of-round checks. Every thread waits at the same barriers
    /// whatever happens, so a violation stops the work, never the barriers.
    fn round(&mut self, round: u64, ops: u64, segments: u64) {
        let world = self.world;
        for segment in 0..segments {
            let n = ops * (segment + 1) / segments - ops * segment / segments;
            let mut done = 0;
            while done < n && !self.run.stopped() {
                self.step(round);
                done += 1;
            }
            self.run.done.fetch_add(done, Ordering::Relaxed);
            world.barrier.wait();
            if self.leader() {
                let mut counted = self.counted;
                self.checked(round, |w| w.world.check_shared_quiescent(false, &mut counted));
                self.counted = counted;
                self.cov.quiescent_checks += 1;
            }
            world.barrier.wait();
            self.checked(round, |w| w.check_private(false));
            world.barrier.wait();
        }
        // The drain, then time past every deadline.
        self.checked(round, Worker::drain);
        world.barrier.wait();
        if self.leader() {
            world.advance_exact(world.exact.setup.aging_us + 1);
            world.free.clock.advance_us(world.free.setup.aging_us + 1);
        }
        world.barrier.wait();
        if self.leader() {
            let mut counted = self.counted;
            self.checked(round, |w| w.world.check_shared_quiescent(true, &mut counted));
            self.counted = counted;
        }
        world.barrier.wait();
        self.checked(round, |w| w.check_private(true));
        world.barrier.wait();
        // Every handle goes: every pool must then be dropped.
        for p in &mut self.private {
            p.handle = None;
        }
        self.shared.clear();
        world.counted_exact.lock().add(&self.counted[0]);
        world.counted_free.lock().add(&self.counted[1]);
        world.barrier.wait();
        if self.leader() {
            self.checked(round, |w| {
                for (which, counted) in [
                    (Which::Exact, *w.world.counted_exact.lock()),
                    (Which::Free, *w.world.counted_free.lock()),
                ] {
                    let registry = &w.world.side(which).registry;
                    let snapshot = registry.snapshot();
                    ensure!(
                        snapshot.is_empty() && registry.pool_count() == 0,
                        "{which:?}: pools left once nothing is held: {snapshot:?}"
                    );
                    let stats = registry.stats();
                    w.cov.pools_retired += stats.pools_retired;
                    let got = (
                        stats.allocations,
                        stats.releases_aging,
                        stats.releases_immediate,
                        stats.exhausted,
                    );
                    let want = (
                        counted.allocations,
                        counted.releases_aging,
                        counted.releases_immediate,
                        counted.exhausted,
                    );
                    ensure!(
                        got == want,
                        "{which:?}: counters (allocations, releases into aging, immediate, exhausted) {got:?}, operations {want:?}"
                    );
                }
                Ok(())
            });
        }
        world.coverage.lock().add(&self.cov);
    }
}

// ---------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------

fn main() {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let rounds = o.ops.div_ceil(o.round_ops);
    println!(
        "model soak: {} operations, {} threads, {rounds} rounds, a quiescent check every {} operations per thread, seed {}",
        o.ops, o.threads, o.sync_every, o.seed
    );
    println!("  reproduce the choices with --seed {}", o.seed);
    let run = Run {
        stop: AtomicBool::new(false),
        violations: Mutex::new(Vec::new()),
        done: AtomicU64::new(0),
    };
    let started = Instant::now();
    let finished = AtomicBool::new(false);
    let mut coverage = Coverage::default();
    let mut master = Rng::new(o.seed, 0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut last = (Instant::now(), 0u64);
            while !finished.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                if last.0.elapsed() < Duration::from_secs(5) {
                    continue;
                }
                let done = run.done.load(Ordering::Relaxed);
                let rate = (done - last.1) as f64 / last.0.elapsed().as_secs_f64();
                println!(
                    "  {:>6.1} s  {done:>11} operations ({:>5.1} %)  {:>9.0} operations/s",
                    started.elapsed().as_secs_f64(),
                    done as f64 * 100.0 / o.ops as f64,
                    rate
                );
                last = (Instant::now(), done);
            }
        });
        let mut remaining = o.ops;
        for round in 0..rounds {
            if run.stopped() {
                break;
            }
            let ops = remaining.min(o.round_ops);
            remaining -= ops;
            let world = World::new(&mut master, o.threads);
            let per_thread: Vec<u64> = (0..o.threads as u64)
                .map(|t| ops / o.threads as u64 + u64::from(t < ops % o.threads as u64))
                .collect();
            // Every thread waits at the same barriers: the same number of segments each.
            let segments = per_thread[0].div_ceil(o.sync_every).max(1);
            std::thread::scope(|s| {
                for (t, &n) in per_thread.iter().enumerate() {
                    let world = &world;
                    let run = &run;
                    let rng = Rng::new(o.seed, (round << 8) | (t as u64 + 1));
                    s.spawn(move || {
                        let mut w = Worker::new(t, world, run, rng);
                        w.round(round, n, segments);
                    });
                }
            });
            coverage.add(&world.coverage.lock());
        }
        finished.store(true, Ordering::Relaxed);
    });
    let elapsed = started.elapsed().as_secs_f64();
    let done = run.done.load(Ordering::Relaxed);
    let violations = run.violations.lock();
    for v in violations.iter() {
        eprintln!("VIOLATION {v}");
    }
    let c = coverage;
    println!(
        "  private flows: {} allocations, {} exhausted, {} releases into aging, {} immediate, {} of ports not in use; \
         marks {} free, {} aging, {} in use; {} exact-deadline checks, {} full checks, {} handles dropped",
        c.allocated,
        c.exhausted,
        c.released_aging,
        c.released_immediate,
        c.released_not_in_use,
        c.marked_free,
        c.marked_was_aging,
        c.marked_already_in_use,
        c.deadline_checks,
        c.full_checks,
        c.handles_dropped
    );
    println!(
        "  shared flows: {} allocations, {} exhausted, {} releases; {} quiescent checks; {} pools retired",
        c.shared_allocated, c.shared_exhausted, c.shared_released, c.quiescent_checks, c.pools_retired
    );
    println!(
        "model soak result: ops={done} threads={} seed={} rounds={rounds} duration={elapsed:.1}s ops_per_s={:.0} violations={}",
        o.threads,
        o.seed,
        done as f64 / elapsed,
        violations.len()
    );
    if !violations.is_empty() || done < o.ops {
        std::process::exit(1);
    }
}
