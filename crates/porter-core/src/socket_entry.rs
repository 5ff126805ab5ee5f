//! One socket of the host as the kernel lists it, read by `sockdiag.rs` or `procnet.rs`
//! and grouped by `diag.rs`.

use std::net::SocketAddr;

use crate::tcpstate::TcpState;

/// One socket as the kernel lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SocketEntry {
    pub(crate) state: TcpState,
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    /// Receive queue; for a listener, the connections waiting in its accept queue.
    pub(crate) queued: u32,
    pub(crate) uid: u32,
    pub(crate) inode: u32,
}
