//! Hardware identity: the raw SMBIOS table (`/sys/firmware/dmi/tables/DMI`) through
//! `smbios::dimms` and the memory part that wraps it, and the DMI sysfs attributes
//! (`/sys/class/dmi/id/*`) through `dmi::parse`, each attribute one NUL-separated field of the
//! same input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steward_agent::inventory::hardware::fs::FileRead;
use steward_agent::inventory::hardware::{dmi, memory, smbios};

fuzz_target!(|data: &[u8]| {
    let _ = smbios::structures(data);
    let _ = smbios::dimms(data);
    let _ = memory::parse(
        Ok("MemTotal:       16384 kB\n".to_string()),
        &FileRead::Bytes(data.to_vec()),
    );

    let mut fields = data.split(|b| *b == 0);
    let reads: Vec<(&str, FileRead)> = dmi::FIELDS
        .iter()
        .map(|field| {
            let read = match fields.next() {
                Some(bytes) => FileRead::Bytes(bytes.to_vec()),
                None => FileRead::Missing,
            };
            (*field, read)
        })
        .collect();
    let _ = dmi::parse(&reads);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = memory::mem_total(text);
    }
});
