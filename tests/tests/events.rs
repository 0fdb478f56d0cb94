//! Rules and events end to end through the real binaries: a rules file laid over the defaults,
//! a real agent's report raising an event, and the admin commands on it.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use steward_e2e::{Collector, agent_once, stderr, stdout};

/// Polls `events list --json` until `check` accepts it.
fn wait_for_events(
    collector: &Collector,
    what: &str,
    check: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let list = collector.wait_for_json(&["events", "list", "--json"], what, |list| {
        check(list.as_array().map(Vec::as_slice).unwrap_or(&[]))
    });
    list.as_array().cloned().unwrap_or_default()
}

#[test]
fn a_report_over_a_threshold_raises_one_event_that_admins_can_ack_silence_and_resolve() {
    let mut collector = Collector::start();
    // Every filesystem of this machine is at least 0.000001 % used: a rule that must fire.
    let rules = collector.dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"fs-any-use\"\nmetric = \"filesystem.used_pct\"\nop = \">=\"\nwarning = 0.000001\nsummary = \"{instance} on {ci} is {value}% used\"\n",
    )
    .unwrap();
    let config = collector.data_dir().join("collector.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[rules]\nfile = {:?}\n",
        rules.display().to_string()
    ));
    std::fs::write(&config, text).unwrap();
    collector.kill();
    collector.serve();

    let listed = collector.admin_json(&["rules", "list", "--json"]);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"fs-any-use")
            && names.contains(&"filesystem-full")
            && names.contains(&"agent-silent"),
        "{names:?}"
    );

    let state = collector.enroll_agent("agent");
    let out = agent_once(&state);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = wait_for_events(&collector, "the rule fires", |rows| {
        rows.iter()
            .any(|e| e["rule"] == "fs-any-use" && e["state"] == "firing")
    });
    let event = rows
        .iter()
        .find(|e| e["rule"] == "fs-any-use" && e["state"] == "firing")
        .unwrap();
    let id = event["id"].as_i64().unwrap().to_string();
    assert!(event["escalated_at"].is_i64(), "{event:#}");
    assert!(
        event["summary"].as_str().unwrap().contains("% used"),
        "{event:#}"
    );

    // The same report again (the next cycle): still one event per (rule, CI, instance).
    let out = agent_once(&state);
    assert!(out.status.success(), "{}", stderr(&out));
    std::thread::sleep(Duration::from_secs(1));
    let rows = collector.admin_json(&["events", "list", "--state", "firing", "--json"]);
    let mut keys: Vec<(String, String)> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["rule"] == "fs-any-use")
        .map(|e| (e["ci_name"].to_string(), e["instance"].to_string()))
        .collect();
    let count = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), count, "one event per instance: {rows:#}");

    // Show, acknowledge, resolve by hand.
    let out = collector.admin(&["events", "show", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("transitions") && stdout(&out).contains("-> firing"),
        "{}",
        stdout(&out)
    );
    let out = collector.admin(&["events", "ack", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = collector.admin_json(&["events", "show", &id, "--json"]);
    assert_eq!(shown["acknowledged_by"], "admin");
    let out = collector.admin(&[
        "events",
        "resolve",
        &id,
        "--reason",
        "expected in this test",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = collector.admin_json(&["events", "show", &id, "--json"]);
    assert_eq!(shown["state"], "resolved");
    let again = collector.admin(&["events", "resolve", &id, "--reason", "twice"]);
    assert!(
        !again.status.success() && stderr(&again).contains("already resolved"),
        "{}",
        stderr(&again)
    );

    // Silences and windows: added, listed, refused with a clear reason, removed.
    let host = shown["ci_name"].as_str().unwrap().to_string();
    let out = collector.admin(&[
        "silence",
        "add",
        "--ci",
        &host,
        "--duration",
        "2h",
        "--reason",
        "patching",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = collector.admin(&[
        "silence",
        "add",
        "--service",
        "shop",
        "--every",
        "sunday 02:00-04:00",
        "--reason",
        "weekly window",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let bad = collector.admin(&[
        "silence",
        "add",
        "--ci",
        &host,
        "--every",
        "someday 25:00-26:00",
        "--reason",
        "x",
    ]);
    assert!(
        !bad.status.success() && stderr(&bad).contains("expected e.g."),
        "{}",
        stderr(&bad)
    );
    let silences = collector.admin_json(&["silence", "list", "--json"]);
    assert_eq!(silences.as_array().unwrap().len(), 2, "{silences:#}");
    let first = silences[1]["id"].as_i64().unwrap().to_string();
    let out = collector.admin(&["silence", "remove", &first]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        collector
            .admin_json(&["silence", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A broken rules file: `rules check` names the line and exits 2; reload refuses it and the
    // running rules stay.
    std::fs::write(&rules, "[[rule]]\nname = \"bad\"\nmetric = \"filesystem.used_pct\"\nop = \">=\"\nwarning = 95\ncritical = 90\n").unwrap();
    let check = steward_e2e::run(
        std::process::Command::new(steward_e2e::bin("steward-collector"))
            .args(["rules", "check"])
            .arg(&rules),
    );
    assert_eq!(check.status.code(), Some(2), "{}", stderr(&check));
    assert!(
        stderr(&check).contains("line 6") || stderr(&check).contains("line 5"),
        "{}",
        stderr(&check)
    );
    let reload = collector.admin(&["rules", "reload"]);
    assert!(
        !reload.status.success() && stderr(&reload).contains("running rules stay"),
        "{}",
        stderr(&reload)
    );
    assert!(
        collector
            .admin_json(&["rules", "list", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "fs-any-use")
    );
    // Fixed: reloaded.
    std::fs::write(&rules, "[[rule]]\nname = \"fs-other\"\nmetric = \"filesystem.used_pct\"\nop = \">=\"\nwarning = 99.9\n").unwrap();
    let reload = collector.admin(&["rules", "reload"]);
    assert!(reload.status.success(), "{}", stderr(&reload));
    let names = collector.admin_json(&["rules", "list", "--json"]);
    assert!(
        names
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "fs-other")
    );
    assert!(
        !names
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "fs-any-use")
    );
}
