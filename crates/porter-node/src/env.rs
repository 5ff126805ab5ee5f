//! What one environment (the main thread, or one worker thread: one per thread in Node)
//! holds: its table of routes (porter-core's `RouteTable`) and a cancellation token for
//! its connects still waiting on the reactor. When the environment tears down (a worker
//! that exits or is terminated), a cleanup hook cancels those connects (each then closes
//! its socket and ages its port) and tears the table down (every port back into aging,
//! every descriptor not adopted closed if it still is the connection).

use std::cell::{Cell, RefCell};

use napi::Env;
use porter_core::connect::CancellationToken;
use porter_core::RouteTable;

thread_local! {
    /// This thread's environment's routes.
    static ROUTES: RefCell<RouteTable> = RefCell::default();
    static CLEANUP_HOOKED: Cell<bool> = const { Cell::new(false) };
    /// Cancelled when this environment tears down: every connect of it waiting on the
    /// reactor waits on this token (or on a child of it, see [`child_token`]).
    static GONE: RefCell<CancellationToken> = RefCell::default();
}

/// `f` on this environment's routes.
pub(crate) fn with_routes<T>(f: impl FnOnce(&mut RouteTable) -> T) -> T {
    ROUTES.with_borrow_mut(f)
}

/// The token cancelled when this environment tears down.
pub(crate) fn token() -> CancellationToken {
    GONE.with_borrow(Clone::clone)
}

/// A token cancelled by its holder or when this environment tears down, whichever comes
/// first (the `CancelToken` JavaScript gives a connect with a signal).
pub(crate) fn child_token() -> CancellationToken {
    GONE.with_borrow(CancellationToken::child_token)
}

/// Registers, once per environment, the hook that gives back what the environment holds
/// when it tears down.
pub(crate) fn hook_cleanup(env: &Env) {
    if CLEANUP_HOOKED.get() {
        return;
    }
    if env.add_env_cleanup_hook((), |()| teardown()).is_ok() {
        CLEANUP_HOOKED.set(true);
    }
}

/// The environment is going: cancel its connects in flight (their promises are gone with
/// it), then give back everything its routes handed out.
fn teardown() {
    GONE.with_borrow_mut(std::mem::take).cancel();
    let mut table = ROUTES.with_borrow_mut(std::mem::take);
    table.teardown();
    CLEANUP_HOOKED.set(false);
}
