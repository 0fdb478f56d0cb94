//! The HTTP side every connector shares: one reqwest client per connector with its base URL,
//! credentials and timeout, and the mapping of outcomes onto [`ConnectorError`]: 429 and 5xx
//! (and 408) are retryable, honouring `Retry-After`; other 4xx are rejected with the system's
//! own message; a timeout or a connection lost after sending is retryable and "maybe applied".

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

use super::ConnectorError;
use super::config::{ConnectorConfig, Credentials, Secret};

/// Largest answer read from a ticketing system.
const MAX_ANSWER: usize = 4 * 1024 * 1024;
/// Longest `Retry-After` honoured; a longer one is clamped (the dispatcher retries then).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    pub credentials: Credentials,
    pub app_token: Option<Secret>,
}

/// A successful answer: status and JSON body (`Value::Null` when empty or not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Client {
    pub fn new(config: &ConnectorConfig) -> anyhow::Result<Client> {
        steward_agent::install_crypto_provider();
        let credentials = config
            .auth
            .load()
            .map_err(|e| anyhow::anyhow!("connector {:?}: {e}", config.name))?;
        let app_token = config
            .auth
            .app_token()
            .map_err(|e| anyhow::anyhow!("connector {:?}: {e}", config.name))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs))
            .connect_timeout(Duration::from_secs(config.timeout_secs.min(10)))
            .user_agent(concat!("steward-collector/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Client {
            http,
            base: config.url.trim_end_matches('/').to_string(),
            credentials,
            app_token,
        })
    }

    /// A request to `base + path` (path starts with `/`).
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// The base URL (for links in notes).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Adds HTTP Basic auth when the credentials are a user and password; returns the token
    /// when they are a token (each system puts it in its own header).
    pub fn basic_or_token(&self, request: RequestBuilder) -> (RequestBuilder, Option<&str>) {
        match &self.credentials {
            Credentials::Basic { user, password } => {
                (request.basic_auth(user, Some(password.expose())), None)
            }
            Credentials::Token(token) => (request, Some(token.expose())),
            Credentials::None => (request, None),
        }
    }

    /// HTTP Basic, or the token as `Authorization: Bearer` (ServiceNow OAuth, Jira Data
    /// Center, a webhook behind a gateway).
    pub fn basic_or_bearer(&self, request: RequestBuilder) -> RequestBuilder {
        match self.basic_or_token(request) {
            (request, Some(token)) => request.bearer_auth(token),
            (request, None) => request,
        }
    }

    /// Sends; maps the outcome. `what` names the call in errors ("create ticket").
    pub async fn send(
        &self,
        request: RequestBuilder,
        what: &str,
    ) -> Result<Answer, ConnectorError> {
        let response = request
            .send()
            .await
            .map_err(|e| transport_error(what, &e.without_url()))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = read_limited(response)
            .await
            .map_err(|e| transport_error(what, &e.without_url()))?;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(Answer {
                status,
                body,
                headers,
            });
        }
        let message = format!(
            "{what}: HTTP {}{}",
            status.as_u16(),
            error_text(&body, &bytes)
                .map(|t| format!(": {t}"))
                .unwrap_or_default()
        );
        if status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
            || status.is_server_error()
        {
            return Err(ConnectorError::Retryable {
                message,
                retry_after: retry_after(&headers),
                // A 5xx may come after the system acted (a gateway timing out on it).
                maybe_applied: status.is_server_error(),
            });
        }
        Err(ConnectorError::Rejected { message })
    }
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if out.len() + chunk.len() > MAX_ANSWER {
            break;
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A transport failure: retryable; "maybe applied" unless the connection was never made.
fn transport_error(what: &str, error: &reqwest::Error) -> ConnectorError {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    ConnectorError::Retryable {
        message: format!(
            "{what}: {}{text}",
            if error.is_timeout() {
                "timed out: "
            } else {
                ""
            }
        ),
        retry_after: None,
        maybe_applied: !error.is_connect(),
    }
}

/// The system's own error message, where its answer has one.
fn error_text(body: &Value, bytes: &[u8]) -> Option<String> {
    // ServiceNow: a generic message ("Operation Failed") and the field at fault in the detail.
    if let (Some(message), Some(detail)) = (
        body.pointer("/error/message").and_then(Value::as_str),
        body.pointer("/error/detail").and_then(Value::as_str),
    ) && !detail.is_empty()
    {
        return Some(truncate(&format!("{message}: {detail}")));
    }
    // PagerDuty: "Event object is invalid" and the fields at fault in `errors`.
    if let Some(errors) = body.get("errors").and_then(Value::as_array) {
        let texts: Vec<&str> = errors.iter().filter_map(Value::as_str).collect();
        if !texts.is_empty() {
            let message = body.get("message").and_then(Value::as_str).unwrap_or("");
            return Some(truncate(&format!("{message}: {}", texts.join("; "))));
        }
    }
    let candidates = [
        body.pointer("/error/message"),
        body.pointer("/error/detail"),
        body.pointer("/message"),
        body.pointer("/errorMessage"),
        body.pointer("/errorMessages/0"),
        body.pointer("/error"),
    ];
    for value in candidates.into_iter().flatten() {
        if let Some(text) = value.as_str() {
            return Some(truncate(text));
        }
    }
    if let Some(list) = body.as_array() {
        let texts: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
        if !texts.is_empty() {
            return Some(truncate(&texts.join(": ")));
        }
    }
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    (!text.is_empty()).then(|| truncate(text))
}

fn truncate(text: &str) -> String {
    text.chars().take(300).collect()
}

/// `Retry-After` as seconds (the HTTP-date form is rare on APIs and read as absent).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
}

/// A required string (or number) in an answer, or a rejection naming what is missing.
pub fn required_id(body: &Value, pointer: &str, what: &str) -> Result<String, ConnectorError> {
    match body.pointer(pointer) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(ConnectorError::rejected(format!(
            "{what}: the answer has no {pointer}: {}",
            truncate(&body.to_string())
        ))),
    }
}

pub use crate::percent_encode as encode;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn retry_after_is_read_and_clamped() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert("retry-after", "999999".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
        headers.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn error_messages_come_from_the_answer() {
        let body = serde_json::json!({"error": {"message": "Operation Failed", "detail": "Data Policy Exception: close_code is mandatory"}});
        assert_eq!(
            error_text(&body, b"").as_deref(),
            Some("Operation Failed: Data Policy Exception: close_code is mandatory")
        );
        let body = serde_json::json!({"error": {"message": "Invalid table"}});
        assert_eq!(error_text(&body, b"").as_deref(), Some("Invalid table"));
        let body = serde_json::json!(["ERROR_GLPI_ADD", "not allowed"]);
        assert_eq!(
            error_text(&body, b"").as_deref(),
            Some("ERROR_GLPI_ADD: not allowed")
        );
        assert_eq!(
            error_text(&Value::Null, b" plain ").as_deref(),
            Some("plain")
        );
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode("a b'c=d&"), "a%20b%27c%3Dd%26");
    }
}
