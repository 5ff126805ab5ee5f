//! A connection's life on real loopback sockets: aging after it closed, timeouts and
//! cancellation while it connects, and connects settled at once or left to the reactor.
//! Each test has its own loopback source address (127.0.0.x).
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use porter_core::connect::{connect, CancellationToken, Connected};
use porter_core::{Config, Error, Flow, ManualClock, Registry, Released};
use tokio::net::TcpListener;

use common::free_block;
use common::loopback::*;

/// A connection closed from this side ages its port for exactly the registry's aging
/// period, on the registry's clock (driven by hand here): refused a microsecond before
/// the deadline, connected again at it. The JavaScript tests run on the real clock and
/// check only what no load can change: never before the deadline.
#[tokio::test]
async fn a_closed_connection_ages_until_its_deadline() {
    let ip = v4(14);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let remote = listener.local_addr().unwrap();
    let p = free_block(ip, 1);
    let clock = Arc::new(ManualClock::new());
    let aging = Config {
        aging: Duration::from_millis(500),
        ..config(p, p, 0, false)
    };
    let registry = Registry::with_clock(aging, clock.clone()).unwrap();
    let f = flow(&registry, Some(ip), remote);
    let c = connect(one(&f), remote, TIMEOUT, None).await.unwrap();
    assert_eq!(c.lease.port(), p);
    let Connected { socket, lease, .. } = exchange(c, &listener).await;
    // Closed with a reset, so that no TIME_WAIT stands in the way of the connect at the
    // deadline: what is tested is the pool's aging, released as a local close releases.
    socket.set_linger(Some(Duration::ZERO)).unwrap();
    drop(socket);
    clock.advance_ms(7);
    assert_eq!(lease.release(true), Released::Aging);
    assert_eq!(registry.snapshot()[0].aging, vec![(p, 500_000)]);

    clock.advance_us(500_000 - 1);
    assert!(f.is_aging(p));
    assert_eq!(registry.snapshot()[0].aging, vec![(p, 1)]);
    let err = connect(one(&f), remote, TIMEOUT, None).await.unwrap_err();
    assert_eq!(err.code(), "ERR_PORTER_EXHAUSTED");

    clock.advance_us(1);
    assert!(!f.is_aging(p));
    let again = connect(one(&f), remote, TIMEOUT, None).await.unwrap();
    assert_eq!(again.lease.port(), p);
    let again = exchange(again, &listener).await;
    assert_eq!(registry.snapshot()[0].in_use, vec![p]);
    drop(again);
}

/// Connects to `remote` until a connect does not finish within `timeout`: fills the
/// accept queue. Returns the connections made, and the error of the first that hung with
/// the time it took to fail.
async fn fill(f: &Flow, remote: SocketAddr, timeout: Duration) -> (Vec<Connected>, Error, Duration) {
    let mut held = Vec::new();
    for _ in 0..8 {
        let t0 = Instant::now();
        match connect(one(f), remote, Some(timeout), None).await {
            Ok(c) => held.push(c),
            Err(e) => return (held, e, t0.elapsed()),
        }
    }
    panic!("8 connects to a listener with backlog 0 that never accepts all went through");
}

#[tokio::test]
async fn timeout_gives_the_port_back() {
    let ip = v4(9);
    let (_listener, remote) = stuck_listener();
    let p = free_block(ip, 16);
    let registry = Registry::new(config(p, p + 15, 4, false)).unwrap();
    let f = flow(&registry, Some(ip), remote);
    let (held, err, took) = fill(&f, remote, Duration::from_millis(300)).await;
    assert!(
        !held.is_empty(),
        "not one connect went through before the queue was full"
    );
    // Not before the timeout. (No upper bound: only the timeout can end a connect whose
    // SYN is dropped, well before the kernel's own give-up after about two minutes.)
    assert!(
        took >= Duration::from_millis(300),
        "timed out after {took:?}, before the 300 ms"
    );
    assert!(matches!(err, Error::TimedOut { .. }), "{err:?}");
    assert_eq!(err.code(), "ETIMEDOUT");
    assert_eq!(err.errno(), Some(libc::ETIMEDOUT));
    assert_eq!(err.syscall(), Some("connect"));
    assert_eq!(err.remote(), Some(remote));
    let port = err.local().unwrap().port();
    assert_eq!(err.local().unwrap().ip(), ip);
    assert!(!f.is_in_use(port), "the timed-out port is still in use");
    assert!(f.is_aging(port));
    let mut in_use: Vec<u16> = held.iter().map(|c| c.lease.port()).collect();
    in_use.sort_unstable();
    assert_eq!(registry.snapshot()[0].in_use, in_use);
    assert_eq!(connect_errors(&registry, "ETIMEDOUT"), 1);
}

#[tokio::test]
async fn cancellation_gives_the_port_back() {
    let ip = v4(10);
    let (_listener, remote) = stuck_listener();
    let p = free_block(ip, 16);
    let registry = Registry::new(config(p, p + 15, 4, false)).unwrap();
    let f = flow(&registry, Some(ip), remote);
    let (held, err, _) = fill(&f, remote, Duration::from_millis(300)).await;
    assert_eq!(err.code(), "ETIMEDOUT");
    let before = registry.snapshot().remove(0);

    // Cancelled while waiting.
    let token = CancellationToken::new();
    let canceller = {
        let token = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            token.cancel();
        })
    };
    // The error tells the cancel from the 30 s timeout: no clock needed.
    let err = connect(one(&f), remote, Some(Duration::from_secs(30)), Some(token))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    assert_eq!(err.code(), "ABORT_ERR");
    canceller.await.unwrap();
    let after = registry.snapshot().remove(0);
    assert_eq!(after.in_use, before.in_use, "the cancelled connect kept a port");
    assert_eq!(
        after.aging.len(),
        before.aging.len() + 1,
        "the cancelled port is not aging"
    );
    let (cancelled, _) = after.aging.last().copied().unwrap();
    assert!(!f.is_in_use(cancelled));

    // Cancelled before it starts waiting.
    let token = CancellationToken::new();
    token.cancel();
    let err = connect(one(&f), remote, None, Some(token)).await.unwrap_err();
    assert_eq!(err.code(), "ABORT_ERR");
    assert_eq!(registry.snapshot()[0].in_use, before.in_use);
    assert_eq!(registry.snapshot()[0].aging.len(), before.aging.len() + 2);
    assert_eq!(connect_errors(&registry, "ABORT_ERR"), 2);
    drop(held);
}

#[tokio::test]
async fn a_zero_timeout_fails_a_connect_that_is_still_pending() {
    let ip = v4(11);
    let (_listener, remote) = stuck_listener();
    let p = free_block(ip, 16);
    let registry = Registry::new(config(p, p + 15, 4, false)).unwrap();
    let f = flow(&registry, Some(ip), remote);
    let (_held, _, _) = fill(&f, remote, Duration::from_millis(300)).await;
    let err = connect(one(&f), remote, Some(Duration::ZERO), None).await.unwrap_err();
    assert_eq!(err.code(), "ETIMEDOUT");
    let port = err.local().unwrap().port();
    assert!(!f.is_in_use(port) && f.is_aging(port));
}

/// `Attempt::poll_now` settles a connect that is already over without the reactor, and
/// hands one still in flight to `finish`: either way the outcome is the same, and a
/// failure leaves the port aging.
#[tokio::test]
async fn poll_now_settles_finished_connects_and_defers_the_rest() {
    use porter_core::connect::{finish, start, Progress};
    let local = v4(30);
    let listener = TcpListener::bind(SocketAddr::new(local, 0)).await.unwrap();
    let target = listener.local_addr().unwrap();
    let first = free_block(local, 1);
    let registry = Registry::new(config(first, first, 0, false)).unwrap();
    let f = flow(&registry, Some(local), target);
    let connected = match start(one(&f), target).unwrap().poll_now() {
        Progress::Done(result) => result.unwrap(),
        Progress::Pending(attempt) => finish(attempt, TIMEOUT, None).await.unwrap(),
    };
    assert_eq!(connected.lease.port(), first);
    let Connected { socket, lease, .. } = exchange(connected, &listener).await;
    // Closed with a reset: no TIME_WAIT holds the 4-tuple, so the port may return at once.
    socket.set_linger(Some(Duration::ZERO)).unwrap();
    drop(socket);
    assert_eq!(lease.release(false), Released::Immediate);

    // Nobody listens there any more: refused, at once or after the wait.
    drop(listener);
    let refused = match start(one(&f), target) {
        Err(e) => Err(e),
        Ok(attempt) => match attempt.poll_now() {
            Progress::Done(result) => result,
            Progress::Pending(attempt) => finish(attempt, TIMEOUT, None).await,
        },
    };
    assert_eq!(refused.unwrap_err().code(), "ECONNREFUSED");
    assert!(!f.is_in_use(first));
    assert!(
        !f.is_aging(first),
        "refused: no state left, so the port is free at once"
    );
}
