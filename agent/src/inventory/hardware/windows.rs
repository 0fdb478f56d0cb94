//! The live Windows host, which has no `/sys` or `/proc`: what sysinfo gives cheaply (the CPU
//! model and counts, the memory total, the OS name and version), each part still reported in
//! [`PARTS`](super::PARTS) order. The parts the other sources read from Linux files (DMI, memory
//! modules, disks, NICs, virtualization, board) are marked as not available on this platform:
//! a warning, not an error, since nothing failed.
//!
//! Out of scope: WMI (`Win32_ComputerSystemProduct`, `Win32_BIOS`, `Win32_PhysicalMemory`,
//! `Win32_DiskDrive`, ...), which means COM, and the raw SMBIOS table from
//! `GetSystemFirmwareTable` (which the `smbios` parser could read), which means FFI that this
//! crate's `unsafe_code = "forbid"` rules out.
//!
//! [`report`] builds the result from plain [`LiveFacts`], so it compiles and is tested
//! everywhere; only `collect_live` calls sysinfo, and only on Windows.

use steward_shared::v1::{CpuInfo, Hardware, MemoryInfo, OsInfo, SourceStatus};

/// What sysinfo says about the live host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveFacts {
    pub cpu_vendor: String,
    pub cpu_model: String,
    /// Physical cores, where the OS reports them.
    pub cores: Option<u32>,
    /// Logical processors.
    pub threads: u32,
    pub memory_total_bytes: u64,
    pub os: OsInfo,
}

/// The hardware and one status per part, in [`PARTS`](super::PARTS) order.
pub fn report(facts: LiveFacts) -> (Hardware, Vec<SourceStatus>) {
    let mut cpu_warnings = vec![not_available("the socket count and maximum frequency")];
    if facts.cores.is_none() {
        cpu_warnings.push(not_available("the physical core count"));
    }
    let cpu = CpuInfo {
        vendor: facts.cpu_vendor,
        model: facts.cpu_model,
        // Unknown, not one: sysinfo does not count packages.
        sockets: 0,
        cores: facts.cores.unwrap_or(0),
        threads: facts.threads,
        max_mhz: None,
    };
    let memory = MemoryInfo {
        total_bytes: facts.memory_total_bytes,
        dimms: Vec::new(),
    };
    let statuses = vec![
        status(
            "dmi",
            0,
            vec![not_available("vendor, product, serial, UUID and BIOS")],
        ),
        status("cpu", u32::from(cpu.threads > 0), cpu_warnings),
        status(
            "memory",
            u32::from(memory.total_bytes > 0),
            vec![not_available("memory modules")],
        ),
        status("disks", 0, vec![not_available("physical disks")]),
        status("nics", 0, vec![not_available("network adapters")]),
        status(
            "virtualization",
            0,
            vec![not_available("hypervisor and container detection")],
        ),
        status("board", 0, vec![not_available("the board model")]),
        status("os", u32::from(!facts.os.name.is_empty()), Vec::new()),
    ];
    let hardware = Hardware {
        cpu,
        memory,
        os: facts.os,
        ..Hardware::default()
    };
    (hardware, statuses)
}

fn status(source: &str, items: u32, warnings: Vec<String>) -> SourceStatus {
    SourceStatus {
        source: source.to_string(),
        items,
        error: None,
        warnings,
    }
}

fn not_available(what: &str) -> String {
    format!("{what}: not available on Windows (read from Linux files; WMI is not implemented)")
}

/// Reads the live host through sysinfo: CPU identity and counts (no usage sampling), physical
/// memory, the OS strings. No WMI, nothing per process.
#[cfg(windows)]
pub fn collect_live() -> (Hardware, Vec<SourceStatus>) {
    use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

    let kinds = RefreshKind::nothing()
        .with_cpu(CpuRefreshKind::nothing())
        .with_memory(MemoryRefreshKind::nothing().with_ram());
    let system = System::new_with_specifics(kinds).ok();
    let cpus = system.as_ref().map(System::cpus).unwrap_or_default();
    let first = cpus.first();
    let mut arch = System::cpu_arch();
    if arch.is_empty() || arch == "unknown" {
        arch = super::os::uname_arch(std::env::consts::ARCH).to_string();
    }
    let pretty_name = System::long_os_version().unwrap_or_default();
    report(LiveFacts {
        cpu_vendor: first
            .map(|c| c.vendor_id().trim().to_string())
            .unwrap_or_default(),
        cpu_model: first
            .map(|c| c.brand().trim().to_string())
            .unwrap_or_default(),
        cores: System::physical_core_count()
            .ok()
            .and_then(|n| u32::try_from(n).ok()),
        threads: u32::try_from(cpus.len()).unwrap_or(u32::MAX),
        memory_total_bytes: system.as_ref().map_or(0, System::total_memory),
        os: OsInfo {
            id: System::distribution_id(),
            id_like: String::new(),
            name: System::name().unwrap_or_default(),
            version: System::os_version().unwrap_or_default(),
            pretty_name,
            kernel: System::kernel_version().unwrap_or_default(),
            arch,
            machine_id: String::new(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> LiveFacts {
        LiveFacts {
            cpu_vendor: "GenuineIntel".into(),
            cpu_model: "Intel(R) Core(TM) i5-8365U CPU @ 1.60GHz".into(),
            cores: Some(4),
            threads: 8,
            memory_total_bytes: 16 << 30,
            os: OsInfo {
                id: "windows".into(),
                name: "Windows".into(),
                version: "11 (26100)".into(),
                pretty_name: "Windows 11 Pro".into(),
                kernel: "26100".into(),
                arch: "x86_64".into(),
                ..OsInfo::default()
            },
        }
    }

    #[test]
    fn every_part_reports_in_table_order_and_none_fails() {
        let (hardware, statuses) = report(facts());
        let names: Vec<&str> = statuses.iter().map(|s| s.source.as_str()).collect();
        assert_eq!(names, super::super::PARTS);
        assert!(statuses.iter().all(|s| s.error.is_none()), "{statuses:?}");
        assert_eq!(
            (
                hardware.cpu.cores,
                hardware.cpu.threads,
                hardware.cpu.sockets
            ),
            (4, 8, 0)
        );
        assert_eq!(hardware.memory.total_bytes, 16 << 30);
        assert_eq!(hardware.os.pretty_name, "Windows 11 Pro");
    }

    #[test]
    fn linux_only_parts_say_they_are_not_available() {
        let (hardware, statuses) = report(facts());
        assert!(hardware.disks.is_empty() && hardware.nics.is_empty() && hardware.board.is_none());
        for status in &statuses {
            match status.source.as_str() {
                "os" => assert!(status.warnings.is_empty() && status.items == 1),
                "cpu" | "memory" => assert_eq!(status.items, 1),
                _ => assert_eq!(status.items, 0, "{status:?}"),
            }
            if status.source != "os" {
                assert!(
                    status
                        .warnings
                        .iter()
                        .any(|w| w.contains("not available on Windows")),
                    "{status:?}"
                );
            }
        }
    }

    #[test]
    fn an_unknown_core_count_is_zero_with_a_warning() {
        let (hardware, statuses) = report(LiveFacts {
            cores: None,
            ..facts()
        });
        assert_eq!(hardware.cpu.cores, 0);
        assert_eq!(statuses[1].warnings.len(), 2);
    }
}
