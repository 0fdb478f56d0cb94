//! Named admin tokens through the real binaries: created, used, listed without their secret,
//! revoked (refused from the next request on), expired; the token `init` wrote keeps working as
//! `local`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};
use std::time::Duration;

use steward_e2e::{Collector, bin, run, stderr, stdout};

/// An admin command through `--url/--token/--ca-cert`, as from another machine.
fn with_token(collector: &Collector, token: &str, args: &[&str]) -> Output {
    run(Command::new(bin("steward-collector"))
        .args(args)
        .args(["--url", &collector.url(), "--token", token, "--ca-cert"])
        .arg(collector.data_dir().join("ca.crt")))
}

fn create(collector: &Collector, args: &[&str]) -> String {
    let mut all = vec!["admin-token", "create"];
    all.extend_from_slice(args);
    let out = collector.admin(&all);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    let token = stdout(&out);
    assert_eq!(token.lines().count(), 1, "the token alone: {token}");
    token.trim().to_string()
}

fn works(collector: &Collector, token: &str) -> bool {
    with_token(collector, token, &["ci", "list", "--json"])
        .status
        .success()
}

#[test]
fn named_admin_tokens_are_created_used_revoked_and_expire() {
    let collector = Collector::start();
    let ops = create(&collector, &["ops"]);
    let ci = create(&collector, &["ci-runner", "--expires", "30d"]);
    assert!(ops.starts_with("adm_") && ops != ci, "{ops} {ci}");
    assert!(works(&collector, &ops) && works(&collector, &ci));

    // Names are checked here (exit 2) and are unique at the collector (409).
    let out = collector.admin(&["admin-token", "create", "has space"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = collector.admin(&["admin-token", "create", "ops"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("409") && stderr(&out).contains("already exists"),
        "{}",
        stderr(&out)
    );

    // Listings never show a token or its hash.
    let listing = collector.admin(&["admin-token", "list", "--json"]);
    let table = collector.admin(&["admin-token", "list"]);
    for out in [&listing, &table] {
        let text = stdout(out);
        for secret in [&ops, &ci] {
            assert!(!text.contains(secret.as_str()), "{text}");
            let hash = steward_collector::sha256_hex(secret.as_bytes());
            assert!(!text.contains(&hash), "{text}");
        }
    }
    let tokens: serde_json::Value = serde_json::from_slice(&listing.stdout).unwrap();
    let names: Vec<&str> = tokens
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ci-runner", "local", "ops"]);
    assert!(tokens[0]["expires_at"].is_i64() && tokens[2]["expires_at"].is_null());
    // The use is recorded off the request's path (a spawned task): wait for it, bounded.
    collector.wait_for_json(
        &["admin-token", "list", "--json"],
        "the init token's use recorded as last_used_at",
        |tokens| tokens[1]["name"] == "local" && tokens[1]["last_used_at"].is_i64(),
    );
    assert!(stdout(&table).contains("LAST USED"), "{}", stdout(&table));

    // Revoked with another token: refused from the next request on; the others still work.
    let out = with_token(&collector, &ci, &["admin-token", "revoke", "ops"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("this command used"));
    let out = with_token(&collector, &ops, &["ci", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("401") && err.contains("\"ops\" was revoked"),
        "{err}"
    );
    assert!(works(&collector, &ci));
    let out = collector.admin(&["admin-token", "revoke", "nobody"]);
    assert!(stderr(&out).contains("404"), "{}", stderr(&out));

    // Revoking the token you use is allowed, and said.
    let out = with_token(&collector, &ci, &["admin-token", "revoke", "ci-runner"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("this command used"),
        "{}",
        stderr(&out)
    );
    assert!(!works(&collector, &ci));

    // Expired tokens are refused.
    let brief = create(&collector, &["brief", "--expires", "1s"]);
    std::thread::sleep(Duration::from_millis(1500));
    let out = with_token(&collector, &brief, &["ci", "list"]);
    let err = stderr(&out);
    assert!(err.contains("401") && err.contains("expired"), "{err}");

    // The init token is `local`, and still works (through --data-dir).
    assert!(collector.admin(&["ci", "list"]).status.success());
    let listed = collector.admin_json(&["admin-token", "list", "--json"]);
    let states: Vec<(String, bool)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["revoked_at"].is_i64(),
            )
        })
        .collect();
    assert!(states.contains(&("local".into(), false)), "{states:?}");
    assert!(states.contains(&("ops".into(), true)), "{states:?}");

    // Admin actions are logged with the token's name, never the token.
    let log = collector.log();
    assert!(
        log.contains("admin action") && log.contains("ci-runner"),
        "{log}"
    );
    for secret in [&ops, &ci, &brief] {
        assert!(!log.contains(secret.as_str()), "{log}");
    }
}

#[test]
fn revoking_local_survives_a_restart() {
    let mut collector = Collector::start();
    let ops = create(&collector, &["ops"]);
    let out = with_token(&collector, &ops, &["admin-token", "revoke", "local"]);
    assert!(out.status.success(), "{}", stderr(&out));
    collector.kill();
    collector.serve();
    let out = collector.admin(&["ci", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("\"local\" was revoked"),
        "{}",
        stderr(&out)
    );
    assert!(works(&collector, &ops));
    assert!(
        collector.log().contains("admin.token is revoked"),
        "{}",
        collector.log()
    );
}
