//! The inclusive range of local ports a registry hands out.

use crate::error::{Error, Result};

/// An inclusive range of local ports, `first..=last`, never containing port 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    first: u16,
    last: u16,
}

impl PortRange {
    /// The default range, 1024-65535, as in the Erlang original.
    pub const DEFAULT: PortRange = PortRange {
        first: 1024,
        last: 65535,
    };

    /// Linux's default ephemeral range (`net.ipv4.ip_local_port_range`), 32768-60999.
    pub const LINUX_EPHEMERAL: PortRange = PortRange {
        first: 32768,
        last: 60999,
    };

    /// A range from `first` to `last`, both included. Fails unless `1 <= first <= last`.
    pub fn new(first: u16, last: u16) -> Result<Self> {
        if first == 0 || first > last {
            return Err(Error::InvalidRange { first, last });
        }
        Ok(Self { first, last })
    }

    /// The first port of the range.
    pub fn first(&self) -> u16 {
        self.first
    }

    /// The last port of the range (included).
    pub fn last(&self) -> u16 {
        self.last
    }

    /// How many ports the range holds.
    pub fn len(&self) -> u32 {
        u32::from(self.last) - u32::from(self.first) + 1
    }

    /// Never true: a range holds at least one port.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `port` is in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }

    /// The `index`-th of `count` equal slices of this range (the last one takes the
    /// remainder): a way to split one range between the processes of a cluster.
    pub fn partition(&self, index: u32, count: u32) -> Result<Self> {
        if count == 0 || index >= count || count > self.len() {
            return Err(Error::InvalidPartition { index, count });
        }
        let size = self.len() / count;
        let first = u32::from(self.first) + index * size;
        let last = if index + 1 == count {
            u32::from(self.last)
        } else {
            first + size - 1
        };
        // Both fit in u16: they lie within the original range.
        Self::new(first as u16, last as u16)
    }
}

impl Default for PortRange {
    fn default() -> Self {
        Self::DEFAULT
    }
}
