//! Event storage tests against a real SQLite file.
#![allow(clippy::unwrap_used)]

use super::*;

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
                "INSERT INTO cis (id, identity_key, name, class, first_seen_at) VALUES (?1, ?2, ?3, 'server', 1)",
                rusqlite::params![id, format!("test:{id}"), name],
            )?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
}

fn change(
    ci_id: i64,
    instance: &str,
    state: &str,
    severity: &str,
    value: f64,
    at: i64,
) -> EventChange {
    EventChange {
        rule: "filesystem-used".into(),
        ci_id,
        instance: instance.into(),
        to_state: state.into(),
        severity: severity.into(),
        value: Some(value),
        threshold: Some(if severity == "critical" { 95.0 } else { 90.0 }),
        at,
        summary: format!("{instance} {value} % used"),
        description: String::new(),
        silenced_by: None,
        symptom_of_ci: None,
        note: String::new(),
        escalate: None,
    }
}

#[tokio::test]
async fn one_event_per_key_carries_its_transitions_until_resolved() {
    let (_dir, store) = open();
    ci(&store, 1, "web1").await;
    let ids = store
        .apply_event_changes(vec![
            change(1, "/var", "pending", "warning", 91.0, 1_000),
            change(1, "/var", "firing", "warning", 92.0, 2_000),
            change(1, "/var", "firing", "warning", 93.0, 3_000),
            change(1, "/var", "firing", "critical", 96.0, 4_000),
            // Another instance is another event.
            change(1, "/srv", "firing", "warning", 90.5, 4_000),
        ])
        .await
        .unwrap();
    assert_eq!(ids[0], ids[3]);
    assert_ne!(ids[0], ids[4]);
    let id = ids[0].unwrap();
    let (event, transitions) = store.event(id).await.unwrap().unwrap();
    assert_eq!(
        (event.state.as_str(), event.severity.as_str()),
        ("firing", "critical")
    );
    assert_eq!(
        (event.first_seen_at, event.last_seen_at, event.count),
        (1_000, 4_000, 1)
    );
    assert_eq!(event.ci_name, "web1");
    // The repeated firing/warning is not a transition.
    let states: Vec<String> = transitions
        .iter()
        .map(|t| format!("{}:{}", t.to_state, t.severity))
        .collect();
    assert_eq!(
        states,
        vec!["pending:warning", "firing:warning", "firing:critical"]
    );

    let acked = store.ack_event(id, "alice".into()).await.unwrap().unwrap();
    assert_eq!(acked.acknowledged_by.as_deref(), Some("alice"));
    assert!(
        store
            .ack_event(999, "alice".into())
            .await
            .unwrap()
            .is_none()
    );

    store
        .apply_event_changes(vec![change(1, "/var", "resolved", "critical", 70.0, 5_000)])
        .await
        .unwrap();
    let (event, transitions) = store.event(id).await.unwrap().unwrap();
    assert_eq!(
        (event.state.as_str(), event.resolved_at),
        ("resolved", Some(5_000))
    );
    assert_eq!(event.resolved_reason.as_deref(), Some("recovered"));
    assert_eq!(transitions.len(), 5, "{transitions:?}");
    // The problem again: a new event; a resolve of nothing open changes nothing.
    let again = store
        .apply_event_changes(vec![
            change(1, "/var", "firing", "warning", 91.0, 6_000),
            change(1, "/tmp", "resolved", "warning", 1.0, 6_000),
        ])
        .await
        .unwrap();
    assert_ne!(again[0], Some(id));
    assert_eq!(again[1], None);
    let firing = store
        .list_events(EventFilter {
            state: Some("firing".into()),
            ci: Some("web1".into()),
            limit: None,
        })
        .await
        .unwrap();
    assert_eq!(firing.len(), 2);
    assert_eq!(store.open_events().await.unwrap().len(), 2);
    // Resolved by hand, with the reason in its transitions.
    let srv = ids[4].unwrap();
    store
        .resolve_event(srv, "disk replaced".into(), "bob".into())
        .await
        .unwrap();
    let (event, transitions) = store.event(srv).await.unwrap().unwrap();
    assert_eq!(event.state, "resolved");
    assert_eq!(
        transitions.last().unwrap().note,
        "resolved by bob: disk replaced"
    );
    store.close();
}

#[tokio::test]
async fn symptoms_point_at_the_root_causes_event_and_silences_are_kept_when_removed() {
    let (_dir, store) = open();
    ci(&store, 1, "sw1").await;
    ci(&store, 2, "web1").await;
    let mut down = change(1, "", "firing", "critical", 1.0, 1_000);
    down.rule = "snmp-unreachable".into();
    let root = store.apply_event_changes(vec![down]).await.unwrap()[0];
    let mut silent = change(2, "", "firing", "warning", 3.0, 2_000);
    silent.rule = "agent-silent".into();
    silent.symptom_of_ci = Some(1);
    silent.silenced_by = Some("symptom of sw1".into());
    let symptom = store.apply_event_changes(vec![silent]).await.unwrap()[0].unwrap();
    let (event, _) = store.event(symptom).await.unwrap().unwrap();
    assert_eq!(event.symptom_of, root);
    assert_eq!(event.silenced_by.as_deref(), Some("symptom of sw1"));
    store
        .escalate_events(vec![(symptom, Vec::new())], 3_000)
        .await
        .unwrap();
    let (event, _) = store.event(symptom).await.unwrap().unwrap();
    assert_eq!((event.escalated_at, event.silenced_by), (Some(3_000), None));

    let id = store
        .add_silence(SilenceRow {
            id: 0,
            kind: "silence".into(),
            matcher: serde_json::json!({ "ci": "web1" }),
            starts_at: Some(1_000),
            ends_at: Some(8_200_000),
            recurrence: String::new(),
            reason: "kernel upgrade".into(),
            created_by: "admin".into(),
            created_at: 1_000,
            removed_at: None,
        })
        .await
        .unwrap();
    assert_eq!(
        store.list_silences(false).await.unwrap()[0].matcher["ci"],
        "web1"
    );
    assert!(store.remove_silence(id).await.unwrap());
    assert!(!store.remove_silence(id).await.unwrap());
    assert!(store.list_silences(false).await.unwrap().is_empty());
    assert_eq!(
        store.list_silences(true).await.unwrap()[0].reason,
        "kernel upgrade"
    );
    store.close();
}

#[tokio::test]
async fn the_rules_context_has_services_upstreams_and_each_agents_last_report() {
    let (_dir, store) = open();
    super::tests::enroll_named(&store, "a1", "m-web1", "web1").await;
    store
        .ingest(super::tests::report("a1", 1, "m-web1", "web1", 1_000))
        .await
        .unwrap();
    store
        .ingest(super::tests::report("a1", 2, "m-web1", "web1", 2_000))
        .await
        .unwrap();
    let web1 = store
        .find_ci("web1".into())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .ci
        .id;
    ci(&store, 100, "hv1").await;
    ci(&store, 101, "sw1").await;
    store
        .inner
        .writer
        .write(move |conn| {
            conn.execute("UPDATE cis SET class = 'network_device' WHERE id = 101", [])?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    store
        .create_service("shop".into(), String::new())
        .await
        .unwrap();
    store
        .add_to_service("shop".into(), vec!["web1".into()])
        .await
        .unwrap();
    store
        .relate("web1".into(), "runs_on".into(), "hv1".into())
        .await
        .unwrap();
    store
        .relate("sw1".into(), "connected_to".into(), "web1".into())
        .await
        .unwrap();
    store
        .tag("web1".into(), "prod".into(), false)
        .await
        .unwrap();

    let context = store.rules_context().await.unwrap();
    let row = context.cis.iter().find(|c| c.0 == web1).unwrap();
    assert_eq!(
        (row.2.as_str(), row.3.clone()),
        ("server", vec!["prod".to_string()])
    );
    // The service depends on web1 and, through it, on the host it runs on.
    assert_eq!(context.services[&web1], vec!["shop"]);
    assert_eq!(context.services[&100], vec!["shop"]);
    let mut up = context.upstream[&web1].clone();
    up.sort_unstable();
    assert_eq!(
        up,
        vec![100, 101],
        "reached through its hypervisor and its switch"
    );
    let reports = store.latest_agent_reports().await.unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].0, web1);
    store.close();
}

#[tokio::test]
async fn merging_a_ci_moves_its_events_samples_links_and_guests() {
    let (_dir, store) = open();
    ci(&store, 1, "old").await;
    ci(&store, 2, "new").await;
    ci(&store, 3, "sw1").await;
    let mut both = change(2, "/var", "firing", "warning", 91.0, 1_000);
    both.rule = "filesystem-full".into();
    let mut only_old = change(1, "/srv", "firing", "warning", 92.0, 1_000);
    only_old.rule = "filesystem-full".into();
    let mut dup = change(1, "/var", "firing", "warning", 93.0, 1_000);
    dup.rule = "filesystem-full".into();
    store
        .apply_event_changes(vec![both, only_old, dup])
        .await
        .unwrap();
    store
        .inner
        .writer
        .write(|conn| {
            conn.execute_batch(
                "INSERT INTO device_samples (ci_id, at, body) VALUES (1, 1, '{}');
                 INSERT INTO ci_links VALUES (1, 'aa:bb', 3, 'Gi1/0/1', 'fdb', 3, 1);
                 INSERT INTO ci_guests VALUES (1, 'uuid-1', 'vm1');",
            )?;
            super::identify::move_dependents(conn, 1, 2, 5_000)?;
            conn.execute("DELETE FROM cis WHERE id = 1", [])?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    let events = store
        .list_events(EventFilter {
            ci: Some("new".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut seen: Vec<(String, String)> = events
        .iter()
        .map(|e| (e.instance.clone(), e.state.clone()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("/srv".to_string(), "firing".to_string()),
            ("/var".to_string(), "firing".to_string()),
            ("/var".to_string(), "resolved".to_string()),
        ]
    );
    assert_eq!(store.device_samples(2, 10).await.unwrap().len(), 1);
    assert_eq!(store.ci_links(2).await.unwrap().len(), 1);
    // A late change for the merged-away CI is dropped, and the rest of its batch is kept.
    let ids = store
        .apply_event_changes(vec![
            change(1, "/srv", "resolved", "warning", 10.0, 6_000),
            change(2, "/home", "firing", "warning", 95.5, 6_000),
        ])
        .await
        .unwrap();
    assert_eq!(ids[0], None);
    assert!(ids[1].is_some());
    store.close();
}
