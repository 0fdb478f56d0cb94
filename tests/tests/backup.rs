//! `backup` and `restore` through the real binaries: a backup taken while agents report, a
//! restore into the same and into a fresh data directory, and every refusal (a running
//! collector, a file that is not a Steward database, a damaged one, overwriting a backup).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use steward_e2e::{Collector, agent_once_on, bin, fixture_root, run, stderr, stdout};
use support::agent_id;

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

    let before_sender = support::stored_seqs(&collector, &agent_id(&dell));

    // Reports keep arriving while the backup runs: a sender posts them one after another with
    // the agent's certificate (sequence numbers 1, 2, ...) and notes when each was acknowledged.
    let file = collector.dir.path().join("steward-backup.db");
    let stop = AtomicBool::new(false);
    let acks = AtomicUsize::new(0);
    let (acked, began, ended, taken) = std::thread::scope(|scope| {
        let sender = scope.spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let (client, agent) = support::agent_client(&dell);
                let mut acked = Vec::new();
                let mut seq = 1;
                while !stop.load(Ordering::Relaxed) {
                    let body = support::metrics_envelope(&agent, seq, steward_collector::now_ms());
                    let (status, text) = support::post(&client, &collector, body).await;
                    assert_eq!((status, text.contains("\"stored\"")), (200, true), "{text}");
                    acked.push((seq, Instant::now()));
                    acks.fetch_add(1, Ordering::Relaxed);
                    seq += 1;
                }
                acked
            })
        });
        let acked_by = |n: usize, what: &str| {
            support::wait_until(what, Duration::from_secs(30), || {
                assert!(!sender.is_finished(), "the sender stopped");
                acks.load(Ordering::Relaxed) >= n
            })
        };
        acked_by(3, "reports acknowledged before the backup");
        let began = Instant::now();
        let taken = backup(&collector, &file);
        let ended = Instant::now();
        acked_by(
            acks.load(Ordering::Relaxed) + 3,
            "reports acknowledged after the backup",
        );
        stop.store(true, Ordering::Relaxed);
        (sender.join().unwrap(), began, ended, taken)
    });
    let during = acked
        .iter()
        .filter(|(_, at)| *at > began && *at < ended)
        .count();
    eprintln!(
        "{} reports acknowledged, {during} while the backup ran ({:?})",
        acked.len(),
        ended - began
    );
    assert!(
        during >= 1,
        "no report was acknowledged while the backup ran ({:?})",
        ended - began
    );
    let in_backup = counts(&taken["backup"]);
    assert_eq!((in_backup.0, in_backup.1), (1, 1), "{taken:#}");
    // The backup is one consistent moment of that stream: everything acknowledged before it
    // began, then nothing missing up to where it was taken (the sender waits for each answer,
    // so commits come in order), and nothing sent after it ended; the agent's counter agrees
    // with the rows.
    let copy = support::open_read_only(&file);
    let seqs = support::seqs_in(&copy, &agent_id(&dell));
    let (agent_reports, sent): (Vec<i64>, Vec<i64>) = seqs
        .iter()
        .copied()
        .partition(|s: &i64| before_sender.contains(s));
    assert_eq!(agent_reports, before_sender);
    let acked_before = acked.iter().filter(|(_, at)| *at < began).count() as i64;
    let sent_by_end = acked.iter().filter(|(_, at)| *at < ended).count() as i64 + 1;
    assert_eq!(sent, (1..=sent.len() as i64).collect::<Vec<_>>(), "a gap");
    assert!(
        (acked_before..=sent_by_end).contains(&(sent.len() as i64)),
        "{} of the sender's reports in the backup; {acked_before} acknowledged before it began, \
         at most {sent_by_end} sent before it ended",
        sent.len()
    );
    let (received, rows): (i64, i64) = copy
        .query_row(
            "SELECT reports_received, (SELECT COUNT(*) FROM reports r WHERE r.agent = a.num)
             FROM agents a",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((received, rows), (seqs.len() as i64, in_backup.2 as i64));
    drop(copy);
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
        err.contains(&format!(
            "{} is damaged (PRAGMA integrity_check)",
            damaged.display()
        )),
        "{err}"
    );
    untouched("a damaged backup");

    // A database whose latest changes are still in its write-ahead log: the file alone is not
    // the backup, and restore copies only the file.
    let walled = collector.dir.path().join("walled.db");
    std::fs::copy(&good, &walled).unwrap();
    let open = rusqlite::Connection::open(&walled).unwrap();
    let mode: String = open
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    open.execute_batch(
        "PRAGMA wal_autocheckpoint = 0; CREATE TABLE later (x); INSERT INTO later VALUES (1);",
    )
    .unwrap();
    let wal = collector.dir.path().join("walled.db-wal");
    assert!(std::fs::metadata(&wal).unwrap().len() > 0);
    let out = collector_cmd(
        &["restore", walled.to_str().unwrap()],
        &collector.data_dir(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&wal.display().to_string())
            && err.contains("not a self-contained backup")
            && err.contains("steward-collector backup"),
        "{err}"
    );
    untouched("a backup with its write-ahead log beside it");
    drop(open);

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
