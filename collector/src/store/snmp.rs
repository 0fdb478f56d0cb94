//! SNMP targets and what their polls find: the device's CI (through the same identification as
//! agents), its attributes and their history, its metrics over time, and the topology its
//! neighbour and forwarding tables reveal.

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::inventory::history_from;
use super::{Store, StoreError, identify};
use crate::cmdb::classes::NETWORK_DEVICE;
use crate::cmdb::identify::{Claim, Decision, IdentifyConfig, Rule, decide};

/// A target to add. `sealed` is its credentials as sealed by [`crate::secrets::SecretBox`].
#[derive(Clone)]
pub struct NewSnmpTarget {
    pub host: String,
    pub port: u16,
    pub version: String,
    pub user: String,
    pub sealed: Vec<u8>,
    pub interval_secs: u32,
    pub origin: String,
}

impl std::fmt::Debug for NewSnmpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSnmpTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("version", &self.version)
            .field("user", &self.user)
            .field("interval_secs", &self.interval_secs)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// A target as listed. The sealed credentials are never serialised.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SnmpTargetRow {
    pub id: i64,
    pub host: String,
    pub port: u16,
    pub version: String,
    pub user: String,
    #[serde(skip)]
    pub sealed: Vec<u8>,
    pub interval_secs: u32,
    pub origin: String,
    pub added_at: i64,
    pub ci_id: Option<i64>,
    pub ci_name: Option<String>,
    pub status: String,
    pub status_detail: String,
    pub status_since: Option<i64>,
    pub last_poll_at: Option<i64>,
    pub last_ok_at: Option<i64>,
}

impl std::fmt::Debug for SnmpTargetRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnmpTargetRow")
            .field("id", &self.id)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("version", &self.version)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl SnmpTargetRow {
    /// The associated data its credentials are sealed with.
    pub fn seal_context(host: &str, port: u16) -> String {
        format!("snmp-target:{host}:{port}")
    }

    /// The source name conflicts and history use for this target.
    pub fn source_id(&self) -> String {
        format!("snmp:{}:{}", self.host, self.port)
    }
}

/// A neighbour from LLDP or CDP.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PolledNeighbour {
    /// `lldp` or `cdp`.
    pub via: String,
    pub local_port: String,
    pub remote_name: String,
    /// The remote chassis MAC, when its chassis id is one.
    pub remote_mac: String,
    pub remote_port: String,
    pub remote_mgmt_addr: String,
    pub remote_description: String,
}

/// Everything one poll of a device found, ready to store.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DevicePoll {
    pub at: i64,
    pub sys_name: String,
    pub vendor: String,
    pub model: String,
    pub serial: String,
    /// Attributes kept on the CI (sysDescr, sysObjectID, firmware, location, interfaces,
    /// physical entities, ...); a change of any top-level key is history.
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// The device's own physical MACs (for identification).
    pub macs: BTreeSet<String>,
    pub neighbours: Vec<PolledNeighbour>,
    /// Learned forwarding entries: (MAC, local port name).
    pub fdb: Vec<(String, String)>,
    /// The sample stored in `device_samples` (rates, status, CPU, storage).
    pub metrics: serde_json::Value,
}

/// Attributes whose changes are not history (they change on every poll).
const VOLATILE_ATTRIBUTES: &[&str] = &["uptime_secs"];

impl Store {
    /// Adds a target; with `replace`, an existing one (same host and port) is updated instead
    /// of refused. Returns its id, or why it was refused.
    pub async fn add_snmp_target(
        &self,
        target: NewSnmpTarget,
        replace: bool,
    ) -> Result<Result<i64, String>, StoreError> {
        self.inner
            .writer
            .write(move |conn| {
                let existing: Option<i64> = conn
                    .prepare_cached("SELECT id FROM snmp_targets WHERE host = ?1 AND port = ?2")?
                    .query_row(params![target.host, target.port], |r| r.get(0))
                    .optional()?;
                if let Some(id) = existing {
                    if !replace {
                        return Ok(Err(format!(
                            "SNMP target {}:{} already exists (remove it first, or use --replace)",
                            target.host, target.port
                        )));
                    }
                    conn.execute(
                        "UPDATE snmp_targets SET version = ?2, user = ?3, credentials = ?4, interval_secs = ?5,
                                origin = ?6, status = 'pending', status_detail = '', status_since = NULL
                         WHERE id = ?1",
                        params![
                            id,
                            target.version,
                            target.user,
                            target.sealed,
                            target.interval_secs,
                            target.origin
                        ],
                    )?;
                    return Ok(Ok(id));
                }
                let id = conn.query_row(
                    "INSERT INTO snmp_targets (host, port, version, user, credentials, interval_secs, origin, added_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
                    params![
                        target.host,
                        target.port,
                        target.version,
                        target.user,
                        target.sealed,
                        target.interval_secs,
                        target.origin,
                        crate::now_ms()
                    ],
                    |r| r.get(0),
                )?;
                Ok(Ok(id))
            })
            .await
    }

    pub async fn list_snmp_targets(&self) -> Result<Vec<SnmpTargetRow>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT t.id, t.host, t.port, t.version, t.user, t.credentials, t.interval_secs, t.origin,
                        t.added_at, t.ci_id, c.name, t.status, t.status_detail, t.status_since,
                        t.last_poll_at, t.last_ok_at
                 FROM snmp_targets t LEFT JOIN cis c ON c.id = t.ci_id ORDER BY t.host, t.port",
            )?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(SnmpTargetRow {
                        id: r.get(0)?,
                        host: r.get(1)?,
                        port: r.get(2)?,
                        version: r.get(3)?,
                        user: r.get(4)?,
                        sealed: r.get(5)?,
                        interval_secs: r.get(6)?,
                        origin: r.get(7)?,
                        added_at: r.get(8)?,
                        ci_id: r.get(9)?,
                        ci_name: r.get(10)?,
                        status: r.get(11)?,
                        status_detail: r.get(12)?,
                        status_since: r.get(13)?,
                        last_poll_at: r.get(14)?,
                        last_ok_at: r.get(15)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Removes a target (its CI and history stay). Returns whether it existed.
    pub async fn remove_snmp_target(&self, host: String, port: u16) -> Result<bool, StoreError> {
        self.inner
            .writer
            .write(move |conn| {
                Ok::<_, StoreError>(
                    conn.execute(
                        "DELETE FROM snmp_targets WHERE host = ?1 AND port = ?2",
                        params![host, port],
                    )? > 0,
                )
            })
            .await
    }

    /// Records a poll's outcome on the target. Returns true when the status changed (the
    /// caller logs only then, so a device failing every minute logs once); a change is also
    /// history on the device's CI.
    pub async fn set_snmp_status(
        &self,
        target_id: i64,
        status: String,
        detail: String,
        at: i64,
    ) -> Result<bool, StoreError> {
        self.inner
            .writer
            .write(move |conn| set_status(conn, target_id, &status, &detail, at))
            .await
    }

    /// Stores a successful poll: identifies the device's CI (creating it if new), records
    /// attribute changes as history, its sample, and the topology it reported. Returns the CI.
    pub async fn record_device_poll(
        &self,
        target_id: i64,
        poll: DevicePoll,
        identification: IdentifyConfig,
    ) -> Result<i64, StoreError> {
        self.inner
            .writer
            .write(move |conn| record_poll(conn, target_id, &poll, &identification))
            .await
    }

    /// The newest samples of a device, newest first.
    pub async fn device_samples(
        &self,
        ci_id: i64,
        limit: i64,
    ) -> Result<Vec<(i64, serde_json::Value)>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT at, body FROM device_samples WHERE ci_id = ?1 ORDER BY at DESC LIMIT ?2",
            )?;
            let rows = stmt
                .query_map(params![ci_id, limit], |r| {
                    let body: String = r.get(1)?;
                    Ok((r.get(0)?, serde_json::from_str(&body).unwrap_or_default()))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Port-level links of a CI (either end).
    pub async fn ci_links(&self, ci_id: i64) -> Result<Vec<CiLink>, StoreError> {
        self.read(move |conn| links_of(conn, ci_id)).await
    }

    /// Deletes device samples older than `cutoff_ms` in bounded chunks.
    pub async fn prune_device_samples(&self, cutoff_ms: i64) -> Result<usize, StoreError> {
        self.delete_in_chunks(
            &format!(
                "DELETE FROM device_samples WHERE id IN (
                    SELECT id FROM device_samples WHERE at < ?1 LIMIT {})",
                super::cis::DELETE_CHUNK
            ),
            cutoff_ms,
        )
        .await
    }
}

/// A port-level link between two CIs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CiLink {
    pub from_id: i64,
    pub from_name: String,
    pub from_port: String,
    pub to_id: i64,
    pub to_name: String,
    pub to_port: String,
    pub via: String,
    pub seen_at: i64,
}

fn set_status(
    conn: &Connection,
    target_id: i64,
    status: &str,
    detail: &str,
    at: i64,
) -> Result<bool, StoreError> {
    let current: Option<(String, Option<i64>)> = conn
        .prepare_cached("SELECT status, ci_id FROM snmp_targets WHERE id = ?1")?
        .query_row([target_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((old, ci_id)) = current else {
        return Ok(false);
    };
    let changed = old != status;
    if changed {
        conn.prepare_cached(
            "UPDATE snmp_targets SET status = ?2, status_detail = ?3, status_since = ?4, last_poll_at = ?4 WHERE id = ?1",
        )?
        .execute(params![target_id, status, detail, at])?;
        // The first outcome of a new target is not a change of the device.
        if let Some(ci_id) = ci_id.filter(|_| old != "pending") {
            history_from(
                conn,
                ci_id,
                at,
                "snmp",
                "snmp_status",
                &format!("SNMP status {old} -> {status}: {detail}"),
                serde_json::json!({ "old": old, "new": status, "detail": detail }),
            )?;
        }
    } else {
        conn.prepare_cached(
            "UPDATE snmp_targets SET status_detail = ?2, last_poll_at = ?3 WHERE id = ?1",
        )?
        .execute(params![target_id, detail, at])?;
    }
    if status == "ok" {
        conn.prepare_cached("UPDATE snmp_targets SET last_ok_at = ?2 WHERE id = ?1")?
            .execute(params![target_id, at])?;
    }
    Ok(changed)
}

fn record_poll(
    conn: &Connection,
    target_id: i64,
    poll: &DevicePoll,
    config: &IdentifyConfig,
) -> Result<i64, StoreError> {
    let (host, port, known_ci): (String, u16, Option<i64>) = conn
        .prepare_cached("SELECT host, port, ci_id FROM snmp_targets WHERE id = ?1")?
        .query_row([target_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let source = format!("snmp:{host}:{port}");
    let claim = Claim {
        agent_id: source.clone(),
        hostname: if poll.sys_name.is_empty() {
            host.clone()
        } else {
            poll.sys_name.clone()
        },
        vendor: poll.vendor.clone(),
        serial: poll.serial.clone(),
        macs: poll.macs.clone(),
        ..Claim::default()
    }
    .clean(config);
    let at = poll.at;
    let ci_id = match known_ci {
        Some(ci_id) => {
            let others = identify::candidates(conn, &claim, Some(ci_id), at, config)?;
            if let Decision::Match { ci_id: other, rule } = decide(config, &claim, &others)
                && !matches!(rule, Rule::Fqdn | Rule::Hostname)
            {
                identify::record_conflict(
                    conn,
                    &source,
                    ci_id,
                    &[other],
                    rule.name(),
                    &format!(
                        "reports hardware that matches CI {other} by {}",
                        rule.name()
                    ),
                    at,
                )?;
            }
            ci_id
        }
        None => {
            let candidates = identify::candidates(conn, &claim, None, at, config)?;
            let ci_id = match decide(config, &claim, &candidates) {
                Decision::Match { ci_id, rule } => {
                    history_from(
                        conn,
                        ci_id,
                        at,
                        "snmp",
                        "identification",
                        &format!(
                            "SNMP target {host}:{port} identified as this CI by {}",
                            rule.name()
                        ),
                        serde_json::json!({ "target": format!("{host}:{port}"), "rule": rule.name() }),
                    )?;
                    conn.execute(
                        "UPDATE cis SET class = ?2 WHERE id = ?1",
                        params![ci_id, NETWORK_DEVICE],
                    )?;
                    ci_id
                }
                Decision::New => {
                    new_device_ci(conn, &format!("snmp:{host}:{port}"), &claim.hostname, at)?
                }
                // A CI made for this device when a neighbour reported it (name and chassis
                // id only) is the device itself, not a rival: adopt it.
                Decision::Conflict { candidates, .. }
                    if candidates.len() == 1 && is_neighbour_placeholder(conn, candidates[0])? =>
                {
                    history_from(
                        conn,
                        candidates[0],
                        at,
                        "snmp",
                        "identification",
                        &format!("SNMP target {host}:{port} is this neighbour-discovered CI"),
                        serde_json::json!({ "target": format!("{host}:{port}"), "rule": "neighbour" }),
                    )?;
                    candidates[0]
                }
                Decision::Conflict {
                    candidates,
                    rule,
                    reason,
                } => {
                    let ci_id =
                        new_device_ci(conn, &format!("snmp:{host}:{port}"), &claim.hostname, at)?;
                    identify::record_conflict(
                        conn,
                        &source,
                        ci_id,
                        &candidates,
                        rule.name(),
                        &reason,
                        at,
                    )?;
                    ci_id
                }
            };
            conn.execute(
                "UPDATE snmp_targets SET ci_id = ?2 WHERE id = ?1",
                params![target_id, ci_id],
            )?;
            ci_id
        }
    };
    identify::record_identifiers(conn, ci_id, &claim)?;
    update_device(conn, ci_id, &claim.hostname, poll)?;
    conn.prepare_cached("INSERT INTO device_samples (ci_id, at, body) VALUES (?1, ?2, ?3)")?
        .execute(params![ci_id, at, poll.metrics.to_string()])?;
    record_topology(conn, ci_id, poll, config)?;
    set_status(conn, target_id, "ok", "", at)?;
    Ok(ci_id)
}

fn is_neighbour_placeholder(conn: &Connection, ci_id: i64) -> Result<bool, StoreError> {
    let key: Option<String> = conn
        .prepare_cached("SELECT identity_key FROM cis WHERE id = ?1")?
        .query_row([ci_id], |r| r.get(0))
        .optional()?;
    Ok(key.is_some_and(|k| k.starts_with("neighbour:")))
}

fn new_device_ci(
    conn: &Connection,
    identity_key: &str,
    name: &str,
    at: i64,
) -> Result<i64, StoreError> {
    // A device removed and added again keeps its identity key: reuse that CI.
    if let Some(id) = conn
        .prepare_cached("SELECT id FROM cis WHERE identity_key = ?1")?
        .query_row([identity_key], |r| r.get(0))
        .optional()?
    {
        return Ok(id);
    }
    Ok(conn
        .prepare_cached(
            "INSERT INTO cis (identity_key, name, class, first_seen_at, identity_at) VALUES (?1, ?2, ?3, ?4, ?4) RETURNING id",
        )?
        .query_row(params![identity_key, name, NETWORK_DEVICE, at], |r| r.get(0))?)
}

/// Name, vendor, model, serial and attributes onto the CI; each change is history.
fn update_device(
    conn: &Connection,
    ci_id: i64,
    name: &str,
    poll: &DevicePoll,
) -> Result<(), StoreError> {
    let (old_name, old_vendor, old_model, old_serial, old_attributes): (
        String,
        String,
        String,
        String,
        String,
    ) = conn
        .prepare_cached("SELECT name, vendor, product, serial, attributes FROM cis WHERE id = ?1")?
        .query_row([ci_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
    let old_attributes: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&old_attributes).unwrap_or_default();
    let at = poll.at;
    for (field, old, new) in [
        ("name", &old_name, name),
        ("vendor", &old_vendor, poll.vendor.as_str()),
        ("model", &old_model, poll.model.as_str()),
        ("serial", &old_serial, poll.serial.as_str()),
    ] {
        if old != new && !new.is_empty() {
            history_from(
                conn,
                ci_id,
                at,
                "snmp",
                "attribute",
                &format!("{field}: {old:?} -> {new:?}"),
                serde_json::json!({ "field": field, "old": old, "new": new }),
            )?;
        }
    }
    // The first poll is a baseline, not a list of changes.
    if !old_attributes.is_empty() {
        let keys: BTreeSet<&String> = old_attributes
            .keys()
            .chain(poll.attributes.keys())
            .collect();
        for key in keys {
            if VOLATILE_ATTRIBUTES.contains(&key.as_str()) {
                continue;
            }
            let (old, new) = (old_attributes.get(key), poll.attributes.get(key));
            if old != new {
                history_from(
                    conn,
                    ci_id,
                    at,
                    "snmp",
                    if key == "interfaces" || key == "entities" {
                        "hardware"
                    } else {
                        "attribute"
                    },
                    &attribute_change(key, old, new),
                    serde_json::json!({ "field": key, "old": old, "new": new }),
                )?;
            }
        }
    }
    let keep = |new: &str, old: &str| {
        if new.is_empty() {
            old.to_string()
        } else {
            new.to_string()
        }
    };
    conn.prepare_cached(
        "UPDATE cis SET name = ?2, class = ?3, vendor = ?4, product = ?5, serial = ?6, attributes = ?7,
                        identity_at = ?8 WHERE id = ?1",
    )?
    .execute(params![
        ci_id,
        keep(name, &old_name),
        NETWORK_DEVICE,
        keep(&poll.vendor, &old_vendor),
        keep(&poll.model, &old_model),
        keep(&poll.serial, &old_serial),
        serde_json::Value::Object(poll.attributes.clone()).to_string(),
        at
    ])?;
    Ok(())
}

/// A readable summary of an attribute change. Lists of named things (interfaces, entities)
/// say what was added and removed.
fn attribute_change(
    key: &str,
    old: Option<&serde_json::Value>,
    new: Option<&serde_json::Value>,
) -> String {
    let names = |v: Option<&serde_json::Value>| -> Option<BTreeSet<String>> {
        v?.as_array().map(|items| {
            items
                .iter()
                .filter_map(|i| {
                    let name = i.get("name")?.as_str()?;
                    let serial = i.get("serial").and_then(|s| s.as_str()).unwrap_or("");
                    Some(if serial.is_empty() {
                        name.to_string()
                    } else {
                        format!("{name} ({serial})")
                    })
                })
                .collect()
        })
    };
    if let (Some(old), Some(new)) = (names(old), names(new)) {
        let added: Vec<_> = new.difference(&old).cloned().collect();
        let removed: Vec<_> = old.difference(&new).cloned().collect();
        if added.is_empty() && removed.is_empty() {
            return format!("{key}: details changed");
        }
        return format!(
            "{key}: added [{}], removed [{}]",
            added.join(", "),
            removed.join(", ")
        );
    }
    let show = |v: Option<&serde_json::Value>| match v {
        None => "(none)".to_string(),
        Some(serde_json::Value::String(s)) => format!("{s:?}"),
        Some(other) => other.to_string(),
    };
    format!("{key}: {} -> {}", show(old), show(new))
}

/// Replaces the links this device reported with what it reports now, creating CIs for unknown
/// neighbours, and keeps one `connected_to` relationship per linked pair of CIs.
fn record_topology(
    conn: &Connection,
    device: i64,
    poll: &DevicePoll,
    config: &IdentifyConfig,
) -> Result<(), StoreError> {
    let before: BTreeSet<(i64, i64)> = conn
        .prepare_cached("SELECT from_ci, to_ci FROM ci_links WHERE device = ?1")?
        .query_map([device], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    conn.prepare_cached("DELETE FROM ci_links WHERE device = ?1")?
        .execute([device])?;
    let mut insert = conn.prepare_cached(
        "INSERT OR REPLACE INTO ci_links (from_ci, from_port, to_ci, to_port, via, device, seen_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut pairs: BTreeSet<(i64, i64)> = BTreeSet::new();
    let mut uplinks: BTreeSet<&str> = BTreeSet::new();
    for n in &poll.neighbours {
        let Some(other) = neighbour_ci(conn, n, config, poll.at)? else {
            continue;
        };
        if other == device {
            continue;
        }
        uplinks.insert(n.local_port.as_str());
        insert.execute(params![
            device,
            n.local_port,
            other,
            n.remote_port,
            n.via,
            device,
            poll.at
        ])?;
        pairs.insert((device, other));
    }
    // A host MAC behind an access port: not on a port facing another network device, where
    // every MAC beyond it is learned too.
    let mut by_mac = conn.prepare_cached(
        "SELECT DISTINCT i.ci_id FROM ci_identifiers i JOIN cis c ON c.id = i.ci_id
         WHERE i.kind = 'mac' AND i.value = ?1 AND c.class != ?2",
    )?;
    for (mac, port) in &poll.fdb {
        if uplinks.contains(port.as_str()) {
            continue;
        }
        let mac = mac.to_ascii_lowercase();
        let hosts: Vec<i64> = by_mac
            .query_map(params![mac, NETWORK_DEVICE], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        // One owner only: a MAC claimed by several CIs says nothing certain.
        if let [host] = hosts.as_slice()
            && *host != device
        {
            insert.execute(params![host, mac, device, port, "fdb", device, poll.at])?;
            pairs.insert((*host, device));
        }
    }
    for &(from, to) in pairs.difference(&before) {
        super::relations::relate_ids(conn, from, "connected_to", to, "snmp").map_err(
            |e| match e {
                super::relations::CmdbError::Store(e) => e,
                other => StoreError::Task(other.to_string()),
            },
        )?;
    }
    // Links gone from every device that reported them end their relationship (only one
    // SNMP created).
    for &(from, to) in before.difference(&pairs) {
        let still: bool = conn
            .prepare_cached("SELECT 1 FROM ci_links WHERE from_ci = ?1 AND to_ci = ?2")?
            .query_row(params![from, to], |_| Ok(()))
            .optional()?
            .is_some();
        if !still {
            let removed = conn.execute(
                "DELETE FROM ci_relations WHERE from_ci = ?1 AND kind = 'connected_to' AND to_ci = ?2 AND source = 'snmp'",
                params![from, to],
            )?;
            if removed > 0 {
                history_from(
                    conn,
                    from,
                    poll.at,
                    "snmp",
                    "relationship",
                    &format!("no longer connected_to CI {to}"),
                    serde_json::json!({ "kind": "connected_to", "to": to, "removed": true }),
                )?;
            }
        }
    }
    Ok(())
}

/// The CI of a neighbour: by its chassis MAC or name through the identifiers, else a new
/// network-device CI for it (its own poll, if it is a target, will then identify as that CI).
fn neighbour_ci(
    conn: &Connection,
    n: &PolledNeighbour,
    config: &IdentifyConfig,
    at: i64,
) -> Result<Option<i64>, StoreError> {
    let name = n.remote_name.trim();
    let mac = n.remote_mac.trim().to_ascii_lowercase();
    if name.is_empty() && mac.is_empty() {
        return Ok(None);
    }
    let claim = Claim {
        agent_id: format!("{}:{}", n.via, if mac.is_empty() { name } else { &mac }),
        hostname: name.to_string(),
        macs: if mac.is_empty() {
            BTreeSet::new()
        } else {
            BTreeSet::from([mac.clone()])
        },
        ..Claim::default()
    }
    .clean(config);
    let candidates = identify::candidates(conn, &claim, None, at, config)?;
    // Any match is good enough for a neighbour reference; nothing of the match is overwritten.
    let by_ci: BTreeSet<i64> = candidates.iter().map(|c| c.ci_id).collect();
    if let Decision::Match { ci_id, .. } = decide(config, &claim, &candidates) {
        return Ok(Some(ci_id));
    }
    if let Some(&ci_id) = by_ci.first()
        && by_ci.len() == 1
    {
        return Ok(Some(ci_id));
    }
    let key = format!("neighbour:{}", if mac.is_empty() { name } else { &mac });
    let display = if name.is_empty() { mac.as_str() } else { name };
    let ci_id = new_device_ci(conn, &key, display, at)?;
    history_from(
        conn,
        ci_id,
        at,
        "snmp",
        "discovered",
        &format!("seen as a {} neighbour", n.via),
        serde_json::json!({ "via": n.via, "mgmt_addr": n.remote_mgmt_addr, "description": n.remote_description }),
    )?;
    identify::record_identifiers(conn, ci_id, &claim)?;
    Ok(Some(ci_id))
}

/// Port-level links of a CI (either end), LLDP and CDP first.
pub(super) fn links_of(conn: &Connection, ci_id: i64) -> Result<Vec<CiLink>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT l.from_ci, f.name, l.from_port, l.to_ci, t.name, l.to_port, l.via, l.seen_at
         FROM ci_links l JOIN cis f ON f.id = l.from_ci JOIN cis t ON t.id = l.to_ci
         WHERE l.from_ci = ?1 OR l.to_ci = ?1 ORDER BY l.via, f.name, l.from_port",
    )?;
    let rows = stmt
        .query_map([ci_id], |r| {
            Ok(CiLink {
                from_id: r.get(0)?,
                from_name: r.get(1)?,
                from_port: r.get(2)?,
                to_id: r.get(3)?,
                to_name: r.get(4)?,
                to_port: r.get(5)?,
                via: r.get(6)?,
                seen_at: r.get(7)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
