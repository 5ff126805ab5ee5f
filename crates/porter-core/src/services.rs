//! The ports `/etc/services` names for TCP: where the host's services listen, and so the
//! ports porter leaves alone by default (see [`crate::ServicePorts`]).
//!
//! The file is read once per process when a registry first needs it, and read again when
//! it changes (the settings watcher looks at its size, time and inode once a second, see
//! `watch.rs`). Where it is absent or unreadable (a container without Debian's `netbase`,
//! say), no port is named, and porter skips none: the same as `servicePorts: 'use'`.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::intervals;

/// Where the services are listed.
pub const SERVICES_PATH: &str = "/etc/services";

/// Intervals of ports, shared between every copy of the host's settings.
pub type Intervals = Arc<[(u16, u16)]>;

/// What tells one version of the file from another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

fn stamp(path: &str) -> Option<Stamp> {
    let m = fs::metadata(path).ok()?;
    Some(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime: m.mtime(),
        mtime_nsec: m.mtime_nsec(),
    })
}

/// The TCP ports of a services file (`name port/protocol aliases... # comment`), as sorted,
/// merged intervals; lines it cannot read are passed over.
pub fn parse(text: &str) -> Vec<(u16, u16)> {
    let ports = text.lines().filter_map(|line| {
        let line = line.split('#').next().unwrap_or_default();
        let (port, protocol) = line.split_whitespace().nth(1)?.split_once('/')?;
        let port: u16 = port.parse().ok().filter(|&p| p != 0)?;
        (protocol == "tcp").then_some((port, port))
    });
    intervals::normalize(ports.collect())
}

struct Cached {
    stamp: Option<Stamp>,
    ports: Intervals,
}

static CACHE: Mutex<Option<Cached>> = Mutex::new(None);

fn read(path: &str) -> Cached {
    let stamp = stamp(path);
    let ports = fs::read_to_string(path).map(|t| parse(&t)).unwrap_or_default();
    Cached {
        stamp,
        ports: ports.into(),
    }
}

/// The TCP ports `/etc/services` names, as last read (read now the first time).
pub(crate) fn current() -> Intervals {
    CACHE.lock().get_or_insert_with(|| read(SERVICES_PATH)).ports.clone()
}

/// Reads the file again if it changed since it was last read (and only if it was read).
pub(crate) fn refresh() {
    let mut cache = CACHE.lock();
    let Some(cached) = cache.as_mut() else {
        return;
    };
    if stamp(SERVICES_PATH) != cached.stamp {
        *cached = read(SERVICES_PATH);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tcp_ports_only() {
        let text = "# Network services\n\
                    tcpmux\t\t1/tcp\t\t\t\t# TCP port service multiplexer\n\
                    postgresql\t5432/tcp\t\tpostgres\n\
                    mysql 3306/tcp\n\
                    syslog\t\t514/udp\n\
                    x11 6000/tcp x11-0\n\
                    x11-1 6001/tcp\n\
                    broken 70000/tcp\n\
                    zero 0/tcp\n\
                    # commented 9999/tcp\n\
                    nothing\n\n";
        assert_eq!(parse(text), vec![(1, 1), (3306, 3306), (5432, 5432), (6000, 6001)]);
        assert!(parse("").is_empty());
    }

    #[test]
    fn this_hosts_file_or_none() {
        let ports = current();
        match fs::read_to_string(SERVICES_PATH) {
            Ok(text) => assert_eq!(&*ports, parse(&text).as_slice()),
            Err(_) => assert!(ports.is_empty(), "no file: no port named"),
        }
        refresh();
        assert_eq!(current(), ports, "unchanged since it was read");
    }
}
