//! Whole disks from `/sys/block/*`. Each entry is a link into `/sys/devices`, and that path tells
//! the transport (`.../nvme/...`, `.../usb2/...`, `.../ata1/...`) and whether the device is
//! virtual (`/sys/devices/virtual/block/loop0`).
//!
//! Skipped, because they are not hardware or are already counted through the disks under them:
//! everything under `/sys/devices/virtual` (loop, ram, zram, device-mapper, md RAID, nbd), the
//! same names by prefix when the entry is not a link, optical and floppy drives (`sr*`, `fd*`:
//! their size is the medium's), eMMC boot partitions (`mmcblk0boot0`) and hidden per-path NVMe
//! nodes (`nvme0c0n1`, `hidden` = 1). Kept: removable disks, even with no medium (size 0).

use steward_shared::v1::{DiskInfo, SourceStatus};

use super::fs::{FILE_CAP, Root, clean_string};

const DIR: &str = "sys/block";

pub fn collect(root: &Root) -> (Vec<DiskInfo>, SourceStatus) {
    let mut status = SourceStatus {
        source: "disks".into(),
        ..SourceStatus::default()
    };
    let names = match root.list(DIR) {
        Ok(names) => names,
        Err(error) => {
            status.error = Some(format!("/{DIR}: {error}"));
            return (Vec::new(), status);
        }
    };
    let mut disks = Vec::new();
    for name in names {
        let base = format!("{DIR}/{name}");
        let device_path = root.link_target(&base);
        let hidden = root.attr(&format!("{base}/hidden")).as_deref() == Some("1");
        if hidden || !is_hardware_disk(&name, device_path.as_deref()) {
            continue;
        }
        let attr = |rel: &str| root.attr(&format!("{base}/{rel}")).unwrap_or_default();
        let size_bytes = match root.attr(&format!("{base}/size")) {
            None => {
                status.warnings.push(format!("/{base}/size cannot be read"));
                0
            }
            Some(sectors) => size_bytes(&sectors).unwrap_or_else(|error| {
                status.warnings.push(format!("/{base}/size: {error}"));
                0
            }),
        };
        let model = [attr("device/model"), attr("device/name")]
            .into_iter()
            .find(|m| !m.is_empty())
            .unwrap_or_default();
        let serial = [
            attr("device/serial"),
            attr("serial"),
            root.read(&format!("{base}/device/vpd_pg80"), FILE_CAP)
                .map(|page| vpd_serial(&page))
                .unwrap_or_default(),
            attr("device/wwid"),
        ]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or_default();
        disks.push(DiskInfo {
            transport: transport(&name, device_path.as_deref()).to_string(),
            name,
            model,
            serial,
            size_bytes,
            rotational: flag(&attr("queue/rotational")),
            removable: flag(&attr("removable")) == Some(true),
        });
    }
    status.items = u32::try_from(disks.len()).unwrap_or(u32::MAX);
    (disks, status)
}

/// Whether `/sys/block/<name>` (linked to `device_path` inside sysfs, if it is a link) is a
/// physical or virtual-machine disk rather than a software block device; see the module docs.
pub fn is_hardware_disk(name: &str, device_path: Option<&str>) -> bool {
    if device_path.is_some_and(|p| p.contains("/devices/virtual/")) {
        return false;
    }
    const SOFTWARE: [&str; 8] = ["loop", "ram", "zram", "dm-", "md", "nbd", "sr", "fd"];
    if SOFTWARE.iter().any(|prefix| name.starts_with(prefix)) {
        return false;
    }
    if let Some(rest) = name.strip_prefix("mmcblk") {
        return !rest.contains("boot") && !rest.contains("rpmb");
    }
    true
}

/// The bus a disk hangs off, from its name and sysfs device path.
pub fn transport(name: &str, device_path: Option<&str>) -> &'static str {
    let path = device_path.unwrap_or("");
    if name.starts_with("nvme") || path.contains("/nvme") {
        "nvme"
    } else if path.contains("/usb") {
        "usb"
    } else if name.starts_with("mmcblk") || path.contains("/mmc_host/") {
        "mmc"
    } else if name.starts_with("vd") || path.contains("/virtio") {
        "virtio"
    } else if path.contains("/ata") {
        "sata"
    } else if path.contains("/end_device-") || path.contains("/sas_") {
        "sas"
    } else if name.starts_with("sd") || path.contains("/target") {
        "scsi"
    } else {
        ""
    }
}

/// `size` counts 512-byte sectors whatever the device's block size.
pub fn size_bytes(sectors: &str) -> Result<u64, String> {
    let sectors: u64 = sectors
        .trim()
        .parse()
        .map_err(|_| format!("not a sector count: {sectors:?}"))?;
    sectors
        .checked_mul(512)
        .ok_or_else(|| format!("absurd size: {sectors} sectors"))
}

/// The serial from SCSI VPD page 0x80 (unit serial number): a 4-byte header whose bytes 2–3 are
/// the big-endian length, then ASCII, often space-padded.
pub fn vpd_serial(page: &[u8]) -> String {
    match page {
        [_, 0x80, hi, lo, rest @ ..] => {
            let length = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
            clean_string(&rest[..length])
        }
        _ => String::new(),
    }
}

fn flag(value: &str) -> Option<bool> {
    match value {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_devices_are_skipped() {
        for name in [
            "loop0",
            "ram0",
            "zram0",
            "dm-0",
            "md127",
            "nbd0",
            "sr0",
            "mmcblk0boot0",
        ] {
            assert!(!is_hardware_disk(name, None), "{name}");
        }
        assert!(!is_hardware_disk(
            "weird0",
            Some("/sys/devices/virtual/block/weird0")
        ));
        for name in ["sda", "nvme0n1", "vda", "xvda", "mmcblk0", "hda"] {
            assert!(is_hardware_disk(name, None), "{name}");
        }
    }

    #[test]
    fn transports() {
        let cases = [
            (
                "nvme0n1",
                "/sys/devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0/nvme0n1",
                "nvme",
            ),
            (
                "sda",
                "/sys/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda",
                "sata",
            ),
            (
                "sdb",
                "/sys/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb",
                "usb",
            ),
            (
                "sdc",
                "/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/host0/port-0:0/end_device-0:0/target0:0:0/0:0:0:0/block/sdc",
                "sas",
            ),
            (
                "sda",
                "/sys/devices/pci0000:00/0000:00:15.0/0000:03:00.0/host2/target2:0:0/2:0:0:0/block/sda",
                "scsi",
            ),
            (
                "vda",
                "/sys/devices/pci0000:00/0000:00:02.0/virtio1/block/vda",
                "virtio",
            ),
            (
                "mmcblk0",
                "/sys/devices/platform/emmc2bus/fe340000.mmc/mmc_host/mmc0/mmc0:aaaa/block/mmcblk0",
                "mmc",
            ),
            ("xvda", "/sys/devices/vbd-51712/block/xvda", ""),
        ];
        for (name, path, expected) in cases {
            assert_eq!(transport(name, Some(path)), expected, "{path}");
        }
        assert_eq!(transport("sda", None), "scsi");
    }

    #[test]
    fn sizes() {
        assert_eq!(size_bytes("1953525168\n"), Ok(1_000_204_886_016));
        assert!(size_bytes("18446744073709551615").is_err());
        assert!(size_bytes("-1").is_err());
        assert!(size_bytes("").is_err());
    }

    #[test]
    fn vpd_page_80() {
        let mut page = vec![0x00, 0x80, 0x00, 0x14];
        page.extend_from_slice(b"     S3Z1NB0K123456A");
        assert_eq!(vpd_serial(&page), "S3Z1NB0K123456A");
        assert_eq!(
            vpd_serial(&[0x00, 0x80, 0xFF, 0xFF, b'A']),
            "A",
            "length past the data"
        );
        assert_eq!(vpd_serial(&[0x00, 0x83, 0, 1, b'A']), "", "another page");
        assert_eq!(vpd_serial(&[0x00]), "");
    }

    #[test]
    fn missing_sys_block_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let (disks, status) = collect(&Root::new(dir.path()));
        assert!(disks.is_empty());
        assert!(status.error.unwrap().starts_with("/sys/block: "));
    }
}
