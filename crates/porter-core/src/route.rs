//! Routes: one destination and the source addresses it is reached from, each a flow.
//!
//! A route is what a caller keeps per destination: allocation, release and connect go
//! straight to its flows' pools, without the registry's map. A port taken through a route
//! is named by a [`LeaseId`]: the flow's position in the route and the port.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::connect::{self, Attempt};
use crate::error::{Error, Result};
use crate::flow::Flow;
use crate::flow_key::FlowKey;
use crate::pool::Released;
use crate::registry::Registry;
use crate::sockopts::SocketOptions;

/// A port taken through a route: the position of its flow in the route, and the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseId {
    /// Position of the flow (the source address) in the route.
    pub flow: u32,
    /// The local port.
    pub port: u16,
}

impl LeaseId {
    /// The id as one integer, `flow * 65536 + port`: exact in a JavaScript number for any
    /// number of source addresses up to 2^37.
    pub fn to_bits(self) -> u64 {
        u64::from(self.flow) << 16 | u64::from(self.port)
    }

    /// The id from [`LeaseId::to_bits`]; `None` beyond a flow index of `u32::MAX`.
    pub fn from_bits(bits: u64) -> Option<Self> {
        Some(Self {
            flow: u32::try_from(bits >> 16).ok()?,
            port: bits as u16,
        })
    }
}

/// One destination and its flows, one per source address, in the order they are tried.
#[derive(Debug)]
pub struct Route {
    flows: Box<[Flow]>,
    remote: SocketAddr,
    /// Where to start looking, for routes of several flows (see [`Hint`]).
    hint: Mutex<Hint>,
}

/// Flows before `from` had no port of porter's own free when last tried, and none can
/// have one back before `until_us` (their first aging deadline, at most a second ahead,
/// which also covers ports passed over for a while) unless one of theirs is released. So
/// a route of many source addresses does not try every exhausted one on every allocation,
/// and still hands out from the first flow that has a port.
#[derive(Debug, Default)]
struct Hint {
    from: u32,
    until_us: u64,
}

/// How long a hint stands at most.
const HINT_US: u64 = 1_000_000;

impl Route {
    /// The route to `remote` from `locals`, in that order (none: the unspecified address
    /// of the destination's family). Addresses are taken in canonical form (IPv4-mapped
    /// IPv6 as IPv4); a source address of the other family fails with
    /// [`Error::FamilyMismatch`].
    pub fn new(registry: &Arc<Registry>, locals: &[IpAddr], remote: SocketAddr) -> Result<Self> {
        let locals: Vec<SocketAddr> = locals.iter().map(|&ip| SocketAddr::new(ip, 0)).collect();
        Self::scoped(registry, &locals, remote)
    }

    /// [`Route::new`] with source addresses given as socket addresses, so that an IPv6
    /// link-local one carries its scope (the ports are ignored).
    pub fn scoped(registry: &Arc<Registry>, locals: &[SocketAddr], remote: SocketAddr) -> Result<Self> {
        let any = FlowKey::scoped(None, remote);
        let remote = any.remote_addr();
        let flows: Box<[Flow]> = if locals.is_empty() {
            Box::new([registry.flow(any)])
        } else {
            locals
                .iter()
                .map(|&local| {
                    let key = FlowKey::scoped(Some(local), remote);
                    if key.local.is_ipv4() != remote.is_ipv4() {
                        return Err(Error::FamilyMismatch {
                            local: key.local,
                            remote,
                        });
                    }
                    Ok(registry.flow(key))
                })
                .collect::<Result<_>>()?
        };
        Ok(Self {
            flows,
            remote,
            hint: Mutex::default(),
        })
    }

    fn registry(&self) -> &Arc<Registry> {
        self.flows[0].registry()
    }

    /// The first flow that may have a port of porter's own free.
    fn first_candidate(&self) -> usize {
        if self.flows.len() == 1 {
            return 0;
        }
        let hint = self.hint.lock();
        if hint.from == 0 || self.registry().now_us() >= hint.until_us {
            0
        } else {
            hint.from as usize
        }
    }

    /// The flows `from..to` had nothing free: start at `to` from now on, until one of
    /// theirs may have a port back.
    fn passed(&self, from: usize, to: usize) {
        if to <= from || self.flows.len() == 1 {
            return;
        }
        let now = self.registry().now_us();
        let back = self.flows[from..to]
            .iter()
            .map(Flow::next_return_us)
            .min()
            .unwrap_or(u64::MAX)
            .min(now.saturating_add(HINT_US));
        let mut hint = self.hint.lock();
        // Flows before `from` were passed over by an earlier hint still standing.
        let until = if from > 0 && hint.from as usize == from {
            hint.until_us.min(back)
        } else {
            back
        };
        *hint = Hint {
            from: to as u32,
            until_us: until,
        };
    }

    /// A port of the flow at `index` came back: start there again.
    fn returned(&self, index: u32) {
        if self.flows.len() > 1 {
            let mut hint = self.hint.lock();
            if index < hint.from {
                hint.from = index;
            }
        }
    }

    /// The destination.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// The flows, one per source address, in the order they are tried.
    pub fn flows(&self) -> &[Flow] {
        &self.flows
    }

    /// The source address of the flow at `index`.
    pub fn local_ip(&self, index: u32) -> Option<IpAddr> {
        self.flows.get(index as usize).map(|f| f.key().local)
    }

    fn flow(&self, id: LeaseId) -> Result<&Flow> {
        self.flows
            .get(id.flow as usize)
            .ok_or(Error::UnknownLease { id: id.to_bits() })
    }

    /// Takes a port from the first flow with one free (ports porter binds itself; see
    /// [`crate::Capacity`]). The caller owes one [`Route::release`]. [`Error::Exhausted`] for
    /// the first flow (and counted) when none has.
    pub fn allocate(&self) -> Result<LeaseId> {
        let from = self.first_candidate();
        for (i, flow) in self.flows.iter().enumerate().skip(from) {
            if let Some(port) = flow.allocate_port() {
                self.passed(from, i);
                return Ok(LeaseId { flow: i as u32, port });
            }
        }
        self.passed(from, self.flows.len());
        Err(self.flows[0].exhausted(None))
    }

    /// Gives a port back, into aging or at once. [`Released::NotInUse`] (and no change)
    /// if it was not in use; [`Error::UnknownLease`] if the id names no flow of the route.
    pub fn release(&self, id: LeaseId, aging: bool) -> Result<Released> {
        let released = self.flow(id)?.release(id.port, aging);
        if released != Released::NotInUse {
            self.returned(id.flow);
        }
        Ok(released)
    }

    /// Whether the port of `id` is aging now.
    pub fn is_aging(&self, id: LeaseId) -> Result<bool> {
        Ok(self.flow(id)?.is_aging(id.port))
    }

    /// Starts a connect to the destination (see [`connect::start`]).
    pub fn start(&self) -> Result<Attempt> {
        self.start_with(None)
    }

    /// [`Route::start`], with `options` (if any) overriding the registry's socket options
    /// field by field for this connect.
    pub fn start_with(&self, options: Option<&SocketOptions>) -> Result<Attempt> {
        let from = self.first_candidate();
        let attempt = connect::start_from(&self.flows, from, self.remote, options)?;
        self.passed(from, attempt.flow_index());
        Ok(attempt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_ids_round_trip_past_65536_flows() {
        for id in [
            LeaseId { flow: 0, port: 1 },
            LeaseId {
                flow: 65_536,
                port: 1024,
            },
            LeaseId {
                flow: u32::MAX,
                port: 65535,
            },
        ] {
            assert_eq!(LeaseId::from_bits(id.to_bits()), Some(id));
        }
        // Two ids that a 32-bit `index << 16 | port` would have confused.
        assert_ne!(
            LeaseId { flow: 0, port: 80 }.to_bits(),
            LeaseId { flow: 65_536, port: 80 }.to_bits()
        );
        assert!(
            LeaseId {
                flow: u32::MAX,
                port: 0
            }
            .to_bits()
                < 1 << 53
        );
    }
}
