//! A port taken from a flow, which cannot be lost on an error path.

use std::net::SocketAddr;

use crate::error::Result;
use crate::flow::Flow;
use crate::pool::Released;

/// A port taken from a flow. Released into aging when dropped, unless released or
/// handed over with [`Lease::into_port`] first: a port cannot be lost on an error path.
#[derive(Debug)]
pub struct Lease {
    flow: Flow,
    port: u16,
    armed: bool,
}

impl Lease {
    pub(crate) fn new(flow: Flow, port: u16) -> Self {
        Self {
            flow,
            port,
            armed: true,
        }
    }

    /// The local port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The flow it belongs to.
    pub fn flow(&self) -> &Flow {
        &self.flow
    }

    /// The local socket address to bind.
    pub fn local_addr(&self) -> SocketAddr {
        self.flow.key().local_addr(self.port)
    }

    /// Gives the port back, into aging or at once.
    pub fn release(mut self, aging: bool) -> Released {
        self.armed = false;
        self.flow.release(self.port, aging)
    }

    /// Hands the duty to release over to the caller, who must call [`Flow::release`].
    pub fn into_port(mut self) -> u16 {
        self.armed = false;
        self.port
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.armed {
            self.flow.release(self.port, true);
        }
    }
}

impl Flow {
    /// Takes a port as a [`Lease`], or fails with [`crate::Error::Exhausted`].
    pub fn allocate(&self) -> Result<Lease> {
        match self.allocate_port() {
            Some(port) => Ok(Lease::new(self.clone(), port)),
            None => Err(self.exhausted(None)),
        }
    }
}
