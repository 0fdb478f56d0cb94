//! Network interfaces from `/sys/class/net/*` (loopback skipped). An interface is a device when
//! it has a `device` link; software interfaces (bridges, veth, bonds, VLANs, tunnels) have none
//! and live under `/sys/devices/virtual/net`.
//!
//! The current MAC may not be the burned-in one: bonding gives every slave the bond's address
//! (the permanent one stays in `bonding_slave/perm_hwaddr`), and an administrator can set any
//! address. `addr_assign_type` says which (0 permanent, 1 random, 2 stolen, 3 set); where the
//! address of a device is not permanent and sysfs has no permanent one, a warning says so,
//! because the collector matches hosts by MAC. Old kernels without `addr_assign_type` fall back
//! to the locally administered bit of the address.

use steward_shared::v1::{NicInfo, SourceStatus};

use super::fs::Root;

const DIR: &str = "sys/class/net";

pub fn collect(root: &Root) -> (Vec<NicInfo>, SourceStatus) {
    let mut status = SourceStatus {
        source: "nics".into(),
        ..SourceStatus::default()
    };
    let names = match root.list(DIR) {
        Ok(names) => names,
        Err(error) => {
            status.error = Some(format!("/{DIR}: {error}"));
            return (Vec::new(), status);
        }
    };
    let mut nics = Vec::new();
    for name in names.into_iter().filter(|n| n != "lo") {
        let base = format!("{DIR}/{name}");
        let attr = |rel: &str| root.attr(&format!("{base}/{rel}")).unwrap_or_default();
        let has_device = root.exists(&format!("{base}/device"));
        let in_virtual = root
            .link_target(&base)
            .is_some_and(|path| path.contains("/devices/virtual/"));
        let virtual_nic = !has_device || in_virtual;
        let mac = attr("address").to_ascii_lowercase();
        let perm_hwaddr = attr("bonding_slave/perm_hwaddr").to_ascii_lowercase();
        let permanent_mac = if perm_hwaddr.is_empty() || perm_hwaddr == mac {
            String::new()
        } else {
            perm_hwaddr.clone()
        };
        if !virtual_nic
            && perm_hwaddr.is_empty()
            && let Some(how) = software_assigned(&attr("addr_assign_type"), &mac)
        {
            status.warnings.push(format!(
                "{name}: MAC {mac} was {how}, not burned in; sysfs does not expose the permanent address"
            ));
        }
        nics.push(NicInfo {
            driver: root
                .link_name(&format!("{base}/device/driver"))
                .unwrap_or_default(),
            speed_mbps: speed(&attr("speed")),
            name,
            mac,
            permanent_mac,
            virtual_nic,
        });
    }
    status.items = u32::try_from(nics.len()).unwrap_or(u32::MAX);
    (nics, status)
}

/// Link speed in Mbit/s; `-1` (no link) and `u32::MAX` (unknown, some drivers) are `None`, as
/// is the empty value of an interface whose `speed` read failed with EINVAL.
pub fn speed(value: &str) -> Option<u32> {
    value
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|mbps| *mbps > 0)
        .and_then(|mbps| u32::try_from(mbps).ok())
        .filter(|mbps| *mbps != u32::MAX)
}

/// How the current address came about when it is not the device's own: `Some("random")`,
/// `Some("set by software")`, ...; `None` when it is permanent or unknown.
pub fn software_assigned(addr_assign_type: &str, mac: &str) -> Option<&'static str> {
    match addr_assign_type.trim() {
        "0" => None,
        "1" => Some("randomly generated"),
        "2" => Some("taken from another device"),
        "3" => Some("set by software"),
        _ => locally_administered(mac).then_some("locally administered"),
    }
}

/// Bit 1 of the first octet: an address not assigned by a manufacturer.
pub fn locally_administered(mac: &str) -> bool {
    mac.get(..2)
        .and_then(|octet| u8::from_str_radix(octet, 16).ok())
        .is_some_and(|octet| octet & 0x02 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds() {
        assert_eq!(speed("10000\n"), Some(10_000));
        assert_eq!(speed("-1"), None);
        assert_eq!(speed("4294967295"), None);
        assert_eq!(speed(""), None);
        assert_eq!(speed("fast"), None);
        assert_eq!(speed("99999999999"), None);
    }

    #[test]
    fn assignment() {
        assert_eq!(software_assigned("0", "02:00:00:00:00:01"), None);
        assert_eq!(
            software_assigned("3", "00:1b:21:aa:bb:cc"),
            Some("set by software")
        );
        assert_eq!(
            software_assigned("", "02:42:ac:11:00:02"),
            Some("locally administered")
        );
        assert_eq!(software_assigned("", "00:50:56:aa:bb:cc"), None);
        assert!(!locally_administered(""));
        assert!(!locally_administered("zz:00"));
    }

    #[test]
    fn missing_sys_class_net_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let (nics, status) = collect(&Root::new(dir.path()));
        assert!(nics.is_empty());
        assert!(status.error.unwrap().starts_with("/sys/class/net: "));
    }
}
