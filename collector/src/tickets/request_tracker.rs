//! Request Tracker REST2: a ticket in a queue carrying the correlation key in a ticket custom
//! field, comments, and status resolved; found again with TicketSQL on that field.
//!
//! `url` is RT's base URL (`https://rt.example.com`, or with its web path:
//! `https://example.com/rt`); the API is under `/REST/2.0`. Checked against RT 5.0.3:
//!
//! - create: `POST /REST/2.0/ticket` with the queue, subject, body, priority (critical 90,
//!   warning 50), requestor and `CustomFields: {FIELD: KEY}` → 201 `{"id": "N"}`. RT ignores
//!   custom fields not applied to the queue (still 201), so the ticket is read back
//!   (`GET /REST/2.0/ticket/N`) and a key that was not stored is an operator error: Rejected.
//! - find: `GET /REST/2.0/tickets?query='CF.{FIELD}' = 'KEY' AND Status = '__Active__'`.
//! - comment and acknowledge: `POST /REST/2.0/ticket/N/comment` `{Content, ContentType}`.
//! - resolve and reopen: the same comment call also carrying `Status`, so the note and the
//!   status change are one call (no half-done update to repeat). RT answers 201 with
//!   messages even when the status change is refused (`Status 'x' isn't a valid status`), so
//!   unless a message says the status changed, the ticket is read back to see its status.
//!
//! Auth: Basic (`user` + `password_file`) or `Authorization: token T` (`token_file`, an RT
//! auth token).

use reqwest::header::AUTHORIZATION;
use reqwest::{Method, RequestBuilder};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::http::{Client, encode, required_id};
use super::{BoxFuture, Connector, ConnectorError, Severity, Ticket, TicketRef, Update};

/// Where REST2 lives under RT's base URL.
const API: &str = "/REST/2.0";

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

    /// A REST2 request with the credentials (Basic, or RT's `token` scheme).
    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let (request, token) = self
            .client
            .basic_or_token(self.client.request(method, &format!("{API}{path}")));
        match token {
            Some(token) => {
                let mut value = reqwest::header::HeaderValue::from_str(&format!("token {token}"))
                    .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static(""));
                value.set_sensitive(true);
                request.header(AUTHORIZATION, value)
            }
            None => request,
        }
    }

    fn queue<'a>(&'a self, ticket: &'a Ticket) -> &'a str {
        if ticket.queue.is_empty() {
            &self.config.queue
        } else {
            &ticket.queue
        }
    }

    /// `GET /ticket/N`.
    async fn read_ticket(&self, id: &str, what: &str) -> Result<Value, ConnectorError> {
        let answer = self
            .client
            .send(
                self.request(Method::GET, &format!("/ticket/{}", encode(id))),
                what,
            )
            .await?;
        Ok(answer.body)
    }

    /// Reads a ticket just created back and checks that it carries the key.
    async fn check_created(&self, id: &str, ticket: &Ticket) -> Result<(), ConnectorError> {
        let what = format!("read back created ticket #{id}");
        let body = match self.read_ticket(id, &what).await {
            Ok(body) => body,
            // The ticket exists: whoever retries must search for it before creating again.
            Err(ConnectorError::Retryable {
                message,
                retry_after,
                ..
            }) => {
                return Err(ConnectorError::Retryable {
                    message,
                    retry_after,
                    maybe_applied: true,
                });
            }
            Err(ConnectorError::Rejected { message }) => {
                return Err(ConnectorError::rejected(format!(
                    "{message} (ticket #{id} was created)"
                )));
            }
        };
        if custom_field_values(&body, &self.config.correlation_field)
            .iter()
            .any(|value| value == &ticket.correlation_key)
        {
            return Ok(());
        }
        Err(ConnectorError::rejected(format!(
            "RT ticket #{id} was created in queue {:?} without the correlation key: the ticket \
             custom field {:?} does not exist or is not applied to that queue (apply it in RT: \
             Admin > Custom Fields > {:?} > Applies to); without it the ticket cannot be found again",
            self.queue(ticket),
            self.config.correlation_field,
            self.config.correlation_field,
        )))
    }

    /// A comment on ticket `id`, optionally changing its status in the same call; a status
    /// change RT refused is a rejection.
    async fn comment(
        &self,
        id: &str,
        note: &str,
        status: Option<&str>,
        what: &str,
    ) -> Result<(), ConnectorError> {
        let path = format!("/ticket/{}", encode(id));
        let answer = if note.trim().is_empty() {
            let Some(status) = status else {
                return Ok(()); // nothing to say
            };
            let request = self
                .request(Method::PUT, &path)
                .json(&json!({ "Status": status }));
            self.client.send(request, what).await?
        } else {
            let mut body = json!({ "Content": note, "ContentType": "text/plain" });
            if let Some(status) = status {
                body["Status"] = Value::from(status);
            }
            let request = self
                .request(Method::POST, &format!("{path}/comment"))
                .json(&body);
            self.client.send(request, what).await?
        };
        let Some(status) = status else {
            return Ok(());
        };
        let messages = messages(&answer.body);
        if status_changed_to(&messages, status) {
            return Ok(());
        }
        // No message saying so: the status may already have been that (a repeated resolve),
        // or RT refused it (unknown status, a lifecycle that forbids the change, no right).
        let current = self.read_ticket(id, what).await?;
        let now = current.get("Status").and_then(Value::as_str).unwrap_or("");
        if now.eq_ignore_ascii_case(status) {
            return Ok(());
        }
        Err(ConnectorError::rejected(format!(
            "{what}: RT did not set ticket #{id} to status {status:?} (it is {now:?}): {}",
            if messages.is_empty() {
                "no message".to_string()
            } else {
                messages.join("; ")
            }
        )))
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
        Box::pin(async move {
            let query = format!(
                "'CF.{{{}}}' = '{}' AND Status = '__Active__'",
                self.config.correlation_field,
                ticket_sql_escape(&ticket.correlation_key)
            );
            let path = format!(
                "/tickets?query={}&fields=Subject,Status&orderby=id&order=ASC&per_page=20",
                encode(&query)
            );
            let answer = self
                .client
                .send(self.request(Method::GET, &path), "search ticket")
                .await?;
            let Some(items) = answer.body.get("items").and_then(Value::as_array) else {
                return Err(ConnectorError::rejected(format!(
                    "search ticket: the answer has no items: {}",
                    answer
                        .body
                        .to_string()
                        .chars()
                        .take(300)
                        .collect::<String>()
                )));
            };
            match items.first() {
                None => Ok(None),
                Some(item) => {
                    let id = required_id(item, "/id", "search ticket")?;
                    Ok(Some(TicketRef {
                        display: format!("#{id}"),
                        id,
                    }))
                }
            }
        })
    }

    fn create<'a>(
        &'a self,
        ticket: &'a Ticket,
    ) -> BoxFuture<'a, Result<TicketRef, ConnectorError>> {
        Box::pin(async move {
            let mut custom_fields = serde_json::Map::new();
            custom_fields.insert(
                self.config.correlation_field.clone(),
                Value::from(ticket.correlation_key.as_str()),
            );
            let mut body = json!({
                "Queue": self.queue(ticket),
                "Subject": ticket.summary,
                "Content": ticket.body,
                "ContentType": "text/plain",
                "Priority": priority(ticket.severity),
                "CustomFields": custom_fields,
            });
            if let Some(requestor) = &self.config.requestor {
                body["Requestor"] = Value::from(requestor.as_str());
            }
            let request = self.request(Method::POST, "/ticket").json(&body);
            let answer = self.client.send(request, "create ticket").await?;
            let id = required_id(&answer.body, "/id", "create ticket")?;
            // The id is known: it is returned (and stored) whatever the check finds, so the
            // ticket is commented and resolved through it. A ticket without its key could
            // only not be found again after a lost answer: an operator's error, logged.
            if let Err(error) = self.check_created(&id, ticket).await {
                tracing::error!(ticket = id, %error, "RT ticket created, but its correlation key is not stored");
            }
            Ok(TicketRef {
                display: format!("#{id}"),
                id,
            })
        })
    }

    fn update<'a>(
        &'a self,
        external: &'a TicketRef,
        _ticket: &'a Ticket,
        update: Update,
        note: &'a str,
    ) -> BoxFuture<'a, Result<(), ConnectorError>> {
        Box::pin(async move {
            let id = external.id.as_str();
            match update {
                Update::Comment => self.comment(id, note, None, "comment on ticket").await,
                Update::Acknowledge => self.comment(id, note, None, "acknowledge ticket").await,
                Update::Resolve => {
                    let status = self.config.resolved_status.as_str();
                    self.comment(id, note, Some(status), "resolve ticket").await
                }
                Update::Reopen => {
                    let status = self.config.reopen_status.as_str();
                    self.comment(id, note, Some(status), "reopen ticket").await
                }
            }
        })
    }
}

fn priority(severity: Severity) -> u32 {
    match severity {
        Severity::Critical => 90,
        Severity::Warning => 50,
    }
}

/// A value inside a single-quoted TicketSQL string.
fn ticket_sql_escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "\\'")
}

/// The values of custom field `name` in a REST2 ticket: `CustomFields` is a list of
/// `{"name": .., "values": [..]}` (RT 5), or an object of name → values.
fn custom_field_values(ticket: &Value, name: &str) -> Vec<String> {
    let strings = |values: &Value| -> Vec<String> {
        match values {
            Value::Array(list) => list
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Value::String(s) => vec![s.clone()],
            _ => Vec::new(),
        }
    };
    match ticket.get("CustomFields") {
        Some(Value::Array(fields)) => fields
            .iter()
            .filter(|f| {
                f.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .flat_map(|f| f.get("values").map(strings).unwrap_or_default())
            .collect(),
        Some(Value::Object(fields)) => fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, values)| strings(values))
            .collect(),
        _ => Vec::new(),
    }
}

/// The messages of an update's answer (`["Comments added", "Status changed from ..."]`).
fn messages(body: &Value) -> Vec<String> {
    match body {
        Value::Array(list) => list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// True when a message says the status changed to `status` (`Ticket 1: Status changed from
/// 'new' to 'resolved'`).
fn status_changed_to(messages: &[String], status: &str) -> bool {
    let to = format!("to '{}'", status.to_lowercase());
    messages.iter().any(|m| {
        let m = m.to_lowercase();
        m.contains("status changed from") && m.contains(&to)
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_sql_values_are_escaped() {
        assert_eq!(ticket_sql_escape(r"it's a\b"), r"it\'s a\\b");
    }

    #[test]
    fn custom_field_values_are_read_in_both_shapes() {
        let list = json!({"CustomFields": [
            {"name": "Other", "values": ["x"]},
            {"name": "Correlation Key", "values": ["k-1"]},
        ]});
        assert_eq!(custom_field_values(&list, "correlation key"), vec!["k-1"]);
        let object = json!({"CustomFields": {"Correlation Key": ["k-2"]}});
        assert_eq!(custom_field_values(&object, "Correlation Key"), vec!["k-2"]);
        assert!(custom_field_values(&json!({}), "Correlation Key").is_empty());
    }

    #[test]
    fn status_messages_are_recognised() {
        let ok = vec![
            "Comments added".to_string(),
            "Status changed from 'new' to 'resolved'".to_string(),
        ];
        assert!(status_changed_to(&ok, "resolved"));
        assert!(!status_changed_to(&ok, "open"));
        let refused = vec!["Ticket 1: Status 'bogus' isn't a valid status for this ticket.".into()];
        assert!(!status_changed_to(&refused, "bogus"));
        let lifecycle = vec!["You can't change status from 'rejected' to 'resolved'.".into()];
        assert!(!status_changed_to(&lifecycle, "resolved"));
    }
}
