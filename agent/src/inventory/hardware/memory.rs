//! Memory: the total from `/proc/meminfo` (what the kernel manages, a little under what is
//! installed) and the modules from the SMBIOS table, which only root can read. An unreadable
//! table is a warning; a corrupt one is the source's error, with the total still reported.

use std::io;

use steward_shared::v1::{Dimm, MemoryInfo, SourceStatus};

use super::fs::{FILE_CAP, FileRead, Root};
use super::smbios::{self, TABLE_CAP};

const MEMINFO: &str = "proc/meminfo";
const SMBIOS_TABLE: &str = "sys/firmware/dmi/tables/DMI";

pub fn collect(root: &Root) -> (MemoryInfo, SourceStatus) {
    let meminfo = root.read_text(MEMINFO, FILE_CAP);
    let table = FileRead::from_result(root.read(SMBIOS_TABLE, TABLE_CAP));
    parse(meminfo, &table)
}

/// Combines `/proc/meminfo` (or its read error) and the SMBIOS table's read outcome.
pub fn parse(meminfo: io::Result<String>, table: &FileRead) -> (MemoryInfo, SourceStatus) {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let total_bytes = match meminfo
        .map_err(|e| e.to_string())
        .and_then(|t| mem_total(&t))
    {
        Ok(total) => total,
        Err(error) => {
            errors.push(format!("/{MEMINFO}: {error}"));
            0
        }
    };
    let dimms: Vec<Dimm> = match table {
        FileRead::Bytes(bytes) => match smbios::dimms(bytes) {
            Ok(dimms) => dimms,
            Err(error) => {
                errors.push(format!("/{SMBIOS_TABLE}: {error}"));
                Vec::new()
            }
        },
        // No SMBIOS (ARM boards, some VMs and containers): nothing to list, nothing to say.
        FileRead::Missing => Vec::new(),
        FileRead::Denied => {
            warnings.push(format!(
                "memory modules not listed: /{SMBIOS_TABLE} needs root; run the agent as root or grant CAP_DAC_READ_SEARCH"
            ));
            Vec::new()
        }
        FileRead::Failed(error) => {
            warnings.push(format!(
                "memory modules not listed: cannot read /{SMBIOS_TABLE}: {error}"
            ));
            Vec::new()
        }
    };
    let status = SourceStatus {
        source: "memory".into(),
        // The total is one record, each module another.
        items: u32::from(total_bytes > 0) + u32::try_from(dimms.len()).unwrap_or(u32::MAX),
        error: (!errors.is_empty()).then(|| errors.join("; ")),
        warnings,
    };
    (MemoryInfo { total_bytes, dimms }, status)
}

/// `MemTotal` in bytes (the file says kB, meaning KiB).
pub fn mem_total(meminfo: &str) -> Result<u64, String> {
    let line = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .ok_or("no MemTotal line")?;
    let mut fields = line.split_whitespace();
    let value: u64 = fields
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("MemTotal is not a number: {:?}", line.trim()))?;
    let scale = match fields.next() {
        Some("kB") => 1024,
        None => 1,
        Some(unit) => return Err(format!("MemTotal has an unknown unit {unit:?}")),
    };
    value
        .checked_mul(scale)
        .ok_or_else(|| format!("MemTotal is absurd: {value} {scale}-byte units"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO_TEXT: &str = "MemTotal:       24683656 kB\nMemFree:        20523988 kB\n";

    #[test]
    fn total_from_meminfo() {
        assert_eq!(mem_total(MEMINFO_TEXT), Ok(24_683_656 * 1024));
    }

    #[test]
    fn bad_meminfo() {
        assert!(mem_total("MemFree: 1 kB\n").is_err());
        assert!(mem_total("MemTotal: lots kB\n").is_err());
        assert!(mem_total("MemTotal: 1 MB\n").is_err());
        assert!(mem_total("MemTotal: 18446744073709551615 kB\n").is_err());
    }

    #[test]
    fn unreadable_table_is_a_warning() {
        let (memory, status) = parse(Ok(MEMINFO_TEXT.into()), &FileRead::Denied);
        assert_eq!(memory.total_bytes, 24_683_656 * 1024);
        assert_eq!(status.error, None);
        assert_eq!(status.items, 1);
        assert!(
            status.warnings[0].contains("needs root"),
            "{:?}",
            status.warnings
        );
    }

    #[test]
    fn corrupt_table_is_an_error_naming_the_file_and_keeps_the_total() {
        let (memory, status) = parse(
            Ok(MEMINFO_TEXT.into()),
            &FileRead::Bytes(vec![17, 0x5C, 0, 0, 1]),
        );
        assert_eq!(memory.total_bytes, 24_683_656 * 1024);
        let error = status.error.unwrap();
        assert!(
            error.starts_with("/sys/firmware/dmi/tables/DMI: "),
            "{error}"
        );
    }

    #[test]
    fn missing_meminfo_is_an_error_naming_the_file() {
        let missing = io::Error::from(io::ErrorKind::NotFound);
        let (memory, status) = parse(Err(missing), &FileRead::Missing);
        assert_eq!(memory.total_bytes, 0);
        assert!(status.error.unwrap().starts_with("/proc/meminfo: "));
        assert!(status.warnings.is_empty());
    }

    #[test]
    fn modules_from_the_table() {
        let table = smbios::build::server_table();
        let (memory, status) = parse(Ok(MEMINFO_TEXT.into()), &FileRead::Bytes(table));
        assert_eq!(memory.dimms.len(), 3);
        assert_eq!(status.items, 4);
    }
}
