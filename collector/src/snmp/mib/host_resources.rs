//! HOST-RESOURCES-MIB (RFC 2790): CPU load per processor and the storage table (memory,
//! swap, file systems). Implemented by net-snmp on hosts and by many appliances and switches.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::snmp::types::{Oid, VarBind};

use super::table::{Cell, oid, table};
use super::{DeviceData, MibModule, Problems};

/// `hrProcessorLoad` (the only hrProcessorTable column worth walking).
const HR_PROCESSOR_LOAD: &[u32] = &[1, 3, 6, 1, 2, 1, 25, 3, 3, 1, 2];
/// `hrProcessorEntry`.
const HR_PROCESSOR_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 25, 3, 3, 1];
/// `hrStorageEntry`.
const HR_STORAGE_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 25, 2, 3, 1];
/// `hrStorageTypes`: hrStorageType values are `hrStorageTypes.N`.
const HR_STORAGE_TYPES: &[u32] = &[1, 3, 6, 1, 2, 1, 25, 2, 1];

static ROOTS: LazyLock<Vec<Oid>> =
    LazyLock::new(|| vec![oid(HR_PROCESSOR_LOAD), oid(HR_STORAGE_ENTRY)]);

/// CPU load as the agent reports it: per processor, the average over the last minute.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Processors {
    pub cpus: Vec<CpuLoad>,
    /// Mean of `cpus`, rounded to 0.01; `None` without any.
    pub average_pct: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CpuLoad {
    /// hrDeviceIndex of the processor.
    pub index: u32,
    pub load_pct: u8,
}

/// One hrStorageTable row, in bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Storage {
    pub index: u32,
    pub kind: StorageKind,
    pub descr: Option<String>,
    /// Bytes per allocation unit, as reported.
    pub allocation_units: Option<u64>,
    pub size_bytes: Option<u64>,
    pub used_bytes: Option<u64>,
    /// used / size × 100, rounded to 0.01; `None` when the size is 0 or unknown.
    pub used_pct: Option<f64>,
}

/// hrStorageType, named after `hrStorageTypes` (RFC 2790); vendor types are `other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StorageKind {
    Other,
    Ram,
    VirtualMemory,
    FixedDisk,
    RemovableDisk,
    FloppyDisk,
    CompactDisc,
    RamDisk,
    FlashMemory,
    NetworkDisk,
}

impl StorageKind {
    fn from_type(type_oid: Option<&Oid>) -> StorageKind {
        let n = type_oid
            .and_then(|o| o.suffix(&oid(HR_STORAGE_TYPES)))
            .and_then(|arcs| match arcs {
                [n] => Some(*n),
                _ => None,
            });
        match n {
            Some(2) => StorageKind::Ram,
            Some(3) => StorageKind::VirtualMemory,
            Some(4) => StorageKind::FixedDisk,
            Some(5) => StorageKind::RemovableDisk,
            Some(6) => StorageKind::FloppyDisk,
            Some(7) => StorageKind::CompactDisc,
            Some(8) => StorageKind::RamDisk,
            Some(9) => StorageKind::FlashMemory,
            Some(10) => StorageKind::NetworkDisk,
            _ => StorageKind::Other,
        }
    }
}

/// The HOST-RESOURCES-MIB module.
#[derive(Debug)]
pub struct HostResourcesMib;

impl MibModule for HostResourcesMib {
    fn name(&self) -> &'static str {
        "host-resources"
    }

    fn roots(&self) -> &[Oid] {
        &ROOTS
    }

    fn decode(&self, walked: &[VarBind], out: &mut DeviceData) {
        let mut problems = Problems::default();
        out.processors = decode_processors(walked, &mut problems);
        out.storage = decode_storage(walked, &mut problems);
        problems.append_to(&mut out.problems);
    }
}

/// hrProcessorLoad per processor, and their mean. A load outside 0..=100 is reported and
/// left out of the mean rather than skewing it.
pub fn decode_processors(walked: &[VarBind], problems: &mut Problems) -> Processors {
    let mut cpus = Vec::new();
    for row in table(walked, &oid(HR_PROCESSOR_ENTRY), problems).values() {
        let Some(cell) = row.col(2) else { continue };
        let Some(index) = row.single_index(problems) else {
            continue;
        };
        let Some(load) = Some(cell).int(problems) else {
            continue;
        };
        match u8::try_from(load).ok().filter(|l| *l <= 100) {
            Some(load_pct) => cpus.push(CpuLoad { index, load_pct }),
            None => problems.push(&cell.oid, format!("load {load}% is not a percentage")),
        }
    }
    let average_pct = (!cpus.is_empty()).then(|| {
        let sum: f64 = cpus.iter().map(|c| f64::from(c.load_pct)).sum();
        round2(sum / cpus.len() as f64)
    });
    Processors { cpus, average_pct }
}

/// hrStorageTable in bytes. Sizes need the allocation unit: a row whose unit is missing, zero
/// or negative keeps its type and name but no byte counts (and is reported).
pub fn decode_storage(walked: &[VarBind], problems: &mut Problems) -> Vec<Storage> {
    let mut out = Vec::new();
    for row in table(walked, &oid(HR_STORAGE_ENTRY), problems).values() {
        let Some(index) = row.single_index(problems) else {
            continue;
        };
        let units_cell = row.col(4);
        let units = units_cell.int(problems);
        let allocation_units = match units {
            Some(u) if u > 0 => u64::try_from(u).ok(),
            Some(u) => {
                if let Some(vb) = units_cell {
                    problems.push(
                        &vb.oid,
                        format!("allocation unit {u} is not positive; sizes left out"),
                    );
                }
                None
            }
            None => {
                if let Some(vb) = row.col(5).or(row.col(6)) {
                    problems.push(&vb.oid, "no hrStorageAllocationUnits; sizes left out");
                }
                None
            }
        };
        let bytes = |cell: Option<&VarBind>, problems: &mut Problems| {
            let units = allocation_units?;
            Some(integer32_units(cell.int(problems)?).saturating_mul(units))
        };
        let size_bytes = bytes(row.col(5), problems);
        let used_bytes = bytes(row.col(6), problems);
        let used_pct = match (size_bytes, used_bytes) {
            (Some(size), Some(used)) if size > 0 => Some(round2(used as f64 / size as f64 * 100.0)),
            _ => None,
        };
        out.push(Storage {
            index,
            kind: StorageKind::from_type(row.col(2).object_id(problems).as_ref()),
            descr: row.col(3).text(problems),
            allocation_units,
            size_bytes,
            used_bytes,
            used_pct,
        });
    }
    out
}

/// hrStorageSize and hrStorageUsed are Integer32 counts of units. Agents on volumes over
/// 2^31 units (8 TiB at 4 KiB) overflow them into negative numbers instead of raising the
/// unit; read as the unsigned 32-bit number they wrapped from, as monitoring tools do.
fn integer32_units(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_else(|_| n.rem_euclid(1 << 32).unsigned_abs())
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::types::parse_walk;

    #[test]
    fn processor_load_is_averaged_and_bad_values_left_out() {
        let walked = parse_walk(
            "1.3.6.1.2.1.25.3.3.1.2.196608 = INTEGER: 10\n\
             1.3.6.1.2.1.25.3.3.1.2.196609 = INTEGER: 15\n\
             1.3.6.1.2.1.25.3.3.1.2.196610 = INTEGER: 150\n\
             1.3.6.1.2.1.25.3.3.1.2.196611 = STRING: busy\n",
        )
        .unwrap();
        let mut problems = Problems::default();
        let p = decode_processors(&walked, &mut problems);
        assert_eq!(p.cpus.len(), 2);
        assert_eq!(p.average_pct, Some(12.5));
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn storage_guards_against_bad_units_and_zero_size() {
        let walked = parse_walk(
            "1.3.6.1.2.1.25.2.3.1.2.1 = OID: 1.3.6.1.2.1.25.2.1.4\n\
             1.3.6.1.2.1.25.2.3.1.3.1 = STRING: /\n\
             1.3.6.1.2.1.25.2.3.1.4.1 = INTEGER: 4096\n\
             1.3.6.1.2.1.25.2.3.1.5.1 = INTEGER: 1000\n\
             1.3.6.1.2.1.25.2.3.1.6.1 = INTEGER: 250\n\
             1.3.6.1.2.1.25.2.3.1.2.2 = OID: 1.3.6.1.2.1.25.2.1.3\n\
             1.3.6.1.2.1.25.2.3.1.4.2 = INTEGER: 1024\n\
             1.3.6.1.2.1.25.2.3.1.5.2 = INTEGER: 0\n\
             1.3.6.1.2.1.25.2.3.1.6.2 = INTEGER: 0\n\
             1.3.6.1.2.1.25.2.3.1.2.3 = OID: 1.3.6.1.4.1.9.9.1\n\
             1.3.6.1.2.1.25.2.3.1.4.3 = INTEGER: 0\n\
             1.3.6.1.2.1.25.2.3.1.5.3 = INTEGER: 100\n\
             1.3.6.1.2.1.25.2.3.1.4.4 = INTEGER: -4096\n\
             1.3.6.1.2.1.25.2.3.1.5.4 = INTEGER: 100\n",
        )
        .unwrap();
        let mut problems = Problems::default();
        let s = decode_storage(&walked, &mut problems);
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].kind, StorageKind::FixedDisk);
        assert_eq!(s[0].size_bytes, Some(4_096_000));
        assert_eq!(s[0].used_pct, Some(25.0));
        assert_eq!(s[1].kind, StorageKind::VirtualMemory);
        assert_eq!((s[1].size_bytes, s[1].used_pct), (Some(0), None));
        assert_eq!((s[2].kind, s[2].size_bytes), (StorageKind::Other, None));
        assert_eq!(s[3].size_bytes, None);
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn negative_sizes_from_integer32_overflow_are_read_unsigned() {
        assert_eq!(integer32_units(-1), 4_294_967_295);
        assert_eq!(integer32_units(-2_147_483_648), 2_147_483_648);
        assert_eq!(integer32_units(5), 5);
    }
}
