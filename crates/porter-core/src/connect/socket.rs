//! The socket calls of a connect, whoever picks the port: a socket from the reserve, the
//! options set on it, and `connect()` on a non-blocking socket.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, SockAddr, Socket};

use crate::error::{Error, Result};
use crate::reserve::Reserve;
use crate::sockopts::SocketOptions;

/// A socket for `remote`'s family, from the process's reserve of ready ones.
pub(super) fn new_socket(remote: SocketAddr) -> io::Result<Socket> {
    Reserve::global().take(Domain::for_address(remote))
}

/// Sets `options` on a socket for `remote` before bind and connect; a refusal is the
/// connect's error, naming the option.
pub(super) fn set_options(socket: &Socket, options: &SocketOptions, remote: SocketAddr) -> Result<()> {
    options
        .apply(socket, remote.is_ipv6())
        .map_err(|(option, source)| Error::SocketOption { option, source, remote })
}

pub(super) fn is_collision(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EADDRINUSE) | Some(libc::EADDRNOTAVAIL))
}

/// `connect` on a non-blocking socket: `Ok(true)` while in progress, `Ok(false)` if done.
pub(super) fn issue_connect(socket: &Socket, remote: SocketAddr) -> io::Result<bool> {
    match socket.connect(&SockAddr::from(remote)) {
        Ok(()) => Ok(false),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(true),
        Err(e) => Err(e),
    }
}
