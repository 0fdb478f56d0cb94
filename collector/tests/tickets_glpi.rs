//! The GLPI connector against GLPI's apirest.php contract: sessions opened and killed around
//! every operation, the ticket named by its correlation key and linked to the CI's asset,
//! follow-ups, solve and reopen, refused auth, retryable failures and the exactly-once path.
// result_large_err: the contract servers' `Result<_, Response>` helpers (also the frame's `body_json`).
#![allow(clippy::unwrap_used, clippy::result_large_err)]

mod contract;
#[path = "contract/glpi.rs"]
mod glpi_contract;

use std::time::Duration;

use contract::{ContractServer, Fault};
use glpi_contract::{SOLVED, State, start_glpi};
use serde_json::json;
use steward_collector::tickets::{
    Connector, ConnectorConfig, ConnectorError, Severity, Ticket, TicketRef, Update, build,
};

const USER_TOKEN: &str = "glpi-user-token-0123456789";
const APP_TOKEN: &str = "glpi-app-token-abcdef";

fn ticket(key: &str) -> Ticket {
    Ticket {
        body: "The disk /var on web1 is 97% full.\nCI: web1 (server) <rack 3>".into(),
        details: json!({"event_id": 42, "ci": "web1"}),
        ..contract::sample_ticket(key)
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    connector: Box<dyn Connector>,
}

/// A connector to `server`; `auth` is `token`, `token+app`, `basic` or `wrong`.
fn connector(server: &ContractServer<State>, auth: &str, extra: &str, timeout_secs: u64) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, value: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{value}\n")).unwrap();
        path.display().to_string()
    };
    let auth = match auth {
        "token" => format!("{{ token_file = {:?} }}", file("token", USER_TOKEN)),
        "token+app" => format!(
            "{{ token_file = {:?}, app_token_file = {:?} }}",
            file("token", USER_TOKEN),
            file("app", APP_TOKEN)
        ),
        "basic" => format!(
            "{{ user = \"steward\", password_file = {:?} }}",
            file("password", "s3cret")
        ),
        "wrong" => format!(
            "{{ token_file = {:?}, app_token_file = {:?} }}",
            file("token", "not-the-token"),
            file("app", APP_TOKEN)
        ),
        other => panic!("auth {other}"),
    };
    let text = format!(
        "name = \"glpi\"\ntype = \"glpi\"\nurl = \"{}/apirest.php\"\ntimeout_secs = {timeout_secs}\nauth = {auth}\n{extra}\n",
        server.url
    );
    let config: ConnectorConfig = toml::from_str(&text).unwrap();
    let connector = build(&config).unwrap();
    assert_eq!(connector.kind(), "glpi");
    assert!(!connector.idempotent_create());
    Setup {
        _dir: dir,
        connector,
    }
}

async fn server_with_asset(app_token: Option<&str>) -> ContractServer<State> {
    let server = start_glpi(USER_TOKEN, app_token).await;
    server
        .shared
        .state
        .lock()
        .unwrap()
        .assets
        .push(("Computer".into(), 7, "SN-WEB1".into()));
    server
}

/// Every session opened was killed.
fn assert_sessions_closed(server: &ContractServer<State>) {
    let state = server.shared.state.lock().unwrap();
    assert!(state.opened > 0);
    assert_eq!(state.opened, state.killed, "every session is killed");
    assert!(state.live_sessions.is_empty());
}

fn count(server: &ContractServer<State>, method: &str, path_end: &str) -> usize {
    server
        .shared
        .seen()
        .iter()
        .filter(|s| s.method == method && s.path.ends_with(path_end))
        .count()
}

#[tokio::test]
async fn create_find_comment_resolve_reopen() {
    let server = server_with_asset(Some(APP_TOKEN)).await;
    let setup = connector(&server, "token+app", "entities_id = 3", 5);
    let c = &setup.connector;
    let t = ticket("steward-42");

    let created = c.create(&t).await.unwrap();
    assert_eq!(created.id, "101");
    assert_eq!(
        created.display,
        format!("{}/front/ticket.form.php?id=101", server.url)
    );
    {
        let state = server.shared.state.lock().unwrap();
        let glpi = &state.tickets[&101];
        assert_eq!(glpi.name, "[steward-42] Disk /var full on web1");
        assert_eq!(glpi.urgency, 4, "critical is GLPI urgency 4 (high)");
        assert_eq!(glpi.entities_id, 3);
        assert!(glpi.content.contains("97% full"));
        assert!(
            glpi.content.contains("&lt;rack 3&gt;"),
            "content is escaped HTML"
        );
        assert_eq!(
            glpi.items,
            vec![("Computer".to_string(), 7)],
            "the asset is linked"
        );
        assert_eq!(glpi.status, 1);
    }
    assert_sessions_closed(&server);
    // The App-Token and the user token went where they belong.
    let init = server
        .shared
        .seen()
        .into_iter()
        .find(|s| s.path.ends_with("/initSession"))
        .unwrap();
    assert_eq!(
        init.headers.get("authorization").unwrap(),
        &format!("user_token {USER_TOKEN}")
    );
    assert_eq!(init.headers.get("app-token").unwrap(), APP_TOKEN);

    assert_eq!(c.find(&t).await.unwrap(), Some(created.clone()));
    // Another key (a prefix of this one) finds nothing.
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
        let glpi = &state.tickets[&101];
        assert_eq!(glpi.followups.len(), 3);
        assert!(glpi.followups[0].contains("Severity is now critical."));
        assert!(glpi.followups[2].contains("room again"));
        assert_eq!(glpi.status, SOLVED);
    }
    assert_eq!(
        c.find(&t).await.unwrap(),
        None,
        "a solved ticket is not found"
    );

    c.update(&created, &t, Update::Reopen, "Full again.")
        .await
        .unwrap();
    {
        let state = server.shared.state.lock().unwrap();
        let glpi = &state.tickets[&101];
        assert_eq!(glpi.status, 2);
        assert_eq!(glpi.followups.len(), 4);
        assert_eq!(state.tickets.len(), 1);
    }
    assert_eq!(c.find(&t).await.unwrap(), Some(created));
    assert_eq!(count(&server, "PUT", "/Ticket/101"), 2);
    // One session per operation: create, 2 finds, comment, ack, resolve, find, reopen, find.
    assert_eq!(server.shared.state.lock().unwrap().opened, 9);
    assert_sessions_closed(&server);
}

#[tokio::test]
async fn asset_not_found_is_noted_and_no_serial_is_skipped() {
    let server = server_with_asset(None).await;
    let setup = connector(&server, "token", "", 5);
    let mut t = ticket("steward-7");
    t.ci_serial = "SN-UNKNOWN".into();
    t.severity = Severity::Warning;
    let created = setup.connector.create(&t).await.unwrap();
    {
        let state = server.shared.state.lock().unwrap();
        let glpi = &state.tickets[&created.id.parse().unwrap()];
        assert!(glpi.items.is_empty());
        assert!(
            glpi.content.contains("No Computer with serial"),
            "{}",
            glpi.content
        );
        assert_eq!(glpi.urgency, 3, "warning is GLPI urgency 3 (medium)");
    }
    assert_eq!(count(&server, "GET", "/search/Computer"), 1);

    let mut t = ticket("steward-8");
    t.ci_serial = String::new();
    setup.connector.create(&t).await.unwrap();
    assert_eq!(
        count(&server, "GET", "/search/Computer"),
        1,
        "no serial: no search"
    );
    assert_eq!(count(&server, "POST", "/Item_Ticket"), 0);
    assert_sessions_closed(&server);
}

#[tokio::test]
async fn basic_auth_opens_a_session() {
    let server = server_with_asset(None).await;
    server.shared.state.lock().unwrap().basic = Some(("steward".into(), "s3cret".into()));
    let setup = connector(&server, "basic", "", 5);
    let created = setup.connector.create(&ticket("steward-9")).await.unwrap();
    assert_eq!(
        setup.connector.find(&ticket("steward-9")).await.unwrap(),
        Some(created)
    );
    assert_sessions_closed(&server);
}

#[tokio::test]
async fn refused_auth_is_rejected() {
    let server = server_with_asset(Some(APP_TOKEN)).await;
    // A wrong user token: 401 ERROR_GLPI_LOGIN_USER_TOKEN.
    let setup = connector(&server, "wrong", "", 5);
    let err = setup
        .connector
        .create(&ticket("steward-1"))
        .await
        .unwrap_err();
    match &err {
        ConnectorError::Rejected { message } => {
            assert!(message.contains("HTTP 401"), "{message}");
            assert!(message.contains("user_token seems invalid"), "{message}");
            assert!(!message.contains("not-the-token"), "no secret in errors");
        }
        other => panic!("{other:?}"),
    }
    // No App-Token where the server requires one: 400.
    let setup = connector(&server, "token", "", 5);
    let err = setup
        .connector
        .find(&ticket("steward-1"))
        .await
        .unwrap_err();
    match &err {
        ConnectorError::Rejected { message } => {
            assert!(
                message.contains("HTTP 400") && message.contains("app_token"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    let state = server.shared.state.lock().unwrap();
    assert_eq!(state.opened, 0);
    assert!(state.tickets.is_empty());
}

#[tokio::test]
async fn server_error_is_retryable_and_the_session_still_killed() {
    let server = server_with_asset(None).await;
    let setup = connector(&server, "token", "", 5);
    server.shared.inject(Some("/Ticket"), Fault::Status(500));
    let err = setup
        .connector
        .create(&ticket("steward-2"))
        .await
        .unwrap_err();
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
    assert_sessions_closed(&server);
}

#[tokio::test]
async fn rate_limit_is_retryable_after_the_given_delay() {
    let server = server_with_asset(None).await;
    let setup = connector(&server, "token", "", 5);
    let t = ticket("steward-3");
    let created = setup.connector.create(&t).await.unwrap();
    server.shared.inject(
        Some("/ITILFollowup"),
        Fault::TooMany {
            retry_after_secs: 7,
        },
    );
    let err = setup
        .connector
        .update(&created, &t, Update::Comment, "note")
        .await
        .unwrap_err();
    match err {
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
    // The retry goes through.
    setup
        .connector
        .update(&created, &t, Update::Comment, "note")
        .await
        .unwrap();
    assert_eq!(
        server.shared.state.lock().unwrap().tickets[&101]
            .followups
            .len(),
        1
    );
    assert_sessions_closed(&server);
}

/// The exactly-once path: the create reaches GLPI but its answer never comes back within
/// `timeout_secs`; the error says it may be applied, and `find` finds the ticket, so the
/// dispatcher records it instead of creating a second one. (The frame's `Slow` fault cannot
/// show this: the server drops the handler when the client gives up, so nothing is done.)
#[tokio::test]
async fn lost_answer_is_maybe_applied_and_found() {
    let server = server_with_asset(None).await;
    let setup = connector(&server, "token", "", 1);
    let t = ticket("steward-5");
    server.shared.inject(Some("/Ticket"), Fault::LoseAnswer);
    let started = std::time::Instant::now();
    let err = setup.connector.create(&t).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(4));
    match &err {
        ConnectorError::Retryable {
            maybe_applied,
            message,
            ..
        } => {
            assert!(*maybe_applied, "{message}");
            assert!(message.contains("timed out"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.shared.state.lock().unwrap().tickets.len(), 1);
    let found = setup.connector.find(&t).await.unwrap().unwrap();
    assert_eq!(found.id, "101");
    assert_sessions_closed(&server);
}

#[tokio::test]
async fn slow_reply_past_the_timeout_is_retryable_and_maybe_applied() {
    let server = server_with_asset(None).await;
    let setup = connector(&server, "token", "", 1);
    server
        .shared
        .inject(Some("/Ticket"), Fault::Slow(Duration::from_millis(2500)));
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
    // Gave up after the 1 s timeout, then killed the session (a second, fast call).
    assert!(started.elapsed() < Duration::from_millis(2400));
    assert_sessions_closed(&server);
}

#[tokio::test]
async fn refusal_names_the_field() {
    let server = server_with_asset(None).await;
    let setup = connector(&server, "token", "reopen_status = 9", 5);
    let t = ticket("steward-10");
    let created = setup.connector.create(&t).await.unwrap();
    let err = setup
        .connector
        .update(&created, &t, Update::Reopen, "again")
        .await
        .unwrap_err();
    match err {
        ConnectorError::Rejected { message } => {
            assert!(message.contains("HTTP 400"), "{message}");
            assert!(message.contains("status"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // A ticket id that is not GLPI's.
    let bogus = TicketRef {
        id: "INC0001".into(),
        display: String::new(),
    };
    assert!(matches!(
        setup
            .connector
            .update(&bogus, &t, Update::Comment, "x")
            .await,
        Err(ConnectorError::Rejected { .. })
    ));
    assert_sessions_closed(&server);
}

/// The contract itself refuses what GLPI refuses.
#[tokio::test]
async fn contract_enforces_glpi_shapes() {
    let server = server_with_asset(None).await;
    steward_agent::install_crypto_provider();
    let http = reqwest::Client::new();
    let base = format!("{}/apirest.php", server.url);
    let session = http
        .get(format!("{base}/initSession"))
        .header("authorization", format!("user_token {USER_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), 200);
    let session: serde_json::Value = session.json().await.unwrap();
    let session = session["session_token"].as_str().unwrap().to_string();

    let r = http
        .post(format!("{base}/Ticket"))
        .json(&json!({"input": {"name": "x", "content": "y"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "no Session-Token");
    let r = http
        .post(format!("{base}/Ticket"))
        .header("session-token", "forged")
        .json(&json!({"input": {"name": "x", "content": "y"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body[0], "ERROR_SESSION_TOKEN_INVALID");
    let r = http
        .post(format!("{base}/Ticket"))
        .header("session-token", &session)
        .json(&json!({"input": {"name": "x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body[0], "ERROR_GLPI_ADD");
    assert!(body[1].as_str().unwrap().contains("content"));
    let r = http
        .delete(format!("{base}/Ticket/1"))
        .header("session-token", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let r = http
        .get(format!("{}/Ticket", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "outside apirest.php");
}
