//! Hardware inventory: one file per part, each reading only under the root it is given and
//! handing what it read to a pure parser that tests feed with fixture text. A part that fails is
//! reported in its [`SourceStatus`] (with the file it could not use) and the others are still
//! filled. [`PARTS`] lists the parts in the order [`collect`] reports them.
//!
//! `/proc/cpuinfo` is read once and shared by `cpu`, `virtualization` and `board`; the DMI values
//! feed `virtualization` too.
//!
//! A live Windows host has none of these files: there [`collect`] reports what sysinfo gives
//! instead ([`windows`]). Any other root is read as a Linux tree on every platform.

pub mod board;
pub mod cpu;
pub mod disks;
pub mod dmi;
pub mod fs;
pub mod memory;
pub mod nics;
pub mod os;
pub mod smbios;
pub mod virt;
pub mod windows;

use std::path::Path;

use steward_shared::v1::{Hardware, SourceStatus};

use fs::Root;

/// Every part's source name, in report order.
pub const PARTS: [&str; 8] = [
    "dmi",
    "cpu",
    "memory",
    "disks",
    "nics",
    "virtualization",
    "board",
    "os",
];

/// Reads the hardware under `root` ("/" on a real host): one [`SourceStatus`] per part, in
/// [`PARTS`] order.
pub fn collect(root: &Path) -> (Hardware, Vec<SourceStatus>) {
    #[cfg(windows)]
    if root == Path::new("/") {
        return windows::collect_live();
    }
    let root = Root::new(root);
    let cpuinfo = root.read_text(cpu::CPUINFO, cpu::CPUINFO_CAP);
    let cpuinfo_text = cpuinfo.as_deref().unwrap_or("");
    let (system, dmi_status) = dmi::collect(&root);
    let (cpu, cpu_status) = cpu::collect(&root, &cpuinfo);
    let (memory, memory_status) = memory::collect(&root);
    let (disks, disks_status) = disks::collect(&root);
    let (nics, nics_status) = nics::collect(&root);
    let (os, os_status) = os::collect(&root);
    let (virtualization, virt_status) = virt::collect(&root, &system, cpuinfo_text, &os.kernel);
    let (board, board_status) = board::collect(&root, cpuinfo_text);
    let hardware = Hardware {
        system,
        cpu,
        memory,
        disks,
        nics,
        virtualization,
        board,
        os,
    };
    let statuses = vec![
        dmi_status,
        cpu_status,
        memory_status,
        disks_status,
        nics_status,
        virt_status,
        board_status,
        os_status,
    ];
    (hardware, statuses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_parts_table() {
        let dir = tempfile::tempdir().unwrap();
        let (_, statuses) = collect(dir.path());
        let names: Vec<&str> = statuses.iter().map(|s| s.source.as_str()).collect();
        assert_eq!(names, PARTS);
    }

    /// On an empty root every part still reports, and the failures name their files.
    #[test]
    fn an_empty_root_fails_parts_without_panicking() {
        let dir = tempfile::tempdir().unwrap();
        let (hardware, statuses) = collect(dir.path());
        assert_eq!(hardware.disks.len(), 0);
        let failed: Vec<(&str, &str)> = statuses
            .iter()
            .filter_map(|s| Some((s.source.as_str(), s.error.as_deref()?)))
            .collect();
        let names: Vec<&str> = failed.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["cpu", "memory", "disks", "nics", "os"]);
        for (_, error) in failed {
            assert!(error.contains('/'), "{error}");
        }
    }
}
