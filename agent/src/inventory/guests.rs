//! Virtual machines defined on this host, when it is a hypervisor the agent can read: libvirt
//! (KVM/QEMU: `/etc/libvirt/qemu/*.xml`, `<name>` and `<uuid>`) and Proxmox VE
//! (`/etc/pve/qemu-server/<vmid>.conf`, `name:` and `smbios1: uuid=`). A guest's UUID is the SMBIOS
//! UUID its own agent reports, so the collector can record that the guest `runs_on` this host.
//! Hosts without either directory report nothing and no source status.

use std::path::Path;

use steward_shared::v1::{SourceStatus, VirtualGuest};

use super::hardware::fs::Root;

/// A domain definition is a few kilobytes.
const MAX_BYTES: u64 = 1024 * 1024;
/// More guests than any host runs; the rest are ignored with a warning.
const MAX_GUESTS: usize = 4096;

const LIBVIRT_DIR: &str = "etc/libvirt/qemu";
const PROXMOX_DIR: &str = "etc/pve/qemu-server";

pub fn collect(root: &Path) -> (Vec<VirtualGuest>, Option<SourceStatus>) {
    let root = Root::new(root);
    let mut guests = Vec::new();
    let mut warnings = Vec::new();
    let mut present = false;
    for (dir, extension, parse, source) in [
        (
            LIBVIRT_DIR,
            ".xml",
            parse_libvirt as fn(&str) -> Option<(String, String)>,
            "libvirt",
        ),
        (PROXMOX_DIR, ".conf", parse_proxmox, "proxmox"),
    ] {
        let Ok(mut names) = root.list(dir) else {
            continue;
        };
        present = true;
        names.sort();
        for name in names.iter().filter(|n| n.ends_with(extension)) {
            if guests.len() >= MAX_GUESTS {
                warnings.push(format!(
                    "more than {MAX_GUESTS} guests; the rest are not listed"
                ));
                break;
            }
            let path = format!("{dir}/{name}");
            match root.read_text(&path, MAX_BYTES) {
                Ok(text) => match parse(&text) {
                    Some((guest, uuid)) => guests.push(VirtualGuest {
                        name: guest,
                        uuid,
                        source: source.into(),
                    }),
                    None => warnings.push(format!("/{path}: no name and uuid found")),
                },
                Err(error) => warnings.push(format!("/{path}: {error}")),
            }
        }
    }
    if !present {
        return (Vec::new(), None);
    }
    let status = SourceStatus {
        source: "guests".into(),
        items: u32::try_from(guests.len()).unwrap_or(u32::MAX),
        error: None,
        warnings,
    };
    (guests, Some(status))
}

/// `<name>` and `<uuid>` of a libvirt domain definition (top-level elements).
pub fn parse_libvirt(xml: &str) -> Option<(String, String)> {
    let element = |tag: &str| {
        let open = format!("<{tag}>");
        let start = xml.find(&open)? + open.len();
        let end = xml[start..].find(&format!("</{tag}>"))? + start;
        Some(xml[start..end].trim().to_string())
    };
    let name = element("name")?;
    let uuid = element("uuid")?;
    (!name.is_empty() && uuid.len() == 36).then_some((name, uuid.to_ascii_lowercase()))
}

/// `name:` and the `uuid=` of `smbios1:` in a Proxmox VM config (the current section only, not
/// snapshots, which follow in `[snapshot]` sections).
pub fn parse_proxmox(conf: &str) -> Option<(String, String)> {
    let mut name = None;
    let mut uuid = None;
    for line in conf.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            break;
        }
        if let Some(value) = line.strip_prefix("name:") {
            name = Some(value.trim().to_string());
        } else if let Some(value) = line.strip_prefix("smbios1:") {
            uuid = value
                .split(',')
                .find_map(|part| part.trim().strip_prefix("uuid="))
                .map(|u| u.trim().to_ascii_lowercase());
        }
    }
    match (name, uuid) {
        (Some(name), Some(uuid)) if uuid.len() == 36 => Some((name, uuid)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libvirt_and_proxmox_definitions_give_name_and_uuid() {
        let xml = "<domain type='kvm'>\n  <name>web-01</name>\n  <uuid>4DEA22B3-1D52-D8F3-2516-782E98AB3FA0</uuid>\n  <devices><disk><name>x</name></disk></devices>\n</domain>\n";
        assert_eq!(
            parse_libvirt(xml),
            Some((
                "web-01".into(),
                "4dea22b3-1d52-d8f3-2516-782e98ab3fa0".into()
            ))
        );
        assert_eq!(parse_libvirt("<domain><name>x</name></domain>"), None);
        let conf = "boot: order=scsi0\nname: db-01\nsmbios1: uuid=7c5e1b2a-0d7e-4f51-9a11-2b6c3d4e5f60,manufacturer=QEMU\n\n[pre-upgrade]\nname: db-01-old\nsmbios1: uuid=00000000-0000-0000-0000-000000000001\n";
        assert_eq!(
            parse_proxmox(conf),
            Some((
                "db-01".into(),
                "7c5e1b2a-0d7e-4f51-9a11-2b6c3d4e5f60".into()
            ))
        );
        assert_eq!(parse_proxmox("name: x\n"), None);
    }

    #[test]
    fn a_host_without_hypervisor_configs_reports_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(collect(dir.path()), (Vec::new(), None));
        let qemu = dir.path().join(LIBVIRT_DIR);
        std::fs::create_dir_all(&qemu).unwrap();
        std::fs::write(
            qemu.join("a.xml"),
            "<domain><name>a</name><uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid></domain>",
        )
        .unwrap();
        std::fs::write(qemu.join("broken.xml"), "<domain>").unwrap();
        let (guests, status) = collect(dir.path());
        assert_eq!(guests.len(), 1);
        let status = status.unwrap();
        assert_eq!(status.items, 1);
        assert!(
            status.warnings[0].contains("broken.xml"),
            "{:?}",
            status.warnings
        );
    }
}
