//! The raw SMBIOS structure table (`/sys/firmware/dmi/tables/DMI`), for what sysfs does not
//! decode: memory devices (type 17). Every offset is bounds-checked: a corrupt or truncated table
//! is an [`SmbiosError`], never a panic or an endless loop (each structure advances the cursor by
//! at least six bytes).
//!
//! Layout (DMTF DSP0134): each structure is a header (type `u8`, length `u8` including the
//! header, handle `u16` LE), the rest of its formatted area, then a string set: NUL-terminated
//! strings ended by one more NUL (`\0\0` when there are none). String fields hold a 1-based index
//! into that set, 0 meaning "none". Type 127 ends the table.

use steward_shared::v1::Dimm;

/// The table is a few KiB on real machines; more than this is not a table.
pub const TABLE_CAP: u64 = 1 << 20;

const END_OF_TABLE: u8 = 127;
const MEMORY_DEVICE: u8 = 17;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmbiosError {
    #[error("structure at offset {offset} is cut off: a header needs 4 bytes, {left} left")]
    TruncatedHeader { offset: usize, left: usize },
    #[error(
        "structure at offset {offset} (type {kind}) declares length {length}, less than its header"
    )]
    BadLength { offset: usize, kind: u8, length: u8 },
    #[error("structure at offset {offset} (type {kind}) needs {length} bytes, {left} left")]
    TruncatedStructure {
        offset: usize,
        kind: u8,
        length: u8,
        left: usize,
    },
    #[error(
        "strings of the structure at offset {offset} (type {kind}) have no terminating double NUL"
    )]
    UnterminatedStrings { offset: usize, kind: u8 },
}

/// One structure: its formatted area (header included) and its string set.
#[derive(Debug, Clone, Copy)]
pub struct Structure<'a> {
    pub kind: u8,
    formatted: &'a [u8],
    strings: &'a [u8],
}

impl<'a> Structure<'a> {
    pub fn byte(&self, offset: usize) -> Option<u8> {
        self.formatted.get(offset).copied()
    }

    pub fn word(&self, offset: usize) -> Option<u16> {
        let bytes = self.formatted.get(offset..offset.checked_add(2)?)?;
        Some(u16::from_le_bytes([bytes[0], bytes[1]]))
    }

    pub fn dword(&self, offset: usize) -> Option<u32> {
        let bytes = self.formatted.get(offset..offset.checked_add(4)?)?;
        Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// The string a field at `offset` refers to, trimmed and lossily decoded; empty for index 0,
    /// an index past the set, or a field beyond the structure's length (older SMBIOS versions).
    pub fn string(&self, offset: usize) -> String {
        let index = match self.byte(offset) {
            Some(0) | None => return String::new(),
            Some(index) => usize::from(index),
        };
        self.strings
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .nth(index - 1)
            .map(super::fs::clean_string)
            .unwrap_or_default()
    }
}

/// All structures up to the end-of-table marker (or the end of the data, which is where the
/// kernel's copy of a table without a marker ends).
pub fn structures(table: &[u8]) -> Result<Vec<Structure<'_>>, SmbiosError> {
    let mut found = Vec::new();
    let mut offset = 0;
    while offset < table.len() {
        let left = table.len() - offset;
        if left < 4 {
            return Err(SmbiosError::TruncatedHeader { offset, left });
        }
        let kind = table[offset];
        let length = table[offset + 1];
        if length < 4 {
            return Err(SmbiosError::BadLength {
                offset,
                kind,
                length,
            });
        }
        let strings_start = offset + usize::from(length);
        if strings_start > table.len() {
            return Err(SmbiosError::TruncatedStructure {
                offset,
                kind,
                length,
                left,
            });
        }
        let strings_end = table[strings_start..]
            .windows(2)
            .position(|pair| pair == [0, 0])
            .map(|at| strings_start + at)
            .ok_or(SmbiosError::UnterminatedStrings { offset, kind })?;
        found.push(Structure {
            kind,
            formatted: &table[offset..strings_start],
            strings: &table[strings_start..strings_end],
        });
        if kind == END_OF_TABLE {
            break;
        }
        offset = strings_end + 2;
    }
    Ok(found)
}

/// The populated memory devices (type 17) of a table, in table order; empty slots are skipped.
pub fn dimms(table: &[u8]) -> Result<Vec<Dimm>, SmbiosError> {
    Ok(structures(table)?
        .iter()
        .filter(|s| s.kind == MEMORY_DEVICE)
        .filter_map(decode_memory_device)
        .collect())
}

/// Decodes one type 17 structure; `None` for an empty slot (size 0).
/// Offsets: 0x0C size, 0x10 device locator, 0x11 bank locator, 0x12 memory type, 0x15 speed,
/// 0x17 manufacturer, 0x18 serial, 0x1A part number, 0x1C extended size (2.7+), 0x20 configured
/// speed (2.7+), 0x54 extended speed and 0x58 extended configured speed (3.3+).
fn decode_memory_device(s: &Structure) -> Option<Dimm> {
    let size_bytes = match s.word(0x0C) {
        Some(0) => return None,
        None | Some(0xFFFF) => 0,
        // 0x7FFF: the size (in MiB, bit 31 reserved) is in the extended size field.
        Some(0x7FFF) => u64::from(s.dword(0x1C).unwrap_or(0) & 0x7FFF_FFFF) << 20,
        // Bit 15 set: the unit is KiB, otherwise MiB.
        Some(size) if size & 0x8000 != 0 => u64::from(size & 0x7FFF) << 10,
        Some(size) => u64::from(size) << 20,
    };
    let speed = |word_at: usize, dword_at: usize| match s.word(word_at) {
        None | Some(0) => None,
        Some(0xFFFF) => s.dword(dword_at).filter(|v| *v != 0),
        Some(v) => Some(u32::from(v)),
    };
    let mut locator = s.string(0x10);
    if locator.is_empty() {
        locator = s.string(0x11);
    }
    Some(Dimm {
        locator,
        size_bytes,
        kind: memory_type(s.byte(0x12).unwrap_or(0)).to_string(),
        // The module's rated speed; what the firmware configured when the rating is unknown.
        speed_mts: speed(0x15, 0x54).or_else(|| speed(0x20, 0x58)),
        manufacturer: s.string(0x17),
        serial: s.string(0x18),
        part_number: s.string(0x1A),
    })
}

/// SMBIOS memory type (type 17, offset 0x12) as dmidecode names it; empty when unknown.
pub fn memory_type(code: u8) -> &'static str {
    match code {
        0x01 => "Other",
        0x03 => "DRAM",
        0x04 => "EDRAM",
        0x05 => "VRAM",
        0x06 => "SRAM",
        0x07 => "RAM",
        0x08 => "ROM",
        0x09 => "Flash",
        0x0A => "EEPROM",
        0x0B => "FEPROM",
        0x0C => "EPROM",
        0x0D => "CDRAM",
        0x0E => "3DRAM",
        0x0F => "SDRAM",
        0x10 => "SGRAM",
        0x11 => "RDRAM",
        0x12 => "DDR",
        0x13 => "DDR2",
        0x14 => "DDR2 FB-DIMM",
        0x18 => "DDR3",
        0x19 => "FBD2",
        0x1A => "DDR4",
        0x1B => "LPDDR",
        0x1C => "LPDDR2",
        0x1D => "LPDDR3",
        0x1E => "LPDDR4",
        0x1F => "Logical non-volatile device",
        0x20 => "HBM",
        0x21 => "HBM2",
        0x22 => "DDR5",
        0x23 => "LPDDR5",
        0x24 => "HBM3",
        _ => "",
    }
}

/// Builds SMBIOS tables for tests and fixtures, so the bytes are explained rather than pasted.
#[cfg(test)]
pub(crate) mod build {
    /// One structure: `formatted` is everything after the 4-byte header; `strings` the string set
    /// (referenced 1-based from the formatted area).
    pub fn structure(kind: u8, handle: u16, formatted: &[u8], strings: &[&str]) -> Vec<u8> {
        let length = u8::try_from(4 + formatted.len()).unwrap();
        let mut out = vec![kind, length];
        out.extend_from_slice(&handle.to_le_bytes());
        out.extend_from_slice(formatted);
        if strings.is_empty() {
            out.push(0);
        }
        for s in strings {
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
        out.push(0);
        out
    }

    /// The fields of a type 17 structure this agent reads.
    pub struct MemoryDevice<'a> {
        /// Offset 0x0C: MiB, `0x8000 | KiB`, `0x7FFF` for "see extended size", 0 for an empty slot.
        pub size: u16,
        pub extended_size_mib: u32,
        pub memory_type: u8,
        pub speed: u16,
        pub configured_speed: u16,
        pub locator: &'a str,
        pub bank: &'a str,
        pub manufacturer: &'a str,
        pub serial: &'a str,
        pub part_number: &'a str,
    }

    /// A full SMBIOS 3.3 type 17 structure (length 0x5C).
    pub fn memory_device(handle: u16, d: &MemoryDevice) -> Vec<u8> {
        let mut f = vec![0u8; 0x5C - 4];
        let mut put = |offset: usize, bytes: &[u8]| {
            f[offset - 4..offset - 4 + bytes.len()].copy_from_slice(bytes);
        };
        put(0x04, &0x1000u16.to_le_bytes()); // physical memory array handle
        put(0x06, &0xFFFEu16.to_le_bytes()); // no error information
        put(0x08, &72u16.to_le_bytes()); // total width (ECC)
        put(0x0A, &64u16.to_le_bytes()); // data width
        put(0x0C, &d.size.to_le_bytes());
        put(0x0E, &[0x09]); // form factor: DIMM
        put(0x12, &[d.memory_type]);
        put(0x13, &0x0080u16.to_le_bytes()); // type detail: synchronous
        put(0x15, &d.speed.to_le_bytes());
        put(0x1B, &[2]); // attributes: rank 2
        put(0x1C, &d.extended_size_mib.to_le_bytes());
        put(0x20, &d.configured_speed.to_le_bytes());
        // String fields hold 1-based indexes into the string set; an empty string is index 0
        // (SMBIOS strings are never empty: "\0\0" would end the set). Asset tag (0x19): none.
        let mut strings = Vec::new();
        for (offset, text) in [
            (0x10, d.locator),
            (0x11, d.bank),
            (0x17, d.manufacturer),
            (0x18, d.serial),
            (0x1A, d.part_number),
        ] {
            if !text.is_empty() {
                strings.push(text);
                put(offset, &[u8::try_from(strings.len()).unwrap()]);
            }
        }
        structure(17, handle, &f, &strings)
    }

    pub fn end_of_table(handle: u16) -> Vec<u8> {
        structure(127, handle, &[], &[])
    }

    /// The table of `tests/fixtures/hardware/dell-poweredge-r740/root/sys/firmware/dmi/tables/DMI`:
    /// a BIOS (type 0) and system (type 1) structure, a memory array (type 16), two 32 GiB DDR4
    /// RDIMMs (sized through the extended size field), an empty slot, a 16 GiB module of unknown
    /// rated speed, and the end marker.
    pub fn server_table() -> Vec<u8> {
        let mut table = Vec::new();
        table.extend(structure(
            0,
            0x0000,
            // Vendor, version (strings 1-2), start segment 0xF000, release date (string 3),
            // ROM size, characteristics (8 bytes).
            &[1, 2, 0x00, 0xF0, 3, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0],
            &["Dell Inc.", "2.19.1", "06/26/2023"],
        ));
        table.extend(structure(
            1,
            0x0100,
            // Manufacturer, product, version, serial (strings 1-4), UUID (16 bytes), wake-up
            // type (power switch), SKU and family (none).
            &[
                1, 2, 3, 4, 0x4C, 0x4C, 0x45, 0x44, 0x00, 0x58, 0x4B, 0x10, 0x80, 0x32, 0xB7, 0xC0,
                0x4F, 0x51, 0x48, 0x33, 0x06, 0, 0,
            ],
            &["Dell Inc.", "PowerEdge R740", "Not Specified", "7XK2QH3"],
        ));
        table.extend(structure(
            16,
            0x1000,
            // SMBIOS 2.1 physical memory array: system board, system memory, multi-bit ECC,
            // maximum capacity "see extended", no error information, 24 devices.
            &[0x03, 0x03, 0x06, 0x00, 0x00, 0x00, 0x80, 0xFE, 0xFF, 24, 0],
            &[],
        ));
        // 32 GiB does not fit the size word (MiB up to 0x7FFE): it is in the extended size.
        let rdimm = |locator, bank, serial| MemoryDevice {
            size: 0x7FFF,
            extended_size_mib: 32 * 1024,
            memory_type: 0x1A,
            speed: 2933,
            configured_speed: 2666,
            locator,
            bank,
            manufacturer: "Hynix Semiconductor",
            serial,
            part_number: "HMA84GR7CJR4N-WM    ",
        };
        table.extend(memory_device(
            0x1100,
            &rdimm("A1", "P0 Channel A", "32F1A0B2"),
        ));
        table.extend(memory_device(
            0x1101,
            &rdimm("B1", "P1 Channel A", "32F1A0C7"),
        ));
        table.extend(memory_device(
            0x1102,
            &MemoryDevice {
                size: 0,
                extended_size_mib: 0,
                memory_type: 0x02,
                speed: 0,
                configured_speed: 0,
                locator: "A2",
                bank: "P0 Channel B",
                manufacturer: "Not Specified",
                serial: "Not Specified",
                part_number: "Not Specified",
            },
        ));
        table.extend(memory_device(
            0x1103,
            &MemoryDevice {
                size: 16 * 1024,
                extended_size_mib: 0,
                memory_type: 0x1A,
                speed: 0xFFFF, // unknown here; the configured speed stands in
                configured_speed: 2666,
                locator: "B2",
                bank: "P1 Channel B",
                manufacturer: "Samsung",
                serial: "0x1C2D3E4F",
                part_number: "M393A8G40AB2-CWE",
            },
        ));
        table.extend(end_of_table(0xFEFF));
        table
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    #[test]
    fn server_table_dimms() {
        let dimms = dimms(&server_table()).unwrap();
        assert_eq!(dimms.len(), 3, "the empty slot is skipped");
        assert_eq!(
            dimms[0],
            Dimm {
                locator: "A1".into(),
                size_bytes: 32 << 30,
                kind: "DDR4".into(),
                speed_mts: Some(2933),
                manufacturer: "Hynix Semiconductor".into(),
                serial: "32F1A0B2".into(),
                part_number: "HMA84GR7CJR4N-WM".into(),
            }
        );
        assert_eq!(dimms[2].size_bytes, 16 << 30);
        assert_eq!(dimms[2].speed_mts, Some(2666));
    }

    /// The committed fixture is exactly what the builder documents; STEWARD_UPDATE_GOLDEN=1
    /// rewrites it.
    #[test]
    fn server_fixture_table_is_the_built_one() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/hardware/dell-poweredge-r740/root/sys/firmware/dmi/tables/DMI");
        let table = server_table();
        if std::env::var_os("STEWARD_UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &table).unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), table);
    }

    #[test]
    fn every_truncation_is_an_error_or_a_prefix_never_a_panic() {
        let table = server_table();
        let full = dimms(&table).unwrap();
        let boundaries: Vec<usize> = {
            let mut ends = vec![0];
            let mut at = 0;
            for s in structures(&table).unwrap() {
                at += s.formatted.len() + s.strings.len() + 2;
                ends.push(at);
            }
            ends
        };
        for cut in 0..table.len() {
            match dimms(&table[..cut]) {
                Ok(found) => {
                    assert!(boundaries.contains(&cut), "cut {cut} parsed");
                    assert_eq!(found[..], full[..found.len()]);
                }
                Err(_) => assert!(!boundaries.contains(&cut), "cut {cut} failed"),
            }
        }
    }

    #[test]
    fn bad_length_is_an_error() {
        assert_eq!(
            dimms(&[17, 2, 0, 0, 0, 0]).unwrap_err(),
            SmbiosError::BadLength {
                offset: 0,
                kind: 17,
                length: 2
            }
        );
    }

    #[test]
    fn length_past_the_end_is_an_error() {
        let error = dimms(&[17, 0xFF, 0, 0, 0, 0, 0, 0]).unwrap_err();
        assert!(
            matches!(error, SmbiosError::TruncatedStructure { .. }),
            "{error}"
        );
    }

    #[test]
    fn garbage_never_panics() {
        // A cheap deterministic fuzz: xorshift bytes, with plausible type/length bytes mixed in.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for round in 0..2000 {
            let len = round % 300;
            let mut bytes = Vec::with_capacity(len);
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                bytes.push((state >> 24) as u8);
            }
            if len > 2 {
                bytes[0] = 17;
            }
            let _ = dimms(&bytes);
        }
    }

    #[test]
    fn old_short_structures_and_bad_string_indexes() {
        // An SMBIOS 2.1 type 17 (length 0x15): no extended size, no configured speed.
        let mut formatted = vec![0u8; 0x15 - 4];
        formatted[0x0C - 4..0x0E - 4].copy_from_slice(&(0x8000u16 | 512).to_le_bytes()); // 512 KiB
        formatted[0x10 - 4] = 9; // device locator: past the string set, so empty
        formatted[0x11 - 4] = 1; // bank locator, the fallback
        formatted[0x12 - 4] = 0x0F; // SDRAM
        let table = structure(17, 1, &formatted, &["DIMM0"]);
        let dimms = dimms(&table).unwrap();
        assert_eq!(dimms[0].locator, "DIMM0");
        assert_eq!(dimms[0].size_bytes, 512 << 10);
        assert_eq!(dimms[0].kind, "SDRAM");
        assert_eq!(dimms[0].speed_mts, None);
        assert_eq!(dimms[0].manufacturer, "");
    }

    #[test]
    fn absurd_extended_size_does_not_overflow() {
        let table = memory_device(
            1,
            &MemoryDevice {
                size: 0x7FFF,
                extended_size_mib: u32::MAX,
                memory_type: 0x22,
                speed: 0xFFFF,
                configured_speed: 0,
                locator: "X",
                bank: "",
                manufacturer: "",
                serial: "",
                part_number: "",
            },
        );
        let dimms = dimms(&table).unwrap();
        assert_eq!(dimms[0].size_bytes, u64::from(0x7FFF_FFFFu32) << 20);
        assert_eq!(dimms[0].kind, "DDR5");
        assert_eq!(dimms[0].speed_mts, None);
    }

    #[test]
    fn non_utf8_strings_are_lossy() {
        let mut d = memory_device(
            1,
            &MemoryDevice {
                size: 1024,
                extended_size_mib: 0,
                memory_type: 0x1A,
                speed: 2400,
                configured_speed: 2400,
                locator: "A1",
                bank: "",
                manufacturer: "Micron?",
                serial: "",
                part_number: "",
            },
        );
        let at = d.windows(7).position(|w| w == b"Micron?").unwrap() + 6;
        d[at] = 0xFF;
        assert_eq!(dimms(&d).unwrap()[0].manufacturer, "Micron\u{fffd}");
    }
}
