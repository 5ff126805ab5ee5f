//! The host's TCP sockets (`porter_core::HostSockets`) as JavaScript objects: listeners,
//! and per destination its sockets per state and the ports of each zone taken for it.

use napi_derive::napi;
use porter_core::{errno_name, SocketSource, TcpState};

use crate::convert::{port, Interval};
use crate::error::{coded, invalid_arg, Result};

#[napi(object)]
pub struct Listener {
    pub address: String,
    pub port: u32,
    pub uid: u32,
    pub inode: u32,
    pub queued: u32,
    pub connections: u32,
}

#[napi(object)]
pub struct Destination {
    pub address: String,
    pub port: u32,
    /// Sockets per state, in the order of `HostSockets.states`.
    pub states: Vec<u32>,
    /// The source addresses holding ports towards it.
    pub sources: Vec<String>,
    /// For each zone asked for, its ports a new connection to it cannot have.
    pub taken: Vec<u32>,
}

#[napi(object)]
pub struct HostSockets {
    /// `sock_diag` or `proc`.
    pub source: String,
    /// The names of the states counted, in order.
    pub states: Vec<String>,
    pub listeners: Vec<Listener>,
    pub destinations: Vec<Destination>,
    pub incoming: u32,
}

/// The TCP sockets of this thread's network namespace from `source` (`sock_diag`,
/// `proc`; by default the first that works), with the ports of each of `zones` taken per
/// destination. Throws the system's code when no source can be read.
#[napi(catch_unwind)]
pub fn host_sockets(zones: Vec<Vec<Interval>>, source: Option<String>) -> Result<HostSockets> {
    let source = match source.as_deref() {
        None => None,
        Some(name) => {
            Some(SocketSource::from_name(name).ok_or_else(|| invalid_arg(format!("no socket source {name}")))?)
        }
    };
    let zones = zones
        .iter()
        .map(|zone| {
            zone.iter()
                .map(|i| Ok((port(i.first, "zone start")?, port(i.last, "zone end")?)))
                .collect::<Result<Vec<(u16, u16)>>>()
        })
        .collect::<Result<Vec<_>>>()?;
    let host = porter_core::HostSockets::read(source).map_err(|e| {
        coded(
            errno_name(e.raw_os_error()),
            format!("the host's sockets cannot be read: {e}"),
        )
    })?;
    Ok(HostSockets {
        source: host.source.name().to_owned(),
        states: TcpState::HOLDING.iter().map(|s| s.name().to_owned()).collect(),
        listeners: host
            .listeners
            .iter()
            .map(|l| Listener {
                address: l.address.to_string(),
                port: l.port.into(),
                uid: l.uid,
                inode: l.inode,
                queued: l.queued,
                connections: l.connections,
            })
            .collect(),
        destinations: host
            .destinations
            .iter()
            .map(|d| Destination {
                address: d.address.to_string(),
                port: d.port.into(),
                states: d.states.to_vec(),
                sources: d.sources.iter().map(|s| s.address.to_string()).collect(),
                taken: zones.iter().map(|zone| host.taken(d, zone)).collect(),
            })
            .collect(),
        incoming: host.incoming,
    })
}
