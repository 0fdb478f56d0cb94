//! Store tests against a real SQLite file in a temporary directory.
#![allow(clippy::unwrap_used)]

use steward_shared::v1::HostIdentity;

use super::*;

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("test.db"), 64, 4096).unwrap();
    (dir, store)
}

async fn enroll(store: &Store, id: &str, machine_id: &str) {
    enroll_named(store, id, machine_id, &format!("host-{id}")).await;
}

/// Enrolls agent `id` (a one-use token spent on it) with its host's machine-id and hostname.
pub(super) async fn enroll_named(store: &Store, id: &str, machine_id: &str, hostname: &str) {
    let hash = crate::sha256_hex(id.as_bytes());
    store
        .create_enroll_token(hash.clone(), crate::now_ms() + 60_000, 1)
        .await
        .unwrap();
    let agent = NewAgent {
        id: id.into(),
        hostname: hostname.into(),
        machine_id: machine_id.into(),
    };
    store
        .enroll_agent(hash, agent, |_| Ok(("CERT".into(), "01".into(), 0)))
        .await
        .unwrap();
}

pub(super) fn report(
    agent: &str,
    seq: u64,
    machine_id: &str,
    hostname: &str,
    collected_at: i64,
) -> ReportRecord {
    ReportRecord {
        agent_id: agent.into(),
        seq,
        version: 1,
        collected_at,
        host: HostIdentity {
            hostname: hostname.into(),
            machine_id: machine_id.into(),
            ..Default::default()
        },
        content: ReportContent::Metrics(
            postcard::to_stdvec(&steward_shared::v1::MetricsReport {
                host: HostIdentity::default(),
                metrics: steward_shared::v1::Metrics {
                    collected_at_ms: collected_at,
                    ..Default::default()
                },
            })
            .unwrap(),
        ),
        spool: None,
        cert_serial: None,
    }
}

#[tokio::test]
async fn a_repeated_sequence_number_is_stored_once() {
    let (_dir, store) = open();
    enroll(&store, "a-1", "m1").await;
    assert!(matches!(
        store
            .ingest(report("a-1", 7, "m1", "web", 1000))
            .await
            .unwrap(),
        IngestOutcome::Stored { .. }
    ));
    assert_eq!(
        store
            .ingest(report("a-1", 7, "m1", "web", 1000))
            .await
            .unwrap(),
        IngestOutcome::Duplicate
    );
    let detail = store.find_ci("web".into()).await.unwrap().unwrap().unwrap();
    assert_eq!(detail.reports_stored, 1);
    assert_eq!(detail.agents, vec!["a-1".to_string()]);
}

#[tokio::test]
async fn each_agent_counts_its_reports_and_keeps_the_spool_figures_it_sent() {
    let (_dir, store) = open();
    enroll(&store, "a-1", "m1").await;
    let spooled = SpoolStats {
        backlog: 40,
        bytes: 52_000,
        oldest_at: Some(900),
        dropped: 3,
    };
    // Delivered out of order, as a spool drains beside fresh reports; one repeated.
    for (seq, spool) in [
        (20, Some(spooled)),
        (11, Some(spooled)),
        (11, None),
        (12, None),
    ] {
        let mut record = report("a-1", seq, "m1", "web", 1000);
        record.spool = spool;
        store.ingest(record).await.unwrap();
    }
    let agents = store.list_agents().await.unwrap();
    let agent = &agents[0];
    assert_eq!(agent.reports_received, 3, "the repeat is not counted");
    assert_eq!(agent.last_seq, Some(20), "the highest, not the latest");
    assert!(agent.last_seen_at.is_some());
    // The last reports carried no figures (`run --once`): the last figures stay.
    assert_eq!(agent.spool, spooled);
    let mut record = report("a-1", 21, "m1", "web", 1000);
    record.spool = Some(SpoolStats {
        backlog: 5,
        dropped: 2,
        ..spooled
    });
    store.ingest(record).await.unwrap();
    let agent = &store.list_agents().await.unwrap()[0];
    assert_eq!(agent.spool.backlog, 5);
    assert_eq!(agent.spool.oldest_at, Some(900));
    assert_eq!(agent.spool.dropped, 3, "the drops never go down");
    assert_eq!(agent.reports_received, 4);
}

#[tokio::test]
async fn after_a_renewal_the_replaced_certificate_works_until_the_new_one_is_used() {
    let (_dir, store) = open();
    enroll(&store, "a-1", "m1").await; // its certificate has serial 01
    let with = |seq: u64, serial: &str| {
        let mut record = report("a-1", seq, "m1", "web", 1000);
        record.cert_serial = Some(serial.into());
        record
    };
    store.ingest(with(1, "01")).await.unwrap();
    assert!(matches!(
        store.ingest(with(2, "77")).await,
        Err(IngestRejection::Superseded(_))
    ));
    let sign = |serial: &'static str| move || Ok(("PEM".to_string(), serial.to_string(), 5));
    // Renewed with 01 → 02; 01 is still accepted (the agent may not have stored 02 yet), and
    // may renew again (→ 03) if the answer was lost.
    store
        .renew_agent("a-1".into(), "01".into(), sign("02"))
        .await
        .unwrap();
    store.ingest(with(3, "01")).await.unwrap();
    store
        .renew_agent("a-1".into(), "01".into(), sign("03"))
        .await
        .unwrap();
    // 02 was never used: it is neither current nor previous now.
    assert!(matches!(
        store.ingest(with(4, "02")).await,
        Err(IngestRejection::Superseded(_))
    ));
    // The first report with 03 retires 01 for good.
    store.ingest(with(5, "0003")).await.unwrap();
    assert!(matches!(
        store.ingest(with(6, "01")).await,
        Err(IngestRejection::Superseded(_))
    ));
    assert!(matches!(
        store
            .renew_agent("a-1".into(), "01".into(), sign("04"))
            .await,
        Err(RenewError::Superseded(_))
    ));
    let agent = &store.list_agents().await.unwrap()[0];
    assert_eq!(agent.cert_serial, "03");
    assert_eq!(agent.cert_expires_at, Some(5));
    assert!(agent.cert_renewed_at.is_some());
    // Revoked: no renewal at all.
    store.revoke_agent("a-1".into()).await.unwrap();
    assert!(matches!(
        store
            .renew_agent("a-1".into(), "03".into(), sign("05"))
            .await,
        Err(RenewError::Revoked(_))
    ));
}

#[tokio::test]
async fn unknown_and_revoked_agents_are_refused_and_nothing_is_written() {
    let (_dir, store) = open();
    assert!(matches!(
        store.ingest(report("a-x", 1, "m", "h", 1)).await,
        Err(IngestRejection::UnknownAgent(_))
    ));
    enroll(&store, "a-2", "m2").await;
    assert!(store.revoke_agent("a-2".into()).await.unwrap());
    assert!(!store.revoke_agent("a-nope".into()).await.unwrap());
    assert!(matches!(
        store.ingest(report("a-2", 1, "m2", "h", 1)).await,
        Err(IngestRejection::Revoked(_))
    ));
    assert!(store.list_cis().await.unwrap().is_empty());
}

#[tokio::test]
async fn tokens_are_spent_exactly_and_expire() {
    let (_dir, store) = open();
    let hash = crate::sha256_hex(b"two-uses");
    store
        .create_enroll_token(hash.clone(), crate::now_ms() + 60_000, 2)
        .await
        .unwrap();
    let agent = |id: &str| NewAgent {
        id: id.into(),
        hostname: "h".into(),
        machine_id: String::new(),
    };
    let sign = |_: &str| Ok(("CERT".to_string(), "01".to_string(), 0));
    store
        .enroll_agent(hash.clone(), agent("a-1"), sign)
        .await
        .unwrap();
    store
        .enroll_agent(hash.clone(), agent("a-2"), sign)
        .await
        .unwrap();
    assert!(matches!(
        store.enroll_agent(hash, agent("a-3"), sign).await,
        Err(EnrollError::UsedUp)
    ));

    let expired = crate::sha256_hex(b"expired");
    store
        .create_enroll_token(expired.clone(), crate::now_ms() - 1, 1)
        .await
        .unwrap();
    assert!(matches!(
        store.enroll_agent(expired, agent("a-4"), sign).await,
        Err(EnrollError::Expired)
    ));
    assert!(matches!(
        store
            .enroll_agent(crate::sha256_hex(b"never"), agent("a-5"), sign)
            .await,
        Err(EnrollError::UnknownToken)
    ));
    assert_eq!(store.list_agents().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_failed_signing_spends_no_token_use() {
    let (_dir, store) = open();
    let hash = crate::sha256_hex(b"t");
    store
        .create_enroll_token(hash.clone(), crate::now_ms() + 60_000, 1)
        .await
        .unwrap();
    let agent = NewAgent {
        id: "a-1".into(),
        hostname: "h".into(),
        machine_id: String::new(),
    };
    let failed = store
        .enroll_agent(hash.clone(), agent.clone(), |_| Err("bad csr".into()))
        .await;
    assert!(matches!(failed, Err(EnrollError::Signing(_))));
    store
        .enroll_agent(hash, agent, |_| Ok(("C".into(), "01".into(), 0)))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_older_report_arriving_late_does_not_roll_the_ci_back() {
    let (_dir, store) = open();
    enroll(&store, "a-1", "m1").await;
    store
        .ingest(report("a-1", 2, "m1", "new-name", 2000))
        .await
        .unwrap();
    store
        .ingest(report("a-1", 1, "m1", "old-name", 1000))
        .await
        .unwrap();
    let cis = store.list_cis().await.unwrap();
    assert_eq!(cis.len(), 1);
    assert_eq!(cis[0].name, "new-name");
    assert_eq!(cis[0].latest_at, Some(2000));
}

#[tokio::test]
async fn one_ci_per_machine_id_and_same_hostname_is_ambiguous() {
    let (_dir, store) = open();
    enroll(&store, "a-1", "m1").await;
    enroll(&store, "a-2", "m2").await;
    store
        .ingest(report("a-1", 1, "m1", "web", 1))
        .await
        .unwrap();
    store
        .ingest(report("a-2", 1, "m2", "web", 1))
        .await
        .unwrap();
    assert_eq!(store.list_cis().await.unwrap().len(), 2);
    let ids = store.find_ci("web".into()).await.unwrap().unwrap_err();
    assert_eq!(ids.len(), 2);
    assert!(
        store
            .find_ci("no-such".into())
            .await
            .unwrap()
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reports_are_batched_and_all_acknowledged_after_commit() {
    let (dir, store) = open();
    for i in 0..20 {
        enroll(&store, &format!("a-{i}"), &format!("m{i}")).await;
    }
    let mut tasks = Vec::new();
    for i in 0..20 {
        for seq in 1..=25u64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .ingest(report(
                        &format!("a-{i}"),
                        seq,
                        &format!("m{i}"),
                        &format!("h{i}"),
                        seq as i64,
                    ))
                    .await
            }));
        }
    }
    for task in tasks {
        assert!(matches!(
            task.await.unwrap().unwrap(),
            IngestOutcome::Stored { .. }
        ));
    }
    store.close();
    // Everything acknowledged is in the file, as a fresh connection sees it.
    let conn = rusqlite::Connection::open(dir.path().join("test.db")).unwrap();
    let count: i64 = conn
        .query_row("SELECT COUNT(*) FROM reports", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 500);
}

#[tokio::test]
async fn pruning_removes_only_old_reports() {
    let (_dir, store) = open();
    enroll(&store, "a-1", "m1").await;
    store.ingest(report("a-1", 1, "m1", "h", 1)).await.unwrap();
    store.ingest(report("a-1", 2, "m1", "h", 2)).await.unwrap();
    assert_eq!(store.prune_reports(0).await.unwrap(), 0);
    assert_eq!(store.prune_reports(crate::now_ms() + 1).await.unwrap(), 1);
    // The CI and its newest report, the last known metrics, stay.
    let detail = store.find_ci("h".into()).await.unwrap().unwrap().unwrap();
    assert_eq!(detail.reports_stored, 1);
    assert_eq!(detail.ci.latest_at, Some(2));
    assert!(detail.metrics.is_some());
}

#[test]
fn reopening_keeps_data_and_migrates_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    for _ in 0..2 {
        let store = Store::open(&path, 8, 8).unwrap();
        store.close();
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let versions: i64 = conn
        .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(versions, schema::SCHEMA_VERSION);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn a_version_2_database_keeps_its_agents_and_reports_through_migration_3() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        schema::migrate_to(&mut conn, &path, 2).unwrap();
        conn.execute_batch(
            "INSERT INTO cis (id, identity_key, name, class, first_seen_at) VALUES (7, 'machine-id:m1', 'web1', 'server', 1);
             INSERT INTO agents (id, hostname, machine_id, cert_serial, enrolled_at, ci_id) VALUES ('a1', 'web1', 'm1', '01', 1, 7);
             INSERT INTO agents (id, hostname, machine_id, cert_serial, enrolled_at, revoked_at) VALUES ('a2', 'db1', 'm2', '02', 2, 3);
             INSERT INTO reports (agent_id, seq, ci_id, collected_at, received_at, version, body) VALUES ('a1', 10, 7, 100, 101, 1, x'00');
             INSERT INTO reports (agent_id, seq, ci_id, collected_at, received_at, version, body) VALUES ('a1', 11, 7, 200, 201, 1, x'01');",
        )
        .unwrap();
    }
    let store = Store::open(&path, 8, 8).unwrap();
    let agents = store.list_agents().await.unwrap();
    let a1 = agents.iter().find(|a| a.id == "a1").unwrap();
    assert_eq!(
        (a1.last_seq, a1.last_seen_at, a1.ci_id),
        (Some(11), Some(201), Some(7))
    );
    let a2 = agents.iter().find(|a| a.id == "a2").unwrap();
    assert_eq!(a2.revoked_at, Some(3));
    let cis = store.list_cis().await.unwrap();
    assert_eq!((cis[0].latest_at, cis[0].last_seen_at), (Some(200), 201));
    // The migrated uniqueness still holds: seq 11 again is a duplicate.
    let outcome = store
        .ingest(report("a1", 11, "m1", "web1", 300))
        .await
        .unwrap();
    assert_eq!(outcome, IngestOutcome::Duplicate);
    store.close();
}

#[test]
fn a_database_from_a_newer_collector_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    Store::open(&path, 8, 8).unwrap().close();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("INSERT INTO schema_migrations VALUES (999, 0)", [])
        .unwrap();
    drop(conn);
    let error = Store::open(&path, 8, 8).unwrap_err().to_string();
    assert!(
        error.contains("999") && error.contains("upgrade"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_write_queue_refuses_ingest_and_stores_only_what_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("test.db"), 1, 1).unwrap();
    enroll(&store, "a-1", "m1").await;
    let mut tasks = Vec::new();
    for seq in 1..=300u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .ingest(report("a-1", seq, "m1", "h", seq as i64))
                .await
        }));
    }
    let (mut stored, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(IngestOutcome::Stored { .. }) => stored += 1,
            Err(IngestRejection::Store(StoreError::Overloaded)) => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        refused > 0,
        "a queue of one must overflow under 300 concurrent reports"
    );
    assert_eq!(stored + refused, 300);
    // Enrollment and admin writes wait for room instead of failing.
    store.revoke_agent("a-1".into()).await.unwrap();
    store.close();
    let conn = rusqlite::Connection::open(dir.path().join("test.db")).unwrap();
    let count: i64 = conn
        .query_row("SELECT COUNT(*) FROM reports", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, stored, "exactly the acknowledged reports are stored");
}

#[tokio::test]
async fn regression_a_report_claiming_another_hosts_machine_id_cannot_take_over_its_ci() {
    // An agent used to be able to rename and overwrite any host's CI by sending that host's
    // machine-id in its reports.
    let (_dir, store) = open();
    enroll(&store, "a-1", "m1").await;
    enroll(&store, "a-2", "m2").await;
    store
        .ingest(report("a-1", 1, "m1", "web", 1))
        .await
        .unwrap();
    store
        .ingest(report("a-2", 1, "m1", "evil-host", 2))
        .await
        .unwrap();
    let names: Vec<String> = store
        .list_cis()
        .await
        .unwrap()
        .into_iter()
        .map(|ci| ci.name)
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"web".to_string()), "{names:?}");
    let web = store.find_ci("web".into()).await.unwrap().unwrap().unwrap();
    assert_eq!(web.ci.machine_id, "m1");
    assert_eq!(web.agents, vec!["a-1".to_string()]);
}

#[tokio::test]
async fn regression_a_clock_far_ahead_does_not_freeze_the_latest_metrics() {
    let (_dir, store) = open();
    enroll(&store, "a-1", "m1").await;
    let far_future = crate::now_ms() + 365 * 86_400_000;
    store
        .ingest(report("a-1", 1, "m1", "old-name", far_future))
        .await
        .unwrap();
    store
        .ingest(report(
            "a-1",
            2,
            "m1",
            "new-name",
            crate::now_ms() + 600_000,
        ))
        .await
        .unwrap();
    assert_eq!(store.list_cis().await.unwrap()[0].name, "new-name");
}
