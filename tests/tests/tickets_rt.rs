//! The Request Tracker connector against a real Request Tracker 5 on loopback
//! (`scripts/rt5.sh`; installed by `scripts/rt5.sh install`, which scripts/test.sh runs):
//! every effect is checked through RT's own REST2 API, and the failure modes the dispatcher
//! branches on (rejected, retryable, maybe applied) are produced for real: a wrong password,
//! a queue without the custom field, RT stopped, and an answer lost by a proxy after RT
//! created the ticket.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use steward_collector::tickets::{
    self, Connector, ConnectorConfig, ConnectorError, Severity, Ticket, TicketRef, Update,
};
use steward_e2e::proxy::Proxy;
use steward_e2e::rt::RequestTracker;

fn connector(toml_text: &str) -> Box<dyn Connector> {
    let config: ConnectorConfig = toml::from_str(toml_text)
        .unwrap_or_else(|e| panic!("bad connector config: {e}\n{toml_text}"));
    tickets::build(&config).unwrap()
}

fn ticket(key: &str, severity: Severity, queue: &str) -> Ticket {
    Ticket {
        correlation_key: key.into(),
        event_id: 7,
        rule: "fs-usage".into(),
        instance: "/var".into(),
        state: "firing".into(),
        severity,
        summary: format!("fs-usage on web-01: /var at 93% ({key})"),
        body: "Rule fs-usage fired on web-01.\nCI: web-01 (server), serial SN-123.".into(),
        queue: queue.into(),
        ci_name: "web-01".into(),
        ci_class: "server".into(),
        ci_serial: "SN-123".into(),
        details: serde_json::json!({"rule": "fs-usage"}),
    }
}

fn is_rejected(result: &Result<impl std::fmt::Debug, ConnectorError>) -> bool {
    matches!(result, Err(ConnectorError::Rejected { .. }))
}

fn rejected_message<T: std::fmt::Debug>(result: Result<T, ConnectorError>) -> String {
    match result {
        Err(ConnectorError::Rejected { message }) => message,
        other => panic!("expected Rejected, got {other:?}"),
    }
}

/// `Retryable`'s `maybe_applied`, or a failure naming what came instead.
fn retryable_maybe_applied<T: std::fmt::Debug>(result: Result<T, ConnectorError>) -> bool {
    match result {
        Err(ConnectorError::Retryable { maybe_applied, .. }) => maybe_applied,
        other => panic!("expected Retryable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_is_created_found_commented_resolved_and_reopened() {
    let rt = RequestTracker::start();
    let rt_connector =
        connector(&rt.connector_toml("rt", "requestor = \"ops@example.com\"\nqueue = \"General\""));
    assert_eq!(rt_connector.kind(), "request_tracker");
    assert!(!rt_connector.idempotent_create());

    let t = ticket("steward-e2e-1", Severity::Critical, "");
    // Nothing carries the key yet.
    assert_eq!(rt_connector.find(&t).await.unwrap(), None);

    // Create: one ticket in the connector's queue, carrying the key, subject, body, priority.
    let created = rt_connector.create(&t).await.unwrap();
    assert_eq!(created.display, format!("#{}", created.id));
    let found = rt.tickets_with_key("steward-e2e-1");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["id"], created.id.as_str());
    assert_eq!(found[0]["Subject"], t.summary.as_str());
    assert_eq!(found[0]["Status"], "new");
    let stored = rt.ticket(&created.id);
    assert_eq!(stored["Priority"], "90");
    assert_eq!(stored["Requestor"][0]["id"], "ops@example.com");
    assert_eq!(rt.queue_name(&created.id), "General");
    assert_eq!(
        rt.custom_field(&created.id, "Correlation Key"),
        vec!["steward-e2e-1"]
    );
    let history = rt.get(&format!(
        "/ticket/{}/attachments?fields=Content,ContentType&per_page=5",
        created.id
    ));
    assert_eq!(history["items"][0]["Content"], t.body.as_str());

    // Find: the same ticket, by its key.
    assert_eq!(rt_connector.find(&t).await.unwrap(), Some(created.clone()));

    // Comment and acknowledge: comments in RT, the status untouched.
    rt_connector
        .update(
            &created,
            &t,
            Update::Comment,
            "Severity changed: warning -> critical",
        )
        .await
        .unwrap();
    rt_connector
        .update(&created, &t, Update::Acknowledge, "Acknowledged by alice")
        .await
        .unwrap();
    assert_eq!(
        rt.comments(&created.id),
        vec![
            "Severity changed: warning -> critical",
            "Acknowledged by alice"
        ]
    );
    assert_eq!(rt.status(&created.id), "new");

    // Resolve: the note and the status in RT; an active-ticket search no longer finds it.
    rt_connector
        .update(&created, &t, Update::Resolve, "Cleared: /var at 61%")
        .await
        .unwrap();
    assert_eq!(rt.status(&created.id), "resolved");
    assert_eq!(
        rt.comments(&created.id).last().unwrap(),
        "Cleared: /var at 61%"
    );
    assert_eq!(rt_connector.find(&t).await.unwrap(), None);
    // A repeated resolve (a retry after a lost answer) is not an error.
    rt_connector
        .update(&created, &t, Update::Resolve, "Cleared: /var at 61%")
        .await
        .unwrap();
    assert_eq!(rt.status(&created.id), "resolved");

    // Reopen: open again with the note, and found again.
    rt_connector
        .update(
            &created,
            &t,
            Update::Reopen,
            "Fired again within the reopen window",
        )
        .await
        .unwrap();
    assert_eq!(rt.status(&created.id), "open");
    assert_eq!(
        rt.comments(&created.id).last().unwrap(),
        "Fired again within the reopen window"
    );
    assert_eq!(rt_connector.find(&t).await.unwrap(), Some(created.clone()));
    let statuses: Vec<(String, String)> = rt
        .transactions(&created.id)
        .iter()
        .filter(|tx| tx["Type"] == "Status")
        .map(|tx| {
            (
                tx["OldValue"].as_str().unwrap().to_string(),
                tx["NewValue"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("new".to_string(), "resolved".to_string()),
            ("resolved".to_string(), "open".to_string())
        ]
    );
    // Resolving an open ticket works too (open → resolved), with an empty note: status only.
    rt_connector
        .update(&created, &t, Update::Resolve, "")
        .await
        .unwrap();
    assert_eq!(rt.status(&created.id), "resolved");

    // A route's queue wins over the connector's; a warning gets priority 50; a key with
    // TicketSQL's quote and backslash is stored and found as it is.
    let odd = ticket(r"steward-it's-a\b", Severity::Warning, "Network");
    let network = rt_connector.create(&odd).await.unwrap();
    assert_ne!(network.id, created.id);
    assert_eq!(rt.queue_name(&network.id), "Network");
    assert_eq!(rt.ticket(&network.id)["Priority"], "50");
    assert_eq!(
        rt.custom_field(&network.id, "Correlation Key"),
        vec![r"steward-it's-a\b"]
    );
    assert_eq!(rt_connector.find(&odd).await.unwrap(), Some(network));
    // The keys do not bleed into each other.
    assert_eq!(rt.tickets_with_key("steward-e2e-1").len(), 1);
    assert_eq!(
        rt_connector
            .find(&ticket("steward-e2e-404", Severity::Warning, ""))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_and_rt_down_are_told_apart() {
    let mut rt = RequestTracker::start();
    let t = ticket("steward-e2e-2", Severity::Warning, "");

    // A wrong password: rejected (401), nothing created.
    let wrong = rt.dir().join("wrong.pass");
    std::fs::write(&wrong, "not-the-password").unwrap();
    let bad_auth = connector(&format!(
        "name = \"rt-bad\"\ntype = \"request_tracker\"\nurl = \"{}\"\n\
         auth = {{ user = \"root\", password_file = {:?} }}\n",
        rt.url(),
        wrong.display().to_string()
    ));
    let message = rejected_message(bad_auth.create(&t).await);
    assert!(message.contains("401"), "{message}");
    assert!(is_rejected(&bad_auth.find(&t).await));
    assert!(rt.tickets_with_key("steward-e2e-2").is_empty());

    // RT's auth token (`Authorization: token ...`) works; a wrong one is rejected.
    let token_auth = |name: &str, file: &std::path::Path| {
        connector(&format!(
            "name = {name:?}\ntype = \"request_tracker\"\nurl = \"{}\"\n\
             auth = {{ token_file = {:?} }}\n",
            rt.url(),
            file.display().to_string()
        ))
    };
    let by_token = token_auth("rt-token", &rt.token_file());
    assert_eq!(by_token.find(&t).await.unwrap(), None);
    let wrong_token = rt.dir().join("wrong.token");
    std::fs::write(&wrong_token, "1-14-00000000000000000000000000000000").unwrap();
    let message = rejected_message(token_auth("rt-bad-token", &wrong_token).find(&t).await);
    assert!(message.contains("401"), "{message}");

    let rt_connector = connector(&rt.connector_toml("rt", ""));

    // A queue the custom field is not applied to: RT creates the ticket without the key
    // (201). The id is known, so it is returned (and tracked); the operator error is logged.
    let (status, body) = rt.call(
        "POST",
        "/queue",
        Some(&serde_json::json!({"Name": "NoField", "Description": "no correlation field"})),
    );
    assert_eq!(status, 201, "{body}");
    let created = rt_connector
        .create(&ticket("steward-e2e-nofield", Severity::Warning, "NoField"))
        .await
        .unwrap();
    assert_eq!(rt.queue_name(&created.id), "NoField");
    assert!(rt.custom_field(&created.id, "Correlation Key").is_empty());
    // A custom field name that exists nowhere: the same operator error, the same answer.
    let misnamed = connector(&rt.connector_toml("rt-misnamed", "correlation_field = \"Corr Key\""));
    let created = misnamed.create(&t).await.unwrap();
    assert!(rt.custom_field(&created.id, "Corr Key").is_empty());
    // A queue that does not exist: rejected by RT itself.
    let message = rejected_message(
        rt_connector
            .create(&ticket("steward-e2e-noqueue", Severity::Warning, "Nope"))
            .await,
    );
    assert!(message.contains("Nope"), "{message}");

    // A status RT refuses (RT answers 201 with a message): rejected, not silently passed.
    let created = by_token.create(&t).await.unwrap();
    assert_eq!(rt.ticket(&created.id)["Creator"]["id"], "root");
    let bogus = connector(&rt.connector_toml("rt-bogus", "resolved_status = \"bogus\""));
    let message = rejected_message(bogus.update(&created, &t, Update::Resolve, "x").await);
    assert!(message.contains("bogus"), "{message}");
    assert_eq!(rt.status(&created.id), "new");
    // A ticket that does not exist: rejected (RT's 404 / 400).
    let missing = TicketRef {
        id: "99999".into(),
        display: "#99999".into(),
    };
    assert!(is_rejected(
        &rt_connector
            .update(&missing, &t, Update::Comment, "x")
            .await
    ));
    assert!(is_rejected(
        &rt_connector.update(&missing, &t, Update::Resolve, "").await
    ));

    // RT stopped: connection refused, retryable, and certainly not applied.
    rt.stop();
    assert!(!retryable_maybe_applied(rt_connector.create(&t).await));
    assert!(!retryable_maybe_applied(rt_connector.find(&t).await));
    assert!(!retryable_maybe_applied(
        rt_connector
            .update(&created, &t, Update::Comment, "while down")
            .await
    ));

    // Back up (same database, same port): the same connector carries on.
    rt.restart();
    assert_eq!(rt_connector.find(&t).await.unwrap(), Some(created.clone()));
    rt_connector
        .update(&created, &t, Update::Resolve, "recovered")
        .await
        .unwrap();
    assert_eq!(rt.status(&created.id), "resolved");
    assert_eq!(rt.tickets_with_key("steward-e2e-2").len(), 1);
}

/// The exactly-once building block: a create whose answer is lost after RT acted is
/// "retryable, maybe applied", and `find` then returns the ticket it made, so the dispatcher
/// stores that instead of creating a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_answer_is_found_instead_of_duplicated() {
    let rt = RequestTracker::start();
    let proxy = Proxy::start(rt.port());
    let rt_connector = connector(&rt.connector_toml_at("rt-proxied", &proxy.url(), ""));
    let t = ticket("steward-e2e-3", Severity::Critical, "");

    // Through the proxy, all is normal.
    assert_eq!(rt_connector.find(&t).await.unwrap(), None);

    // The create's answer is lost: RT made the ticket, the connector cannot know it.
    proxy.drop_responses(1);
    let before = proxy.forwarded();
    assert!(retryable_maybe_applied(rt_connector.create(&t).await));
    assert_eq!(proxy.dropped(), 1);
    assert_eq!(proxy.forwarded(), before + 1, "the create reached RT once");
    let in_rt = rt.tickets_with_key("steward-e2e-3");
    assert_eq!(in_rt.len(), 1, "{in_rt:#?}");

    // What the dispatcher does next: search before creating again, and find that ticket.
    let found = rt_connector
        .find(&t)
        .await
        .unwrap()
        .expect("the created ticket");
    assert_eq!(found.id, in_rt[0]["id"].as_str().unwrap());
    assert_eq!(found.display, format!("#{}", found.id));
    rt_connector
        .update(&found, &t, Update::Resolve, "cleared")
        .await
        .unwrap();
    assert_eq!(
        rt.tickets_with_key("steward-e2e-3").len(),
        1,
        "no duplicate"
    );
    assert_eq!(rt.status(&found.id), "resolved");

    // A lost answer to a search is retryable too (and a search changes nothing).
    proxy.drop_responses(1);
    assert!(retryable_maybe_applied(rt_connector.find(&t).await));

    // Connections refused (the system is down): retryable, nothing applied, nothing created.
    proxy.refuse(true);
    let t4 = ticket("steward-e2e-4", Severity::Warning, "");
    assert!(!retryable_maybe_applied(rt_connector.create(&t4).await));
    assert!(rt.tickets_with_key("steward-e2e-4").is_empty());
    proxy.refuse(false);
    let created = rt_connector.create(&t4).await.unwrap();
    assert_eq!(rt.tickets_with_key("steward-e2e-4").len(), 1);
    assert_eq!(rt_connector.find(&t4).await.unwrap(), Some(created));
}
