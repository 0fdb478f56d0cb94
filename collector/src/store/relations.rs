//! Relationships between CIs, tags, business services (CIs of class `service`), the history
//! query, impact walks, CI listing with filters, and export/import of services and relationships.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::cis::{CiRow, ci_columns, ci_row};
use super::inventory::{HistoryEntry, history_from};
use super::{Store, StoreError};
use crate::cmdb::classes;

/// The relationship types.
pub const RELATION_KINDS: &[&str] = &[
    "runs_on",
    "installed_on",
    "connected_to",
    "depends_on",
    "member_of",
];

/// Relationship types along which an outage spreads to the CI on the `from` side: if B is down,
/// whatever `depends_on`, `runs_on` or is `installed_on` B is affected.
const IMPACT_KINDS: &[&str] = &["depends_on", "runs_on", "installed_on"];

/// Most CIs an impact walk visits.
const IMPACT_MAX: usize = 100_000;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Relation {
    pub from_id: i64,
    pub from_name: String,
    pub kind: String,
    pub to_id: i64,
    pub to_name: String,
    pub source: String,
}

/// Filters for `ci list`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CiFilter {
    pub class: Option<String>,
    pub tag: Option<String>,
    /// CIs the service depends on (directly or through other CIs).
    pub service: Option<String>,
    /// Name glob with `*` and `?`.
    pub name: Option<String>,
}

/// A CI affected by an outage of another, with the path that links them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Impacted {
    pub id: i64,
    pub name: String,
    pub class: String,
    /// Hops from the CI that is down.
    pub depth: u32,
    /// How it depends on the previous CI of the path.
    pub via: String,
}

/// A service with its members.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceDetail {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub members: Vec<CiRow>,
}

/// What `ci export --format json` writes and `ci import` reads (services and relationships).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CmdbImport {
    /// In an export, the CIs with their key attributes; ignored by an import (CIs come from
    /// their sources: agents, SNMP, asset imports).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cis: Vec<CiRow>,
    #[serde(default)]
    pub services: Vec<ServiceSpec>,
    #[serde(default)]
    pub relations: Vec<RelationSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Member CIs by name or id.
    #[serde(default)]
    pub cis: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelationSpec {
    pub from: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub to: String,
}

/// Why a CMDB admin change was refused; each names the offending input.
#[derive(Debug, thiserror::Error)]
pub enum CmdbError {
    #[error("no CI named or numbered {0}")]
    UnknownCi(String),
    #[error("{count} CIs are named {name}: ids {ids:?}; use an id")]
    AmbiguousCi {
        name: String,
        count: usize,
        ids: Vec<i64>,
    },
    #[error(
        "unknown relationship type {0:?}; one of runs_on, installed_on, connected_to, depends_on, member_of"
    )]
    UnknownKind(String),
    #[error("a CI cannot be related to itself")]
    SelfRelation,
    #[error("no service named {0}")]
    UnknownService(String),
    #[error("a service named {0} already exists")]
    ServiceExists(String),
    #[error("invalid name {0:?}: 1 to 200 characters, no control characters")]
    BadName(String),
    #[error("{0}")]
    Import(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for CmdbError {
    fn from(error: rusqlite::Error) -> Self {
        CmdbError::Store(StoreError::from(error))
    }
}

fn valid_name(name: &str) -> Result<(), CmdbError> {
    if name.trim().is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(CmdbError::BadName(name.into()));
    }
    Ok(())
}

/// Resolves a CI by id or exact name (services included).
fn resolve(conn: &Connection, key: &str) -> Result<i64, CmdbError> {
    if let Ok(id) = key.parse::<i64>() {
        let found = conn
            .query_row("SELECT id FROM cis WHERE id = ?1", [id], |r| r.get(0))
            .optional()?;
        return found.ok_or_else(|| CmdbError::UnknownCi(key.into()));
    }
    let mut stmt = conn.prepare_cached("SELECT id FROM cis WHERE name = ?1 ORDER BY id")?;
    let ids: Vec<i64> = stmt
        .query_map([key], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    match ids.as_slice() {
        [] => Err(CmdbError::UnknownCi(key.into())),
        [id] => Ok(*id),
        _ => Err(CmdbError::AmbiguousCi {
            name: key.into(),
            count: ids.len(),
            ids,
        }),
    }
}

fn service_id(conn: &Connection, name: &str) -> Result<i64, CmdbError> {
    conn.query_row(
        "SELECT id FROM cis WHERE class = 'service' AND name = ?1",
        [name],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| CmdbError::UnknownService(name.into()))
}

fn name_of(conn: &Connection, id: i64) -> Result<String, CmdbError> {
    Ok(conn
        .query_row("SELECT name FROM cis WHERE id = ?1", [id], |r| r.get(0))
        .optional()?
        .unwrap_or_else(|| format!("#{id}")))
}

pub(super) fn relate_in_tx(
    conn: &Connection,
    from: &str,
    kind: &str,
    to: &str,
    source: &str,
) -> Result<bool, CmdbError> {
    if !RELATION_KINDS.contains(&kind) {
        return Err(CmdbError::UnknownKind(kind.into()));
    }
    let (from_id, to_id) = (resolve(conn, from)?, resolve(conn, to)?);
    if from_id == to_id {
        return Err(CmdbError::SelfRelation);
    }
    let now = crate::now_ms();
    let added = conn.execute(
        "INSERT OR IGNORE INTO ci_relations (from_ci, kind, to_ci, source, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![from_id, kind, to_id, source, now],
    )? > 0;
    if added {
        let (from_name, to_name) = (name_of(conn, from_id)?, name_of(conn, to_id)?);
        let detail = serde_json::json!({ "from": from_id, "kind": kind, "to": to_id });
        history_from(
            conn,
            from_id,
            now,
            source,
            "relationship",
            &format!("{from_name} {kind} {to_name} added"),
            detail.clone(),
        )?;
        history_from(
            conn,
            to_id,
            now,
            source,
            "relationship",
            &format!("{from_name} {kind} {to_name} added"),
            detail,
        )?;
    }
    Ok(added)
}

fn unrelate_in_tx(conn: &Connection, from: &str, kind: &str, to: &str) -> Result<bool, CmdbError> {
    if !RELATION_KINDS.contains(&kind) {
        return Err(CmdbError::UnknownKind(kind.into()));
    }
    let (from_id, to_id) = (resolve(conn, from)?, resolve(conn, to)?);
    let removed = conn.execute(
        "DELETE FROM ci_relations WHERE from_ci = ?1 AND kind = ?2 AND to_ci = ?3",
        params![from_id, kind, to_id],
    )? > 0;
    if removed {
        let now = crate::now_ms();
        let summary = format!(
            "{} {kind} {} removed",
            name_of(conn, from_id)?,
            name_of(conn, to_id)?
        );
        for id in [from_id, to_id] {
            history_from(
                conn,
                id,
                now,
                "admin",
                "relationship",
                &summary,
                serde_json::json!({ "from": from_id, "kind": kind, "to": to_id }),
            )?;
        }
    }
    Ok(removed)
}

fn create_service_in_tx(
    conn: &Connection,
    name: &str,
    description: &str,
    source: &str,
) -> Result<i64, CmdbError> {
    valid_name(name)?;
    if service_id(conn, name).is_ok() {
        return Err(CmdbError::ServiceExists(name.into()));
    }
    let now = crate::now_ms();
    let id: i64 = conn.query_row(
        "INSERT INTO cis (identity_key, name, class, first_seen_at, identity_at, attributes)
         VALUES (?1, ?2, 'service', ?3, ?3, ?4) RETURNING id",
        params![
            format!("service:{name}"),
            name,
            now,
            serde_json::json!({ "description": description }).to_string()
        ],
        |r| r.get(0),
    )?;
    history_from(
        conn,
        id,
        now,
        source,
        "service",
        &format!("service {name} created"),
        serde_json::json!({}),
    )?;
    Ok(id)
}

/// Relationships of a CI, both directions.
pub(super) fn relations_of(conn: &Connection, ci_id: i64) -> Result<Vec<Relation>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.from_ci, f.name, r.kind, r.to_ci, t.name, r.source FROM ci_relations r
         JOIN cis f ON f.id = r.from_ci JOIN cis t ON t.id = r.to_ci
         WHERE r.from_ci = ?1 OR r.to_ci = ?1 ORDER BY r.kind, f.name, t.name",
    )?;
    let rows = stmt
        .query_map([ci_id], |r| {
            Ok(Relation {
                from_id: r.get(0)?,
                from_name: r.get(1)?,
                kind: r.get(2)?,
                to_id: r.get(3)?,
                to_name: r.get(4)?,
                source: r.get(5)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(super) fn tags_of(conn: &Connection, ci_id: i64) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT tag FROM ci_tags WHERE ci_id = ?1 ORDER BY tag")?;
    let tags = stmt
        .query_map([ci_id], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(tags)
}

/// The CIs an outage of `root` affects: everything that depends on, runs on or is installed on
/// it, transitively (breadth first, each CI once).
fn impact(conn: &Connection, root: i64) -> Result<Vec<Impacted>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT r.from_ci, r.kind, c.name, c.class FROM ci_relations r JOIN cis c ON c.id = r.from_ci
         WHERE r.to_ci = ?1 AND r.kind IN ({})",
        IMPACT_KINDS
            .iter()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(",")
    ))?;
    let mut seen = BTreeSet::from([root]);
    let mut queue = VecDeque::from([(root, 0u32)]);
    let mut out = Vec::new();
    while let Some((id, depth)) = queue.pop_front() {
        let dependants: Vec<(i64, String, String, String)> = stmt
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        for (from, kind, name, class) in dependants {
            if seen.insert(from) && out.len() < IMPACT_MAX {
                out.push(Impacted {
                    id: from,
                    name,
                    class,
                    depth: depth + 1,
                    via: kind,
                });
                queue.push_back((from, depth + 1));
            }
        }
    }
    Ok(out)
}

/// The CIs a service depends on, transitively (the reverse of [`impact`]).
fn dependencies(conn: &Connection, root: i64) -> Result<BTreeSet<i64>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT to_ci FROM ci_relations WHERE from_ci = ?1 AND kind IN ({})",
        IMPACT_KINDS
            .iter()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(",")
    ))?;
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([root]);
    while let Some(id) = queue.pop_front() {
        for to in stmt.query_map([id], |r| r.get::<_, i64>(0))? {
            let to = to?;
            if seen.len() < IMPACT_MAX && seen.insert(to) {
                queue.push_back(to);
            }
        }
    }
    Ok(seen)
}

impl Store {
    pub async fn relate(&self, from: String, kind: String, to: String) -> Result<bool, CmdbError> {
        self.inner
            .writer
            .write(move |conn| relate_in_tx(conn, &from, &kind, &to, "admin"))
            .await
    }

    pub async fn unrelate(
        &self,
        from: String,
        kind: String,
        to: String,
    ) -> Result<bool, CmdbError> {
        self.inner
            .writer
            .write(move |conn| unrelate_in_tx(conn, &from, &kind, &to))
            .await
    }

    /// Adds (or with `remove`, removes) a tag.
    pub async fn tag(&self, ci: String, tag: String, remove: bool) -> Result<bool, CmdbError> {
        self.inner
            .writer
            .write(move |conn| {
                valid_name(&tag)?;
                let id = resolve(conn, &ci)?;
                let changed = if remove {
                    conn.execute(
                        "DELETE FROM ci_tags WHERE ci_id = ?1 AND tag = ?2",
                        params![id, tag],
                    )?
                } else {
                    conn.execute(
                        "INSERT OR IGNORE INTO ci_tags (ci_id, tag) VALUES (?1, ?2)",
                        params![id, tag],
                    )?
                } > 0;
                if changed {
                    let verb = if remove { "removed" } else { "added" };
                    history_from(
                        conn,
                        id,
                        crate::now_ms(),
                        "admin",
                        "tag",
                        &format!("tag {tag} {verb}"),
                        serde_json::json!({ "tag": tag }),
                    )?;
                }
                Ok(changed)
            })
            .await
    }

    pub async fn create_service(
        &self,
        name: String,
        description: String,
    ) -> Result<i64, CmdbError> {
        self.inner
            .writer
            .write(move |conn| create_service_in_tx(conn, &name, &description, "admin"))
            .await
    }

    /// Makes the service depend on each CI (all or nothing).
    pub async fn add_to_service(
        &self,
        service: String,
        cis: Vec<String>,
    ) -> Result<usize, CmdbError> {
        self.inner
            .writer
            .write(move |conn| {
                let id = service_id(conn, &service)?.to_string();
                let mut added = 0;
                for ci in &cis {
                    added += usize::from(relate_in_tx(conn, &id, "depends_on", ci, "admin")?);
                }
                Ok(added)
            })
            .await
    }

    pub async fn service(&self, name: String) -> Result<ServiceDetail, CmdbError> {
        self.read(move |conn| {
            let result = (|| -> Result<ServiceDetail, CmdbError> {
                let id = service_id(conn, &name)?;
                let attributes: String =
                    conn.query_row("SELECT attributes FROM cis WHERE id = ?1", [id], |r| {
                        r.get(0)
                    })?;
                let description = serde_json::from_str::<serde_json::Value>(&attributes)
                    .ok()
                    .and_then(|a| a["description"].as_str().map(str::to_string))
                    .unwrap_or_default();
                let members = dependencies(conn, id)?;
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {} FROM cis c WHERE c.id = ?1",
                    ci_columns()
                ))?;
                let mut rows = Vec::new();
                for member in members {
                    rows.push(stmt.query_row([member], ci_row)?);
                }
                rows.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(ServiceDetail {
                    id,
                    name: name.clone(),
                    description,
                    members: rows,
                })
            })();
            Ok(result)
        })
        .await?
    }

    /// The CIs (services included) an outage of `ci` affects.
    pub async fn impact(&self, ci: String) -> Result<Vec<Impacted>, CmdbError> {
        self.read(move |conn| {
            Ok((|| -> Result<Vec<Impacted>, CmdbError> {
                let id = resolve(conn, &ci)?;
                Ok(impact(conn, id)?)
            })())
        })
        .await?
    }

    /// A CI's history, newest first, optionally only since `since_ms`.
    pub async fn history(
        &self,
        ci: String,
        since_ms: Option<i64>,
    ) -> Result<Vec<HistoryEntry>, CmdbError> {
        self.read(move |conn| {
            Ok((|| -> Result<Vec<HistoryEntry>, CmdbError> {
                let id = resolve(conn, &ci)?;
                let rows =
                    super::inventory::history_of(conn, id, since_ms.unwrap_or(i64::MIN), i64::MAX)?;
                Ok(rows)
            })())
        })
        .await?
    }

    /// Deletes history entries older than `cutoff_ms`, in bounded chunks.
    pub async fn prune_history(&self, cutoff_ms: i64) -> Result<usize, StoreError> {
        self.delete_in_chunks(
            &format!(
                "DELETE FROM ci_history WHERE id IN (SELECT id FROM ci_history WHERE at < ?1 LIMIT {})",
                super::cis::DELETE_CHUNK
            ),
            cutoff_ms,
        )
        .await
    }

    /// CIs matching every given filter, by name.
    pub async fn list_cis_filtered(&self, filter: CiFilter) -> Result<Vec<CiRow>, CmdbError> {
        self.read(move |conn| {
            Ok((|| -> Result<Vec<CiRow>, CmdbError> {
                let members = match &filter.service {
                    Some(service) => Some(dependencies(conn, service_id(conn, service)?)?),
                    None => None,
                };
                let mut stmt = conn.prepare(&super::cis::list_sql(
                    "WHERE (?1 IS NULL OR c.class = ?1)
                       AND (?2 IS NULL OR EXISTS (SELECT 1 FROM ci_tags t WHERE t.ci_id = c.id AND t.tag = ?2))",
                ))?;
                let rows = stmt
                    .query_map(params![filter.class, filter.tag], ci_row)?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows
                    .into_iter()
                    .filter(|row| members.as_ref().is_none_or(|m| m.contains(&row.id)))
                    .filter(|row| {
                        filter
                            .name
                            .as_deref()
                            .is_none_or(|glob| steward_agent::config::glob_match(glob, &row.name))
                    })
                    .collect())
            })())
        })
        .await?
    }

    /// Services and relationships, as `ci import` reads them back.
    pub async fn export_structure(&self) -> Result<CmdbImport, StoreError> {
        self.read(|conn| {
            let mut services = BTreeMap::new();
            let mut stmt =
                conn.prepare("SELECT id, name, attributes FROM cis WHERE class = 'service' ORDER BY name")?;
            for row in stmt.query_map([], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
            })? {
                let (id, name, attributes) = row?;
                let description = serde_json::from_str::<serde_json::Value>(&attributes)
                    .ok()
                    .and_then(|a| a["description"].as_str().map(str::to_string))
                    .unwrap_or_default();
                services.insert(
                    id,
                    ServiceSpec {
                        name,
                        description,
                        cis: Vec::new(),
                    },
                );
            }
            let mut relations = Vec::new();
            let mut stmt = conn.prepare(
                "SELECT r.from_ci, f.name, r.kind, t.name FROM ci_relations r
                 JOIN cis f ON f.id = r.from_ci JOIN cis t ON t.id = r.to_ci ORDER BY f.name, r.kind, t.name",
            )?;
            for row in stmt.query_map([], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
            })? {
                let (from_id, from, kind, to) = row?;
                match services.get_mut(&from_id) {
                    Some(service) if kind == "depends_on" => service.cis.push(to),
                    _ => relations.push(RelationSpec { from, kind, to }),
                }
            }
            Ok(CmdbImport {
                cis: Vec::new(),
                services: services.into_values().collect(),
                relations,
            })
        })
        .await
    }

    /// Creates the services and relationships of an import, all or nothing. Returns (services
    /// created, relationships added).
    pub async fn import_structure(&self, import: CmdbImport) -> Result<(usize, usize), CmdbError> {
        self.inner
            .writer
            .write(move |conn| {
                let mut created = 0;
                let mut added = 0;
                for (index, service) in import.services.iter().enumerate() {
                    let at = |error: CmdbError| {
                        CmdbError::Import(format!("services[{index}] ({}): {error}", service.name))
                    };
                    let id = match service_id(conn, &service.name) {
                        Ok(id) => id,
                        Err(_) => {
                            created += 1;
                            create_service_in_tx(
                                conn,
                                &service.name,
                                &service.description,
                                "import",
                            )
                            .map_err(at)?
                        }
                    };
                    for ci in &service.cis {
                        added += usize::from(
                            relate_in_tx(conn, &id.to_string(), "depends_on", ci, "import")
                                .map_err(at)?,
                        );
                    }
                }
                for (index, relation) in import.relations.iter().enumerate() {
                    added += usize::from(
                        relate_in_tx(conn, &relation.from, &relation.kind, &relation.to, "import")
                            .map_err(|error| {
                                CmdbError::Import(format!(
                                    "relations[{index}] ({} {} {}): {error}",
                                    relation.from, relation.kind, relation.to
                                ))
                            })?,
                    );
                }
                Ok((created, added))
            })
            .await
    }
}

/// Whether `class` is a known class name (for `ci list --class`).
pub fn known_class(class: &str) -> bool {
    classes::ALL.contains(&class)
}

/// Records the guests a hypervisor host declares and keeps `guest runs_on host` relationships
/// (source `agent`) in step: new guests found as CIs are related, guests no longer declared are
/// unrelated. Guests whose CI does not exist yet are related when it appears (see
/// [`relate_to_declaring_host`]).
pub(super) fn sync_guests(
    conn: &Connection,
    host: i64,
    guests: &[steward_shared::v1::VirtualGuest],
) -> Result<(), StoreError> {
    let canonical = |u: &str| crate::cmdb::identify::canonical_uuid(u);
    let declared: BTreeMap<String, &str> = guests
        .iter()
        .filter(|g| crate::inventory::junk::usable_uuid(&g.uuid).is_some())
        .map(|g| (canonical(&g.uuid), g.name.as_str()))
        .collect();
    conn.execute("DELETE FROM ci_guests WHERE host_ci = ?1", [host])?;
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO ci_guests (host_ci, uuid, name) VALUES (?1, ?2, ?3)",
    )?;
    for (uuid, name) in &declared {
        insert.execute(params![host, uuid, name])?;
    }
    // The guests' CIs, by their UUID identifier.
    let mut find = conn.prepare_cached(
        "SELECT ci_id FROM ci_identifiers WHERE kind = 'uuid' AND value = ?1 AND ci_id != ?2",
    )?;
    let mut wanted = BTreeSet::new();
    for uuid in declared.keys() {
        for id in find.query_map(params![uuid, host], |r| r.get::<_, i64>(0))? {
            wanted.insert(id?);
        }
    }
    let current: BTreeSet<i64> = conn
        .prepare_cached(
            "SELECT from_ci FROM ci_relations WHERE to_ci = ?1 AND kind = 'runs_on' AND source = 'agent'",
        )?
        .query_map([host], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let now = crate::now_ms();
    for gone in current.difference(&wanted) {
        conn.execute(
            "DELETE FROM ci_relations WHERE from_ci = ?1 AND kind = 'runs_on' AND to_ci = ?2",
            params![gone, host],
        )
        .map_err(StoreError::from)?;
        let summary = format!(
            "{} runs_on {} removed (no longer defined on that host)",
            name_of(conn, *gone).unwrap_or_default(),
            name_of(conn, host).unwrap_or_default()
        );
        for id in [*gone, host] {
            history_from(
                conn,
                id,
                now,
                "agent",
                "relationship",
                &summary,
                serde_json::json!({}),
            )?;
        }
    }
    for new in wanted.difference(&current) {
        relate_ids(conn, *new, "runs_on", host, "agent").map_err(|e| match e {
            CmdbError::Store(e) => e,
            other => StoreError::Task(other.to_string()),
        })?;
    }
    Ok(())
}

/// When a CI's UUID becomes known, relates it to the host that declared it as a guest.
pub(super) fn relate_to_declaring_host(
    conn: &Connection,
    ci: i64,
    uuid: &str,
) -> Result<(), StoreError> {
    let hosts: Vec<i64> = conn
        .prepare_cached("SELECT host_ci FROM ci_guests WHERE uuid = ?1 AND host_ci != ?2")?
        .query_map(params![uuid, ci], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for host in hosts {
        relate_ids(conn, ci, "runs_on", host, "agent").map_err(|e| match e {
            CmdbError::Store(e) => e,
            other => StoreError::Task(other.to_string()),
        })?;
    }
    Ok(())
}

/// [`relate_in_tx`] by CI ids.
pub(super) fn relate_ids(
    conn: &Connection,
    from: i64,
    kind: &str,
    to: i64,
    source: &str,
) -> Result<bool, CmdbError> {
    relate_in_tx(conn, &from.to_string(), kind, &to.to_string(), source)
}
