//! A generic webhook: each operation POSTs the event as JSON, signed with HMAC-SHA256 over
//! the timestamp and body (`X-Steward-Signature: t=TIMESTAMP,v1=HEX`), so the receiver can refuse
//! forged and replayed calls.

use serde::{Deserialize, Serialize};

use super::http::Client;
use super::{BoxFuture, Connector, ConnectorError, Ticket, TicketRef, Update};

/// `type = "webhook"` settings (beside the common ones: name, url, auth, ...).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// A file holding the shared secret the body is signed with.
    pub secret_file: std::path::PathBuf,
}

#[derive(Debug)]
pub struct Webhook {
    client: Client,
    config: Config,
}

impl Webhook {
    pub fn new(client: Client, config: Config) -> anyhow::Result<Webhook> {
        Ok(Webhook { client, config })
    }
}

impl Connector for Webhook {
    fn kind(&self) -> &'static str {
        "webhook"
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
