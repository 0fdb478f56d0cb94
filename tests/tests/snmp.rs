//! SNMP end to end: real `snmpd` instances on loopback polled by the real collector binary,
//! driven through the admin CLI.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use steward_collector::snmp::client::{AuthProto, PrivProto};
use steward_collector::snmp::testing::{Snmpd, SnmpdConfig, SnmpdUser};
use steward_e2e::{Collector, stderr, stdout};

fn snmpd(sys_name: &str) -> Snmpd {
    Snmpd::start(SnmpdConfig {
        community: "e2e-community-ro".into(),
        sys_name: sys_name.into(),
        users: vec![SnmpdUser {
            name: "e2e-monitor".into(),
            auth: AuthProto::Sha256,
            auth_pass: "e2e-auth-pass-256".into(),
            privacy: Some((PrivProto::Aes256, "e2e-priv-pass-256".into())),
        }],
        extra_lines: vec!["syslocation Rack 4, Room 2.17".into()],
    })
    .unwrap()
}

/// Waits until `check` accepts `snmp list --json`, or fails with the last listing.
fn wait_for_targets(
    collector: &Collector,
    what: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    collector.wait_for_json(&["snmp", "list", "--json"], what, check)
}

#[test]
fn devices_added_by_cli_and_config_are_polled_into_network_device_cis_and_failures_are_one_status()
{
    let v2 = snmpd("e2e-switch-v2");
    let v3 = snmpd("e2e-router-v3");
    let mut collector = Collector::start();
    let v2_target = format!("127.0.0.1:{}", v2.addr().port());
    let v3_target = format!("127.0.0.1:{}", v3.addr().port());

    // A one-shot poll of a device that is not a target yet: shown, not stored.
    let out = collector.admin(&[
        "snmp",
        "poll",
        &v2_target,
        "--version",
        "2c",
        "--community",
        "e2e-community-ro",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = stdout(&out);
    assert!(shown.contains("name:      e2e-switch-v2"), "{shown}");
    assert!(shown.contains("location:  Rack 4, Room 2.17"), "{shown}");
    assert!(shown.contains("not a target, not stored"), "{shown}");
    assert!(
        shown.contains(" lo "),
        "the loopback interface is listed: {shown}"
    );

    // v2c from the CLI, the community from the environment (kept out of `ps`).
    let out = steward_e2e::run(
        std::process::Command::new(steward_e2e::bin("steward-collector"))
            .args([
                "snmp",
                "add",
                &v2_target,
                "--version",
                "2c",
                "--interval",
                "5",
                "--data-dir",
            ])
            .arg(collector.data_dir())
            .env("STEWARD_SNMP_COMMUNITY", "e2e-community-ro"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // v3 authPriv SHA-256/AES-256 from the CLI.
    let out = collector.admin(&[
        "snmp",
        "add",
        &v3_target,
        "--version",
        "3",
        "--user",
        "e2e-monitor",
        "--auth",
        "sha256",
        "--auth-pass",
        "e2e-auth-pass-256",
        "--priv",
        "aes256",
        "--priv-pass",
        "e2e-priv-pass-256",
        "--interval",
        "5",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let again = collector.admin(&[
        "snmp",
        "add",
        &v3_target,
        "--version",
        "2c",
        "--community",
        "x",
    ]);
    assert!(
        !again.status.success() && stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );

    let list = wait_for_targets(&collector, "both targets polled", |list| {
        list.as_array().unwrap().iter().all(|t| t["status"] == "ok")
    });
    let text = list.to_string();
    for secret in ["e2e-community-ro", "e2e-auth-pass-256", "e2e-priv-pass-256"] {
        assert!(!text.contains(secret), "a secret is listed: {text}");
        assert!(!collector.log().contains(secret), "a secret is logged");
        let db = std::fs::read(collector.data_dir().join("steward.db")).unwrap();
        assert!(
            !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} is in the database in clear"
        );
    }
    let v3_row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["version"] == "v3")
        .unwrap();
    assert_eq!(v3_row["user"], "e2e-monitor");

    // Both devices are network-device CIs with their system facts and interfaces.
    let cis = collector.admin_json(&["ci", "list", "--class", "network_device", "--json"]);
    let names: Vec<&str> = cis
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"e2e-switch-v2") && names.contains(&"e2e-router-v3"),
        "{names:?}"
    );
    let detail = collector.admin_json(&["ci", "show", "e2e-router-v3", "--json"]);
    assert_eq!(detail["attributes"]["location"], "Rack 4, Room 2.17");
    assert!(
        detail["attributes"]["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["name"] == "lo")
    );
    assert_eq!(detail["vendor"], "net-snmp", "{detail:#}");
    let out = collector.admin(&["ci", "show", "e2e-router-v3"]);
    let shown = stdout(&out);
    assert!(
        shown.contains("interfaces (") && shown.contains(" lo "),
        "{shown}"
    );
    assert!(shown.contains("location=Rack 4, Room 2.17"), "{shown}");

    // The daemon stops: one status change to unreachable, logged once, not per poll.
    drop(v2);
    wait_for_targets(&collector, "the stopped device is unreachable", |list| {
        list.as_array()
            .unwrap()
            .iter()
            .any(|t| t["status"] == "unreachable")
    });
    std::thread::sleep(Duration::from_secs(12));
    let failing = collector.log().matches("SNMP target failing").count();
    assert_eq!(failing, 1, "{}", collector.log());
    let history = collector.admin_json(&["ci", "history", "e2e-switch-v2", "--json"]);
    let status_changes = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["kind"] == "snmp_status")
        .count();
    assert_eq!(status_changes, 1, "{history:#}");
    // ... and one event, not one per poll.
    let events = collector.admin_json(&["events", "list", "--ci", "e2e-switch-v2", "--json"]);
    let unreachable: Vec<&serde_json::Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["rule"] == "snmp-unreachable")
        .collect();
    assert_eq!(unreachable.len(), 1, "{events:#}");
    assert_eq!(unreachable[0]["state"], "firing");
    assert_eq!(unreachable[0]["severity"], "critical");

    // Removed: no longer polled, CI kept.
    let out = collector.admin(&["snmp", "remove", &v2_target]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        collector
            .admin_json(&["snmp", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A target in collector.toml with a wrong v3 password: auth_failed, with a clear detail.
    let toml_target = format!(
        "\n[[snmp.targets]]\nhost = \"127.0.0.1\"\nport = {}\ninterval_secs = 5\ncredentials = {{ version = \"v3\", user = \"e2e-monitor\", auth = \"sha256\", auth_pass = \"wrong-password-1\", privacy = {{ proto = \"aes256\", pass = \"e2e-priv-pass-256\" }} }}\n",
        v3.addr().port()
    );
    let config_path = collector.data_dir().join("collector.toml");
    let mut text = std::fs::read_to_string(&config_path).unwrap();
    text.push_str(&toml_target.replace("[[snmp.targets]]", "[snmp]\n[[snmp.targets]]"));
    std::fs::write(&config_path, text).unwrap();
    collector.kill();
    collector.serve();
    let list = wait_for_targets(
        &collector,
        "the config target replaces the CLI one and fails auth",
        |list| {
            list.as_array()
                .unwrap()
                .iter()
                .any(|t| t["origin"] == "config" && t["status"] == "auth_failed")
        },
    );
    let row = &list.as_array().unwrap()[0];
    assert!(
        row["status_detail"].as_str().unwrap().contains("authentic"),
        "{row:#}"
    );
    assert!(!collector.log().contains("wrong-password-1"));
    // Refused credentials are the device's one event too.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = collector.admin_json(&[
            "events",
            "list",
            "--ci",
            "e2e-router-v3",
            "--state",
            "firing",
            "--json",
        ]);
        if events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["rule"] == "snmp-unreachable")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no event for the refused credentials: {events:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn discovery_sweeps_a_loopback_range_and_adds_what_answers() {
    let a = snmpd("e2e-discover-a");
    let collector = Collector::start();
    let port = a.addr().port().to_string();
    // 127.0.0.0/29: only 127.0.0.1 has an agent on that port.
    let answer = collector.admin_json(&[
        "snmp",
        "discover",
        "127.0.0.0/29",
        "--port",
        &port,
        "--version",
        "2c",
        "--community",
        "e2e-community-ro",
        "--json",
    ]);
    assert_eq!(answer["probed"], 6);
    let answered = answer["answered"].as_array().unwrap();
    assert_eq!(answered.len(), 1, "{answer:#}");
    assert_eq!(answered[0]["sys_name"], "e2e-discover-a");
    assert_eq!(answered[0]["added"], true);
    let list = collector.admin_json(&["snmp", "list", "--json"]);
    assert_eq!(list[0]["origin"], "discover");
    let too_big = collector.admin(&[
        "snmp",
        "discover",
        "10.0.0.0/8",
        "--version",
        "2c",
        "--community",
        "x",
    ]);
    assert!(
        !too_big.status.success() && stderr(&too_big).contains("more than 1024"),
        "{}",
        stderr(&too_big)
    );
}
