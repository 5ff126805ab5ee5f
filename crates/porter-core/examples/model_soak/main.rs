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

//!
//! The files: flags and random numbers (`options.rs`), the operations (`ops.rs`, the
//! model's own shared with the property test through `tests/common/model.rs`), what the
//! threads share (`world.rs`) and the checks at the barrier (`quiescent.rs`), one thread
//! (`worker.rs`, `own.rs`, `shared.rs`, `round.rs`).

#[path = "../../tests/common/model.rs"]
mod model;
mod ops;
mod options;
mod own;
mod quiescent;
mod round;
mod shared;
mod worker;
mod world;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use options::{parse_args, Options, Rng, USAGE};
use worker::Worker;
use world::{Coverage, Run, World};

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
    report(&o, rounds, elapsed, done, &violations, &coverage);
    if !violations.is_empty() || done < o.ops {
        std::process::exit(1);
    }
}

/// What the run went through, and its result line.
fn report(o: &Options, rounds: u64, elapsed: f64, done: u64, violations: &[String], coverage: &Coverage) {
    for v in violations {
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
}
