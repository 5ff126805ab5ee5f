//! Every raw call into the C library of porter's two crates, each behind a function named
//! after what it does and documented with the call and option it maps to; everything else
//! goes through socket2 and the standard library. One macro, [`syscall!`], makes the call
//! and turns its failure value into the thread's `errno` as an [`io::Error`].

use std::ffi::{CStr, CString};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, SockAddr, Socket, Type};

/// `libc::$fn(args)`, `Ok` with its result, or `Err(io::Error::last_os_error())` when it
/// returns `-1` (or the failure value given after `==`: `0`, a null pointer). The call is
/// unsafe: every use says why it is sound in a `SAFETY` comment.
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {
        syscall!($fn($($arg),*) == -1)
    };
    ($fn:ident ( $($arg:expr),* $(,)? ) == $fail:expr) => {{
        #[allow(unused_unsafe)]
        let res = unsafe { libc::$fn($($arg),*) };
        #[allow(clippy::cmp_null)]
        let failed = res == $fail;
        if failed {
            Err(io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}

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

/// `setsockopt(fd, level, name, &value, sizeof value)`.
fn setsockopt<T>(socket: &Socket, level: libc::c_int, name: libc::c_int, value: T) -> io::Result<()> {
    // SAFETY: a valid descriptor, a pointer to a value that lives across the call, and its
    // size.
    syscall!(setsockopt(
        socket.as_raw_fd(),
        level,
        name,
        (&value as *const T).cast(),
        std::mem::size_of::<T>() as libc::socklen_t,
    ))
    .map(drop)
}

/// `getsockopt(fd, level, name)` of an `int` option.
#[cfg(test)]
fn getsockopt_int(socket: &Socket, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a valid descriptor, a pointer to an int to fill and its size, both live
    // across the call.
    syscall!(getsockopt(
        socket.as_raw_fd(),
        level,
        name,
        (&mut value as *mut libc::c_int).cast(),
        &mut len,
    ))?;
    Ok(value)
}

/// `TCP_FASTOPEN_CONNECT` (Linux 4.11): `connect` asks for a Fast Open cookie, or, with a
/// cookie from an earlier connection to the same server, returns at once without sending
/// the SYN, which then leaves with the first data written. socket2 0.6 has no setter.
pub(crate) fn set_fastopen_connect(socket: &Socket, on: bool) -> io::Result<()> {
    setsockopt::<libc::c_int>(socket, libc::IPPROTO_TCP, libc::TCP_FASTOPEN_CONNECT, on.into())
}

/// Whether `TCP_FASTOPEN_CONNECT` is set (`getsockopt`).
#[cfg(test)]
pub(crate) fn fastopen_connect(socket: &Socket) -> io::Result<bool> {
    Ok(getsockopt_int(socket, libc::IPPROTO_TCP, libc::TCP_FASTOPEN_CONNECT)? != 0)
}

/// `IP_BIND_ADDRESS_NO_PORT` (Linux 4.2): `bind(addr, 0)` chooses no port; `connect`
/// chooses one later knowing the destination, so the kernel can share a port between
/// destinations (its 4-tuple-aware search) instead of burning one per socket. Options at
/// level `IPPROTO_IP` apply to IPv6 TCP sockets as well (`ipv6_setsockopt` hands them to
/// `ip_setsockopt`).
pub(crate) fn set_bind_address_no_port(socket: &Socket, on: bool) -> io::Result<()> {
    setsockopt::<libc::c_int>(socket, libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT, on.into())
}

/// `IP_LOCAL_PORT_RANGE` (Linux 6.3): the kernel picks this socket's port, at `connect`
/// or `bind(ip, 0)`, from `first..=last` intersected with its ephemeral range. The value
/// packs the lower bound in the low 16 bits and the upper bound in the high 16 bits (0:
/// no window).
pub(crate) fn set_local_port_range(socket: &Socket, first: u16, last: u16) -> io::Result<()> {
    let value: u32 = u32::from(first) | u32::from(last) << 16;
    setsockopt(socket, libc::IPPROTO_IP, IP_LOCAL_PORT_RANGE, value)
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
        SocketOption::LocalPortRange => setsockopt(&socket, libc::IPPROTO_IP, IP_LOCAL_PORT_RANGE, 0u32).is_ok(),
    }
}

/// `setpriority(PRIO_PROCESS, gettid(), nice)`: the calling thread's nice value (Linux
/// keeps one per thread). Lowering it needs no privilege.
pub(crate) fn set_thread_nice(nice: i32) -> io::Result<()> {
    // SAFETY: gettid takes nothing and cannot fail.
    let tid = syscall!(gettid())?;
    // SAFETY: setpriority on a thread of this process, with plain integers.
    syscall!(setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice)).map(drop)
}

/// `malloc_trim(0)` (glibc): gives the free pages of malloc's arenas back to the system.
/// Elsewhere it does nothing.
pub(crate) fn malloc_trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes no pointer and may be called at any time; it returns
        // 1 or 0 (whether it released memory), never a failure.
        let _ = syscall!(malloc_trim(0));
    }
}

/// `if_nametoindex(name)`: the index of the network interface called `name`, if any.
pub(crate) fn interface_index(name: &str) -> Option<u32> {
    let name = CString::new(name).ok()?;
    // SAFETY: `name` is a NUL-terminated string that outlives the call; 0 means none.
    syscall!(if_nametoindex(name.as_ptr()) == 0).ok()
}

/// `if_indextoname(index)`: the name of the network interface of `index`, if any.
pub(crate) fn interface_name(index: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` has the IF_NAMESIZE bytes if_indextoname may write; null means none.
    syscall!(if_indextoname(index, buf.as_mut_ptr()) == std::ptr::null_mut()).ok()?;
    // SAFETY: on success if_indextoname wrote a NUL-terminated name into `buf`.
    let name = unsafe { CStr::from_ptr(buf.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

/// `getsockname(fd)`: the local address of the socket behind descriptor `fd`, which this
/// code does not own (a closed one fails with `EBADF`; one that is no socket, `ENOTSOCK`).
pub(crate) fn socket_name(fd: RawFd) -> io::Result<SocketAddr> {
    name_of(fd, Name::Local)
}

/// `getpeername(fd)`: the address the socket behind descriptor `fd` is connected to.
pub(crate) fn peer_name(fd: RawFd) -> io::Result<SocketAddr> {
    name_of(fd, Name::Peer)
}

enum Name {
    Local,
    Peer,
}

fn name_of(fd: RawFd, which: Name) -> io::Result<SocketAddr> {
    // SAFETY: the call writes at most `len` bytes into the zeroed storage socket2 gives;
    // the descriptor is only named.
    let ((), addr) = unsafe {
        SockAddr::try_init(|storage, len| {
            match which {
                Name::Local => syscall!(getsockname(fd, storage.cast(), len)),
                Name::Peer => syscall!(getpeername(fd, storage.cast(), len)),
            }
            .map(drop)
        })
    }?;
    addr.as_socket()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EAFNOSUPPORT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces_by_name_and_index() {
        let lo = interface_index("lo").expect("a loopback interface");
        assert_eq!(interface_name(lo).as_deref(), Some("lo"));
        assert_eq!(interface_index("no-such-if0"), None);
        assert_eq!(interface_index("l\0o"), None);
        assert_eq!(interface_name(0), None);
    }

    #[test]
    fn names_of_a_connected_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert_eq!(socket_name(stream.as_raw_fd()).unwrap(), stream.local_addr().unwrap());
        assert_eq!(peer_name(stream.as_raw_fd()).unwrap(), listener.local_addr().unwrap());
        assert_eq!(
            peer_name(listener.as_raw_fd()).unwrap_err().raw_os_error(),
            Some(libc::ENOTCONN)
        );
        assert_eq!(socket_name(-1).unwrap_err().raw_os_error(), Some(libc::EBADF));
    }

    #[test]
    fn the_thread_nice_value_can_be_lowered() {
        std::thread::spawn(|| set_thread_nice(1).unwrap()).join().unwrap();
    }
}
