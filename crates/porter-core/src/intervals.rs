//! Sets of ports as sorted, disjoint, inclusive intervals `(first, last)`: the host's
//! reserved ports, the ports `/etc/services` names, the capacity of a range.

/// Sorts intervals and merges those that overlap or touch.
pub(crate) fn normalize(mut intervals: Vec<(u16, u16)>) -> Vec<(u16, u16)> {
    intervals.retain(|&(a, b)| a <= b);
    intervals.sort_unstable();
    let mut out: Vec<(u16, u16)> = Vec::with_capacity(intervals.len());
    for (a, b) in intervals {
        match out.last_mut() {
            Some(last) if u32::from(a) <= u32::from(last.1) + 1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// `a` minus the `holes` (sorted, disjoint), as sorted intervals.
pub(crate) fn subtract(a: (u16, u16), holes: &[(u16, u16)]) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    let mut next = u32::from(a.0);
    for &(h0, h1) in holes {
        if h1 < a.0 || h0 > a.1 {
            continue;
        }
        if u32::from(h0) > next {
            out.push((next as u16, h0 - 1));
        }
        next = next.max(u32::from(h1) + 1);
    }
    if next <= u32::from(a.1) {
        out.push((next as u16, a.1));
    }
    out
}

/// How many ports the intervals hold.
pub(crate) fn count(intervals: &[(u16, u16)]) -> u32 {
    intervals.iter().map(|&(a, b)| u32::from(b) - u32::from(a) + 1).sum()
}

/// Whether `port` lies in one of the intervals.
pub(crate) fn contains(intervals: &[(u16, u16)], port: u16) -> bool {
    let i = intervals.partition_point(|&(_, last)| last < port);
    intervals.get(i).is_some_and(|&(first, _)| first <= port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_subtract_count_contains() {
        let merged = normalize(vec![(9000, 9010), (8080, 8080), (9011, 9011), (100, 200), (5, 1)]);
        assert_eq!(merged, vec![(100, 200), (8080, 8080), (9000, 9011)]);
        assert_eq!(count(&merged), 101 + 1 + 12);
        assert_eq!(
            subtract((1, 10000), &merged),
            vec![(1, 99), (201, 8079), (8081, 8999), (9012, 10000)]
        );
        assert_eq!(subtract((150, 160), &merged), vec![]);
        assert_eq!(subtract((65535, 65535), &[]), vec![(65535, 65535)]);
        assert!(contains(&merged, 100) && contains(&merged, 9011) && !contains(&merged, 99));
    }
}
