//! `steward-bench tickets`: the ticket path's two targets, in-process on the release build
//! against a real SQLite file and a local webhook receiver over HTTP (loopback):
//! - latency: from a report's samples reaching the event service to the ticket's HTTP request
//!   arriving at the receiver, the event firing on that report (target ≤ 1 s);
//! - throughput: ticket operations per second the dispatcher sustains, draining a backlog of
//!   opens and resolves against the receiver (target ≥ 100/s).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use steward_collector::events::EventService;
use steward_collector::rules::{Metric, RuleSet, Sample, SystemClock};
use steward_collector::store::{EventChange, Store};
use steward_collector::tickets::dispatcher::Dispatcher;
use steward_collector::tickets::route::{Destination, Routes};
use steward_collector::tickets::{ConnectorConfig, TicketsConfig};

use crate::stats::{Latency, median_f64};

const LATENCY_TARGET_MS: u32 = 1000;
const THROUGHPUT_TARGET: f64 = 100.0;

#[derive(Debug, clap::Args)]
pub struct TicketsArgs {
    /// Events fired one after another for the latency figures.
    #[arg(long, default_value_t = 50)]
    events: usize,
    /// Events in the backlog (each an open and a resolve) for the throughput figure.
    #[arg(long, default_value_t = 1000)]
    backlog: usize,
    /// Throughput runs (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: u32,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct TicketsReport {
    latency_events: usize,
    latency_ms: Latency,
    latency_target_ms: u32,
    latency_met: bool,
    backlog_operations: usize,
    runs_ops_per_sec: Vec<f64>,
    ops_per_sec: f64,
    throughput_target: f64,
    throughput_met: bool,
}

/// Arrival times of requests at the receiver, by correlation key and operation.
type Arrivals = Arc<Mutex<Vec<(String, String, Instant)>>>;

async fn receiver() -> Result<(String, Arrivals)> {
    let arrivals: Arrivals = Arc::default();
    let seen = arrivals.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::Json<serde_json::Value>| {
            let seen = seen.clone();
            async move {
                let at = Instant::now();
                let key = body["correlation_key"].as_str().unwrap_or("").to_string();
                let op = body["op"].as_str().unwrap_or("").to_string();
                if let Ok(mut seen) = seen.lock() {
                    seen.push((key, op, at));
                }
                axum::Json(serde_json::json!({"ok": true}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, arrivals))
}

fn connector(url: &str, secret: &std::path::Path) -> Result<ConnectorConfig> {
    toml::from_str(&format!(
        "name = \"hook\"\ntype = \"webhook\"\nurl = \"{url}\"\nsecret_file = \"{}\"\n",
        secret.display()
    ))
    .context("the bench's connector config")
}

fn count(arrivals: &Arrivals) -> usize {
    arrivals.lock().map(|a| a.len()).unwrap_or(0)
}

async fn wait_for(arrivals: &Arrivals, n: usize, limit: Duration) -> Result<()> {
    let start = Instant::now();
    while count(arrivals) < n {
        if start.elapsed() > limit {
            bail!(
                "only {} of {n} ticket requests arrived within {limit:?}",
                count(arrivals)
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

pub fn run(args: &TicketsArgs) -> Result<()> {
    if args.events == 0 || args.backlog == 0 || args.runs == 0 {
        bail!("--events, --backlog and --runs must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let report = runtime.block_on(measure(args))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "latency, event fired -> ticket request at the receiver ({} events): p50 {} ms, p90 {} ms, p99 {} ms, max {} ms (target <= {} ms: {})",
        report.latency_events,
        report.latency_ms.p50,
        report.latency_ms.p90,
        report.latency_ms.p99,
        report.latency_ms.max,
        report.latency_target_ms,
        if report.latency_met { "met" } else { "NOT met" }
    );
    println!(
        "throughput, {} operations (open + resolve per event) drained: median {:.0} ops/s over runs {:?} (target >= {:.0}/s: {})",
        report.backlog_operations,
        report.ops_per_sec,
        report
            .runs_ops_per_sec
            .iter()
            .map(|v| v.round())
            .collect::<Vec<_>>(),
        report.throughput_target,
        if report.throughput_met {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}

async fn measure(args: &TicketsArgs) -> Result<TicketsReport> {
    let dir = tempfile_dir()?;
    let secret = dir.join("hook.secret");
    std::fs::write(&secret, "bench-secret\n")?;
    let (url, arrivals) = receiver().await?;
    let config = connector(&url, &secret)?;

    // Latency: the real event service (rules, routing, outbox) and the dispatcher.
    let store = Store::open(&dir.join("latency.db"), 1024, 4096)?;
    let rules = RuleSet::parse(
        "[[rule]]\nname = \"fs-bench\"\nmetric = \"filesystem.used_pct\"\nop = \">=\"\nwarning = 90.0\n",
        "bench",
    )?;
    let routes = Arc::new(Routes::new(std::slice::from_ref(&config), &[]));
    let (events, engine) =
        EventService::start(store.clone(), rules, None, Arc::new(SystemClock), routes).await?;
    let dispatcher = tokio::spawn(
        Dispatcher::new(
            store.clone(),
            TicketsConfig::default(),
            std::slice::from_ref(&config),
        )?
        .run(),
    );
    let mut samples = Vec::with_capacity(args.events);
    for i in 0..args.events {
        let ci = store
            .create_service(format!("host-{i}"), String::new())
            .await?;
        let before = count(&arrivals);
        let fired = Instant::now();
        events.metrics(
            ci,
            vec![Sample::new(Metric::FilesystemUsedPct, "/var", 97.0)],
            60,
        );
        wait_for(&arrivals, before + 1, Duration::from_secs(30)).await?;
        let arrived = arrivals
            .lock()
            .ok()
            .and_then(|a| a.last().map(|x| x.2))
            .unwrap_or(fired);
        samples.push(u32::try_from(arrived.duration_since(fired).as_millis()).unwrap_or(u32::MAX));
    }
    dispatcher.abort();
    engine.abort();
    let latency = Latency::of(&mut samples);

    // Throughput: a backlog of opens (and their resolves) queued while the dispatcher is
    // stopped, then drained.
    let mut runs = Vec::new();
    for run in 0..args.runs {
        let store = Store::open(&dir.join(format!("throughput-{run}.db")), 1024, 4096)?;
        let ci = store.create_service("host".into(), String::new()).await?;
        let to = vec![Destination {
            connector: "hook".into(),
            queue: String::new(),
        }];
        let change =
            |instance: usize, state: &str, escalate: Option<Vec<Destination>>| EventChange {
                rule: "fs-bench".into(),
                ci_id: ci,
                instance: format!("/fs{instance}"),
                to_state: state.into(),
                severity: "warning".into(),
                value: Some(97.0),
                threshold: Some(90.0),
                at: steward_collector::now_ms(),
                summary: format!("/fs{instance} 97 % used"),
                description: String::new(),
                silenced_by: None,
                symptom_of_ci: None,
                note: String::new(),
                escalate,
            };
        store
            .apply_event_changes(
                (0..args.backlog)
                    .map(|i| change(i, "firing", Some(to.clone())))
                    .collect(),
            )
            .await?;
        store
            .apply_event_changes(
                (0..args.backlog)
                    .map(|i| change(i, "resolved", None))
                    .collect(),
            )
            .await?;
        let before = count(&arrivals);
        let started = Instant::now();
        let dispatcher = tokio::spawn(
            Dispatcher::new(
                store.clone(),
                TicketsConfig::default(),
                std::slice::from_ref(&config),
            )?
            .run(),
        );
        let operations = 2 * args.backlog;
        wait_for(&arrivals, before + operations, Duration::from_secs(600)).await?;
        let elapsed = started.elapsed().as_secs_f64();
        dispatcher.abort();
        runs.push(operations as f64 / elapsed);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let ops_per_sec = median_f64(runs.clone());
    Ok(TicketsReport {
        latency_events: args.events,
        latency_met: latency.max <= LATENCY_TARGET_MS,
        latency_ms: latency,
        latency_target_ms: LATENCY_TARGET_MS,
        backlog_operations: 2 * args.backlog,
        runs_ops_per_sec: runs,
        ops_per_sec,
        throughput_target: THROUGHPUT_TARGET,
        throughput_met: ops_per_sec >= THROUGHPUT_TARGET,
    })
}

/// A fresh directory under the system's temporary directory.
fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "steward-bench-tickets-{}-{}",
        std::process::id(),
        steward_collector::now_ms()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
