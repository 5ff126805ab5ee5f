//! `Registry`: one porter-core registry (a `Porter` instance, or the process default).

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use porter_core::{Config, Registry as CoreRegistry};

use crate::convert::{self, interval, Interval};
use crate::error::{from_core, Result};
use crate::inspect::{PoolCounts, PoolSnapshot, PoolSummary, PorterStats};
use crate::route;
use crate::sockopts::{self, SocketOptions};

/// What V8 is told a registry costs beyond its JavaScript object (its shards, counters and
/// capacity), so that dropped Porters are collected before their native memory piles up.
const REGISTRY_BYTES: i64 = 4096;

#[napi(object)]
pub struct RegistryOptions {
    pub range_first: u32,
    pub range_last: u32,
    /// 'hybrid', 'pool' or 'kernel'.
    pub mode: String,
    /// 'avoid' (the default) or 'use'.
    pub service_ports: Option<String>,
    pub aging_ms: f64,
    pub retry_attempts: u32,
    pub kernel_fallback: bool,
    pub local_addresses: Option<Vec<String>>,
    /// Set on every socket the registry connects.
    pub socket_options: Option<SocketOptions>,
}

/// How a registry's range is split between porter and the kernel.
#[napi(object)]
pub struct Capacity {
    pub mode: String,
    /// Ports porter binds itself, per destination and source address.
    pub explicit: u32,
    /// Ports of the kernel's window, per destination and source address.
    pub kernel: u32,
    pub per_destination: u32,
    pub explicit_ports: Vec<Interval>,
    pub kernel_window: Option<Interval>,
    /// Whether sockets carry IP_LOCAL_PORT_RANGE to keep the kernel in its window.
    pub kernel_window_narrowed: bool,
    /// The ephemeral range in force (as last read).
    pub ephemeral: Interval,
    /// Ports porter would bind itself but for /etc/services.
    pub service_ports: u32,
}

fn config(options: &RegistryOptions) -> Result<Config> {
    Ok(Config {
        range: convert::range(options.range_first, options.range_last)?,
        mode: convert::mode(&options.mode)?,
        service_ports: options
            .service_ports
            .as_deref()
            .map(convert::service_ports)
            .transpose()?
            .unwrap_or_default(),
        aging: convert::duration(options.aging_ms),
        retry_attempts: options.retry_attempts,
        kernel_fallback: options.kernel_fallback,
        socket_options: options
            .socket_options
            .as_ref()
            .map(sockopts::to_core)
            .transpose()?
            .unwrap_or_default(),
    })
}

fn local_addresses(options: &RegistryOptions) -> Result<Vec<std::net::IpAddr>> {
    options
        .local_addresses
        .iter()
        .flatten()
        .map(|a| convert::ip(a))
        .collect()
}

#[napi(custom_finalize)]
pub struct Registry {
    inner: Arc<CoreRegistry>,
    /// Whether V8 was told of this registry's native memory (not for the default one).
    accounted: bool,
}

impl ObjectFinalize for Registry {
    fn finalize(self, env: Env) -> napi::Result<()> {
        if self.accounted {
            env.adjust_external_memory(-REGISTRY_BYTES)?;
        }
        Ok(())
    }
}

#[napi]
impl Registry {
    /// A registry of its own.
    #[napi(constructor, catch_unwind)]
    pub fn new(env: Env, options: RegistryOptions) -> Result<Self> {
        let inner = CoreRegistry::new(config(&options)?).map_err(from_core)?;
        let accounted = env.adjust_external_memory(REGISTRY_BYTES).is_ok();
        Ok(Self { inner, accounted })
    }

    /// The default registry, the same from every worker thread. With `options`, it must
    /// not exist yet with other options.
    #[napi(factory, catch_unwind)]
    pub fn default_registry(options: Option<RegistryOptions>) -> Result<Self> {
        let registry = match options {
            Some(options) => CoreRegistry::configure_default_with(config(&options)?, local_addresses(&options)?)
                .map_err(from_core)?,
            None => CoreRegistry::default_registry(),
        };
        Ok(Self {
            inner: registry.clone(),
            accounted: false,
        })
    }

    /// The options the registry was made with.
    #[napi(catch_unwind)]
    pub fn options(&self) -> RegistryOptions {
        let config = self.inner.config();
        RegistryOptions {
            range_first: config.range.first().into(),
            range_last: config.range.last().into(),
            mode: config.mode.name().to_owned(),
            service_ports: Some(config.service_ports.name().to_owned()),
            aging_ms: config.aging.as_secs_f64() * 1000.0,
            retry_attempts: config.retry_attempts,
            kernel_fallback: config.kernel_fallback,
            local_addresses: Some(self.inner.local_addresses().iter().map(ToString::to_string).collect()),
            socket_options: Some(sockopts::from_core(&config.socket_options)),
        }
    }

    /// How the range is split between porter and the kernel, per destination.
    #[napi(catch_unwind)]
    pub fn capacity(&self) -> Capacity {
        let capacity = self.inner.capacity();
        Capacity {
            mode: capacity.mode().name().to_owned(),
            explicit: capacity.explicit(),
            kernel: capacity.kernel(),
            per_destination: capacity.per_destination(),
            explicit_ports: capacity.explicit_ports().iter().map(|&(a, b)| interval(a, b)).collect(),
            kernel_window: capacity
                .kernel_window()
                .map(|w| interval(w.ports.first(), w.ports.last())),
            kernel_window_narrowed: capacity.kernel_window().is_some_and(|w| w.narrowed),
            ephemeral: interval(capacity.ephemeral().first(), capacity.ephemeral().last()),
            service_ports: capacity.service_ports(),
        }
    }

    /// Whether `other` is the same registry.
    #[napi(catch_unwind)]
    pub fn same_as(&self, other: &Registry) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Opens the route to a destination from `locals`, in order (empty: the unspecified
    /// address of the destination's family), in this thread's table; returns its id for
    /// the route functions. Close it with `routeClose`.
    #[napi(catch_unwind)]
    pub fn route(&self, env: Env, locals: Vec<String>, remote_address: String, remote_port: u32) -> Result<f64> {
        let remote = convert::socket_addr(&remote_address, remote_port)?;
        let locals = locals
            .iter()
            .map(|a| convert::scoped(a, 0))
            .collect::<Result<Vec<_>>>()?;
        let route = porter_core::Route::scoped(&self.inner, &locals, remote).map_err(from_core)?;
        route::open(&env, route)
    }

    /// Every pool, after expiring aging ports and dropping idle pools.
    #[napi(catch_unwind)]
    pub fn snapshot(&self) -> Vec<PoolSnapshot> {
        self.inner.snapshot().into_iter().map(PoolSnapshot::from).collect()
    }

    /// Every pool's counts, after expiring aging ports (a snapshot without the ports).
    #[napi(catch_unwind)]
    pub fn pool_counts(&self) -> Vec<PoolCounts> {
        self.inner.pool_counts().iter().map(PoolCounts::from).collect()
    }

    /// The `busiest` pools with the most ports in use (then aging), busiest first, and
    /// every other pool summed; aging ports expired first.
    #[napi(catch_unwind)]
    pub fn pool_summary(&self, busiest: u32) -> PoolSummary {
        self.inner.pool_summary(busiest as usize).into()
    }

    /// The counters.
    #[napi(catch_unwind)]
    pub fn stats(&self) -> PorterStats {
        self.inner.stats().into()
    }
}
