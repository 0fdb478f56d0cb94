//! The agent's spool through the real binaries: a collector outage (SIGKILL), an agent killed
//! and restarted during it, then recovery. Every report made is delivered once, oldest first,
//! and the agent's figures reach `agents list --json` and `steward-agent status`.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use steward_e2e::{Collector, bin, fixture_root, stdout};
use support::{stored_seqs, wait_until};

fn start_agent(config: &Path, state: &Path, root: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(bin("steward-agent"))
        .arg("--config")
        .arg(config)
        .args(["run", "--interval", "1", "--state-dir"])
        .arg(state)
        .arg("--root")
        .arg(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn status(config: &Path, state: &Path) -> serde_json::Value {
    let out = steward_e2e::run(
        Command::new(bin("steward-agent"))
            .arg("--config")
            .arg(config)
            .args(["status", "--json", "--state-dir"])
            .arg(state),
    );
    assert!(out.status.success());
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[test]
fn an_outage_is_spooled_on_disk_and_every_report_is_delivered_once_after_it() {
    let mut collector = Collector::start();
    let state = collector.enroll_agent("agent");
    let root = fixture_root(collector.dir.path(), "dell-poweredge-r740");
    let config = collector.dir.path().join("agent.toml");
    std::fs::write(
        &config,
        "[spool]\nmax_backoff_secs = 2\nstart_jitter_secs = 0\n",
    )
    .unwrap();
    let agent_id = status(&config, &state)["identity"]["agent_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Left in the spool by a run long ago: past the 7-day limit, dropped at the start and
    // counted.
    let spool_dir = state.join("spool");
    std::fs::create_dir_all(&spool_dir).unwrap();
    std::fs::write(spool_dir.join("00000000000000000001-m-1000.report"), b"old").unwrap();

    let log = collector.dir.path().join("agent.log");
    let mut agent = start_agent(&config, &state, &root, &log);
    let agent_row =
        |collector: &Collector| collector.admin_json(&["agents", "list", "--json"])[0].clone();
    wait_until("3 reports stored", Duration::from_secs(30), || {
        agent_row(&collector)["reports_received"].as_i64().unwrap() >= 3
    });
    let before = agent_row(&collector);
    assert_eq!(before["spool"]["dropped"], 1, "{before:#}");

    // The collector dies; the agent keeps its reports on disk.
    collector.kill();
    wait_until("5 reports spooled", Duration::from_secs(30), || {
        status(&config, &state)["spool"]["backlog"]
            .as_u64()
            .unwrap()
            >= 5
    });
    // The agent dies too, and comes back: the spool survives it.
    agent.kill().unwrap();
    agent.wait().unwrap();
    let spooled = status(&config, &state)["spool"].clone();
    assert!(spooled["oldest_ms"].as_i64().is_some(), "{spooled:#}");
    assert!(spooled["bytes"].as_u64().unwrap() > 0, "{spooled:#}");
    let mut agent = start_agent(&config, &state, &root, &log);
    let backlog = spooled["backlog"].as_u64().unwrap();
    wait_until("more reports spooled", Duration::from_secs(30), || {
        status(&config, &state)["spool"]["backlog"]
            .as_u64()
            .unwrap()
            >= backlog + 2
    });

    // Recovery: everything waiting is delivered, and the agent says its spool is empty.
    collector.serve();
    wait_until("the spool drained", Duration::from_secs(60), || {
        status(&config, &state)["spool"]["backlog"] == 0
    });
    let after = collector.wait_for_json(
        &["agents", "list", "--json"],
        "the agent's report after the drain",
        |agents| agents[0]["spool"]["backlog"] == 0,
    )[0]
    .clone();
    agent.kill().unwrap();
    agent.wait().unwrap();

    let seqs = stored_seqs(&collector, &agent_id);
    // Each run of the agent numbers its reports from a fresh block: within a run, no report
    // is missing; across the two runs there is exactly one gap.
    let gaps = seqs.windows(2).filter(|w| w[1] != w[0] + 1).count();
    assert_eq!(gaps, 1, "reports missing: {seqs:?}");
    assert!(
        seqs.len() as u64 >= 3 + backlog + 2,
        "{} stored, {backlog} were spooled",
        seqs.len()
    );
    assert_eq!(
        after["reports_received"].as_u64().unwrap(),
        seqs.len() as u64,
        "{after:#}"
    );
    assert_eq!(after["last_seq"], *seqs.last().unwrap());
    assert_eq!(after["spool"]["dropped"], 1);
    assert!(after["last_seen_at"].as_i64().is_some());
    let agent_log = std::fs::read_to_string(&log).unwrap();
    assert!(
        agent_log.contains("reports wait in the spool")
            && agent_log.contains("delivered spooled reports"),
        "{agent_log}"
    );
    // The human listing shows the same figures.
    let listing = stdout(&collector.admin(&["agents", "list"]));
    assert!(
        listing.contains("SPOOLED") && listing.contains("DROPPED"),
        "{listing}"
    );
}
