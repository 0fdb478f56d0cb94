//! Identification in the store: the claim a report makes, the candidate CIs sharing an
//! identifier with it, each CI's current identifiers, and the conflict queue with its
//! resolutions (merge or keep apart). The decision itself is `cmdb::identify::decide`.

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use steward_shared::v1::{HostIdentity, Inventory};

use super::{Store, StoreError};
use crate::cmdb::identify::{Candidate, Claim, IdentifyConfig};

/// A conflict as `ci conflicts list` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConflictRow {
    pub id: i64,
    pub created_at: i64,
    pub agent_id: String,
    /// Where the agent's reports go until the conflict is resolved.
    pub ci_id: i64,
    pub ci_name: String,
    /// The CIs it might be.
    pub candidates: Vec<i64>,
    pub rule: String,
    pub reason: String,
    pub resolved_at: Option<i64>,
    pub resolution: Option<String>,
}

/// How an admin resolves a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "action")]
pub enum Resolution {
    /// The same machine: fold the agent's CI into the candidate.
    Merge { into: Option<i64> },
    /// Different machines: keep both, and never raise this pair again.
    Split,
}

/// Why a resolution was refused.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("no conflict {0}")]
    Unknown(i64),
    #[error("conflict {0} was already resolved")]
    Resolved(i64),
    #[error("conflict {id} has {count} candidate CIs ({candidates:?}); say which with --into")]
    Ambiguous {
        id: i64,
        count: usize,
        candidates: Vec<i64>,
    },
    #[error("CI {into} is not a candidate of conflict {id} ({candidates:?})")]
    NotCandidate {
        id: i64,
        into: i64,
        candidates: Vec<i64>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The claim of a report: its host identity, plus hardware from a full inventory.
pub(super) fn claim(
    agent_id: &str,
    enrolled_machine_id: &str,
    host: &HostIdentity,
    inventory: Option<&Inventory>,
    config: &IdentifyConfig,
) -> Claim {
    let mut claim = Claim {
        agent_id: agent_id.to_string(),
        // The machine-id the agent enrolled with, not whatever a report says.
        machine_id: enrolled_machine_id.to_string(),
        hostname: host.hostname.clone(),
        fqdn: host.fqdn.clone(),
        ..Claim::default()
    };
    if let Some(inventory) = inventory {
        let hw = &inventory.hardware;
        claim.uuid = hw.system.uuid.clone();
        claim.vendor = hw.system.vendor.clone();
        claim.serial = if hw.system.serial.trim().is_empty() {
            hw.board
                .as_ref()
                .map(|b| b.serial.clone())
                .unwrap_or_default()
        } else {
            hw.system.serial.clone()
        };
        claim.macs = hw
            .nics
            .iter()
            .filter(|n| !n.virtual_nic)
            .flat_map(|n| [n.mac.clone(), n.permanent_mac.clone()])
            .filter(|m| !m.is_empty())
            .collect();
        claim.virtual_machine = !hw.virtualization.hypervisor.is_empty();
    }
    claim.clean(config)
}

/// The CIs sharing any identifier with `claim`, except `own` (the claimant's CI) and those an
/// admin declared distinct from it. Another agent of a candidate counts as reporting "at the same
/// time" when its newest report was collected within the active window before `at`, the claim's
/// collection time (so the judgement follows the reports, not when they happened to arrive).
pub(super) fn candidates(
    conn: &Connection,
    claim: &Claim,
    own: Option<i64>,
    at: i64,
    config: &IdentifyConfig,
) -> Result<Vec<Candidate>, StoreError> {
    let mut keys: Vec<(&str, &str)> = vec![
        ("uuid", &claim.uuid),
        ("serial", &claim.serial),
        ("machine_id", &claim.machine_id),
        ("hostname", &claim.hostname),
        ("fqdn", &claim.fqdn),
    ];
    keys.extend(claim.macs.iter().map(|m| ("mac", m.as_str())));
    let mut ids = BTreeSet::new();
    let mut stmt =
        conn.prepare_cached("SELECT ci_id FROM ci_identifiers WHERE kind = ?1 AND value = ?2")?;
    for (kind, value) in keys {
        if value.is_empty() {
            continue;
        }
        for id in stmt.query_map([kind, value], |r| r.get::<_, i64>(0))? {
            ids.insert(id?);
        }
    }
    if let Some(own) = own {
        ids.remove(&own);
        let mut distinct = conn.prepare_cached(
            "SELECT b FROM ci_distinct WHERE a = ?1 UNION SELECT a FROM ci_distinct WHERE b = ?1",
        )?;
        for id in distinct.query_map([own], |r| r.get::<_, i64>(0))? {
            ids.remove(&id?);
        }
    }
    let since = at - i64::from(config.active_window_secs) * 1000;
    ids.into_iter()
        .map(|id| candidate(conn, id, &claim.agent_id, since))
        .collect()
}

fn candidate(
    conn: &Connection,
    ci_id: i64,
    claimant: &str,
    active_since: i64,
) -> Result<Candidate, StoreError> {
    let mut candidate = Candidate {
        ci_id,
        ..Candidate::default()
    };
    let mut stmt =
        conn.prepare_cached("SELECT kind, value FROM ci_identifiers WHERE ci_id = ?1")?;
    for row in stmt.query_map([ci_id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })? {
        let (kind, value) = row?;
        match kind.as_str() {
            "uuid" => candidate.uuid = value,
            "serial" => candidate.serial = value,
            "machine_id" => {
                candidate.machine_ids.insert(value);
            }
            "hostname" => candidate.hostname = value,
            "fqdn" => candidate.fqdn = value,
            "mac" => {
                candidate.macs.insert(value);
            }
            _ => {}
        }
    }
    candidate.vendor = conn
        .prepare_cached("SELECT lower(vendor) FROM cis WHERE id = ?1")?
        .query_row([ci_id], |r| r.get(0))
        .optional()?
        .unwrap_or_default();
    let mut active = conn.prepare_cached(
        "SELECT a.id FROM agents a
         WHERE a.ci_id = ?1 AND a.id != ?2 AND a.revoked_at IS NULL
           AND (SELECT r.collected_at FROM reports r WHERE r.agent = a.num ORDER BY r.seq DESC LIMIT 1) >= ?3
         ORDER BY a.id",
    )?;
    candidate.active_agents = active
        .query_map(params![ci_id, claimant, active_since], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(candidate)
}

/// Records the claim's identifiers as the CI's current ones. Hardware identifiers (UUID,
/// serial, MACs) are replaced only by a claim that has hardware; machine-ids accumulate (each
/// installation the CI has run); names follow the newest claim.
pub(super) fn record_identifiers(
    conn: &Connection,
    ci_id: i64,
    claim: &Claim,
) -> Result<(), StoreError> {
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO ci_identifiers (kind, value, ci_id) VALUES (?1, ?2, ?3)",
    )?;
    let mut clear =
        conn.prepare_cached("DELETE FROM ci_identifiers WHERE ci_id = ?1 AND kind = ?2")?;
    let hardware = !claim.uuid.is_empty() || !claim.serial.is_empty() || !claim.macs.is_empty();
    let mut set = |kind: &str, values: Vec<&str>| -> Result<(), StoreError> {
        clear.execute(params![ci_id, kind])?;
        for value in values.into_iter().filter(|v| !v.is_empty()) {
            insert.execute(params![kind, value, ci_id])?;
        }
        Ok(())
    };
    set("hostname", vec![&claim.hostname])?;
    set("fqdn", vec![&claim.fqdn])?;
    if hardware {
        if !claim.uuid.is_empty() {
            super::relations::relate_to_declaring_host(conn, ci_id, &claim.uuid)?;
        }
        set("uuid", vec![&claim.uuid])?;
        set("serial", vec![&claim.serial])?;
        set("mac", claim.macs.iter().map(String::as_str).collect())?;
    }
    if !claim.machine_id.is_empty() {
        insert.execute(params!["machine_id", claim.machine_id, ci_id])?;
    }
    Ok(())
}

/// Queues a conflict unless the same one (agent, candidates) is already open.
pub(super) fn record_conflict(
    conn: &Connection,
    agent_id: &str,
    ci_id: i64,
    candidates: &[i64],
    rule: &str,
    reason: &str,
    now: i64,
) -> Result<(), StoreError> {
    let candidates = serde_json::to_string(candidates).unwrap_or_else(|_| "[]".into());
    let open = conn
        .prepare_cached(
            "SELECT 1 FROM ci_conflicts WHERE agent_id = ?1 AND candidates = ?2 AND resolved_at IS NULL",
        )?
        .query_row(params![agent_id, candidates], |_| Ok(()))
        .optional()?
        .is_some();
    if open {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO ci_conflicts (created_at, agent_id, ci_id, candidates, rule, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![now, agent_id, ci_id, candidates, rule, reason])?;
    super::inventory::history(
        conn,
        ci_id,
        now,
        "identification",
        &format!("conflict: agent {agent_id} {reason} (candidates {candidates})"),
        serde_json::json!({ "candidates": candidates, "rule": rule }),
    )?;
    tracing::warn!(
        agent_id,
        ci_id,
        candidates,
        rule,
        reason,
        "identification conflict queued"
    );
    Ok(())
}

impl Store {
    pub async fn list_conflicts(&self, all: bool) -> Result<Vec<ConflictRow>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT k.id, k.created_at, k.agent_id, k.ci_id, COALESCE(c.name, ''), k.candidates, k.rule, k.reason,
                        k.resolved_at, k.resolution
                 FROM ci_conflicts k LEFT JOIN cis c ON c.id = k.ci_id
                 WHERE ?1 OR k.resolved_at IS NULL ORDER BY k.id",
            )?;
            let rows = stmt
                .query_map([all], |r| {
                    let candidates: String = r.get(5)?;
                    Ok(ConflictRow {
                        id: r.get(0)?,
                        created_at: r.get(1)?,
                        agent_id: r.get(2)?,
                        ci_id: r.get(3)?,
                        ci_name: r.get(4)?,
                        candidates: serde_json::from_str(&candidates).unwrap_or_default(),
                        rule: r.get(6)?,
                        reason: r.get(7)?,
                        resolved_at: r.get(8)?,
                        resolution: r.get(9)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Resolves a conflict: merge the agent's CI into a candidate, or keep them apart for good.
    pub async fn resolve_conflict(
        &self,
        id: i64,
        resolution: Resolution,
    ) -> Result<String, ResolveError> {
        self.inner
            .writer
            .write(move |conn| resolve_in_tx(conn, id, resolution))
            .await
    }
}

fn resolve_in_tx(
    conn: &Connection,
    id: i64,
    resolution: Resolution,
) -> Result<String, ResolveError> {
    let row: Option<(String, i64, String, Option<i64>)> = conn
        .query_row(
            "SELECT agent_id, ci_id, candidates, resolved_at FROM ci_conflicts WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()
        .map_err(StoreError::from)?;
    let (agent_id, own, candidates, resolved) = row.ok_or(ResolveError::Unknown(id))?;
    if resolved.is_some() {
        return Err(ResolveError::Resolved(id));
    }
    let candidates: Vec<i64> = serde_json::from_str(&candidates).unwrap_or_default();
    let now = crate::now_ms();
    let outcome = match resolution {
        Resolution::Merge { into } => {
            let target = match (into, candidates.as_slice()) {
                (Some(into), _) if candidates.contains(&into) => into,
                (Some(into), _) => {
                    return Err(ResolveError::NotCandidate {
                        id,
                        into,
                        candidates,
                    });
                }
                (None, [one]) => *one,
                (None, _) => {
                    return Err(ResolveError::Ambiguous {
                        id,
                        count: candidates.len(),
                        candidates,
                    });
                }
            };
            merge(conn, own, target, &agent_id, now)?;
            format!("merged CI {own} into CI {target}")
        }
        Resolution::Split => {
            let mut stmt = conn
                .prepare_cached("INSERT OR IGNORE INTO ci_distinct (a, b) VALUES (?1, ?2)")
                .map_err(StoreError::from)?;
            for other in &candidates {
                stmt.execute(params![own.min(*other), own.max(*other)])
                    .map_err(StoreError::from)?;
            }
            super::inventory::history_from(
                conn,
                own,
                now,
                "admin",
                "identification",
                &format!("kept apart from CIs {candidates:?} by an admin"),
                serde_json::json!({ "conflict": id }),
            )?;
            format!("CI {own} kept apart from {candidates:?}")
        }
    };
    conn.execute(
        "UPDATE ci_conflicts SET resolved_at = ?2, resolution = ?3 WHERE id = ?1",
        params![id, now, outcome],
    )
    .map_err(StoreError::from)?;
    Ok(outcome)
}

/// Moves what else refers to `from` (events, device samples and links, SNMP targets, guests a
/// hypervisor declares) onto `into`, so the merged-away CI can be deleted (foreign keys are
/// on). An open event of `from` that `into` also has open is resolved as merged: one open
/// event per (rule, CI, instance).
pub(super) fn move_dependents(
    conn: &Connection,
    from: i64,
    into: i64,
    now: i64,
) -> Result<(), StoreError> {
    // Escalated duplicates' tickets are resolved too (outbox rows in this transaction).
    let duplicates: Vec<i64> = conn
        .prepare(
            "SELECT id FROM events WHERE ci_id = ?1 AND state != 'resolved' AND escalated_at IS NOT NULL
               AND EXISTS (SELECT 1 FROM events o WHERE o.ci_id = ?2 AND o.rule = events.rule
                           AND o.instance = events.instance AND o.state != 'resolved')",
        )?
        .query_map(params![from, into], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in duplicates {
        super::tickets::queue_update(
            conn,
            id,
            super::tickets::OP_RESOLVE,
            &format!(
                "Resolved by Steward: the CI was merged into CI {into}, which has the same event open."
            ),
            now,
        )?;
    }
    conn.execute(
        "UPDATE events SET state = 'resolved', resolved_at = ?3, resolved_reason = 'merged into CI ' || ?2
         WHERE ci_id = ?1 AND state != 'resolved' AND EXISTS (
             SELECT 1 FROM events o WHERE o.ci_id = ?2 AND o.rule = events.rule
               AND o.instance = events.instance AND o.state != 'resolved')",
        params![from, into, now],
    )?;
    // Ticket rows follow their events to the CI they now belong to, so delivery order and
    // reopening keep working across occurrences on the merged CI.
    for table in ["ticket_outbox", "tickets"] {
        conn.execute(
            &format!(
                "UPDATE {table} SET event_key = (
                     SELECT e.rule || char(31) || ?2 || char(31) || e.instance
                     FROM events e WHERE e.id = {table}.event_id)
                 WHERE event_id IN (SELECT id FROM events WHERE ci_id = ?1)"
            ),
            params![from, into],
        )?;
    }
    for sql in [
        "UPDATE events SET ci_id = ?2 WHERE ci_id = ?1",
        "UPDATE device_samples SET ci_id = ?2 WHERE ci_id = ?1",
        "UPDATE snmp_targets SET ci_id = ?2 WHERE ci_id = ?1",
        "UPDATE OR IGNORE ci_links SET from_ci = ?2 WHERE from_ci = ?1",
        "UPDATE OR IGNORE ci_links SET to_ci = ?2 WHERE to_ci = ?1",
        "UPDATE OR IGNORE ci_links SET device = ?2 WHERE device = ?1",
        "UPDATE OR IGNORE ci_guests SET host_ci = ?2 WHERE host_ci = ?1",
    ] {
        conn.execute(sql, params![from, into])?;
    }
    conn.execute(
        "DELETE FROM ci_links WHERE from_ci = ?1 OR to_ci = ?1 OR device = ?1",
        [from],
    )?;
    conn.execute("DELETE FROM ci_guests WHERE host_ci = ?1", [from])?;
    Ok(())
}

/// Folds CI `from` into CI `into`: agents, reports, history and identifiers move; the newer
/// inventory wins; asset fields of `into` are kept and the gaps filled from `from`.
fn merge(
    conn: &Connection,
    from: i64,
    into: i64,
    agent_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    let newer_inventory: bool = conn.query_row(
        "SELECT COALESCE((SELECT collected_at FROM ci_inventory WHERE ci_id = ?1), -1)
              > COALESCE((SELECT collected_at FROM ci_inventory WHERE ci_id = ?2), -1)",
        params![from, into],
        |r| r.get(0),
    )?;
    // The software rows that survive are re-indexed under `into` by the batched merge.
    super::software_index::forget(conn, from)?;
    if newer_inventory {
        super::software_index::forget(conn, into)?;
        conn.execute("DELETE FROM ci_inventory WHERE ci_id = ?1", [into])?;
        conn.execute("DELETE FROM ci_software WHERE ci_id = ?1", [into])?;
        conn.execute(
            "UPDATE ci_inventory SET ci_id = ?2 WHERE ci_id = ?1",
            params![from, into],
        )?;
        conn.execute(
            "UPDATE ci_software SET ci_id = ?2 WHERE ci_id = ?1",
            params![from, into],
        )?;
        super::software_index::queue(conn, into, now)?;
    } else {
        conn.execute("DELETE FROM ci_inventory WHERE ci_id = ?1", [from])?;
        conn.execute("DELETE FROM ci_software WHERE ci_id = ?1", [from])?;
    }
    conn.execute(
        "INSERT OR IGNORE INTO ci_assets (ci_id, updated_at, updated_by) SELECT ?2, updated_at, updated_by FROM ci_assets WHERE ci_id = ?1",
        params![from, into],
    )?;
    for field in [
        "asset_tag",
        "owner",
        "location",
        "cost_centre",
        "purchase_date",
        "warranty_end",
        "supplier",
        "support_contract",
    ] {
        conn.execute(
            &format!(
                "UPDATE ci_assets SET {field} = (SELECT f.{field} FROM ci_assets f WHERE f.ci_id = ?1)
                 WHERE ci_id = ?2 AND {field} = '' AND EXISTS (SELECT 1 FROM ci_assets f WHERE f.ci_id = ?1)"
            ),
            params![from, into],
        )?;
    }
    conn.execute("DELETE FROM ci_assets WHERE ci_id = ?1", [from])?;
    conn.execute(
        "UPDATE agents SET ci_id = ?2 WHERE ci_id = ?1",
        params![from, into],
    )?;
    conn.execute(
        "UPDATE reports SET ci_id = ?2 WHERE ci_id = ?1",
        params![from, into],
    )?;
    conn.execute(
        "UPDATE ci_history SET ci_id = ?2 WHERE ci_id = ?1",
        params![from, into],
    )?;
    conn.execute(
        "INSERT OR IGNORE INTO ci_identifiers (kind, value, ci_id) SELECT kind, value, ?2 FROM ci_identifiers WHERE ci_id = ?1",
        params![from, into],
    )?;
    conn.execute("DELETE FROM ci_identifiers WHERE ci_id = ?1", [from])?;
    conn.execute(
        "UPDATE ci_conflicts SET ci_id = ?2 WHERE ci_id = ?1",
        params![from, into],
    )?;
    conn.execute("DELETE FROM ci_distinct WHERE a = ?1 OR b = ?1", [from])?;
    for sql in [
        "UPDATE OR IGNORE ci_relations SET from_ci = ?2 WHERE from_ci = ?1",
        "UPDATE OR IGNORE ci_relations SET to_ci = ?2 WHERE to_ci = ?1",
        "UPDATE OR IGNORE ci_tags SET ci_id = ?2 WHERE ci_id = ?1",
    ] {
        conn.execute(sql, params![from, into])?;
    }
    conn.execute(
        "DELETE FROM ci_relations WHERE from_ci = ?1 OR to_ci = ?1 OR from_ci = to_ci",
        [from],
    )?;
    conn.execute("DELETE FROM ci_tags WHERE ci_id = ?1", [from])?;
    move_dependents(conn, from, into, now)?;
    conn.execute("DELETE FROM cis WHERE id = ?1", [from])?;
    super::inventory::history_from(
        conn,
        into,
        now,
        "admin",
        "identification",
        &format!("merged CI {from} (agent {agent_id}) into this CI by an admin"),
        serde_json::json!({ "from": from, "agent": agent_id }),
    )
}
