//! Zammad: a ticket with a first note article, further articles as notes, state closed to
//! resolve; found again by the correlation key in its title through the search API.
//!
//! Auth is `Authorization: Token token=T` (an access token) or Basic. The title is
//! `[KEY] summary` (Zammad has no correlation field); `find` searches for the key and keeps
//! only tickets whose title carries `[KEY]` and whose state is not closed. Zammad's search
//! goes through its search index, which lags a create by a moment: a `find` right after a
//! create whose answer was lost may miss it (the dispatcher's backoff usually covers that).

use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Method, RequestBuilder};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::http::{Client, encode};
use super::{BoxFuture, Connector, ConnectorError, Ticket, TicketRef, Update};

/// Longest title Zammad stores.
const MAX_TITLE: usize = 250;
/// Tickets a search returns (the key's own ticket, and maybe look-alikes to skip).
const SEARCH_LIMIT: usize = 10;

/// `type = "zammad"` settings (beside the common ones: name, url, auth, ...).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The group new tickets go to (a route's `queue` overrides it).
    #[serde(default = "default_group")]
    pub group: String,
    /// The customer of new tickets (an email or login Zammad knows).
    pub customer: String,
    /// The state that closes a ticket.
    #[serde(default = "default_closed")]
    pub closed_state: String,
    /// The state a reopened ticket gets.
    #[serde(default = "default_open")]
    pub reopen_state: String,
}

#[derive(Debug)]
pub struct Zammad {
    client: Client,
    config: Config,
}

impl Zammad {
    pub fn new(client: Client, config: Config) -> Zammad {
        Zammad { client, config }
    }

    /// A request with the credentials.
    fn request(&self, method: Method, path: &str) -> Result<RequestBuilder, ConnectorError> {
        let (request, token) = self
            .client
            .basic_or_token(self.client.request(method, path));
        Ok(match token {
            Some(token) => {
                let mut value =
                    HeaderValue::from_str(&format!("Token token={token}")).map_err(|_| {
                        ConnectorError::rejected(
                            "Zammad: the token is not a valid HTTP header value",
                        )
                    })?;
                value.set_sensitive(true);
                request.header(AUTHORIZATION, value)
            }
            None => request,
        })
    }

    /// `POST /api/v1/ticket_articles`: an internal note.
    async fn article(&self, id: &Value, ticket: &Ticket, note: &str) -> Result<(), ConnectorError> {
        let request = self
            .request(Method::POST, "/api/v1/ticket_articles")?
            .json(&json!({
                "ticket_id": id,
                "subject": title(ticket),
                "body": note,
                "content_type": "text/plain",
                "type": "note",
                "internal": true,
            }));
        self.client
            .send(request, "Zammad add note")
            .await
            .map(|_| ())
    }

    /// `PUT /api/v1/tickets/{id}` with the state.
    async fn set_state(&self, id: &Value, state: &str) -> Result<(), ConnectorError> {
        let request = self
            .request(Method::PUT, &format!("/api/v1/tickets/{}", id_text(id)))?
            .json(&json!({ "state": state }));
        self.client
            .send(request, "Zammad set state")
            .await
            .map(|_| ())
    }

    fn is_closed(&self, state: &str) -> bool {
        state.eq_ignore_ascii_case(&self.config.closed_state)
            || ["closed", "merged", "removed"]
                .iter()
                .any(|s| state.eq_ignore_ascii_case(s))
    }

    /// The first ticket of a search answer carrying the marker and not closed. Reads both
    /// forms: `{"tickets":[ids],"assets":{"Ticket":{..},"TicketState":{..}}}` and, with
    /// `expand=true`, a plain array of tickets.
    fn pick(&self, body: &Value, marker: &str) -> Result<Option<TicketRef>, ConnectorError> {
        let candidates: Vec<Map<String, Value>> =
            if let Some(list) = body.as_array() {
                list.iter().filter_map(|t| t.as_object().cloned()).collect()
            } else if let Some(ids) = body.get("tickets").and_then(Value::as_array) {
                let assets = body.pointer("/assets/Ticket");
                ids.iter()
                    .map(|id| {
                        let key = id_text(id);
                        let mut ticket = assets
                            .and_then(|a| a.get(&key))
                            .and_then(Value::as_object)
                            .cloned()
                            .unwrap_or_default();
                        ticket.insert("id".into(), id.clone());
                        if let Some(state) = ticket.get("state_id").map(id_text).and_then(|sid| {
                            body.pointer(&format!("/assets/TicketState/{sid}/name"))
                        }) {
                            ticket.insert("state".into(), state.clone());
                        }
                        ticket
                    })
                    .collect()
            } else if body.is_object() {
                // `{"tickets_count":0}` without a list, or an empty assets map: nothing found.
                Vec::new()
            } else {
                return Err(ConnectorError::rejected(
                    "Zammad search: the answer is not a search result",
                ));
            };
        for ticket in candidates {
            // A search hit that does not show the marker in its title is not ours.
            if !ticket
                .get("title")
                .and_then(Value::as_str)
                .is_some_and(|title| title.contains(marker))
            {
                continue;
            }
            if let Some(state) = ticket.get("state").and_then(Value::as_str)
                && self.is_closed(state)
            {
                continue;
            }
            let Some(id) = ticket
                .get("id")
                .filter(|id| id.is_number() || id.is_string())
            else {
                continue;
            };
            let id = id_text(id);
            let display = ticket
                .get("number")
                .map(id_text)
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| id.clone());
            return Ok(Some(TicketRef { id, display }));
        }
        Ok(None)
    }
}

impl Connector for Zammad {
    fn kind(&self) -> &'static str {
        "zammad"
    }

    /// Zammad's search index (Elasticsearch) shows a new ticket only after a moment.
    fn search_lag(&self) -> std::time::Duration {
        std::time::Duration::from_secs(5)
    }

    fn find<'a>(
        &'a self,
        ticket: &'a Ticket,
    ) -> BoxFuture<'a, Result<Option<TicketRef>, ConnectorError>> {
        Box::pin(async move {
            let path = format!(
                "/api/v1/tickets/search?query={}&limit={SEARCH_LIMIT}",
                encode(&ticket.correlation_key)
            );
            let answer = self
                .client
                .send(self.request(Method::GET, &path)?, "Zammad search")
                .await?;
            self.pick(&answer.body, &marker(ticket))
        })
    }

    fn create<'a>(
        &'a self,
        ticket: &'a Ticket,
    ) -> BoxFuture<'a, Result<TicketRef, ConnectorError>> {
        Box::pin(async move {
            let group = match ticket.queue.trim() {
                "" => self.config.group.as_str(),
                queue => queue,
            };
            let title = title(ticket);
            let request = self.request(Method::POST, "/api/v1/tickets")?.json(&json!({
                "title": title,
                "group": group,
                "customer": self.config.customer,
                "article": {
                    "subject": title,
                    "body": ticket.body,
                    "content_type": "text/plain",
                    "type": "note",
                    "internal": true,
                },
            }));
            let answer = self.client.send(request, "Zammad create ticket").await?;
            let id = match answer.body.get("id") {
                Some(id @ (Value::Number(_) | Value::String(_))) if !id_text(id).is_empty() => {
                    id_text(id)
                }
                _ => {
                    return Err(ConnectorError::rejected(format!(
                        "Zammad create ticket: the answer has no id: {}",
                        answer
                            .body
                            .to_string()
                            .chars()
                            .take(300)
                            .collect::<String>()
                    )));
                }
            };
            let display = answer
                .body
                .get("number")
                .map(id_text)
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| id.clone());
            Ok(TicketRef { id, display })
        })
    }

    fn update<'a>(
        &'a self,
        external: &'a TicketRef,
        ticket: &'a Ticket,
        update: Update,
        note: &'a str,
    ) -> BoxFuture<'a, Result<(), ConnectorError>> {
        Box::pin(async move {
            let id: Value = match external.id.trim().parse::<i64>() {
                Ok(n) => json!(n),
                Err(_) => {
                    return Err(ConnectorError::rejected(format!(
                        "Zammad: ticket id {:?} is not a number",
                        external.id.chars().take(100).collect::<String>()
                    )));
                }
            };
            let note = if note.trim().is_empty() {
                format!("Steward: {} ({update:?}).", ticket.correlation_key)
            } else {
                note.to_string()
            };
            match update {
                Update::Comment | Update::Acknowledge => self.article(&id, ticket, &note).await,
                Update::Resolve => {
                    self.article(&id, ticket, &note).await?;
                    self.set_state(&id, &self.config.closed_state).await
                }
                Update::Reopen => {
                    self.set_state(&id, &self.config.reopen_state).await?;
                    self.article(&id, ticket, &note).await
                }
            }
        })
    }
}

/// `[KEY]`: what the title carries and `find` checks.
fn marker(ticket: &Ticket) -> String {
    format!("[{}]", ticket.correlation_key)
}

/// `[KEY] summary`, cut to Zammad's 250 characters.
fn title(ticket: &Ticket) -> String {
    format!("{} {}", marker(ticket), ticket.summary.trim())
        .trim_end()
        .chars()
        .take(MAX_TITLE)
        .collect()
}

/// A number or string id as text.
fn id_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

fn default_group() -> String {
    "Users".into()
}
fn default_closed() -> String {
    "closed".into()
}
fn default_open() -> String {
    "open".into()
}
