//! porter's core: per-destination pools of local ports with exact aging, and
//! bind-before-connect with `SO_REUSEADDR`, retries and a kernel fallback.
//!
//! Pure Rust with no Node.js in sight: the napi binding (`porter-node`) only converts
//! types and errors. The layers, bottom up:
//! - [`PortRange`]: the ports a registry hands out; [`HostPorts`]: the kernel's ephemeral
//!   and reserved ports and the ports `/etc/services` names; [`Capacity`]: which ports porter
//!   binds itself and which it leaves to the kernel to pick at `connect()` (the [`Mode`],
//!   [`ServicePorts`]), made again when the host's settings change;
//! - `portset` / `aging` / [`Pool`]: the taken ports of one flow, sparse, with an aging
//!   FIFO whose every port carries its own deadline;
//! - [`Registry`] / [`Flow`] / [`Lease`]: the map of flows to pools of one configuration,
//!   safe from every thread, which drops pools that hold nothing;
//! - [`Route`]: one destination and its flows (one per source address), what callers
//!   keep per destination;
//! - [`connect`]: sockets bound to leased ports, connected without blocking, with the
//!   [`SocketOptions`] set before bind and connect;
//! - [`reserve`]: sockets made ahead of need on a helper thread, for `connect`;
//! - [`HostSockets`]: the host's own TCP sockets (everyone's), per destination, for
//!   `porter doctor`.
#![deny(missing_docs)]

mod aging;
mod blocked;
mod capacity;
mod clock;
mod config;
pub mod connect;
mod default_registry;
mod diag;
mod errno;
mod error;
mod flow;
mod flow_entry;
mod flow_key;
mod held_route;
mod host;
mod in_flight;
mod inspect;
mod intervals;
mod lease;
mod live_capacity;
mod mode;
mod pool;
mod portset;
mod procnet;
mod random;
mod range;
mod registry;
pub mod reserve;
mod retire;
mod route;
mod route_id;
mod route_table;
mod scope;
mod services;
mod shard;
mod sockdiag;
mod socket_entry;
mod sockopts;
mod stats;
mod sys;
mod tcpstate;
mod trim;
mod watch;

pub use aging::AgingPort;
pub use blocked::BLOCK_PERIOD;
pub use capacity::{Capacity, KernelWindow};
pub use clock::{Clock, ManualClock, MonotonicClock};
pub use config::{Config, HYBRID_RETRIES};
pub use diag::{Destination, HostSockets, Listener, SocketSource, SourcePorts};
pub use errno::errno_name;
pub use error::{Error, Result};
pub use flow::Flow;
pub use flow_key::FlowKey;
pub use host::{HostPorts, KernelFeatures};
pub use inspect::{PoolCounts, PoolSnapshot, PoolSummary, PoolTotals};
pub use lease::Lease;
pub use mode::{Mode, ServicePorts};
pub use pool::{Marked, Pool, Released};
pub use range::PortRange;
pub use registry::Registry;
pub use route::{LeaseId, Route};
pub use route_id::RouteId;
pub use route_table::{HandedOver, RouteTable};
pub use scope::{scope_id, scope_name};
pub use sockopts::{KeepAlive, ShortName, SocketOptions, NAME_MAX};
pub use stats::{PorterStats, DURATION_BUCKETS};
pub use tcpstate::TcpState;
pub use watch::{watching, WATCH_PERIOD};
