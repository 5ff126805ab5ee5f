//! The id of a route in its [`crate::RouteTable`]: the route's slot and the slot's
//! generation, so that an id whose slot was given to another route names nothing.

/// Slot indexes below this fit beside the generation in an id.
pub(crate) const INDEX_LIMIT: u32 = 1 << 24;
/// Generations wrap at this: an id is below 2^52, exact in a JavaScript number.
pub(crate) const GENERATION_LIMIT: u32 = 1 << 28;

/// A route's id: `generation * 2^24 + slot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl RouteId {
    /// The id as one integer, below 2^52.
    pub fn to_bits(self) -> u64 {
        u64::from(self.generation) * u64::from(INDEX_LIMIT) + u64::from(self.index)
    }

    /// The id of [`RouteId::to_bits`]; `None` for an integer no id gives.
    pub fn from_bits(bits: u64) -> Option<Self> {
        (bits < u64::from(INDEX_LIMIT) * u64::from(GENERATION_LIMIT)).then(|| Self {
            index: (bits % u64::from(INDEX_LIMIT)) as u32,
            generation: (bits / u64::from(INDEX_LIMIT)) as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_below_2_to_the_52() {
        let last = RouteId {
            index: INDEX_LIMIT - 1,
            generation: GENERATION_LIMIT - 1,
        };
        assert!(last.to_bits() < 1 << 52);
        for id in [
            RouteId {
                index: 0,
                generation: 0,
            },
            RouteId {
                index: 5,
                generation: 7,
            },
            last,
        ] {
            assert_eq!(RouteId::from_bits(id.to_bits()), Some(id));
        }
        assert_eq!(RouteId::from_bits(1 << 52), None);
    }
}
