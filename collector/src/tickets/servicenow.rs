//! ServiceNow: the Table API (an incident carrying `correlation_id`, linked to `cmdb_ci`,
//! resolved with configurable `close_code`/`close_notes`/state) or, with `mode = "event"`, the
//! Event Management `jsonv2` endpoint keyed by `message_key`.
//!
//! Table mode: create `POST /api/now/table/{table}`, find
//! `GET /api/now/table/{table}?sysparm_query=correlation_id=KEY^active=true`, update
//! `PATCH /api/now/table/{table}/{sys_id}` (`work_notes`; resolve sets `state`, `close_code`,
//! `close_notes`; reopen sets `state` back). The ticket's id is the `sys_id`, its display the
//! incident number.
//!
//! Event mode: every operation is one event `POST /api/global/em/jsonv2` with
//! `message_key` = the correlation key, which Event Management deduplicates into one alert;
//! a resolve is the clear event (`severity` 0). There is nothing to search for.

use reqwest::header::ACCEPT;
use reqwest::{Method, RequestBuilder};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::http::{Client, encode, required_id};
use super::{BoxFuture, Connector, ConnectorError, Severity, Ticket, TicketRef, Update};

/// `type = "servicenow"` settings (beside the common ones: name, url, auth, ...).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `table` (default): incidents through the Table API; `event`: Event Management jsonv2.
    /// Anything else is refused when the config is read.
    #[serde(default)]
    pub mode: Mode,
    /// The Table API table (default `incident`).
    #[serde(default = "default_table")]
    pub table: String,
    /// `assignment_group` of new incidents (a route's `queue` overrides it).
    #[serde(default)]
    pub assignment_group: Option<String>,
    /// `caller_id` of new incidents.
    #[serde(default)]
    pub caller_id: Option<String>,
    /// `close_code` when resolving (often mandatory).
    #[serde(default = "default_close_code")]
    pub close_code: String,
    /// The `state` that means resolved (6 in the base system).
    #[serde(default = "default_resolved_state")]
    pub resolved_state: String,
    /// The `state` a reopened incident gets (2, In Progress, in the base system).
    #[serde(default = "default_reopen_state")]
    pub reopen_state: String,
    /// Event Management `source` (mode = "event").
    #[serde(default = "default_source")]
    pub source: String,
}

/// `mode` of a ServiceNow connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Incidents through the Table API.
    #[default]
    Table,
    /// Events through Event Management (`/api/global/em/jsonv2`).
    Event,
}

/// `correlation_display` of the incidents this connector opens.
const CORRELATION_DISPLAY: &str = "Steward";
/// The Event Management severity of a clear event.
const EM_CLEAR: &str = "0";

#[derive(Debug)]
pub struct ServiceNow {
    client: Client,
    config: Config,
}

impl ServiceNow {
    pub fn new(client: Client, config: Config) -> ServiceNow {
        ServiceNow { client, config }
    }

    /// A request with ServiceNow's headers and credentials: HTTP Basic (user + password) or
    /// an OAuth bearer token.
    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self
            .client
            .request(method, path)
            .header(ACCEPT, "application/json");
        self.client.basic_or_bearer(request)
    }

    fn table_path(&self) -> String {
        format!("/api/now/table/{}", encode(&self.config.table))
    }

    async fn table_find(&self, ticket: &Ticket) -> Result<Option<TicketRef>, ConnectorError> {
        let key = &ticket.correlation_key;
        if key.contains('^') {
            // `^` separates the conditions of an encoded query; it cannot be escaped there.
            return Err(ConnectorError::rejected(
                "find incident: the correlation key contains '^', which a ServiceNow query cannot carry",
            ));
        }
        let query = format!("correlation_id={key}^active=true");
        let path = format!(
            "{}?sysparm_query={}&sysparm_fields={}&sysparm_limit=1",
            self.table_path(),
            encode(&query),
            encode("sys_id,number")
        );
        let answer = self
            .client
            .send(self.request(Method::GET, &path), "find incident")
            .await?;
        let Some(list) = answer.body.pointer("/result").and_then(Value::as_array) else {
            return Err(ConnectorError::rejected(format!(
                "find incident: the answer has no result list: {}",
                short(&answer.body)
            )));
        };
        let Some(first) = list.first() else {
            return Ok(None);
        };
        let id = required_id(first, "/sys_id", "find incident")?;
        Ok(Some(TicketRef {
            display: display_number(first, &id),
            id,
        }))
    }

    async fn table_create(&self, ticket: &Ticket) -> Result<TicketRef, ConnectorError> {
        let level = match ticket.severity {
            Severity::Critical => "1",
            Severity::Warning => "2",
        };
        let mut body = Map::new();
        body.insert("short_description".into(), json!(ticket.summary));
        body.insert("description".into(), json!(ticket.body));
        if !ticket.ci_name.is_empty() {
            body.insert("cmdb_ci".into(), json!(ticket.ci_name));
        }
        body.insert("urgency".into(), json!(level));
        body.insert("impact".into(), json!(level));
        body.insert("correlation_id".into(), json!(ticket.correlation_key));
        body.insert("correlation_display".into(), json!(CORRELATION_DISPLAY));
        let group = if ticket.queue.is_empty() {
            self.config
                .assignment_group
                .as_deref()
                .filter(|g| !g.is_empty())
        } else {
            Some(ticket.queue.as_str())
        };
        if let Some(group) = group {
            body.insert("assignment_group".into(), json!(group));
        }
        if let Some(caller) = self.config.caller_id.as_deref().filter(|c| !c.is_empty()) {
            body.insert("caller_id".into(), json!(caller));
        }
        let path = format!(
            "{}?sysparm_fields={}",
            self.table_path(),
            encode("sys_id,number")
        );
        let answer = self
            .client
            .send(
                self.request(Method::POST, &path).json(&Value::Object(body)),
                "create incident",
            )
            .await?;
        let id = required_id(&answer.body, "/result/sys_id", "create incident")?;
        let display = answer
            .body
            .pointer("/result")
            .map(|r| display_number(r, &id))
            .unwrap_or_else(|| id.clone());
        Ok(TicketRef { id, display })
    }

    async fn table_update(
        &self,
        external: &TicketRef,
        update: Update,
        note: &str,
    ) -> Result<(), ConnectorError> {
        let (body, what) = match update {
            Update::Comment => (
                json!({"work_notes": or_default(note, "Updated by Steward.")}),
                "comment incident",
            ),
            Update::Acknowledge => (
                json!({"work_notes": or_default(note, "Acknowledged in Steward.")}),
                "acknowledge incident",
            ),
            Update::Resolve => (
                json!({
                    "state": self.config.resolved_state,
                    "close_code": self.config.close_code,
                    "close_notes": or_default(note, "Resolved: the problem cleared (Steward)."),
                }),
                "resolve incident",
            ),
            Update::Reopen => (
                json!({
                    "state": self.config.reopen_state,
                    "work_notes": or_default(note, "Reopened: the problem is back (Steward)."),
                }),
                "reopen incident",
            ),
        };
        if external.id.is_empty() {
            return Err(ConnectorError::rejected(format!("{what}: no sys_id")));
        }
        let path = format!(
            "{}/{}?sysparm_fields=sys_id",
            self.table_path(),
            encode(&external.id)
        );
        self.client
            .send(self.request(Method::PATCH, &path).json(&body), what)
            .await?;
        Ok(())
    }

    /// One Event Management event for `ticket`, keyed by `message_key`.
    async fn send_event(
        &self,
        message_key: &str,
        ticket: &Ticket,
        severity: &str,
        description: &str,
        what: &str,
    ) -> Result<(), ConnectorError> {
        let additional_info = match &ticket.details {
            Value::Object(_) => ticket.details.to_string(),
            Value::Null => "{}".to_string(),
            other => json!({ "details": other }).to_string(),
        };
        let body = json!({
            "records": [{
                "source": self.config.source,
                "node": ticket.ci_name,
                "type": ticket.rule,
                "resource": ticket.instance,
                "metric_name": ticket.rule,
                "severity": severity,
                "message_key": message_key,
                "description": description,
                "additional_info": additional_info,
            }]
        });
        self.client
            .send(
                self.request(Method::POST, "/api/global/em/jsonv2")
                    .json(&body),
                what,
            )
            .await?;
        Ok(())
    }
}

/// Event Management severities: 1 Critical, 2 Major, 3 Minor, 4 Warning (0 is Clear).
fn em_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "1",
        Severity::Warning => "4",
    }
}

impl Connector for ServiceNow {
    fn kind(&self) -> &'static str {
        "servicenow"
    }

    fn idempotent_create(&self) -> bool {
        // Event Management folds events with the same message_key into one alert.
        self.config.mode == Mode::Event
    }

    fn find<'a>(
        &'a self,
        ticket: &'a Ticket,
    ) -> BoxFuture<'a, Result<Option<TicketRef>, ConnectorError>> {
        Box::pin(async move {
            match self.config.mode {
                Mode::Table => self.table_find(ticket).await,
                Mode::Event => Ok(None),
            }
        })
    }

    fn create<'a>(
        &'a self,
        ticket: &'a Ticket,
    ) -> BoxFuture<'a, Result<TicketRef, ConnectorError>> {
        Box::pin(async move {
            match self.config.mode {
                Mode::Table => self.table_create(ticket).await,
                Mode::Event => {
                    let key = &ticket.correlation_key;
                    self.send_event(
                        key,
                        ticket,
                        em_severity(ticket.severity),
                        &ticket.body,
                        "send event",
                    )
                    .await?;
                    Ok(TicketRef {
                        id: key.clone(),
                        display: key.clone(),
                    })
                }
            }
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
            match self.config.mode {
                Mode::Table => self.table_update(external, update, note).await,
                Mode::Event => {
                    let key = if external.id.is_empty() {
                        &ticket.correlation_key
                    } else {
                        &external.id
                    };
                    let (severity, what) = match update {
                        Update::Resolve => (EM_CLEAR, "send clear event"),
                        Update::Comment | Update::Acknowledge | Update::Reopen => {
                            (em_severity(ticket.severity), "send event")
                        }
                    };
                    let description = if note.trim().is_empty() {
                        ticket.body.as_str()
                    } else {
                        note
                    };
                    self.send_event(key, ticket, severity, description, what)
                        .await
                }
            }
        })
    }
}

/// The incident number of a record, or its sys_id when the answer has none.
fn display_number(record: &Value, sys_id: &str) -> String {
    record
        .get("number")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .unwrap_or(sys_id)
        .to_string()
}

fn or_default<'a>(note: &'a str, default: &'a str) -> &'a str {
    if note.trim().is_empty() {
        default
    } else {
        note
    }
}

fn short(body: &Value) -> String {
    body.to_string().chars().take(300).collect()
}

fn default_table() -> String {
    "incident".into()
}
fn default_close_code() -> String {
    "Solved (Permanently)".into()
}
fn default_resolved_state() -> String {
    "6".into()
}
fn default_reopen_state() -> String {
    "2".into()
}
fn default_source() -> String {
    "Steward".into()
}
