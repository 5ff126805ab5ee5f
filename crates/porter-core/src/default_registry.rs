//! The default registry: one per process, shared by every thread (and so by every worker
//! thread of Node, which all load the same addon image), a `OnceLock` static. What a
//! default Porter is natively (`configureDefault`, `defaultPorter()` in @porter/core).

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use crate::clock::MonotonicClock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::registry::Registry;

static DEFAULT: OnceLock<Arc<Registry>> = OnceLock::new();

impl Registry {
    /// The default registry, shared by every thread (and so every worker thread of Node),
    /// created with the default configuration on first use.
    pub fn default_registry() -> &'static Arc<Registry> {
        // The default mode (hybrid) works on every host: nothing to check.
        DEFAULT.get_or_init(|| Registry::following(Config::default(), Vec::new(), MonotonicClock::new()))
    }

    /// The default registry with `config`: creates it, or returns it if it already
    /// has that configuration; [`Error::DefaultConfigured`] if it has another.
    pub fn configure_default(config: Config) -> Result<&'static Arc<Registry>> {
        Self::configure_default_with(config, Vec::new())
    }

    /// [`Registry::configure_default`] with source addresses (see [`Registry::with_local_addresses`]).
    pub fn configure_default_with(config: Config, local_addresses: Vec<IpAddr>) -> Result<&'static Arc<Registry>> {
        let local_addresses: Vec<IpAddr> = local_addresses.iter().map(IpAddr::to_canonical).collect();
        if DEFAULT.get().is_none() {
            // Checked before it becomes the default one: a failed check leaves none.
            let registry = Registry::with_local_addresses(config, local_addresses.clone())?;
            let _ = DEFAULT.set(registry);
        }
        let default = Self::default_registry();
        if *default.config() == config && default.local_addresses() == local_addresses {
            Ok(default)
        } else {
            Err(Error::DefaultConfigured)
        }
    }
}
