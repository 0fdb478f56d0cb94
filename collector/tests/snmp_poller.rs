//! The poller against real `snmpd`: a device that never answers does not delay the others, and
//! rates come from consecutive polls.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use steward_collector::cmdb::identify::IdentifyConfig;
use steward_collector::secrets::SecretBox;
use steward_collector::snmp::SnmpConfig;
use steward_collector::snmp::client::{Credentials, Secret};
use steward_collector::snmp::poller::{self, PollerState};
use steward_collector::snmp::testing::{Snmpd, SnmpdConfig};
use steward_collector::store::{NewSnmpTarget, Store};

async fn add(
    store: &Store,
    secrets: &SecretBox,
    host: &str,
    port: u16,
    credentials: &Credentials,
) -> i64 {
    store
        .add_snmp_target(
            NewSnmpTarget {
                host: host.into(),
                port,
                version: credentials.version().to_string(),
                user: String::new(),
                sealed: poller::seal_credentials(secrets, host, port, credentials).unwrap(),
                interval_secs: 5,
                origin: "admin".into(),
            },
            false,
        )
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_device_does_not_delay_the_others_and_polls_yield_rates() {
    let live = Snmpd::start(SnmpdConfig::default()).unwrap();
    // A black hole: a bound UDP socket that reads nothing and answers nothing.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("test.db"), 64, 4096).unwrap();
    let secrets = Arc::new(SecretBox::load_or_create(dir.path()).unwrap());
    let live_id = add(
        &store,
        &secrets,
        "127.0.0.1",
        live.addr().port(),
        &live.v2c(),
    )
    .await;
    let silent_creds = Credentials::V2c {
        community: Secret::new("nobody-home"),
    };
    let silent_id = add(
        &store,
        &secrets,
        "127.0.0.1",
        silent.local_addr().unwrap().port(),
        &silent_creds,
    )
    .await;

    // 2 s timeout and 2 retries: the silent device holds its slot for 6 s a poll.
    let config = SnmpConfig {
        max_in_flight: 2,
        ..SnmpConfig::default()
    };
    let changed = Arc::new(tokio::sync::Notify::new());
    let task = tokio::spawn(poller::run(
        store.clone(),
        secrets.clone(),
        config,
        IdentifyConfig::default(),
        changed,
        Arc::new(PollerState::default()),
        None,
    ));
    tokio::time::sleep(Duration::from_secs(17)).await;
    task.abort();

    let targets = store.list_snmp_targets().await.unwrap();
    let live_row = targets.iter().find(|t| t.id == live_id).unwrap();
    let silent_row = targets.iter().find(|t| t.id == silent_id).unwrap();
    assert_eq!(live_row.status, "ok");
    assert_eq!(
        silent_row.status, "unreachable",
        "{}",
        silent_row.status_detail
    );
    assert!(
        silent_row.status_detail.contains("timed out")
            || silent_row.status_detail.contains("no answer"),
        "{}",
        silent_row.status_detail
    );
    // Known unreachable, it is asked once a poll, not three times, so it holds a slot 2 s.
    assert!(
        silent_row.status_detail.contains("after 1 attempt"),
        "{}",
        silent_row.status_detail
    );
    // Every 5 s over 17 s: at least 3 polls of the live device despite the silent one.
    let samples = store
        .device_samples(live_row.ci_id.unwrap(), 100)
        .await
        .unwrap();
    assert!(
        samples.len() >= 3,
        "{} polls of the live device",
        samples.len()
    );
    // From the second poll on, interfaces have rates (the loopback's counters move with our polls).
    let newest = &samples[0].1;
    assert!(
        newest["rates_over_secs"].as_f64().unwrap() > 4.0,
        "{newest:#}"
    );
    let lo = newest["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "lo")
        .unwrap();
    assert!(lo["in_bps"].as_f64().unwrap() > 0.0, "{lo:#}");
    let first = samples.last().unwrap();
    assert!(
        first.1["rates_over_secs"].is_null(),
        "the first poll has nothing to compare with"
    );
    store.close();
}
