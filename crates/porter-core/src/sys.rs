//! Linux socket options that socket2 does not wrap.

use std::io;
use std::os::fd::AsRawFd;

use socket2::{Domain, Socket, Type};

use crate::range::PortRange;

/// `IP_LOCAL_PORT_RANGE` (Linux 6.3, `include/uapi/linux/in.h`); the libc crate does not
/// define it.
const IP_LOCAL_PORT_RANGE: libc::c_int = 51;

/// The kernel options porter probes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SocketOption {
    /// `IP_BIND_ADDRESS_NO_PORT`.
    BindAddressNoPort,
    /// `IP_LOCAL_PORT_RANGE`.
    LocalPortRange,
}

fn set_ip_option<T>(socket: &Socket, name: libc::c_int, value: T) -> io::Result<()> {
    // SAFETY: a valid fd, a pointer to a value that lives across the call, and its size.
    // Options at level IPPROTO_IP apply to IPv6 TCP sockets as well (ipv6_setsockopt
    // hands them to ip_setsockopt).
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            name,
            (&value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `setsockopt(fd, IPPROTO_TCP, name, &value)` for an `int` option.
fn set_tcp_int(socket: &Socket, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: a valid fd, a pointer to an int that lives across the call, and its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            name,
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

/// `TCP_FASTOPEN_CONNECT` (Linux 4.11): `connect` asks for a Fast Open cookie, or, with a
/// cookie from an earlier connection to the same server, returns at once without sending
/// the SYN, which then leaves with the first data written. socket2 0.6 has no setter.
pub(crate) fn set_fastopen_connect(socket: &Socket, on: bool) -> io::Result<()> {
    set_tcp_int(socket, libc::TCP_FASTOPEN_CONNECT, on.into())
}

/// Whether `TCP_FASTOPEN_CONNECT` is set (getsockopt).
#[cfg(test)]
pub(crate) fn fastopen_connect(socket: &Socket) -> io::Result<bool> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a valid fd, a pointer to an int to fill and its size, both live across the call.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_FASTOPEN_CONNECT,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(value != 0)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `IP_BIND_ADDRESS_NO_PORT` (Linux 4.2): `bind(addr, 0)` chooses no port; `connect`
/// chooses one later knowing the destination, so the kernel can share a port between
/// destinations (its 4-tuple-aware search) instead of burning one per socket.
pub(crate) fn set_bind_address_no_port(socket: &Socket, on: bool) -> io::Result<()> {
    set_ip_option::<libc::c_int>(socket, libc::IP_BIND_ADDRESS_NO_PORT, on.into())
}

/// `IP_LOCAL_PORT_RANGE` (Linux 6.3): the kernel picks this socket's port, at `connect`
/// or `bind(ip, 0)`, from `window` intersected with its ephemeral range. The value packs
/// the lower bound in the low 16 bits and the upper bound in the high 16 bits.
pub(crate) fn set_local_port_range(socket: &Socket, window: PortRange) -> io::Result<()> {
    let value: u32 = u32::from(window.first()) | u32::from(window.last()) << 16;
    set_ip_option(socket, IP_LOCAL_PORT_RANGE, value)
}

/// Whether the kernel accepts `option` (setting it on a throwaway TCP socket). Any
/// answer but success means no: `ENOPROTOOPT` on kernels that predate it.
pub(crate) fn supports(option: SocketOption) -> bool {
    let Ok(socket) = Socket::new(Domain::IPV4, Type::STREAM, None) else {
        return false;
    };
    match option {
        SocketOption::BindAddressNoPort => set_bind_address_no_port(&socket, true).is_ok(),
        // A zero range means "no window": accepted by every kernel that has the option.
        SocketOption::LocalPortRange => set_ip_option(&socket, IP_LOCAL_PORT_RANGE, 0u32).is_ok(),
    }
}
