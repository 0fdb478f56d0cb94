//! A generic webhook: each operation POSTs the event as JSON to `url`, signed with
//! HMAC-SHA256 over `TIMESTAMP.BODY` under a shared secret:
//! `X-Steward-Timestamp: <unix seconds>` and `X-Steward-Signature: sha256=<hex>`. A receiver
//! recomputes the signature and refuses a timestamp older than a few minutes, so neither a
//! forged nor a replayed call is accepted. Creates carry the correlation key and may be
//! repeated: the receiver deduplicates on it.

use ring::hmac;
use serde::{Deserialize, Serialize};

use super::config::Secret;
use super::http::Client;
use super::{BoxFuture, Connector, ConnectorError, Ticket, TicketRef, Update};

/// `type = "webhook"` settings (beside the common ones: name, url, auth, ...).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// A file holding the shared secret the body is signed with.
    pub secret_file: std::path::PathBuf,
}

pub const TIMESTAMP_HEADER: &str = "X-Steward-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-Steward-Signature";

#[derive(Debug)]
pub struct Webhook {
    client: Client,
    key: SigningKey,
}

/// The HMAC key; `Debug` shows nothing of it.
struct SigningKey(hmac::Key);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

/// `sha256=<hex>` of HMAC-SHA256(secret, "TIMESTAMP.BODY"): what the receiver checks.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    sign(&key, timestamp, body)
}

fn sign(key: &hmac::Key, timestamp: i64, body: &[u8]) -> String {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("sha256={}", hex::encode(ctx.sign().as_ref()))
}

impl Webhook {
    pub fn new(client: Client, config: Config) -> anyhow::Result<Webhook> {
        let secret = Secret::from_file(&config.secret_file)
            .map_err(|e| anyhow::anyhow!("webhook secret_file: {e}"))?;
        Ok(Webhook {
            client,
            key: SigningKey(hmac::Key::new(
                hmac::HMAC_SHA256,
                secret.expose().as_bytes(),
            )),
        })
    }

    async fn post(
        &self,
        op: &str,
        ticket: &Ticket,
        external: Option<&TicketRef>,
        note: &str,
    ) -> Result<serde_json::Value, ConnectorError> {
        let body = serde_json::json!({
            "op": op,
            "correlation_key": ticket.correlation_key,
            "ticket_id": external.map(|t| t.id.as_str()),
            "note": note,
            "event": {
                "id": ticket.event_id,
                "rule": ticket.rule,
                "instance": ticket.instance,
                "state": ticket.state,
                "severity": ticket.severity,
            },
            "summary": ticket.summary,
            "body": ticket.body,
            "queue": ticket.queue,
            "ci": {"name": ticket.ci_name, "class": ticket.ci_class, "serial": ticket.ci_serial},
            "details": ticket.details,
        });
        let bytes = serde_json::to_vec(&body)
            .map_err(|e| ConnectorError::rejected(format!("webhook: cannot encode: {e}")))?;
        let timestamp = crate::now_ms() / 1000;
        let request = self
            .client
            .request(reqwest::Method::POST, "")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, sign(&self.key.0, timestamp, &bytes))
            .body(bytes);
        let request = self.client.basic_or_bearer(request);
        Ok(self
            .client
            .send(request, &format!("webhook {op}"))
            .await?
            .body)
    }
}

impl Connector for Webhook {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn idempotent_create(&self) -> bool {
        true
    }

    fn find<'a>(
        &'a self,
        _ticket: &'a Ticket,
    ) -> BoxFuture<'a, Result<Option<TicketRef>, ConnectorError>> {
        Box::pin(async { Ok(None) })
    }

    fn create<'a>(
        &'a self,
        ticket: &'a Ticket,
    ) -> BoxFuture<'a, Result<TicketRef, ConnectorError>> {
        Box::pin(async move {
            let answer = self.post("open", ticket, None, "").await?;
            // A receiver that is a ticketing bridge may answer its own id.
            let id = match answer.get("id") {
                Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
                Some(serde_json::Value::Number(n)) => n.to_string(),
                _ => ticket.correlation_key.clone(),
            };
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
        let op = match update {
            Update::Comment => "comment",
            Update::Acknowledge => "acknowledge",
            Update::Resolve => "resolve",
            Update::Reopen => "reopen",
        };
        Box::pin(async move {
            self.post(op, ticket, Some(external), note).await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently: printf '1700000000.{}' | openssl dgst -sha256 -hmac key
        let sig = signature(b"key", 1_700_000_000, b"{}");
        assert_eq!(
            sig,
            "sha256=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
        assert_ne!(
            sig,
            signature(b"key", 1_700_000_001, b"{}"),
            "the timestamp is signed"
        );
        assert_ne!(
            sig,
            signature(b"other", 1_700_000_000, b"{}"),
            "the key matters"
        );
    }
}
