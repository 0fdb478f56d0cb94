//! Inventory: what the host is and what runs on it, each source reading only under the root it
//! is given ("/" on a real host, a fixture tree in tests).
//!
//! [`collect`] runs every part: hardware (one source per part), software (one source per package
//! manager) and the host's asset file. A failing source is reported in `sources` with its error
//! while the others still report. [`content_hash`] identifies the content, so an unchanged
//! inventory is sent as a small marker instead of in full.

pub mod asset;
pub mod guests;
pub mod hardware;
pub mod schedule;
pub mod software;

use std::path::Path;

use steward_shared::v1::Inventory;

/// Takes the full inventory of the host under `root`; `asset_file` is read under `root` too.
pub fn collect(root: &Path, asset_file: &Path) -> Inventory {
    let (hardware, mut sources) = hardware::collect(root);
    let (software, software_sources) = software::collect(root);
    sources.extend(software_sources);
    let (asset, asset_status) = asset::collect(root, asset_file);
    sources.extend(asset_status);
    let (guests, guests_status) = guests::collect(root);
    sources.extend(guests_status);
    Inventory {
        hardware,
        software,
        asset,
        sources,
        guests,
    }
}

/// Hex SHA-256 of the inventory's postcard encoding (protocol v1): equal content, equal hash.
pub fn content_hash(inventory: &Inventory) -> String {
    let bytes = postcard::to_stdvec(inventory).unwrap_or_default();
    hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes))
}

/// The JSON view of an inventory: the wire structure, plus the hardware identity (`vendor`,
/// `model`, `serial`, `uuid`, and the board's for ARM gateways) at the top of `hardware`, where
/// scripts look for it.
pub fn json_view(inventory: &Inventory) -> serde_json::Value {
    let mut value = serde_json::to_value(inventory).unwrap_or(serde_json::Value::Null);
    let hw = &inventory.hardware;
    let board = hw.board.clone().unwrap_or_default();
    let pick = |system: &str, board: &str| {
        if system.is_empty() {
            board.to_string()
        } else {
            system.to_string()
        }
    };
    if let Some(hardware) = value.get_mut("hardware").and_then(|h| h.as_object_mut()) {
        hardware.insert("vendor".into(), hw.system.vendor.clone().into());
        hardware.insert(
            "model".into(),
            pick(&hw.system.product, &board.model).into(),
        );
        hardware.insert(
            "serial".into(),
            pick(&hw.system.serial, &board.serial).into(),
        );
        hardware.insert("uuid".into(), hw.system.uuid.clone().into());
    }
    value
}

/// A short human view, for `steward-agent inventory`.
pub fn human_summary(inventory: &Inventory) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let hw = &inventory.hardware;
    let s = &hw.system;
    let _ = writeln!(out, "system    {} {} {}", s.vendor, s.product, s.version);
    let _ = writeln!(
        out,
        "serial    {}  uuid {}  chassis type {}",
        dash(&s.serial),
        dash(&s.uuid),
        s.chassis_type
    );
    let _ = writeln!(
        out,
        "bios      {} {} ({})",
        s.bios_vendor, s.bios_version, s.bios_date
    );
    let _ = writeln!(
        out,
        "cpu       {} ({} sockets, {} cores, {} threads)",
        hw.cpu.model, hw.cpu.sockets, hw.cpu.cores, hw.cpu.threads
    );
    let _ = writeln!(
        out,
        "memory    {:.1} GiB, {} modules readable",
        hw.memory.total_bytes as f64 / 1_073_741_824.0,
        hw.memory.dimms.len()
    );
    for d in &hw.disks {
        let _ = writeln!(
            out,
            "disk      {:<10} {} {:.0} GB {} serial {}",
            d.name,
            d.model,
            d.size_bytes as f64 / 1e9,
            dash(&d.transport),
            dash(&d.serial)
        );
    }
    for n in &hw.nics {
        let kind = if n.virtual_nic { "virtual" } else { "physical" };
        let _ = writeln!(
            out,
            "nic       {:<10} {} {} {}",
            n.name,
            dash(&n.mac),
            kind,
            n.driver
        );
    }
    let v = &hw.virtualization;
    let _ = writeln!(
        out,
        "virtual   hypervisor {}  container {}",
        dash(&v.hypervisor),
        dash(&v.container)
    );
    if let Some(board) = &hw.board {
        let _ = writeln!(
            out,
            "board     {} serial {}",
            board.model,
            dash(&board.serial)
        );
    }
    let _ = writeln!(
        out,
        "os        {} ({} {}), kernel {}, {}",
        hw.os.pretty_name, hw.os.id, hw.os.version, hw.os.kernel, hw.os.arch
    );
    let _ = writeln!(out, "software  {} packages", inventory.software.len());
    for source in &inventory.sources {
        match &source.error {
            Some(error) => {
                let _ = writeln!(out, "source    {:<14} FAILED: {error}", source.source);
            }
            None => {
                let _ = writeln!(
                    out,
                    "source    {:<14} {} items",
                    source.source, source.items
                );
            }
        }
        for warning in &source.warnings {
            let _ = writeln!(out, "          {:<14} note: {warning}", "");
        }
    }
    if let Some(asset) = &inventory.asset {
        let _ = writeln!(
            out,
            "asset     tag {}  owner {}  location {}  warranty end {}",
            dash(&asset.asset_tag),
            dash(&asset.owner),
            dash(&asset.location),
            dash(&asset.warranty_end)
        );
    }
    out
}

fn dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_follows_the_content() {
        let mut inventory = Inventory::default();
        let empty = content_hash(&inventory);
        assert_eq!(empty.len(), 64);
        assert_eq!(empty, content_hash(&Inventory::default()));
        inventory
            .software
            .push(steward_shared::v1::SoftwarePackage {
                name: "openssl".into(),
                ..Default::default()
            });
        assert_ne!(empty, content_hash(&inventory));
    }
}
