//! Finishing a connect that is still in flight: tokio's reactor waits for the socket to
//! become writable, with the timeout and cancellation.

use std::net::SocketAddr;
use std::time::Duration;

use socket2::Socket;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio_util::sync::CancellationToken;

use super::attempt::{is_connected, Attempt, Connected};
use super::start::start;
use crate::error::{Error, Result};
use crate::flow::Flow;

/// Waits for the connect of `attempt` to finish, for at most `timeout`, unless `cancel`
/// fires first. Must run inside a tokio runtime. On failure the port goes back into aging
/// (a SYN has left) and the socket is closed.
pub async fn finish(
    attempt: Attempt,
    timeout: Option<Duration>,
    cancel: Option<CancellationToken>,
) -> Result<Connected> {
    let in_progress = attempt.in_progress;
    let (socket, outcome) = attempt.split();
    let result = if in_progress {
        wait_connected(socket, outcome.local, outcome.remote, timeout, cancel).await
    } else {
        Ok(socket)
    };
    outcome.settle(result)
}
async fn wait_connected(
    socket: Socket,
    local: SocketAddr,
    remote: SocketAddr,
    timeout: Option<Duration>,
    cancel: Option<CancellationToken>,
) -> Result<Socket> {
    let sys_err = |source| Error::Sys {
        source,
        syscall: "connect",
        local: Some(local),
        remote,
    };
    // SAFETY: the socket owns its descriptor, which stays open and unchanged until
    // `into_inner` gives the socket back (or the AsyncFd drops it).
    let fd = unsafe { AsyncFd::register_with_interest(socket, Interest::WRITABLE) }
        .map_err(|e| sys_err(e.into_parts().1))?;
    let writable = async {
        loop {
            let mut guard = fd.writable().await?;
            if is_connected(fd.get_ref())? {
                return Ok(());
            }
            guard.clear_ready();
        }
    };
    let expiry = async {
        match timeout {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let cancelled = async {
        match &cancel {
            Some(token) => token.cancelled().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        done = writable => done.map_err(sys_err)?,
        () = cancelled => return Err(Error::Cancelled),
        () = expiry => return Err(Error::TimedOut { local: Some(local), remote }),
    }
    Ok(fd.into_inner())
}

/// [`start`] then [`finish`].
pub async fn connect(
    flows: &[Flow],
    remote: SocketAddr,
    timeout: Option<Duration>,
    cancel: Option<CancellationToken>,
) -> Result<Connected> {
    let attempt = start(flows, remote)?;
    finish(attempt, timeout, cancel).await
}
