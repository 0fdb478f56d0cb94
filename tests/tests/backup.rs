//! `backup` and `restore` through the real binaries: a backup taken while agents report, a
//! restore into the same and into a fresh data directory, and every refusal (a running
//! collector, a file that is not a Steward database, a damaged one, overwriting a backup).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use steward_e2e::{Collector, agent_once_on, bin, fixture_root, run, stderr, stdout};

fn collector_cmd(args: &[&str], data_dir: &Path) -> Output {
    run(Command::new(bin("steward-collector"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir))
}

/// `backup FILE --json`, which must succeed; its summary.
fn backup(collector: &Collector, file: &Path) -> serde_json::Value {
    let out = collector_cmd(
        &["backup", file.to_str().unwrap(), "--json"],
        &collector.data_dir(),
    );
    assert!(out.status.success(), "backup: {}", stderr(&out));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["integrity_check"], "ok");
    answer
}

fn counts(summary: &serde_json::Value) -> (u64, u64, u64) {
    (
        summary["cis"].as_u64().unwrap(),
        summary["agents"].as_u64().unwrap(),
        summary["reports"].as_u64().unwrap(),
    )
}

fn agent_ids(collector: &Collector) -> Vec<String> {
    let mut ids: Vec<String> = collector
        .admin_json(&["agents", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn agent_id(state: &Path) -> String {
    let id: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("agent.json")).unwrap()).unwrap();
    id["agent_id"].as_str().unwrap().to_string()
}

fn files_named(dir: &Path, part: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains(part))
        .collect()
}

#[test]
fn a_backup_taken_while_agents_report_restores_into_the_same_and_a_fresh_directory() {
    let mut collector = Collector::start();
    let dell = collector.enroll_agent("dell");
    let dell_root = fixture_root(collector.dir.path(), "dell-poweredge-r740");
    let out = agent_once_on(&dell, &dell_root);
    assert!(out.status.success(), "{}", stderr(&out));

    // Reports keep arriving while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let reporter = {
        let (stop, sent, dell, dell_root) =
            (stop.clone(), sent.clone(), dell.clone(), dell_root.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let out = agent_once_on(&dell, &dell_root);
                assert!(out.status.success(), "{}", stderr(&out));
                sent.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    while sent.load(Ordering::Relaxed) < 2 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let file = collector.dir.path().join("steward-backup.db");
    let taken = backup(&collector, &file);
    while sent.load(Ordering::Relaxed) < 4 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    reporter.join().unwrap();
    let in_backup = counts(&taken["backup"]);
    assert_eq!((in_backup.0, in_backup.1), (1, 1), "{taken:#}");
    assert!(in_backup.2 >= 3, "{taken:#}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let not_included = taken["not_included"].to_string();
    for name in ["secrets.key", "ca.key", "admin.token"] {
        assert!(not_included.contains(name), "{not_included}");
    }
    assert!(
        files_named(collector.dir.path(), ".partial").is_empty(),
        "no temporary file is left"
    );

    // The human output says what was written and what is not in it.
    let second = collector.dir.path().join("second.db");
    let out = collector_cmd(&["backup", second.to_str().unwrap()], &collector.data_dir());
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for part in [
        "schema version",
        "CIs",
        "agents",
        "integrity       ok",
        "secrets.key",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }

    // Backups are never overwritten.
    let before = std::fs::read(&file).unwrap();
    let out = collector_cmd(&["backup", file.to_str().unwrap()], &collector.data_dir());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("refusing to overwrite"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&file).unwrap(), before);

    // Not under a running collector.
    let out = collector_cmd(&["restore", file.to_str().unwrap()], &collector.data_dir());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("a collector is serving") && err.contains("collector.lock"),
        "{err}"
    );
    assert!(files_named(&collector.data_dir(), "before-restore").is_empty());

    // After the backup: another agent, which the restore takes away again.
    let pi = collector.enroll_agent("pi");
    let out = agent_once_on(&pi, &fixture_root(collector.dir.path(), "raspberry-pi-4"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(agent_ids(&collector).len(), 2);

    let (status, _) = collector.terminate();
    assert!(status.success(), "{status:?}: {}", collector.log());
    let out = collector_cmd(&["restore", file.to_str().unwrap()], &collector.data_dir());
    assert!(out.status.success(), "restore: {}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("before-restore"), "{text}");
    let kept = files_named(&collector.data_dir(), "before-restore");
    assert_eq!(kept.len(), 1, "{kept:?}");
    collector.serve();
    assert_eq!(agent_ids(&collector), vec![agent_id(&dell)]);
    let cis = collector.admin_json(&["ci", "list", "--json"]);
    assert_eq!(cis.as_array().unwrap().len(), 1, "{cis:#}");
    // Everything in the backup is back (a backup of the restored database counts the same).
    let again = backup(&collector, &collector.dir.path().join("again.db"));
    assert_eq!(counts(&again["backup"]), in_backup);
    // And the collector goes on from there: the agent reports again.
    let id = cis[0]["id"].to_string();
    let stored = |c: &Collector| {
        c.admin_json(&["ci", "show", &id, "--json"])["reports_stored"]
            .as_u64()
            .unwrap()
    };
    let restored = stored(&collector);
    let out = agent_once_on(&dell, &dell_root);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stored(&collector), restored + 1);

    // A fresh data directory (its own CA: agents would have to enroll again, but the CMDB is
    // all there).
    let mut fresh = Collector::start();
    fresh.terminate();
    let out = collector_cmd(&["restore", file.to_str().unwrap()], &fresh.data_dir());
    assert!(out.status.success(), "restore: {}", stderr(&out));
    fresh.serve();
    assert_eq!(agent_ids(&fresh), vec![agent_id(&dell)]);
    let cis = fresh.admin_json(&["ci", "list", "--json"]);
    assert_eq!(cis.as_array().unwrap().len(), 1, "{cis:#}");
    // The fresh directory's own admin token still works: it is registered as `local` at start.
    let tokens = fresh.admin_json(&["admin-token", "list", "--json"]);
    assert_eq!(tokens[0]["name"], "local", "{tokens:#}");
}

#[test]
fn restore_refuses_what_is_not_a_sound_steward_database_and_leaves_the_current_one() {
    let mut collector = Collector::start();
    let state = collector.enroll_agent("dell");
    let out = agent_once_on(
        &state,
        &fixture_root(collector.dir.path(), "dell-poweredge-r740"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let good = collector.dir.path().join("good.db");
    backup(&collector, &good);
    let (status, _) = collector.terminate();
    assert!(status.success(), "{status:?}");
    let db = collector.data_dir().join("steward.db");
    let current = std::fs::read(&db).unwrap();
    let untouched = |what: &str| {
        assert_eq!(
            std::fs::read(&db).unwrap(),
            current,
            "{what}: database changed"
        );
        assert!(
            files_named(&collector.data_dir(), "before-restore").is_empty()
                && files_named(&collector.data_dir(), "restoring").is_empty(),
            "{what}: files left behind"
        );
    };

    let text = collector.dir.path().join("notes.txt");
    std::fs::write(&text, "these are notes, not a database\n".repeat(100)).unwrap();
    let out = collector_cmd(&["restore", text.to_str().unwrap()], &collector.data_dir());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("notes.txt") && err.contains("not a Steward database"),
        "{err}"
    );
    assert!(err.contains("untouched"), "{err}");
    untouched("a text file");

    // A backup with garbage over its pages past the first.
    let mut bytes = std::fs::read(&good).unwrap();
    assert!(bytes.len() > 16 * 4096, "{}", bytes.len());
    for (i, b) in bytes[4096..].iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    let damaged = collector.dir.path().join("damaged.db");
    std::fs::write(&damaged, &bytes).unwrap();
    let out = collector_cmd(
        &["restore", damaged.to_str().unwrap()],
        &collector.data_dir(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("damaged.db") && err.contains("damaged"),
        "{err}"
    );
    untouched("a damaged backup");

    let out = collector_cmd(
        &["restore", "/nonexistent/backup.db"],
        &collector.data_dir(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    untouched("a missing file");

    // The good one still restores, and the collector serves it.
    let out = collector_cmd(&["restore", good.to_str().unwrap()], &collector.data_dir());
    assert!(out.status.success(), "{}", stderr(&out));
    collector.serve();
    assert_eq!(agent_ids(&collector), vec![agent_id(&state)]);
}
