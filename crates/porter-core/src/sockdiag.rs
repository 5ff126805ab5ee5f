//! The kernel's list of TCP sockets through netlink `sock_diag` (`NETLINK_SOCK_DIAG`,
//! `SOCK_DIAG_BY_FAMILY` with an `inet_diag_req_v2`, as `ss` asks for it): one dump per
//! address family, of the calling thread's network namespace, every socket in the states
//! asked for. Binary records, no text to format or parse: the fast source of
//! [`crate::HostSockets`] (see `procnet.rs` for the other one).
//!
//! Only socket2's safe calls are used (`socket`, `send`, `read`); the records are read
//! field by field from the bytes the kernel wrote.

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::socket_entry::SocketEntry;
use crate::tcpstate::TcpState;

/// `NETLINK_SOCK_DIAG` (`include/uapi/linux/netlink.h`).
const NETLINK_SOCK_DIAG: libc::c_int = 4;
/// `SOCK_DIAG_BY_FAMILY` (`include/uapi/linux/sock_diag.h`): the message type of a request
/// and of every socket record answering it.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `NLM_F_REQUEST | NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
const DUMP_REQUEST: u16 = 0x1 | 0x100 | 0x200;
/// `NLMSG_ERROR` and `NLMSG_DONE`.
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
/// `struct nlmsghdr`: len u32, type u16, flags u16, seq u32, pid u32.
const NLMSG_HDR: usize = 16;
/// `struct inet_diag_req_v2`: family, protocol, ext, pad (u8 each), states u32, then an
/// `inet_diag_sockid` of 48 bytes.
const REQ_LEN: usize = 8 + SOCKID_LEN;
/// `struct inet_diag_sockid`: sport, dport (be16), src, dst (4 x be32 each), if u32,
/// cookie 2 x u32.
const SOCKID_LEN: usize = 48;
/// `struct inet_diag_msg`: family, state, timer, retrans (u8 each), the sockid, then
/// expires, rqueue, wqueue, uid, inode (u32 each).
const MSG_LEN: usize = 4 + SOCKID_LEN + 20;
/// Big enough for the largest datagram a dump sends (the kernel fills at most 32 KiB).
const RECV_BUFFER: usize = 64 * 1024;
/// A dump that stalls this long is given up (the kernel answers at once).
const RECV_TIMEOUT: Duration = Duration::from_secs(5);

/// Every TCP socket of the calling thread's network namespace whose state is in
/// `states` (a bit mask, bit n for the kernel's state n), IPv4 then IPv6, given to `each`.
/// Errors: the socket cannot be made (`EPROTONOSUPPORT`/`EAFNOSUPPORT` where netlink or
/// `inet_diag` is missing, as in some sandboxes), or the kernel answers a dump with an
/// error (`NLMSG_ERROR`'s errno).
pub(crate) fn dump(states: u32, each: &mut dyn FnMut(SocketEntry)) -> io::Result<()> {
    let socket = Socket::new(
        Domain::from(libc::AF_NETLINK),
        Type::DGRAM,
        Some(Protocol::from(NETLINK_SOCK_DIAG)),
    )?;
    socket.set_read_timeout(Some(RECV_TIMEOUT))?;
    let mut buffer = vec![0u8; RECV_BUFFER];
    for (seq, family) in [(1, libc::AF_INET), (2, libc::AF_INET6)] {
        // No address: an unconnected netlink socket sends to the kernel (port id 0).
        socket.send(&request(family as u8, states, seq))?;
        receive(&socket, &mut buffer, seq, each)?;
    }
    Ok(())
}

/// The request: a netlink header and an `inet_diag_req_v2` for TCP in `family`.
fn request(family: u8, states: u32, seq: u32) -> [u8; NLMSG_HDR + REQ_LEN] {
    let mut r = [0u8; NLMSG_HDR + REQ_LEN];
    r[0..4].copy_from_slice(&((NLMSG_HDR + REQ_LEN) as u32).to_ne_bytes());
    r[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    r[6..8].copy_from_slice(&DUMP_REQUEST.to_ne_bytes());
    r[8..12].copy_from_slice(&seq.to_ne_bytes());
    // pid 0: the kernel fills in this socket's port id.
    r[NLMSG_HDR] = family;
    r[NLMSG_HDR + 1] = libc::IPPROTO_TCP as u8;
    // ext 0: no extension attributes; pad 0; the id stays zero (no filter but the states).
    r[NLMSG_HDR + 4..NLMSG_HDR + 8].copy_from_slice(&states.to_ne_bytes());
    r
}

/// Reads the answers to request `seq` up to `NLMSG_DONE`.
fn receive(socket: &Socket, buffer: &mut [u8], seq: u32, each: &mut dyn FnMut(SocketEntry)) -> io::Result<()> {
    let mut reader = socket;
    loop {
        let n = reader.read(buffer)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "sock_diag: empty datagram",
            ));
        }
        let mut at = 0;
        while at + NLMSG_HDR <= n {
            let len = u32_at(buffer, at) as usize;
            let kind = u16::from_ne_bytes([buffer[at + 4], buffer[at + 5]]);
            if len < NLMSG_HDR || at + len > n {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "sock_diag: truncated message",
                ));
            }
            let body = &buffer[at + NLMSG_HDR..at + len];
            let from_request = u32_at(buffer, at + 8) == seq;
            match kind {
                NLMSG_DONE if from_request => return Ok(()),
                NLMSG_ERROR if from_request => {
                    let errno = body
                        .get(0..4)
                        .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                    if errno != 0 {
                        return Err(io::Error::from_raw_os_error(-errno));
                    }
                }
                SOCK_DIAG_BY_FAMILY if from_request => {
                    if let Some(entry) = parse(body) {
                        each(entry);
                    }
                }
                _ => {}
            }
            // Messages are aligned to 4 bytes (NLMSG_ALIGN).
            at += (len + 3) & !3;
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The address at `at` of a sockid (4 x be32, of which IPv4 uses the first).
fn address(b: &[u8], at: usize, family: u8) -> Option<IpAddr> {
    match i32::from(family) {
        libc::AF_INET => Some(IpAddr::V4(Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]))),
        libc::AF_INET6 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&b[at..at + 16]);
            Some(IpAddr::V6(Ipv6Addr::from(octets)))
        }
        _ => None,
    }
}

/// One `inet_diag_msg` (its attributes, if any, are ignored).
fn parse(msg: &[u8]) -> Option<SocketEntry> {
    if msg.len() < MSG_LEN {
        return None;
    }
    let family = msg[0];
    let state = TcpState::from_kernel(msg[1])?;
    let id = 4;
    let local_port = u16::from_be_bytes([msg[id], msg[id + 1]]);
    let remote_port = u16::from_be_bytes([msg[id + 2], msg[id + 3]]);
    let local = address(msg, id + 4, family)?;
    let remote = address(msg, id + 20, family)?;
    let tail = id + SOCKID_LEN;
    Some(SocketEntry {
        state,
        local: SocketAddr::new(local, local_port),
        remote: SocketAddr::new(remote, remote_port),
        queued: u32_at(msg, tail + 4),
        uid: u32_at(msg, tail + 12),
        inode: u32_at(msg, tail + 16),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_laid_out_as_the_kernel_reads_it() {
        let r = request(libc::AF_INET6 as u8, 1 << 10, 7);
        assert_eq!(r.len(), 72);
        assert_eq!(u32_at(&r, 0), 72);
        assert_eq!(u16::from_ne_bytes([r[4], r[5]]), 20);
        assert_eq!(u16::from_ne_bytes([r[6], r[7]]), 0x301);
        assert_eq!(u32_at(&r, 8), 7);
        assert_eq!(r[16], libc::AF_INET6 as u8);
        assert_eq!(r[17], 6);
        assert_eq!(u32_at(&r, 20), 1 << 10);
    }

    #[test]
    fn a_record_is_read_field_by_field() {
        let mut m = [0u8; MSG_LEN + 8];
        m[0] = libc::AF_INET as u8;
        m[1] = 1; // ESTABLISHED
        m[4..6].copy_from_slice(&40000u16.to_be_bytes());
        m[6..8].copy_from_slice(&6500u16.to_be_bytes());
        m[8..12].copy_from_slice(&[127, 0, 0, 2]);
        m[24..28].copy_from_slice(&[127, 0, 0, 1]);
        m[56..60].copy_from_slice(&3u32.to_ne_bytes()); // rqueue
        m[64..68].copy_from_slice(&1000u32.to_ne_bytes()); // uid
        m[68..72].copy_from_slice(&4242u32.to_ne_bytes()); // inode
        let e = parse(&m).unwrap();
        assert_eq!(e.state, TcpState::Established);
        assert_eq!(e.local, "127.0.0.2:40000".parse().unwrap());
        assert_eq!(e.remote, "127.0.0.1:6500".parse().unwrap());
        assert_eq!((e.queued, e.uid, e.inode), (3, 1000, 4242));
        assert!(parse(&m[..MSG_LEN - 1]).is_none());
        m[1] = 0; // no such state
        assert!(parse(&m).is_none());
    }
}
