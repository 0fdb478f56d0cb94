//! ENTITY-MIB (RFC 6933) `entPhysicalTable`: the hardware a device is made of (chassis,
//! modules, power supplies, fans, ports) with serials and revisions. The CMDB identifies a
//! network device by its chassis serial, which [`chassis`] picks.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::snmp::types::{Oid, VarBind};

use super::table::{Cell, oid, table};
use super::{DeviceData, MibModule, Problems};

/// `entPhysicalEntry`.
const ENT_PHYSICAL_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 47, 1, 1, 1, 1];

static ROOTS: LazyLock<Vec<Oid>> = LazyLock::new(|| vec![oid(ENT_PHYSICAL_ENTRY)]);

/// One physical component.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhysicalEntity {
    /// entPhysicalIndex.
    pub index: u32,
    pub descr: Option<String>,
    /// entPhysicalVendorType, dotted; `None` for the "unknown" value 0.0.
    pub vendor_type: Option<String>,
    /// entPhysicalContainedIn: the index of the containing entity, 0 at the top.
    pub contained_in: Option<u32>,
    pub class: Option<EntityClass>,
    /// entPhysicalParentRelPos: position among siblings (slot number); -1 when unknown.
    pub parent_rel_pos: Option<i64>,
    pub name: Option<String>,
    pub hardware_rev: Option<String>,
    pub firmware_rev: Option<String>,
    pub software_rev: Option<String>,
    pub serial: Option<String>,
    pub mfg_name: Option<String>,
    pub model_name: Option<String>,
    pub alias: Option<String>,
    pub asset_id: Option<String>,
    /// entPhysicalIsFRU: whether it is a field-replaceable unit.
    pub is_fru: Option<bool>,
}

/// entPhysicalClass (PhysicalClass in RFC 6933).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EntityClass {
    Other,
    Unknown,
    Chassis,
    Backplane,
    Container,
    PowerSupply,
    Fan,
    Sensor,
    Module,
    Port,
    Stack,
    Cpu,
    EnergyObject,
    Battery,
    StorageDrive,
}

impl EntityClass {
    pub fn from_number(n: i64) -> Option<EntityClass> {
        Some(match n {
            1 => EntityClass::Other,
            2 => EntityClass::Unknown,
            3 => EntityClass::Chassis,
            4 => EntityClass::Backplane,
            5 => EntityClass::Container,
            6 => EntityClass::PowerSupply,
            7 => EntityClass::Fan,
            8 => EntityClass::Sensor,
            9 => EntityClass::Module,
            10 => EntityClass::Port,
            11 => EntityClass::Stack,
            12 => EntityClass::Cpu,
            13 => EntityClass::EnergyObject,
            14 => EntityClass::Battery,
            15 => EntityClass::StorageDrive,
            _ => return None,
        })
    }
}

/// The ENTITY-MIB module.
#[derive(Debug)]
pub struct EntityMib;

impl MibModule for EntityMib {
    fn name(&self) -> &'static str {
        "entity"
    }

    fn roots(&self) -> &[Oid] {
        &ROOTS
    }

    fn decode(&self, walked: &[VarBind], out: &mut DeviceData) {
        let mut problems = Problems::default();
        out.entities = decode(walked, &mut problems);
        problems.append_to(&mut out.problems);
    }
}

/// Decodes entPhysicalTable, ordered by entPhysicalIndex; rows with a bad index are skipped.
pub fn decode(walked: &[VarBind], problems: &mut Problems) -> Vec<PhysicalEntity> {
    let mut out = Vec::new();
    for row in table(walked, &oid(ENT_PHYSICAL_ENTRY), problems).values() {
        let Some(index) = row.single_index(problems) else {
            continue;
        };
        let class = row.col(5).int(problems).and_then(|n| {
            let class = EntityClass::from_number(n);
            if class.is_none()
                && let Some(vb) = row.col(5)
            {
                problems.push(&vb.oid, format!("{n} is not a PhysicalClass"));
            }
            class
        });
        let is_fru = row.col(16).int(problems).and_then(|n| match n {
            1 => Some(true),
            2 => Some(false),
            _ => {
                if let Some(vb) = row.col(16) {
                    problems.push(&vb.oid, format!("{n} is not a TruthValue"));
                }
                None
            }
        });
        out.push(PhysicalEntity {
            index,
            descr: row.col(2).text(problems),
            vendor_type: row
                .col(3)
                .object_id(problems)
                .filter(|o| o.0.iter().any(|&arc| arc != 0))
                .map(|o| o.to_string()),
            contained_in: row.col(4).u32(problems),
            class,
            parent_rel_pos: row.col(6).int(problems),
            name: row.col(7).text(problems),
            hardware_rev: row.col(8).text(problems),
            firmware_rev: row.col(9).text(problems),
            software_rev: row.col(10).text(problems),
            serial: row.col(11).text(problems),
            mfg_name: row.col(12).text(problems),
            model_name: row.col(13).text(problems),
            alias: row.col(14).text(problems),
            asset_id: row.col(15).text(problems),
            is_fru,
        });
    }
    out
}

/// The device's own chassis: where its serial, model and firmware are read from.
///
/// The top-level chassis (class chassis, contained in 0) when there is one; on a stack the
/// top entity is the stack and the chassis are its members, so a chassis contained in a
/// top-level stack also counts. Among candidates, one with a serial beats one without (some
/// agents list an empty placeholder chassis first), then the lower index (stack member 1).
pub fn chassis(entities: &[PhysicalEntity]) -> Option<&PhysicalEntity> {
    let by_index: BTreeMap<u32, &PhysicalEntity> = entities.iter().map(|e| (e.index, e)).collect();
    let is_top = |e: &PhysicalEntity| e.contained_in == Some(0);
    let in_top_stack = |e: &PhysicalEntity| {
        e.contained_in
            .and_then(|parent| by_index.get(&parent))
            .is_some_and(|p| p.class == Some(EntityClass::Stack) && is_top(p))
    };
    entities
        .iter()
        .filter(|e| e.class == Some(EntityClass::Chassis) && (is_top(e) || in_top_stack(e)))
        .min_by_key(|e| (!is_top(e), e.serial.is_none(), e.index))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(index: u32, class: EntityClass, contained_in: u32, serial: &str) -> PhysicalEntity {
        PhysicalEntity {
            index,
            descr: None,
            vendor_type: None,
            contained_in: Some(contained_in),
            class: Some(class),
            parent_rel_pos: None,
            name: None,
            hardware_rev: None,
            firmware_rev: None,
            software_rev: None,
            serial: (!serial.is_empty()).then(|| serial.to_string()),
            mfg_name: None,
            model_name: None,
            alias: None,
            asset_id: None,
            is_fru: None,
        }
    }

    #[test]
    fn the_top_level_chassis_with_a_serial_is_the_device() {
        let entities = vec![
            entity(1, EntityClass::Chassis, 0, ""),
            entity(2, EntityClass::Chassis, 0, "SER2"),
            entity(3, EntityClass::Module, 2, "MOD3"),
            entity(4, EntityClass::Chassis, 7, "NESTED"),
        ];
        assert_eq!(chassis(&entities).map(|e| e.index), Some(2));
    }

    #[test]
    fn a_stack_member_is_the_chassis_when_the_stack_is_on_top() {
        let entities = vec![
            entity(1, EntityClass::Stack, 0, ""),
            entity(2001, EntityClass::Chassis, 1, "FOC2"),
            entity(1001, EntityClass::Chassis, 1, "FOC1"),
            entity(1002, EntityClass::PowerSupply, 1001, "PSU"),
        ];
        assert_eq!(chassis(&entities).map(|e| e.index), Some(1001));
    }

    #[test]
    fn no_chassis_means_none() {
        let entities = vec![entity(1, EntityClass::Module, 0, "X")];
        assert_eq!(chassis(&entities), None);
        assert_eq!(chassis(&[]), None);
    }
}
