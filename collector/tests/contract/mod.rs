//! Contract servers for the ticketing systems we cannot run here (ServiceNow, Jira Cloud,
//! GLPI, Zammad, PagerDuty): each enforces its system's documented paths, methods, auth
//! headers and body shapes, answers with the documented responses (and documented errors for
//! anything else), and keeps the tickets it was given so tests can count them. Faults (500,
//! 429 with Retry-After, a slow reply, an answer lost after the work was done) are injected
//! per test. This file is the shared frame; one file per system holds its contract.
#![allow(dead_code, clippy::unwrap_used, clippy::result_large_err)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// A fault the next matching request meets.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer this status with a JSON error body, doing nothing.
    Status(u16),
    /// 429 with `Retry-After: secs`, doing nothing.
    TooMany { retry_after_secs: u64 },
    /// Wait this long, then handle normally (a client with a shorter timeout gives up; the
    /// work is still done, as on a real system).
    Slow(Duration),
    /// Do the work, then drop the connection without answering (a lost response).
    LoseAnswer,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: serde_json::Value,
    /// The body as sent (signatures are over these bytes).
    pub raw: axum::body::Bytes,
    /// The status answered (0 when the answer was dropped).
    pub status: u16,
}

/// What every contract server shares: faults to inject, requests seen, and the system's
/// own state (its tickets), owned by the system's file.
#[derive(Debug, Default)]
pub struct Shared<S> {
    pub faults: Mutex<VecDeque<(Option<String>, Fault)>>,
    pub seen: Mutex<Vec<Seen>>,
    pub state: Mutex<S>,
}

impl<S> Shared<S> {
    /// The next request (whose path contains `path`, if given) meets `fault`.
    pub fn inject(&self, path: Option<&str>, fault: Fault) {
        self.faults
            .lock()
            .unwrap()
            .push_back((path.map(str::to_string), fault));
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn take_fault(&self, path: &str) -> Option<Fault> {
        let mut faults = self.faults.lock().unwrap();
        let at = faults
            .iter()
            .position(|(p, _)| p.as_deref().is_none_or(|p| path.contains(p)))?;
        faults.remove(at).map(|(_, f)| f)
    }
}

pub struct ContractServer<S> {
    pub url: String,
    pub shared: Arc<Shared<S>>,
    task: tokio::task::JoinHandle<()>,
}

impl<S> Drop for ContractServer<S> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A ticket as the dispatcher would hand it to a connector: web1's /var 97 % full,
/// critical. Tests change what they look at with struct update syntax.
pub fn sample_ticket(key: &str) -> steward_collector::tickets::Ticket {
    steward_collector::tickets::Ticket {
        correlation_key: key.into(),
        event_id: 42,
        rule: "disk-full".into(),
        instance: "/var".into(),
        state: "firing".into(),
        severity: steward_collector::tickets::Severity::Critical,
        summary: "Disk /var full on web1".into(),
        body: "The disk /var on web1 is 97% full.".into(),
        queue: String::new(),
        ci_name: "web1".into(),
        ci_class: "server".into(),
        ci_serial: "SN-WEB1".into(),
        details: serde_json::json!({"event_id": 42}),
    }
}

/// A JSON error answer.
pub fn error(status: u16, body: serde_json::Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(body),
    )
        .into_response()
}

/// A JSON answer.
pub fn json(status: u16, body: serde_json::Value) -> Response {
    error(status, body)
}

/// The request's JSON body, or a 400 naming the problem.
pub fn body_json(seen: &Seen) -> Result<&serde_json::Map<String, serde_json::Value>, Response> {
    seen.body.as_object().ok_or_else(|| {
        error(
            400,
            serde_json::json!({"message": "the body must be a JSON object"}),
        )
    })
}

/// The `Authorization` header, or "".
pub fn authorization(seen: &Seen) -> &str {
    seen.headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// `Basic base64(user:password)`.
pub fn basic(user: &str, password: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{password}");
    let bytes = input.as_bytes();
    let mut out = String::from("Basic ");
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Starts a contract server on a free loopback port. `handle` is the system's contract: it
/// gets each request (parsed) and the shared state, and answers.
pub async fn start<S, F>(handle: F) -> ContractServer<S>
where
    S: Default + Send + 'static,
    F: Fn(&Seen, &Shared<S>) -> Response + Send + Sync + 'static,
{
    let shared: Arc<Shared<S>> = Arc::new(Shared {
        faults: Mutex::default(),
        seen: Mutex::default(),
        state: Mutex::new(S::default()),
    });
    let handle = Arc::new(handle);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app_shared = shared.clone();
    let app = Router::new().fallback(move |request: Request| {
        let shared = app_shared.clone();
        let handle = handle.clone();
        async move { serve_one(request, &shared, &*handle).await }
    });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    ContractServer { url, shared, task }
}

async fn serve_one<S, F>(request: Request, shared: &Shared<S>, handle: &F) -> Response
where
    F: Fn(&Seen, &Shared<S>) -> Response,
{
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 4 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let mut seen = Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts.headers.clone(),
        body: if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
            })
        },
        raw: bytes.clone(),
        status: 0,
    };
    let fault = shared.take_fault(&seen.path);
    let response = match fault {
        Some(Fault::Status(code)) => error(
            code,
            serde_json::json!({"error": {"message": "injected failure", "detail": "contract server"}}),
        ),
        Some(Fault::TooMany { retry_after_secs }) => {
            let mut r = error(429, serde_json::json!({"message": "rate limited"}));
            r.headers_mut()
                .insert("retry-after", retry_after_secs.to_string().parse().unwrap());
            r
        }
        Some(Fault::Slow(delay)) => {
            // The work is done first: a client that gives up waiting has still changed the
            // system, as with a real one.
            let response = handle(&seen, shared);
            tokio::time::sleep(delay).await;
            response
        }
        Some(Fault::LoseAnswer) => {
            let _ = handle(&seen, shared);
            shared.seen.lock().unwrap().push(seen);
            // Never answering makes the client's timeout fire: the request was applied but
            // its answer is lost.
            std::future::pending::<()>().await;
            return Response::new(Body::empty());
        }
        None => handle(&seen, shared),
    };
    seen.status = response.status().as_u16();
    shared.seen.lock().unwrap().push(seen);
    response
}

/// Percent-decodes a query string into (key, value) pairs.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 3 <= bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
