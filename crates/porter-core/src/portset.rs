//! A set of ports that costs memory in proportion to its size.
//!
//! Small sets are a sorted list (2 bytes a port, no heap at all when empty), a
//! `ThinVec`: one pointer, its length and capacity on the heap beside the ports, so that
//! an empty set, the state of most pools, costs 8 bytes in the pool and nothing else. Once
//! a set would take more room than a bitmap of its range, it turns into that bitmap
//! (one bit per port of the range), and turns back when it shrinks to a quarter of that.
//! Ports outside the range (tracked after the kernel chose them) stay in a sorted side list.

use thin_vec::ThinVec;

use crate::intervals;
use crate::range::PortRange;

/// A set of ports, sparse or dense, see the module comment.
#[derive(Debug, Clone)]
pub(crate) enum PortSet {
    /// Sorted, without duplicates.
    Sparse(ThinVec<u16>),
    /// A bitmap of the range plus the ports outside it.
    Dense(Box<Dense>),
}

#[derive(Debug, Clone)]
pub(crate) struct Dense {
    bits: Box<[u64]>,
    /// Ports in the bitmap.
    count: u32,
    /// Sorted ports outside the range.
    outside: ThinVec<u16>,
}

impl Default for PortSet {
    fn default() -> Self {
        PortSet::Sparse(ThinVec::new())
    }
}

fn bitmap_words(range: PortRange) -> usize {
    (range.len() as usize).div_ceil(64)
}

fn sorted_insert(v: &mut ThinVec<u16>, port: u16) -> bool {
    match v.binary_search(&port) {
        Ok(_) => false,
        Err(i) => {
            v.insert(i, port);
            true
        }
    }
}

fn sorted_remove(v: &mut ThinVec<u16>, port: u16) -> bool {
    match v.binary_search(&port) {
        Ok(i) => {
            v.remove(i);
            true
        }
        Err(_) => false,
    }
}

/// Gives memory back once a list uses less than half its room, keeping half as much
/// again: a list never costs more than 4 bytes a port (past the first few), and each
/// shrink is paid for by the removals before it (amortised O(1)).
fn shrink(v: &mut ThinVec<u16>) {
    if v.capacity() > 8 && v.len() * 2 < v.capacity() {
        let mut smaller = ThinVec::with_capacity(v.len() + v.len() / 2);
        smaller.extend_from_slice(v);
        *v = smaller;
    }
}

/// Heap bytes of a list: its header (length and capacity) and its room, none when empty.
fn list_bytes(v: &ThinVec<u16>) -> usize {
    if v.capacity() == 0 {
        0
    } else {
        2 * std::mem::size_of::<usize>() + v.capacity() * 2
    }
}

impl Dense {
    fn bit(range: PortRange, port: u16) -> (usize, u64) {
        let i = usize::from(port - range.first());
        (i / 64, 1u64 << (i % 64))
    }
}

impl PortSet {
    /// Number of ports in the set.
    pub(crate) fn len(&self) -> usize {
        match self {
            PortSet::Sparse(v) => v.len(),
            PortSet::Dense(d) => d.count as usize + d.outside.len(),
        }
    }

    /// Whether the set is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `port` is in the set.
    pub(crate) fn contains(&self, range: PortRange, port: u16) -> bool {
        match self {
            PortSet::Sparse(v) => v.binary_search(&port).is_ok(),
            PortSet::Dense(d) => {
                if range.contains(port) {
                    let (w, m) = Dense::bit(range, port);
                    d.bits[w] & m != 0
                } else {
                    d.outside.binary_search(&port).is_ok()
                }
            }
        }
    }

    /// Adds `port`; false if it was there already.
    pub(crate) fn insert(&mut self, range: PortRange, port: u16) -> bool {
        let added = match self {
            PortSet::Sparse(v) => sorted_insert(v, port),
            PortSet::Dense(d) => {
                if range.contains(port) {
                    let (w, m) = Dense::bit(range, port);
                    let was = d.bits[w] & m != 0;
                    d.bits[w] |= m;
                    d.count += u32::from(!was);
                    !was
                } else {
                    sorted_insert(&mut d.outside, port)
                }
            }
        };
        if added {
            self.maybe_densify(range);
        }
        added
    }

    /// Removes `port`; false if it was not there.
    pub(crate) fn remove(&mut self, range: PortRange, port: u16) -> bool {
        let removed = match self {
            PortSet::Sparse(v) => {
                let removed = sorted_remove(v, port);
                shrink(v);
                removed
            }
            PortSet::Dense(d) => {
                if range.contains(port) {
                    let (w, m) = Dense::bit(range, port);
                    let was = d.bits[w] & m != 0;
                    d.bits[w] &= !m;
                    d.count -= u32::from(was);
                    was
                } else {
                    sorted_remove(&mut d.outside, port)
                }
            }
        };
        if removed {
            self.maybe_sparsify(range);
        }
        removed
    }

    /// Removes every port of `ports` (sorted ascending) that is in the set, in one pass.
    pub(crate) fn remove_sorted(&mut self, range: PortRange, ports: &[u16]) {
        match self {
            PortSet::Sparse(v) => {
                v.retain(|p| ports.binary_search(p).is_err());
                shrink(v);
            }
            PortSet::Dense(_) => {
                for &p in ports {
                    self.remove(range, p);
                }
            }
        }
    }

    /// The first port `p` with `from <= p <= range.last()` that is not in the set.
    /// `from` must lie in the range.
    pub(crate) fn first_absent_from(&self, range: PortRange, from: u16) -> Option<u16> {
        debug_assert!(range.contains(from));
        match self {
            PortSet::Sparse(v) => {
                let mut i = v.partition_point(|&p| p < from);
                let mut candidate = from;
                while i < v.len() && v[i] == candidate {
                    if candidate == range.last() {
                        return None;
                    }
                    candidate += 1;
                    i += 1;
                }
                Some(candidate)
            }
            PortSet::Dense(d) => {
                let start = usize::from(from - range.first());
                let total = range.len() as usize;
                let mut w = start / 64;
                // Bits below `start` in the first word count as taken.
                let mut word = d.bits[w] | ((1u64 << (start % 64)) - 1);
                loop {
                    if word != u64::MAX {
                        let i = w * 64 + (!word).trailing_zeros() as usize;
                        if i >= total {
                            return None;
                        }
                        return Some(range.first() + i as u16);
                    }
                    w += 1;
                    if w >= d.bits.len() {
                        return None;
                    }
                    word = d.bits[w];
                }
            }
        }
    }

    /// Every port of the set, ascending.
    pub(crate) fn to_vec(&self, range: PortRange) -> Vec<u16> {
        match self {
            PortSet::Sparse(v) => v.to_vec(),
            PortSet::Dense(d) => {
                let mut out: Vec<u16> = d.outside.iter().copied().filter(|&p| p < range.first()).collect();
                for (w, &word) in d.bits.iter().enumerate() {
                    let mut bits = word;
                    while bits != 0 {
                        let b = bits.trailing_zeros() as usize;
                        out.push(range.first() + (w * 64 + b) as u16);
                        bits &= bits - 1;
                    }
                }
                out.extend(d.outside.iter().copied().filter(|&p| p > range.last()));
                out
            }
        }
    }

    /// Number of ports of the set from `first` to `last` (both included, inside `range`).
    pub(crate) fn count_between(&self, range: PortRange, first: u16, last: u16) -> u32 {
        match self {
            PortSet::Sparse(v) => {
                let lo = v.partition_point(|&p| p < first);
                let hi = v.partition_point(|&p| p <= last);
                (hi - lo) as u32
            }
            PortSet::Dense(d) => {
                debug_assert!(range.contains(first) && range.contains(last) && first <= last);
                let (a, b) = (usize::from(first - range.first()), usize::from(last - range.first()));
                let (wa, wb) = (a / 64, b / 64);
                let low = u64::MAX << (a % 64);
                let high = u64::MAX >> (63 - b % 64);
                if wa == wb {
                    return (d.bits[wa] & low & high).count_ones();
                }
                let middle: u32 = d.bits[wa + 1..wb].iter().map(|w| w.count_ones()).sum();
                (d.bits[wa] & low).count_ones() + middle + (d.bits[wb] & high).count_ones()
            }
        }
    }

    /// Number of ports of the set in the intervals `within` (sorted, disjoint, inside
    /// `range`): what [`PortSet::count_between`] summed over them gives. A list no longer
    /// than `within` looks each of its ports up in it; anything else is counted interval
    /// by interval.
    pub(crate) fn count_in(&self, range: PortRange, within: &[(u16, u16)]) -> u32 {
        match self {
            PortSet::Sparse(v) if v.len() <= within.len() => {
                v.iter().filter(|&&p| intervals::contains(within, p)).count() as u32
            }
            _ => within.iter().map(|&(a, b)| self.count_between(range, a, b)).sum(),
        }
    }

    /// Heap bytes held by the set.
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            PortSet::Sparse(v) => list_bytes(v),
            PortSet::Dense(d) => std::mem::size_of::<Dense>() + d.bits.len() * 8 + list_bytes(&d.outside),
        }
    }

    fn maybe_densify(&mut self, range: PortRange) {
        if let PortSet::Sparse(v) = self {
            let bitmap_bytes = bitmap_words(range) * 8;
            if v.len() * 2 > bitmap_bytes {
                let mut bits = vec![0u64; bitmap_words(range)].into_boxed_slice();
                let mut outside = ThinVec::new();
                let mut count = 0;
                for &p in v.iter() {
                    if range.contains(p) {
                        let (w, m) = Dense::bit(range, p);
                        bits[w] |= m;
                        count += 1;
                    } else {
                        outside.push(p);
                    }
                }
                *self = PortSet::Dense(Box::new(Dense { bits, count, outside }));
            }
        }
    }

    fn maybe_sparsify(&mut self, range: PortRange) {
        if let PortSet::Dense(d) = self {
            let bitmap_bytes = d.bits.len() * 8;
            // Back to a list when it would take under half the bitmap: the bitmap then
            // never costs more than 4 bytes a port, and the 2x gap to `maybe_densify`
            // keeps a set near the threshold from flipping back and forth.
            if (d.count as usize + d.outside.len()) * 2 * 2 < bitmap_bytes {
                let all = self.to_vec(range);
                *self = PortSet::Sparse(ThinVec::from(all.as_slice()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(a: u16, b: u16) -> PortRange {
        PortRange::new(a, b).unwrap()
    }

    #[test]
    fn sparse_and_dense_agree() {
        let r = range(1000, 1999);
        let mut s = PortSet::default();
        let mut model = std::collections::BTreeSet::new();
        for i in 0..900u16 {
            let p = 1000 + (i * 7) % 1000;
            assert_eq!(s.insert(r, p), model.insert(p));
            assert!(s.contains(r, p));
        }
        assert!(matches!(s, PortSet::Dense(_)));
        assert!(s.insert(r, 5)); // outside the range
        model.insert(5);
        assert_eq!(s.to_vec(r), model.iter().copied().collect::<Vec<_>>());
        for p in model.clone() {
            assert!(s.remove(r, p));
            model.remove(&p);
            assert_eq!(s.len(), model.len());
        }
        assert!(matches!(s, PortSet::Sparse(_)));
        assert!(s.is_empty());
    }

    #[test]
    fn first_absent_walks_runs() {
        let r = range(10, 200);
        for dense in [false, true] {
            let mut s = PortSet::default();
            for p in 10..150 {
                s.insert(r, p);
            }
            if !dense {
                s = PortSet::Sparse(ThinVec::from(s.to_vec(r).as_slice()));
            }
            assert_eq!(s.first_absent_from(r, 10), Some(150));
            assert_eq!(s.first_absent_from(r, 150), Some(150));
            assert_eq!(s.first_absent_from(r, 200), Some(200));
            for p in 150..=200 {
                s.insert(r, p);
            }
            assert_eq!(s.first_absent_from(r, 10), None);
            assert_eq!(s.first_absent_from(r, 199), None);
        }
    }

    #[test]
    fn counts_between_in_both_forms() {
        let r = range(1000, 1999);
        let ports: Vec<u16> = (1000..2000).filter(|p| p % 3 == 0).collect();
        let mut sparse = PortSet::default();
        for &p in ports.iter().take(10) {
            sparse.insert(r, p);
        }
        let mut dense = PortSet::default();
        for &p in &ports {
            dense.insert(r, p);
        }
        assert!(matches!(dense, PortSet::Dense(_)));
        for (a, b) in [
            (1000, 1999),
            (1001, 1001),
            (1002, 1002),
            (1063, 1064),
            (1010, 1500),
            (1990, 1999),
        ] {
            let want = |n: usize| ports.iter().take(n).filter(|&&p| p >= a && p <= b).count() as u32;
            assert_eq!(sparse.count_between(r, a, b), want(10), "{a}-{b}");
            assert_eq!(dense.count_between(r, a, b), want(ports.len()), "{a}-{b}");
        }
    }

    #[test]
    fn counts_in_intervals_as_interval_by_interval() {
        let r = range(1000, 1999);
        // One interval, a few, and many: the whole range with holes every 7 ports, as
        // the ports /etc/services names cut a range.
        let holed: Vec<(u16, u16)> = (1000..2000).step_by(7).map(|a| (a, (a + 5).min(1999))).collect();
        let sets: [&[(u16, u16)]; 4] = [
            &[(1000, 1999)],
            &[(1003, 1003), (1100, 1499), (1998, 1999)],
            &holed,
            &[],
        ];
        for n in [0usize, 1, 3, 40, 200, 900] {
            let mut s = PortSet::default();
            for p in (1000..2000).step_by(3).take(n) {
                s.insert(r, p);
            }
            s.insert(r, 5); // outside the range, in no interval
            for intervals in sets {
                let slow: u32 = intervals.iter().map(|&(a, b)| s.count_between(r, a, b)).sum();
                assert_eq!(
                    s.count_in(r, intervals),
                    slow,
                    "{n} ports, {} intervals",
                    intervals.len()
                );
            }
        }
    }
}
