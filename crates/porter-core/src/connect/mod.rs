//! Bind-before-connect on leased ports, and connects whose port the kernel picks.
//!
//! [`start`] runs on the caller's thread and never waits on the network: it takes a port
//! and a non-blocking, close-on-exec socket with `SO_REUSEADDR` (from the [`reserve`](crate::reserve),
//! made ahead on a helper thread, or made there and then), sets the
//! [`SocketOptions`](crate::SocketOptions) of the registry and of the connect on it, binds it and calls
//! `connect`, trying other ports on `EADDRINUSE` / `EADDRNOTAVAIL` as the retry policy
//! allows; then it lets the kernel pick within porter's range where the
//! [`Capacity`](crate::Capacity) say so, and anywhere in its ephemeral range as the fallback. [`finish`] waits
//! for the socket to become writable (tokio's reactor), reads `SO_ERROR`, and applies the
//! timeout and cancellation. Whatever fails, the port goes back: into aging once a SYN
//! may have left, at once otherwise (and when the peer refused: no state is left).
//!
//! One job per file: [`start`] and its order of choices (`start.rs`); the ports porter
//! binds itself (`explicit.rs`); the kernel's choice (`kernel.rs`); the socket calls both
//! make (`socket.rs`); an issued connect and how it settles (`attempt.rs`); waiting for it
//! on the reactor (`finish.rs`).

mod attempt;
mod explicit;
mod finish;
mod kernel;
mod socket;
mod start;

pub use attempt::{Attempt, Connected, Progress};
pub use finish::{connect, finish};
pub use start::{start, start_from};
pub use tokio_util::sync::CancellationToken;
