//! IF-MIB (RFC 2863): `ifTable` and `ifXTable` merged per ifIndex. Counters come from the
//! 64-bit `ifHC*` columns when the agent has them (a 32-bit octet counter wraps every 34 s at
//! 1 Gb/s) and say which width they are, so [`super::rates`] can tell a wrap from a reset.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::snmp::types::{Oid, VarBind};

use super::table::{Cell, Counter, Row, format_mac, oid, table};
use super::{DeviceData, MibModule, Problems};

/// `ifEntry`.
const IF_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 2, 2, 1];
/// `ifXEntry`.
const IFX_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 31, 1, 1, 1];

static ROOTS: LazyLock<Vec<Oid>> = LazyLock::new(|| vec![oid(IF_ENTRY), oid(IFX_ENTRY)]);

/// ifSpeed's ceiling: "if the bandwidth is greater than the maximum value reportable by this
/// object then this object should contain its maximum value (4,294,967,295) and ifHighSpeed
/// must be used to report the interface's speed" (RFC 2863).
const IF_SPEED_SATURATED: u64 = 4_294_967_295;

/// One interface.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interface {
    /// ifIndex.
    pub index: u32,
    /// ifName, else ifDescr, else `ifIndex N`: never empty, so it can label ports.
    pub name: String,
    pub descr: Option<String>,
    /// ifAlias: the description an operator configured on the port.
    pub alias: Option<String>,
    /// ifType, an IANAifType number.
    pub if_type: Option<u32>,
    /// The IANAifType name for `if_type`, for the common types (see [`if_type_name`]).
    pub if_type_name: Option<String>,
    pub mtu: Option<i64>,
    /// Bits per second; `None` when unknown (the agent reports 0 for "no concept of
    /// bandwidth", and a 0 here would only invite divisions by zero).
    pub speed_bps: Option<u64>,
    /// ifPhysAddress as `aa:bb:cc:dd:ee:ff`; `None` when empty (loopbacks, tunnels).
    pub mac: Option<String>,
    pub admin_status: Option<IfStatus>,
    pub oper_status: Option<IfStatus>,
    pub counters: InterfaceCounters,
    /// ifCounterDiscontinuityTime (sysUpTime ticks at the last discontinuity of any of this
    /// interface's counters): when it changes between polls, deltas mean nothing.
    pub counter_discontinuity_ticks: Option<u32>,
}

/// ifAdminStatus / ifOperStatus. Admin status uses only the first three.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum IfStatus {
    Up,
    Down,
    Testing,
    Unknown,
    Dormant,
    NotPresent,
    LowerLayerDown,
}

impl IfStatus {
    pub fn from_number(n: i64) -> Option<IfStatus> {
        Some(match n {
            1 => IfStatus::Up,
            2 => IfStatus::Down,
            3 => IfStatus::Testing,
            4 => IfStatus::Unknown,
            5 => IfStatus::Dormant,
            6 => IfStatus::NotPresent,
            7 => IfStatus::LowerLayerDown,
            _ => return None,
        })
    }
}

/// The traffic counters of an interface, each with the width it was read at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceCounters {
    pub in_octets: Option<Counter>,
    pub out_octets: Option<Counter>,
    pub in_unicast_pkts: Option<Counter>,
    pub in_multicast_pkts: Option<Counter>,
    pub in_broadcast_pkts: Option<Counter>,
    pub out_unicast_pkts: Option<Counter>,
    pub out_multicast_pkts: Option<Counter>,
    pub out_broadcast_pkts: Option<Counter>,
    pub in_errors: Option<Counter>,
    pub out_errors: Option<Counter>,
    pub in_discards: Option<Counter>,
    pub out_discards: Option<Counter>,
}

/// The IF-MIB module.
#[derive(Debug)]
pub struct IfMib;

impl MibModule for IfMib {
    fn name(&self) -> &'static str {
        "interfaces"
    }

    fn roots(&self) -> &[Oid] {
        &ROOTS
    }

    fn decode(&self, walked: &[VarBind], out: &mut DeviceData) {
        let mut problems = Problems::default();
        out.interfaces = decode(walked, &mut problems);
        problems.append_to(&mut out.problems);
    }
}

/// Decodes ifTable + ifXTable into interfaces ordered by ifIndex. A row whose index is not
/// one positive number is skipped; everything else about a row is optional.
pub fn decode(walked: &[VarBind], problems: &mut Problems) -> Vec<Interface> {
    let if_rows = table(walked, &oid(IF_ENTRY), problems);
    let x_rows = table(walked, &oid(IFX_ENTRY), problems);
    let indexes: BTreeSet<&Vec<u32>> = if_rows.keys().chain(x_rows.keys()).collect();
    let mut out = Vec::with_capacity(indexes.len());
    for index in indexes {
        let base = if_rows.get(index);
        let ext = x_rows.get(index);
        if let Some(interface) = decode_row(base, ext, !if_rows.is_empty(), problems) {
            out.push(interface);
        }
    }
    out
}

fn decode_row(
    base: Option<&Row<'_>>,
    ext: Option<&Row<'_>>,
    have_if_table: bool,
    problems: &mut Problems,
) -> Option<Interface> {
    let any = base.or(ext)?;
    let index = any.single_index(problems)?;
    if index == 0 {
        if let Some(oid) = any.any_oid() {
            problems.push(oid, "ifIndex 0 is not a valid interface; row skipped");
        }
        return None;
    }
    if base.is_none()
        && have_if_table
        && let Some(oid) = any.any_oid()
    {
        problems.push(
            oid,
            format!("ifIndex {index} is in ifXTable but not in ifTable"),
        );
    }
    let col = |c: u32| base.and_then(|r| r.col(c));
    let xcol = |c: u32| ext.and_then(|r| r.col(c));

    let descr = col(2).text(problems);
    let if_name = xcol(1).text(problems);
    let name = if_name
        .or_else(|| descr.clone())
        .unwrap_or_else(|| format!("ifIndex {index}"));
    let if_type = col(3).u32(problems);
    let status = |cell: Option<&VarBind>, max: i64, problems: &mut Problems| {
        let n = cell.int(problems)?;
        let status = IfStatus::from_number(n).filter(|_| n <= max);
        if status.is_none()
            && let Some(vb) = cell
        {
            problems.push(&vb.oid, format!("{n} is not an interface status"));
        }
        status
    };
    // HC first; a wrong-typed HC cell is reported and the 32-bit column used instead.
    let mut counter = |hc: Option<&VarBind>, low: Option<&VarBind>| {
        hc.counter(problems).or_else(|| low.counter(problems))
    };
    let counters = InterfaceCounters {
        in_octets: counter(xcol(6), col(10)),
        out_octets: counter(xcol(10), col(16)),
        in_unicast_pkts: counter(xcol(7), col(11)),
        in_multicast_pkts: counter(xcol(8), xcol(2)),
        in_broadcast_pkts: counter(xcol(9), xcol(3)),
        out_unicast_pkts: counter(xcol(11), col(17)),
        out_multicast_pkts: counter(xcol(12), xcol(4)),
        out_broadcast_pkts: counter(xcol(13), xcol(5)),
        in_errors: counter(None, col(14)),
        out_errors: counter(None, col(20)),
        in_discards: counter(None, col(13)),
        out_discards: counter(None, col(19)),
    };
    Some(Interface {
        index,
        name,
        descr,
        alias: xcol(18).text(problems),
        if_type,
        if_type_name: if_type.and_then(if_type_name).map(str::to_string),
        mtu: col(4).int(problems),
        speed_bps: speed(col(5).u64(problems), xcol(15).u64(problems)),
        mac: col(6)
            .bytes(problems)
            .filter(|b| !b.is_empty())
            .map(format_mac),
        admin_status: status(col(7), 3, problems),
        oper_status: status(col(8), 7, problems),
        counters,
        counter_discontinuity_ticks: xcol(19).timeticks(problems),
    })
}

/// ifSpeed unless it cannot hold the speed: then ifHighSpeed (Mb/s). ifSpeed is preferred
/// otherwise because it is exact for slow links (a 1.544 Mb/s T1 is "2" in ifHighSpeed).
/// Some agents truncate ifSpeed modulo 2^32 instead of saturating it (10 Gb/s read as
/// 1,410,065,408), so ifHighSpeed also wins whenever it is above what ifSpeed can hold.
fn speed(if_speed: Option<u64>, high_speed_mbps: Option<u64>) -> Option<u64> {
    let high = high_speed_mbps.map(|m| m.saturating_mul(1_000_000));
    let chosen = match (if_speed, high) {
        (Some(s), Some(h)) if s >= IF_SPEED_SATURATED || h > IF_SPEED_SATURATED => Some(h),
        (None, h) => h,
        (s, _) => s,
    };
    chosen.filter(|&bps| bps > 0)
}

/// The IANAifType name of the interface types seen on most networks; others keep the number.
pub fn if_type_name(if_type: u32) -> Option<&'static str> {
    IF_TYPES
        .iter()
        .find(|(n, _)| *n == if_type)
        .map(|(_, name)| *name)
}

/// From IANAifType-MIB.
const IF_TYPES: &[(u32, &str)] = &[
    (1, "other"),
    (6, "ethernetCsmacd"),
    (7, "iso88023Csmacd"),
    (9, "iso88025TokenRing"),
    (15, "fddi"),
    (18, "ds1"),
    (19, "e1"),
    (20, "basicISDN"),
    (21, "primaryISDN"),
    (22, "propPointToPointSerial"),
    (23, "ppp"),
    (24, "softwareLoopback"),
    (28, "slip"),
    (30, "ds3"),
    (32, "frameRelay"),
    (37, "atm"),
    (39, "sonet"),
    (49, "aal5"),
    (53, "propVirtual"),
    (56, "fibreChannel"),
    (62, "fastEther"),
    (63, "isdn"),
    (69, "fastEtherFX"),
    (71, "ieee80211"),
    (77, "lapd"),
    (81, "ds0"),
    (94, "adsl"),
    (96, "sdsl"),
    (97, "vdsl"),
    (108, "pppMultilinkBundle"),
    (117, "gigabitEthernet"),
    (118, "hdlc"),
    (131, "tunnel"),
    (134, "atmSubInterface"),
    (135, "l2vlan"),
    (136, "l3ipvlan"),
    (142, "ipForward"),
    (150, "mplsTunnel"),
    (161, "ieee8023adLag"),
    (166, "mpls"),
    (169, "shdsl"),
    (171, "pos"),
    (188, "radioMAC"),
    (199, "infiniband"),
    (209, "bridge"),
    (215, "sixToFour"),
    (238, "adsl2plus"),
    (243, "wwanPP"),
    (244, "wwanPP2"),
    (250, "gpon"),
    (251, "vdsl2"),
    (258, "vmwareVirtualNic"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::mib::CounterWidth;
    use crate::snmp::types::parse_walk;

    fn decode_text(text: &str) -> (Vec<Interface>, Vec<String>) {
        let mut problems = Problems::default();
        let out = decode(&parse_walk(text).unwrap(), &mut problems);
        (out, problems.into_vec())
    }

    #[test]
    fn hc_counters_win_over_32_bit_ones_and_say_so() {
        let (ifs, problems) = decode_text(
            "1.3.6.1.2.1.2.2.1.2.3 = STRING: GigabitEthernet0/1\n\
             1.3.6.1.2.1.2.2.1.10.3 = Counter32: 5\n\
             1.3.6.1.2.1.2.2.1.16.3 = Counter32: 7\n\
             1.3.6.1.2.1.31.1.1.1.6.3 = Counter64: 4294967301\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        let c = ifs[0].counters;
        assert_eq!(
            c.in_octets,
            Some(Counter {
                value: 4_294_967_301,
                bits: CounterWidth::Bits64
            })
        );
        assert_eq!(
            c.out_octets,
            Some(Counter {
                value: 7,
                bits: CounterWidth::Bits32
            })
        );
        assert_eq!(
            ifs[0].name, "GigabitEthernet0/1",
            "ifDescr is the fallback name"
        );
    }

    #[test]
    fn speed_prefers_ifhighspeed_only_when_ifspeed_cannot_hold_it() {
        assert_eq!(
            speed(Some(IF_SPEED_SATURATED), Some(10_000)),
            Some(10_000_000_000)
        );
        assert_eq!(speed(None, Some(100)), Some(100_000_000));
        assert_eq!(speed(Some(1_544_000), Some(2)), Some(1_544_000));
        assert_eq!(
            speed(Some(1_410_065_408), Some(10_000)),
            Some(10_000_000_000)
        );
        assert_eq!(speed(Some(0), Some(0)), None);
        assert_eq!(speed(None, None), None);
    }

    #[test]
    fn bad_indexes_and_statuses_are_reported_not_fatal() {
        let (ifs, problems) = decode_text(
            "1.3.6.1.2.1.2.2.1.2.0 = STRING: zero\n\
             1.3.6.1.2.1.2.2.1.2.1.5 = STRING: two arcs\n\
             1.3.6.1.2.1.2.2.1.2.2 = STRING: ok\n\
             1.3.6.1.2.1.2.2.1.7.2 = INTEGER: 9\n\
             1.3.6.1.2.1.2.2.1.8.2 = INTEGER: 7\n",
        );
        assert_eq!(ifs.len(), 1);
        assert_eq!(ifs[0].admin_status, None);
        assert_eq!(ifs[0].oper_status, Some(IfStatus::LowerLayerDown));
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    #[test]
    fn an_ifxtable_only_row_is_kept_and_reported() {
        let (ifs, problems) = decode_text(
            "1.3.6.1.2.1.2.2.1.2.1 = STRING: lo\n\
             1.3.6.1.2.1.31.1.1.1.1.9 = STRING: ghost\n",
        );
        assert_eq!(ifs.len(), 2);
        assert_eq!(ifs[1].name, "ghost");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("1.3.6.1.2.1.31.1.1.1.1.9: "));
    }

    #[test]
    fn an_interface_with_no_name_is_named_by_index() {
        let (ifs, _) = decode_text("1.3.6.1.2.1.2.2.1.3.42 = INTEGER: 6\n");
        assert_eq!(ifs[0].name, "ifIndex 42");
        assert_eq!(ifs[0].if_type_name.as_deref(), Some("ethernetCsmacd"));
    }
}
