//! The event service against a real SQLite store, driven by a manual clock: events recorded
//! with their transitions, silences holding back escalation until they end, symptoms of a
//! root cause, and open events surviving a restart without a duplicate.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use steward_collector::events::EventService;
use steward_collector::rules::{ManualClock, Metric, RuleSet, Sample};
use steward_collector::store::{
    DevicePoll, EventFilter, EventRow, NewAgent, NewSnmpTarget, ReportContent, ReportRecord,
    SilenceRow, Store,
};
use steward_shared::v1::HostIdentity;

async fn store_with_cis(dir: &std::path::Path) -> (Store, i64, i64) {
    let store = Store::open(&dir.join("test.db"), 64, 4096).unwrap();
    // web1: a server, from an enrolled agent's report.
    let hash = steward_collector::sha256_hex(b"token");
    store
        .create_enroll_token(hash.clone(), i64::MAX, 1)
        .await
        .unwrap();
    store
        .enroll_agent(
            hash,
            NewAgent {
                id: "a1".into(),
                hostname: "web1".into(),
                machine_id: "m1".into(),
            },
            |_| Ok(("CERT".into(), "01".into(), 0)),
        )
        .await
        .unwrap();
    let report = steward_shared::v1::MetricsReport {
        host: HostIdentity {
            hostname: "web1".into(),
            machine_id: "m1".into(),
            ..Default::default()
        },
        metrics: steward_shared::v1::Metrics {
            collected_at_ms: 1_000,
            ..Default::default()
        },
    };
    store
        .ingest(ReportRecord {
            agent_id: "a1".into(),
            seq: 1,
            version: 1,
            collected_at: 1_000,
            host: report.host.clone(),
            content: ReportContent::Metrics(postcard::to_stdvec(&report).unwrap()),
            spool: None,
            cert_serial: None,
        })
        .await
        .unwrap();
    // sw1: a network device, from an SNMP poll.
    let target = store
        .add_snmp_target(
            NewSnmpTarget {
                host: "10.0.0.1".into(),
                port: 161,
                version: "v2c".into(),
                user: String::new(),
                sealed: vec![0],
                interval_secs: 60,
                origin: "admin".into(),
            },
            false,
        )
        .await
        .unwrap()
        .unwrap();
    let sw1 = store
        .record_device_poll(
            target,
            DevicePoll {
                at: 1_000,
                sys_name: "sw1".into(),
                ..Default::default()
            },
            Default::default(),
        )
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
    (store, web1, sw1)
}

fn fs(value: f64) -> Vec<Sample> {
    vec![Sample::new(Metric::FilesystemUsedPct, "/var", value)]
}

/// Silences web1 from `from` to `until` (ms).
async fn silence_web1(store: &Store, from: i64, until: i64, reason: &str) {
    store
        .add_silence(SilenceRow {
            id: 0,
            kind: "silence".into(),
            matcher: serde_json::json!({ "ci": "web1" }),
            starts_at: Some(from),
            ends_at: Some(until),
            recurrence: String::new(),
            reason: reason.into(),
            created_by: "admin".into(),
            created_at: from,
            removed_at: None,
        })
        .await
        .unwrap();
}

async fn events(store: &Store) -> Vec<EventRow> {
    store.list_events(EventFilter::default()).await.unwrap()
}

#[tokio::test]
async fn events_are_recorded_escalated_after_a_silence_and_restored_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (store, web1, _) = store_with_cis(dir.path()).await;
    let t0 = steward_collector::now_ms();
    let clock = Arc::new(ManualClock::new(t0));
    let (service, task) = EventService::start(
        store.clone(),
        RuleSet::with_defaults(),
        None,
        clock.clone(),
        Default::default(),
    )
    .await
    .unwrap();

    // A silence on web1 for an hour: the event is recorded but not escalated.
    silence_web1(&store, t0, t0 + 3_600_000, "disk migration").await;
    service.silences_changed().await;
    service.metrics(web1, fs(91.0), 60);
    service.flush().await;
    let open = events(&store).await;
    assert_eq!(open.len(), 1, "{open:?}");
    let event = &open[0];
    assert_eq!(
        (
            event.rule.as_str(),
            event.state.as_str(),
            event.severity.as_str()
        ),
        ("filesystem-full", "firing", "warning")
    );
    assert_eq!(
        event.silenced_by.as_deref(),
        Some("silenced: disk migration")
    );
    assert_eq!(event.escalated_at, None);

    // Worse within the same event: critical, still one event.
    clock.advance_secs(60);
    service.metrics(web1, fs(96.0), 60);
    service.flush().await;
    let open = events(&store).await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].severity, "critical");

    // The silence ends with the event still firing: it escalates then.
    clock.advance_secs(3_600);
    service.metrics(web1, fs(96.0), 60);
    service.tick_now().await;
    let event = &events(&store).await[0];
    assert!(event.escalated_at.is_some(), "{event:?}");
    assert_eq!(event.silenced_by, None);

    // A restart: the open event is restored, and the same problem is not a second event.
    service.flush().await;
    task.abort();
    let (service, task) = EventService::start(
        store.clone(),
        RuleSet::with_defaults(),
        None,
        clock.clone(),
        Default::default(),
    )
    .await
    .unwrap();
    clock.advance_secs(60);
    service.metrics(web1, fs(97.0), 60);
    service.flush().await;
    let all = events(&store).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].state, "firing");

    // 89 %: below warning, so back to warning severity, but above the recovery line (88 %), so
    // still firing (hysteresis); 70 % resolves it.
    clock.advance_secs(60);
    service.metrics(web1, fs(89.0), 60);
    service.flush().await;
    assert_eq!(
        events(&store).await[0].state,
        "firing",
        "between recovery and threshold"
    );
    clock.advance_secs(60);
    service.metrics(web1, fs(70.0), 60);
    service.flush().await;
    let event = &events(&store).await[0];
    assert_eq!(event.state, "resolved");
    let (_, transitions) = store.event(event.id).await.unwrap().unwrap();
    let path: Vec<String> = transitions
        .iter()
        .map(|t| format!("{}:{}", t.to_state, t.severity))
        .collect();
    assert_eq!(
        path,
        vec![
            "firing:warning",
            "firing:critical",
            "firing:warning",
            "resolved:warning"
        ],
        "{transitions:?}"
    );
    task.abort();
    store.close();
}

#[tokio::test]
async fn a_host_behind_an_unreachable_switch_is_a_symptom_not_a_second_escalation() {
    let dir = tempfile::tempdir().unwrap();
    let (store, web1, sw1) = store_with_cis(dir.path()).await;
    store
        .relate("web1".into(), "connected_to".into(), "sw1".into())
        .await
        .unwrap();
    let t0 = steward_collector::now_ms();
    let clock = Arc::new(ManualClock::new(t0));
    let (service, task) = EventService::start(
        store.clone(),
        RuleSet::with_defaults(),
        None,
        clock.clone(),
        Default::default(),
    )
    .await
    .unwrap();
    // web1 reports, then both go quiet: the switch stops answering SNMP.
    service.metrics(web1, Vec::new(), 60);
    service.flush().await;
    clock.advance_secs(60);
    service.unreachable(sw1);
    service.flush().await;
    clock.advance_secs(200);
    service.tick_now().await;
    let all = events(&store).await;
    let switch = all.iter().find(|e| e.rule == "snmp-unreachable").unwrap();
    let host = all.iter().find(|e| e.rule == "agent-silent").unwrap();
    assert!(
        switch.escalated_at.is_some() && switch.symptom_of.is_none(),
        "{switch:?}"
    );
    assert_eq!(host.symptom_of, Some(switch.id), "{host:?}");
    assert_eq!(host.silenced_by.as_deref(), Some("symptom of sw1"));
    assert_eq!(host.escalated_at, None);
    // The switch answers again, web1 still silent: now its own problem, escalated.
    service.device(sw1, &serde_json::json!({}));
    service.flush().await;
    clock.advance_secs(5);
    service.tick_now().await;
    let all = events(&store).await;
    let host = all.iter().find(|e| e.rule == "agent-silent").unwrap();
    assert!(host.escalated_at.is_some(), "{host:?}");
    task.abort();
    store.close();
}

#[tokio::test]
async fn a_denied_package_already_installed_raises_its_event_when_the_collector_starts() {
    let dir = tempfile::tempdir().unwrap();
    let (store, web1, _) = store_with_cis(dir.path()).await;
    let inventory = steward_shared::v1::Inventory {
        software: ["bash", "telnetd", "openssl"]
            .into_iter()
            .map(|name| steward_shared::v1::SoftwarePackage {
                name: name.into(),
                version: "1".into(),
                source: "dpkg".into(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    store
        .ingest(ReportRecord {
            agent_id: "a1".into(),
            seq: 2,
            version: 1,
            collected_at: 2_000,
            host: HostIdentity {
                hostname: "web1".into(),
                machine_id: "m1".into(),
                ..Default::default()
            },
            content: ReportContent::Inventory(steward_collector::store::InventoryRecord {
                content_hash: "h1".into(),
                inventory: Some(Box::new(inventory)),
            }),
            spool: None,
            cert_serial: None,
        })
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new(steward_collector::now_ms()));
    let (service, task) = EventService::start(
        store.clone(),
        RuleSet::with_defaults(),
        None,
        clock.clone(),
        Default::default(),
    )
    .await
    .unwrap();
    service.flush().await;
    let denied: Vec<EventRow> = events(&store)
        .await
        .into_iter()
        .filter(|e| e.rule == "software-denied")
        .collect();
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(
        (
            denied[0].ci_id,
            denied[0].instance.as_str(),
            denied[0].state.as_str()
        ),
        (web1, "telnetd", "firing")
    );
    // Removed from the host: its next inventory resolves the event.
    service.software(web1, vec!["bash".into(), "openssl".into()]);
    service.flush().await;
    let denied: Vec<EventRow> = events(&store)
        .await
        .into_iter()
        .filter(|e| e.rule == "software-denied")
        .collect();
    assert_eq!(denied[0].state, "resolved");
    task.abort();
    store.close();
}

fn connectors(names: &[&str]) -> Vec<steward_collector::tickets::ConnectorConfig> {
    names
        .iter()
        .map(|name| {
            toml::from_str(&format!(
                "name = \"{name}\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9\"\nsecret_file = \"/x\"\n"
            ))
            .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn escalation_queues_tickets_where_the_routes_send_them_and_not_while_silenced() {
    use steward_collector::tickets::RouteConfig;
    use steward_collector::tickets::route::Routes;
    let dir = tempfile::tempdir().unwrap();
    let (store, web1, sw1) = store_with_cis(dir.path()).await;
    let t0 = steward_collector::now_ms();
    let clock = Arc::new(ManualClock::new(t0));
    let routes = Routes::new(
        &connectors(&["servers", "network"]),
        &[
            RouteConfig {
                connector: "network".into(),
                queue: Some("NOC".into()),
                classes: vec!["network_device".into()],
                ..RouteConfig::default()
            },
            RouteConfig {
                connector: "servers".into(),
                classes: vec!["server".into(), "workstation".into()],
                ..RouteConfig::default()
            },
        ],
    );
    let (service, task) = EventService::start(
        store.clone(),
        RuleSet::with_defaults(),
        None,
        clock.clone(),
        Arc::new(routes),
    )
    .await
    .unwrap();
    silence_web1(&store, t0, t0 + 600_000, "patching").await;
    service.silences_changed().await;
    service.metrics(web1, fs(96.0), 60);
    service.flush().await;
    assert!(
        store.list_outbox(false, 10).await.unwrap().is_empty(),
        "silenced: nothing for the service desk"
    );
    // The silence ends with the problem still there: the ticket is queued then, once.
    clock.advance_secs(660);
    service.metrics(web1, fs(96.0), 60);
    service.tick_now().await;
    service.tick_now().await;
    let rows = store.list_outbox(false, 10).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0].connector.as_str(), rows[0].op.as_str()),
        ("servers", "open")
    );
    // The device goes unreachable: its event goes to the network desk's queue.
    service.unreachable(sw1);
    service.flush().await;
    for _ in 0..3 {
        clock.advance_secs(120);
        service.unreachable(sw1);
        service.tick_now().await;
    }
    let rows = store.list_outbox(false, 10).await.unwrap();
    let network: Vec<_> = rows.iter().filter(|r| r.connector == "network").collect();
    assert_eq!(network.len(), 1, "{rows:?}");
    assert_eq!(network[0].ci_name, "sw1");
    assert_eq!(
        store
            .due_outbox(i64::MAX, 10)
            .await
            .unwrap()
            .iter()
            .find(|i| i.connector == "network")
            .unwrap()
            .queue,
        "NOC"
    );
    // Recovery resolves web1's ticket.
    clock.advance_secs(60);
    service.metrics(web1, fs(50.0), 60);
    service.flush().await;
    let ops: Vec<String> = store
        .list_outbox(false, 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.connector == "servers" && r.rule == "filesystem-full")
        .map(|r| r.op)
        .collect();
    assert_eq!(ops, ["resolve", "open"]);
    task.abort();
    store.close();
}
