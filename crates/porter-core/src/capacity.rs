//! A registry's capacity: which ports of its range porter binds itself, and which it
//! leaves to the kernel to pick at `connect()`, per destination and source address.
//!
//! A port bound explicitly is skipped by the kernel whenever it picks a port for anyone
//! else's `connect()` (the bind bucket is marked as bound-by-bind), so a port held inside
//! the kernel's ephemeral range is taken from every other outgoing connection of the host.
//! The [`Mode`] decides what porter does about it:
//!
//! | mode | porter binds itself | the kernel picks at `connect()` |
//! | --- | --- | --- |
//! | [`Mode::Hybrid`] (default) | the range minus the ephemeral range and reserved ports | the range inside the ephemeral range |
//! | [`Mode::Kernel`] | nothing | the range inside the ephemeral range |
//! | [`Mode::Pool`] | the range minus reserved ports (the Erlang original) | nothing |
//!
//! Reserved ports (`ip_local_reserved_ports`) are never bound in any mode, and the kernel
//! never picks them itself. With [`ServicePorts::Avoid`] (the default) porter binds none
//! of the ports `/etc/services` names for TCP either.
//!
//! A [`Capacity`] is made from the host's settings at one moment; when the settings
//! change, the registry makes a new one (see `live_capacity.rs`), and the walk of every
//! pool goes on in it: a pool keeps what it holds, and its cursor moves on to the next
//! port porter binds in the new one.

use crate::error::{Error, Result};
use crate::host::HostPorts;
use crate::intervals::{self, count, subtract};
use crate::mode::{Mode, ServicePorts};
use crate::range::PortRange;

/// The kernel's share of a registry's range: the window it picks ports in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelWindow {
    /// The ports of the range inside the ephemeral range.
    pub ports: PortRange,
    /// Whether each socket must carry `IP_LOCAL_PORT_RANGE` to keep the kernel inside the
    /// window (false when the window is the whole ephemeral range, or when the kernel
    /// lacks the option: then it picks anywhere in its ephemeral range, see `Capacity::new`).
    pub narrowed: bool,
}

/// A registry's range split between porter and the kernel, for the host's settings at one
/// moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    mode: Mode,
    range: PortRange,
    /// The ports porter binds itself: sorted, disjoint, inclusive intervals of the range.
    explicit: Box<[(u16, u16)]>,
    explicit_len: u32,
    kernel: Option<KernelWindow>,
    /// Ports of the kernel window it may hand out (reserved ones excluded).
    kernel_len: u32,
    /// The ports counted in the capacity (porter's and the kernel's window's, reserved
    /// ones excluded), as intervals.
    counted: Box<[(u16, u16)]>,
    /// Ports porter would bind itself but for `/etc/services`.
    services_skipped: u32,
    /// Whether the kernel fallback (any port of the ephemeral range) can give a port the
    /// window cannot.
    fallback_differs: bool,
    host: HostPorts,
    /// Why the mode cannot work on this host, if it cannot.
    problem: Option<String>,
}

fn intersect(a: PortRange, b: PortRange) -> Option<PortRange> {
    PortRange::new(a.first().max(b.first()), a.last().min(b.last())).ok()
}

impl Capacity {
    /// Splits `range` for `mode` on a host with `host`'s settings, leaving out the ports
    /// `/etc/services` names unless `services` is [`ServicePorts::Use`]. See
    /// [`Capacity::check`] for the cases that leave [`Mode::Kernel`] nothing it can keep.
    pub fn new(range: PortRange, mode: Mode, services: ServicePorts, host: &HostPorts) -> Self {
        let range_pair = (range.first(), range.last());
        let window = intersect(range, host.ephemeral);
        let covers_ephemeral = window == Some(host.ephemeral);
        let kernel = match mode {
            Mode::Pool => None,
            Mode::Hybrid | Mode::Kernel => window.map(|ports| KernelWindow {
                ports,
                narrowed: !covers_ephemeral && host.features.local_port_range,
            }),
        };
        let problem = Self::problem(range, mode, host, window, covers_ephemeral);
        let mut holes = host.reserved.clone();
        if mode == Mode::Hybrid {
            holes.push((host.ephemeral.first(), host.ephemeral.last()));
        }
        let all_explicit = match mode {
            Mode::Kernel => Vec::new(),
            Mode::Pool | Mode::Hybrid => subtract(range_pair, &intervals::normalize(holes.clone())),
        };
        let explicit = match services {
            ServicePorts::Avoid if !all_explicit.is_empty() && !host.services.is_empty() => {
                holes.extend_from_slice(&host.services);
                subtract(range_pair, &intervals::normalize(holes))
            }
            _ => all_explicit.clone(),
        };
        let window_ports = kernel.map_or_else(Vec::new, |w| {
            subtract((w.ports.first(), w.ports.last()), &host.reserved)
        });
        let mut counted = explicit.clone();
        counted.extend_from_slice(&window_ports);
        Self {
            mode,
            range,
            explicit_len: count(&explicit),
            services_skipped: count(&all_explicit) - count(&explicit),
            explicit: explicit.into_boxed_slice(),
            kernel,
            kernel_len: count(&window_ports),
            counted: intervals::normalize(counted).into_boxed_slice(),
            fallback_differs: !covers_ephemeral || mode == Mode::Pool,
            host: host.clone(),
            problem,
        }
    }

    fn problem(
        range: PortRange,
        mode: Mode,
        host: &HostPorts,
        window: Option<PortRange>,
        covers_ephemeral: bool,
    ) -> Option<String> {
        match mode {
            Mode::Kernel if window.is_none() => Some(format!(
                "the range {}-{} has no port in the kernel's ephemeral range {}-{} (net.ipv4.ip_local_port_range), \
                 the only ports the kernel picks",
                range.first(),
                range.last(),
                host.ephemeral.first(),
                host.ephemeral.last()
            )),
            Mode::Kernel if !covers_ephemeral && !host.features.local_port_range => Some(
                "keeping the kernel's choice inside a range needs IP_LOCAL_PORT_RANGE (Linux 6.3), which this kernel \
                 lacks; use a range that covers the whole ephemeral range, or mode 'hybrid'"
                    .to_owned(),
            ),
            _ => None,
        }
    }

    /// Fails with [`Error::ModeUnsupported`] for [`Mode::Kernel`] when the range has no
    /// port in the ephemeral range, or covers only part of it on a kernel without
    /// `IP_LOCAL_PORT_RANGE` (the kernel's choice could not be kept inside the range).
    /// [`Mode::Hybrid`] carries on in that case: the kernel then picks anywhere in its
    /// ephemeral range, which takes nothing from the host, and porter tracks the port.
    pub fn check(&self) -> Result<()> {
        match &self.problem {
            Some(reason) => Err(Error::ModeUnsupported {
                mode: self.mode.name(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The whole range.
    pub fn range(&self) -> PortRange {
        self.range
    }

    /// The ephemeral range this capacity was made for.
    pub fn ephemeral(&self) -> PortRange {
        self.host.ephemeral
    }

    /// The host's settings this capacity was made for.
    pub fn host(&self) -> &HostPorts {
        &self.host
    }

    /// How many ports porter would bind itself but for `/etc/services` (0 with
    /// [`ServicePorts::Use`]).
    pub fn service_ports(&self) -> u32 {
        self.services_skipped
    }

    /// The ports counted in [`Capacity::per_destination`], as sorted inclusive intervals: porter's
    /// own and the kernel's window but its reserved ports.
    pub fn counted(&self) -> &[(u16, u16)] {
        &self.counted
    }

    /// The ports porter binds itself, as sorted inclusive intervals.
    pub fn explicit_ports(&self) -> &[(u16, u16)] {
        &self.explicit
    }

    /// How many ports porter binds itself, per flow.
    pub fn explicit(&self) -> u32 {
        self.explicit_len
    }

    /// The window the kernel picks ports in, if any.
    pub fn kernel_window(&self) -> Option<KernelWindow> {
        self.kernel
    }

    /// How many ports the kernel may hand out in its window, per flow.
    pub fn kernel(&self) -> u32 {
        self.kernel_len
    }

    /// Ports per flow in all: porter's own plus the kernel's window.
    pub fn per_destination(&self) -> u32 {
        self.explicit_len + self.kernel_len
    }

    /// Whether the kernel fallback can give a port that the window cannot.
    pub fn fallback_differs(&self) -> bool {
        self.fallback_differs
    }

    /// Whether porter may bind `port` itself.
    pub fn is_explicit(&self, port: u16) -> bool {
        self.first_explicit_from(port) == Some(port)
    }

    /// The first port porter may bind at or after `from`, if any.
    #[inline]
    pub fn first_explicit_from(&self, from: u16) -> Option<u16> {
        self.first_explicit_hinted(from, &mut 0)
    }

    /// [`Capacity::first_explicit_from`], looking first in the interval `hint` names and the
    /// next one, and leaving there the index of the interval found. A walk that keeps its
    /// hint (a pool does) finds its next port without a search: the ports `/etc/services`
    /// names cut porter's ports into about 130 intervals, and a binary search over them
    /// on every allocation cost about 50 instructions. Any hint gives the right answer
    /// (one from a capacity made for other settings too).
    #[inline]
    pub fn first_explicit_hinted(&self, from: u16, hint: &mut u16) -> Option<u16> {
        let h = usize::from(*hint);
        if let Some(&(first, last)) = self.explicit.get(h) {
            if first <= from && from <= last {
                return Some(from);
            }
            if from > last {
                if let Some(&(next_first, next_last)) = self.explicit.get(h + 1) {
                    if from <= next_last {
                        *hint += 1;
                        return Some(next_first.max(from));
                    }
                }
            }
        }
        let i = self.explicit.partition_point(|&(_, last)| last < from);
        let &(first, _) = self.explicit.get(i)?;
        // Fewer than 2^15 intervals: they are disjoint and not adjacent.
        *hint = i as u16;
        Some(first.max(from))
    }

    /// The first port porter binds itself (the start of a lap), if any.
    pub fn first_explicit(&self) -> Option<u16> {
        self.explicit.first().map(|&(first, _)| first)
    }

    /// The `n mod explicit_len`-th port porter binds itself: a uniform pick from a
    /// random `n`. `None` when porter binds none.
    pub fn nth_explicit(&self, n: u64) -> Option<u16> {
        if self.explicit_len == 0 {
            return None;
        }
        let mut k = (n % u64::from(self.explicit_len)) as u32;
        for &(a, b) in self.explicit.iter() {
            let len = u32::from(b) - u32::from(a) + 1;
            if k < len {
                return Some(a + k as u16);
            }
            k -= len;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::KernelFeatures;
    use crate::mode::{Mode, ServicePorts};

    fn r(a: u16, b: u16) -> PortRange {
        PortRange::new(a, b).unwrap()
    }

    fn host(e: (u16, u16), reserved: Vec<(u16, u16)>, local_port_range: bool) -> HostPorts {
        HostPorts::new(
            r(e.0, e.1),
            reserved,
            KernelFeatures {
                bind_address_no_port: true,
                local_port_range,
            },
        )
    }

    #[test]
    fn hybrid_binds_outside_the_ephemeral_range_and_reserved_ports() {
        let h = host((32768, 60999), vec![(5000, 5009)], true);
        let z = Capacity::new(PortRange::DEFAULT, Mode::Hybrid, ServicePorts::Avoid, &h);
        assert_eq!(z.explicit_ports(), &[(1024, 4999), (5010, 32767), (61000, 65535)]);
        assert_eq!(z.explicit(), 64512 - 28232 - 10);
        let w = z.kernel_window().unwrap();
        assert_eq!(w.ports, r(32768, 60999));
        assert!(!w.narrowed, "the window is the whole ephemeral range: no option needed");
        assert_eq!(z.per_destination(), 64512 - 10);
        assert!(!z.fallback_differs());
        assert_eq!(z.first_explicit_from(5000), Some(5010));
        assert_eq!(z.first_explicit_from(32768), Some(61000));
        assert_eq!(z.first_explicit_from(65535), Some(65535));
        assert!(!z.is_explicit(40000) && z.is_explicit(1024));
        // With a hint: right whatever it says.
        for hint in [0, 1, 2, 3, 999] {
            for from in [1, 1024, 4999, 5000, 5010, 32767, 32768, 60999, 61000, 65535] {
                let mut h = hint;
                assert_eq!(
                    z.first_explicit_hinted(from, &mut h),
                    z.first_explicit_from(from),
                    "{from} {hint}"
                );
            }
        }
        let mut h = 0;
        assert_eq!(z.first_explicit_hinted(5005, &mut h), Some(5010));
        assert_eq!(h, 1, "the interval found");
        assert_eq!(z.first_explicit_hinted(32768, &mut h), Some(61000));
        assert_eq!(h, 2);
    }

    #[test]
    fn hybrid_narrows_the_kernel_to_the_range() {
        let h = host((2000, 2999), vec![], true);
        let z = Capacity::new(r(1500, 2499), Mode::Hybrid, ServicePorts::Avoid, &h);
        assert_eq!(z.explicit_ports(), &[(1500, 1999)]);
        let w = z.kernel_window().unwrap();
        assert_eq!((w.ports, w.narrowed), (r(2000, 2499), true));
        assert!(z.fallback_differs());
        // Without IP_LOCAL_PORT_RANGE hybrid carries on, unnarrowed.
        let old = host((2000, 2999), vec![], false);
        let z = Capacity::new(r(1500, 2499), Mode::Hybrid, ServicePorts::Avoid, &old);
        assert!(!z.kernel_window().unwrap().narrowed);
    }

    #[test]
    fn kernel_mode_needs_a_window_it_can_keep() {
        let h = host((2000, 2999), vec![(2100, 2199)], true);
        let z = Capacity::new(r(1000, 2499), Mode::Kernel, ServicePorts::Avoid, &h);
        assert_eq!(z.explicit(), 0);
        assert_eq!(z.nth_explicit(7), None);
        assert_eq!(z.kernel(), 400);
        let e = Capacity::new(r(1000, 1999), Mode::Kernel, ServicePorts::Avoid, &h)
            .check()
            .unwrap_err();
        assert_eq!(e.code(), "ERR_PORTER_MODE_UNSUPPORTED");
        let old = host((2000, 2999), vec![], false);
        assert!(Capacity::new(r(1000, 2499), Mode::Kernel, ServicePorts::Avoid, &old)
            .check()
            .is_err());
        assert!(Capacity::new(r(1000, 3000), Mode::Kernel, ServicePorts::Avoid, &old)
            .check()
            .is_ok());
    }

    #[test]
    fn pool_mode_is_the_range_minus_reserved() {
        let h = host((2000, 2999), vec![(1, 1100)], true);
        let z = Capacity::new(r(1000, 3999), Mode::Pool, ServicePorts::Avoid, &h);
        assert_eq!(z.explicit_ports(), &[(1101, 3999)]);
        assert!(z.kernel_window().is_none());
        assert!(z.fallback_differs());
    }

    #[test]
    fn nth_explicit_is_uniform_over_the_intervals() {
        let h = host((20, 29), vec![], true);
        let z = Capacity::new(r(10, 39), Mode::Hybrid, ServicePorts::Avoid, &h);
        let got: Vec<u16> = (0..20).map(|n| z.nth_explicit(n).unwrap()).collect();
        let want: Vec<u16> = (10..20).chain(30..40).collect();
        assert_eq!(got, want);
        assert_eq!(z.nth_explicit(20), Some(10));
    }

    #[test]
    fn service_ports_are_left_out_unless_used() {
        let h = host((32768, 60999), vec![(5000, 5009)], true).with_services(vec![
            (22, 22),
            (3306, 3306),
            (5005, 5005),
            (40000, 40000),
        ]);
        let z = Capacity::new(PortRange::DEFAULT, Mode::Hybrid, ServicePorts::Avoid, &h);
        assert_eq!(
            z.explicit_ports(),
            &[(1024, 3305), (3307, 4999), (5010, 32767), (61000, 65535)]
        );
        // 22 is outside the range, 5005 reserved anyway, 40000 the kernel's.
        assert_eq!(z.service_ports(), 1);
        assert_eq!(z.per_destination(), 64512 - 10 - 1);
        let used = Capacity::new(PortRange::DEFAULT, Mode::Hybrid, ServicePorts::Use, &h);
        assert_eq!((used.service_ports(), used.per_destination()), (0, 64512 - 10));
        let pool = Capacity::new(PortRange::DEFAULT, Mode::Pool, ServicePorts::Avoid, &h);
        assert_eq!(
            pool.service_ports(),
            2,
            "3306 and 40000: pool mode binds the ephemeral range too"
        );
        let kernel = Capacity::new(PortRange::DEFAULT, Mode::Kernel, ServicePorts::Avoid, &h);
        assert_eq!(
            kernel.service_ports(),
            0,
            "the kernel's picks are not porter's to steer"
        );
    }

    #[test]
    fn counted_ports_are_the_capacity() {
        let h = host((2000, 2999), vec![(1500, 1599), (2500, 2599)], true);
        for mode in [Mode::Hybrid, Mode::Pool, Mode::Kernel] {
            let z = Capacity::new(r(1000, 3999), mode, ServicePorts::Avoid, &h);
            assert_eq!(crate::intervals::count(z.counted()), z.per_destination(), "{mode:?}");
        }
        let z = Capacity::new(r(1000, 3999), Mode::Hybrid, ServicePorts::Avoid, &h);
        assert_eq!(z.counted(), &[(1000, 1499), (1600, 2499), (2600, 3999)]);
    }
}
