//! How a registry hands out ports, and the options of the sockets it connects.

use std::time::Duration;

use crate::mode::{Mode, ServicePorts};
use crate::range::PortRange;
use crate::sockopts::SocketOptions;

/// Collisions retried on another port by default in [`Mode::Hybrid`]: enough that a
/// process sharing a destination with others rarely leaves its own ports for the
/// kernel's window (after a collision the next port is looked for at a random place, so
/// with a share `p` of the ports taken by other processes, all of `1 + 8` tries collide
/// with probability `p^9`: 13 % at `p = 0.8`), and few enough that a connect never costs
/// more than nine bind/connect pairs before the kernel picks.
pub const HYBRID_RETRIES: u32 = 8;

/// How a registry hands out ports, and the options of the sockets it connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The ports every pool draws from.
    pub range: PortRange,
    /// Which of them porter binds itself and which the kernel picks (see [`Mode`]).
    pub mode: Mode,
    /// Whether porter binds the ports `/etc/services` names (see [`ServicePorts`]).
    pub service_ports: ServicePorts,
    /// How long a port rests after this side closed first.
    pub aging: Duration,
    /// Extra ports to try after EADDRINUSE / EADDRNOTAVAIL.
    pub retry_attempts: u32,
    /// Whether the kernel picks a port outside the range when the range has none left.
    pub kernel_fallback: bool,
    /// Set on every socket it connects, before bind and connect (a connect may override
    /// them field by field).
    pub socket_options: SocketOptions,
}

impl Config {
    /// The retries a mode makes when the user set none: [`HYBRID_RETRIES`] in
    /// [`Mode::Hybrid`]; none in [`Mode::Pool`] (the Erlang original's default) and
    /// [`Mode::Kernel`] (the kernel's own search never collides).
    pub fn default_retries(mode: Mode) -> u32 {
        match mode {
            Mode::Hybrid => HYBRID_RETRIES,
            Mode::Pool | Mode::Kernel => 0,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            range: PortRange::DEFAULT,
            mode: Mode::Hybrid,
            service_ports: ServicePorts::Avoid,
            aging: Duration::from_secs(30),
            retry_attempts: HYBRID_RETRIES,
            kernel_fallback: true,
            socket_options: SocketOptions::default(),
        }
    }
}
