//! Inventory per CI: the newest full inventory, its software as rows, hardware identity on the
//! CI, asset and warranty data, and the changes between inventories recorded in the CI's history.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use steward_shared::v1::{AssetInfo, Inventory, SoftwarePackage};

use super::{Store, StoreError};
use crate::inventory::assets::{AssetImport, ImportOutcome, Unmatched};
use crate::inventory::{junk, version};

/// A decoded inventory report's content, as the store keeps it.
#[derive(Debug, Clone)]
pub struct InventoryRecord {
    pub content_hash: String,
    /// `None`: the agent says its inventory is unchanged since `content_hash`.
    pub inventory: Option<Box<Inventory>>,
}

/// A CI's inventory as `ci show` displays it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CiInventory {
    pub collected_at: i64,
    /// The last time the agent confirmed it (a full inventory or an unchanged marker).
    pub confirmed_at: i64,
    pub content_hash: String,
    pub inventory: Inventory,
}

/// One host running a package, for `ci software NAME`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SoftwareHit {
    pub ci_id: i64,
    pub ci_name: String,
    pub name: String,
    pub version: String,
    pub arch: String,
    pub source: String,
}

/// One CI's warranty, for `warranty list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WarrantyRow {
    pub ci_id: i64,
    pub ci_name: String,
    pub vendor: String,
    pub product: String,
    pub serial: String,
    pub asset_tag: String,
    pub supplier: String,
    pub support_contract: String,
    /// `YYYY-MM-DD`.
    pub warranty_end: String,
}

/// Entry in a CI's change history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: i64,
    /// `agent`, `snmp`, `import` or `admin`.
    pub source: String,
    pub kind: String,
    pub summary: String,
    pub detail: serde_json::Value,
}

/// What `ci show` adds to a CI from its inventory: the inventory, asset data, recent history.
pub(super) type CiExtras = (Option<CiInventory>, Option<AssetInfo>, Vec<HistoryEntry>);

/// How many history entries `ci show` returns.
const HISTORY_SHOWN: i64 = 50;

impl Store {
    /// Hosts whose package `name` is installed, optionally only those older than `below` by
    /// the package manager's own version ordering (Debian, RPM, apk, pacman).
    pub async fn find_software(
        &self,
        name: String,
        below: Option<String>,
    ) -> Result<Vec<SoftwareHit>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT s.ci_id, c.name, s.name, s.version, s.arch, s.source
                     FROM ({}) h JOIN ci_software s ON s.ci_id = h.ci_id AND s.name = ?1
                     JOIN cis c ON c.id = s.ci_id
                     ORDER BY c.name, s.ci_id, s.source, s.arch",
                super::software_index::CANDIDATES
            ))?;
            let hits = stmt
                .query_map([&name], |r| {
                    Ok(SoftwareHit {
                        ci_id: r.get(0)?,
                        ci_name: r.get(1)?,
                        name: r.get(2)?,
                        version: r.get(3)?,
                        arch: r.get(4)?,
                        source: r.get(5)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(match below {
                None => hits,
                Some(below) => hits
                    .into_iter()
                    .filter(|hit| {
                        version::compare(
                            version::Scheme::for_source(&hit.source),
                            &hit.version,
                            &below,
                        )
                        .is_lt()
                    })
                    .collect(),
            })
        })
        .await
    }

    /// CIs with a warranty end date, soonest first; `until` (`YYYY-MM-DD`, inclusive) keeps
    /// only those ending by then (which includes the expired ones).
    pub async fn warranties(&self, until: Option<String>) -> Result<Vec<WarrantyRow>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT c.id, c.name, c.vendor, c.product, c.serial, a.asset_tag, a.supplier,
                        a.support_contract, a.warranty_end
                 FROM ci_assets a JOIN cis c ON c.id = a.ci_id
                 WHERE a.warranty_end != '' AND (?1 IS NULL OR a.warranty_end <= ?1)
                 ORDER BY a.warranty_end, c.name, c.id",
            )?;
            let rows = stmt
                .query_map([&until], |r| {
                    Ok(WarrantyRow {
                        ci_id: r.get(0)?,
                        ci_name: r.get(1)?,
                        vendor: r.get(2)?,
                        product: r.get(3)?,
                        serial: r.get(4)?,
                        asset_tag: r.get(5)?,
                        supplier: r.get(6)?,
                        support_contract: r.get(7)?,
                        warranty_end: r.get(8)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Applies an asset import in one transaction: each row is matched to a CI by serial, else
    /// by asset tag; matched rows update the CI's asset data (recorded in its history), and
    /// unmatched rows are returned. All or nothing: the caller has already refused a file with
    /// errors unless told to skip bad rows.
    pub async fn import_assets(&self, import: AssetImport) -> Result<ImportOutcome, StoreError> {
        self.inner
            .writer
            .write(move |conn| import_in_tx(conn, &import))
            .await
    }
}

/// Stores an inventory report for `ci_id`. Returns true when the agent should send its full
/// inventory: it sent an "unchanged" marker for content this collector does not have.
pub(super) fn store_in_tx(
    conn: &Connection,
    ci_id: i64,
    agent_num: i64,
    protocol_version: u16,
    collected_at: i64,
    now: i64,
    record: &InventoryRecord,
) -> Result<bool, StoreError> {
    let current: Option<(String, i64)> = conn
        .prepare_cached("SELECT content_hash, collected_at FROM ci_inventory WHERE ci_id = ?1")?
        .query_row([ci_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some(inventory) = &record.inventory else {
        return Ok(match current {
            Some((hash, _)) if hash == record.content_hash => {
                conn.prepare_cached("UPDATE ci_inventory SET received_at = ?2 WHERE ci_id = ?1")?
                    .execute(params![ci_id, now])?;
                false
            }
            _ => true,
        });
    };
    if let Some((hash, stored_at)) = &current {
        // A late, older inventory never replaces a newer one; the same content only confirms.
        if *stored_at > collected_at || *hash == record.content_hash {
            if *hash == record.content_hash {
                conn.prepare_cached("UPDATE ci_inventory SET received_at = ?2 WHERE ci_id = ?1")?
                    .execute(params![ci_id, now])?;
            }
            return Ok(false);
        }
    }
    let previous: Option<Inventory> = match current {
        None => None,
        Some(_) => {
            let (version, body): (i64, Vec<u8>) = conn.query_row(
                "SELECT version, body FROM ci_inventory WHERE ci_id = ?1",
                [ci_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            decode_inventory(version, &body)
        }
    };
    let body = postcard::to_stdvec(inventory.as_ref())
        .map_err(|error| StoreError::Task(format!("cannot encode the inventory: {error}")))?;
    conn.prepare_cached(
        "INSERT INTO ci_inventory (ci_id, agent, content_hash, collected_at, received_at, version, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (ci_id) DO UPDATE SET agent = excluded.agent, content_hash = excluded.content_hash,
             collected_at = excluded.collected_at, received_at = excluded.received_at,
             version = excluded.version, body = excluded.body",
    )?
    .execute(params![
        ci_id,
        agent_num,
        record.content_hash,
        collected_at,
        now,
        protocol_version,
        body
    ])?;
    replace_software(conn, ci_id, now, previous.as_ref(), inventory)?;
    update_hardware(conn, ci_id, now, previous.as_ref(), inventory)?;
    super::relations::sync_guests(conn, ci_id, &inventory.guests)?;
    if let Some(asset) = &inventory.asset {
        // Only what changed in the host's file since its last inventory: an unchanged file
        // must not undo newer data from an import.
        let before = previous
            .as_ref()
            .and_then(|p| p.asset.clone())
            .unwrap_or_default();
        apply_asset(conn, ci_id, now, &changed_fields(&before, asset), "agent")?;
    }
    Ok(false)
}

fn decode_inventory(version: i64, body: &[u8]) -> Option<Inventory> {
    match version {
        1 => postcard::from_bytes::<Inventory>(body).ok(),
        _ => None,
    }
}

type PackageKey = (String, String, String); // source, name, arch

fn by_key(packages: &[SoftwarePackage]) -> BTreeMap<PackageKey, &SoftwarePackage> {
    packages
        .iter()
        .map(|p| ((p.source.clone(), p.name.clone(), p.arch.clone()), p))
        .collect()
}

/// Rewrites the CI's software rows only where they changed, and records what was installed,
/// removed and changed version (the first inventory is recorded as a count only).
fn replace_software(
    conn: &Connection,
    ci_id: i64,
    now: i64,
    previous: Option<&Inventory>,
    inventory: &Inventory,
) -> Result<(), StoreError> {
    let old_rows: Vec<SoftwarePackage> = {
        let mut stmt = conn.prepare_cached(
            "SELECT source, name, arch, version FROM ci_software WHERE ci_id = ?1",
        )?;
        stmt.query_map([ci_id], |r| {
            Ok(SoftwarePackage {
                source: r.get(0)?,
                name: r.get(1)?,
                arch: r.get(2)?,
                version: r.get(3)?,
                ..Default::default()
            })
        })?
        .collect::<Result<_, _>>()?
    };
    let old = by_key(&old_rows);
    let new = by_key(&inventory.software);
    super::software_index::apply_diff(
        conn,
        ci_id,
        &old.keys().map(|k| k.1.as_str()).collect(),
        &new.keys().map(|k| k.1.as_str()).collect(),
        now,
    )?;
    let mut installed = Vec::new();
    let mut removed = Vec::new();
    let mut changed = Vec::new();
    let mut delete = conn.prepare_cached(
        "DELETE FROM ci_software WHERE ci_id = ?1 AND source = ?2 AND name = ?3 AND arch = ?4",
    )?;
    let mut insert = conn.prepare_cached(
        "INSERT OR REPLACE INTO ci_software (ci_id, source, name, arch, version, publisher, installed_at, size_bytes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for (key, package) in &old {
        if !new.contains_key(key) {
            delete.execute(params![ci_id, key.0, key.1, key.2])?;
            removed.push(format!("{} {}", package.name, package.version));
        }
    }
    for (key, package) in &new {
        match old.get(key) {
            Some(before) if before.version == package.version => continue,
            Some(before) => {
                delete.execute(params![ci_id, key.0, key.1, key.2])?;
                changed.push(format!(
                    "{} {} -> {}",
                    package.name, before.version, package.version
                ));
            }
            None => installed.push(format!("{} {}", package.name, package.version)),
        }
        insert.execute(params![
            ci_id,
            package.source,
            package.name,
            package.arch,
            package.version,
            package.publisher,
            package.installed_at_ms,
            package.size_bytes.and_then(|b| i64::try_from(b).ok()),
        ])?;
    }
    if previous.is_none() && old_rows.is_empty() {
        if !inventory.software.is_empty() {
            history(
                conn,
                ci_id,
                now,
                "software",
                &format!("first inventory: {} packages", inventory.software.len()),
                serde_json::json!({}),
            )?;
        }
        return Ok(());
    }
    if installed.is_empty() && removed.is_empty() && changed.is_empty() {
        return Ok(());
    }
    let summary = format!(
        "software: {} installed, {} removed, {} changed version",
        installed.len(),
        removed.len(),
        changed.len()
    );
    history(
        conn,
        ci_id,
        now,
        "software",
        &summary,
        serde_json::json!({ "installed": installed, "removed": removed, "changed": changed }),
    )
}

/// Copies the hardware identity onto the CI and records hardware changes.
fn update_hardware(
    conn: &Connection,
    ci_id: i64,
    now: i64,
    previous: Option<&Inventory>,
    inventory: &Inventory,
) -> Result<(), StoreError> {
    let system = &inventory.hardware.system;
    let serial = junk::usable_serial(&system.serial)
        .or_else(|| {
            junk::usable_serial(&inventory.hardware.board.clone().unwrap_or_default().serial)
        })
        .unwrap_or_default();
    let uuid = junk::usable_uuid(&system.uuid).unwrap_or_default();
    let (class, attributes) = crate::cmdb::classes::classify(inventory);
    let old_class: String = conn
        .prepare_cached("SELECT class FROM cis WHERE id = ?1")?
        .query_row([ci_id], |r| r.get(0))?;
    conn.prepare_cached(
        "UPDATE cis SET vendor = ?2, product = ?3, serial = ?4, hw_uuid = ?5, class = ?6, attributes = ?7
         WHERE id = ?1",
    )?
    .execute(params![
        ci_id,
        system.vendor,
        system.product,
        serial,
        uuid,
        class,
        attributes.to_string()
    ])?;
    // The first inventory sets the class; later changes are history.
    if old_class != class && previous.is_some() {
        history(
            conn,
            ci_id,
            now,
            "attributes",
            &format!("class {old_class} -> {class}"),
            serde_json::json!({ "class": { "from": old_class, "to": class } }),
        )?;
    }
    let Some(previous) = previous else {
        return Ok(());
    };
    let before = &previous.hardware;
    let after = &inventory.hardware;
    let mut changes = serde_json::Map::new();
    let mut note = |what: &str, old: String, new: String| {
        if old != new {
            changes.insert(what.into(), serde_json::json!({ "from": old, "to": new }));
        }
    };
    note(
        "serial",
        before.system.serial.clone(),
        after.system.serial.clone(),
    );
    // The same UUID read byte-swapped (SMBIOS versions, VMware) is not a change.
    let uuid = crate::cmdb::identify::canonical_uuid;
    if uuid(&before.system.uuid) != uuid(&after.system.uuid) {
        note(
            "uuid",
            before.system.uuid.clone(),
            after.system.uuid.clone(),
        );
    }
    note(
        "bios",
        format!(
            "{} {}",
            before.system.bios_vendor, before.system.bios_version
        ),
        format!("{} {}", after.system.bios_vendor, after.system.bios_version),
    );
    note(
        "cpu",
        format!("{} x{}", before.cpu.model, before.cpu.threads),
        format!("{} x{}", after.cpu.model, after.cpu.threads),
    );
    note(
        "memory_bytes",
        before.memory.total_bytes.to_string(),
        after.memory.total_bytes.to_string(),
    );
    note(
        "os",
        format!("{} {}", before.os.name, before.os.version),
        format!("{} {}", after.os.name, after.os.version),
    );
    // Components by identity: what was added and what was removed, not just "changed".
    let disks = |h: &steward_shared::v1::Hardware| -> BTreeSet<String> {
        h.disks
            .iter()
            .map(|d| format!("disk {} {} serial {}", d.name, d.model, d.serial))
            .collect()
    };
    let nics = |h: &steward_shared::v1::Hardware| -> BTreeSet<String> {
        h.nics
            .iter()
            .filter(|n| !n.virtual_nic)
            .map(|n| format!("nic {} {}", n.name, n.mac))
            .collect()
    };
    let dimms = |h: &steward_shared::v1::Hardware| -> BTreeSet<String> {
        h.memory
            .dimms
            .iter()
            .map(|d| {
                format!(
                    "memory module {} {} GiB serial {}",
                    d.locator,
                    d.size_bytes >> 30,
                    d.serial
                )
            })
            .collect()
    };
    let mut components = Vec::new();
    for (old, new) in [
        (disks(before), disks(after)),
        (nics(before), nics(after)),
        (dimms(before), dimms(after)),
    ] {
        components.extend(old.difference(&new).map(|c| format!("{c} removed")));
        components.extend(new.difference(&old).map(|c| format!("{c} added")));
    }
    if !components.is_empty() {
        changes.insert("components".into(), serde_json::json!(components));
    }
    if changes.is_empty() {
        return Ok(());
    }
    let mut parts: Vec<String> = changes
        .keys()
        .filter(|k| *k != "components")
        .map(|k| format!("{k} changed"))
        .collect();
    parts.extend(components);
    let summary = format!("hardware: {}", parts.join("; "));
    history(
        conn,
        ci_id,
        now,
        "hardware",
        &summary,
        serde_json::Value::Object(changes),
    )
}

/// The asset fields by name, in display order.
pub fn asset_fields(asset: &AssetInfo) -> [(&'static str, &str); 8] {
    [
        ("asset_tag", &asset.asset_tag),
        ("owner", &asset.owner),
        ("location", &asset.location),
        ("cost_centre", &asset.cost_centre),
        ("purchase_date", &asset.purchase_date),
        ("warranty_end", &asset.warranty_end),
        ("supplier", &asset.supplier),
        ("support_contract", &asset.support_contract),
    ]
}

/// `after` with the fields equal to `before` blanked (blank fields are not applied).
fn changed_fields(before: &AssetInfo, after: &AssetInfo) -> AssetInfo {
    let pick = |old: &String, new: &String| {
        if old == new {
            String::new()
        } else {
            new.clone()
        }
    };
    AssetInfo {
        asset_tag: pick(&before.asset_tag, &after.asset_tag),
        owner: pick(&before.owner, &after.owner),
        location: pick(&before.location, &after.location),
        cost_centre: pick(&before.cost_centre, &after.cost_centre),
        purchase_date: pick(&before.purchase_date, &after.purchase_date),
        warranty_end: pick(&before.warranty_end, &after.warranty_end),
        supplier: pick(&before.supplier, &after.supplier),
        support_contract: pick(&before.support_contract, &after.support_contract),
    }
}

fn read_asset(conn: &Connection, ci_id: i64) -> Result<Option<AssetInfo>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT asset_tag, owner, location, cost_centre, purchase_date, warranty_end, supplier, support_contract
             FROM ci_assets WHERE ci_id = ?1",
        )?
        .query_row([ci_id], |r| {
            Ok(AssetInfo {
                asset_tag: r.get(0)?,
                owner: r.get(1)?,
                location: r.get(2)?,
                cost_centre: r.get(3)?,
                purchase_date: r.get(4)?,
                warranty_end: r.get(5)?,
                supplier: r.get(6)?,
                support_contract: r.get(7)?,
            })
        })
        .optional()?)
}

/// Sets the given (non-empty) asset fields of a CI, leaving the others as they are, and records
/// what changed. Returns whether anything did.
fn apply_asset(
    conn: &Connection,
    ci_id: i64,
    now: i64,
    asset: &AssetInfo,
    origin: &str,
) -> Result<bool, StoreError> {
    let before = read_asset(conn, ci_id)?.unwrap_or_default();
    let mut after = before.clone();
    {
        let slots: [&mut String; 8] = [
            &mut after.asset_tag,
            &mut after.owner,
            &mut after.location,
            &mut after.cost_centre,
            &mut after.purchase_date,
            &mut after.warranty_end,
            &mut after.supplier,
            &mut after.support_contract,
        ];
        for (slot, (_, value)) in slots.into_iter().zip(asset_fields(asset)) {
            if !value.trim().is_empty() {
                *slot = value.trim().to_string();
            }
        }
    }
    let mut changes = serde_json::Map::new();
    let mut changed = Vec::new();
    for ((name, old), (_, new)) in asset_fields(&before).into_iter().zip(asset_fields(&after)) {
        if old != new {
            changes.insert(name.into(), serde_json::json!({ "from": old, "to": new }));
            changed.push(name);
        }
    }
    if changes.is_empty() {
        return Ok(false);
    }
    conn.prepare_cached(
        "INSERT INTO ci_assets (ci_id, asset_tag, owner, location, cost_centre, purchase_date, warranty_end,
                                supplier, support_contract, updated_at, updated_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (ci_id) DO UPDATE SET asset_tag = excluded.asset_tag, owner = excluded.owner,
             location = excluded.location, cost_centre = excluded.cost_centre,
             purchase_date = excluded.purchase_date, warranty_end = excluded.warranty_end,
             supplier = excluded.supplier, support_contract = excluded.support_contract,
             updated_at = excluded.updated_at, updated_by = excluded.updated_by",
    )?
    .execute(params![
        ci_id,
        after.asset_tag,
        after.owner,
        after.location,
        after.cost_centre,
        after.purchase_date,
        after.warranty_end,
        after.supplier,
        after.support_contract,
        now,
        origin,
    ])?;
    let summary = format!("asset data from {origin}: {}", changed.join(", "));
    let source = if origin.starts_with("import") {
        "import"
    } else {
        "agent"
    };
    history_from(
        conn,
        ci_id,
        now,
        source,
        "asset",
        &summary,
        serde_json::Value::Object(changes),
    )?;
    Ok(true)
}

/// Records a change made by an agent's report in the CI's history.
pub(super) fn history(
    conn: &Connection,
    ci_id: i64,
    at: i64,
    kind: &str,
    summary: &str,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    history_from(conn, ci_id, at, "agent", kind, summary, detail)
}

/// Records a change in the CI's history with where it came from: `agent`, `snmp`, `import` or
/// `admin`.
pub(super) fn history_from(
    conn: &Connection,
    ci_id: i64,
    at: i64,
    source: &str,
    kind: &str,
    summary: &str,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO ci_history (ci_id, at, source, kind, summary, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![ci_id, at, source, kind, summary, detail.to_string()])?;
    Ok(())
}

fn import_in_tx(conn: &Connection, import: &AssetImport) -> Result<ImportOutcome, StoreError> {
    let now = crate::now_ms();
    let origin = format!("import {}", import.file_name);
    let mut outcome = ImportOutcome::default();
    let mut by_serial =
        conn.prepare_cached("SELECT id FROM cis WHERE serial = ?1 COLLATE NOCASE ORDER BY id")?;
    let mut by_tag =
        conn.prepare_cached("SELECT ci_id FROM ci_assets WHERE asset_tag = ?1 ORDER BY ci_id")?;
    for row in &import.rows {
        let serial = junk::usable_serial(&row.serial);
        let mut ids: Vec<i64> = match &serial {
            Some(serial) => by_serial
                .query_map([serial], |r| r.get(0))?
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        if ids.is_empty() && !row.asset.asset_tag.is_empty() {
            ids = by_tag
                .query_map([&row.asset.asset_tag], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
        }
        match ids.as_slice() {
            [ci_id] => {
                outcome.matched += 1;
                if apply_asset(conn, *ci_id, now, &row.asset, &origin)? {
                    outcome.updated += 1;
                }
            }
            [] => outcome.unmatched.push(Unmatched {
                line: row.line,
                serial: row.serial.clone(),
                asset_tag: row.asset.asset_tag.clone(),
                reason: "no CI has this serial or asset tag".into(),
            }),
            many => outcome.unmatched.push(Unmatched {
                line: row.line,
                serial: row.serial.clone(),
                asset_tag: row.asset.asset_tag.clone(),
                reason: format!("{} CIs match (ids {many:?}); nothing changed", many.len()),
            }),
        }
    }
    Ok(outcome)
}

/// The inventory, asset data and recent history of one CI, for `ci show`.
pub(super) fn ci_inventory(conn: &Connection, ci_id: i64) -> Result<CiExtras, StoreError> {
    let row: Option<(i64, i64, String, i64, Vec<u8>)> = conn
        .query_row(
            "SELECT collected_at, received_at, content_hash, version, body FROM ci_inventory WHERE ci_id = ?1",
            [ci_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    let inventory = row.and_then(
        |(collected_at, confirmed_at, content_hash, version, body)| {
            decode_inventory(version, &body).map(|inventory| CiInventory {
                collected_at,
                confirmed_at,
                content_hash,
                inventory,
            })
        },
    );
    let asset = read_asset(conn, ci_id)?;
    let history = history_of(conn, ci_id, i64::MIN, HISTORY_SHOWN)?;
    Ok((inventory, asset, history))
}

/// A CI's history since `since_ms`, newest first, at most `limit` entries.
pub(super) fn history_of(
    conn: &Connection,
    ci_id: i64,
    since_ms: i64,
    limit: i64,
) -> Result<Vec<HistoryEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, source, kind, summary, detail FROM ci_history
         WHERE ci_id = ?1 AND at >= ?2 ORDER BY at DESC, id DESC LIMIT ?3",
    )?;
    let entries = stmt
        .query_map(params![ci_id, since_ms, limit], |r| {
            let detail: String = r.get(4)?;
            Ok(HistoryEntry {
                at: r.get(0)?,
                source: r.get(1)?,
                kind: r.get(2)?,
                summary: r.get(3)?,
                detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(entries)
}
