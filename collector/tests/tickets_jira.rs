//! The Jira Service Management connector against Jira's contract server: create → find →
//! comment → resolve → reopen, a custom key field, auth, faults and refusals.
#![allow(clippy::unwrap_used)]

mod contract;
#[path = "contract/jira.rs"]
mod jira_contract;

use std::time::Duration;

use contract::{ContractServer, Fault};
use jira_contract as jira;
use serde_json::{Value, json};
use steward_collector::tickets::{
    self, Connector, ConnectorConfig, ConnectorError, Severity, Ticket, TicketRef, Update,
};

enum Auth<'a> {
    Basic(&'a str),
    Token(&'a str),
}

struct Setup {
    server: ContractServer<jira::State>,
    connector: Box<dyn Connector>,
    _dir: tempfile::TempDir,
}

const BASE: &str =
    "service_desk_id = \"1\"\nrequest_type_id = \"10\"\nresolve_transition_id = \"761\"";

fn config(url: &str, dir: &tempfile::TempDir, auth: Auth<'_>, extra: &str) -> ConnectorConfig {
    let auth = match auth {
        Auth::Basic(token) => {
            let file = dir.path().join("api-token");
            std::fs::write(&file, format!("{token}\n")).unwrap();
            format!(
                "auth = {{ user = \"{}\", password_file = '{}' }}",
                jira::EMAIL,
                file.display()
            )
        }
        Auth::Token(token) => {
            let file = dir.path().join("pat");
            std::fs::write(&file, token).unwrap();
            format!("auth = {{ token_file = '{}' }}", file.display())
        }
    };
    let text = format!(
        "name = \"jsm\"\ntype = \"jira_service_management\"\nurl = \"{url}\"\n{auth}\n{extra}\n"
    );
    toml::from_str::<ConnectorConfig>(&text).unwrap()
}

async fn setup_with(auth: Auth<'_>, extra: &str) -> Setup {
    let server = jira::start().await;
    let dir = tempfile::tempdir().unwrap();
    let connector = tickets::build(&config(&server.url, &dir, auth, extra)).unwrap();
    Setup {
        server,
        connector,
        _dir: dir,
    }
}

async fn setup(extra: &str) -> Setup {
    setup_with(Auth::Basic(jira::API_TOKEN), &format!("{BASE}\n{extra}")).await
}

fn ticket(key: &str) -> Ticket {
    Ticket {
        correlation_key: key.into(),
        event_id: 42,
        rule: "fs-usage".into(),
        instance: "/var".into(),
        state: "firing".into(),
        severity: Severity::Critical,
        summary: "web-01: /var is 97% full".into(),
        body: "Filesystem /var on web-01 is 97% full.".into(),
        queue: String::new(),
        ci_name: "web-01".into(),
        ci_class: "server".into(),
        ci_serial: "SN123".into(),
        details: json!({"event_id": 42}),
    }
}

fn requests(s: &Setup) -> Vec<jira::Request> {
    s.server.shared.state.lock().unwrap().requests.clone()
}

fn request(s: &Setup, key: &str) -> jira::Request {
    requests(s).into_iter().find(|r| r.key == key).unwrap()
}

fn rejected(result: Result<impl std::fmt::Debug, ConnectorError>) -> String {
    match result {
        Err(ConnectorError::Rejected { message }) => message,
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[tokio::test]
async fn lifecycle_create_find_comment_resolve_reopen() {
    let s = setup("reopen_transition_id = \"781\"").await;
    assert!(!s.connector.idempotent_create());
    let t = ticket("steward-42");
    assert_eq!(s.connector.find(&t).await.unwrap(), None);

    let created = s.connector.create(&t).await.unwrap();
    assert_eq!(
        created,
        TicketRef {
            id: "SD-1".into(),
            display: "SD-1".into()
        }
    );
    let r = request(&s, "SD-1");
    assert_eq!(r.service_desk_id, "1");
    assert_eq!(r.request_type_id, "10");
    assert_eq!(r.field("summary"), t.summary);
    assert_eq!(r.field("description"), t.body);
    assert_eq!(r.labels(), ["steward-42"]);
    let post = s
        .server
        .shared
        .seen()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(post.path, "/rest/servicedeskapi/request");
    assert_eq!(post.status, 201);
    assert_eq!(post.headers["accept"], "application/json");
    assert_eq!(
        post.headers["authorization"],
        contract::basic(jira::EMAIL, jira::API_TOKEN).as_str()
    );

    assert_eq!(s.connector.find(&t).await.unwrap(), Some(created.clone()));
    let get = s
        .server
        .shared
        .seen()
        .into_iter()
        .rfind(|r| r.method == "GET")
        .unwrap();
    assert_eq!(get.path, "/rest/api/2/search");
    let query = contract::query_pairs(&get.query);
    assert!(query.contains(&(
        "jql".into(),
        "labels = \"steward-42\" AND statusCategory != Done".into()
    )));
    assert!(query.contains(&("fields".into(), "key".into())));
    assert!(query.contains(&("maxResults".into(), "1".into())));
    assert_eq!(s.connector.find(&ticket("steward-4")).await.unwrap(), None);

    s.connector
        .update(&created, &t, Update::Comment, "now 98%")
        .await
        .unwrap();
    s.connector
        .update(&created, &t, Update::Acknowledge, "acknowledged by alice")
        .await
        .unwrap();
    let r = request(&s, "SD-1");
    assert_eq!(r.comments.len(), 2);
    assert_eq!(r.comments[0].body, "now 98%");
    assert_eq!(r.comments[1].body, "acknowledged by alice");
    assert!(
        r.comments.iter().all(|c| !c.public),
        "comments are internal by default"
    );

    s.connector
        .update(&created, &t, Update::Resolve, "cleared")
        .await
        .unwrap();
    let r = request(&s, "SD-1");
    assert_eq!(r.status, jira::RESOLVED);
    assert_eq!(r.comments.last().unwrap().body, "cleared");
    let transition = s
        .server
        .shared
        .seen()
        .into_iter()
        .rfind(|r| r.method == "POST")
        .unwrap();
    assert_eq!(
        transition.path,
        "/rest/servicedeskapi/request/SD-1/transition"
    );
    assert_eq!(transition.status, 204);
    assert_eq!(transition.body["id"], "761");
    // A resolved request is Done: no longer found.
    assert_eq!(s.connector.find(&t).await.unwrap(), None);

    s.connector
        .update(&created, &t, Update::Reopen, "back again")
        .await
        .unwrap();
    let r = request(&s, "SD-1");
    assert_eq!(r.status, jira::OPEN);
    assert_eq!(r.comments.last().unwrap().body, "back again");
    assert_eq!(s.connector.find(&t).await.unwrap(), Some(created));
    assert_eq!(requests(&s).len(), 1);
}

#[tokio::test]
async fn route_queue_public_comments_and_pat() {
    let server = jira::start().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("{BASE}\npublic_comments = true\nsearch_path = \"/rest/api/3/search/jql\"");
    let connector =
        tickets::build(&config(&server.url, &dir, Auth::Token(jira::PAT), &extra)).unwrap();
    let mut t = ticket("steward-5");
    // Request types belong to one service desk: a route to another desk names both.
    t.queue = "2".into();
    let message = rejected(connector.create(&t).await);
    assert!(message.contains("request type 10"), "{message}");
    t.queue = "2/20".into();
    // Rendered titles may be long or multi-line: Jira takes one line of at most 255.
    t.summary = format!("{}\nsecond line", "x".repeat(300));
    let created = connector.create(&t).await.unwrap();
    assert_eq!(created.id, "OPS-1");
    {
        let state = server.shared.state.lock().unwrap();
        assert_eq!(state.requests.len(), 1);
        assert_eq!(state.requests[0].service_desk_id, "2");
        assert_eq!(state.requests[0].request_type_id, "20");
        assert_eq!(state.requests[0].field("summary").chars().count(), 255);
    }
    let seen = server.shared.seen();
    assert_eq!(
        seen[0].headers["authorization"],
        format!("Bearer {}", jira::PAT)
    );
    connector
        .update(&created, &t, Update::Comment, "visible")
        .await
        .unwrap();
    assert!(server.shared.state.lock().unwrap().requests[0].comments[0].public);
    assert_eq!(connector.find(&t).await.unwrap(), Some(created));
    assert_eq!(
        server.shared.seen().last().unwrap().path,
        "/rest/api/3/search/jql"
    );
}

#[tokio::test]
async fn custom_key_field_is_searched_and_matched_exactly() {
    let s = setup(&format!("key_field = \"{}\"", jira::KEY_FIELD)).await;
    let long = s.connector.create(&ticket("steward-12")).await.unwrap();
    let r = request(&s, &long.id);
    assert_eq!(r.field(jira::KEY_FIELD), "steward-12");
    assert!(r.labels().is_empty());
    // "steward-1" is a part of "steward-12": the search may return it, the connector must not.
    assert_eq!(s.connector.find(&ticket("steward-1")).await.unwrap(), None);
    let get = s
        .server
        .shared
        .seen()
        .into_iter()
        .rfind(|r| r.method == "GET")
        .unwrap();
    let query = contract::query_pairs(&get.query);
    assert!(query.contains(&(
        "jql".into(),
        "cf[10050] ~ \"\\\"steward-1\\\"\" AND statusCategory != Done".into()
    )));
    let short = s.connector.create(&ticket("steward-1")).await.unwrap();
    assert_eq!(
        s.connector.find(&ticket("steward-1")).await.unwrap(),
        Some(short)
    );
    assert_eq!(
        s.connector.find(&ticket("steward-12")).await.unwrap(),
        Some(long)
    );
}

#[tokio::test]
async fn reopen_without_a_transition_is_rejected() {
    let s = setup("").await;
    let t = ticket("steward-6");
    let created = s.connector.create(&t).await.unwrap();
    s.connector
        .update(&created, &t, Update::Resolve, "ok")
        .await
        .unwrap();
    let calls = s.server.shared.seen().len();
    let message = rejected(
        s.connector
            .update(&created, &t, Update::Reopen, "again")
            .await,
    );
    assert!(message.contains("reopen_transition_id"), "{message}");
    assert_eq!(s.server.shared.seen().len(), calls, "nothing was sent");
}

#[tokio::test]
async fn refused_auth_is_rejected_without_the_secret() {
    let s = setup_with(Auth::Basic("wrong-token"), BASE).await;
    let message = rejected(s.connector.create(&ticket("k-1")).await);
    assert!(
        message.contains("401") && message.contains("not authenticated"),
        "{message}"
    );
    assert!(!message.contains("wrong-token"), "{message}");
    assert!(requests(&s).is_empty());
    let s = setup_with(Auth::Token("bad-pat"), BASE).await;
    let message = rejected(s.connector.find(&ticket("k-1")).await);
    assert!(message.contains("401"), "{message}");
}

#[tokio::test]
async fn server_error_and_rate_limit_are_retryable() {
    let s = setup("").await;
    s.server
        .shared
        .inject(Some("/rest/servicedeskapi"), Fault::Status(500));
    let t = ticket("k-2");
    match s.connector.create(&t).await {
        Err(ConnectorError::Retryable { message, .. }) => {
            assert!(message.contains("500"), "{message}")
        }
        other => panic!("expected Retryable, got {other:?}"),
    }
    assert!(requests(&s).is_empty());

    s.server.shared.inject(
        None,
        Fault::TooMany {
            retry_after_secs: 30,
        },
    );
    match s.connector.find(&t).await {
        Err(ConnectorError::Retryable {
            retry_after,
            maybe_applied,
            ..
        }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(30)));
            assert!(!maybe_applied);
        }
        other => panic!("expected Retryable, got {other:?}"),
    }
    let created = s.connector.create(&t).await.unwrap();
    s.server.shared.inject(
        Some("/comment"),
        Fault::TooMany {
            retry_after_secs: 2,
        },
    );
    match s.connector.update(&created, &t, Update::Comment, "x").await {
        Err(ConnectorError::Retryable { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(2)))
        }
        other => panic!("expected Retryable, got {other:?}"),
    }
    assert!(request(&s, &created.id).comments.is_empty());
}

#[tokio::test]
async fn slow_reply_past_the_timeout_is_retryable_and_maybe_applied() {
    let s = setup("timeout_secs = 1").await;
    s.server.shared.inject(
        Some("/rest/servicedeskapi/request"),
        Fault::Slow(Duration::from_millis(2500)),
    );
    let started = std::time::Instant::now();
    match s.connector.create(&ticket("k-slow")).await {
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
        .inject(Some("/rest/servicedeskapi/request"), Fault::LoseAnswer);
    let t = ticket("k-3");
    match s.connector.create(&t).await {
        Err(ConnectorError::Retryable {
            maybe_applied,
            message,
            ..
        }) => assert!(maybe_applied, "{message}"),
        other => panic!("expected Retryable, got {other:?}"),
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while requests(&s).is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(requests(&s).len(), 1);
    let found = s.connector.find(&t).await.unwrap();
    assert_eq!(found.map(|f| f.id).as_deref(), Some("SD-1"));
    assert_eq!(requests(&s).len(), 1);
}

#[tokio::test]
async fn refusals_name_the_field() {
    let s = setup("").await;
    let mut t = ticket("k-4");
    t.summary = String::new();
    let message = rejected(s.connector.create(&t).await);
    assert!(
        message.contains("400") && message.contains("summary"),
        "{message}"
    );

    let mut t = ticket("k-4");
    t.queue = "9".into();
    let message = rejected(s.connector.create(&t).await);
    assert!(message.contains("serviceDeskId"), "{message}");

    let s = setup_with(
        Auth::Basic(jira::API_TOKEN),
        "service_desk_id = \"1\"\nrequest_type_id = \"10\"\nresolve_transition_id = \"999\"",
    )
    .await;
    let t = ticket("k-5");
    let created = s.connector.create(&t).await.unwrap();
    let message = rejected(
        s.connector
            .update(&created, &t, Update::Resolve, "ok")
            .await,
    );
    assert!(
        message.contains("transition") && message.contains("999"),
        "{message}"
    );
    assert_eq!(request(&s, &created.id).status, jira::OPEN);

    let s = setup("key_field = \"customfield_99999\"").await;
    let message = rejected(s.connector.create(&ticket("k-6")).await);
    assert!(message.contains("customfield_99999"), "{message}");

    let s = setup("").await;
    let missing = TicketRef {
        id: "SD-404".into(),
        display: "SD-404".into(),
    };
    let message = rejected(s.connector.update(&missing, &t, Update::Comment, "x").await);
    assert!(message.contains("404"), "{message}");
}

/// The contract server itself refuses what Jira refuses.
#[tokio::test]
async fn contract_enforces_paths_methods_auth_and_bodies() {
    let server = jira::start().await;
    steward_agent::install_crypto_provider();
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", server.url);
    let auth = |r: reqwest::RequestBuilder| r.basic_auth(jira::EMAIL, Some(jira::API_TOKEN));

    let r = http
        .post(url("/rest/servicedeskapi/request"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = auth(http.get(url("/rest/servicedeskapi/requests")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = auth(http.put(url("/rest/servicedeskapi/request")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let r = auth(http.get(url("/rest/servicedeskapi/request/SD-1/transition")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    for (body, field) in [
        (
            json!({"requestTypeId": "10", "requestFieldValues": {"summary": "s"}}),
            "serviceDeskId",
        ),
        (
            json!({"serviceDeskId": "1", "requestFieldValues": {"summary": "s"}}),
            "requestTypeId",
        ),
        (
            json!({"serviceDeskId": "1", "requestTypeId": "10"}),
            "requestFieldValues",
        ),
        (
            json!({"serviceDeskId": "1", "requestTypeId": "10", "requestFieldValues": {}}),
            "summary",
        ),
        (
            json!({"serviceDeskId": "1", "requestTypeId": "10", "requestFieldValues": {"summary": "s", "labels": ["a b"]}}),
            "labels",
        ),
    ] {
        let r = auth(http.post(url("/rest/servicedeskapi/request")))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let answer: Value = r.json().await.unwrap();
        assert!(
            answer["errorMessage"].as_str().unwrap().contains(field),
            "{answer}"
        );
    }
    let r = auth(http.get(url("/rest/api/2/search?jql=project%20%3D%20SD")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let answer: Value = r.json().await.unwrap();
    assert!(
        answer["errorMessages"][0].as_str().unwrap().contains("JQL"),
        "{answer}"
    );
    assert!(server.shared.state.lock().unwrap().requests.is_empty());
}
