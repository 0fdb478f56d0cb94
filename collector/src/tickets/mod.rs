//! Tickets in the service desk. Every event transition that should reach it is an outbox row
//! written in the same transaction as the event change (`store::tickets`); the
//! [`dispatcher`] sends those rows through the connectors, one file per ticketing system, and
//! stores each external ticket id the moment it is known.
//!
//! The extension point: the [`Connector`] trait here, one file per implementation, and
//! [`config::ConnectorKind`] as the table (an exhaustive `match` in [`build`] makes each one).

pub mod config;
pub mod dispatcher;
pub mod http;
pub mod render;
pub mod route;

pub mod glpi;
pub mod jira;
pub mod pagerduty;
pub mod request_tracker;
pub mod servicenow;
pub mod webhook;
pub mod zammad;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use config::{ConnectorConfig, ConnectorKind, RouteConfig, Secret, TicketsConfig};

/// A connector's future (the trait is used as `dyn Connector`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a call to a ticketing system failed; the dispatcher branches on it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConnectorError {
    /// Worth retrying: the system is down, overloaded (5xx, 429) or did not answer in time.
    /// `maybe_applied` is set when the request may have reached the system (a timeout or a
    /// reset after sending): a create must then be searched for before it is sent again.
    #[error("{message}")]
    Retryable {
        message: String,
        retry_after: Option<Duration>,
        maybe_applied: bool,
    },
    /// Refused for good (4xx other than 408/429, a malformed answer): retrying the same
    /// request cannot help; the item goes to the dead letter for an admin.
    #[error("{message}")]
    Rejected { message: String },
}

impl ConnectorError {
    pub fn rejected(message: impl Into<String>) -> ConnectorError {
        ConnectorError::Rejected {
            message: message.into(),
        }
    }
}

/// A ticket in the external system: its id there, and a link for people where there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRef {
    /// RT ticket number, ServiceNow sys_id, Jira issue key, GLPI/Zammad id, PagerDuty
    /// dedup_key, the webhook's correlation key.
    pub id: String,
    /// A human-facing number or URL where the system gives one (ServiceNow INC number).
    pub display: String,
}

/// Severity as the service desk sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn from_name(name: &str) -> Severity {
        if name == "critical" {
            Severity::Critical
        } else {
            Severity::Warning
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// What a connector sends: the rendered ticket and the facts systems map onto their own
/// fields (ServiceNow `cmdb_ci`, PagerDuty `source`, GLPI's linked asset).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    /// Unique per event occurrence (per ticket): what a search before a create looks for.
    pub correlation_key: String,
    pub event_id: i64,
    pub rule: String,
    pub instance: String,
    /// pending, firing, flapping or resolved (now).
    pub state: String,
    pub severity: Severity,
    /// One line: the title or short description.
    pub summary: String,
    /// The rendered body: the event and the CI's context.
    pub body: String,
    /// The queue, group, service desk or assignment group routing chose (connector default
    /// when empty).
    pub queue: String,
    pub ci_name: String,
    pub ci_class: String,
    pub ci_serial: String,
    /// Structured details (the event and CI context) for systems with a JSON field for them.
    pub details: serde_json::Value,
}

/// What a transition asks of an existing ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Update {
    /// A comment: severity changed, flapping, acknowledged.
    Comment,
    /// Acknowledged in the collector (a comment, or the system's own acknowledge).
    Acknowledge,
    /// The problem cleared: resolve the ticket with the note.
    Resolve,
    /// The same problem again within the reopen window: reopen the ticket with the note.
    Reopen,
}

/// A ticketing system. Each method is one logical operation; errors say whether a retry can
/// help. Implementations do no retrying of their own: the dispatcher owns retries, backoff and
/// order.
pub trait Connector: Send + Sync + std::fmt::Debug {
    /// The connector's kind as written in the config (`request_tracker`, ...).
    fn kind(&self) -> &'static str;

    /// True when the system deduplicates creates by the correlation key itself (PagerDuty's
    /// `dedup_key`, ServiceNow Event Management's `message_key`, a webhook receiver keyed by
    /// it): a create may be repeated safely and there is nothing to search.
    fn idempotent_create(&self) -> bool {
        false
    }

    /// How long after a create this system's search may still miss the ticket (search
    /// indexes that lag, as Jira's JQL and Zammad's): a create whose outcome is unknown is
    /// not retried (searched for) sooner.
    fn search_lag(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    /// True when [`Update::Reopen`] works here; otherwise a re-fire within the reopen window
    /// opens a new ticket (e.g. Jira without a reopen transition configured).
    fn can_reopen(&self) -> bool {
        true
    }

    /// Finds the open ticket carrying `ticket.correlation_key`, if any (searched before a
    /// create is repeated whose first try may have reached the system).
    fn find<'a>(
        &'a self,
        ticket: &'a Ticket,
    ) -> BoxFuture<'a, Result<Option<TicketRef>, ConnectorError>>;

    /// Opens a ticket; returns its reference.
    fn create<'a>(&'a self, ticket: &'a Ticket)
    -> BoxFuture<'a, Result<TicketRef, ConnectorError>>;

    /// Changes an existing ticket: a comment with `note`, acknowledge, resolve or reopen.
    fn update<'a>(
        &'a self,
        external: &'a TicketRef,
        ticket: &'a Ticket,
        update: Update,
        note: &'a str,
    ) -> BoxFuture<'a, Result<(), ConnectorError>>;
}

/// Builds the connector a config entry describes (secrets read from their files).
pub fn build(config: &ConnectorConfig) -> anyhow::Result<Box<dyn Connector>> {
    let client = http::Client::new(config)?;
    Ok(match &config.kind {
        ConnectorKind::RequestTracker(c) => {
            Box::new(request_tracker::RequestTracker::new(client, c.clone()))
        }
        ConnectorKind::Servicenow(c) => Box::new(servicenow::ServiceNow::new(client, c.clone())),
        ConnectorKind::JiraServiceManagement(c) => Box::new(jira::Jira::new(client, c.clone())),
        ConnectorKind::Glpi(c) => Box::new(glpi::Glpi::new(client, c.clone())),
        ConnectorKind::Zammad(c) => Box::new(zammad::Zammad::new(client, c.clone())),
        ConnectorKind::Pagerduty(c) => Box::new(pagerduty::PagerDuty::new(client, c.clone())?),
        ConnectorKind::Webhook(c) => Box::new(webhook::Webhook::new(client, c.clone())?),
    })
}
