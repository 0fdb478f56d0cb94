//! LLDP-MIB (IEEE 802.1AB-2005): neighbours from `lldpRemTable`, local port names from
//! `lldpLocPortTable` and management addresses from `lldpRemManAddrTable`. The newer
//! LLDP-V2-MIB (1.3.111.2.802.1.1.13) is not read: switches that have it still answer the
//! 2005 tables.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use crate::snmp::types::{Oid, VarBind};

use super::table::{Cell, Row, format_mac, oid, table, text_or_hex};
use super::{DeviceData, MibModule, Neighbour, NeighbourProtocol, Problems};

/// `lldpRemEntry`: index lldpRemTimeMark.lldpRemLocalPortNum.lldpRemIndex.
const LLDP_REM_ENTRY: &[u32] = &[1, 0, 8802, 1, 1, 2, 1, 4, 1, 1];
/// `lldpLocPortEntry`: index lldpLocPortNum.
const LLDP_LOC_PORT_ENTRY: &[u32] = &[1, 0, 8802, 1, 1, 2, 1, 3, 7, 1];
/// `lldpRemManAddrEntry`: index as lldpRemEntry, then the address family and the address.
const LLDP_REM_MAN_ADDR_ENTRY: &[u32] = &[1, 0, 8802, 1, 1, 2, 1, 4, 2, 1];

static ROOTS: LazyLock<Vec<Oid>> = LazyLock::new(|| {
    vec![
        oid(LLDP_LOC_PORT_ENTRY),
        oid(LLDP_REM_ENTRY),
        oid(LLDP_REM_MAN_ADDR_ENTRY),
    ]
});

/// IANA AddressFamilyNumbers used in network-address ids and management addresses.
const FAMILY_IPV4: u32 = 1;
const FAMILY_IPV6: u32 = 2;

/// The LLDP-MIB module.
#[derive(Debug)]
pub struct LldpMib;

impl MibModule for LldpMib {
    fn name(&self) -> &'static str {
        "lldp"
    }

    fn roots(&self) -> &[Oid] {
        &ROOTS
    }

    fn decode(&self, walked: &[VarBind], out: &mut DeviceData) {
        let mut problems = Problems::default();
        let mut neighbours = decode(walked, &mut problems);
        neighbours.append(&mut out.neighbours);
        out.neighbours = neighbours;
        problems.append_to(&mut out.problems);
    }
}

/// Decodes the LLDP remote table into neighbours ordered by local port, then remote index.
///
/// A row needs a three-arc index and at least a chassis id or a system name; otherwise it is
/// skipped and reported. A missing chassis id (mandatory in every LLDPDU) is reported too.
pub fn decode(walked: &[VarBind], problems: &mut Problems) -> Vec<Neighbour> {
    let local_ports = local_port_names(walked, problems);
    let mgmt = management_addresses(walked, problems);
    let mut out: BTreeMap<(u32, u32, u32), Neighbour> = BTreeMap::new();
    for row in table(walked, &oid(LLDP_REM_ENTRY), problems).values() {
        let &[time_mark, port_num, rem_index] = row.index.as_slice() else {
            if let Some(o) = row.any_oid() {
                problems.push(
                    o,
                    "index is not timeMark.localPortNum.remIndex; row skipped",
                );
            }
            continue;
        };
        let chassis = id(row, 4, 5, ChassisSubtype::decode, problems);
        let remote_name = row.col(9).text(problems);
        if chassis.is_none() {
            if let Some(o) = row.any_oid() {
                let what = if remote_name.is_some() {
                    "no lldpRemChassisId"
                } else {
                    "no lldpRemChassisId or lldpRemSysName; row skipped"
                };
                problems.push(o, what);
            }
            if remote_name.is_none() {
                continue;
            }
        }
        let port = id(row, 6, 7, PortSubtype::decode, problems);
        let port_descr = row.col(8).text(problems);
        let remote_port = port_name(port.as_ref(), port_descr.as_deref());
        let remote_port_id = port
            .map(|(id, _)| id)
            .filter(|id| Some(id) != remote_port.as_ref());
        let (remote_chassis_id, remote_chassis_id_type) = match chassis {
            Some((id, kind)) => (Some(id), Some(kind.to_string())),
            None => (None, None),
        };
        out.insert(
            (port_num, rem_index, time_mark),
            Neighbour {
                protocol: NeighbourProtocol::Lldp,
                local_port: local_ports.get(&port_num).cloned(),
                local_if_index: None,
                local_port_num: Some(port_num),
                remote_name,
                remote_chassis_id,
                remote_chassis_id_type,
                remote_port,
                remote_port_id,
                remote_port_descr: port_descr,
                remote_descr: row.col(10).text(problems),
                remote_mgmt_addr: mgmt.get(&(port_num, rem_index)).cloned(),
                remote_platform: None,
            },
        );
    }
    out.into_values().collect()
}

/// A port's best name: the port id when its subtype says it is a name, else the port
/// description (Junos sends port id "513", a local number, and description "ge-0/0/1.0";
/// hosts running lldpd send the MAC and "eth0"), else the decoded id.
fn port_name(id: Option<&(String, &'static str)>, descr: Option<&str>) -> Option<String> {
    match id {
        Some((id, "interfaceName" | "interfaceAlias")) => Some(id.clone()),
        _ => descr
            .map(str::to_string)
            .or_else(|| id.map(|(id, _)| id.clone())),
    }
}

/// Reads an (id subtype, id) column pair and decodes the id for its subtype.
fn id(
    row: &Row<'_>,
    subtype_col: u32,
    id_col: u32,
    decode: fn(Option<i64>, &[u8]) -> (String, &'static str),
    problems: &mut Problems,
) -> Option<(String, &'static str)> {
    let bytes = row.col(id_col).bytes(problems)?;
    if bytes.is_empty() {
        return None;
    }
    Some(decode(row.col(subtype_col).int(problems), bytes))
}

/// LldpChassisIdSubtype.
struct ChassisSubtype;

impl ChassisSubtype {
    fn decode(subtype: Option<i64>, bytes: &[u8]) -> (String, &'static str) {
        match subtype {
            Some(1) => (text_or_hex(bytes), "chassisComponent"),
            Some(2) => (text_or_hex(bytes), "interfaceAlias"),
            Some(3) => (text_or_hex(bytes), "portComponent"),
            Some(4) => (format_mac(bytes), "macAddress"),
            Some(5) => (network_address(bytes), "networkAddress"),
            Some(6) => (text_or_hex(bytes), "interfaceName"),
            Some(7) => (text_or_hex(bytes), "local"),
            _ => (text_or_hex(bytes), "unknown"),
        }
    }
}

/// LldpPortIdSubtype: the same ideas as the chassis subtypes, numbered differently.
struct PortSubtype;

impl PortSubtype {
    fn decode(subtype: Option<i64>, bytes: &[u8]) -> (String, &'static str) {
        match subtype {
            Some(1) => (text_or_hex(bytes), "interfaceAlias"),
            Some(2) => (text_or_hex(bytes), "portComponent"),
            Some(3) => (format_mac(bytes), "macAddress"),
            Some(4) => (network_address(bytes), "networkAddress"),
            Some(5) => (text_or_hex(bytes), "interfaceName"),
            Some(6) => (text_or_hex(bytes), "agentCircuitId"),
            Some(7) => (text_or_hex(bytes), "local"),
            _ => (text_or_hex(bytes), "unknown"),
        }
    }
}

/// A network-address id: one octet of IANA address family, then the address.
fn network_address(bytes: &[u8]) -> String {
    match bytes.split_first() {
        Some((&family, addr)) => {
            ip_address(u32::from(family), addr).unwrap_or_else(|| format_mac(bytes))
        }
        None => String::new(),
    }
}

fn ip_address(family: u32, addr: &[u8]) -> Option<String> {
    match family {
        FAMILY_IPV4 => <[u8; 4]>::try_from(addr)
            .ok()
            .map(|a| Ipv4Addr::from(a).to_string()),
        FAMILY_IPV6 => <[u8; 16]>::try_from(addr)
            .ok()
            .map(|a| Ipv6Addr::from(a).to_string()),
        _ => None,
    }
}

/// lldpLocPortNum → the local port's name, chosen as for remote ports.
fn local_port_names(walked: &[VarBind], problems: &mut Problems) -> BTreeMap<u32, String> {
    let mut out = BTreeMap::new();
    for row in table(walked, &oid(LLDP_LOC_PORT_ENTRY), problems).values() {
        let Some(num) = row.single_index(problems) else {
            continue;
        };
        let port = id(row, 2, 3, PortSubtype::decode, problems);
        let descr = row.col(4).text(problems);
        if let Some(name) = port_name(port.as_ref(), descr.as_deref()) {
            out.insert(num, name);
        }
    }
    out
}

/// (localPortNum, remIndex) → a management address, IPv4 preferred (it is what an operator
/// connects to; IPv6 link-local addresses are common and rarely useful).
///
/// The address lives in the index: timeMark.localPortNum.remIndex.family.length.octets.
/// Some agents leave out the length arc (an "IMPLIED" index); both forms are accepted. The
/// timeMark is ignored because agents disagree on it between the two tables.
fn management_addresses(
    walked: &[VarBind],
    problems: &mut Problems,
) -> BTreeMap<(u32, u32), String> {
    let mut out: BTreeMap<(u32, u32), (bool, String)> = BTreeMap::new();
    for row in table(walked, &oid(LLDP_REM_MAN_ADDR_ENTRY), problems).values() {
        let Some((port_num, rem_index, family, octets)) = man_addr_index(&row.index) else {
            if let Some(o) = row.any_oid() {
                problems.push(o, "not a management address index; skipped");
            }
            continue;
        };
        let Some(addr) = ip_address(family, &octets) else {
            // Other families (e.g. 6 = 802 MAC) are legal; a wrong-length IP address is not.
            if matches!(family, FAMILY_IPV4 | FAMILY_IPV6)
                && let Some(o) = row.any_oid()
            {
                problems.push(
                    o,
                    format!(
                        "a {}-octet address is not an IP address; skipped",
                        octets.len()
                    ),
                );
            }
            continue;
        };
        let ipv4 = family == FAMILY_IPV4;
        let keep = match out.get(&(port_num, rem_index)) {
            Some((had_ipv4, _)) => ipv4 && !had_ipv4,
            None => true,
        };
        if keep {
            out.insert((port_num, rem_index), (ipv4, addr));
        }
    }
    out.into_iter().map(|(k, (_, addr))| (k, addr)).collect()
}

fn man_addr_index(index: &[u32]) -> Option<(u32, u32, u32, Vec<u8>)> {
    let [_time_mark, port_num, rem_index, family, rest @ ..] = index else {
        return None;
    };
    let addr = match rest.split_first() {
        Some((&len, tail)) if usize::try_from(len).ok() == Some(tail.len()) => tail,
        _ => rest,
    };
    let octets = addr
        .iter()
        .map(|&a| u8::try_from(a).ok())
        .collect::<Option<Vec<u8>>>()?;
    (!octets.is_empty()).then_some((*port_num, *rem_index, *family, octets))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::types::parse_walk;

    #[test]
    fn chassis_ids_are_decoded_by_subtype() {
        assert_eq!(
            ChassisSubtype::decode(Some(4), &[0x54, 0x4b, 0x8c, 0x01, 0x02, 0x03]),
            ("54:4b:8c:01:02:03".to_string(), "macAddress")
        );
        assert_eq!(
            ChassisSubtype::decode(Some(5), &[1, 192, 0, 2, 7]),
            ("192.0.2.7".to_string(), "networkAddress")
        );
        assert_eq!(
            ChassisSubtype::decode(Some(7), b"sw-core-1"),
            ("sw-core-1".to_string(), "local")
        );
        assert_eq!(
            ChassisSubtype::decode(Some(5), &[9, 1, 2]).0,
            "09:01:02",
            "an unknown family stays hex"
        );
        assert_eq!(
            PortSubtype::decode(Some(3), &[0, 1, 2, 3, 4, 5]).1,
            "macAddress"
        );
    }

    #[test]
    fn management_address_indexes_with_and_without_length() {
        assert_eq!(
            man_addr_index(&[0, 3, 1, 1, 4, 10, 0, 0, 1]),
            Some((3, 1, 1, vec![10, 0, 0, 1]))
        );
        assert_eq!(
            man_addr_index(&[0, 3, 1, 1, 10, 0, 0, 1]),
            Some((3, 1, 1, vec![10, 0, 0, 1]))
        );
        assert_eq!(man_addr_index(&[0, 3, 1, 1, 4, 300, 0, 0, 1]), None);
        assert_eq!(man_addr_index(&[0, 3, 1]), None);
    }

    #[test]
    fn a_row_without_chassis_id_or_name_is_skipped_and_reported() {
        let walked = parse_walk(
            "1.0.8802.1.1.2.1.4.1.1.7.0.5.1 = STRING: ge-0/0/5\n\
             1.0.8802.1.1.2.1.4.1.1.9.0.6.1 = STRING: only-a-name\n\
             1.0.8802.1.1.2.1.4.1.1.9.6.1 = STRING: short-index\n",
        )
        .unwrap();
        let mut problems = Problems::default();
        let n = decode(&walked, &mut problems);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].remote_name.as_deref(), Some("only-a-name"));
        let list = problems.into_vec();
        assert_eq!(list.len(), 3, "{list:?}");
    }

    #[test]
    fn port_names_prefer_names_then_descriptions() {
        let name = ("xe-0/0/1".to_string(), "interfaceName");
        let local = ("513".to_string(), "local");
        assert_eq!(
            port_name(Some(&name), Some("uplink")).as_deref(),
            Some("xe-0/0/1")
        );
        assert_eq!(
            port_name(Some(&local), Some("ge-0/0/1.0")).as_deref(),
            Some("ge-0/0/1.0")
        );
        assert_eq!(port_name(Some(&local), None).as_deref(), Some("513"));
        assert_eq!(port_name(None, None), None);
    }
}
