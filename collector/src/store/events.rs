//! Events and their transitions, silences and maintenance windows. The rules engine decides
//! what changes; this records it: one open event per (rule, CI, instance), every state or
//! severity change a transition row, all of a batch in one transaction.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::tickets::{OP_ACKNOWLEDGE, OP_COMMENT, OP_RESOLVE, event_key, queue_open, queue_update};
use super::{Store, StoreError};
use crate::tickets::route::Destination;

/// One change the rules engine decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventChange {
    pub rule: String,
    pub ci_id: i64,
    pub instance: String,
    /// pending, firing, flapping or resolved.
    pub to_state: String,
    /// warning or critical.
    pub severity: String,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub at: i64,
    pub summary: String,
    pub description: String,
    /// Why it is not escalated (a silence, a maintenance window, a symptom), if so.
    pub silenced_by: Option<String>,
    /// The CI whose open event this one is a symptom of.
    pub symptom_of_ci: Option<i64>,
    pub note: String,
    /// Escalate it now: mark it escalated and queue its tickets to these destinations (none
    /// when no connector takes it). `None`: not now (pending, held back, or escalated before).
    #[serde(default)]
    pub escalate: Option<Vec<Destination>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRow {
    pub id: i64,
    pub rule: String,
    pub ci_id: i64,
    pub ci_name: String,
    pub instance: String,
    pub state: String,
    pub severity: String,
    pub summary: String,
    pub description: String,
    pub first_seen_at: i64,
    pub last_seen_at: i64,
    pub count: i64,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub acknowledged_at: Option<i64>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<i64>,
    pub resolved_reason: Option<String>,
    pub silenced_by: Option<String>,
    pub escalated_at: Option<i64>,
    pub symptom_of: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransitionRow {
    pub at: i64,
    pub from_state: Option<String>,
    pub to_state: String,
    pub severity: String,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub note: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EventFilter {
    pub state: Option<String>,
    /// CI name or id.
    pub ci: Option<String>,
    pub limit: Option<i64>,
}

/// A silence or a maintenance window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SilenceRow {
    pub id: i64,
    /// silence or window.
    pub kind: String,
    /// `{"ci": NAME}`, `{"service": NAME}` or `{"selector": {...}}`.
    pub matcher: serde_json::Value,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub recurrence: String,
    pub reason: String,
    pub created_by: String,
    pub created_at: i64,
    pub removed_at: Option<i64>,
}

const EVENT_COLUMNS: &str =
    "e.id, e.rule, e.ci_id, c.name, e.instance, e.state, e.severity, e.summary,
    e.description, e.first_seen_at, e.last_seen_at, e.count, e.value, e.threshold,
    e.acknowledged_at, e.acknowledged_by, e.resolved_at, e.resolved_reason, e.silenced_by,
    e.escalated_at, e.symptom_of";

fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        id: r.get(0)?,
        rule: r.get(1)?,
        ci_id: r.get(2)?,
        ci_name: r.get(3)?,
        instance: r.get(4)?,
        state: r.get(5)?,
        severity: r.get(6)?,
        summary: r.get(7)?,
        description: r.get(8)?,
        first_seen_at: r.get(9)?,
        last_seen_at: r.get(10)?,
        count: r.get(11)?,
        value: r.get(12)?,
        threshold: r.get(13)?,
        acknowledged_at: r.get(14)?,
        acknowledged_by: r.get(15)?,
        resolved_at: r.get(16)?,
        resolved_reason: r.get(17)?,
        silenced_by: r.get(18)?,
        escalated_at: r.get(19)?,
        symptom_of: r.get(20)?,
    })
}

/// Applies one change; returns the event's id (none for a change that opens nothing, e.g. a
/// resolve of an event that is not open).
pub(super) fn apply_change(conn: &Connection, c: &EventChange) -> Result<Option<i64>, StoreError> {
    // The engine may still hold state for a CI an admin merged away meanwhile: its changes are
    // dropped, not allowed to fail the batch (the merge moved its events to the other CI).
    let exists = conn
        .prepare_cached("SELECT 1 FROM cis WHERE id = ?1")?
        .query_row([c.ci_id], |_| Ok(()))
        .optional()?
        .is_some();
    if !exists {
        return Ok(None);
    }
    let open: Option<(i64, String, String, bool)> = conn
        .prepare_cached(
            "SELECT id, state, severity, escalated_at IS NOT NULL FROM events
             WHERE rule = ?1 AND ci_id = ?2 AND instance = ?3 AND state != 'resolved'",
        )?
        .query_row(params![c.rule, c.ci_id, c.instance], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let escalated = open.as_ref().is_some_and(|o| o.3);
    let before: Option<(String, String)> = open.as_ref().map(|o| (o.1.clone(), o.2.clone()));
    let symptom_of: Option<i64> = match c.symptom_of_ci {
        Some(root) => conn
            .prepare_cached(
                "SELECT id FROM events WHERE ci_id = ?1 AND state IN ('firing', 'flapping')
                 ORDER BY first_seen_at LIMIT 1",
            )?
            .query_row([root], |r| r.get(0))
            .optional()?,
        None => None,
    };
    let from: Option<String> = open.as_ref().map(|o| o.1.clone());
    let id = match open {
        None if c.to_state == "resolved" => return Ok(None),
        None => conn
            .prepare_cached(
                "INSERT INTO events (rule, ci_id, instance, state, severity, summary, description,
                     first_seen_at, last_seen_at, count, value, threshold, silenced_by, symptom_of)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10, ?11, ?12, ?13) RETURNING id",
            )?
            .query_row(
                params![
                    c.rule,
                    c.ci_id,
                    c.instance,
                    c.to_state,
                    c.severity,
                    c.summary,
                    c.description,
                    c.at,
                    i64::from(c.to_state == "firing"),
                    c.value,
                    c.threshold,
                    c.silenced_by,
                    symptom_of
                ],
                |r| r.get(0),
            )?,
        Some((id, state, severity, _)) => {
            if state == c.to_state && severity == c.severity {
                // The same state again: only the value and when it was last seen.
                conn.prepare_cached(
                    "UPDATE events SET last_seen_at = ?2, value = ?3 WHERE id = ?1",
                )?
                .execute(params![id, c.at, c.value])?;
                if let Some(destinations) = &c.escalate {
                    escalate(conn, id, c, destinations)?;
                }
                return Ok(Some(id));
            }
            conn.prepare_cached(
                "UPDATE events SET state = ?2, severity = ?3, summary = ?4, description = ?5,
                     last_seen_at = ?6, value = ?7, threshold = ?8,
                     count = count + ?9,
                     resolved_at = CASE WHEN ?2 = 'resolved' THEN ?6 END,
                     resolved_reason = CASE WHEN ?2 = 'resolved' THEN ?10 END,
                     silenced_by = CASE WHEN ?2 = 'resolved' THEN silenced_by ELSE ?11 END,
                     symptom_of = COALESCE(?12, symptom_of)
                 WHERE id = ?1",
            )?
            .execute(params![
                id,
                c.to_state,
                c.severity,
                c.summary,
                c.description,
                c.at,
                c.value,
                c.threshold,
                i64::from(c.to_state == "firing" && state != "firing"),
                if c.note.is_empty() {
                    "recovered"
                } else {
                    c.note.as_str()
                },
                c.silenced_by,
                symptom_of
            ])?;
            id
        }
    };
    conn.prepare_cached(
        "INSERT INTO event_transitions (event_id, at, from_state, to_state, severity, value, threshold, note)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![id, c.at, from, c.to_state, c.severity, c.value, c.threshold, c.note])?;
    match &c.escalate {
        Some(destinations) if !escalated => escalate(conn, id, c, destinations)?,
        _ if escalated => {
            if let Some((op, note)) = ticket_update(before.as_ref(), c) {
                queue_update(conn, id, op, &note, c.at)?;
            }
        }
        _ => {}
    }
    Ok(Some(id))
}

/// Marks an event escalated and queues its tickets, in the transaction of its change.
fn escalate(
    conn: &Connection,
    id: i64,
    c: &EventChange,
    destinations: &[Destination],
) -> Result<(), StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE events SET escalated_at = ?2, silenced_by = NULL
             WHERE id = ?1 AND escalated_at IS NULL",
        )?
        .execute(params![id, c.at])?;
    if changed > 0 {
        let key = event_key(&c.rule, c.ci_id, &c.instance);
        queue_open(conn, id, &key, destinations, &c.note, c.at)?;
    }
    Ok(())
}

/// What an escalated event's change asks of its tickets: resolve when it clears, one comment
/// when it starts flapping (not a ticket per flap), a comment when its severity moves.
fn ticket_update(
    before: Option<&(String, String)>,
    c: &EventChange,
) -> Option<(&'static str, String)> {
    let (state, severity) = before?;
    let number = crate::rules::template::format_number;
    let value = match (c.value, c.threshold) {
        (Some(v), Some(t)) => format!(" (value {}, threshold {})", number(v), number(t)),
        (Some(v), None) => format!(" (value {})", number(v)),
        _ => String::new(),
    };
    if c.to_state == "resolved" {
        let why = if c.note.is_empty() {
            "recovered"
        } else {
            c.note.as_str()
        };
        return Some((
            OP_RESOLVE,
            format!(
                "Resolved by Steward at {}: {why}{value}.",
                crate::format_ms(Some(c.at))
            ),
        ));
    }
    if c.to_state == "flapping" && state != "flapping" {
        return Some((
            OP_COMMENT,
            format!(
                "Flapping: {} keeps changing state{value}; Steward comments here instead of opening tickets, and resolves this one when it settles.",
                c.summary
            ),
        ));
    }
    if severity != &c.severity && c.to_state != "pending" {
        return Some((
            OP_COMMENT,
            format!(
                "Severity {severity} -> {}{value}: {}",
                c.severity, c.summary
            ),
        ));
    }
    None
}

fn resolve_ci(conn: &Connection, key: &str) -> Result<Option<i64>, StoreError> {
    if let Ok(id) = key.parse::<i64>() {
        return Ok(Some(id));
    }
    Ok(conn
        .prepare_cached("SELECT id FROM cis WHERE name = ?1 ORDER BY id LIMIT 1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

impl Store {
    /// Records the engine's changes in one transaction. Returns the ids of the events changed,
    /// in the order of `changes` (`None` where nothing was open to resolve).
    pub async fn apply_event_changes(
        &self,
        changes: Vec<EventChange>,
    ) -> Result<Vec<Option<i64>>, StoreError> {
        let ids = self
            .inner
            .writer
            .write(move |conn| {
                changes
                    .iter()
                    .map(|c| apply_change(conn, c))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await;
        self.outbox_changed();
        ids
    }

    pub async fn list_events(&self, filter: EventFilter) -> Result<Vec<EventRow>, StoreError> {
        self.read(move |conn| {
            let ci = match &filter.ci {
                Some(key) => match resolve_ci(conn, key)? {
                    Some(id) => Some(id),
                    None => return Ok(Vec::new()),
                },
                None => None,
            };
            let mut stmt = conn.prepare(&format!(
                "SELECT {EVENT_COLUMNS} FROM events e JOIN cis c ON c.id = e.ci_id
                 WHERE (?1 IS NULL OR e.state = ?1) AND (?2 IS NULL OR e.ci_id = ?2)
                 ORDER BY e.last_seen_at DESC, e.id DESC LIMIT ?3"
            ))?;
            let rows = stmt
                .query_map(
                    params![filter.state, ci, filter.limit.unwrap_or(1000)],
                    event_row,
                )?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Every open event (for the engine after a restart).
    pub async fn open_events(&self) -> Result<Vec<EventRow>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {EVENT_COLUMNS} FROM events e JOIN cis c ON c.id = e.ci_id
                 WHERE e.state != 'resolved' ORDER BY e.id"
            ))?;
            let rows = stmt
                .query_map([], event_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// An event and its transitions, oldest first.
    pub async fn event(
        &self,
        id: i64,
    ) -> Result<Option<(EventRow, Vec<TransitionRow>)>, StoreError> {
        self.read(move |conn| {
            let Some(event) = conn
                .prepare(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events e JOIN cis c ON c.id = e.ci_id WHERE e.id = ?1"
                ))?
                .query_row([id], event_row)
                .optional()?
            else {
                return Ok(None);
            };
            let mut stmt = conn.prepare(
                "SELECT at, from_state, to_state, severity, value, threshold, note
                 FROM event_transitions WHERE event_id = ?1 ORDER BY at, rowid",
            )?;
            let transitions = stmt
                .query_map([id], |r| {
                    Ok(TransitionRow {
                        at: r.get(0)?,
                        from_state: r.get(1)?,
                        to_state: r.get(2)?,
                        severity: r.get(3)?,
                        value: r.get(4)?,
                        threshold: r.get(5)?,
                        note: r.get(6)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some((event, transitions)))
        })
        .await
    }

    /// Acknowledges an open event. Returns the event, or `None` if there is no such event.
    pub async fn ack_event(&self, id: i64, by: String) -> Result<Option<EventRow>, StoreError> {
        let found = self
            .inner
            .writer
            .write(move |conn| {
                let at = crate::now_ms();
                let state: Option<(String, String)> = conn
                    .query_row("SELECT state, severity FROM events WHERE id = ?1", [id], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()?;
                let Some((state, severity)) = state else {
                    return Ok::<_, StoreError>(false);
                };
                conn.execute(
                    "UPDATE events SET acknowledged_at = ?2, acknowledged_by = ?3 WHERE id = ?1",
                    params![id, at, by],
                )?;
                conn.execute(
                    "INSERT INTO event_transitions (event_id, at, from_state, to_state, severity, note)
                     VALUES (?1, ?2, ?3, ?3, ?4, ?5)",
                    params![id, at, state, severity, format!("acknowledged by {by}")],
                )?;
                let escalated: bool = conn.query_row(
                    "SELECT escalated_at IS NOT NULL FROM events WHERE id = ?1",
                    [id],
                    |r| r.get(0),
                )?;
                if escalated && state != "resolved" {
                    queue_update(
                        conn,
                        id,
                        OP_ACKNOWLEDGE,
                        &format!("Acknowledged in Steward by {by}."),
                        at,
                    )?;
                }
                Ok(true)
            })
            .await?;
        self.outbox_changed();
        if !found {
            return Ok(None);
        }
        Ok(self.event(id).await?.map(|(e, _)| e))
    }

    /// Resolves an open event by hand. Returns the event before the change (`None`: no such
    /// event; its state tells the caller whether it was open).
    pub async fn resolve_event(
        &self,
        id: i64,
        reason: String,
        by: String,
    ) -> Result<Option<EventRow>, StoreError> {
        let before = self.event(id).await?.map(|(e, _)| e);
        let Some(event) = before.clone() else {
            return Ok(None);
        };
        if event.state == "resolved" {
            return Ok(before);
        }
        self.apply_event_changes(vec![EventChange {
            rule: event.rule,
            ci_id: event.ci_id,
            instance: event.instance,
            to_state: "resolved".into(),
            severity: event.severity,
            value: event.value,
            threshold: event.threshold,
            at: crate::now_ms(),
            summary: event.summary,
            description: event.description,
            silenced_by: None,
            symptom_of_ci: None,
            note: format!("resolved by {by}: {reason}"),
            escalate: None,
        }])
        .await?;
        Ok(before)
    }

    /// Escalates events held back until now (a silence or window ended, a root cause
    /// cleared): each is marked escalated and its tickets queued in one transaction.
    pub async fn escalate_events(
        &self,
        events: Vec<(i64, Vec<Destination>)>,
        at: i64,
    ) -> Result<(), StoreError> {
        self.inner
            .writer
            .write(move |conn| {
                for (id, destinations) in &events {
                    let Some((rule, ci_id, instance)) = conn
                        .prepare_cached(
                            "SELECT rule, ci_id, instance FROM events
                             WHERE id = ?1 AND escalated_at IS NULL AND state != 'resolved'",
                        )?
                        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                        .optional()?
                    else {
                        continue;
                    };
                    let change = EventChange {
                        rule,
                        ci_id,
                        instance,
                        to_state: String::new(),
                        severity: String::new(),
                        value: None,
                        threshold: None,
                        at,
                        summary: String::new(),
                        description: String::new(),
                        silenced_by: None,
                        symptom_of_ci: None,
                        note: "escalated after being held back".into(),
                        escalate: None,
                    };
                    escalate(conn, *id, &change, destinations)?;
                }
                Ok::<_, StoreError>(())
            })
            .await?;
        self.outbox_changed();
        Ok(())
    }

    pub async fn add_silence(&self, silence: SilenceRow) -> Result<i64, StoreError> {
        self.inner
            .writer
            .write(move |conn| {
                Ok::<_, StoreError>(conn.query_row(
                    "INSERT INTO silences (kind, matcher, starts_at, ends_at, recurrence, reason, created_by, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
                    params![
                        silence.kind,
                        silence.matcher.to_string(),
                        silence.starts_at,
                        silence.ends_at,
                        silence.recurrence,
                        silence.reason,
                        silence.created_by,
                        silence.created_at
                    ],
                    |r| r.get(0),
                )?)
            })
            .await
    }

    /// Silences and windows not removed (with `all`, removed ones too), newest first.
    pub async fn list_silences(&self, all: bool) -> Result<Vec<SilenceRow>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT id, kind, matcher, starts_at, ends_at, recurrence, reason, created_by, created_at, removed_at
                 FROM silences WHERE ?1 OR removed_at IS NULL ORDER BY id DESC",
            )?;
            let rows = stmt
                .query_map([all], |r| {
                    let matcher: String = r.get(2)?;
                    Ok(SilenceRow {
                        id: r.get(0)?,
                        kind: r.get(1)?,
                        matcher: serde_json::from_str(&matcher).unwrap_or_default(),
                        starts_at: r.get(3)?,
                        ends_at: r.get(4)?,
                        recurrence: r.get(5)?,
                        reason: r.get(6)?,
                        created_by: r.get(7)?,
                        created_at: r.get(8)?,
                        removed_at: r.get(9)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Removes a silence or window (kept, marked removed). Returns whether it was active.
    pub async fn remove_silence(&self, id: i64) -> Result<bool, StoreError> {
        self.inner
            .writer
            .write(move |conn| {
                Ok::<_, StoreError>(
                    conn.execute(
                        "UPDATE silences SET removed_at = ?2 WHERE id = ?1 AND removed_at IS NULL",
                        params![id, crate::now_ms()],
                    )? > 0,
                )
            })
            .await
    }
}

/// What the rules engine needs to know of the CMDB: each CI's class and tags, which services
/// depend on it (directly or through other CIs), and which CIs it is reached through.
#[derive(Debug, Clone, Default)]
pub struct RulesContext {
    /// (id, name, class, tags)
    pub cis: Vec<(i64, String, String, Vec<String>)>,
    /// CI id → names of the services that depend on it.
    pub services: std::collections::HashMap<i64, Vec<String>>,
    /// CI id → the CIs it is reached through: the network device a host is connected to, the
    /// host a virtual machine runs on.
    pub upstream: std::collections::HashMap<i64, Vec<i64>>,
}

/// Relationship kinds along which a service depends on a CI (as `ci impact` walks them).
const DEPENDS: &[&str] = &["depends_on", "runs_on", "installed_on"];

impl Store {
    pub async fn rules_context(&self) -> Result<RulesContext, StoreError> {
        self.read(|conn| {
            use std::collections::{HashMap, HashSet, VecDeque};
            let mut tags: HashMap<i64, Vec<String>> = HashMap::new();
            for row in conn
                .prepare("SELECT ci_id, tag FROM ci_tags ORDER BY ci_id, tag")?
                .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
            {
                let (ci, tag) = row?;
                tags.entry(ci).or_default().push(tag);
            }
            let mut context = RulesContext::default();
            let mut classes: HashMap<i64, String> = HashMap::new();
            let mut service_names: Vec<(i64, String)> = Vec::new();
            for row in conn
                .prepare("SELECT id, name, class FROM cis ORDER BY id")?
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })?
            {
                let (id, name, class) = row?;
                if class == crate::cmdb::classes::SERVICE {
                    service_names.push((id, name.clone()));
                }
                classes.insert(id, class.clone());
                context
                    .cis
                    .push((id, name, class, tags.remove(&id).unwrap_or_default()));
            }
            // from depends on to: walk from each service along the dependency kinds.
            let mut depends: HashMap<i64, Vec<i64>> = HashMap::new();
            for row in conn
                .prepare("SELECT from_ci, kind, to_ci FROM ci_relations")?
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })?
            {
                let (from, kind, to) = row?;
                if DEPENDS.contains(&kind.as_str()) {
                    depends.entry(from).or_default().push(to);
                }
                let network = |id: i64| {
                    classes.get(&id).map(String::as_str)
                        == Some(crate::cmdb::classes::NETWORK_DEVICE)
                };
                let upstream = match kind.as_str() {
                    "runs_on" => Some((from, to)),
                    "connected_to" if !network(from) && network(to) => Some((from, to)),
                    "connected_to" if network(from) && !network(to) => Some((to, from)),
                    _ => None,
                };
                if let Some((ci, through)) = upstream {
                    context.upstream.entry(ci).or_default().push(through);
                }
            }
            for (service, name) in service_names {
                let mut seen: HashSet<i64> = HashSet::from([service]);
                let mut queue: VecDeque<i64> = VecDeque::from([service]);
                while let Some(ci) = queue.pop_front() {
                    for &next in depends.get(&ci).into_iter().flatten() {
                        if seen.insert(next) {
                            context.services.entry(next).or_default().push(name.clone());
                            queue.push_back(next);
                        }
                    }
                }
            }
            Ok(context)
        })
        .await
    }

    /// One CI's name, class and tags (a CI new since the last [`Store::rules_context`]).
    pub async fn ci_facts(
        &self,
        ci_id: i64,
    ) -> Result<Option<(String, String, Vec<String>)>, StoreError> {
        self.read(move |conn| {
            let Some((name, class)) = conn
                .query_row("SELECT name, class FROM cis WHERE id = ?1", [ci_id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .optional()?
            else {
                return Ok(None);
            };
            let tags = super::relations::tags_of(conn, ci_id)?;
            Ok(Some((name, class, tags)))
        })
        .await
    }

    /// Each agent CI's newest metrics report: (CI, received at, the agent's interval in s).
    pub async fn latest_agent_reports(&self) -> Result<Vec<(i64, i64, u32)>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT a.ci_id, r.received_at, r.version, r.body FROM agents a
                 JOIN reports r ON r.id = (SELECT r2.id FROM reports r2 WHERE r2.agent = a.num AND r2.kind = 0
                                           ORDER BY r2.seq DESC LIMIT 1)
                 WHERE a.ci_id IS NOT NULL AND a.revoked_at IS NULL",
            )?;
            let mut out: std::collections::HashMap<i64, (i64, u32)> = std::collections::HashMap::new();
            for row in stmt.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                ))
            })? {
                let (ci, received_at, version, body) = row?;
                let interval = match version {
                    1 => postcard::from_bytes::<steward_shared::v1::MetricsReport>(&body)
                        .map(|m| m.metrics.interval_secs)
                        .unwrap_or(60),
                    _ => 60,
                };
                let entry = out.entry(ci).or_insert((received_at, interval));
                if received_at > entry.0 {
                    *entry = (received_at, interval);
                }
            }
            let mut rows: Vec<(i64, i64, u32)> =
                out.into_iter().map(|(ci, (at, i))| (ci, at, i)).collect();
            rows.sort_unstable();
            Ok(rows)
        })
        .await
    }
}
