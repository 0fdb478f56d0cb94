//! The PagerDuty connector against the Events API v2 contract: trigger, a repeated trigger
//! deduplicated into the same incident, notes as re-triggers, acknowledge, resolve and a
//! reopen as a new incident; the routing key from its file and only in the body; refusals
//! naming the field; retryable failures.
// result_large_err: the contract servers' `Result<_, Response>` helpers (also the frame's `body_json`).
#![allow(clippy::unwrap_used, clippy::result_large_err)]

mod contract;
#[path = "contract/pagerduty.rs"]
mod pagerduty_contract;

use std::time::Duration;

use contract::{ContractServer, Fault};
use pagerduty_contract::{State, start_pagerduty};
use serde_json::json;
use steward_collector::tickets::{
    Connector, ConnectorConfig, ConnectorError, Severity, Ticket, TicketRef, Update, build,
};

const ROUTING_KEY: &str = "R0123456789abcdef0123456789abcde";

fn ticket(key: &str) -> Ticket {
    Ticket {
        severity: Severity::Warning,
        details: json!({"event_id": 42, "used_percent": 97}),
        ..contract::sample_ticket(key)
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    connector: Box<dyn Connector>,
}

fn config_text(server: &ContractServer<State>, key_file: &str, timeout_secs: u64) -> String {
    format!(
        "name = \"pd\"\ntype = \"pagerduty\"\nurl = \"{}\"\ntimeout_secs = {timeout_secs}\nrouting_key_file = {key_file:?}\n",
        server.url
    )
}

fn connector(server: &ContractServer<State>, routing_key: &str, timeout_secs: u64) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routing_key");
    std::fs::write(&path, format!("{routing_key}\n")).unwrap();
    let text = config_text(server, &path.display().to_string(), timeout_secs);
    let config: ConnectorConfig = toml::from_str(&text).unwrap();
    let connector = build(&config).unwrap();
    assert_eq!(connector.kind(), "pagerduty");
    Setup {
        _dir: dir,
        connector,
    }
}

fn rejected(err: ConnectorError) -> String {
    match err {
        ConnectorError::Rejected { message } => message,
        other => panic!("not rejected: {other:?}"),
    }
}

#[tokio::test]
async fn trigger_dedup_acknowledge_resolve_reopen() {
    let server = start_pagerduty(ROUTING_KEY).await;
    let setup = connector(&server, ROUTING_KEY, 5);
    let c = &setup.connector;
    assert!(c.idempotent_create());
    let mut t = ticket("steward-42");
    assert_eq!(c.find(&t).await.unwrap(), None, "nothing to search");

    let created = c.create(&t).await.unwrap();
    assert_eq!(
        created,
        TicketRef {
            id: "steward-42".into(),
            display: "steward-42".into()
        }
    );
    let sent = &server.shared.seen()[0];
    assert!(
        sent.headers.get("authorization").is_none(),
        "the key is in the body only"
    );
    assert_eq!(sent.body["routing_key"], ROUTING_KEY);
    assert_eq!(sent.body["event_action"], "trigger");
    assert_eq!(sent.body["dedup_key"], "steward-42");
    let payload = &sent.body["payload"];
    assert_eq!(payload["summary"], "Disk /var full on web1");
    assert_eq!(payload["source"], "web1");
    assert_eq!(payload["severity"], "warning");
    assert_eq!(payload["component"], "/var");
    assert_eq!(payload["group"], "server");
    assert_eq!(payload["class"], "disk-full");
    assert_eq!(payload["custom_details"]["used_percent"], 97);

    // The dispatcher may repeat a create: PagerDuty deduplicates it.
    assert_eq!(c.create(&t).await.unwrap(), created);
    // A severity change: trigger again with the note, same incident.
    t.severity = Severity::Critical;
    c.update(&created, &t, Update::Comment, "Severity is now critical.")
        .await
        .unwrap();
    {
        let state = server.shared.state.lock().unwrap();
        let incidents = state.incidents_for("steward-42");
        assert_eq!(incidents.len(), 1, "one incident for the dedup_key");
        assert_eq!(incidents[0].alerts, 3);
        assert_eq!(incidents[0].severity, "critical");
        assert_eq!(
            incidents[0].payload["custom_details"]["steward_note"],
            "Severity is now critical."
        );
        assert_eq!(incidents[0].status, "triggered");
    }

    c.update(&created, &t, Update::Acknowledge, "ack")
        .await
        .unwrap();
    assert_eq!(
        server
            .shared
            .state
            .lock()
            .unwrap()
            .incidents_for("steward-42")[0]
            .status,
        "acknowledged"
    );
    let ack = server.shared.seen().pop().unwrap();
    assert_eq!(ack.body["event_action"], "acknowledge");
    assert!(ack.body.get("payload").is_none(), "payload only on trigger");

    c.update(&created, &t, Update::Resolve, "cleared")
        .await
        .unwrap();
    assert_eq!(
        server
            .shared
            .state
            .lock()
            .unwrap()
            .incidents_for("steward-42")[0]
            .status,
        "resolved"
    );

    // A reopen triggers again: PagerDuty opens a new incident for the resolved key.
    c.update(&created, &t, Update::Reopen, "Full again.")
        .await
        .unwrap();
    let state = server.shared.state.lock().unwrap();
    let incidents = state.incidents_for("steward-42");
    assert_eq!(incidents.len(), 2);
    assert_eq!(incidents[0].status, "resolved");
    assert_eq!(incidents[1].status, "triggered");
    assert_eq!(
        incidents[1].payload["custom_details"]["steward_note"],
        "Full again."
    );
    let actions: Vec<&str> = state.events.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "trigger",
            "trigger",
            "trigger",
            "acknowledge",
            "resolve",
            "trigger"
        ]
    );
}

#[tokio::test]
async fn bad_routing_key_is_rejected_naming_it() {
    let server = start_pagerduty(ROUTING_KEY).await;
    let setup = connector(&server, "Rffffffffffffffffffffffffffffffff", 5);
    let message = rejected(
        setup
            .connector
            .create(&ticket("steward-1"))
            .await
            .unwrap_err(),
    );
    assert!(message.contains("HTTP 400"), "{message}");
    assert!(message.contains("Event object is invalid"), "{message}");
    assert!(message.contains("'routing_key'"), "{message}");
    assert!(!message.contains("Rffff"), "no secret in errors");
    assert!(server.shared.state.lock().unwrap().incidents.is_empty());
}

#[tokio::test]
async fn refusals_name_the_field() {
    let server = start_pagerduty(ROUTING_KEY).await;
    let setup = connector(&server, ROUTING_KEY, 5);
    let mut t = ticket("steward-2");
    t.summary = String::new();
    let message = rejected(setup.connector.create(&t).await.unwrap_err());
    assert!(message.contains("'payload.summary'"), "{message}");

    // No CI name: the instance is the source.
    let mut t = ticket("steward-3");
    t.ci_name = String::new();
    setup.connector.create(&t).await.unwrap();
    assert_eq!(
        server
            .shared
            .state
            .lock()
            .unwrap()
            .incidents_for("steward-3")[0]
            .source,
        "/var"
    );

    // A summary longer than PagerDuty's 1024 characters is cut, not refused.
    let mut t = ticket("steward-4");
    t.summary = "x".repeat(2000);
    setup.connector.create(&t).await.unwrap();
    assert_eq!(
        server
            .shared
            .state
            .lock()
            .unwrap()
            .incidents_for("steward-4")[0]
            .summary
            .len(),
        1024
    );

    // A dedup_key past 255 characters is refused before sending.
    let before = server.shared.seen().len();
    let long = ticket(&"k".repeat(300));
    let message = rejected(setup.connector.create(&long).await.unwrap_err());
    assert!(message.contains("dedup_key"), "{message}");
    assert_eq!(server.shared.seen().len(), before);
}

#[tokio::test]
async fn server_error_and_rate_limit_are_retryable() {
    let server = start_pagerduty(ROUTING_KEY).await;
    let setup = connector(&server, ROUTING_KEY, 5);
    let t = ticket("steward-5");
    server.shared.inject(None, Fault::Status(500));
    let err = setup.connector.create(&t).await.unwrap_err();
    assert!(
        matches!(
            err,
            ConnectorError::Retryable {
                maybe_applied: true,
                ..
            }
        ),
        "{err:?}"
    );
    server.shared.inject(
        None,
        Fault::TooMany {
            retry_after_secs: 7,
        },
    );
    match setup.connector.create(&t).await.unwrap_err() {
        ConnectorError::Retryable {
            retry_after,
            maybe_applied,
            message,
        } => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)));
            assert!(!maybe_applied);
            assert!(message.contains("HTTP 429"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(server.shared.state.lock().unwrap().incidents.is_empty());
    // The retry goes through, once.
    setup.connector.create(&t).await.unwrap();
    assert_eq!(server.shared.state.lock().unwrap().incidents.len(), 1);
}

/// A slow answer is retryable and maybe applied; a retried trigger is harmless (dedup_key).
#[tokio::test]
async fn slow_reply_is_retryable_and_a_repeat_dedups() {
    let server = start_pagerduty(ROUTING_KEY).await;
    let setup = connector(&server, ROUTING_KEY, 1);
    let t = ticket("steward-6");
    server.shared.inject(None, Fault::LoseAnswer);
    match setup.connector.create(&t).await.unwrap_err() {
        ConnectorError::Retryable {
            maybe_applied,
            message,
            ..
        } => {
            assert!(maybe_applied, "{message}");
            assert!(message.contains("timed out"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    setup.connector.create(&t).await.unwrap();
    let state = server.shared.state.lock().unwrap();
    assert_eq!(state.incidents_for("steward-6").len(), 1);
    assert_eq!(state.incidents_for("steward-6")[0].alerts, 2);
}

#[tokio::test]
async fn routing_key_file_is_required() {
    let server = start_pagerduty(ROUTING_KEY).await;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let config: ConnectorConfig =
        toml::from_str(&config_text(&server, &missing.display().to_string(), 5)).unwrap();
    let err = build(&config).unwrap_err().to_string();
    assert!(err.contains("routing_key_file"), "{err}");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let config: ConnectorConfig =
        toml::from_str(&config_text(&server, &empty.display().to_string(), 5)).unwrap();
    assert!(build(&config).unwrap_err().to_string().contains("empty"));
}

/// The contract itself refuses what PagerDuty refuses.
#[tokio::test]
async fn contract_enforces_pagerduty_shapes() {
    let server = start_pagerduty(ROUTING_KEY).await;
    steward_agent::install_crypto_provider();
    let http = reqwest::Client::new();
    let enqueue = format!("{}/v2/enqueue", server.url);
    let r = http.get(&enqueue).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let r = http
        .post(format!("{}/v2/events", server.url))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let event = json!({
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": "k".repeat(256),
        "payload": {"summary": "s", "severity": "warning"},
    });
    let r = http.post(&enqueue).json(&event).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "invalid event");
    assert_eq!(body["message"], "Event object is invalid");
    let errors = body["errors"].to_string();
    assert!(errors.contains("'dedup_key' is too long"), "{errors}");
    assert!(errors.contains("'payload.source'"), "{errors}");
    let r = http
        .post(&enqueue)
        .json(&json!({"routing_key": ROUTING_KEY, "event_action": "resolve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .post(&enqueue)
        .json(&json!({"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"status": "success", "message": "Event processed", "dedup_key": "x"})
    );
    assert!(server.shared.state.lock().unwrap().incidents.is_empty());
}
