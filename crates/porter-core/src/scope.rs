//! The scope of a link-local IPv6 address (`fe80::1%eth0`): the network interface it is
//! reached through, by name or index.

use crate::sys;

/// The scope id (interface index) `zone` names: an interface's name, or its index in
/// decimal; `None` when no interface of this network namespace has that name or index
/// now (index 0 included).
pub fn scope_id(zone: &str) -> Option<u32> {
    if !zone.is_empty() && zone.bytes().all(|b| b.is_ascii_digit()) {
        return zone.parse().ok().filter(|&i| sys::interface_name(i).is_some());
    }
    sys::interface_index(zone)
}

/// The name of the interface of scope id `scope`, if one has that index now.
pub fn scope_name(scope: u32) -> Option<String> {
    sys::interface_name(scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_name_or_index() {
        let lo = scope_id("lo").expect("a loopback interface");
        assert_eq!(scope_id(&lo.to_string()), Some(lo));
        assert_eq!(scope_id(&format!("00{lo}")), Some(lo));
        assert_eq!(scope_id("2147483647"), None, "an index no interface has");
        assert_eq!(scope_id(&u32::MAX.to_string()), None);
        assert_eq!(scope_id("4294967296"), None);
        assert_eq!(scope_id("0"), None);
        assert_eq!(scope_id(""), None);
        assert_eq!(scope_id("no-such-if0"), None);
        assert_eq!(scope_name(lo).as_deref(), Some("lo"));
    }
}
