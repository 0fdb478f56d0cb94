//! CI classes and their class-specific attributes, derived from a host's inventory.
//!
//! | class | from |
//! |---|---|
//! | `iot_gateway` | an ARM board (`/proc/device-tree` model) |
//! | `virtual_machine` | a detected hypervisor |
//! | `laptop` | SMBIOS chassis type portable, laptop, notebook, sub-notebook, tablet, convertible, detachable |
//! | `workstation` | SMBIOS chassis type desktop, low-profile desktop, mini tower, tower, all-in-one, space-saving, mini PC, stick PC |
//! | `server` | anything else an agent reports (rack, blade, tower servers, unknown chassis) |
//! | `network_device` | SNMP-polled devices |
//! | `service` | business services, created by admins |

use serde_json::{Value, json};
use steward_shared::v1::Inventory;

pub const SERVER: &str = "server";
pub const WORKSTATION: &str = "workstation";
pub const LAPTOP: &str = "laptop";
pub const VIRTUAL_MACHINE: &str = "virtual_machine";
pub const IOT_GATEWAY: &str = "iot_gateway";
pub const NETWORK_DEVICE: &str = "network_device";
pub const SERVICE: &str = "service";

/// Every class, for validating filters.
pub const ALL: &[&str] = &[
    SERVER,
    WORKSTATION,
    LAPTOP,
    VIRTUAL_MACHINE,
    IOT_GATEWAY,
    NETWORK_DEVICE,
    SERVICE,
];

const LAPTOP_CHASSIS: &[u8] = &[8, 9, 10, 14, 30, 31, 32];
const WORKSTATION_CHASSIS: &[u8] = &[3, 4, 6, 7, 13, 15, 35, 36];

/// The class of a host and the attributes that matter for that class.
pub fn classify(inventory: &Inventory) -> (&'static str, Value) {
    let hw = &inventory.hardware;
    let memory_gib = (hw.memory.total_bytes as f64 / 1_073_741_824.0 * 10.0).round() / 10.0;
    let common = json!({
        "cpu": hw.cpu.model,
        "cpu_threads": hw.cpu.threads,
        "memory_gib": memory_gib,
        "os": hw.os.pretty_name,
    });
    let with = |extra: Value| {
        let mut merged = common.clone();
        if let (Some(target), Some(extra)) = (merged.as_object_mut(), extra.as_object()) {
            for (key, value) in extra {
                target.insert(key.clone(), value.clone());
            }
        }
        merged
    };
    if let Some(board) = hw.board.as_ref().filter(|b| !b.model.is_empty()) {
        return (
            IOT_GATEWAY,
            with(json!({ "board_model": board.model, "board_serial": board.serial })),
        );
    }
    if !hw.virtualization.hypervisor.is_empty() {
        return (
            VIRTUAL_MACHINE,
            with(
                json!({ "hypervisor": hw.virtualization.hypervisor, "vendor": hw.system.vendor, "product": hw.system.product }),
            ),
        );
    }
    let chassis = hw.system.chassis_type;
    let hardware = json!({
        "vendor": hw.system.vendor,
        "product": hw.system.product,
        "serial": hw.system.serial,
        "chassis_type": chassis,
        "disks": hw.disks.len(),
    });
    let class = if LAPTOP_CHASSIS.contains(&chassis) {
        LAPTOP
    } else if WORKSTATION_CHASSIS.contains(&chassis) {
        WORKSTATION
    } else {
        SERVER
    };
    (class, with(hardware))
}

#[cfg(test)]
mod tests {
    use steward_shared::v1::{BoardInfo, Hardware, SystemInfo, Virtualization};

    use super::*;

    fn with(hardware: Hardware) -> Inventory {
        Inventory {
            hardware,
            ..Default::default()
        }
    }

    #[test]
    fn classes_follow_board_hypervisor_and_chassis() {
        let chassis = |t: u8| {
            with(Hardware {
                system: SystemInfo {
                    chassis_type: t,
                    ..Default::default()
                },
                ..Default::default()
            })
        };
        assert_eq!(classify(&chassis(10)).0, LAPTOP);
        assert_eq!(classify(&chassis(3)).0, WORKSTATION);
        assert_eq!(classify(&chassis(23)).0, SERVER);
        assert_eq!(classify(&chassis(0)).0, SERVER);
        let vm = with(Hardware {
            virtualization: Virtualization {
                hypervisor: "vmware".into(),
                container: String::new(),
            },
            ..Default::default()
        });
        let (class, attributes) = classify(&vm);
        assert_eq!(
            (class, attributes["hypervisor"].as_str()),
            (VIRTUAL_MACHINE, Some("vmware"))
        );
        let pi = with(Hardware {
            board: Some(BoardInfo {
                model: "Raspberry Pi 4 Model B Rev 1.4".into(),
                serial: "10000000abcdef01".into(),
            }),
            ..Default::default()
        });
        let (class, attributes) = classify(&pi);
        assert_eq!(class, IOT_GATEWAY);
        assert_eq!(attributes["board_serial"], "10000000abcdef01");
    }
}
