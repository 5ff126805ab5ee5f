//! Linux socket options that socket2 does not wrap.

use std::io;
use std::os::fd::AsRawFd;

use socket2::Socket;

/// `IP_BIND_ADDRESS_NO_PORT` (Linux 4.2): `bind(addr, 0)` chooses no port; `connect`
/// chooses one later knowing the destination, so the kernel can share a port between
/// destinations (its 4-tuple-aware search) instead of burning one per socket.
pub(crate) fn set_bind_address_no_port(socket: &Socket, on: bool) -> io::Result<()> {
    let value: libc::c_int = on.into();
    // SAFETY: a valid fd, a pointer to a c_int that lives across the call, and its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
