//! A cancellation token JavaScript fires when an AbortSignal aborts a connect. It also
//! fires when the environment that made it tears down (a worker thread that goes), so a
//! connect of a dead worker never waits on.

use napi_derive::napi;
use porter_core::connect::CancellationToken;

#[napi]
pub struct CancelToken {
    pub(crate) inner: CancellationToken,
}

#[napi]
impl CancelToken {
    #[napi(constructor, catch_unwind)]
    pub fn new() -> Self {
        Self {
            inner: crate::env::child_token(),
        }
    }

    /// Cancels every connect waiting on this token.
    #[napi(catch_unwind)]
    pub fn cancel(&self) {
        self.inner.cancel();
    }
}

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}
