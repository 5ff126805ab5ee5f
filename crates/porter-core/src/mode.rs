//! What a configuration says about which ports porter binds itself: the [`Mode`] (porter's
//! share of the range against the kernel's) and [`ServicePorts`] (whether the ports
//! `/etc/services` names are left to the services).

/// How a registry chooses local ports (see [`crate::Capacity`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Bind ports outside the kernel's ephemeral range; let the kernel pick inside it.
    #[default]
    Hybrid,
    /// Bind every port of the range but reserved ones: the Erlang original's behaviour,
    /// which takes ephemeral ports from the rest of the host.
    Pool,
    /// Let the kernel pick every port, within the range (`IP_LOCAL_PORT_RANGE`).
    Kernel,
}

impl Mode {
    /// The name users write: `hybrid`, `pool` or `kernel`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Hybrid => "hybrid",
            Mode::Pool => "pool",
            Mode::Kernel => "kernel",
        }
    }

    /// The mode called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "hybrid" => Some(Mode::Hybrid),
            "pool" => Some(Mode::Pool),
            "kernel" => Some(Mode::Kernel),
            _ => None,
        }
    }
}

/// Whether porter binds the ports `/etc/services` names for TCP (see
/// [`crate::HostPorts::services`]).
///
/// A daemon that binds its port without `SO_REUSEADDR` (many do) fails with `EADDRINUSE`
/// while any socket holds the port, and for the TIME_WAIT period (60 s) after a connection
/// on it was closed by this side first. Services listen on the ports `/etc/services`
/// names, which lie mostly below the kernel's ephemeral range, where porter binds ports
/// itself; leaving them out costs porter about 130 of the 31,744 ports below Linux's
/// default ephemeral range (Debian's netbase list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServicePorts {
    /// Never bind them (the default): a service that starts later finds its port free.
    #[default]
    Avoid,
    /// Bind them like any other port.
    Use,
}

impl ServicePorts {
    /// The name users write: `avoid` or `use`.
    pub fn name(self) -> &'static str {
        match self {
            ServicePorts::Avoid => "avoid",
            ServicePorts::Use => "use",
        }
    }

    /// The choice called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "avoid" => Some(ServicePorts::Avoid),
            "use" => Some(ServicePorts::Use),
            _ => None,
        }
    }
}
