//! Jira Service Management: a customer request through `/rest/servicedeskapi/request`, the
//! correlation key in a label (or a field), comments, and a configurable transition to resolve;
//! found again with JQL.
//!
//! - create: `POST /rest/servicedeskapi/request` `{serviceDeskId, requestTypeId,
//!   requestFieldValues: {summary, description, labels: [KEY]}}` → `issueKey` (the id and the
//!   display of the ticket).
//! - find: `GET {search_path}?jql=...&fields=key&maxResults=1` with
//!   `labels = "KEY" AND statusCategory != Done`. With a field instead of labels
//!   (`key_field = "customfield_10050"`) the JQL is `cf[10050] ~ "\"KEY\""` (a phrase search:
//!   JQL has no exact match for text fields), the field is fetched too and only an exact
//!   value counts. A key_field not of the `customfield_N` form is quoted as a field name.
//! - comment / acknowledge: `POST /rest/servicedeskapi/request/{key}/comment {body, public}`.
//! - resolve / reopen: `POST /rest/servicedeskapi/request/{key}/transition
//!   {id, additionalComment: {body}}` with the configured transition ids.

use reqwest::header::ACCEPT;
use reqwest::{Method, RequestBuilder};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::http::{Client, encode, required_id};
use super::{BoxFuture, Connector, ConnectorError, Ticket, TicketRef, Update};

/// `type = "jira_service_management"` settings (beside the common ones: name, url, auth, ...).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The service desk new requests go to. A route's `queue` overrides it: `"DESK"`, or
    /// `"DESK/REQUEST_TYPE"` since request types belong to one service desk each.
    pub service_desk_id: String,
    /// The request type of new requests (unless the route's `queue` names one).
    pub request_type_id: String,
    /// The workflow transition that resolves a request (ids are per workflow).
    pub resolve_transition_id: String,
    /// The transition that reopens one; without it a re-fire opens a new request.
    #[serde(default)]
    pub reopen_transition_id: Option<String>,
    /// Where the correlation key is kept: `labels` (default) or a custom field id.
    #[serde(default = "default_key_field")]
    pub key_field: String,
    /// Comments visible to the customer (default: internal).
    #[serde(default)]
    pub public_comments: bool,
    /// The JQL search endpoint (default `/rest/api/2/search`; Jira Cloud's successor is
    /// `/rest/api/3/search/jql`, which takes the same parameters).
    #[serde(default = "default_search_path")]
    pub search_path: String,
}

/// Jira rejects longer summaries.
const MAX_SUMMARY: usize = 255;

#[derive(Debug)]
pub struct Jira {
    client: Client,
    config: Config,
}

impl Jira {
    pub fn new(client: Client, config: Config) -> Jira {
        Jira { client, config }
    }

    /// A request with Jira's headers and credentials: HTTP Basic (Cloud: email + API token)
    /// or a bearer personal access token (Data Center).
    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self
            .client
            .request(method, path)
            .header(ACCEPT, "application/json");
        self.client.basic_or_bearer(request)
    }

    fn uses_labels(&self) -> bool {
        self.config.key_field == "labels"
    }

    /// The JQL finding open requests carrying `key`.
    fn jql(&self, key: &str) -> String {
        if self.uses_labels() {
            return format!("labels = {} AND statusCategory != Done", quote(key));
        }
        let field = match self.config.key_field.strip_prefix("customfield_") {
            Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => format!("cf[{n}]"),
            _ => quote(&self.config.key_field),
        };
        format!(
            "{field} ~ {} AND statusCategory != Done",
            quote(&format!("\"{key}\""))
        )
    }

    fn request_path(key: &str, action: &str) -> String {
        format!("/rest/servicedeskapi/request/{}/{action}", encode(key))
    }

    async fn transition(
        &self,
        key: &str,
        id: &str,
        note: &str,
        what: &str,
    ) -> Result<(), ConnectorError> {
        let body = json!({"id": id, "additionalComment": {"body": note}});
        self.client
            .send(
                self.request(Method::POST, &Self::request_path(key, "transition"))
                    .json(&body),
                what,
            )
            .await?;
        Ok(())
    }
}

impl Connector for Jira {
    fn kind(&self) -> &'static str {
        "jira_service_management"
    }

    /// Jira's JQL index shows a new ticket only after a moment.
    fn search_lag(&self) -> std::time::Duration {
        std::time::Duration::from_secs(15)
    }

    fn can_reopen(&self) -> bool {
        self.config.reopen_transition_id.is_some()
    }

    fn find<'a>(
        &'a self,
        ticket: &'a Ticket,
    ) -> BoxFuture<'a, Result<Option<TicketRef>, ConnectorError>> {
        Box::pin(async move {
            let key = &ticket.correlation_key;
            let (fields, max) = if self.uses_labels() {
                ("key".to_string(), 1)
            } else {
                (format!("key,{}", self.config.key_field), 20)
            };
            let path = format!(
                "{}?jql={}&fields={}&maxResults={max}",
                self.config.search_path,
                encode(&self.jql(key)),
                encode(&fields)
            );
            let answer = self
                .client
                .send(self.request(Method::GET, &path), "find request")
                .await?;
            let Some(issues) = answer.body.get("issues").and_then(Value::as_array) else {
                return Err(ConnectorError::rejected(format!(
                    "find request: the answer has no issues list: {}",
                    answer
                        .body
                        .to_string()
                        .chars()
                        .take(300)
                        .collect::<String>()
                )));
            };
            let found = issues.iter().find(|issue| {
                self.uses_labels()
                    || issue
                        .pointer(&format!("/fields/{}", self.config.key_field))
                        .is_some_and(|value| holds_key(value, key))
            });
            let Some(issue) = found else {
                return Ok(None);
            };
            let id = required_id(issue, "/key", "find request")?;
            Ok(Some(TicketRef {
                display: id.clone(),
                id,
            }))
        })
    }

    fn create<'a>(
        &'a self,
        ticket: &'a Ticket,
    ) -> BoxFuture<'a, Result<TicketRef, ConnectorError>> {
        Box::pin(async move {
            let (desk, request_type) = match ticket.queue.trim() {
                "" => (
                    self.config.service_desk_id.as_str(),
                    self.config.request_type_id.as_str(),
                ),
                queue => match queue.split_once('/') {
                    Some((desk, kind)) => (desk.trim(), kind.trim()),
                    None => (queue, self.config.request_type_id.as_str()),
                },
            };
            let summary: String = ticket
                .summary
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(MAX_SUMMARY)
                .collect();
            let mut fields = Map::new();
            fields.insert("summary".into(), json!(summary));
            fields.insert("description".into(), json!(ticket.body));
            if self.uses_labels() {
                fields.insert("labels".into(), json!([ticket.correlation_key]));
            } else {
                fields.insert(self.config.key_field.clone(), json!(ticket.correlation_key));
            }
            let body = json!({
                "serviceDeskId": desk,
                "requestTypeId": request_type,
                "requestFieldValues": fields,
            });
            let answer = self
                .client
                .send(
                    self.request(Method::POST, "/rest/servicedeskapi/request")
                        .json(&body),
                    "create request",
                )
                .await?;
            let id = required_id(&answer.body, "/issueKey", "create request")?;
            Ok(TicketRef {
                display: id.clone(),
                id,
            })
        })
    }

    fn update<'a>(
        &'a self,
        external: &'a TicketRef,
        ticket: &'a Ticket,
        update: Update,
        note: &'a str,
    ) -> BoxFuture<'a, Result<(), ConnectorError>> {
        let _ = ticket;
        Box::pin(async move {
            let key = external.id.as_str();
            if key.is_empty() {
                return Err(ConnectorError::rejected("update request: no issue key"));
            }
            match update {
                Update::Comment | Update::Acknowledge => {
                    let (default, what) = if update == Update::Comment {
                        ("Updated by Steward.", "comment request")
                    } else {
                        ("Acknowledged in Steward.", "acknowledge request")
                    };
                    let body = json!({
                        "body": or_default(note, default),
                        "public": self.config.public_comments,
                    });
                    self.client
                        .send(
                            self.request(Method::POST, &Self::request_path(key, "comment"))
                                .json(&body),
                            what,
                        )
                        .await?;
                    Ok(())
                }
                Update::Resolve => {
                    self.transition(
                        key,
                        &self.config.resolve_transition_id,
                        or_default(note, "Resolved: the problem cleared (Steward)."),
                        "resolve request",
                    )
                    .await
                }
                Update::Reopen => {
                    let Some(id) = self
                        .config
                        .reopen_transition_id
                        .as_deref()
                        .filter(|id| !id.is_empty())
                    else {
                        return Err(ConnectorError::rejected(
                            "reopen request: no reopen_transition_id is configured (set it, or on_refire = \"new\")",
                        ));
                    };
                    self.transition(
                        key,
                        id,
                        or_default(note, "Reopened: the problem is back (Steward)."),
                        "reopen request",
                    )
                    .await
                }
            }
        })
    }
}

/// A JQL string literal.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A field's value is exactly the key (a text field) or holds it (a labels-like list).
fn holds_key(value: &Value, key: &str) -> bool {
    match value {
        Value::String(s) => s.trim() == key,
        Value::Array(items) => items.iter().any(|v| v.as_str() == Some(key)),
        _ => false,
    }
}

fn or_default<'a>(note: &'a str, default: &'a str) -> &'a str {
    if note.trim().is_empty() {
        default
    } else {
        note
    }
}

fn default_key_field() -> String {
    "labels".into()
}
fn default_search_path() -> String {
    "/rest/api/2/search".into()
}
