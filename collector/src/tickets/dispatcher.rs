//! The dispatcher: one task that claims due outbox rows and delivers each through its
//! connector, at most `max_in_flight` at once per connector, in order per (event key,
//! connector) (the store only hands out a row when every earlier row of its key and connector
//! is delivered). Failures are retried with exponential backoff and jitter, honouring
//! `Retry-After`; a row that keeps failing, or is refused for good, moves to the dead letter
//! (`tickets list --failed`, `tickets retry`).
//!
//! Exactly once: a create's ticket id is stored in the transaction that marks its row done.
//! Before a create is sent, the row is marked sent; a row found marked (the try timed out,
//! the connection dropped after sending, the collector was killed mid-call) first searches
//! the system for its correlation key, and only creates when nothing is found.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::config::{ConnectorConfig, OnRefire, TicketsConfig};
use super::{Connector, ConnectorError, TicketRef, Update};
use crate::store::{
    Delivery, OP_ACKNOWLEDGE, OP_COMMENT, OP_OPEN, OP_RESOLVE, OutboxItem, Store, StoreError,
    TicketLink,
};

/// Rows claimed per connector per look at the outbox, beyond twice the largest
/// `max_in_flight`: each connector gets its own share, so a slow system's backlog cannot
/// starve the others.
const CLAIM_SPARE: usize = 16;
/// Longest sleep between looks when nothing wakes the dispatcher (a safety net: new rows and
/// finished deliveries wake it at once).
const IDLE_MS: i64 = 5000;
/// How long a row whose outcome could not be recorded waits before it is handed out again.
const COOL_MS: i64 = 5000;

/// A configured connector and its concurrency bound.
#[derive(Debug)]
struct Entry {
    connector: Box<dyn Connector>,
    config: ConnectorConfig,
    permits: Arc<Semaphore>,
}

#[derive(Debug)]
pub struct Dispatcher {
    store: Store,
    settings: TicketsConfig,
    connectors: HashMap<String, Arc<Entry>>,
}

impl Dispatcher {
    /// Builds every connector (reading its secret files); an error names the connector.
    pub fn new(
        store: Store,
        settings: TicketsConfig,
        configs: &[ConnectorConfig],
    ) -> anyhow::Result<Dispatcher> {
        let built = configs
            .iter()
            .map(|config| Ok((config.clone(), super::build(config)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Dispatcher::with_connectors(store, settings, built))
    }

    /// A dispatcher over connectors already built (each with its config entry).
    pub fn with_connectors(
        store: Store,
        settings: TicketsConfig,
        connectors: Vec<(ConnectorConfig, Box<dyn Connector>)>,
    ) -> Dispatcher {
        let connectors = connectors
            .into_iter()
            .map(|(config, connector)| {
                (
                    config.name.clone(),
                    Arc::new(Entry {
                        connector,
                        permits: Arc::new(Semaphore::new(config.max_in_flight)),
                        config,
                    }),
                )
            })
            .collect();
        Dispatcher {
            store,
            settings,
            connectors,
        }
    }

    /// Delivers until the task is aborted. Deliveries run as this task's children, so an
    /// abort stops them too; rows left mid-delivery (or by a crash) are still pending and are
    /// picked up again at the next start.
    pub async fn run(self) {
        self.run_until(std::future::pending(), Duration::ZERO).await;
    }

    /// Delivers until `stop` resolves, then claims nothing more and lets the deliveries in
    /// flight finish and record their outcome, for up to `drain`; those still running then are
    /// stopped (their rows stay pending for the next start). Returns how many were stopped.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()>,
        drain: Duration,
    ) -> usize {
        tokio::pin!(stop);
        let signal = self.store.outbox_signal();
        let mut deliveries: JoinSet<(i64, bool)> = JoinSet::new();
        // Row ids being delivered, by the task delivering them (a panicking task still gives
        // its row back).
        let mut in_flight: HashMap<tokio::task::Id, i64> = HashMap::new();
        // Rows whose outcome could not be recorded (the store failing): not handed out again
        // before this time, so a failing disk cannot turn into a resend loop.
        let mut cooling: HashMap<i64, i64> = HashMap::new();
        // Enough rows per connector to fill its free slots past the ones in flight.
        let per_connector = self
            .connectors
            .values()
            .map(|e| e.config.max_in_flight)
            .max()
            .unwrap_or(1)
            .saturating_mul(2)
            .saturating_add(CLAIM_SPARE);
        let this = Arc::new(self);
        loop {
            while let Some(done) = deliveries.try_join_next_with_id() {
                finished(done, &mut in_flight, &mut cooling);
            }
            let now = crate::now_ms();
            cooling.retain(|_, until| *until > now);
            let busy: HashSet<i64> = in_flight.values().copied().collect();
            match this
                .store
                .due_outbox(now, i64::try_from(per_connector).unwrap_or(i64::MAX))
                .await
            {
                Ok(items) => {
                    for item in items {
                        if busy.contains(&item.id) || cooling.contains_key(&item.id) {
                            continue;
                        }
                        let Some(entry) = this.connectors.get(&item.connector).cloned() else {
                            let error = format!(
                                "connector {:?} is not configured (any more): add it back and retry",
                                item.connector
                            );
                            if let Err(e) = this
                                .store
                                .outbox_delivered(item, false, Delivery::Dead { error }, now)
                                .await
                            {
                                tracing::warn!(error = %e, "cannot record a ticket delivery");
                            }
                            continue;
                        };
                        let Ok(permit) = entry.permits.clone().try_acquire_owned() else {
                            continue;
                        };
                        let id = item.id;
                        let this = this.clone();
                        let task = deliveries.spawn(async move {
                            let recorded = this.deliver(&entry, item).await;
                            drop(permit);
                            (id, recorded)
                        });
                        in_flight.insert(task.id(), id);
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot read the ticket outbox"),
            }
            // Sleep until the next retry falls due; new rows, finished deliveries and an
            // admin's retry wake the loop earlier.
            let next = match this.store.next_outbox_due(now).await {
                Ok(Some(at)) => at,
                _ => now + IDLE_MS,
            };
            let next = cooling.values().copied().fold(next, i64::min);
            let wait =
                Duration::from_millis(u64::try_from(next - now).unwrap_or(0).min(IDLE_MS as u64));
            tokio::select! {
                _ = signal.notified() => {}
                Some(done) = deliveries.join_next_with_id() => {
                    finished(done, &mut in_flight, &mut cooling);
                }
                _ = tokio::time::sleep(wait) => {}
                () = &mut stop => break,
            }
        }
        if deliveries.is_empty() {
            return 0;
        }
        tracing::info!(
            in_flight = deliveries.len(),
            bound_secs = drain.as_secs(),
            "waiting for ticket deliveries in flight"
        );
        let bound = tokio::time::sleep(drain);
        tokio::pin!(bound);
        loop {
            tokio::select! {
                done = deliveries.join_next_with_id() => match done {
                    Some(done) => finished(done, &mut in_flight, &mut cooling),
                    None => return 0,
                },
                () = &mut bound => break,
            }
        }
        let mut rows: Vec<i64> = in_flight.values().copied().collect();
        rows.sort_unstable();
        tracing::warn!(
            outbox_rows = ?rows,
            "ticket deliveries still in flight at the shutdown bound were stopped; they stay \
             pending and are delivered at the next start"
        );
        deliveries.abort_all();
        rows.len()
    }

    /// One try of one row, and its outcome recorded; false when it could not be recorded.
    async fn deliver(&self, entry: &Entry, item: OutboxItem) -> bool {
        let mut counted = false;
        let result = self.attempt(entry, &item, &mut counted).await;
        let now = crate::now_ms();
        let tries = item.attempts + 1;
        let delivery = match result {
            Ok(delivery) => {
                tracing::info!(
                    connector = item.connector,
                    event = item.event_id,
                    op = item.op,
                    "ticket delivered"
                );
                delivery
            }
            Err(ConnectorError::Retryable {
                message,
                retry_after,
                ..
            }) if tries < i64::from(self.settings.max_attempts) => {
                let mut delay = retry_after.unwrap_or_else(|| self.backoff(tries));
                if counted {
                    // A create that may have landed is searched for before it is sent again:
                    // give the system's search index time to see it.
                    delay = delay.max(entry.connector.search_lag());
                }
                tracing::warn!(
                    connector = item.connector,
                    event = item.event_id,
                    op = item.op,
                    tries,
                    retry_in_ms = delay.as_millis() as u64,
                    error = message,
                    "ticket delivery failed; will retry"
                );
                Delivery::Retry {
                    next_at: now + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2),
                    error: message,
                }
            }
            Err(ConnectorError::Retryable { message, .. }) => {
                let error = format!("gave up after {tries} tries: {message}");
                tracing::error!(
                    connector = item.connector,
                    event = item.event_id,
                    op = item.op,
                    error,
                    "ticket delivery moved to the dead letter"
                );
                Delivery::Dead { error }
            }
            Err(ConnectorError::Rejected { message }) => {
                tracing::error!(
                    connector = item.connector,
                    event = item.event_id,
                    op = item.op,
                    error = message,
                    "ticket refused; moved to the dead letter"
                );
                Delivery::Dead { error: message }
            }
        };
        match self
            .store
            .outbox_delivered(item, counted, delivery, now)
            .await
        {
            Ok(()) => true,
            Err(error) => {
                // The row stays pending and is tried again after a pause: a create found
                // marked sent searches first, so this cannot duplicate it.
                tracing::error!(%error, "cannot record a ticket delivery");
                false
            }
        }
    }

    /// `initial × 2^(tries-1)`, capped, with jitter: uniform in [half, whole].
    fn backoff(&self, tries: i64) -> Duration {
        let exponent = u32::try_from(tries.saturating_sub(1)).unwrap_or(0).min(30);
        let base = self
            .settings
            .retry_initial_ms
            .saturating_mul(1u64 << exponent)
            .min(self.settings.retry_max_secs.saturating_mul(1000).max(1));
        let random = crate::random_bytes::<8>()
            .map(u64::from_le_bytes)
            .unwrap_or(0);
        let half = base / 2;
        Duration::from_millis(half + random % (base - half + 1))
    }

    async fn attempt(
        &self,
        entry: &Entry,
        item: &OutboxItem,
        counted: &mut bool,
    ) -> Result<Delivery, ConnectorError> {
        let history_ms = i64::from(self.settings.history_hours) * 3_600_000;
        let Some(context) = self
            .store
            .ticket_context(item.event_id, history_ms)
            .await
            .map_err(store_error)?
        else {
            return Err(ConnectorError::rejected("the event no longer exists"));
        };
        let link = self
            .store
            .ticket_link(item.event_id, item.connector.clone())
            .await
            .map_err(store_error)?;
        let key = link.as_ref().map_or_else(
            || {
                correlation_key(
                    &self.settings.correlation_prefix,
                    item.event_id,
                    context.first_seen_at,
                )
            },
            |l| l.correlation_key.clone(),
        );
        let render = |key: &str| {
            context.render(
                entry.config.summary_template.as_deref(),
                entry.config.body_template.as_deref(),
                key,
                &item.queue,
                crate::today(),
            )
        };
        let ticket = render(&key);
        let connector = entry.connector.as_ref();
        let opened = |external: TicketRef, correlation_key: String| {
            Delivery::Opened(TicketLink {
                event_id: item.event_id,
                connector: item.connector.clone(),
                external_id: external.id,
                display: external.display,
                correlation_key,
                status: "open".into(),
                resolved_at: None,
            })
        };
        if item.op == OP_OPEN {
            if link.is_some() {
                return Ok(Delivery::Done);
            }
            if entry.config.on_refire == OnRefire::Reopen && connector.can_reopen() {
                let window_ms = i64::try_from(entry.config.reopen_within_secs.saturating_mul(1000))
                    .unwrap_or(i64::MAX);
                let since = context.first_seen_at.saturating_sub(window_ms);
                if let Some(previous) = self
                    .store
                    .recent_ticket(item.event_key.clone(), item.connector.clone(), since)
                    .await
                    .map_err(store_error)?
                {
                    let external = TicketRef {
                        id: previous.external_id,
                        display: previous.display,
                    };
                    let ticket = render(&previous.correlation_key);
                    let note = format!(
                        "Reopened by Steward: the problem is back ({}), {} after it was resolved.",
                        ticket.summary,
                        humantime::format_duration(Duration::from_secs(
                            u64::try_from(
                                (context.first_seen_at - previous.resolved_at.unwrap_or(0)) / 1000
                            )
                            .unwrap_or(0)
                        ))
                    );
                    match connector
                        .update(&external, &ticket, Update::Reopen, &note)
                        .await
                    {
                        Ok(()) => return Ok(opened(external, previous.correlation_key)),
                        // Closed for good, deleted, or no transition back: a new ticket.
                        Err(ConnectorError::Rejected { message }) => tracing::warn!(
                            connector = item.connector,
                            event = item.event_id,
                            ticket = external.id,
                            error = message,
                            "the previous ticket cannot be reopened; opening a new one"
                        ),
                        Err(retryable) => return Err(retryable),
                    }
                }
            }
            if item.sent_before
                && !connector.idempotent_create()
                && let Some(found) = connector.find(&ticket).await?
            {
                tracing::info!(
                    connector = item.connector,
                    event = item.event_id,
                    ticket = found.id,
                    "an earlier create whose answer was lost had made the ticket: not creating it again"
                );
                return Ok(opened(found, key));
            }
            if !connector.idempotent_create() {
                self.store
                    .outbox_sending(item.id, crate::now_ms())
                    .await
                    .map_err(store_error)?;
                *counted = true;
            }
            let created = connector.create(&ticket).await?;
            return Ok(opened(created, key));
        }
        let Some(link) = link else {
            return Err(ConnectorError::rejected(format!(
                "no ticket was opened for event {} on {}",
                item.event_id, item.connector
            )));
        };
        let external = TicketRef {
            id: link.external_id,
            display: link.display,
        };
        let (update, status) = match item.op.as_str() {
            OP_RESOLVE => (Update::Resolve, Some("resolved")),
            OP_ACKNOWLEDGE => (Update::Acknowledge, None),
            OP_COMMENT => (Update::Comment, None),
            other => {
                return Err(ConnectorError::rejected(format!(
                    "unknown outbox operation {other:?}"
                )));
            }
        };
        connector
            .update(&external, &ticket, update, &item.note)
            .await?;
        Ok(status.map_or(Delivery::Done, Delivery::Status))
    }
}

/// The key a ticket carries: the prefix, the event id and when the event opened (ms), so a
/// database restored from a backup, which issues event ids again, never reuses a key.
pub fn correlation_key(prefix: &str, event_id: i64, first_seen_at: i64) -> String {
    format!("{prefix}-{event_id}-{first_seen_at}")
}

/// A delivery task ended: its row is free again (also when it panicked); one whose outcome
/// was not recorded cools down first.
fn finished(
    done: Result<(tokio::task::Id, (i64, bool)), tokio::task::JoinError>,
    in_flight: &mut HashMap<tokio::task::Id, i64>,
    cooling: &mut HashMap<i64, i64>,
) {
    let (task, recorded) = match done {
        Ok((task, (_, recorded))) => (task, recorded),
        Err(error) => {
            tracing::error!(%error, "a ticket delivery failed unexpectedly; its row will be tried again");
            (error.id(), false)
        }
    };
    if let Some(id) = in_flight.remove(&task)
        && !recorded
    {
        cooling.insert(id, crate::now_ms() + COOL_MS);
    }
}

/// The store failing is the collector's problem, not the ticket's: retry.
fn store_error(error: StoreError) -> ConnectorError {
    ConnectorError::Retryable {
        message: format!("store: {error}"),
        retry_after: None,
        maybe_applied: false,
    }
}
