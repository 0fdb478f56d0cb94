//! CISCO-CDP-MIB `cdpCacheTable`: neighbours seen by Cisco Discovery Protocol, which Cisco
//! devices run by default where LLDP is often off.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use crate::snmp::types::{Oid, VarBind};

use super::table::{Cell, oid, required, table, text_or_hex};
use super::{DeviceData, MibModule, Neighbour, NeighbourProtocol, Problems};

/// `cdpCacheEntry`: index cdpCacheIfIndex.cdpCacheDeviceIndex.
const CDP_CACHE_ENTRY: &[u32] = &[1, 3, 6, 1, 4, 1, 9, 9, 23, 1, 2, 1, 1];

static ROOTS: LazyLock<Vec<Oid>> = LazyLock::new(|| vec![oid(CDP_CACHE_ENTRY)]);

/// CiscoNetworkProtocol values of cdpCacheAddressType that carry IP addresses.
const ADDRESS_IP: i64 = 1;
const ADDRESS_IPV6: i64 = 20;

/// The CISCO-CDP-MIB module.
#[derive(Debug)]
pub struct CdpMib;

impl MibModule for CdpMib {
    fn name(&self) -> &'static str {
        "cdp"
    }

    fn roots(&self) -> &[Oid] {
        &ROOTS
    }

    fn decode(&self, walked: &[VarBind], out: &mut DeviceData) {
        let mut problems = Problems::default();
        let names = out.interface_names();
        out.neighbours.extend(decode(walked, &names, &mut problems));
        problems.append_to(&mut out.problems);
    }
}

/// Decodes the CDP cache. `if_names` (ifIndex → name, from [`super::interfaces`]) names the
/// local port; without it `local_port` stays empty and `local_if_index` still says which.
/// A row needs a two-arc index and a device id, which is what identifies the neighbour.
pub fn decode(
    walked: &[VarBind],
    if_names: &BTreeMap<u32, String>,
    problems: &mut Problems,
) -> Vec<Neighbour> {
    let mut out = Vec::new();
    for row in table(walked, &oid(CDP_CACHE_ENTRY), problems).values() {
        let &[if_index, _device_index] = row.index.as_slice() else {
            if let Some(o) = row.any_oid() {
                problems.push(o, "index is not ifIndex.deviceIndex; row skipped");
            }
            continue;
        };
        let device_id = required(
            row,
            6,
            "cdpCacheDeviceId",
            |v| v.as_bytes().filter(|b| !b.is_empty()).map(text_or_hex),
            problems,
        );
        let Some(device_id) = device_id else { continue };
        let address_type = row.col(3).int(problems);
        let address_cell = row.col(4);
        let remote_mgmt_addr = address_cell.bytes(problems).and_then(|b| {
            let addr = address(address_type, b);
            let ip_type = matches!(address_type, None | Some(ADDRESS_IP | ADDRESS_IPV6));
            if let (None, true, Some(vb)) = (&addr, ip_type && !b.is_empty(), address_cell) {
                problems.push(&vb.oid, format!("{} octets are not an IP address", b.len()));
            }
            addr
        });
        out.push(Neighbour {
            protocol: NeighbourProtocol::Cdp,
            local_port: if_names.get(&if_index).cloned(),
            local_if_index: Some(if_index),
            local_port_num: None,
            remote_name: Some(strip_serial(&device_id).to_string()),
            remote_chassis_id: Some(device_id),
            remote_chassis_id_type: Some("cdpDeviceId".to_string()),
            remote_port: row.col(7).text(problems),
            remote_port_id: None,
            remote_port_descr: None,
            remote_descr: row.col(5).text(problems),
            remote_mgmt_addr,
            remote_platform: row.col(8).text(problems),
        });
    }
    out
}

/// cdpCacheAddress as an IP address. The type is CiscoNetworkProtocol (ip = 1, ipv6 = 20);
/// when the type is missing, four octets are taken as IPv4, which is what it nearly always is.
fn address(address_type: Option<i64>, bytes: &[u8]) -> Option<String> {
    match (address_type, bytes.len()) {
        (Some(ADDRESS_IP) | None, 4) => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|a| Ipv4Addr::from(a).to_string()),
        (Some(ADDRESS_IPV6), 16) => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|a| Ipv6Addr::from(a).to_string()),
        _ => None,
    }
}

/// NX-OS and some IOS-XE devices send `hostname(SERIAL)` as device id; the name is the part
/// before the parenthesis (the full id stays in `remote_chassis_id`).
fn strip_serial(device_id: &str) -> &str {
    match device_id.split_once('(') {
        Some((name, rest)) if !name.is_empty() && rest.ends_with(')') => name,
        _ => device_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::types::parse_walk;

    #[test]
    fn addresses_by_type() {
        assert_eq!(
            address(Some(1), &[10, 1, 2, 3]).as_deref(),
            Some("10.1.2.3")
        );
        assert_eq!(address(None, &[10, 1, 2, 3]).as_deref(), Some("10.1.2.3"));
        assert_eq!(address(Some(1), &[10, 1, 2]), None);
        assert_eq!(
            address(
                Some(20),
                &[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
            )
            .as_deref(),
            Some("fe80::1")
        );
        assert_eq!(address(Some(14), &[1, 2, 3, 4]), None);
    }

    #[test]
    fn nx_os_device_ids_lose_their_serial_in_the_name() {
        assert_eq!(strip_serial("n9k-core-1(FDO21120ABC)"), "n9k-core-1");
        assert_eq!(strip_serial("sw1.example.net"), "sw1.example.net");
        assert_eq!(strip_serial("(odd)"), "(odd)");
    }

    #[test]
    fn local_ports_are_named_from_the_interfaces() {
        let walked = parse_walk(
            "1.3.6.1.4.1.9.9.23.1.2.1.1.6.10101.1 = STRING: sw-dist-1\n\
             1.3.6.1.4.1.9.9.23.1.2.1.1.7.10101.1 = STRING: TenGigabitEthernet1/1/1\n\
             1.3.6.1.4.1.9.9.23.1.2.1.1.7.10102.4 = STRING: no device id\n",
        )
        .unwrap();
        let names = BTreeMap::from([(10101, "Gi1/0/1".to_string())]);
        let mut problems = Problems::default();
        let n = decode(&walked, &names, &mut problems);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].local_port.as_deref(), Some("Gi1/0/1"));
        assert_eq!(problems.len(), 1);
    }
}
