//! BRIDGE-MIB (RFC 4188) and Q-BRIDGE-MIB (RFC 4363) forwarding databases: which MAC address
//! was learned on which port, i.e. where a host is plugged in.
//!
//! Q-BRIDGE's `dot1qTpFdbTable` is per filtering database (per VLAN on most switches) and is
//! used when the switch has it; the plain `dot1dTpFdbTable` of a VLAN-aware switch shows one
//! VLAN or a merged view, so it is only the fallback. Cisco IOS serves per-VLAN BRIDGE-MIB
//! tables through community indexing (`community@vlan`), which is the poller's business, not
//! this decoder's.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::snmp::types::{Oid, VarBind};

use super::table::{Cell, Row, format_mac, oid, required, table};
use super::{DeviceData, MibModule, Problems};

/// `dot1dBasePortIfIndex`: bridge port → ifIndex.
const DOT1D_BASE_PORT_IF_INDEX: &[u32] = &[1, 3, 6, 1, 2, 1, 17, 1, 4, 1, 2];
/// `dot1dBasePortEntry`.
const DOT1D_BASE_PORT_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 17, 1, 4, 1];
/// `dot1dTpFdbEntry`: index = the MAC address, six arcs.
const DOT1D_TP_FDB_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 17, 4, 3, 1];
/// `dot1qTpFdbEntry`: index = dot1qFdbId, then the MAC address.
const DOT1Q_TP_FDB_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 17, 7, 1, 2, 2, 1];
/// `dot1qVlanFdbId`: VLAN → filtering database, index dot1qVlanTimeMark.dot1qVlanIndex.
const DOT1Q_VLAN_FDB_ID: &[u32] = &[1, 3, 6, 1, 2, 1, 17, 7, 1, 4, 2, 1, 3];
/// `dot1qVlanCurrentEntry`.
const DOT1Q_VLAN_CURRENT_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 17, 7, 1, 4, 2, 1];

static ROOTS: LazyLock<Vec<Oid>> = LazyLock::new(|| {
    vec![
        oid(DOT1D_BASE_PORT_IF_INDEX),
        oid(DOT1D_TP_FDB_ENTRY),
        oid(DOT1Q_TP_FDB_ENTRY),
        oid(DOT1Q_VLAN_FDB_ID),
    ]
});

/// One forwarding-database entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FdbEntry {
    /// `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// dot1qFdbId (Q-BRIDGE only).
    pub fdb_id: Option<u32>,
    /// The VLAN of `fdb_id`, when dot1qVlanCurrentTable maps exactly one VLAN to it. Not
    /// assumed equal to the FDB id: Junos, for one, numbers its databases internally.
    pub vlan: Option<u32>,
    /// The bridge port; 0 means the switch knows the address but not its port.
    pub bridge_port: u32,
    /// The port's ifIndex from dot1dBasePortTable.
    pub if_index: Option<u32>,
    /// The port's interface name, from the interfaces module.
    pub port_name: Option<String>,
    /// `None` when the agent did not return the status column.
    pub status: Option<FdbStatus>,
}

impl FdbEntry {
    /// Only a learned entry says where a host is; static (mgmt) ones say where someone
    /// configured it, and the switch's own addresses (self) are left out altogether.
    pub fn is_host_location(&self) -> bool {
        self.status == Some(FdbStatus::Learned) && self.bridge_port != 0
    }
}

/// dot1dTpFdbStatus / dot1qTpFdbStatus, without the two values that are never kept:
/// invalid (2, being aged out) and self (4, the switch's own address).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FdbStatus {
    Other,
    Learned,
    Mgmt,
}

/// The BRIDGE-MIB / Q-BRIDGE-MIB module.
#[derive(Debug)]
pub struct BridgeMib;

impl MibModule for BridgeMib {
    fn name(&self) -> &'static str {
        "bridge"
    }

    fn roots(&self) -> &[Oid] {
        &ROOTS
    }

    fn decode(&self, walked: &[VarBind], out: &mut DeviceData) {
        let mut problems = Problems::default();
        let names = out.interface_names();
        out.fdb = decode(walked, &names, &mut problems);
        problems.append_to(&mut out.problems);
    }
}

/// Decodes the forwarding database, Q-BRIDGE when present, ordered by (FDB id, MAC).
/// `if_names` (ifIndex → name) fills `port_name`. A row with a malformed index or without a
/// port is skipped and reported; self and invalid entries are skipped silently.
pub fn decode(
    walked: &[VarBind],
    if_names: &BTreeMap<u32, String>,
    problems: &mut Problems,
) -> Vec<FdbEntry> {
    let port_if_index = port_if_indexes(walked, problems);
    let vlans = vlans_by_fdb_id(walked, problems);
    let mut entries = Vec::new();
    for row in table(walked, &oid(DOT1Q_TP_FDB_ENTRY), problems).values() {
        let Some((&fdb_id, mac)) = row.index.split_first() else {
            continue;
        };
        if let Some(entry) = entry(row, Some(fdb_id), mac, problems) {
            entries.push(entry);
        }
    }
    if entries.is_empty() {
        for row in table(walked, &oid(DOT1D_TP_FDB_ENTRY), problems).values() {
            if let Some(entry) = entry(row, None, &row.index, problems) {
                entries.push(entry);
            }
        }
    }
    for e in &mut entries {
        e.vlan = e
            .fdb_id
            .and_then(|id| vlans.get(&id))
            .filter(|set| set.len() == 1)
            .and_then(|set| set.first().copied());
        e.if_index = port_if_index.get(&e.bridge_port).copied();
        e.port_name = e.if_index.and_then(|i| if_names.get(&i).cloned());
    }
    entries
}

/// One FDB row (the same columns in both tables: 2 port, 3 status).
fn entry(
    row: &Row<'_>,
    fdb_id: Option<u32>,
    mac: &[u32],
    problems: &mut Problems,
) -> Option<FdbEntry> {
    let mac: Option<Vec<u8>> = match mac.len() {
        6 => mac.iter().map(|&a| u8::try_from(a).ok()).collect(),
        _ => None,
    };
    let Some(mac) = mac else {
        if let Some(o) = row.any_oid() {
            problems.push(o, "index does not end in a MAC address; row skipped");
        }
        return None;
    };
    let status = match row.col(3).int(problems) {
        None => None,
        Some(1) => Some(FdbStatus::Other),
        Some(3) => Some(FdbStatus::Learned),
        Some(5) => Some(FdbStatus::Mgmt),
        Some(2 | 4) => return None,
        Some(n) => {
            if let Some(vb) = row.col(3) {
                problems.push(&vb.oid, format!("{n} is not an FDB status; row skipped"));
            }
            return None;
        }
    };
    let bridge_port = required(
        row,
        2,
        "port",
        |v| v.as_u64().and_then(|n| u32::try_from(n).ok()),
        problems,
    )?;
    Some(FdbEntry {
        mac: format_mac(&mac),
        fdb_id,
        vlan: None,
        bridge_port,
        if_index: None,
        port_name: None,
        status,
    })
}

/// dot1dBasePort → dot1dBasePortIfIndex.
fn port_if_indexes(walked: &[VarBind], problems: &mut Problems) -> BTreeMap<u32, u32> {
    let mut out = BTreeMap::new();
    for row in table(walked, &oid(DOT1D_BASE_PORT_ENTRY), problems).values() {
        let Some(cell) = row.col(2) else { continue };
        let Some(port) = row.single_index(problems) else {
            continue;
        };
        if let Some(if_index) = Some(cell).u32(problems) {
            out.insert(port, if_index);
        }
    }
    out
}

/// dot1qFdbId → the VLANs that use it (several on a shared-VLAN-learning switch).
fn vlans_by_fdb_id(walked: &[VarBind], problems: &mut Problems) -> BTreeMap<u32, BTreeSet<u32>> {
    let mut out: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
    for row in table(walked, &oid(DOT1Q_VLAN_CURRENT_ENTRY), problems).values() {
        let Some(cell) = row.col(3) else { continue };
        let &[_time_mark, vlan] = row.index.as_slice() else {
            problems.push(&cell.oid, "index is not timeMark.vlan; skipped");
            continue;
        };
        if let Some(fdb_id) = Some(cell).u32(problems) {
            out.entry(fdb_id).or_default().insert(vlan);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::types::parse_walk;

    #[test]
    fn dot1d_is_the_fallback_and_self_entries_are_dropped() {
        let walked = parse_walk(
            "1.3.6.1.2.1.17.1.4.1.2.1 = INTEGER: 10101\n\
             1.3.6.1.2.1.17.4.3.1.2.0.80.86.1.2.3 = INTEGER: 1\n\
             1.3.6.1.2.1.17.4.3.1.3.0.80.86.1.2.3 = INTEGER: 3\n\
             1.3.6.1.2.1.17.4.3.1.2.0.80.86.1.2.4 = INTEGER: 0\n\
             1.3.6.1.2.1.17.4.3.1.3.0.80.86.1.2.4 = INTEGER: 4\n",
        )
        .unwrap();
        let names = BTreeMap::from([(10101, "Gi1/0/1".to_string())]);
        let mut problems = Problems::default();
        let fdb = decode(&walked, &names, &mut problems);
        assert_eq!(fdb.len(), 1);
        assert_eq!(fdb[0].mac, "00:50:56:01:02:03");
        assert_eq!(fdb[0].port_name.as_deref(), Some("Gi1/0/1"));
        assert!(fdb[0].is_host_location());
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn q_bridge_wins_and_vlans_come_from_the_fdb_id_map() {
        let walked = parse_walk(
            "1.3.6.1.2.1.17.4.3.1.2.0.80.86.9.9.9 = INTEGER: 1\n\
             1.3.6.1.2.1.17.7.1.2.2.1.2.5.0.80.86.1.2.3 = INTEGER: 7\n\
             1.3.6.1.2.1.17.7.1.2.2.1.2.6.0.80.86.1.2.4 = INTEGER: 8\n\
             1.3.6.1.2.1.17.7.1.4.2.1.3.0.20 = Gauge32: 5\n\
             1.3.6.1.2.1.17.7.1.4.2.1.3.0.30 = Gauge32: 6\n\
             1.3.6.1.2.1.17.7.1.4.2.1.3.0.31 = Gauge32: 6\n",
        )
        .unwrap();
        let mut problems = Problems::default();
        let fdb = decode(&walked, &BTreeMap::new(), &mut problems);
        assert_eq!(fdb.len(), 2);
        assert_eq!((fdb[0].fdb_id, fdb[0].vlan), (Some(5), Some(20)));
        assert_eq!(
            (fdb[1].fdb_id, fdb[1].vlan),
            (Some(6), None),
            "shared by two VLANs"
        );
        assert_eq!(fdb[0].status, None);
        assert!(!fdb[0].is_host_location());
    }

    #[test]
    fn bad_macs_ports_and_statuses_are_reported() {
        let walked = parse_walk(
            "1.3.6.1.2.1.17.7.1.2.2.1.2.1.0.80.86.1.2 = INTEGER: 7\n\
             1.3.6.1.2.1.17.7.1.2.2.1.2.1.0.80.86.1.2.999 = INTEGER: 7\n\
             1.3.6.1.2.1.17.7.1.2.2.1.3.1.0.80.86.1.2.3 = INTEGER: 3\n\
             1.3.6.1.2.1.17.7.1.2.2.1.2.1.0.80.86.1.2.5 = STRING: 7\n\
             1.3.6.1.2.1.17.7.1.2.2.1.2.1.0.80.86.1.2.6 = INTEGER: 7\n\
             1.3.6.1.2.1.17.7.1.2.2.1.3.1.0.80.86.1.2.6 = INTEGER: 9\n",
        )
        .unwrap();
        let mut problems = Problems::default();
        let fdb = decode(&walked, &BTreeMap::new(), &mut problems);
        assert!(fdb.is_empty(), "{fdb:?}");
        // Short MAC, arc 999, missing port (.3), wrong-typed port (.5), bad status (.6).
        assert_eq!(problems.len(), 5, "{problems:?}");
    }
}
