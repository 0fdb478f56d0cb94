//! The ticket outbox and the external ticket ids. Outbox rows are written in the same
//! transaction as the event change they come from (see `events::apply_change`, `ack_event`,
//! `escalate_events` and the CI merge); the dispatcher claims due rows, and records each
//! external ticket id in the same transaction that marks its create done.
//!
//! *Invariant*: rows of one (event key, connector) are delivered in id order: a row is due
//! only when no earlier row of its key and connector is still pending or dead, so a resolve
//! never overtakes its create, and a reopen never overtakes the previous resolve.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::tickets::render::TicketContext;
use crate::tickets::route::Destination;

/// The operations an outbox row asks for.
pub const OP_OPEN: &str = "open";
pub const OP_COMMENT: &str = "comment";
pub const OP_ACKNOWLEDGE: &str = "acknowledge";
pub const OP_RESOLVE: &str = "resolve";

/// Orders rows: one key per (rule, CI, instance), whatever event occurrence they belong to.
pub fn event_key(rule: &str, ci_id: i64, instance: &str) -> String {
    format!("{rule}\u{1f}{ci_id}\u{1f}{instance}")
}

/// A row as the dispatcher takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxItem {
    pub id: i64,
    pub event_id: i64,
    pub event_key: String,
    pub connector: String,
    pub queue: String,
    pub op: String,
    pub note: String,
    pub attempts: i64,
    /// A create was sent at least once: its outcome may be unknown, so search before sending
    /// it again.
    pub sent_before: bool,
}

/// A row as `tickets list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxRow {
    pub id: i64,
    pub event_id: i64,
    pub rule: String,
    pub ci_name: String,
    pub connector: String,
    pub op: String,
    /// pending, done or dead.
    pub state: String,
    pub attempts: i64,
    pub created_at: i64,
    pub next_at: Option<i64>,
    pub done_at: Option<i64>,
    pub last_error: Option<String>,
    /// The ticket in the service desk, once known.
    pub ticket: Option<String>,
}

/// The external ticket of an event on a connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketLink {
    pub event_id: i64,
    pub connector: String,
    pub external_id: String,
    pub display: String,
    pub correlation_key: String,
    pub status: String,
    pub resolved_at: Option<i64>,
}

/// How a try ended, as the dispatcher reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Done,
    /// A create or reopen done: the ticket it made or reused.
    Opened(TicketLink),
    /// The ticket was resolved or reopened.
    Status(&'static str),
    Retry {
        next_at: i64,
        error: String,
    },
    Dead {
        error: String,
    },
}

/// Writes `open` rows for an event escalated now.
pub(super) fn queue_open(
    conn: &Connection,
    event_id: i64,
    key: &str,
    destinations: &[Destination],
    note: &str,
    at: i64,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO ticket_outbox (event_id, event_key, connector, queue, op, note, created_at, next_at)
         VALUES (?1, ?2, ?3, ?4, 'open', ?5, ?6, ?6)",
    )?;
    for d in destinations {
        stmt.execute(params![event_id, key, d.connector, d.queue, note, at])?;
    }
    Ok(())
}

/// Writes `op` rows for an escalated event, one per connector it was opened on.
pub(super) fn queue_update(
    conn: &Connection,
    event_id: i64,
    op: &str,
    note: &str,
    at: i64,
) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "INSERT INTO ticket_outbox (event_id, event_key, connector, queue, op, note, created_at, next_at)
             SELECT event_id, event_key, connector, queue, ?2, ?3, ?4, ?4 FROM ticket_outbox
             WHERE event_id = ?1 AND op = 'open' GROUP BY connector",
        )?
        .execute(params![event_id, op, note, at])?)
}

fn outbox_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        id: r.get(0)?,
        event_id: r.get(1)?,
        rule: r.get(2)?,
        ci_name: r.get(3)?,
        connector: r.get(4)?,
        op: r.get(5)?,
        state: r.get(6)?,
        attempts: r.get(7)?,
        created_at: r.get(8)?,
        next_at: r.get(9)?,
        done_at: r.get(10)?,
        last_error: r.get(11)?,
        ticket: r.get(12)?,
    })
}

impl Store {
    /// Wakes the dispatcher: outbox rows may have been committed.
    pub fn outbox_signal(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.inner.outbox.clone()
    }

    pub(super) fn outbox_changed(&self) {
        self.inner.outbox.notify_one();
    }

    /// Due rows, oldest first, at most `per_connector` of each connector: pending, due by
    /// `now`, with no earlier undelivered row of the same event key and connector.
    pub async fn due_outbox(
        &self,
        now: i64,
        per_connector: i64,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, event_id, event_key, connector, queue, op, note, attempts, sent FROM (
                     SELECT o.id, o.event_id, o.event_key, o.connector, o.queue, o.op, o.note,
                            o.attempts, o.sent_at IS NOT NULL AS sent,
                            ROW_NUMBER() OVER (PARTITION BY o.connector ORDER BY o.id) AS n
                     FROM ticket_outbox o
                     WHERE o.state = 'pending' AND o.next_at <= ?1
                       AND NOT EXISTS (SELECT 1 FROM ticket_outbox p
                                       WHERE p.event_key = o.event_key AND p.connector = o.connector
                                         AND p.state != 'done' AND p.id < o.id))
                 WHERE n <= ?2 ORDER BY id",
            )?;
            let rows = stmt
                .query_map(params![now, per_connector], |r| {
                    Ok(OutboxItem {
                        id: r.get(0)?,
                        event_id: r.get(1)?,
                        event_key: r.get(2)?,
                        connector: r.get(3)?,
                        queue: r.get(4)?,
                        op: r.get(5)?,
                        note: r.get(6)?,
                        attempts: r.get(7)?,
                        sent_before: r.get(8)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// When the next pending row falls due after `now`, if any (rows due already are handed
    /// out, or wait for a slot or an earlier row, which wake the dispatcher themselves).
    pub async fn next_outbox_due(&self, now: i64) -> Result<Option<i64>, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT MIN(next_at) FROM ticket_outbox WHERE state = 'pending' AND next_at > ?1",
                )?
                .query_row([now], |r| r.get(0))?)
        })
        .await
    }

    /// Records that a create is about to be sent: from now on its outcome may be unknown.
    pub async fn outbox_sending(&self, id: i64, at: i64) -> Result<(), StoreError> {
        self.inner
            .writer
            .write(move |conn| {
                conn.prepare_cached(
                    "UPDATE ticket_outbox SET attempts = attempts + 1, sent_at = ?2 WHERE id = ?1",
                )?
                .execute(params![id, at])?;
                Ok::<_, StoreError>(())
            })
            .await
    }

    /// Records how a try ended. `counted`: the try was already counted by
    /// [`Store::outbox_sending`].
    pub async fn outbox_delivered(
        &self,
        item: OutboxItem,
        counted: bool,
        delivery: Delivery,
        at: i64,
    ) -> Result<(), StoreError> {
        let attempts = i64::from(!counted);
        self.inner
            .writer
            .write(move |conn| {
                let done = |conn: &Connection| -> Result<(), StoreError> {
                    conn.prepare_cached(
                        "UPDATE ticket_outbox SET state = 'done', done_at = ?2, attempts = attempts + ?3,
                             last_error = NULL WHERE id = ?1",
                    )?
                    .execute(params![item.id, at, attempts])?;
                    Ok(())
                };
                match delivery {
                    Delivery::Done => done(conn)?,
                    Delivery::Opened(link) => {
                        conn.prepare_cached(
                            "INSERT INTO tickets (event_id, connector, external_id, display, correlation_key,
                                 event_key, status, created_at, updated_at)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open', ?7, ?7)
                             ON CONFLICT (event_id, connector) DO UPDATE SET external_id = ?3,
                                 display = ?4, correlation_key = ?5, status = 'open', updated_at = ?7,
                                 resolved_at = NULL",
                        )?
                        .execute(params![
                            link.event_id,
                            link.connector,
                            link.external_id,
                            link.display,
                            link.correlation_key,
                            item.event_key,
                            at
                        ])?;
                        done(conn)?;
                    }
                    Delivery::Status(status) => {
                        conn.prepare_cached(
                            "UPDATE tickets SET status = ?3, updated_at = ?4,
                                 resolved_at = CASE WHEN ?3 = 'resolved' THEN ?4 END
                             WHERE event_id = ?1 AND connector = ?2",
                        )?
                        .execute(params![item.event_id, item.connector, status, at])?;
                        done(conn)?;
                    }
                    Delivery::Retry { next_at, error } => {
                        conn.prepare_cached(
                            "UPDATE ticket_outbox SET attempts = attempts + ?2, next_at = ?3, last_error = ?4
                             WHERE id = ?1",
                        )?
                        .execute(params![item.id, attempts, next_at, error])?;
                    }
                    Delivery::Dead { error } => {
                        conn.prepare_cached(
                            "UPDATE ticket_outbox SET state = 'dead', attempts = attempts + ?2,
                                 last_error = ?3, done_at = ?4 WHERE id = ?1",
                        )?
                        .execute(params![item.id, attempts, error, at])?;
                    }
                }
                Ok::<_, StoreError>(())
            })
            .await
    }

    /// The ticket an event has on a connector, if it was opened.
    pub async fn ticket_link(
        &self,
        event_id: i64,
        connector: String,
    ) -> Result<Option<TicketLink>, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT event_id, connector, external_id, display, correlation_key, status, resolved_at
                     FROM tickets WHERE event_id = ?1 AND connector = ?2",
                )?
                .query_row(params![event_id, connector], link_row)
                .optional()?)
        })
        .await
    }

    /// The newest ticket of the same (rule, CI, instance) on a connector that was resolved at
    /// or after `since` (a re-fire within the reopen window reopens it).
    pub async fn recent_ticket(
        &self,
        event_key: String,
        connector: String,
        since: i64,
    ) -> Result<Option<TicketLink>, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT event_id, connector, external_id, display, correlation_key, status, resolved_at
                     FROM tickets WHERE event_key = ?1 AND connector = ?2 AND status = 'resolved'
                       AND resolved_at >= ?3
                     ORDER BY resolved_at DESC LIMIT 1",
                )?
                .query_row(params![event_key, connector, since], link_row)
                .optional()?)
        })
        .await
    }

    /// All an event's ticket needs to say: the event, the CI, its asset data, services and
    /// its changes in the `history_ms` before the event opened.
    pub async fn ticket_context(
        &self,
        event_id: i64,
        history_ms: i64,
    ) -> Result<Option<TicketContext>, StoreError> {
        let Some((event, _)) = self.event(event_id).await? else {
            return Ok(None);
        };
        self.read(move |conn| {
            let mut ctx = TicketContext {
                event_id,
                rule: event.rule,
                instance: event.instance,
                state: event.state,
                severity: event.severity,
                summary: event.summary,
                description: event.description,
                value: event.value,
                threshold: event.threshold,
                first_seen_at: event.first_seen_at,
                ci_id: event.ci_id,
                ci_name: event.ci_name,
                ..TicketContext::default()
            };
            if let Some((class, serial, vendor, model)) = conn
                .prepare_cached("SELECT class, serial, vendor, product FROM cis WHERE id = ?1")?
                .query_row([ctx.ci_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .optional()?
            {
                (ctx.ci_class, ctx.serial, ctx.vendor, ctx.model) = (class, serial, vendor, model);
            }
            if let Some((tag, location, owner, warranty)) = conn
                .prepare_cached(
                    "SELECT asset_tag, location, owner, warranty_end FROM ci_assets WHERE ci_id = ?1",
                )?
                .query_row([ctx.ci_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .optional()?
            {
                (ctx.asset_tag, ctx.location, ctx.owner, ctx.warranty_end) =
                    (tag, location, owner, warranty);
            }
            ctx.tags = super::relations::tags_of(conn, ctx.ci_id)?;
            ctx.services = services_of(conn, ctx.ci_id)?;
            let mut stmt = conn.prepare_cached(
                "SELECT at, source, summary FROM ci_history WHERE ci_id = ?1 AND at >= ?2 AND at <= ?3
                 ORDER BY at DESC LIMIT 10",
            )?;
            ctx.changes = stmt
                .query_map(
                    params![ctx.ci_id, ctx.first_seen_at - history_ms, ctx.first_seen_at],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(ctx))
        })
        .await
    }

    /// What routing needs of a CI beyond the rules' facts: its owner.
    pub async fn ci_owner(&self, ci_id: i64) -> Result<String, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT owner FROM ci_assets WHERE ci_id = ?1")?
                .query_row([ci_id], |r| r.get(0))
                .optional()?
                .unwrap_or_default())
        })
        .await
    }

    /// Outbox rows, newest first: all, or only the dead letter.
    pub async fn list_outbox(
        &self,
        failed_only: bool,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT o.id, o.event_id, e.rule, c.name, o.connector, o.op, o.state, o.attempts,
                        o.created_at, CASE WHEN o.state = 'pending' THEN o.next_at END, o.done_at,
                        o.last_error, t.display
                 FROM ticket_outbox o JOIN events e ON e.id = o.event_id JOIN cis c ON c.id = e.ci_id
                 LEFT JOIN tickets t ON t.event_id = o.event_id AND t.connector = o.connector
                 WHERE (?1 = 0 OR o.state = 'dead')
                 ORDER BY o.id DESC LIMIT ?2",
            )?;
            let rows = stmt
                .query_map(params![failed_only, limit], outbox_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Deletes delivered rows older than `cutoff_ms` whose event is resolved (the ticket ids
    /// stay: a re-fire reopens through them). Returns how many.
    pub async fn prune_outbox(&self, cutoff_ms: i64) -> Result<usize, StoreError> {
        self.inner
            .writer
            .write(move |conn| {
                Ok::<_, StoreError>(conn.execute(
                    "DELETE FROM ticket_outbox WHERE state = 'done' AND done_at < ?1
                       AND event_id IN (SELECT id FROM events WHERE state = 'resolved')",
                    [cutoff_ms],
                )?)
            })
            .await
    }

    /// Moves dead rows back to pending (one, or all with `None`), due now, with a fresh count
    /// of tries. Returns how many.
    pub async fn retry_outbox(&self, id: Option<i64>) -> Result<usize, StoreError> {
        let changed = self
            .inner
            .writer
            .write(move |conn| {
                Ok::<_, StoreError>(conn.execute(
                    "UPDATE ticket_outbox SET state = 'pending', attempts = 0, next_at = ?2, done_at = NULL
                     WHERE state = 'dead' AND (?1 IS NULL OR id = ?1)",
                    params![id, crate::now_ms()],
                )?)
            })
            .await?;
        self.outbox_changed();
        Ok(changed)
    }
}

fn link_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TicketLink> {
    Ok(TicketLink {
        event_id: r.get(0)?,
        connector: r.get(1)?,
        external_id: r.get(2)?,
        display: r.get(3)?,
        correlation_key: r.get(4)?,
        status: r.get(5)?,
        resolved_at: r.get(6)?,
    })
}

/// Services that depend on a CI, directly or through other CIs (as `ci impact` walks them).
fn services_of(conn: &Connection, ci_id: i64) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "WITH RECURSIVE up(id) AS (
             SELECT ?1
             UNION
             SELECT r.from_ci FROM ci_relations r JOIN up ON r.to_ci = up.id
             WHERE r.kind IN ('depends_on', 'runs_on', 'installed_on')
         )
         SELECT c.name FROM up JOIN cis c ON c.id = up.id WHERE c.class = ?2 AND c.id != ?1
         ORDER BY c.name",
    )?;
    let names = stmt
        .query_map(params![ci_id, crate::cmdb::classes::SERVICE], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(names)
}
