//! PagerDuty Events API v2 contract: `POST /v2/enqueue` with the routing key in the body,
//! `event_action` trigger / acknowledge / resolve, `dedup_key` (at most 255 characters) and,
//! on trigger, `payload` with summary (at most 1024), source and severity. Answers 202
//! `{"status":"success","message":"Event processed","dedup_key":...}` or 400
//! `{"status":"invalid event","message":"Event object is invalid","errors":[...]}`. Keeps
//! incidents by dedup_key: a trigger on an open one adds an alert to it, on a resolved one
//! (or none) opens a new incident.
#![allow(dead_code, clippy::unwrap_used)]

use axum::response::Response;
use serde_json::{Value, json};

use crate::contract::{ContractServer, Seen, Shared, error, json, start};

#[derive(Debug, Clone, Default)]
pub struct Incident {
    pub dedup_key: String,
    /// triggered, acknowledged or resolved.
    pub status: String,
    pub summary: String,
    pub severity: String,
    pub source: String,
    /// Triggers this incident took (the first and the deduplicated ones).
    pub alerts: u32,
    pub payload: Value,
}

#[derive(Debug, Default)]
pub struct State {
    pub routing_key: String,
    pub incidents: Vec<Incident>,
    /// Accepted events (event_action, dedup_key).
    pub events: Vec<(String, String)>,
    pub generated: u32,
}

impl State {
    pub fn incidents_for(&self, dedup_key: &str) -> Vec<&Incident> {
        self.incidents
            .iter()
            .filter(|i| i.dedup_key == dedup_key)
            .collect()
    }
}

pub async fn start_pagerduty(routing_key: &str) -> ContractServer<State> {
    let server = start(handle).await;
    server.shared.state.lock().unwrap().routing_key = routing_key.to_string();
    server
}

fn invalid(errors: &[String]) -> Response {
    error(
        400,
        json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors}),
    )
}

fn handle(seen: &Seen, shared: &Shared<State>) -> Response {
    if seen.path != "/v2/enqueue" {
        return error(404, json!({"status": "not found", "message": "Not Found"}));
    }
    if seen.method != "POST" {
        return error(
            405,
            json!({"status": "method not allowed", "message": "Method Not Allowed"}),
        );
    }
    let content_type = seen
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/json") {
        return invalid(&["Content-Type must be application/json".into()]);
    }
    let Some(body) = seen.body.as_object() else {
        return invalid(&["Event object must be a JSON object".into()]);
    };
    let mut state = shared.state.lock().unwrap();
    let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or("");
    let mut errors = Vec::new();
    let routing_key = text("routing_key");
    if routing_key.is_empty() {
        errors.push("'routing_key' is missing or blank".to_string());
    } else if routing_key.len() != 32 {
        errors.push("Length of 'routing_key' is incorrect (should be 32 characters)".to_string());
    } else if routing_key != state.routing_key {
        errors.push("'routing_key' is invalid".to_string());
    }
    let action = text("event_action");
    if !matches!(action, "trigger" | "acknowledge" | "resolve") {
        errors.push("'event_action' is invalid (must be trigger, acknowledge or resolve)".into());
    }
    let dedup_key = text("dedup_key").to_string();
    if dedup_key.chars().count() > 255 {
        errors.push("'dedup_key' is too long (max 255 characters)".into());
    }
    if action != "trigger" && dedup_key.is_empty() {
        errors.push("'dedup_key' is missing or blank".into());
    }
    let payload = body.get("payload").cloned().unwrap_or(Value::Null);
    if action == "trigger" {
        if !payload.is_object() {
            errors.push("'payload' is missing or not an object".into());
        } else {
            let field = |key: &str| payload.get(key).and_then(Value::as_str).unwrap_or("");
            if field("summary").trim().is_empty() {
                errors.push("'payload.summary' is missing or blank".into());
            } else if field("summary").chars().count() > 1024 {
                errors.push("'payload.summary' is too long (max 1024 characters)".into());
            }
            if field("source").trim().is_empty() {
                errors.push("'payload.source' is missing or blank".into());
            }
            if !matches!(field("severity"), "critical" | "error" | "warning" | "info") {
                errors.push(
                    "'payload.severity' is invalid (must be critical, error, warning or info)"
                        .into(),
                );
            }
        }
    }
    if !errors.is_empty() {
        return invalid(&errors);
    }
    let dedup_key = if dedup_key.is_empty() {
        state.generated += 1;
        format!("generated-{}", state.generated)
    } else {
        dedup_key
    };
    state.events.push((action.to_string(), dedup_key.clone()));
    let open = state
        .incidents
        .iter_mut()
        .find(|i| i.dedup_key == dedup_key && i.status != "resolved");
    match (action, open) {
        ("trigger", Some(incident)) => {
            incident.alerts += 1;
            incident.summary = payload["summary"].as_str().unwrap().to_string();
            incident.severity = payload["severity"].as_str().unwrap().to_string();
            incident.payload = payload;
        }
        ("trigger", None) => state.incidents.push(Incident {
            dedup_key: dedup_key.clone(),
            status: "triggered".into(),
            summary: payload["summary"].as_str().unwrap().to_string(),
            severity: payload["severity"].as_str().unwrap().to_string(),
            source: payload["source"].as_str().unwrap().to_string(),
            alerts: 1,
            payload,
        }),
        ("acknowledge", Some(incident)) => incident.status = "acknowledged".into(),
        ("resolve", Some(incident)) => incident.status = "resolved".into(),
        // Acknowledging or resolving nothing open is accepted and does nothing.
        _ => {}
    }
    json(
        202,
        json!({"status": "success", "message": "Event processed", "dedup_key": dedup_key}),
    )
}
