//! Request Tracker REST2: a ticket in a queue carrying the correlation key in a ticket custom
//! field, comments, and status resolved; found again with TicketSQL on that field.

use serde::{Deserialize, Serialize};

use super::http::Client;
use super::{BoxFuture, Connector, ConnectorError, Ticket, TicketRef, Update};

/// `type = "request_tracker"` settings (beside the common ones: name, url, auth, ...).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The queue new tickets go to (a route's `queue` overrides it).
    #[serde(default = "default_queue")]
    pub queue: String,
    /// The ticket custom field holding the correlation key (applied to the queues used).
    #[serde(default = "default_field")]
    pub correlation_field: String,
    /// Requestor of new tickets (an email); none by default.
    #[serde(default)]
    pub requestor: Option<String>,
    /// The status that resolves a ticket.
    #[serde(default = "default_resolved")]
    pub resolved_status: String,
    /// The status a reopened ticket gets.
    #[serde(default = "default_reopen")]
    pub reopen_status: String,
}

#[derive(Debug)]
pub struct RequestTracker {
    client: Client,
    config: Config,
}

impl RequestTracker {
    pub fn new(client: Client, config: Config) -> RequestTracker {
        RequestTracker { client, config }
    }
}

impl Connector for RequestTracker {
    fn kind(&self) -> &'static str {
        "request_tracker"
    }

    fn find<'a>(
        &'a self,
        ticket: &'a Ticket,
    ) -> BoxFuture<'a, Result<Option<TicketRef>, ConnectorError>> {
        let _ = (&self.client, &self.config, ticket);
        Box::pin(async { Err(ConnectorError::rejected("not written yet")) })
    }

    fn create<'a>(
        &'a self,
        ticket: &'a Ticket,
    ) -> BoxFuture<'a, Result<TicketRef, ConnectorError>> {
        let _ = ticket;
        Box::pin(async { Err(ConnectorError::rejected("not written yet")) })
    }

    fn update<'a>(
        &'a self,
        external: &'a TicketRef,
        ticket: &'a Ticket,
        update: Update,
        note: &'a str,
    ) -> BoxFuture<'a, Result<(), ConnectorError>> {
        let _ = (external, ticket, update, note);
        Box::pin(async { Err(ConnectorError::rejected("not written yet")) })
    }
}

fn default_queue() -> String {
    "General".into()
}
fn default_field() -> String {
    "Correlation Key".into()
}
fn default_resolved() -> String {
    "resolved".into()
}
fn default_reopen() -> String {
    "open".into()
}
