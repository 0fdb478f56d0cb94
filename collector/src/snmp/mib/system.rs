//! SNMPv2-MIB `system` group (RFC 3418): what the device says it is, and its uptime, which
//! [`super::rates`] uses to notice a reboot between polls.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::snmp::types::{Oid, VarBind};

use super::table::{Cell, oid, scalar};
use super::{DeviceData, MibModule, Problems};

/// `system` (1.3.6.1.2.1.1). Walking the whole group costs one or two bulk requests and
/// also returns `sysORTable`, which is ignored.
const SYSTEM: &[u32] = &[1, 3, 6, 1, 2, 1, 1];
/// `enterprises`: a sysObjectID under it names the vendor by its IANA enterprise number.
const ENTERPRISES: &[u32] = &[1, 3, 6, 1, 4, 1];

static ROOTS: LazyLock<Vec<Oid>> = LazyLock::new(|| vec![oid(SYSTEM)]);

/// The decoded system group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct System {
    /// sysDescr: free text, usually OS and version.
    pub descr: Option<String>,
    /// sysObjectID, dotted: the vendor's identifier for the product.
    pub object_id: Option<String>,
    /// The IANA enterprise number under 1.3.6.1.4.1 in `object_id`.
    pub enterprise: Option<u32>,
    /// The vendor for `enterprise`, when it is one of the common ones in [`vendor_name`].
    pub vendor: Option<String>,
    pub name: Option<String>,
    pub location: Option<String>,
    pub contact: Option<String>,
    /// sysUpTime in hundredths of a second, as read: rates compare it between polls.
    pub uptime_ticks: Option<u32>,
    /// sysUpTime in whole seconds. It is the SNMP agent's uptime, which on hosts (net-snmp)
    /// restarts with the daemon, not with the machine.
    pub uptime_secs: Option<u64>,
}

/// The system group module.
#[derive(Debug)]
pub struct SystemMib;

impl MibModule for SystemMib {
    fn name(&self) -> &'static str {
        "system"
    }

    fn roots(&self) -> &[Oid] {
        &ROOTS
    }

    fn decode(&self, walked: &[VarBind], out: &mut DeviceData) {
        let mut problems = Problems::default();
        out.system = decode(walked, &mut problems);
        problems.append_to(&mut out.problems);
    }
}

/// Decodes the system scalars; `None` when the walk held none of them (agent without the
/// group, or the module was not walked), so "no data" differs from "empty strings".
pub fn decode(walked: &[VarBind], problems: &mut Problems) -> Option<System> {
    let system = oid(SYSTEM);
    let get = |column: u32| scalar(walked, &system.child(&[column]));
    let (descr, object_id, uptime, contact, name, location) =
        (get(1), get(2), get(3), get(4), get(5), get(6));
    if [descr, object_id, uptime, contact, name, location]
        .iter()
        .all(Option::is_none)
    {
        return None;
    }
    let object_id = object_id.object_id(problems);
    let enterprise = object_id.as_ref().and_then(enterprise_number);
    let uptime_ticks = uptime.timeticks(problems);
    Some(System {
        descr: descr.text(problems),
        object_id: object_id.as_ref().map(ToString::to_string),
        enterprise,
        vendor: enterprise.and_then(vendor_name).map(str::to_string),
        name: name.text(problems),
        location: location.text(problems),
        contact: contact.text(problems),
        uptime_ticks,
        uptime_secs: uptime_ticks.map(|t| u64::from(t) / 100),
    })
}

/// The enterprise number N of a sysObjectID 1.3.6.1.4.1.N...
pub fn enterprise_number(object_id: &Oid) -> Option<u32> {
    object_id.suffix(&oid(ENTERPRISES))?.first().copied()
}

/// The vendor behind an IANA private enterprise number, for the makers seen on networks most
/// often. A number not listed is kept in [`System::enterprise`] so nothing is lost.
pub fn vendor_name(enterprise: u32) -> Option<&'static str> {
    VENDORS
        .iter()
        .find(|(n, _)| *n == enterprise)
        .map(|(_, name)| *name)
}

/// IANA private enterprise numbers → vendor. Some numbers belong to a company that was bought
/// or to a software stack a vendor ships (10002 Frogfoot is in Ubiquiti AirOS, 12325 is
/// FreeBSD's bsnmpd as used by pfSense); the name says so.
const VENDORS: &[(u32, &str)] = &[
    (2, "IBM"),
    (9, "Cisco"),
    (11, "HP"),
    (42, "Sun/Oracle"),
    (43, "3Com"),
    (45, "Nortel/Avaya"),
    (171, "D-Link"),
    (232, "Compaq/HPE"),
    (311, "Microsoft"),
    (318, "APC"),
    (674, "Dell"),
    (890, "Zyxel"),
    (1916, "Extreme Networks"),
    (1991, "Brocade/Foundry"),
    (2011, "Huawei"),
    (2021, "UCD-SNMP"),
    (2620, "Check Point"),
    (2636, "Juniper"),
    (3224, "Juniper (NetScreen)"),
    (3375, "F5"),
    (4413, "Broadcom"),
    (4526, "Netgear"),
    (5624, "Enterasys"),
    (6486, "Alcatel-Lucent Enterprise"),
    (6527, "Nokia (Alcatel-Lucent SR)"),
    (6876, "VMware"),
    (8072, "net-snmp"),
    (8741, "SonicWall"),
    (10002, "Ubiquiti (Frogfoot)"),
    (12325, "FreeBSD bsnmpd (pfSense)"),
    (12356, "Fortinet"),
    (14823, "Aruba"),
    (14988, "MikroTik"),
    (17713, "Cambium"),
    (25461, "Palo Alto Networks"),
    (25506, "H3C/HPE"),
    (30065, "Arista"),
    (41112, "Ubiquiti"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::types::{Value, parse_walk};

    #[test]
    fn a_cisco_system_group_is_decoded() {
        let walked = parse_walk(
            "1.3.6.1.2.1.1.1.0 = STRING: Cisco IOS Software, C2960 Software (C2960-LANBASEK9-M), Version 15.0(2)SE11\n\
             1.3.6.1.2.1.1.2.0 = OID: 1.3.6.1.4.1.9.1.1208\n\
             1.3.6.1.2.1.1.3.0 = Timeticks: 123456789\n\
             1.3.6.1.2.1.1.5.0 = STRING: sw-access-01.example.net\n",
        )
        .unwrap();
        let mut problems = Problems::default();
        let s = decode(&walked, &mut problems).unwrap();
        assert_eq!(s.enterprise, Some(9));
        assert_eq!(s.vendor.as_deref(), Some("Cisco"));
        assert_eq!(s.object_id.as_deref(), Some("1.3.6.1.4.1.9.1.1208"));
        assert_eq!(s.uptime_secs, Some(1_234_567));
        assert_eq!(s.contact, None);
        assert!(problems.is_empty());
    }

    #[test]
    fn no_system_varbinds_means_no_system() {
        let walked = vec![VarBind {
            oid: "1.3.6.1.2.1.1".parse().unwrap(),
            value: Value::NoSuchObject,
        }];
        let mut problems = Problems::default();
        assert_eq!(decode(&walked, &mut problems), None);
        assert!(problems.is_empty());
    }

    #[test]
    fn wrong_types_leave_fields_empty_and_are_reported() {
        let walked = parse_walk(
            "1.3.6.1.2.1.1.2.0 = STRING: 1.3.6.1.4.1.9\n\
             1.3.6.1.2.1.1.3.0 = INTEGER: 5\n\
             1.3.6.1.2.1.1.5.0 = OID: 1.3.6\n",
        )
        .unwrap();
        let mut problems = Problems::default();
        let s = decode(&walked, &mut problems).unwrap();
        assert_eq!((s.object_id, s.uptime_ticks, s.name), (None, None, None));
        let list = problems.into_vec();
        assert_eq!(list.len(), 3, "{list:?}");
        assert!(list[0].starts_with("1.3.6.1.2.1.1.2.0: "), "{list:?}");
    }

    #[test]
    fn enterprise_numbers_name_vendors() {
        assert_eq!(vendor_name(2636), Some("Juniper"));
        assert_eq!(vendor_name(30065), Some("Arista"));
        assert_eq!(vendor_name(999_999), None);
        assert_eq!(enterprise_number(&"1.3.6.1.4.1".parse().unwrap()), None);
        assert_eq!(enterprise_number(&"1.3.6.1.2.1.1".parse().unwrap()), None);
        assert_eq!(
            enterprise_number(&"1.3.6.1.4.1.14988.1".parse().unwrap()),
            Some(14988)
        );
    }

    #[test]
    fn the_vendor_table_has_no_duplicate_numbers() {
        let mut numbers: Vec<u32> = VENDORS.iter().map(|(n, _)| *n).collect();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), VENDORS.len());
    }
}
