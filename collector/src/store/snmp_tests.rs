//! SNMP target and device-poll storage tests against a real SQLite file.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use super::*;
use crate::cmdb::identify::IdentifyConfig;

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("test.db"), 64, 4096).unwrap();
    (dir, store)
}

/// A CI's detail by its (unique) name.
async fn ci_named(store: &Store, name: &str) -> CiDetail {
    store.find_ci(name.into()).await.unwrap().unwrap().unwrap()
}

fn target(host: &str) -> NewSnmpTarget {
    NewSnmpTarget {
        host: host.into(),
        port: 161,
        version: "2c".into(),
        user: String::new(),
        sealed: b"SEALED-SECRET".to_vec(),
        interval_secs: 60,
        origin: "admin".into(),
    }
}

fn poll(at: i64, name: &str, serial: &str, firmware: &str) -> DevicePoll {
    let mut attributes = serde_json::Map::new();
    attributes.insert("firmware".into(), firmware.into());
    attributes.insert("uptime_secs".into(), (at / 1000).into());
    attributes.insert(
        "entities".into(),
        serde_json::json!([{ "name": "Chassis", "serial": serial }]),
    );
    DevicePoll {
        at,
        sys_name: name.into(),
        vendor: "Cisco".into(),
        model: "WS-C2960X-48TS-L".into(),
        serial: serial.into(),
        attributes,
        macs: BTreeSet::from(["00:1b:54:aa:00:01".to_string()]),
        metrics: serde_json::json!({ "interfaces": [{ "name": "Gi1/0/1", "in_bps": 1000.0 }] }),
        ..Default::default()
    }
}

#[tokio::test]
async fn targets_are_added_once_listed_without_secrets_and_removed() {
    let (_dir, store) = open();
    let id = store
        .add_snmp_target(target("10.0.0.1"), false)
        .await
        .unwrap()
        .unwrap();
    let refused = store
        .add_snmp_target(target("10.0.0.1"), false)
        .await
        .unwrap()
        .unwrap_err();
    assert!(refused.contains("10.0.0.1:161 already exists"), "{refused}");
    let mut replacement = target("10.0.0.1");
    replacement.version = "3".into();
    replacement.user = "monitor".into();
    assert_eq!(
        store
            .add_snmp_target(replacement, true)
            .await
            .unwrap()
            .unwrap(),
        id
    );
    let rows = store.list_snmp_targets().await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].version.as_str(), rows[0].user.as_str()),
        ("3", "monitor")
    );
    assert_eq!(rows[0].status, "pending");
    let json = serde_json::to_string(&rows).unwrap();
    let debug = format!("{:?} {:?}", rows[0], target("x"));
    for shown in [&json, &debug] {
        assert!(
            !shown.contains("SEALED") && !shown.contains("83, 69, 65"),
            "{shown}"
        );
    }
    assert!(
        store
            .remove_snmp_target("10.0.0.1".into(), 161)
            .await
            .unwrap()
    );
    assert!(
        !store
            .remove_snmp_target("10.0.0.1".into(), 161)
            .await
            .unwrap()
    );
    assert!(store.list_snmp_targets().await.unwrap().is_empty());
    store.close();
}

#[tokio::test]
async fn a_polled_device_becomes_a_network_device_ci_and_its_changes_are_history() {
    let (_dir, store) = open();
    let id = store
        .add_snmp_target(target("10.0.0.1"), false)
        .await
        .unwrap()
        .unwrap();
    let config = IdentifyConfig::default();
    let ci = store
        .record_device_poll(
            id,
            poll(1_000, "sw1", "FOC1234X0AB", "15.2(7)E4"),
            config.clone(),
        )
        .await
        .unwrap();
    // The same device polled again: the same CI; a firmware upgrade and a new module are history,
    // the uptime is not.
    let mut second = poll(61_000, "sw1", "FOC1234X0AB", "15.2(7)E8");
    second.attributes.insert(
        "entities".into(),
        serde_json::json!([{ "name": "Chassis", "serial": "FOC1234X0AB" }, { "name": "PS-2", "serial": "LIT2222" }]),
    );
    assert_eq!(
        store
            .record_device_poll(id, second, config.clone())
            .await
            .unwrap(),
        ci
    );
    let detail = ci_named(&store, "sw1").await;
    assert_eq!(detail.ci.class, "network_device");
    assert_eq!(detail.attributes["firmware"], "15.2(7)E8");
    let summaries: Vec<&str> = detail.history.iter().map(|h| h.summary.as_str()).collect();
    assert!(
        summaries.contains(&"firmware: \"15.2(7)E4\" -> \"15.2(7)E8\""),
        "{summaries:?}"
    );
    assert!(
        summaries.contains(&"entities: added [PS-2 (LIT2222)], removed []"),
        "{summaries:?}"
    );
    assert!(
        !summaries.iter().any(|s| s.contains("uptime")),
        "{summaries:?}"
    );
    assert!(detail.history.iter().all(|h| h.source == "snmp"));
    let targets = store.list_snmp_targets().await.unwrap();
    assert_eq!(
        (targets[0].ci_id, targets[0].status.as_str()),
        (Some(ci), "ok")
    );
    assert_eq!(store.device_samples(ci, 10).await.unwrap().len(), 2);

    // Status changes are recorded once, not on every failing poll.
    assert!(
        store
            .set_snmp_status(id, "timeout".into(), "no answer".into(), 70_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_snmp_status(id, "timeout".into(), "no answer".into(), 130_000)
            .await
            .unwrap()
    );
    let history = store.history("sw1".into(), None).await.unwrap();
    assert_eq!(
        history.iter().filter(|h| h.kind == "snmp_status").count(),
        1
    );
    // Samples past retention go.
    assert_eq!(store.prune_device_samples(30_000).await.unwrap(), 1);
    store.close();
}

#[tokio::test]
async fn neighbours_become_cis_and_links_and_a_host_mac_behind_a_port_is_connected() {
    let (_dir, store) = open();
    super::tests::enroll_named(&store, "a1", "m-web1", "web1").await;
    // web1's CI with its MAC as an identifier (as an agent inventory would record it).
    store
        .inner
        .writer
        .write(|conn| {
            conn.execute_batch(
                "INSERT INTO cis (id, identity_key, name, class, first_seen_at) VALUES (50, 'agent:a1', 'web1', 'server', 1);
                 INSERT INTO ci_identifiers (kind, value, ci_id) VALUES ('mac', '3c:ec:ef:10:20:30', 50);",
            )?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    let sw1 = store
        .add_snmp_target(target("10.0.0.1"), false)
        .await
        .unwrap()
        .unwrap();
    let sw2 = store
        .add_snmp_target(target("10.0.0.2"), false)
        .await
        .unwrap()
        .unwrap();
    let config = IdentifyConfig::default();
    let mut first = poll(1_000, "sw1", "FOC1", "15.2");
    first.neighbours.push(PolledNeighbour {
        via: "lldp".into(),
        local_port: "Gi1/0/48".into(),
        remote_name: "core1".into(),
        remote_mac: "2c:6b:f5:00:00:01".into(),
        remote_port: "xe-0/0/1".into(),
        ..Default::default()
    });
    first.fdb = vec![
        ("3C:EC:EF:10:20:30".into(), "Gi1/0/5".into()),
        // Learned on the uplink: says nothing about where that host is.
        ("3c:ec:ef:99:99:99".into(), "Gi1/0/48".into()),
    ];
    let sw1_ci = store
        .record_device_poll(sw1, first, config.clone())
        .await
        .unwrap();
    let core = ci_named(&store, "core1").await;
    assert_eq!(core.ci.class, "network_device");
    let links = store.ci_links(sw1_ci).await.unwrap();
    let described: Vec<String> = links
        .iter()
        .map(|l| {
            format!(
                "{} {} -> {} {} ({})",
                l.from_name, l.from_port, l.to_name, l.to_port, l.via
            )
        })
        .collect();
    assert_eq!(
        described,
        vec![
            "web1 3c:ec:ef:10:20:30 -> sw1 Gi1/0/5 (fdb)",
            "sw1 Gi1/0/48 -> core1 xe-0/0/1 (lldp)",
        ]
    );
    let web1 = ci_named(&store, "web1").await;
    assert!(
        web1.relations
            .iter()
            .any(|r| r.kind == "connected_to" && r.to_name == "sw1")
    );
    // `ci show` of the host says which switch port it is behind.
    assert_eq!(web1.links.len(), 1);
    assert_eq!(
        (
            web1.links[0].to_name.as_str(),
            web1.links[0].to_port.as_str()
        ),
        ("sw1", "Gi1/0/5")
    );

    // core1 polled itself (same name, the chassis MAC among its MACs): the neighbour CI is it.
    let mut core_poll = poll(2_000, "core1", "JN1234", "21.4R3");
    core_poll.vendor = "Juniper".into();
    core_poll.macs = BTreeSet::from(["2c:6b:f5:00:00:01".to_string()]);
    assert_eq!(
        store
            .record_device_poll(sw2, core_poll, config.clone())
            .await
            .unwrap(),
        core.ci.id
    );
    // Without its chassis MAC, a neighbour-discovered CI is still adopted by name, not a conflict.
    let sw3 = store
        .add_snmp_target(target("10.0.0.3"), false)
        .await
        .unwrap()
        .unwrap();
    let mut edge = poll(3_000, "sw1", "FOC1", "15.2");
    edge.neighbours.push(PolledNeighbour {
        via: "cdp".into(),
        local_port: "Gi1/0/47".into(),
        remote_name: "edge9".into(),
        remote_port: "Gi0/1".into(),
        ..Default::default()
    });
    store
        .record_device_poll(sw1, edge, config.clone())
        .await
        .unwrap();
    let edge9 = ci_named(&store, "edge9").await;
    let mut edge_poll = poll(4_000, "edge9", "FOC9", "15.2");
    edge_poll.macs = BTreeSet::from(["00:1b:54:aa:00:09".to_string()]);
    assert_eq!(
        store
            .record_device_poll(sw3, edge_poll, config)
            .await
            .unwrap(),
        edge9.ci.id
    );
    assert!(store.list_conflicts(false).await.unwrap().is_empty());
    // The fdb and lldp links of the first poll are gone with the third poll (only cdp now).
    let links = store.ci_links(sw1_ci).await.unwrap();
    assert_eq!(links.len(), 1, "{links:?}");
    let web1 = ci_named(&store, "web1").await;
    assert!(!web1.relations.iter().any(|r| r.kind == "connected_to"));
    store.close();
}

#[tokio::test]
async fn a_devices_chassis_serial_matches_imported_warranty_data() {
    let (_dir, store) = open();
    let id = store
        .add_snmp_target(target("10.0.0.1"), false)
        .await
        .unwrap()
        .unwrap();
    store
        .record_device_poll(
            id,
            poll(1_000, "sw1", "FOC1234X0AB", "15.2"),
            IdentifyConfig::default(),
        )
        .await
        .unwrap();
    let csv = "serial,warranty_end,supplier\nfoc1234x0ab,2027-03-31,Cisco SmartNet\n";
    let (rows, errors, _) = crate::inventory::assets::parse(csv.as_bytes());
    assert!(errors.is_empty());
    let outcome = store
        .import_assets(crate::inventory::assets::AssetImport {
            file_name: "smartnet.csv".into(),
            rows,
        })
        .await
        .unwrap();
    assert_eq!(outcome.matched, 1);
    let warranties = store.warranties(None).await.unwrap();
    assert_eq!(warranties.len(), 1);
    assert_eq!(warranties[0].ci_name, "sw1");
    assert_eq!(warranties[0].warranty_end, "2027-03-31");
    store.close();
}
