//! A reserve of ready sockets, made ahead of need on a helper thread.
//!
//! Every connect starts with `socket()` and `setsockopt(SO_REUSEADDR)`, which together
//! cost about a tenth of a loopback connect's time on the caller's thread (the event
//! loop's, for Node). Those two calls do not depend on the port or the destination, so a
//! helper thread makes such sockets in batches (non-blocking, close-on-exec, TCP,
//! `SO_REUSEADDR` set, not bound) and the connect path takes one off a stack. When a
//! family's stack falls to a quarter of its capacity the helper is woken once and fills
//! it up again; a connect that finds the stack empty makes its socket itself, so the
//! reserve never makes a connect wait.
//!
//! A family is only stocked once a connect has asked for it. The reserve holds at most
//! `capacity` descriptors per family (IPv4, IPv6); capacity 0 turns it off (every socket
//! made inline, no thread). The process-wide reserve reads its capacity from
//! `PORTER_SOCKET_RESERVE` once (default [`DEFAULT_CAPACITY`]).
//!
//! A socket belongs to the network namespace of the thread that made it: the helper's
//! is that of the thread that first asked for a refill (for Node, the process's own). A
//! process whose threads switch namespaces should turn the reserve off.
//!
//! Under descriptor pressure the reserve steps aside: when the helper cannot make a
//! socket because the process or the system is out of descriptors (`EMFILE`, `ENFILE`),
//! it closes every socket it holds, so the application gets them back, and makes none
//! for [`PRESSURE_BACKOFF`].

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

/// Sockets kept ready per family by default.
pub const DEFAULT_CAPACITY: usize = 32;
/// The environment variable that sets the process-wide reserve's capacity.
pub const CAPACITY_VAR: &str = "PORTER_SOCKET_RESERVE";
/// Its earlier name, still read when the new one is not set.
pub const CAPACITY_VAR_OLD: &str = "PORTER_PREPARED_SOCKETS";
/// How long the reserve stays empty after running out of descriptors.
pub const PRESSURE_BACKOFF: Duration = Duration::from_secs(1);

/// A new TCP socket for `domain`: non-blocking, close-on-exec, `SO_REUSEADDR` set.
pub fn new_socket(domain: Domain) -> io::Result<Socket> {
    let socket = Socket::new(domain, Type::STREAM.nonblocking().cloexec(), Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    Ok(socket)
}

struct Family {
    domain: Domain,
    ready: Mutex<Vec<Socket>>,
    /// Whether a connect has asked for this family (only those are stocked).
    wanted: AtomicBool,
}

struct Inner {
    families: [Family; 2],
    /// Sockets handed out from the reserve, and made on the spot because it was empty.
    taken: AtomicU64,
    made_inline: AtomicU64,
    capacity: usize,
    low_water: usize,
    /// Set to ask the helper for a refill; the helper clears it when it starts one.
    wake: Mutex<bool>,
    /// No refills before this (set when descriptors ran out).
    paused_until: Mutex<Option<Instant>>,
    wakeup: Condvar,
    helper: OnceLock<bool>,
}

/// What a reserve holds and has handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReserveStats {
    /// Sockets kept ready per family at most.
    pub capacity: usize,
    /// Ready now, IPv4.
    pub ready_ipv4: usize,
    /// Ready now, IPv6.
    pub ready_ipv6: usize,
    /// Connects that took a ready socket.
    pub taken: u64,
    /// Connects that found none ready (or the reserve off) and made their own.
    pub made_inline: u64,
}

/// Ready sockets per family, refilled by a helper thread. Cheap to clone (shared).
#[derive(Clone)]
pub struct Reserve {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Reserve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reserve")
            .field("capacity", &self.inner.capacity)
            .field("ready", &[self.ready(Domain::IPV4), self.ready(Domain::IPV6)])
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves a plain Vec or bool behind, which
    // is still consistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Reserve {
    /// A reserve of up to `capacity` sockets per family; 0 makes every socket inline.
    pub fn new(capacity: usize) -> Self {
        let family = |domain| Family {
            domain,
            ready: Mutex::new(Vec::with_capacity(capacity)),
            wanted: AtomicBool::new(false),
        };
        Self {
            inner: Arc::new(Inner {
                families: [family(Domain::IPV4), family(Domain::IPV6)],
                taken: AtomicU64::new(0),
                made_inline: AtomicU64::new(0),
                capacity,
                low_water: capacity / 4,
                wake: Mutex::new(false),
                paused_until: Mutex::new(None),
                wakeup: Condvar::new(),
                helper: OnceLock::new(),
            }),
        }
    }

    /// The process-wide reserve, sized by `PORTER_SOCKET_RESERVE` (read once; its earlier
    /// name, `PORTER_PREPARED_SOCKETS`, is read when it is not set).
    pub fn global() -> &'static Reserve {
        static GLOBAL: OnceLock<Reserve> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            let capacity = std::env::var(CAPACITY_VAR)
                .or_else(|_| std::env::var(CAPACITY_VAR_OLD))
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .map_or(DEFAULT_CAPACITY, |n| n.min(4096));
            Reserve::new(capacity)
        })
    }

    /// Sockets kept ready per family at most.
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// Sockets ready now for `domain`.
    pub fn ready(&self, domain: Domain) -> usize {
        self.family(domain).map_or(0, |f| lock(&f.ready).len())
    }

    fn family(&self, domain: Domain) -> Option<&Family> {
        self.inner.families.iter().find(|f| f.domain == domain)
    }

    /// A socket for `domain`: one from the reserve, else made now. Asks the helper to
    /// refill when the reserve runs low. Never waits for the helper.
    pub fn take(&self, domain: Domain) -> io::Result<Socket> {
        let Some(family) = self.family(domain).filter(|_| self.inner.capacity > 0) else {
            self.inner.made_inline.fetch_add(1, Ordering::Relaxed);
            return new_socket(domain);
        };
        if !family.wanted.load(Ordering::Relaxed) {
            family.wanted.store(true, Ordering::Relaxed);
        }
        let (socket, left) = {
            let mut ready = lock(&family.ready);
            let socket = ready.pop();
            (socket, ready.len())
        };
        if socket.is_none() || left == self.inner.low_water {
            self.ask_refill();
        }
        match socket {
            Some(socket) => {
                self.inner.taken.fetch_add(1, Ordering::Relaxed);
                Ok(socket)
            }
            None => {
                self.inner.made_inline.fetch_add(1, Ordering::Relaxed);
                new_socket(domain)
            }
        }
    }

    /// What the reserve holds and has handed out so far.
    pub fn stats(&self) -> ReserveStats {
        ReserveStats {
            capacity: self.inner.capacity,
            ready_ipv4: self.ready(Domain::IPV4),
            ready_ipv6: self.ready(Domain::IPV6),
            taken: self.inner.taken.load(Ordering::Relaxed),
            made_inline: self.inner.made_inline.load(Ordering::Relaxed),
        }
    }

    fn ask_refill(&self) {
        let started = *self.inner.helper.get_or_init(|| {
            let inner = Arc::clone(&self.inner);
            std::thread::Builder::new()
                .name("porter-sockets".into())
                .spawn(move || helper(&inner))
                .is_ok()
        });
        if !started {
            return;
        }
        let mut wake = lock(&self.inner.wake);
        if !*wake {
            *wake = true;
            self.inner.wakeup.notify_one();
        }
    }

    /// Fills every wanted family to capacity now, on this thread (tests use it; the
    /// helper does the same). Stops a family's batch at its first error.
    pub fn refill(&self) {
        refill(&self.inner);
    }
}

fn refill(inner: &Inner) {
    {
        let mut paused = lock(&inner.paused_until);
        match *paused {
            Some(until) if Instant::now() < until => return,
            Some(_) => *paused = None,
            None => {}
        }
    }
    for family in &inner.families {
        if !family.wanted.load(Ordering::Relaxed) {
            continue;
        }
        let missing = inner.capacity.saturating_sub(lock(&family.ready).len());
        // Made outside the lock, so connects never wait for socket().
        let mut fresh = Vec::with_capacity(missing);
        for _ in 0..missing {
            match new_socket(family.domain) {
                Ok(socket) => fresh.push(socket),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) => {
                    drop(fresh);
                    step_aside(inner);
                    return;
                }
                // Anything else (out of memory, say): connects make their own and report it.
                Err(_) => break,
            }
        }
        let mut ready = lock(&family.ready);
        let room = inner.capacity.saturating_sub(ready.len());
        fresh.truncate(room);
        ready.extend(fresh);
    }
}

/// The helper's nice value: the scheduler gives it about a tenth of a CPU's time when it
/// competes with a thread of normal priority, and rarely lets it preempt one.
pub const HELPER_NICE: i32 = 10;

/// Lowers the calling thread's priority to [`HELPER_NICE`], so that making sockets ahead
/// seldom delays the event loop or a server beside it (measured: a lower connect-latency
/// tail than at normal priority, and a higher connect rate than under `SCHED_IDLE`, which
/// starved the helper on a busy machine). Lowering a thread's priority needs no
/// privilege; if it fails anyway the helper runs at normal priority.
fn lower_priority() {
    let _ = crate::sys::set_thread_nice(HELPER_NICE);
}

/// Out of descriptors: give back every socket held, and pause refills.
fn step_aside(inner: &Inner) {
    *lock(&inner.paused_until) = Some(Instant::now() + PRESSURE_BACKOFF);
    for family in &inner.families {
        let held = std::mem::take(&mut *lock(&family.ready));
        drop(held);
    }
}

fn helper(inner: &Inner) {
    lower_priority();
    loop {
        {
            let mut wake = lock(&inner.wake);
            while !*wake {
                wake = inner.wakeup.wait(wake).unwrap_or_else(PoisonError::into_inner);
            }
            *wake = false;
        }
        refill(inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_zero_makes_every_socket_inline_without_a_thread() {
        let reserve = Reserve::new(0);
        let s = reserve.take(Domain::IPV4).unwrap();
        assert!(s.reuse_address().unwrap());
        reserve.refill();
        assert_eq!(reserve.ready(Domain::IPV4), 0);
        assert!(reserve.inner.helper.get().is_none(), "no helper thread");
        let stats = reserve.stats();
        assert_eq!((stats.taken, stats.made_inline), (0, 1));
    }
}
