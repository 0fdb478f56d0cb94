//! CPU model and topology from `/proc/cpuinfo`, maximum frequency from cpufreq.
//!
//! Topology: threads are `processor` entries, sockets distinct `physical id`s, cores distinct
//! (`physical id`, `core id`) pairs. ARM kernels print neither id, and ARM cores run one thread
//! each, so there one socket holds as many cores as threads. ARM has no `model name` on 64-bit
//! kernels either: the model comes from `CPU implementer`/`CPU part` (or, for parts not in the
//! table, `model name` or the SoC's `Hardware` line). The board lines (`Model`, `Serial` on a
//! Raspberry Pi) are left to the `board` source.

use std::collections::HashSet;
use std::io;

use steward_shared::v1::{CpuInfo, SourceStatus};

use super::fs::Root;

/// `/proc/cpuinfo` is about 1.5 KiB per logical CPU on x86; 4 MiB covers 2,000 of them.
pub const CPUINFO_CAP: u64 = 4 << 20;
pub const CPUINFO: &str = "proc/cpuinfo";
const MAX_FREQ: &str = "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq";

pub fn collect(root: &Root, cpuinfo: &io::Result<String>) -> (CpuInfo, SourceStatus) {
    let (info, error) = match cpuinfo {
        Ok(text) => {
            let max_freq = root.attr(MAX_FREQ);
            (parse(text, max_freq.as_deref()), None)
        }
        Err(error) => (CpuInfo::default(), Some(format!("/{CPUINFO}: {error}"))),
    };
    let status = SourceStatus {
        source: "cpu".into(),
        items: u32::from(info.threads > 0),
        error,
        warnings: Vec::new(),
    };
    (info, status)
}

/// `key: value` pairs of cpuinfo text, keys and values trimmed (keys are tab-padded).
pub fn fields(cpuinfo: &str) -> impl Iterator<Item = (&str, &str)> {
    cpuinfo.lines().filter_map(|line| {
        let (key, value) = line.split_once(':')?;
        Some((key.trim(), value.trim()))
    })
}

/// The first value of `key`, if non-empty.
pub fn first<'a>(cpuinfo: &'a str, key: &str) -> Option<&'a str> {
    fields(cpuinfo).find_map(|(k, v)| (k == key && !v.is_empty()).then_some(v))
}

/// Parses cpuinfo text and the cpufreq maximum (kHz).
pub fn parse(cpuinfo: &str, max_freq_khz: Option<&str>) -> CpuInfo {
    let mut threads = 0u32;
    let mut sockets: HashSet<&str> = HashSet::new();
    let mut cores: HashSet<(&str, &str)> = HashSet::new();
    let mut physical_id = "";
    for (key, value) in fields(cpuinfo) {
        match key {
            // 32-bit ARM kernels also print a `Processor: ARMv7 ...` line: only numbers count.
            "processor" if value.parse::<u32>().is_ok() => {
                threads += 1;
                physical_id = "";
            }
            "physical id" => {
                physical_id = value;
                sockets.insert(value);
            }
            "core id" => {
                cores.insert((physical_id, value));
            }
            _ => {}
        }
    }
    let sockets = match u32::try_from(sockets.len()).unwrap_or(u32::MAX) {
        0 if threads > 0 => 1,
        n => n,
    };
    let cores = match u32::try_from(cores.len()).unwrap_or(u32::MAX) {
        0 => threads,
        n => n,
    };
    let (vendor, model) = vendor_and_model(cpuinfo);
    CpuInfo {
        vendor,
        model,
        sockets,
        cores,
        threads,
        max_mhz: max_freq_khz
            .and_then(|khz| khz.trim().parse::<u64>().ok())
            .map(|khz| khz / 1000)
            .filter(|mhz| *mhz > 0)
            .and_then(|mhz| u32::try_from(mhz).ok()),
    }
}

fn vendor_and_model(cpuinfo: &str) -> (String, String) {
    let model_name = first(cpuinfo, "model name")
        // POWER: `cpu : POWER9 (raw), altivec supported`.
        .or_else(|| first(cpuinfo, "cpu"));
    let implementer = first(cpuinfo, "CPU implementer").and_then(parse_hex);
    let part = first(cpuinfo, "CPU part").and_then(parse_hex);
    if let Some(implementer) = implementer {
        let vendor = arm_implementer(implementer)
            .map(str::to_string)
            .unwrap_or_else(|| format!("0x{implementer:02x}"));
        let model = part
            .and_then(|part| arm_part(implementer, part))
            .map(str::to_string)
            .or_else(|| model_name.map(str::to_string))
            .or_else(|| first(cpuinfo, "Hardware").map(str::to_string))
            .or_else(|| part.map(|part| format!("part 0x{part:03x}")))
            .unwrap_or_default();
        return (vendor, model);
    }
    (
        first(cpuinfo, "vendor_id")
            .or_else(|| first(cpuinfo, "vendor"))
            .unwrap_or_default()
            .to_string(),
        model_name.unwrap_or_default().to_string(),
    )
}

fn parse_hex(text: &str) -> Option<u32> {
    u32::from_str_radix(text.trim_start_matches("0x"), 16).ok()
}

/// ARM's implementer codes (the Arm ARM, MIDR_EL1), as lscpu names them.
fn arm_implementer(code: u32) -> Option<&'static str> {
    Some(match code {
        0x41 => "ARM",
        0x42 => "Broadcom",
        0x43 => "Cavium",
        0x46 => "Fujitsu",
        0x48 => "HiSilicon",
        0x4e => "NVIDIA",
        0x50 => "APM",
        0x51 => "Qualcomm",
        0x53 => "Samsung",
        0x56 => "Marvell",
        0x61 => "Apple",
        0x69 => "Intel",
        0x6d => "Microsoft",
        0xc0 => "Ampere",
        _ => return None,
    })
}

/// Common cores by (implementer, part); others fall back to `model name` or the raw part.
fn arm_part(implementer: u32, part: u32) -> Option<&'static str> {
    Some(match (implementer, part) {
        (0x41, 0xb76) => "ARM1176",
        (0x41, 0xc07) => "Cortex-A7",
        (0x41, 0xc08) => "Cortex-A8",
        (0x41, 0xc09) => "Cortex-A9",
        (0x41, 0xc0f) => "Cortex-A15",
        (0x41, 0xd03) => "Cortex-A53",
        (0x41, 0xd04) => "Cortex-A35",
        (0x41, 0xd05) => "Cortex-A55",
        (0x41, 0xd07) => "Cortex-A57",
        (0x41, 0xd08) => "Cortex-A72",
        (0x41, 0xd09) => "Cortex-A73",
        (0x41, 0xd0a) => "Cortex-A75",
        (0x41, 0xd0b) => "Cortex-A76",
        (0x41, 0xd0c) => "Neoverse-N1",
        (0x41, 0xd0d) => "Cortex-A77",
        (0x41, 0xd40) => "Neoverse-V1",
        (0x41, 0xd41) => "Cortex-A78",
        (0x41, 0xd46) => "Cortex-A510",
        (0x41, 0xd47) => "Cortex-A710",
        (0x41, 0xd49) => "Neoverse-N2",
        (0x41, 0xd4f) => "Neoverse-V2",
        (0xc0, 0xac3) => "Ampere-1",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two sockets, two cores each, two threads per core.
    fn xeon_2s() -> String {
        let mut text = String::new();
        let mut n = 0;
        for socket in 0..2 {
            for _thread in 0..2 {
                for core in 0..2 {
                    text.push_str(&format!(
                        "processor\t: {n}\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz\nphysical id\t: {socket}\nsiblings\t: 4\ncore id\t\t: {core}\ncpu cores\t: 2\nflags\t\t: fpu ht\n\n"
                    ));
                    n += 1;
                }
            }
        }
        text
    }

    #[test]
    fn x86_topology() {
        let cpu = parse(&xeon_2s(), Some("3900000\n"));
        assert_eq!(cpu.vendor, "GenuineIntel");
        assert_eq!(cpu.model, "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz");
        assert_eq!((cpu.sockets, cpu.cores, cpu.threads), (2, 4, 8));
        assert_eq!(cpu.max_mhz, Some(3900));
    }

    #[test]
    fn aarch64_raspberry_pi() {
        let text = "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\nprocessor\t: 1\nCPU implementer\t: 0x41\nCPU part\t: 0xd08\n\nHardware\t: BCM2835\nRevision\t: c03111\nSerial\t\t: 10000000abcdef01\nModel\t\t: Raspberry Pi 4 Model B Rev 1.1\n";
        let cpu = parse(text, Some("1500000"));
        assert_eq!(cpu.vendor, "ARM");
        assert_eq!(cpu.model, "Cortex-A72");
        assert_eq!((cpu.sockets, cpu.cores, cpu.threads), (1, 2, 2));
        assert_eq!(cpu.max_mhz, Some(1500));
    }

    #[test]
    fn armv7_processor_line_is_not_a_cpu() {
        let text = "Processor\t: ARMv7 Processor rev 5 (v7l)\nprocessor\t: 0\nmodel name\t: ARMv7 Processor rev 5 (v7l)\nCPU implementer\t: 0x41\nCPU part\t: 0xc99\n\nHardware\t: Generic AM33XX\n";
        let cpu = parse(text, None);
        assert_eq!(cpu.threads, 1);
        assert_eq!(
            cpu.model, "ARMv7 Processor rev 5 (v7l)",
            "unknown part: model name"
        );
        assert_eq!(cpu.max_mhz, None);
    }

    #[test]
    fn unknown_arm_part_without_model_name() {
        let text = "processor\t: 0\nCPU implementer\t: 0x99\nCPU part\t: 0x123\n";
        let cpu = parse(text, None);
        assert_eq!(
            (cpu.vendor.as_str(), cpu.model.as_str()),
            ("0x99", "part 0x123")
        );
    }

    #[test]
    fn empty_and_bad_input() {
        assert_eq!(parse("", None), CpuInfo::default());
        let cpu = parse("garbage\n\0\0\nprocessor: x\n", Some("-1"));
        assert_eq!(cpu.threads, 0);
        assert_eq!(cpu.max_mhz, None);
        assert_eq!(
            parse("processor: 0\n", Some("99999999999999999999")).max_mhz,
            None
        );
    }
}
