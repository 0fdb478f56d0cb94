//! The ServiceNow connector against ServiceNow's contract server: the Table API lifecycle
//! (create → find → comment → resolve → reopen), Event Management, auth, faults and refusals.
#![allow(clippy::unwrap_used)]

mod contract;
#[path = "contract/servicenow.rs"]
mod servicenow_contract;

use std::time::Duration;

use contract::{ContractServer, Fault};
use serde_json::{Value, json};
use servicenow_contract as sn;
use steward_collector::tickets::{
    self, Connector, ConnectorConfig, ConnectorError, Severity, Ticket, TicketRef, Update,
};

enum Auth<'a> {
    Basic(&'a str),
    Token(&'a str),
}

struct Setup {
    server: ContractServer<sn::State>,
    connector: Box<dyn Connector>,
    _dir: tempfile::TempDir,
}

fn config(url: &str, dir: &tempfile::TempDir, auth: Auth<'_>, extra: &str) -> ConnectorConfig {
    let auth = match auth {
        Auth::Basic(password) => {
            let file = dir.path().join("password");
            std::fs::write(&file, format!("{password}\n")).unwrap();
            format!(
                "auth = {{ user = \"{}\", password_file = '{}' }}",
                sn::USER,
                file.display()
            )
        }
        Auth::Token(token) => {
            let file = dir.path().join("token");
            std::fs::write(&file, token).unwrap();
            format!("auth = {{ token_file = '{}' }}", file.display())
        }
    };
    let text =
        format!("name = \"snow\"\ntype = \"servicenow\"\nurl = \"{url}/\"\n{auth}\n{extra}\n");
    toml::from_str::<ConnectorConfig>(&text).unwrap()
}

async fn setup_with(auth: Auth<'_>, extra: &str) -> Setup {
    let server = sn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let connector = tickets::build(&config(&server.url, &dir, auth, extra)).unwrap();
    Setup {
        server,
        connector,
        _dir: dir,
    }
}

async fn setup(extra: &str) -> Setup {
    setup_with(Auth::Basic(sn::PASSWORD), extra).await
}

fn ticket(key: &str, severity: Severity) -> Ticket {
    Ticket {
        correlation_key: key.into(),
        event_id: 42,
        rule: "fs-usage".into(),
        instance: "/var".into(),
        state: "firing".into(),
        severity,
        summary: "web-01: /var is 97% full".into(),
        body: "Filesystem /var on web-01 is 97% full.\nOwner: ops".into(),
        queue: String::new(),
        ci_name: "web-01".into(),
        ci_class: "server".into(),
        ci_serial: "SN123".into(),
        details: json!({"event_id": 42, "ci": {"name": "web-01", "class": "server"}}),
    }
}

fn incidents(setup: &Setup) -> Vec<sn::Incident> {
    setup.server.shared.state.lock().unwrap().incidents.clone()
}

fn incident(setup: &Setup, sys_id: &str) -> sn::Incident {
    incidents(setup)
        .into_iter()
        .find(|i| i.sys_id == sys_id)
        .unwrap()
}

fn rejected(result: Result<impl std::fmt::Debug, ConnectorError>) -> String {
    match result {
        Err(ConnectorError::Rejected { message }) => message,
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[tokio::test]
async fn table_lifecycle_create_find_comment_resolve_reopen() {
    let s = setup("assignment_group = \"Service Desk\"\ncaller_id = \"monitoring\"").await;
    assert!(!s.connector.idempotent_create());
    let t = ticket("steward-42", Severity::Critical);
    assert_eq!(s.connector.find(&t).await.unwrap(), None);

    let created = s.connector.create(&t).await.unwrap();
    assert_eq!(created.display, "INC0010001");
    assert_eq!(incidents(&s).len(), 1);
    let i = incident(&s, &created.id);
    assert_eq!(i.field("short_description"), "web-01: /var is 97% full");
    assert_eq!(i.field("description"), t.body);
    assert_eq!(i.field("cmdb_ci"), "web-01");
    assert_eq!(i.field("urgency"), "1");
    assert_eq!(i.field("impact"), "1");
    assert_eq!(i.field("correlation_id"), "steward-42");
    assert_eq!(i.field("correlation_display"), "Steward");
    assert_eq!(i.field("assignment_group"), "Service Desk");
    assert_eq!(i.field("caller_id"), "monitoring");
    let post = s
        .server
        .shared
        .seen()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(post.path, "/api/now/table/incident");
    assert_eq!(post.headers["accept"], "application/json");
    assert_eq!(post.status, 201);

    let found = s.connector.find(&t).await.unwrap();
    assert_eq!(found, Some(created.clone()));
    let get = s
        .server
        .shared
        .seen()
        .into_iter()
        .rfind(|r| r.method == "GET")
        .unwrap();
    let query = contract::query_pairs(&get.query);
    assert!(query.contains(&(
        "sysparm_query".into(),
        "correlation_id=steward-42^active=true".into()
    )));
    assert!(query.contains(&("sysparm_limit".into(), "1".into())));
    assert_eq!(
        s.connector
            .find(&ticket("steward-43", Severity::Critical))
            .await
            .unwrap(),
        None
    );

    s.connector
        .update(&created, &t, Update::Comment, "now 98%")
        .await
        .unwrap();
    s.connector
        .update(&created, &t, Update::Acknowledge, "acknowledged by alice")
        .await
        .unwrap();
    assert_eq!(
        incident(&s, &created.id).work_notes,
        ["now 98%", "acknowledged by alice"]
    );

    s.connector
        .update(&created, &t, Update::Resolve, "cleared at 10:02")
        .await
        .unwrap();
    let i = incident(&s, &created.id);
    assert_eq!(i.field("state"), "6");
    assert_eq!(i.field("close_code"), "Solved (Permanently)");
    assert_eq!(i.field("close_notes"), "cleared at 10:02");
    let patch = s
        .server
        .shared
        .seen()
        .into_iter()
        .rfind(|r| r.method == "PATCH")
        .unwrap();
    assert_eq!(
        patch.path,
        format!("/api/now/table/incident/{}", created.id)
    );

    s.connector
        .update(&created, &t, Update::Reopen, "back again")
        .await
        .unwrap();
    let i = incident(&s, &created.id);
    assert_eq!(i.field("state"), "2");
    assert_eq!(i.work_notes.last().map(String::as_str), Some("back again"));
    assert_eq!(incidents(&s).len(), 1);
}

#[tokio::test]
async fn route_queue_warning_and_configured_states() {
    let s = setup(
        "table = \"incident\"\nassignment_group = \"Default\"\nresolved_state = \"7\"\nclose_code = \"Closed/Resolved by Caller\"\nreopen_state = \"1\"",
    )
    .await;
    let mut t = ticket("steward-7", Severity::Warning);
    t.queue = "Network".into();
    let created = s.connector.create(&t).await.unwrap();
    let i = incident(&s, &created.id);
    assert_eq!(i.field("assignment_group"), "Network");
    assert_eq!(i.field("urgency"), "2");
    assert_eq!(i.field("impact"), "2");
    assert!(!i.fields.contains_key("caller_id"));
    s.connector
        .update(&created, &t, Update::Resolve, "ok")
        .await
        .unwrap();
    let i = incident(&s, &created.id);
    assert_eq!(i.field("state"), "7");
    assert_eq!(i.field("close_code"), "Closed/Resolved by Caller");
    // Closed incidents are no longer active: find does not return them.
    assert_eq!(s.connector.find(&t).await.unwrap(), None);
    s.connector
        .update(&created, &t, Update::Reopen, "again")
        .await
        .unwrap();
    assert_eq!(incident(&s, &created.id).field("state"), "1");
}

#[tokio::test]
async fn no_assignment_group_is_omitted() {
    let s = setup("").await;
    let created = s
        .connector
        .create(&ticket("k-1", Severity::Critical))
        .await
        .unwrap();
    assert!(
        !incident(&s, &created.id)
            .fields
            .contains_key("assignment_group")
    );
}

#[tokio::test]
async fn bearer_token_auth() {
    let s = setup_with(Auth::Token(sn::TOKEN), "").await;
    let created = s
        .connector
        .create(&ticket("k-2", Severity::Critical))
        .await
        .unwrap();
    assert_eq!(incidents(&s).len(), 1);
    let seen = s.server.shared.seen();
    assert_eq!(
        seen[0].headers["authorization"],
        format!("Bearer {}", sn::TOKEN)
    );
    assert_eq!(
        s.connector
            .find(&ticket("k-2", Severity::Critical))
            .await
            .unwrap(),
        Some(created)
    );
}

#[tokio::test]
async fn refused_auth_is_rejected_without_the_secret() {
    let s = setup_with(Auth::Basic("wrong-password"), "").await;
    let message = rejected(s.connector.create(&ticket("k-3", Severity::Critical)).await);
    assert!(message.contains("401"), "{message}");
    assert!(message.contains("User Not Authenticated"), "{message}");
    assert!(!message.contains("wrong-password"), "{message}");
    assert!(incidents(&s).is_empty());

    let s = setup_with(Auth::Token("not-the-token"), "").await;
    let message = rejected(s.connector.find(&ticket("k-3", Severity::Critical)).await);
    assert!(message.contains("401"), "{message}");
}

#[tokio::test]
async fn server_error_is_retryable_and_nothing_is_created() {
    let s = setup("").await;
    s.server
        .shared
        .inject(Some("/api/now/table"), Fault::Status(500));
    let t = ticket("k-4", Severity::Critical);
    match s.connector.create(&t).await {
        Err(ConnectorError::Retryable { message, .. }) => {
            assert!(message.contains("500"), "{message}")
        }
        other => panic!("expected Retryable, got {other:?}"),
    }
    assert!(incidents(&s).is_empty());
    s.connector.create(&t).await.unwrap();
    assert_eq!(incidents(&s).len(), 1);
}

#[tokio::test]
async fn rate_limit_carries_retry_after() {
    let s = setup("").await;
    s.server.shared.inject(
        None,
        Fault::TooMany {
            retry_after_secs: 7,
        },
    );
    let result = s.connector.create(&ticket("k-5", Severity::Critical)).await;
    match result {
        Err(ConnectorError::Retryable {
            retry_after,
            maybe_applied,
            ..
        }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)));
            assert!(!maybe_applied);
        }
        other => panic!("expected Retryable, got {other:?}"),
    }
    assert!(incidents(&s).is_empty());
}

#[tokio::test]
async fn slow_reply_past_the_timeout_is_retryable_and_maybe_applied() {
    let s = setup("timeout_secs = 1").await;
    s.server.shared.inject(
        Some("/api/now/table"),
        Fault::Slow(Duration::from_millis(2500)),
    );
    let started = std::time::Instant::now();
    match s
        .connector
        .create(&ticket("k-slow", Severity::Critical))
        .await
    {
        Err(ConnectorError::Retryable {
            maybe_applied,
            retry_after,
            message,
        }) => {
            assert!(maybe_applied, "{message}");
            assert!(message.contains("timed out"), "{message}");
            assert_eq!(retry_after, None);
        }
        other => panic!("expected Retryable, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_millis(2400),
        "the 1 s timeout applies"
    );
}

#[tokio::test]
async fn lost_answer_is_maybe_applied_and_found_afterwards() {
    let s = setup("timeout_secs = 1").await;
    // The system creates the ticket, but its answer never arrives: the client times out.
    s.server
        .shared
        .inject(Some("/api/now/table"), Fault::LoseAnswer);
    let t = ticket("k-6", Severity::Critical);
    match s.connector.create(&t).await {
        Err(ConnectorError::Retryable {
            maybe_applied,
            message,
            ..
        }) => {
            assert!(maybe_applied, "{message}");
            assert!(message.contains("timed out"), "{message}");
        }
        other => panic!("expected Retryable, got {other:?}"),
    }
    // The system did the work after all: the exactly-once path searches before creating again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while incidents(&s).is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let list = incidents(&s);
    assert_eq!(list.len(), 1);
    let found = s.connector.find(&t).await.unwrap().unwrap();
    assert_eq!(found.id, list[0].sys_id);
    assert_eq!(found.display, "INC0010001");
    assert_eq!(incidents(&s).len(), 1);
}

#[tokio::test]
async fn refusals_name_the_field() {
    let s = setup("close_code = \"\"").await;
    let mut t = ticket("k-8", Severity::Critical);
    t.summary = String::new();
    let message = rejected(s.connector.create(&t).await);
    assert!(message.contains("short_description"), "{message}");
    assert!(message.contains("400"), "{message}");
    assert!(incidents(&s).is_empty());

    let t = ticket("k-8", Severity::Critical);
    let created = s.connector.create(&t).await.unwrap();
    let message = rejected(
        s.connector
            .update(&created, &t, Update::Resolve, "ok")
            .await,
    );
    assert!(message.contains("close_code"), "{message}");
    assert_eq!(incident(&s, &created.id).field("state"), "1");

    let missing = TicketRef {
        id: "0123456789abcdef0123456789abcdef".into(),
        display: "INC9".into(),
    };
    let message = rejected(s.connector.update(&missing, &t, Update::Comment, "x").await);
    assert!(
        message.contains("404") && message.contains("No Record found"),
        "{message}"
    );
}

#[tokio::test]
async fn unknown_table_is_rejected() {
    let s = setup("table = \"incidnet\"").await;
    let message = rejected(s.connector.create(&ticket("k-9", Severity::Critical)).await);
    assert!(message.contains("Invalid table incidnet"), "{message}");
}

#[test]
fn unknown_mode_is_refused() {
    let text =
        "name = \"snow\"\ntype = \"servicenow\"\nurl = \"http://localhost\"\nmode = \"events\"\n";
    let error = toml::from_str::<ConnectorConfig>(text)
        .unwrap_err()
        .to_string();
    assert!(error.contains("snow"), "{error}");
    assert!(
        error.contains("events") && error.contains("table") && error.contains("event"),
        "{error}"
    );
    let text =
        "name = \"snow\"\ntype = \"servicenow\"\nurl = \"http://localhost\"\nmode = \"event\"\n";
    toml::from_str::<ConnectorConfig>(text).unwrap();
}

fn em_records(s: &Setup) -> Vec<serde_json::Map<String, Value>> {
    s.server.shared.state.lock().unwrap().events.clone()
}

#[tokio::test]
async fn event_mode_is_idempotent_and_clears_with_severity_zero() {
    let s = setup("mode = \"event\"\nsource = \"Steward-Prod\"").await;
    assert!(s.connector.idempotent_create());
    let t = ticket("steward-99", Severity::Critical);
    assert_eq!(s.connector.find(&t).await.unwrap(), None);
    assert!(
        s.server.shared.seen().is_empty(),
        "find must not call the system"
    );

    let first = s.connector.create(&t).await.unwrap();
    assert_eq!(first.id, "steward-99");
    // A repeated create (after a timeout, say) folds into the same alert.
    let second = s.connector.create(&t).await.unwrap();
    assert_eq!(first, second);
    {
        let state = s.server.shared.state.lock().unwrap();
        assert_eq!(state.alerts.len(), 1);
        assert_eq!(state.alerts[0].events, 2);
        assert_eq!(state.alerts[0].severity, "1");
    }
    let seen = s.server.shared.seen();
    assert_eq!(seen[0].path, "/api/global/em/jsonv2");
    assert_eq!(seen[0].status, 200);
    let record = &em_records(&s)[0];
    assert_eq!(record["source"], "Steward-Prod");
    assert_eq!(record["node"], "web-01");
    assert_eq!(record["type"], "fs-usage");
    assert_eq!(record["resource"], "/var");
    assert_eq!(record["metric_name"], "fs-usage");
    assert_eq!(record["severity"], "1");
    assert_eq!(record["message_key"], "steward-99");
    assert_eq!(record["description"], t.body.as_str());
    let info: Value = serde_json::from_str(record["additional_info"].as_str().unwrap()).unwrap();
    assert_eq!(info, t.details);

    let mut warning = t.clone();
    warning.severity = Severity::Warning;
    s.connector
        .update(&first, &warning, Update::Comment, "down to warning")
        .await
        .unwrap();
    let last = em_records(&s).pop().unwrap();
    assert_eq!(last["severity"], "4");
    assert_eq!(last["description"], "down to warning");
    assert_eq!(
        s.server.shared.state.lock().unwrap().alerts[0].severity,
        "4"
    );

    s.connector
        .update(&first, &warning, Update::Resolve, "cleared")
        .await
        .unwrap();
    let last = em_records(&s).pop().unwrap();
    assert_eq!(last["severity"], "0");
    assert_eq!(last["message_key"], "steward-99");
    assert!(
        s.server
            .shared
            .state
            .lock()
            .unwrap()
            .open_alerts()
            .is_empty()
    );

    s.connector
        .update(&first, &t, Update::Reopen, "back")
        .await
        .unwrap();
    let state = s.server.shared.state.lock().unwrap();
    let open = state.open_alerts();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].severity, "1");
    assert_eq!(open[0].description, "back");
}

#[tokio::test]
async fn event_mode_faults_map_like_table_mode() {
    let s = setup("mode = \"event\"").await;
    s.server.shared.inject(Some("/em/"), Fault::Status(503));
    let t = ticket("k-10", Severity::Critical);
    assert!(matches!(
        s.connector.create(&t).await,
        Err(ConnectorError::Retryable { .. })
    ));
    let s2 = setup_with(Auth::Basic("nope"), "mode = \"event\"").await;
    rejected(s2.connector.create(&t).await);
    assert!(s2.server.shared.state.lock().unwrap().alerts.is_empty());
}

/// The contract server itself refuses what ServiceNow refuses.
#[tokio::test]
async fn contract_enforces_paths_methods_auth_and_bodies() {
    let server = sn::start().await;
    steward_agent::install_crypto_provider();
    let http = reqwest::Client::new();
    let auth = |r: reqwest::RequestBuilder| r.basic_auth(sn::USER, Some(sn::PASSWORD));

    let r = http
        .get(format!("{}/api/now/table/incident", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "failure");
    assert_eq!(body["error"]["message"], "User Not Authenticated");

    let r = auth(http.get(format!("{}/api/now/tables/incident", server.url)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = auth(http.delete(format!("{}/api/now/table/incident", server.url)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let r = auth(http.get(format!("{}/api/global/em/jsonv2", server.url)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let r = auth(http.post(format!("{}/api/now/table/incident", server.url)))
        .body("short_description=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = auth(http.post(format!("{}/api/now/table/incident", server.url)))
        .json(&json!({"short_description": "x", "urgency": "9"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = auth(http.post(format!("{}/api/global/em/jsonv2", server.url)))
        .json(&json!({"records": [{"source": "s", "node": "n", "severity": "critical"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = auth(http.post(format!("{}/api/global/em/jsonv2", server.url)))
        .json(&json!({"records": [{"source": "s", "severity": "1"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let state = server.shared.state.lock().unwrap();
    assert!(state.incidents.is_empty() && state.alerts.is_empty());
}
