//! PagerDuty Events API v2: trigger, acknowledge and resolve by `dedup_key` (the correlation
//! key), which PagerDuty deduplicates itself.
//!
//! Every operation is one `POST /v2/enqueue` with the routing key in the body (no
//! `Authorization` header). A comment (severity changed, flapping) and a reopen are a trigger
//! again with the same `dedup_key`, the note in `custom_details.steward_note`: PagerDuty adds
//! it to the open alert, or opens a new incident if the previous one was resolved.
//!
//! The answers are read here rather than by `http::Client::send` because PagerDuty names the
//! offending field only in its `errors` list (`message` is always "Event object is invalid").

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::config::Secret;
use super::http::Client;
use super::{BoxFuture, Connector, ConnectorError, Severity, Ticket, TicketRef, Update};

/// PagerDuty's limits.
const MAX_DEDUP_KEY: usize = 255;
const MAX_SUMMARY: usize = 1024;

/// `type = "pagerduty"` settings (beside the common ones: name, url, auth, ...).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// A file holding the integration's routing key.
    pub routing_key_file: std::path::PathBuf,
}

#[derive(Debug)]
pub struct PagerDuty {
    client: Client,
    routing_key: Secret,
}

impl PagerDuty {
    pub fn new(client: Client, config: Config) -> anyhow::Result<PagerDuty> {
        let routing_key = Secret::from_file(&config.routing_key_file)
            .map_err(|e| anyhow::anyhow!("pagerduty routing_key_file: {e}"))?;
        Ok(PagerDuty {
            client,
            routing_key,
        })
    }

    /// A trigger event: the ticket's facts as the payload, the note (if any) in its details.
    fn trigger(&self, dedup_key: &str, ticket: &Ticket, note: Option<&str>) -> Value {
        let source = [ticket.ci_name.trim(), ticket.instance.trim()]
            .into_iter()
            .find(|s| !s.is_empty())
            .unwrap_or("");
        let mut details = match &ticket.details {
            Value::Object(map) => map.clone(),
            Value::Null => serde_json::Map::new(),
            other => {
                let mut map = serde_json::Map::new();
                map.insert("details".into(), other.clone());
                map
            }
        };
        if let Some(note) = note.filter(|n| !n.trim().is_empty()) {
            details.insert("steward_note".into(), json!(note));
        }
        let mut payload = serde_json::Map::new();
        payload.insert(
            "summary".into(),
            json!(ticket.summary.chars().take(MAX_SUMMARY).collect::<String>()),
        );
        payload.insert("source".into(), json!(source));
        payload.insert(
            "severity".into(),
            json!(match ticket.severity {
                Severity::Critical => "critical",
                Severity::Warning => "warning",
            }),
        );
        for (key, value) in [
            ("component", &ticket.instance),
            ("group", &ticket.ci_class),
            ("class", &ticket.rule),
        ] {
            if !value.trim().is_empty() {
                payload.insert(key.into(), json!(value));
            }
        }
        payload.insert("custom_details".into(), Value::Object(details));
        json!({
            "routing_key": self.routing_key.expose(),
            "event_action": "trigger",
            "dedup_key": dedup_key,
            "payload": payload,
        })
    }

    fn action(&self, dedup_key: &str, action: &str) -> Value {
        json!({
            "routing_key": self.routing_key.expose(),
            "event_action": action,
            "dedup_key": dedup_key,
        })
    }

    /// `POST /v2/enqueue`. The body (with the routing key) never reaches a message;
    /// refusals name PagerDuty's `errors`.
    async fn enqueue(&self, event: &Value, what: &str) -> Result<Value, ConnectorError> {
        let request = self.client.request(Method::POST, "/v2/enqueue").json(event);
        Ok(self.client.send(request, what).await?.body)
    }

    fn check_key(dedup_key: &str) -> Result<(), ConnectorError> {
        if dedup_key.is_empty() {
            return Err(ConnectorError::rejected(
                "PagerDuty: the dedup_key is empty",
            ));
        }
        if dedup_key.chars().count() > MAX_DEDUP_KEY {
            return Err(ConnectorError::rejected(format!(
                "PagerDuty: dedup_key is longer than {MAX_DEDUP_KEY} characters (shorten correlation_prefix)"
            )));
        }
        Ok(())
    }
}

impl Connector for PagerDuty {
    fn kind(&self) -> &'static str {
        "pagerduty"
    }

    fn idempotent_create(&self) -> bool {
        true
    }

    fn find<'a>(
        &'a self,
        _ticket: &'a Ticket,
    ) -> BoxFuture<'a, Result<Option<TicketRef>, ConnectorError>> {
        // PagerDuty deduplicates by dedup_key: a create is simply repeated.
        Box::pin(async { Ok(None) })
    }

    fn create<'a>(
        &'a self,
        ticket: &'a Ticket,
    ) -> BoxFuture<'a, Result<TicketRef, ConnectorError>> {
        Box::pin(async move {
            let key = ticket.correlation_key.as_str();
            Self::check_key(key)?;
            let answer = self
                .enqueue(&self.trigger(key, ticket, None), "PagerDuty trigger")
                .await?;
            let id = answer
                .get("dedup_key")
                .and_then(Value::as_str)
                .filter(|k| !k.is_empty())
                .unwrap_or(key)
                .to_string();
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
        Box::pin(async move {
            let key = match external.id.trim() {
                "" => ticket.correlation_key.as_str(),
                id => id,
            };
            Self::check_key(key)?;
            let (event, what) = match update {
                Update::Comment => (self.trigger(key, ticket, Some(note)), "PagerDuty trigger"),
                Update::Reopen => (self.trigger(key, ticket, Some(note)), "PagerDuty trigger"),
                Update::Acknowledge => (self.action(key, "acknowledge"), "PagerDuty acknowledge"),
                Update::Resolve => (self.action(key, "resolve"), "PagerDuty resolve"),
            };
            self.enqueue(&event, what).await.map(|_| ())
        })
    }
}
