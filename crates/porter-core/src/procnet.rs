//! The kernel's list of TCP sockets as text: `/proc/net/tcp` and `/proc/net/tcp6` of the
//! calling thread's network namespace. Every socket, one line each, which the kernel
//! formats and this module parses back: the fallback of [`crate::HostSockets`] where
//! netlink `sock_diag` is missing (see `sockdiag.rs`, several times faster).
//!
//! A line (`get_tcp4_sock`, `get_tcp6_sock`, `get_timewait4_sock` in the kernel):
//! `sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout
//! inode ...`, addresses as `%08X` of each 32-bit word of the address in the kernel's byte
//! order, ports and the state in hex.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::socket_entry::SocketEntry;
use crate::tcpstate::TcpState;

const TCP: &str = "/proc/net/tcp";
const TCP6: &str = "/proc/net/tcp6";

/// Every TCP socket of `/proc/net/tcp` and `/proc/net/tcp6` whose state is in `states`
/// (bit n for the kernel's state n), given to `each`. A missing tcp6 (IPv6 off) is no
/// error; a missing tcp is (no /proc, or another kernel).
pub(crate) fn read(states: u32, each: &mut dyn FnMut(SocketEntry)) -> io::Result<()> {
    parse_table(&std::fs::read(TCP)?, false, states, each);
    match std::fs::read(TCP6) {
        Ok(text) => parse_table(&text, true, states, each),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Every line of a table but the header.
pub(crate) fn parse_table(text: &[u8], v6: bool, states: u32, each: &mut dyn FnMut(SocketEntry)) {
    for line in text.split(|&b| b == b'\n').skip(1) {
        if let Some(entry) = parse_line(line, v6) {
            if states & (1 << entry.state as u32) != 0 {
                each(entry);
            }
        }
    }
}

fn parse_line(line: &[u8], v6: bool) -> Option<SocketEntry> {
    let mut fields = line.split(|&b| b == b' ').filter(|f| !f.is_empty());
    let _slot = fields.next()?;
    let local = endpoint(fields.next()?, v6)?;
    let remote = endpoint(fields.next()?, v6)?;
    let state = TcpState::from_kernel(u8::try_from(hex(fields.next()?)?).ok()?)?;
    let queues = fields.next()?;
    let rx = queues.iter().position(|&b| b == b':').map(|i| &queues[i + 1..])?;
    let _timer = fields.next()?;
    let _retransmits = fields.next()?;
    let uid = decimal(fields.next()?)?;
    let _timeout = fields.next()?;
    let inode = decimal(fields.next()?)?;
    Some(SocketEntry {
        state,
        local,
        remote,
        queued: u32::try_from(hex(rx)?).ok()?,
        uid: u32::try_from(uid).ok()?,
        inode: u32::try_from(inode).unwrap_or(u32::MAX),
    })
}

/// `0100007F:1F90` (or 32 hex digits for IPv6) into an address and port.
fn endpoint(field: &[u8], v6: bool) -> Option<SocketAddr> {
    let colon = field.iter().position(|&b| b == b':')?;
    let (addr, port) = (&field[..colon], &field[colon + 1..]);
    let port = u16::try_from(hex(port)?).ok()?;
    let ip = if v6 {
        if addr.len() != 32 {
            return None;
        }
        let mut octets = [0u8; 16];
        for (i, word) in addr.chunks(8).enumerate() {
            let w = u32::try_from(hex(word)?).ok()?;
            octets[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
        }
        IpAddr::V6(Ipv6Addr::from(octets))
    } else {
        if addr.len() != 8 {
            return None;
        }
        let w = u32::try_from(hex(addr)?).ok()?;
        IpAddr::V4(Ipv4Addr::from(w.to_ne_bytes()))
    };
    Some(SocketAddr::new(ip, port))
}

fn hex(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let d = (b as char).to_digit(16)?;
        Some(n << 4 | u64::from(d))
    })
}

fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let d = (b as char).to_digit(10)?;
        Some(n * 10 + u64::from(d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as this kernel prints them (little-endian words), one of each family.
    #[test]
    fn parses_the_kernel_lines() {
        let word = |ip: [u8; 4]| format!("{:08X}", u32::from_ne_bytes(ip));
        let v4 = format!(
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
             \x20  0: {}:1964 {}:9C40 01 00000000:00000002 00:00000000 00000000  1000        0 4242 1 0000000000000000 20 4 30 10 -1\n\
             \x20  1: {}:0000 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1\n",
            word([127, 0, 0, 2]),
            word([127, 0, 0, 1]),
            word([0, 0, 0, 0]),
        );
        let mut got = Vec::new();
        parse_table(v4.as_bytes(), false, u32::MAX, &mut |e| got.push(e));
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].state, TcpState::Established);
        assert_eq!(got[0].local, "127.0.0.2:6500".parse().unwrap());
        assert_eq!(got[0].remote, "127.0.0.1:40000".parse().unwrap());
        assert_eq!((got[0].queued, got[0].uid, got[0].inode), (2, 1000, 4242));
        assert_eq!(got[1].state, TcpState::Listen);

        let mut only_listen = Vec::new();
        parse_table(v4.as_bytes(), false, 1 << 10, &mut |e| only_listen.push(e));
        assert_eq!(only_listen.len(), 1);

        let loopback: String = [0u32, 0, 0, 1]
            .iter()
            .map(|w| format!("{:08X}", u32::from_ne_bytes(w.to_be_bytes())))
            .collect();
        let v6 = format!(
            "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
             \x20  0: {loopback}:1964 {loopback}:9C40 06 00000000:00000000 03:00000AB2 00000000     0        0 0 3 0000000000000000\n"
        );
        let mut six = Vec::new();
        parse_table(v6.as_bytes(), true, u32::MAX, &mut |e| six.push(e));
        assert_eq!(six.len(), 1);
        assert_eq!(six[0].state, TcpState::TimeWait);
        assert_eq!(six[0].local, "[::1]:6500".parse().unwrap());
    }

    #[test]
    fn refuses_malformed_lines() {
        assert!(parse_line(b"  0: 0100007F:1F90", false).is_none());
        assert!(parse_line(b"  0: 0100007G:1F90 0100007F:1F90 01 0:0 0:0 0 0 0 1", false).is_none());
        assert!(endpoint(b"0100007F:1F90", true).is_none());
        assert_eq!(hex(b"ff"), Some(255));
        assert_eq!(decimal(b"12x"), None);
    }
}
