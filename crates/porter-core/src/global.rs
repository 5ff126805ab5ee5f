//! The process-wide registry, shared by every thread (and so by every worker thread of
//! Node, which all load the same addon image): a `OnceLock` static.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use crate::clock::MonotonicClock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::registry::Registry;

static GLOBAL: OnceLock<Arc<Registry>> = OnceLock::new();

impl Registry {
    /// The process-wide registry, shared by every thread (and so every worker thread of
    /// Node), created with the default configuration on first use.
    pub fn global() -> &'static Arc<Registry> {
        // The default mode (hybrid) works on every host: nothing to check.
        GLOBAL.get_or_init(|| Registry::following(Config::default(), Vec::new(), MonotonicClock::new()))
    }

    /// The process-wide registry with `config`: creates it, or returns it if it already
    /// has that configuration; [`Error::GlobalConfigured`] if it has another.
    pub fn init_global(config: Config) -> Result<&'static Arc<Registry>> {
        Self::init_global_with(config, Vec::new())
    }

    /// [`Registry::init_global`] with source addresses (see [`Registry::with_local_addresses`]).
    pub fn init_global_with(config: Config, local_addresses: Vec<IpAddr>) -> Result<&'static Arc<Registry>> {
        let local_addresses: Vec<IpAddr> = local_addresses.iter().map(IpAddr::to_canonical).collect();
        if GLOBAL.get().is_none() {
            // Checked before it becomes the global one: a failed check leaves none.
            let registry = Registry::with_local_addresses(config, local_addresses.clone())?;
            let _ = GLOBAL.set(registry);
        }
        let global = Self::global();
        if *global.config() == config && global.local_addresses() == local_addresses {
            Ok(global)
        } else {
            Err(Error::GlobalConfigured)
        }
    }
}
