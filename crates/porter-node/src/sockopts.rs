//! Socket options as JavaScript gives them (a `Porter`'s, or one connect's), converted
//! into porter-core's [`porter_core::SocketOptions`], and back for the options a registry reports.
//! @porter/core validates them, once, with Node's codes; this converts what it passes on.
//! A name longer than the kernel keeps cannot be a [`ShortName`]: that conversion fails
//! (ERR_INVALID_ARG_VALUE), as a `tos` above 255 does.

use std::time::Duration;

use napi_derive::napi;
use porter_core::{KeepAlive, ShortName};

use crate::convert::duration;
use crate::error::{invalid_arg, Result};

/// TCP keep-alive as JavaScript gives it: `enabled: false` for `keepAlive: false`.
#[napi(object)]
#[derive(Debug, Clone, PartialEq)]
pub struct KeepAliveOptions {
    pub enabled: bool,
    pub idle_ms: Option<f64>,
    pub interval_ms: Option<f64>,
    pub count: Option<u32>,
}

/// `socketOptions` as JavaScript gives them; a field left out is not given.
#[napi(object)]
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SocketOptions {
    pub user_timeout_ms: Option<f64>,
    pub keep_alive: Option<KeepAliveOptions>,
    pub mark: Option<u32>,
    pub bind_to_device: Option<String>,
    pub tos: Option<u32>,
    pub freebind: Option<bool>,
    pub transparent: Option<bool>,
    pub linger_zero_on_close: Option<bool>,
    pub fast_open: Option<bool>,
    pub congestion: Option<String>,
}

fn name(text: &str, what: &str) -> Result<ShortName> {
    ShortName::new(text).ok_or_else(|| {
        invalid_arg(format!(
            "socketOptions.{what} must be at most {} bytes with no NUL, got {text:?}",
            porter_core::NAME_MAX
        ))
    })
}

/// The core's options for `o`.
pub fn to_core(o: &SocketOptions) -> Result<porter_core::SocketOptions> {
    let keepalive = match &o.keep_alive {
        None => None,
        Some(k) if !k.enabled => Some(KeepAlive::Off),
        Some(k) => Some(KeepAlive::On {
            idle: k.idle_ms.map(duration),
            interval: k.interval_ms.map(duration),
            count: k.count,
        }),
    };
    let tos = o
        .tos
        .map(|t| u8::try_from(t).map_err(|_| invalid_arg(format!("socketOptions.tos must be 0 to 255, got {t}"))))
        .transpose()?;
    let options = porter_core::SocketOptions {
        user_timeout: o.user_timeout_ms.map(duration),
        keepalive,
        mark: o.mark,
        bind_to_device: o
            .bind_to_device
            .as_deref()
            .map(|d| name(d, "bindToDevice"))
            .transpose()?,
        tos,
        freebind: o.freebind,
        transparent: o.transparent,
        linger_zero_on_close: o.linger_zero_on_close,
        fast_open: o.fast_open,
        congestion: o.congestion.as_deref().map(|c| name(c, "congestion")).transpose()?,
    };
    Ok(options)
}

/// `o` as JavaScript reads it back (a registry's options).
pub fn from_core(o: &porter_core::SocketOptions) -> SocketOptions {
    let ms = |d: Duration| d.as_millis() as f64;
    SocketOptions {
        user_timeout_ms: o.user_timeout.map(ms),
        keep_alive: o.keepalive.map(|k| match k {
            KeepAlive::Off => KeepAliveOptions {
                enabled: false,
                idle_ms: None,
                interval_ms: None,
                count: None,
            },
            KeepAlive::On { idle, interval, count } => KeepAliveOptions {
                enabled: true,
                idle_ms: idle.map(ms),
                interval_ms: interval.map(ms),
                count,
            },
        }),
        mark: o.mark,
        bind_to_device: o.bind_to_device.map(|d| d.as_str().to_owned()),
        tos: o.tos.map(u32::from),
        freebind: o.freebind,
        transparent: o.transparent,
        linger_zero_on_close: o.linger_zero_on_close,
        fast_open: o.fast_open,
        congestion: o.congestion.map(|c| c.as_str().to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_field() -> SocketOptions {
        SocketOptions {
            user_timeout_ms: Some(2_000.0),
            keep_alive: Some(KeepAliveOptions {
                enabled: true,
                idle_ms: Some(30_000.0),
                interval_ms: Some(5_000.0),
                count: Some(3),
            }),
            mark: Some(0xffff_ffff),
            bind_to_device: Some("eth1".into()),
            tos: Some(0xb8),
            freebind: Some(true),
            transparent: Some(false),
            linger_zero_on_close: Some(true),
            fast_open: Some(true),
            congestion: Some("bbr".into()),
        }
    }

    #[test]
    fn every_field_crosses_both_ways() {
        let core = to_core(&every_field()).unwrap();
        assert_eq!(core.user_timeout, Some(Duration::from_secs(2)));
        assert_eq!(
            core.keepalive,
            Some(KeepAlive::On {
                idle: Some(Duration::from_secs(30)),
                interval: Some(Duration::from_secs(5)),
                count: Some(3)
            })
        );
        assert_eq!((core.mark, core.tos), (Some(u32::MAX), Some(0xb8)));
        assert_eq!(core.bind_to_device.unwrap().as_str(), "eth1");
        assert_eq!(core.congestion.unwrap().as_str(), "bbr");
        assert_eq!(from_core(&core), every_field());
        let none = SocketOptions::default();
        assert_eq!(to_core(&none).unwrap(), porter_core::SocketOptions::default());
        assert_eq!(from_core(&porter_core::SocketOptions::default()), none);
        let off = SocketOptions {
            keep_alive: Some(KeepAliveOptions {
                enabled: false,
                idle_ms: None,
                interval_ms: None,
                count: None,
            }),
            ..SocketOptions::default()
        };
        assert_eq!(to_core(&off).unwrap().keepalive, Some(KeepAlive::Off));
        assert_eq!(from_core(&to_core(&off).unwrap()), off);
    }

    #[test]
    fn what_cannot_be_held_fails_to_convert_and_the_rest_converts_as_given() {
        for bad in [
            SocketOptions {
                tos: Some(256),
                ..SocketOptions::default()
            },
            SocketOptions {
                bind_to_device: Some("a-device-name-16".into()),
                ..SocketOptions::default()
            },
            SocketOptions {
                congestion: Some("nul\0".into()),
                ..SocketOptions::default()
            },
        ] {
            let e = to_core(&bad).unwrap_err();
            assert_eq!(e.status, "ERR_INVALID_ARG_VALUE", "{bad:?}");
            assert!(e.reason.starts_with("socketOptions."), "{}", e.reason);
        }
        // Values the kernel would refuse are the kernel's to refuse, at connect.
        let as_given = to_core(&SocketOptions {
            user_timeout_ms: Some(f64::from(i32::MAX) + 1.0),
            tos: Some(0xb9),
            ..SocketOptions::default()
        })
        .unwrap();
        assert_eq!(as_given.user_timeout, Some(Duration::from_millis(i32::MAX as u64 + 1)));
        assert_eq!(as_given.tos, Some(0xb9));
        // Nothing a number can be makes the conversion panic.
        for ms in [f64::NAN, -1.0, f64::INFINITY, 1e300] {
            let o = to_core(&SocketOptions {
                user_timeout_ms: Some(ms),
                ..SocketOptions::default()
            });
            assert!(o.is_ok(), "{ms}");
        }
    }
}
