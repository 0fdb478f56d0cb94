//! Inventory storage tests against a real SQLite file.
#![allow(clippy::unwrap_used)]

use steward_shared::v1::{
    AssetInfo, Hardware, HostIdentity, Inventory, SoftwarePackage, SystemInfo,
};

use super::*;
use crate::inventory::assets::{self, AssetImport};

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("test.db"), 64, 4096).unwrap();
    (dir, store)
}

async fn enroll(store: &Store, id: &str, machine_id: &str, hostname: &str) {
    super::tests::enroll_named(store, id, machine_id, hostname).await;
}

fn package(name: &str, version: &str, source: &str) -> SoftwarePackage {
    SoftwarePackage {
        name: name.into(),
        version: version.into(),
        arch: "amd64".into(),
        source: source.into(),
        ..Default::default()
    }
}

fn inventory(serial: &str, packages: Vec<SoftwarePackage>) -> Inventory {
    Inventory {
        hardware: Hardware {
            system: SystemInfo {
                vendor: "Dell Inc.".into(),
                product: "PowerEdge R650".into(),
                serial: serial.into(),
                uuid: "4c4c4544-0042-3510-8052-b7c04f4e3232".into(),
                ..Default::default()
            },
            ..Default::default()
        },
        software: packages,
        ..Default::default()
    }
}

fn record(
    agent: &str,
    seq: u64,
    hostname: &str,
    collected_at: i64,
    hash: &str,
    content: Option<Inventory>,
) -> ReportRecord {
    ReportRecord {
        agent_id: agent.into(),
        seq,
        version: 1,
        collected_at,
        host: HostIdentity {
            hostname: hostname.into(),
            machine_id: format!("m-{hostname}"),
            ..Default::default()
        },
        content: ReportContent::Inventory(InventoryRecord {
            content_hash: hash.into(),
            inventory: content.map(Box::new),
        }),
        spool: None,
        cert_serial: None,
    }
}

fn wanted(outcome: IngestOutcome) -> bool {
    match outcome {
        IngestOutcome::Stored {
            inventory_wanted, ..
        } => inventory_wanted,
        IngestOutcome::Duplicate => panic!("unexpected duplicate"),
    }
}

#[tokio::test]
async fn a_full_inventory_is_stored_and_an_unchanged_marker_only_confirms_it() {
    let (_dir, store) = open();
    enroll(&store, "a1", "m-web1", "web1").await;
    let first = inventory("CZ1", vec![package("openssl", "3.0.11-1~deb12u2", "dpkg")]);
    let outcome = store
        .ingest(record("a1", 1, "web1", 1_000, "h1", Some(first.clone())))
        .await
        .unwrap();
    assert!(!wanted(outcome));
    // Unchanged, same hash: confirmed, nothing wanted.
    let outcome = store
        .ingest(record("a1", 2, "web1", 2_000, "h1", None))
        .await
        .unwrap();
    assert!(!wanted(outcome));
    // A marker for content this collector never got: ask for the full inventory.
    let outcome = store
        .ingest(record("a1", 3, "web1", 3_000, "h-unknown", None))
        .await
        .unwrap();
    assert!(wanted(outcome));
    // The same report again is a duplicate, not a second inventory.
    let again = store
        .ingest(record("a1", 1, "web1", 1_000, "h1", Some(first.clone())))
        .await
        .unwrap();
    assert_eq!(again, IngestOutcome::Duplicate);

    let detail = store
        .find_ci("web1".into())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let inv = detail.inventory.unwrap();
    assert_eq!(inv.inventory, first);
    assert_eq!(inv.content_hash, "h1");
    assert_eq!(inv.collected_at, 1_000);
    assert!(inv.confirmed_at >= inv.collected_at);
    assert_eq!(detail.history.len(), 1, "{:?}", detail.history);
    assert!(detail.history[0].summary.contains("1 packages"));
    // Hardware identity lands on the CI for matching.
    let hits = store.find_software("openssl".into(), None).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].ci_name, "web1");
    store.close();
}

#[tokio::test]
async fn software_changes_are_recorded_and_a_late_older_inventory_changes_nothing() {
    let (_dir, store) = open();
    enroll(&store, "a1", "m-web1", "web1").await;
    let before = inventory(
        "CZ1",
        vec![
            package("openssl", "3.0.11-1~deb12u2", "dpkg"),
            package("curl", "7.88.1-10+deb12u5", "dpkg"),
            package("telnet", "0.17+2.4-2", "dpkg"),
        ],
    );
    let after = inventory(
        "CZ1",
        vec![
            package("openssl", "3.0.15-1~deb12u1", "dpkg"),
            package("curl", "7.88.1-10+deb12u5", "dpkg"),
            package("nginx", "1.22.1-9", "dpkg"),
        ],
    );
    store
        .ingest(record("a1", 1, "web1", 1_000, "h1", Some(before.clone())))
        .await
        .unwrap();
    store
        .ingest(record("a1", 3, "web1", 3_000, "h2", Some(after.clone())))
        .await
        .unwrap();
    // Sent earlier, arrived later (from the agent's spool): must not roll the CI back.
    store
        .ingest(record("a1", 2, "web1", 2_000, "h0", Some(before.clone())))
        .await
        .unwrap();
    let detail = store
        .find_ci("web1".into())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(detail.inventory.unwrap().content_hash, "h2");
    let change = &detail.history[0];
    assert_eq!(change.kind, "software");
    assert_eq!(
        change.summary,
        "software: 1 installed, 1 removed, 1 changed version"
    );
    assert_eq!(change.detail["installed"][0], "nginx 1.22.1-9");
    assert_eq!(change.detail["removed"][0], "telnet 0.17+2.4-2");
    assert_eq!(
        change.detail["changed"][0],
        "openssl 3.0.11-1~deb12u2 -> 3.0.15-1~deb12u1"
    );
    assert!(
        store
            .find_software("telnet".into(), None)
            .await
            .unwrap()
            .is_empty()
    );
    let openssl = store.find_software("openssl".into(), None).await.unwrap();
    assert_eq!(openssl[0].version, "3.0.15-1~deb12u1");
    store.close();
}

#[tokio::test]
async fn version_below_uses_the_package_managers_ordering() {
    let (_dir, store) = open();
    for (i, (host, version, source)) in [
        ("deb-old", "1.1.1n-0+deb11u5", "dpkg"),
        ("deb-new", "3.0.11-1~deb12u2", "dpkg"),
        ("deb-tilde", "3.0.0~rc1-1", "dpkg"),
        ("rpm-old", "1:1.1.1k-12.el8_9", "rpm"),
        ("rpm-new", "1:3.0.7-25.el9_3", "rpm"),
    ]
    .into_iter()
    .enumerate()
    {
        let agent = format!("a{i}");
        enroll(&store, &agent, &format!("m-{host}"), host).await;
        let inv = inventory(&format!("S{i}"), vec![package("openssl", version, source)]);
        store
            .ingest(record(&agent, 1, host, 1_000, "h", Some(inv)))
            .await
            .unwrap();
    }
    let names = |hits: Vec<SoftwareHit>| hits.into_iter().map(|h| h.ci_name).collect::<Vec<_>>();
    // String ordering would call "3.0.0~rc1-1" newer than "3.0.0" and "10" older than "9".
    assert_eq!(
        names(
            store
                .find_software("openssl".into(), Some("3.0.0".into()))
                .await
                .unwrap()
        ),
        vec!["deb-old", "deb-tilde"]
    );
    assert_eq!(
        names(
            store
                .find_software("openssl".into(), Some("1:3.0.0".into()))
                .await
                .unwrap()
        ),
        vec!["deb-new", "deb-old", "deb-tilde", "rpm-old"]
    );
    store.close();
}

#[tokio::test]
async fn asset_file_data_and_imports_match_by_serial_or_tag_and_are_recorded() {
    let (_dir, store) = open();
    enroll(&store, "a1", "m-web1", "web1").await;
    enroll(&store, "a2", "m-db1", "db1").await;
    enroll(&store, "a3", "m-junk", "junk").await;
    let mut web = inventory("CZ1", vec![]);
    web.asset = Some(AssetInfo {
        asset_tag: "A-100".into(),
        location: "Rack 4".into(),
        ..Default::default()
    });
    store
        .ingest(record("a1", 1, "web1", 1_000, "h1", Some(web)))
        .await
        .unwrap();
    store
        .ingest(record(
            "a2",
            1,
            "db1",
            1_000,
            "h2",
            Some(inventory("CZ2", vec![])),
        ))
        .await
        .unwrap();
    // A placeholder serial must never match an import row carrying the same placeholder.
    store
        .ingest(record(
            "a3",
            1,
            "junk",
            1_000,
            "h3",
            Some(inventory("To be filled by O.E.M.", vec![])),
        ))
        .await
        .unwrap();
    let csv = "serial,asset_tag,warranty_end,supplier\n\
               cz2,,2026-12-01,Acme\n\
               ,A-100,2030-01-31,Acme\n\
               To be filled by O.E.M.,,2027-01-01,Acme\n\
               NOPE,,2027-01-01,Acme\n";
    let (rows, errors, _) = assets::parse(csv.as_bytes());
    assert!(errors.is_empty());
    let outcome = store
        .import_assets(AssetImport {
            file_name: "purchases.csv".into(),
            rows,
        })
        .await
        .unwrap();
    assert_eq!((outcome.matched, outcome.updated), (2, 2));
    let unmatched: Vec<u64> = outcome.unmatched.iter().map(|u| u.line).collect();
    assert_eq!(unmatched, vec![4, 5]);

    let web = store
        .find_ci("web1".into())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let asset = web.asset.unwrap();
    assert_eq!(
        (asset.location.as_str(), asset.warranty_end.as_str()),
        ("Rack 4", "2030-01-31"),
        "the import adds to the host's own asset data"
    );
    assert!(
        web.history
            .iter()
            .any(|h| h.summary == "asset data from import purchases.csv: warranty_end, supplier")
    );
    let db = store.find_ci("db1".into()).await.unwrap().unwrap().unwrap();
    assert_eq!(db.asset.unwrap().warranty_end, "2026-12-01");

    let all = store.warranties(None).await.unwrap();
    assert_eq!(
        all.iter().map(|w| w.ci_name.as_str()).collect::<Vec<_>>(),
        vec!["db1", "web1"]
    );
    let soon = store.warranties(Some("2027-01-01".into())).await.unwrap();
    assert_eq!(soon.len(), 1);
    assert_eq!(soon[0].serial, "CZ2");
    // Importing the same file again changes nothing and records nothing.
    let (rows, _, _) = assets::parse(csv.as_bytes());
    let again = store
        .import_assets(AssetImport {
            file_name: "purchases.csv".into(),
            rows,
        })
        .await
        .unwrap();
    assert_eq!((again.matched, again.updated), (2, 0));
    store.close();
}

#[tokio::test]
async fn the_host_asset_file_overrides_an_import_only_where_the_file_changed() {
    let (_dir, store) = open();
    enroll(&store, "a1", "m-web1", "web1").await;
    let with_asset = |owner: &str, seq_hash: &str| {
        let mut inv = inventory("CZ1", vec![package("curl", seq_hash, "dpkg")]);
        inv.asset = Some(AssetInfo {
            owner: owner.into(),
            warranty_end: "2028-01-01".into(),
            ..Default::default()
        });
        inv
    };
    store
        .ingest(record(
            "a1",
            1,
            "web1",
            1_000,
            "h1",
            Some(with_asset("ann", "1")),
        ))
        .await
        .unwrap();
    let (rows, _, _) = assets::parse(b"serial,warranty_end\nCZ1,2027-06-30\n");
    store
        .import_assets(AssetImport {
            file_name: "p.csv".into(),
            rows,
        })
        .await
        .unwrap();
    // New software, same asset file: the imported warranty stays.
    store
        .ingest(record(
            "a1",
            2,
            "web1",
            2_000,
            "h2",
            Some(with_asset("ann", "2")),
        ))
        .await
        .unwrap();
    let asset = store
        .find_ci("web1".into())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .asset
        .unwrap();
    assert_eq!(
        (asset.owner.as_str(), asset.warranty_end.as_str()),
        ("ann", "2027-06-30")
    );
    // The host's owner changed: that field follows the host.
    store
        .ingest(record(
            "a1",
            3,
            "web1",
            3_000,
            "h3",
            Some(with_asset("bob", "3")),
        ))
        .await
        .unwrap();
    let asset = store
        .find_ci("web1".into())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .asset
        .unwrap();
    assert_eq!(
        (asset.owner.as_str(), asset.warranty_end.as_str()),
        ("bob", "2027-06-30")
    );
    store.close();
}

#[tokio::test]
async fn a_guest_runs_on_the_hypervisor_that_declares_it_whichever_reports_first() {
    use steward_shared::v1::VirtualGuest;
    let (_dir, store) = open();
    let guest = |uuid: &str| VirtualGuest {
        name: "vm".into(),
        uuid: uuid.into(),
        source: "libvirt".into(),
    };
    let vm_inventory = |serial: &str, uuid: &str| {
        let mut inv = inventory(serial, vec![]);
        inv.hardware.system.uuid = uuid.into();
        inv.hardware.virtualization.hypervisor = "kvm".into();
        inv
    };
    let relations = |detail: &CiDetail| {
        detail
            .relations
            .iter()
            .map(|r| format!("{} {} {}", r.from_name, r.kind, r.to_name))
            .collect::<Vec<_>>()
    };
    // The host first, then its guest's agent.
    enroll(&store, "h1", "m-kvm1", "kvm1").await;
    let mut host = inventory("HOST1", vec![]);
    host.guests = vec![guest("4dea22b3-1d52-d8f3-2516-782e98ab3fa0")];
    store
        .ingest(record("h1", 1, "kvm1", 1_000, "h", Some(host)))
        .await
        .unwrap();
    enroll(&store, "g1", "m-vm1", "vm1").await;
    store
        .ingest(record(
            "g1",
            1,
            "vm1",
            2_000,
            "g",
            Some(vm_inventory("VM1", "4DEA22B3-1D52-D8F3-2516-782E98AB3FA0")),
        ))
        .await
        .unwrap();
    let vm1 = store.find_ci("vm1".into()).await.unwrap().unwrap().unwrap();
    assert_eq!(relations(&vm1), vec!["vm1 runs_on kvm1"]);
    assert_eq!(vm1.ci.class, "virtual_machine");

    // The guest first (byte-swapped UUID, as some firmware shows it), then the host.
    enroll(&store, "g2", "m-vm2", "vm2").await;
    store
        .ingest(record(
            "g2",
            1,
            "vm2",
            3_000,
            "g2",
            Some(vm_inventory("VM2", "b322ea4d-521d-f3d8-2516-782e98ab3fa1")),
        ))
        .await
        .unwrap();
    let mut host = inventory("HOST1", vec![]);
    host.guests = vec![
        guest("4dea22b3-1d52-d8f3-2516-782e98ab3fa0"),
        guest("4dea22b3-1d52-d8f3-2516-782e98ab3fa1"),
    ];
    store
        .ingest(record("h1", 2, "kvm1", 4_000, "h2", Some(host)))
        .await
        .unwrap();
    let vm2 = store.find_ci("vm2".into()).await.unwrap().unwrap().unwrap();
    assert_eq!(relations(&vm2), vec!["vm2 runs_on kvm1"]);

    // vm1 migrated away: the host no longer declares it.
    let mut host = inventory("HOST1", vec![]);
    host.guests = vec![guest("4dea22b3-1d52-d8f3-2516-782e98ab3fa1")];
    store
        .ingest(record("h1", 3, "kvm1", 5_000, "h3", Some(host)))
        .await
        .unwrap();
    let vm1 = store.find_ci("vm1".into()).await.unwrap().unwrap().unwrap();
    assert!(relations(&vm1).is_empty(), "{:?}", relations(&vm1));
    let impact = store.impact("kvm1".into()).await.unwrap();
    assert_eq!(
        impact.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
        vec!["vm2"]
    );
    store.close();
}

#[tokio::test]
async fn pruning_keeps_the_newest_metrics_report_and_the_inventory_itself() {
    let (_dir, store) = open();
    enroll(&store, "a1", "m-web1", "web1").await;
    store
        .ingest(record(
            "a1",
            1,
            "web1",
            1_000,
            "h1",
            Some(inventory("CZ1", vec![])),
        ))
        .await
        .unwrap();
    for seq in [2, 3] {
        let mut metrics = record("a1", seq, "web1", 1_000 + seq as i64, "", None);
        metrics.content = ReportContent::Metrics(Vec::new());
        store.ingest(metrics).await.unwrap();
    }
    // The inventory's report row and the older metrics report go; the newest metrics report
    // and the stored inventory stay.
    assert_eq!(store.prune_reports(crate::now_ms() + 1).await.unwrap(), 2);
    let detail = store
        .find_ci("web1".into())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(detail.reports_stored, 1);
    assert_eq!(detail.ci.latest_at, Some(1_003));
    assert!(detail.inventory.is_some());
    assert_eq!(store.prune_reports(crate::now_ms() + 1).await.unwrap(), 0);
    store.close();
}

fn many_packages(prefix: &str, n: usize) -> Vec<SoftwarePackage> {
    (0..n)
        .map(|i| package(&format!("{prefix}{i:03}"), "1.0-1", "dpkg"))
        .collect()
}

async fn hosts_with(store: &Store, name: &str) -> Vec<String> {
    store
        .find_software(name.into(), None)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.ci_name)
        .collect()
}

#[tokio::test]
async fn software_lookups_are_the_same_before_and_after_the_batched_name_index_merge() {
    let (_dir, store) = open();
    enroll(&store, "a1", "m-web1", "web1").await;
    enroll(&store, "a2", "m-web2", "web2").await;
    // First inventories add far more names than a diff indexes directly: both CIs are queued.
    let mut web1 = many_packages("lib", 100);
    web1.push(package("openssl", "3.0.11-1~deb12u2", "dpkg"));
    let web2 = many_packages("lib", 50);
    for (agent, host, packages) in [("a1", "web1", web1.clone()), ("a2", "web2", web2)] {
        store
            .ingest(record(
                agent,
                1,
                host,
                1_000,
                "h1",
                Some(inventory(host, packages)),
            ))
            .await
            .unwrap();
    }
    assert_eq!(store.software_index_backlog().await.unwrap().0, 2);
    assert_eq!(hosts_with(&store, "openssl").await, vec!["web1"]);
    assert_eq!(hosts_with(&store, "lib042").await, vec!["web1", "web2"]);
    assert_eq!(hosts_with(&store, "lib077").await, vec!["web1"]);

    // A diff while queued: openssl removed, nginx added.
    let mut changed = web1.clone();
    changed.retain(|p| p.name != "openssl");
    changed.push(package("nginx", "1.22.1-9", "dpkg"));
    store
        .ingest(record(
            "a1",
            2,
            "web1",
            2_000,
            "h2",
            Some(inventory("web1", changed.clone())),
        ))
        .await
        .unwrap();
    assert!(hosts_with(&store, "openssl").await.is_empty());
    assert_eq!(hosts_with(&store, "nginx").await, vec!["web1"]);

    assert_eq!(store.index_software().await.unwrap(), 2);
    assert_eq!(store.software_index_backlog().await.unwrap(), (0, None));
    assert!(hosts_with(&store, "openssl").await.is_empty());
    assert_eq!(hosts_with(&store, "nginx").await, vec!["web1"]);
    assert_eq!(hosts_with(&store, "lib042").await, vec!["web1", "web2"]);
    assert_eq!(hosts_with(&store, "lib077").await, vec!["web1"]);
    let entries: i64 = store
        .read(|conn| {
            Ok(conn.query_row("SELECT COUNT(*) FROM ci_software_by_name", [], |r| r.get(0))?)
        })
        .await
        .unwrap();
    assert_eq!(entries, 101 + 50, "one entry per (name, CI)");

    // After the merge, small diffs update the index directly.
    changed.retain(|p| p.name != "nginx");
    changed.push(package("telnet", "0.17+2.4-2", "dpkg"));
    store
        .ingest(record(
            "a1",
            3,
            "web1",
            3_000,
            "h3",
            Some(inventory("web1", changed)),
        ))
        .await
        .unwrap();
    assert_eq!(store.software_index_backlog().await.unwrap().0, 0);
    assert!(hosts_with(&store, "nginx").await.is_empty());
    assert_eq!(hosts_with(&store, "telnet").await, vec!["web1"]);
    // A wholesale change (a reinstall) queues the CI again; stale names are gone at once.
    store
        .ingest(record(
            "a1",
            4,
            "web1",
            4_000,
            "h4",
            Some(inventory("web1", many_packages("py", 40))),
        ))
        .await
        .unwrap();
    assert_eq!(store.software_index_backlog().await.unwrap().0, 1);
    assert!(hosts_with(&store, "telnet").await.is_empty());
    assert_eq!(hosts_with(&store, "lib042").await, vec!["web2"]);
    assert_eq!(hosts_with(&store, "py039").await, vec!["web1"]);
    store.index_software().await.unwrap();
    assert_eq!(hosts_with(&store, "py039").await, vec!["web1"]);
    assert_eq!(hosts_with(&store, "lib042").await, vec!["web2"]);
    store.close();
}

#[tokio::test]
async fn a_version_7_database_keeps_its_software_findable_through_migration_8() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        schema::migrate_to(&mut conn, &path, 7).unwrap();
        conn.execute_batch(
            "INSERT INTO cis (id, identity_key, name, class, first_seen_at) VALUES (7, 'machine-id:m1', 'web1', 'server', 1);
             INSERT INTO cis (id, identity_key, name, class, first_seen_at) VALUES (8, 'machine-id:m2', 'web2', 'server', 1);
             INSERT INTO ci_software VALUES (7, 'dpkg', 'openssl', 'amd64', '3.0.11-1', '', NULL, NULL);
             INSERT INTO ci_software VALUES (7, 'dpkg', 'openssl', 'i386', '3.0.11-1', '', NULL, NULL);
             INSERT INTO ci_software VALUES (8, 'rpm', 'openssl', 'x86_64', '1:3.0.7-25.el9_3', '', NULL, NULL);
             INSERT INTO ci_software VALUES (8, 'rpm', 'curl', 'x86_64', '7.76.1-26.el9', '', NULL, NULL);",
        )
        .unwrap();
    }
    let store = Store::open(&path, 8, 8).unwrap();
    let openssl = store.find_software("openssl".into(), None).await.unwrap();
    assert_eq!(
        openssl
            .iter()
            .map(|h| (h.ci_name.as_str(), h.arch.as_str()))
            .collect::<Vec<_>>(),
        vec![("web1", "amd64"), ("web1", "i386"), ("web2", "x86_64")]
    );
    assert_eq!(hosts_with(&store, "curl").await, vec!["web2"]);
    let entries: i64 = store
        .read(|conn| {
            Ok(conn.query_row("SELECT COUNT(*) FROM ci_software_by_name", [], |r| r.get(0))?)
        })
        .await
        .unwrap();
    assert_eq!(entries, 3);
    store.close();
}
