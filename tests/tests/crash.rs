//! Crash safety: agents send reports concurrently over mutual TLS while the collector is killed
//! with SIGKILL at a random moment, 20 times over one data directory. After each kill (the
//! process dead) the database must hold every report the collector acknowledged, and pass
//! SQLite's integrity check. `STEWARD_CRASH_SEED` replays a run's kill moments.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use steward_e2e::Collector;
use steward_shared::v1;
use support::{agent_client, database, envelope, inventory_envelope_at, reports_url, send_report};

const AGENTS: usize = 4;
/// Concurrent senders per agent (each with its own sequence numbers).
const STREAMS: u64 = 2;
const ROUNDS: usize = 20;

/// xorshift64*: enough randomness for kill moments, and replayable from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A small inventory whose content changes with `seq`, so it is written, not skipped.
fn inventory(agent_id: &str, seq: u64) -> Vec<u8> {
    let software = (0..20)
        .map(|i| v1::SoftwarePackage {
            name: format!("pkg-{i}"),
            version: format!("1.{}", if i == 0 { seq } else { 0 }),
            source: "dpkg".into(),
            ..Default::default()
        })
        .collect();
    inventory_envelope_at(
        agent_id,
        seq,
        1_795_000_000_000 + seq as i64,
        &format!("content-{seq}"),
        v1::Inventory {
            software,
            ..Default::default()
        },
    )
}

/// Sends reports one after another until the collector stops answering or `stop` is set;
/// records every acknowledged (agent, seq).
async fn sender(
    client: reqwest::Client,
    url: String,
    agent: String,
    next: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<(String, u64)>>>,
) {
    while !stop.load(Ordering::Relaxed) {
        let seq = next.fetch_add(1, Ordering::Relaxed);
        let body = if seq.is_multiple_of(7) {
            inventory(&agent, seq)
        } else {
            envelope(&agent, seq)
        };
        let response = send_report(&client, &url, body).await;
        // Refused, reset or cut off by the kill: not acknowledged.
        let Ok(response) = response else { break };
        let status = response.status().as_u16();
        let Ok(text) = response.text().await else {
            break;
        };
        match status {
            200 => {
                let ack: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert_eq!(ack["seq"], seq, "{text}");
                assert!(
                    ack["status"] == "stored" || ack["status"] == "duplicate",
                    "{text}"
                );
                acked.lock().unwrap().push((agent.clone(), seq));
            }
            // Overloaded: an agent would retry; nothing was promised.
            503 => tokio::time::sleep(Duration::from_millis(20)).await,
            other => panic!("unexpected answer {other} for seq {seq}: {text}"),
        }
    }
}

/// With the collector dead: every acknowledged report is there and the database is sound.
fn check_database(collector: &Collector, acked: &[(String, u64)], round: usize) {
    let db = database(collector);
    let integrity: Vec<String> = db
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(integrity, ["ok"], "round {round}: integrity check");
    let mut find = db
        .prepare(
            "SELECT COUNT(*) FROM reports r JOIN agents a ON a.num = r.agent
             WHERE a.id = ?1 AND r.seq = ?2",
        )
        .unwrap();
    let lost: Vec<&(String, u64)> = acked
        .iter()
        .filter(|(agent, seq)| {
            find.query_row(rusqlite::params![agent, *seq as i64], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap()
                != 1
        })
        .collect();
    assert!(
        lost.is_empty(),
        "round {round}: {} of {} acknowledged reports are not stored: {:?}\n{}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(20)],
        collector.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_reports_survive_sigkill_at_random_moments() {
    let started = Instant::now();
    let seed = std::env::var("STEWARD_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("STEWARD_CRASH_SEED={seed}");
    let mut rng = Rng(seed);

    let mut collector = Collector::start();
    let states: Vec<_> = (0..AGENTS)
        .map(|i| collector.enroll_agent(&format!("agent-{i}")))
        .collect();
    // Per agent and stream, the next sequence number: never reused across rounds.
    let next: Vec<Vec<Arc<AtomicU64>>> = (0..AGENTS)
        .map(|_| {
            (0..STREAMS)
                .map(|s| Arc::new(AtomicU64::new(1 + s * 1_000_000_000)))
                .collect()
        })
        .collect();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let url = reports_url(&collector);

    for round in 0..ROUNDS {
        if round > 0 {
            collector.serve();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for (state, streams) in states.iter().zip(&next) {
            for stream in streams {
                // A fresh client per round: pooled connections died with the last process.
                let (client, agent) = agent_client(state);
                tasks.push(tokio::spawn(sender(
                    client,
                    url.clone(),
                    agent,
                    stream.clone(),
                    stop.clone(),
                    acked.clone(),
                )));
            }
        }
        let delay = Duration::from_millis(50 + rng.next() % 1451);
        tokio::time::sleep(delay).await;
        collector.kill();
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("a sender still running 20 s after the kill")
                .unwrap();
        }
        let acked = acked.lock().unwrap().clone();
        eprintln!(
            "round {round}: killed after {delay:?}, {} acknowledged so far",
            acked.len()
        );
        check_database(&collector, &acked, round);
        // Generous: a loaded 2-core machine is slow, but a hang is still caught.
        assert!(
            started.elapsed() < Duration::from_secs(510),
            "the crash rounds take too long: {:?} after round {round}",
            started.elapsed()
        );
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 200,
        "only {} reports acknowledged in {ROUNDS} rounds: the load did not run",
        acked.len()
    );
    // And the collector starts again on what the kills left and takes reports.
    collector.serve();
    let (client, agent) = agent_client(&states[0]);
    let (status, text) = support::post(&client, &collector, envelope(&agent, 5_000_000_000)).await;
    assert_eq!((status, text.contains("\"stored\"")), (200, true), "{text}");
}
