//! Outbox tests against a real SQLite file: which event changes write which rows, in the same
//! transaction, and the order the dispatcher is handed them in.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::tickets::route::Destination;

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("test.db"), 64, 4096).unwrap();
    (dir, store)
}

async fn ci(store: &Store, id: i64, name: &str) {
    let name = name.to_string();
    store
        .inner
        .writer
        .write(move |conn| {
            conn.execute(
                "INSERT INTO cis (id, identity_key, name, class, first_seen_at, serial, vendor, product)
                 VALUES (?1, ?2, ?3, 'server', 1, 'SN-1', 'HPE', 'DL360')",
                rusqlite::params![id, format!("test:{id}"), name],
            )?;
            conn.execute(
                "INSERT INTO ci_assets (ci_id, owner, location, warranty_end, updated_at, updated_by)
                 VALUES (?1, 'web team', 'DC1', '2030-01-31', 1, 'import')",
                [id],
            )?;
            conn.execute(
                "INSERT INTO ci_history (ci_id, at, kind, summary, source) VALUES (?1, 50000, 'software', 'nginx upgraded', 'agent')",
                [id],
            )?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
}

fn dest(connector: &str) -> Destination {
    Destination {
        connector: connector.into(),
        queue: String::new(),
    }
}

fn change(state: &str, severity: &str, at: i64, escalate: Option<Vec<Destination>>) -> EventChange {
    EventChange {
        rule: "filesystem-used".into(),
        ci_id: 1,
        instance: "/var".into(),
        to_state: state.into(),
        severity: severity.into(),
        value: Some(96.0),
        threshold: Some(95.0),
        at,
        summary: "/var 96 % used".into(),
        description: String::new(),
        silenced_by: None,
        symptom_of_ci: None,
        note: String::new(),
        escalate,
    }
}

async fn ops(store: &Store) -> Vec<(String, String, String)> {
    let mut rows = store.list_outbox(false, 100).await.unwrap();
    rows.reverse();
    rows.into_iter()
        .map(|r| (r.connector, r.op, r.state))
        .collect()
}

#[tokio::test]
async fn an_escalated_event_queues_open_comment_flapping_ack_and_resolve() {
    let (_dir, store) = open();
    ci(&store, 1, "web1").await;
    let ids = store
        .apply_event_changes(vec![
            change("pending", "warning", 1_000, None),
            change(
                "firing",
                "warning",
                60_000,
                Some(vec![dest("rt"), dest("pd")]),
            ),
        ])
        .await
        .unwrap();
    let id = ids[1].unwrap();
    let event = store.event(id).await.unwrap().unwrap().0;
    assert_eq!(
        event.escalated_at,
        Some(60_000),
        "escalated with its change"
    );
    // Same state and severity: nothing for the service desk.
    store
        .apply_event_changes(vec![change("firing", "warning", 61_000, None)])
        .await
        .unwrap();
    store
        .apply_event_changes(vec![change("firing", "critical", 62_000, None)])
        .await
        .unwrap();
    store
        .apply_event_changes(vec![
            change("flapping", "critical", 63_000, None),
            change("flapping", "warning", 64_000, None),
            change("firing", "warning", 65_000, None),
        ])
        .await
        .unwrap();
    store.ack_event(id, "alice".into()).await.unwrap();
    store
        .apply_event_changes(vec![change("resolved", "warning", 70_000, None)])
        .await
        .unwrap();
    let all = ops(&store).await;
    let of = |c: &str| -> Vec<String> {
        all.iter()
            .filter(|(conn, _, _)| conn == c)
            .map(|(_, op, _)| op.clone())
            .collect()
    };
    // Flapping comments once; its severity moving while flapping comments too.
    assert_eq!(
        of("rt"),
        [
            "open",
            "comment",
            "comment",
            "comment",
            "acknowledge",
            "resolve"
        ]
    );
    assert_eq!(of("pd"), of("rt"));
    let notes: Vec<String> = store
        .list_outbox(false, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.connector == "rt")
        .map(|r| r.op)
        .collect();
    assert_eq!(notes.len(), 6);
    // Order per (event key, connector): only the open is due until it is delivered.
    let due = store.due_outbox(i64::MAX, 100).await.unwrap();
    assert_eq!(
        due.iter()
            .map(|i| (i.connector.as_str(), i.op.as_str()))
            .collect::<Vec<_>>(),
        [("rt", "open"), ("pd", "open")]
    );
    let first = due[0].clone();
    store
        .outbox_delivered(
            first,
            false,
            Delivery::Opened(TicketLink {
                event_id: id,
                connector: "rt".into(),
                external_id: "17".into(),
                display: "#17".into(),
                correlation_key: format!("steward-{id}"),
                status: "open".into(),
                resolved_at: None,
            }),
            80_000,
        )
        .await
        .unwrap();
    let due = store.due_outbox(i64::MAX, 100).await.unwrap();
    assert_eq!(
        due.iter()
            .map(|i| (i.connector.as_str(), i.op.as_str()))
            .collect::<Vec<_>>(),
        [("pd", "open"), ("rt", "comment")]
    );
    assert_eq!(
        store
            .ticket_link(id, "rt".into())
            .await
            .unwrap()
            .unwrap()
            .external_id,
        "17"
    );
    let listed = store.list_outbox(false, 100).await.unwrap();
    assert!(listed.iter().any(|r| r.ticket.as_deref() == Some("#17")));
}

#[tokio::test]
async fn held_back_events_queue_nothing_until_escalated() {
    let (_dir, store) = open();
    ci(&store, 1, "web1").await;
    let mut silenced = change("firing", "warning", 1_000, None);
    silenced.silenced_by = Some("silenced: kernel update".into());
    let id = store.apply_event_changes(vec![silenced]).await.unwrap()[0].unwrap();
    store
        .apply_event_changes(vec![change("firing", "critical", 2_000, None)])
        .await
        .unwrap();
    store.ack_event(id, "bob".into()).await.unwrap();
    assert!(ops(&store).await.is_empty(), "not escalated: nothing sent");
    store
        .escalate_events(vec![(id, vec![dest("rt")])], 3_000)
        .await
        .unwrap();
    // Twice does not queue twice.
    store
        .escalate_events(vec![(id, vec![dest("rt")])], 4_000)
        .await
        .unwrap();
    assert_eq!(
        ops(&store).await,
        [("rt".into(), "open".into(), "pending".into())]
    );
    // Escalated with no connector taking it: marked, nothing queued.
    let (_dir2, other) = open();
    ci(&other, 1, "web1").await;
    let id = other
        .apply_event_changes(vec![change("firing", "warning", 1_000, Some(Vec::new()))])
        .await
        .unwrap()[0]
        .unwrap();
    assert!(
        other
            .event(id)
            .await
            .unwrap()
            .unwrap()
            .0
            .escalated_at
            .is_some()
    );
    other
        .apply_event_changes(vec![change("resolved", "warning", 2_000, None)])
        .await
        .unwrap();
    assert!(ops(&other).await.is_empty());
}

#[tokio::test]
async fn dead_rows_block_their_key_until_retried_and_reopen_finds_the_last_ticket() {
    let (_dir, store) = open();
    ci(&store, 1, "web1").await;
    let id = store
        .apply_event_changes(vec![change(
            "firing",
            "warning",
            1_000,
            Some(vec![dest("rt")]),
        )])
        .await
        .unwrap()[0]
        .unwrap();
    store
        .apply_event_changes(vec![change("resolved", "warning", 2_000, None)])
        .await
        .unwrap();
    let open_row = store.due_outbox(i64::MAX, 10).await.unwrap().remove(0);
    store
        .outbox_delivered(
            open_row.clone(),
            false,
            Delivery::Dead {
                error: "HTTP 400: bad queue".into(),
            },
            3_000,
        )
        .await
        .unwrap();
    assert!(
        store.due_outbox(i64::MAX, 10).await.unwrap().is_empty(),
        "the resolve waits"
    );
    let failed = store.list_outbox(true, 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].last_error.as_deref(), Some("HTTP 400: bad queue"));
    assert_eq!(store.retry_outbox(Some(failed[0].id)).await.unwrap(), 1);
    assert_eq!(store.retry_outbox(None).await.unwrap(), 0);
    let due = store.due_outbox(i64::MAX, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].op, "open");
    assert_eq!(due[0].attempts, 0);
    // A try marked sent is remembered (search before create), also across a retry.
    store.outbox_sending(due[0].id, 4_000).await.unwrap();
    assert!(store.due_outbox(i64::MAX, 10).await.unwrap()[0].sent_before);
    let link = TicketLink {
        event_id: id,
        connector: "rt".into(),
        external_id: "5".into(),
        display: "#5".into(),
        correlation_key: format!("steward-{id}"),
        status: "open".into(),
        resolved_at: None,
    };
    store
        .outbox_delivered(due[0].clone(), true, Delivery::Opened(link), 5_000)
        .await
        .unwrap();
    let resolve = store.due_outbox(i64::MAX, 10).await.unwrap().remove(0);
    assert_eq!(resolve.op, "resolve");
    store
        .outbox_delivered(resolve, false, Delivery::Status("resolved"), 6_000)
        .await
        .unwrap();
    // Delivered rows of resolved events are pruned; the ticket id stays for a reopen.
    assert_eq!(
        store.prune_outbox(5_000).await.unwrap(),
        0,
        "not old enough"
    );
    assert_eq!(store.prune_outbox(i64::MAX).await.unwrap(), 2);
    assert!(store.list_outbox(false, 10).await.unwrap().is_empty());
    let key = event_key("filesystem-used", 1, "/var");
    let found = store
        .recent_ticket(key.clone(), "rt".into(), 5_500)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.external_id.as_str(), found.resolved_at),
        ("5", Some(6_000))
    );
    assert!(
        store
            .recent_ticket(key, "rt".into(), 6_001)
            .await
            .unwrap()
            .is_none(),
        "resolved before the window"
    );
}

#[tokio::test]
async fn the_ticket_context_has_the_ci_its_services_and_recent_changes() {
    let (_dir, store) = open();
    ci(&store, 1, "web1").await;
    store
        .create_service("shop".into(), String::new())
        .await
        .unwrap();
    store
        .add_to_service("shop".into(), vec!["web1".into()])
        .await
        .unwrap();
    let id = store
        .apply_event_changes(vec![change("firing", "warning", 60_000, Some(Vec::new()))])
        .await
        .unwrap()[0]
        .unwrap();
    let ctx = store.ticket_context(id, 3_600_000).await.unwrap().unwrap();
    assert_eq!(ctx.ci_name, "web1");
    assert_eq!(
        (ctx.serial.as_str(), ctx.vendor.as_str(), ctx.model.as_str()),
        ("SN-1", "HPE", "DL360")
    );
    assert_eq!(
        (ctx.owner.as_str(), ctx.location.as_str()),
        ("web team", "DC1")
    );
    assert_eq!(ctx.warranty_end, "2030-01-31");
    assert_eq!(ctx.services, ["shop"]);
    assert_eq!(
        ctx.changes,
        [(50_000, "agent".to_string(), "nginx upgraded".to_string())]
    );
    assert_eq!(store.ci_owner(1).await.unwrap(), "web team");
    let narrow = store.ticket_context(id, 5_000).await.unwrap().unwrap();
    assert!(narrow.changes.is_empty(), "older than the window");
}

#[tokio::test]
async fn a_ci_merge_moves_ticket_rows_to_the_ci_their_events_now_belong_to() {
    let (_dir, store) = open();
    ci(&store, 1, "web1").await;
    store
        .inner
        .writer
        .write(|conn| {
            conn.execute(
                "INSERT INTO cis (id, identity_key, name, class, first_seen_at) VALUES (2, 'test:2', 'web1-dup', 'server', 1)",
                [],
            )?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    let id = store
        .apply_event_changes(vec![change(
            "firing",
            "warning",
            1_000,
            Some(vec![dest("rt")]),
        )])
        .await
        .unwrap()[0]
        .unwrap();
    store
        .inner
        .writer
        .write(|conn| super::identify::move_dependents(conn, 1, 2, 2_000))
        .await
        .unwrap();
    let due = store.due_outbox(i64::MAX, 10).await.unwrap();
    assert_eq!(due[0].event_id, id);
    assert_eq!(due[0].event_key, event_key("filesystem-used", 2, "/var"));
}
