//! The Zammad connector against Zammad's REST contract: tickets titled by their correlation
//! key with a first internal note, notes, close and reopen, the search in both answer forms,
//! refused auth, retryable failures and the exactly-once path.
// result_large_err: the contract servers' `Result<_, Response>` helpers (also the frame's `body_json`).
#![allow(clippy::unwrap_used, clippy::result_large_err)]

mod contract;
#[path = "contract/zammad.rs"]
mod zammad_contract;

use std::time::Duration;

use contract::{ContractServer, Fault};
use serde_json::json;
use steward_collector::tickets::{
    Connector, ConnectorConfig, ConnectorError, Ticket, TicketRef, Update, build,
};
use zammad_contract::{State, start_zammad};

const TOKEN: &str = "zammad-access-token-0123";

fn ticket(key: &str) -> Ticket {
    contract::sample_ticket(key)
}

struct Setup {
    _dir: tempfile::TempDir,
    connector: Box<dyn Connector>,
}

/// A connector to `server`; `auth` is `token`, `basic` or `wrong`.
fn connector(server: &ContractServer<State>, auth: &str, extra: &str, timeout_secs: u64) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, value: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{value}\n")).unwrap();
        path.display().to_string()
    };
    let auth = match auth {
        "token" => format!("{{ token_file = {:?} }}", file("token", TOKEN)),
        "basic" => format!(
            "{{ user = \"steward\", password_file = {:?} }}",
            file("password", "s3cret")
        ),
        "wrong" => format!("{{ token_file = {:?} }}", file("token", "forged-token")),
        other => panic!("auth {other}"),
    };
    let text = format!(
        "name = \"zammad\"\ntype = \"zammad\"\nurl = \"{}/\"\ntimeout_secs = {timeout_secs}\nauth = {auth}\n{extra}\n",
        server.url
    );
    let config: ConnectorConfig = toml::from_str(&text).unwrap();
    let connector = build(&config).unwrap();
    assert_eq!(connector.kind(), "zammad");
    assert!(!connector.idempotent_create());
    Setup {
        _dir: dir,
        connector,
    }
}

const CUSTOMER: &str = "customer = \"monitoring@example.com\"";

fn rejected(err: ConnectorError) -> String {
    match err {
        ConnectorError::Rejected { message } => message,
        other => panic!("not rejected: {other:?}"),
    }
}

#[tokio::test]
async fn create_find_comment_resolve_reopen() {
    let server = start_zammad(TOKEN).await;
    let setup = connector(&server, "token", CUSTOMER, 5);
    let c = &setup.connector;
    let t = ticket("steward-42");

    let created = c.create(&t).await.unwrap();
    assert_eq!(
        created,
        TicketRef {
            id: "1".into(),
            display: "31001".into()
        }
    );
    {
        let state = server.shared.state.lock().unwrap();
        let z = &state.tickets[&1];
        assert_eq!(z.title, "[steward-42] Disk /var full on web1");
        assert_eq!(z.group, "Users", "the connector's default group");
        assert_eq!(z.customer, "monitoring@example.com");
        assert_eq!(z.articles.len(), 1);
        assert_eq!(z.articles[0].kind, "note");
        assert!(z.articles[0].internal);
        assert!(z.articles[0].body.contains("97% full"));
    }
    let seen = server.shared.seen();
    assert_eq!(
        seen[0].headers.get("authorization").unwrap(),
        &format!("Token token={TOKEN}")
    );
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/api/v1/tickets")
    );

    assert_eq!(c.find(&t).await.unwrap(), Some(created.clone()));
    // The search for "steward-4" also returns "[steward-42] ...": not this key's ticket.
    assert_eq!(c.find(&ticket("steward-4")).await.unwrap(), None);

    c.update(&created, &t, Update::Comment, "Severity is now critical.")
        .await
        .unwrap();
    c.update(&created, &t, Update::Acknowledge, "Acknowledged by ops.")
        .await
        .unwrap();
    c.update(&created, &t, Update::Resolve, "The disk has room again.")
        .await
        .unwrap();
    {
        let state = server.shared.state.lock().unwrap();
        let z = &state.tickets[&1];
        assert_eq!(z.articles.len(), 4);
        assert_eq!(z.articles[1].body, "Severity is now critical.");
        assert!(z.articles.iter().all(|a| a.kind == "note" && a.internal));
        assert_eq!(z.articles[3].body, "The disk has room again.");
        assert_eq!(z.state, "closed");
    }
    assert_eq!(
        c.find(&t).await.unwrap(),
        None,
        "a closed ticket is not found"
    );

    c.update(&created, &t, Update::Reopen, "Full again.")
        .await
        .unwrap();
    {
        let state = server.shared.state.lock().unwrap();
        let z = &state.tickets[&1];
        assert_eq!(z.state, "open");
        assert_eq!(z.articles.len(), 5);
        assert_eq!(state.tickets.len(), 1);
    }
    assert_eq!(c.find(&t).await.unwrap(), Some(created));
}

#[tokio::test]
async fn route_queue_is_the_group_and_expanded_search_is_read() {
    let server = start_zammad(TOKEN).await;
    let setup = connector(&server, "token", CUSTOMER, 5);
    let mut t = ticket("steward-50");
    t.queue = "Ops".into();
    let created = setup.connector.create(&t).await.unwrap();
    assert_eq!(server.shared.state.lock().unwrap().tickets[&1].group, "Ops");

    server.shared.state.lock().unwrap().always_expand = true;
    assert_eq!(
        setup.connector.find(&t).await.unwrap(),
        Some(created.clone())
    );
    setup
        .connector
        .update(&created, &t, Update::Resolve, "ok")
        .await
        .unwrap();
    assert_eq!(setup.connector.find(&t).await.unwrap(), None);
}

#[tokio::test]
async fn basic_auth_is_accepted() {
    let server = start_zammad(TOKEN).await;
    server.shared.state.lock().unwrap().basic = Some(("steward".into(), "s3cret".into()));
    let setup = connector(&server, "basic", CUSTOMER, 5);
    let created = setup.connector.create(&ticket("steward-9")).await.unwrap();
    assert_eq!(
        setup.connector.find(&ticket("steward-9")).await.unwrap(),
        Some(created)
    );
    assert!(contract::authorization(&server.shared.seen()[0]).starts_with("Basic "));
}

#[tokio::test]
async fn refused_auth_is_rejected() {
    let server = start_zammad(TOKEN).await;
    let setup = connector(&server, "wrong", CUSTOMER, 5);
    let message = rejected(
        setup
            .connector
            .create(&ticket("steward-1"))
            .await
            .unwrap_err(),
    );
    assert!(message.contains("HTTP 401"), "{message}");
    assert!(!message.contains("forged-token"), "no secret in errors");
    assert!(server.shared.state.lock().unwrap().tickets.is_empty());
}

#[tokio::test]
async fn server_error_and_rate_limit_are_retryable() {
    let server = start_zammad(TOKEN).await;
    let setup = connector(&server, "token", CUSTOMER, 5);
    let t = ticket("steward-2");
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
    assert!(server.shared.state.lock().unwrap().tickets.is_empty());

    let created = setup.connector.create(&t).await.unwrap();
    server.shared.inject(
        Some("/ticket_articles"),
        Fault::TooMany {
            retry_after_secs: 7,
        },
    );
    match setup
        .connector
        .update(&created, &t, Update::Comment, "note")
        .await
        .unwrap_err()
    {
        ConnectorError::Retryable {
            retry_after,
            maybe_applied,
            ..
        } => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)));
            assert!(!maybe_applied);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        server.shared.state.lock().unwrap().tickets[&1]
            .articles
            .len(),
        1
    );
}

#[tokio::test]
async fn slow_reply_past_the_timeout_is_retryable_and_maybe_applied() {
    let server = start_zammad(TOKEN).await;
    let setup = connector(&server, "token", CUSTOMER, 1);
    server.shared.inject(
        Some("/api/v1/tickets"),
        Fault::Slow(Duration::from_millis(2500)),
    );
    let started = std::time::Instant::now();
    match setup
        .connector
        .create(&ticket("steward-6"))
        .await
        .unwrap_err()
    {
        ConnectorError::Retryable {
            maybe_applied,
            message,
            retry_after,
        } => {
            assert!(maybe_applied, "{message}");
            assert!(message.contains("timed out"), "{message}");
            assert_eq!(retry_after, None);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_millis(2400),
        "the 1 s timeout applies"
    );
}

/// The exactly-once path: the create is done but its answer never comes back within
/// `timeout_secs`; the error says it may be applied, and `find` finds the ticket, so the
/// dispatcher records it instead of creating a second one.
#[tokio::test]
async fn lost_answer_is_maybe_applied_and_found() {
    let server = start_zammad(TOKEN).await;
    let setup = connector(&server, "token", CUSTOMER, 1);
    let t = ticket("steward-5");
    server
        .shared
        .inject(Some("/api/v1/tickets"), Fault::LoseAnswer);
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
    assert_eq!(server.shared.state.lock().unwrap().tickets.len(), 1);
    let found = setup.connector.find(&t).await.unwrap().unwrap();
    assert_eq!(
        found,
        TicketRef {
            id: "1".into(),
            display: "31001".into()
        }
    );
}

#[tokio::test]
async fn refusal_names_the_field() {
    let server = start_zammad(TOKEN).await;
    let setup = connector(
        &server,
        "token",
        &format!("{CUSTOMER}\ngroup = \"Nowhere\""),
        5,
    );
    let message = rejected(
        setup
            .connector
            .create(&ticket("steward-3"))
            .await
            .unwrap_err(),
    );
    assert!(message.contains("HTTP 422"), "{message}");
    assert!(message.contains("'group'"), "{message}");

    let setup = connector(&server, "token", "customer = \"nobody@example.com\"", 5);
    let message = rejected(
        setup
            .connector
            .create(&ticket("steward-3"))
            .await
            .unwrap_err(),
    );
    assert!(message.contains("'customer'"), "{message}");

    let setup = connector(
        &server,
        "token",
        &format!("{CUSTOMER}\nclosed_state = \"done\""),
        5,
    );
    let t = ticket("steward-4");
    let created = setup.connector.create(&t).await.unwrap();
    let message = rejected(
        setup
            .connector
            .update(&created, &t, Update::Resolve, "ok")
            .await
            .unwrap_err(),
    );
    assert!(message.contains("'state'"), "{message}");
}

/// The contract itself refuses what Zammad refuses.
#[tokio::test]
async fn contract_enforces_zammad_shapes() {
    let server = start_zammad(TOKEN).await;
    steward_agent::install_crypto_provider();
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", server.url);
    let auth = format!("Token token={TOKEN}");
    let r = http
        .post(url("/api/v1/tickets"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let full = json!({"title": "t", "group": "Users", "customer": "monitoring@example.com",
        "article": {"subject": "s", "body": "b", "type": "note", "internal": true}});
    for missing in ["title", "group", "customer", "article"] {
        let mut body = full.clone();
        body.as_object_mut().unwrap().remove(missing);
        let r = http
            .post(url("/api/v1/tickets"))
            .header("authorization", &auth)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{missing}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains(missing), "{body}");
        assert!(body["error_human"].is_string());
    }
    let r = http
        .delete(url("/api/v1/tickets"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let r = http
        .get(url("/api/v2/tickets"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(server.shared.state.lock().unwrap().tickets.is_empty());
}
