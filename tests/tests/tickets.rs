//! Tickets end to end through the real binaries into a real Request Tracker 5 on loopback
//! (started by the test, see `scripts/rt5.sh`), through a TCP proxy that can lose answers and
//! play dead: an event becomes exactly one RT ticket with the CI's context, is commented and
//! resolved; a lost create answer, RT down for a while and a collector killed mid-delivery
//! neither duplicate nor lose a ticket.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use steward_e2e::proxy::Proxy;
use steward_e2e::rt::RequestTracker;
use steward_e2e::{Collector, agent_once, stderr};

/// Rules that fire on this machine's root filesystem at once (it is more than 0 % used).
fn rules(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| {
            format!(
                "[[rule]]\nname = \"{name}\"\nmetric = \"filesystem.used_pct\"\nselector = {{ instance = \"/\" }}\nop = \">=\"\nwarning = 0.000001\nsummary = \"{name}: {{instance}} on {{ci}} is {{value}}% used\"\n"
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A collector with the rules and `[[connectors]]` entry appended to its config.
fn collector_with(rt_connector: &str, rule_names: &[&str], retry_initial_ms: u64) -> Collector {
    let mut collector = Collector::start();
    let rules_file = collector.dir.path().join("rules.toml");
    std::fs::write(&rules_file, rules(rule_names)).unwrap();
    let config = collector.data_dir().join("collector.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[rules]\nfile = {:?}\n\n[tickets]\nretry_initial_ms = {retry_initial_ms}\nretry_max_secs = 2\n\n[[connectors]]\n{rt_connector}\n",
        rules_file.display().to_string()
    ));
    std::fs::write(&config, text).unwrap();
    collector.kill();
    collector.serve();
    collector
}

fn tickets(collector: &Collector) -> Vec<serde_json::Value> {
    collector
        .admin_json(&["tickets", "list", "--json"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Waits (at most `limit`) until every outbox row is delivered and there are `n` of them.
fn wait_all_done(collector: &Collector, n: usize, limit: Duration) -> Vec<serde_json::Value> {
    let start = Instant::now();
    loop {
        let rows = tickets(collector);
        if rows.len() >= n && rows.iter().all(|r| r["state"] == "done") {
            return rows;
        }
        assert!(
            start.elapsed() < limit,
            "not all delivered: {rows:#?}\n{}",
            collector.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The correlation key an event's ticket carries: `steward-ID-FIRSTSEENMS`.
fn key_of(collector: &Collector, id: i64) -> String {
    let event = collector.admin_json(&["events", "show", &id.to_string(), "--json"]);
    format!("steward-{id}-{}", event["first_seen_at"].as_i64().unwrap())
}

fn firing_event_ids(collector: &Collector, rule_names: &[&str]) -> Vec<i64> {
    let rows = collector.wait_for_json(&["events", "list", "--json"], "the rules fire", |list| {
        rule_names.iter().all(|name| {
            list.as_array()
                .unwrap()
                .iter()
                .any(|e| e["rule"] == *name && e["state"] == "firing")
        })
    });
    rows.as_array()
        .unwrap()
        .iter()
        .filter(|e| rule_names.contains(&e["rule"].as_str().unwrap()) && e["state"] == "firing")
        .map(|e| e["id"].as_i64().unwrap())
        .collect()
}

#[test]
fn an_event_becomes_one_rt_ticket_even_when_the_create_answer_is_lost_then_is_commented_and_resolved()
 {
    let rt = RequestTracker::start();
    let proxy = Proxy::start(rt.port());
    let collector = collector_with(
        &rt.connector_toml_at("rt", &proxy.url(), ""),
        &["root-used"],
        200,
    );
    // The first answer RT gives (to the create) never reaches the collector.
    proxy.drop_responses(1);
    let agent = collector.enroll_agent("agent");
    let out = agent_once(&agent);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = firing_event_ids(&collector, &["root-used"])[0];
    let rows = wait_all_done(&collector, 1, Duration::from_secs(60));
    assert_eq!(proxy.dropped(), 1, "the create's answer was lost");
    let key = key_of(&collector, id);
    let found = rt.tickets_with_key(&key);
    assert_eq!(found.len(), 1, "exactly one ticket: {found:#?}");
    let ticket = found[0]["id"].as_str().unwrap().to_string();
    assert_eq!(rows[0]["ticket"], format!("#{ticket}"));
    let subject = rt.ticket(&ticket)["Subject"].as_str().unwrap().to_string();
    assert!(subject.contains("root-used: / on"), "{subject}");
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let history = rt.transactions(&ticket);
    let text = format!("{history}", history = serde_json::Value::Array(history));
    assert!(text.contains("Create"), "{text}");

    // The admin's view: the operation, its state and the RT ticket; the dead letter is empty.
    let out = collector.admin(&["tickets", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = steward_e2e::stdout(&out);
    assert!(
        listed.contains("CONNECTOR")
            && listed.contains("open")
            && listed.contains(&format!("#{ticket}")),
        "{listed}"
    );
    let failed = collector.admin_json(&["tickets", "list", "--failed", "--json"]);
    assert_eq!(failed, serde_json::json!([]));
    let out = collector.admin(&["tickets", "retry", "999"]);
    assert!(
        !out.status.success() && stderr(&out).contains("no failed ticket delivery 999"),
        "{}",
        stderr(&out)
    );
    let out = collector.admin(&["tickets", "retry", "--all"]);
    assert!(
        out.status.success() && steward_e2e::stdout(&out).contains("0 operation(s) queued again"),
        "{}",
        stderr(&out)
    );

    // Acknowledged in Steward: a comment in RT.
    let out = collector.admin(&["events", "ack", &id.to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_all_done(&collector, 2, Duration::from_secs(60));
    let comments = rt.comments(&ticket);
    assert!(
        comments
            .iter()
            .any(|c| c.contains("Acknowledged in Steward by admin")),
        "{comments:#?}"
    );
    // The body carries the CI from the CMDB: its name, class, and the event's rule.
    let attachments = rt.get(&format!(
        "/ticket/{ticket}/attachments?fields=Content,ContentType&per_page=100"
    ));
    let created = attachments["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["Content"].as_str())
        .find(|c| c.contains("Configuration item"))
        .unwrap_or_else(|| panic!("no body with the CI: {attachments:#}"))
        .to_string();
    assert!(
        created.contains(hostname.trim())
            && created.contains("root-used")
            && created.contains("Class:"),
        "{created}"
    );
    assert!(rt.status(&ticket) != "resolved");

    // Resolved in Steward: resolved in RT with the note.
    let out = collector.admin(&[
        "events",
        "resolve",
        &id.to_string(),
        "--reason",
        "cleaned up /",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_all_done(&collector, 3, Duration::from_secs(60));
    assert_eq!(rt.status(&ticket), "resolved");
    assert!(
        rt.comments(&ticket)
            .iter()
            .any(|c| c.contains("cleaned up /")),
        "{:#?}",
        rt.comments(&ticket)
    );
    assert_eq!(rt.tickets_with_key(&key).len(), 1, "still the one ticket");
    assert!(!hostname.is_empty());
}

#[test]
fn rt_down_for_a_while_and_a_collector_killed_mid_delivery_neither_lose_nor_duplicate_tickets() {
    let mut rt = RequestTracker::start();
    let proxy = Proxy::start(rt.port());
    let names = ["down-a", "down-b", "down-c"];
    // Slow retries: the collector is killed before its first retry of the lost create.
    let mut collector = collector_with(&rt.connector_toml_at("rt", &proxy.url(), ""), &names, 3000);
    rt.stop();
    let agent = collector.enroll_agent("agent");
    let out = agent_once(&agent);
    assert!(out.status.success(), "{}", stderr(&out));
    let ids = firing_event_ids(&collector, &names);
    assert_eq!(ids.len(), 3);
    // RT is down: the opens wait, with the reason.
    let waiting = collector.wait_for_json(
        &["tickets", "list", "--json"],
        "tries while RT is down",
        |rows| {
            let rows = rows.as_array().unwrap();
            rows.len() == 3
                && rows
                    .iter()
                    .all(|r| r["state"] == "pending" && r["attempts"].as_i64().unwrap() >= 1)
        },
    );
    assert!(
        waiting.as_array().unwrap()[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("create ticket"),
        "{waiting:#}"
    );
    // The collector goes down too (SIGKILL), RT comes back, the collector restarts: all three
    // are delivered, once each.
    collector.kill();
    rt.restart();
    collector.serve();
    wait_all_done(&collector, 3, Duration::from_secs(90));
    for id in &ids {
        assert_eq!(
            rt.tickets_with_key(&key_of(&collector, *id)).len(),
            1,
            "event {id}"
        );
    }

    // Mid-delivery: the create reaches RT, its answer is lost, and the collector is killed
    // before its retry. The restarted collector finds the ticket instead of creating another.
    proxy.drop_responses(1);
    let more = ["late-d"];
    let rules_file = collector.dir.path().join("rules.toml");
    let mut text = std::fs::read_to_string(&rules_file).unwrap();
    text.push('\n');
    text.push_str(&rules(&more));
    std::fs::write(&rules_file, text).unwrap();
    let out = collector.admin(&["rules", "reload"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = agent_once(&agent);
    assert!(out.status.success(), "{}", stderr(&out));
    let late = firing_event_ids(&collector, &more)[0];
    let key = key_of(&collector, late);
    let start = Instant::now();
    while proxy.dropped() < 1 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the create was not sent"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    collector.kill();
    assert_eq!(
        rt.tickets_with_key(&key).len(),
        1,
        "the lost create reached RT"
    );
    collector.serve();
    wait_all_done(&collector, 4, Duration::from_secs(60));
    assert_eq!(
        rt.tickets_with_key(&key).len(),
        1,
        "found, not created again"
    );
    let all = rt.search("Queue = 'General'");
    assert_eq!(all.len(), 4, "four events, four tickets: {all:#?}");
}
