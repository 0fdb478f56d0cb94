//! GLPI's apirest.php: a session per operation (initSession/killSession with the user token or
//! a user and password, and the optional App-Token), a Ticket linked to the CI's asset
//! (Item_Ticket), follow-ups, and status 5 (solved) to resolve; found again by the correlation
//! key in its title (GLPI has no correlation field).
//!
//! Each operation opens its own session and kills it at the end, also after a failure (best
//! effort: a session GLPI never hears the end of expires on its own). The correlation key is
//! written as `[KEY] summary` in the ticket's name, and `find` searches names containing
//! `[KEY]` among tickets not solved or closed.
//!
//! Urgency: GLPI's scale is 1 (very low) to 5 (very high); critical events get
//! `urgency_critical` (4, high) and warnings `urgency_warning` (3, medium), leaving "very high"
//! to people. A route's `queue`, when it is a number, is the id of the group the ticket is
//! assigned to (`_groups_id_assign`).

use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Method, RequestBuilder};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::http::{Client, encode};
use super::{BoxFuture, Connector, ConnectorError, Severity, Ticket, TicketRef, Update};

/// Longest ticket name GLPI stores.
const MAX_NAME: usize = 255;

/// Search option ids of GLPI's search engine.
const FIELD_NAME: u32 = 1;
const FIELD_ID: u32 = 2;
const FIELD_SERIAL: u32 = 5;
const FIELD_STATUS: u32 = 12;

/// `type = "glpi"` settings (beside the common ones: name, url, auth, ...).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `entities_id` of new tickets.
    #[serde(default)]
    pub entities_id: i64,
    /// GLPI itemtype of the CI's asset, found by serial (default `Computer`).
    #[serde(default = "default_itemtype")]
    pub itemtype: String,
    /// Status that means solved (5 in GLPI).
    #[serde(default = "default_solved")]
    pub solved_status: i64,
    /// Status a reopened ticket gets (2, processing/assigned).
    #[serde(default = "default_reopen")]
    pub reopen_status: i64,
    /// GLPI urgency (1 very low .. 5 very high) of tickets for critical events (4, high).
    #[serde(default = "default_urgency_critical")]
    pub urgency_critical: i64,
    /// GLPI urgency of tickets for warnings (3, medium).
    #[serde(default = "default_urgency_warning")]
    pub urgency_warning: i64,
    /// `itilcategories_id` of new tickets; none by default.
    #[serde(default)]
    pub itilcategories_id: Option<i64>,
}

#[derive(Debug)]
pub struct Glpi {
    client: Client,
    config: Config,
}

/// An open GLPI session (its token is a credential: a sensitive header value).
struct Session {
    token: HeaderValue,
}

impl Glpi {
    pub fn new(client: Client, config: Config) -> Glpi {
        Glpi { client, config }
    }

    fn with_app_token(&self, request: RequestBuilder) -> Result<RequestBuilder, ConnectorError> {
        Ok(match &self.client.app_token {
            Some(token) => request.header("App-Token", sensitive(token.expose(), "the App-Token")?),
            None => request,
        })
    }

    /// `GET /initSession` with the user token (or Basic) and the App-Token.
    async fn open(&self) -> Result<Session, ConnectorError> {
        let request = self.with_app_token(self.client.request(Method::GET, "/initSession"))?;
        let (request, token) = self.client.basic_or_token(request);
        let request = match token {
            Some(token) => request.header(
                AUTHORIZATION,
                sensitive(&format!("user_token {token}"), "the user token")?,
            ),
            None => request,
        };
        let answer = self.client.send(request, "GLPI initSession").await?;
        match answer.body.get("session_token").and_then(Value::as_str) {
            Some(token) if !token.is_empty() => Ok(Session {
                token: sensitive(token, "the session token")?,
            }),
            _ => Err(ConnectorError::rejected(
                "GLPI initSession: the answer has no session_token",
            )),
        }
    }

    /// Kills the session; failures only logged (the session expires on its own).
    async fn close(&self, session: Session) {
        let request = match self.call(&session, Method::GET, "/killSession") {
            Ok(request) => request,
            Err(_) => return,
        };
        if let Err(e) = self.client.send(request, "GLPI killSession").await {
            tracing::debug!(error = %e, "GLPI killSession failed; the session will expire");
        }
    }

    fn call(
        &self,
        session: &Session,
        method: Method,
        path: &str,
    ) -> Result<RequestBuilder, ConnectorError> {
        let request = self
            .client
            .request(method, path)
            .header("Session-Token", session.token.clone());
        self.with_app_token(request)
    }

    /// `GET /search/{itemtype}?...`: the rows of the answer (none when it has no `data`).
    async fn search(
        &self,
        session: &Session,
        itemtype: &str,
        query: &str,
        what: &str,
    ) -> Result<Vec<Map<String, Value>>, ConnectorError> {
        let path = format!("/search/{}?{query}", encode(itemtype));
        let answer = self
            .client
            .send(self.call(session, Method::GET, &path)?, what)
            .await?;
        if !answer.body.is_object() {
            return Err(ConnectorError::rejected(format!(
                "{what}: the answer is not a search result"
            )));
        }
        Ok(answer
            .body
            .get("data")
            .and_then(Value::as_array)
            .map(|rows| {
                rows.iter()
                    .filter_map(|row| row.as_object().cloned())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The id of the CI's asset (by serial), or a note saying why there is none. A refusal
    /// (a wrong itemtype, no right to read it) does not stop the ticket; being unreachable does
    /// (nothing is created yet, so a retry is safe).
    async fn find_asset(
        &self,
        session: &Session,
        ticket: &Ticket,
    ) -> Result<(Option<i64>, Option<String>), ConnectorError> {
        let serial = ticket.ci_serial.trim();
        if serial.is_empty() {
            return Ok((None, None));
        }
        let itemtype = &self.config.itemtype;
        let query = format!(
            "criteria[0][field]={FIELD_SERIAL}&criteria[0][searchtype]=equals&criteria[0][value]={}&forcedisplay[0]={FIELD_ID}",
            encode(serial)
        );
        match self
            .search(session, itemtype, &query, "GLPI search asset")
            .await
        {
            Ok(rows) => match rows
                .iter()
                .find_map(|row| row_id(row).and_then(|id| id.parse().ok()))
            {
                Some(id) => Ok((Some(id), None)),
                None => Ok((
                    None,
                    Some(format!(
                        "No {itemtype} with serial {serial:?} was found in GLPI: the CI is not linked."
                    )),
                )),
            },
            Err(e @ ConnectorError::Retryable { .. }) => Err(e),
            Err(e) => {
                tracing::warn!(error = %e, itemtype = %itemtype, "GLPI: the asset search was refused; the ticket is not linked");
                Ok((
                    None,
                    Some(format!(
                        "The {itemtype} search in GLPI failed ({e}): the CI is not linked."
                    )),
                ))
            }
        }
    }

    async fn create_in(
        &self,
        session: &Session,
        ticket: &Ticket,
    ) -> Result<TicketRef, ConnectorError> {
        let (asset, asset_note) = self.find_asset(session, ticket).await?;
        // GLPI refuses a ticket without content.
        let mut content = if ticket.body.trim().is_empty() {
            ticket.summary.clone()
        } else {
            ticket.body.clone()
        };
        if let Some(note) = asset_note {
            content.push_str("\n\n");
            content.push_str(&note);
        }
        let mut input = Map::new();
        input.insert("name".into(), json!(ticket_name(ticket)));
        input.insert("content".into(), json!(html(&content)));
        input.insert(
            "urgency".into(),
            json!(match ticket.severity {
                Severity::Critical => self.config.urgency_critical,
                Severity::Warning => self.config.urgency_warning,
            }),
        );
        input.insert("entities_id".into(), json!(self.config.entities_id));
        // 1: incident.
        input.insert("type".into(), json!(1));
        if let Some(category) = self.config.itilcategories_id {
            input.insert("itilcategories_id".into(), json!(category));
        }
        let queue = ticket.queue.trim();
        if !queue.is_empty() {
            match queue.parse::<i64>() {
                Ok(group) => {
                    input.insert("_groups_id_assign".into(), json!(group));
                }
                Err(_) => tracing::warn!(
                    queue = %queue,
                    "GLPI: a route's queue must be a group id; the ticket is not assigned"
                ),
            }
        }
        let request = self
            .call(session, Method::POST, "/Ticket")?
            .json(&json!({ "input": input }));
        let answer = self.client.send(request, "GLPI create ticket").await?;
        let id = match answer.body.get("id") {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => {
                return Err(ConnectorError::rejected(format!(
                    "GLPI create ticket: the answer has no id: {}",
                    short(&answer.body.to_string())
                )));
            }
        };
        if let (Some(items_id), Ok(tickets_id)) = (asset, id.parse::<i64>()) {
            // The ticket exists now: a failed link must not make the create be repeated.
            if let Err(e) = self.link(session, items_id, tickets_id).await {
                tracing::warn!(error = %e, ticket = %id, "GLPI: linking the CI's asset failed");
            }
        }
        Ok(TicketRef {
            display: self.display(&id),
            id,
        })
    }

    /// `POST /Item_Ticket`: links the asset to the ticket.
    async fn link(
        &self,
        session: &Session,
        items_id: i64,
        tickets_id: i64,
    ) -> Result<(), ConnectorError> {
        let request = self
            .call(session, Method::POST, "/Item_Ticket")?
            .json(&json!({
                "input": {
                    "items_id": items_id,
                    "itemtype": self.config.itemtype,
                    "tickets_id": tickets_id,
                }
            }));
        self.client
            .send(request, "GLPI link asset")
            .await
            .map(|_| ())
    }

    async fn find_in(
        &self,
        session: &Session,
        ticket: &Ticket,
    ) -> Result<Option<TicketRef>, ConnectorError> {
        let marker = marker(ticket);
        let query = format!(
            "criteria[0][field]={FIELD_NAME}&criteria[0][searchtype]=contains&criteria[0][value]={}\
             &criteria[1][link]=AND&criteria[1][field]={FIELD_STATUS}&criteria[1][searchtype]=equals&criteria[1][value]=notold\
             &forcedisplay[0]={FIELD_ID}&forcedisplay[1]={FIELD_NAME}",
            encode(&marker)
        );
        let rows = self
            .search(session, "Ticket", &query, "GLPI search ticket")
            .await?;
        // GLPI's "contains" is a LIKE: check the name really carries the marker.
        let found = rows.iter().find(|row| {
            match row.get(&FIELD_NAME.to_string()).and_then(Value::as_str) {
                Some(name) => name.contains(&marker),
                None => false,
            }
        });
        Ok(found.and_then(row_id).map(|id| TicketRef {
            display: self.display(&id),
            id,
        }))
    }

    /// `POST /ITILFollowup` on the ticket.
    async fn followup(&self, session: &Session, id: i64, note: &str) -> Result<(), ConnectorError> {
        let request = self
            .call(session, Method::POST, "/ITILFollowup")?
            .json(&json!({
                "input": {"itemtype": "Ticket", "items_id": id, "content": html(note)}
            }));
        self.client
            .send(request, "GLPI add follow-up")
            .await
            .map(|_| ())
    }

    /// `PUT /Ticket/{id}` with the status.
    async fn set_status(
        &self,
        session: &Session,
        id: i64,
        status: i64,
    ) -> Result<(), ConnectorError> {
        let request = self
            .call(session, Method::PUT, &format!("/Ticket/{id}"))?
            .json(&json!({"input": {"status": status}}));
        let answer = self.client.send(request, "GLPI set status").await?;
        // GLPI answers [{"ID": true|false, "message": "..."}]; false is a refusal.
        if let Some(result) = answer.body.pointer("/0").and_then(Value::as_object)
            && result.get(&id.to_string()) == Some(&Value::Bool(false))
        {
            let message = result.get("message").and_then(Value::as_str).unwrap_or("");
            return Err(ConnectorError::rejected(format!(
                "GLPI set status: ticket {id} was not updated: {}",
                short(message)
            )));
        }
        Ok(())
    }

    async fn update_in(
        &self,
        session: &Session,
        id: i64,
        update: Update,
        note: &str,
    ) -> Result<(), ConnectorError> {
        match update {
            Update::Comment | Update::Acknowledge => self.followup(session, id, note).await,
            Update::Resolve => {
                self.followup(session, id, note).await?;
                self.set_status(session, id, self.config.solved_status)
                    .await
            }
            Update::Reopen => {
                // The status first: GLPI refuses follow-ups on closed tickets.
                self.set_status(session, id, self.config.reopen_status)
                    .await?;
                self.followup(session, id, note).await
            }
        }
    }

    /// A link to the ticket in GLPI's web interface when the URL is the usual apirest.php.
    fn display(&self, id: &str) -> String {
        // Credentials an operator put in the URL never reach the link (listings, logs).
        let base = match reqwest::Url::parse(self.client.base()) {
            Ok(mut url) => {
                let _ = url.set_username("");
                let _ = url.set_password(None);
                url.to_string()
            }
            Err(_) => return id.to_string(),
        };
        match base.trim_end_matches('/').strip_suffix("/apirest.php") {
            Some(root) => format!("{root}/front/ticket.form.php?id={id}"),
            None => id.to_string(),
        }
    }
}

impl Connector for Glpi {
    fn kind(&self) -> &'static str {
        "glpi"
    }

    fn find<'a>(
        &'a self,
        ticket: &'a Ticket,
    ) -> BoxFuture<'a, Result<Option<TicketRef>, ConnectorError>> {
        Box::pin(async move {
            let session = self.open().await?;
            let result = self.find_in(&session, ticket).await;
            self.close(session).await;
            result
        })
    }

    fn create<'a>(
        &'a self,
        ticket: &'a Ticket,
    ) -> BoxFuture<'a, Result<TicketRef, ConnectorError>> {
        Box::pin(async move {
            let session = self.open().await?;
            let result = self.create_in(&session, ticket).await;
            self.close(session).await;
            result
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
            let id: i64 = external.id.trim().parse().map_err(|_| {
                ConnectorError::rejected(format!(
                    "GLPI: ticket id {:?} is not a number",
                    short(&external.id)
                ))
            })?;
            let note = note_or_default(note, update, ticket);
            let session = self.open().await?;
            let result = self.update_in(&session, id, update, &note).await;
            self.close(session).await;
            result
        })
    }
}

/// `[KEY]`: what the ticket's name carries and `find` looks for.
fn marker(ticket: &Ticket) -> String {
    format!("[{}]", ticket.correlation_key)
}

/// `[KEY] summary`, cut to GLPI's 255 characters (the key is kept whole).
fn ticket_name(ticket: &Ticket) -> String {
    let name = format!("{} {}", marker(ticket), ticket.summary.trim());
    name.trim_end().chars().take(MAX_NAME).collect()
}

/// The ticket's id in a search row (field 2, a number or a string).
fn row_id(row: &Map<String, Value>) -> Option<String> {
    match row.get(&FIELD_ID.to_string())? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

/// A note for a follow-up: GLPI refuses empty ones.
fn note_or_default(note: &str, update: Update, ticket: &Ticket) -> String {
    if !note.trim().is_empty() {
        return note.to_string();
    }
    let what = match update {
        Update::Comment => "updated",
        Update::Acknowledge => "acknowledged",
        Update::Resolve => "resolved",
        Update::Reopen => "firing again",
    };
    format!("Steward: {} is {what}.", ticket.correlation_key)
}

/// Plain text as GLPI's rich-text content: escaped, paragraphs with line breaks.
fn html(text: &str) -> String {
    if text.trim().is_empty() {
        return String::new();
    }
    let escaped = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    escaped
        .split("\n\n")
        .map(|paragraph| {
            format!(
                "<p>{}</p>",
                paragraph.trim_matches('\n').replace('\n', "<br>")
            )
        })
        .collect()
}

/// A header value that is a credential (kept out of debug output).
fn sensitive(value: &str, what: &str) -> Result<HeaderValue, ConnectorError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        ConnectorError::rejected(format!("GLPI: {what} is not a valid HTTP header value"))
    })?;
    header.set_sensitive(true);
    Ok(header)
}

fn short(text: &str) -> String {
    text.chars().take(300).collect()
}

fn default_itemtype() -> String {
    "Computer".into()
}
fn default_solved() -> i64 {
    5
}
fn default_reopen() -> i64 {
    2
}
fn default_urgency_critical() -> i64 {
    4
}
fn default_urgency_warning() -> i64 {
    3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_escaped_html() {
        assert_eq!(
            html("a<b>\nc\n\nd&e"),
            "<p>a&lt;b&gt;<br>c</p><p>d&amp;e</p>"
        );
    }
}
