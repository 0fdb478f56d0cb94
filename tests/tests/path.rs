//! The whole path through the real binaries: init → serve → token → enroll → run --once →
//! the CI is in the CMDB with its metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use steward_e2e::{Collector, agent_once, stderr, stdout};

#[test]
fn init_serve_enroll_report_and_list() {
    let collector = Collector::start();
    let fp = &collector.fingerprint;
    assert!(
        fp.starts_with("sha256:")
            && fp.len() == 71
            && fp[7..].chars().all(|c| c.is_ascii_hexdigit()),
        "{fp}"
    );

    let state = collector.enroll_agent("agent");
    let out = agent_once(&state);
    assert!(out.status.success(), "run --once: {}", stderr(&out));

    let hostname = sysinfo_hostname();
    let cis = collector.admin_json(&["ci", "list", "--json"]);
    let cis = cis.as_array().unwrap();
    assert_eq!(cis.len(), 1, "{cis:?}");
    assert_eq!(cis[0]["name"], hostname.as_str());
    // The class comes from this machine's inventory (a VM in CI, a server on bare metal).
    let class = cis[0]["class"].as_str().unwrap();
    assert!(
        [
            "server",
            "virtual_machine",
            "workstation",
            "laptop",
            "iot_gateway"
        ]
        .contains(&class),
        "{class}"
    );

    let agents = collector.admin_json(&["agents", "list", "--json"]);
    assert_eq!(agents.as_array().unwrap().len(), 1);
    assert_eq!(agents[0]["hostname"], hostname.as_str());
    assert!(agents[0]["revoked_at"].is_null());

    let detail = collector.admin_json(&["ci", "show", &hostname, "--json"]);
    assert_eq!(detail["reports_stored"], 1);
    let metrics = &detail["metrics"];
    assert!(metrics["memory"]["total"].as_u64().unwrap() > 0);
    assert!(
        !metrics["cpu"]["per_core_pct"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        metrics["filesystems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["mount"] == "/"),
        "{metrics}"
    );

    // The human views work too.
    let out = collector.admin(&["ci", "show", &cis[0]["id"].to_string()]);
    assert!(
        out.status.success() && stdout(&out).contains("latest metrics"),
        "{}",
        stdout(&out)
    );
    let out = collector.admin(&["ci", "list"]);
    assert!(stdout(&out).contains(&hostname));

    // A second cycle from a restarted agent gets a new sequence number and is stored.
    assert!(agent_once(&state).status.success());
    assert_eq!(
        collector.admin_json(&["ci", "show", &hostname, "--json"])["reports_stored"],
        2
    );
}

#[test]
fn acknowledged_reports_survive_a_collector_crash() {
    let mut collector = Collector::start();
    let state = collector.enroll_agent("agent");
    for _ in 0..3 {
        assert!(agent_once(&state).status.success());
    }
    collector.kill();
    collector.serve();
    let cis = collector.admin_json(&["ci", "list", "--json"]);
    let id = cis[0]["id"].to_string();
    assert_eq!(
        collector.admin_json(&["ci", "show", &id, "--json"])["reports_stored"],
        3
    );
}

#[test]
fn collect_json_has_host_metrics_and_inventory() {
    let out = steward_e2e::run(
        std::process::Command::new(steward_e2e::bin("steward-agent")).args(["collect", "--json"]),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["host"]["hostname"].is_string());
    assert!(json["metrics"]["memory"]["total"].as_u64().unwrap() > 0);
    assert!(json["metrics"]["networks"].is_array());
    let software = json["inventory"]["software"].as_array().unwrap();
    assert!(
        software
            .iter()
            .all(|p| ["name", "version", "arch", "source"]
                .iter()
                .all(|k| p[k].is_string())),
        "every package has name, version, arch and source"
    );
    for key in ["vendor", "model", "serial", "uuid"] {
        assert!(
            json["inventory"]["hardware"][key].is_string(),
            "inventory.hardware.{key}"
        );
    }
    // With a fixture root, the inventory is that host's.
    let dir = tempfile::tempdir().unwrap();
    let root = steward_e2e::fixture_root(dir.path(), "dell-poweredge-r740");
    let out = steward_e2e::run(
        std::process::Command::new(steward_e2e::bin("steward-agent"))
            .args(["collect", "--json", "--root"])
            .arg(&root),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["inventory"]["hardware"]["serial"], "7XK2QH3");
    assert_eq!(json["inventory"]["hardware"]["model"], "PowerEdge R740");
}

fn sysinfo_hostname() -> String {
    let out = std::process::Command::new("hostname").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn output_into_a_pipe_closed_early_ends_quietly() {
    use std::io::Read;
    let mut child = std::process::Command::new(steward_e2e::bin("steward-agent"))
        .args(["inventory", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The reader is gone (as with `| head -1`).
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}
