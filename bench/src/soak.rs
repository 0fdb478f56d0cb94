//! `steward-bench soak`: a bounded soak of the collector and of one real agent at a fixed rate.
//!
//! One run: a fresh `steward-collector serve` on loopback (default rules on, metrics retention
//! `--retention-days`), `--agents` simulated agents enrolled in-process through the agent
//! library (each with its own key, certificate and keep-alive mutual-TLS connection, the code of
//! `steward-bench ingest`), and one real `steward-agent run --interval 1` (the release binary,
//! enrolled with its own state directory and config file).
//!
//! * **Start-up**: each simulated agent sends its first full inventory, as a real agent does
//!   when it starts (dmidecode-like hardware and `--packages` Debian packages).
//! * **Soak** (`--seconds`, the first `--warmup-seconds` of it warm-up): the simulated agents
//!   together send `--rate` metrics reports/s on a schedule: agent i's k-th report is due at
//!   `t0 + offset_i + k * period`, with the agents' offsets spread evenly over one period. A
//!   tick that finds the agent's previous report still in flight is skipped and counted as
//!   late; a report sent more than [`LATE_START`] after its due time is counted as started
//!   late; ticks a stalled task missed entirely are counted and skipped (no catch-up burst).
//!   Every `--inventory-every` seconds (staggered) each agent also sends an inventory, after
//!   that tick's metrics report: one in `--changed-every` with changed content (20 packages
//!   upgraded, 5 removed, 5 installed, as `steward-bench cmdb`; each agent at its own phase, so
//!   they arrive at an even rate), the others the "unchanged" marker real agents send.
//! * **Sampling** every [`SAMPLE_EVERY`]: RSS, PSS and CPU of the collector and of the real
//!   agent (`/proc`), the database's size on disk (steward.db + WAL + shm) and the reports
//!   acknowledged so far (an acknowledgement means the report is committed).
//!
//! Figures after warm-up: the achieved rate (median of the 10-s windows' stored metrics
//! reports/s), errors, acknowledgement latency p50/p99 (log-linear histogram, within 1.6 %),
//! and per process the RSS at the end of warm-up, the median, min and max RSS, and the drift:
//! (median of the last [`DRIFT_WINDOW_SECS`] − median of the first [`DRIFT_WINDOW_SECS`] after
//! warm-up) / first, "flat" within ±[`FLAT_PCT`] %. Shorter soaks use half the post-warm-up
//! time as the drift window. Every sample and window is kept in the JSON for plotting.
//!
//! Bounded: every loop has a count and a deadline; reports retry 5xx/network failures until a
//! hard stop [`DRAIN_GRACE`] after the soak; the disk's free space is checked before the start
//! and every minute (the run stops below [`MIN_FREE_BYTES`]). Ctrl-C or SIGTERM stops the load,
//! prints what was measured so far (marked interrupted) and stops the processes. Only the
//! processes this benchmark started are stopped, by PID, also on error paths; the temporary
//! directory is removed unless `--keep`. Only loopback is used.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use steward_agent::transport::{Ack, SendError, Transport};
use steward_shared::v1;
use tokio::runtime::Runtime;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::agent::{
    Machine, WorkDir, locate_release_bin, machine, path_str, print_report, strings, tokio_runtime,
};
use crate::cmdb::{self, Generation};
use crate::ingest::{self, SimAgent, StartedCollector};
use crate::peers::{self, Proc};
use crate::procfs;
use crate::stats::median_u64;

const MAX_AGENTS: usize = 5000;
/// Four hours at most.
const MAX_SECONDS: u64 = 4 * 3600;
const MAX_RATE: u32 = 20_000;
const MAX_PACKAGES: usize = 20_000;
/// Samples of the processes and the database, and the width of a rate window.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
const SAMPLE_SECS: u64 = 10;
/// The drift compares the medians of this many seconds at each end of the post-warm-up time.
const DRIFT_WINDOW_SECS: u64 = 600;
/// |drift| at most this (percent) is "flat".
const FLAT_PCT: f64 = 5.0;
/// A report sent more than this after its due time counts as started late.
const LATE_START: Duration = Duration::from_millis(100);
/// Start-up inventories in flight at once (each is ~90 kB and costs the collector a few ms).
const STARTUP_CONCURRENCY: usize = 16;
const STARTUP_TIMEOUT: Duration = Duration::from_secs(900);
/// After the soak, reports in flight may keep retrying this long.
const DRAIN_GRACE: Duration = Duration::from_secs(15);
/// Pause before resending a report answered 5xx/429 or lost: the collector's `Retry-After: 1`.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// The soak stops (as an error) when the work directory's filesystem has less free space.
const MIN_FREE_BYTES: u64 = 1 << 30;
/// For the disk check before the start: database bytes per metrics report (968 measured by
/// `steward-bench ingest`, WAL included) and per full inventory (its row, software rows, history).
const EST_BYTES_PER_REPORT: u64 = 1_100;
const EST_BYTES_PER_INVENTORY: u64 = 400_000;
/// Progress on stderr every this many samples (one minute).
const PROGRESS_EVERY_SAMPLES: u64 = 6;
/// The collector prunes reports past the retention this often (`server::PRUNE_EVERY`).
const COLLECTOR_PRUNE_EVERY_SECS: u64 = 600;
/// The real agent's reporting interval.
const REAL_AGENT_INTERVAL: u32 = 1;

#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// Seconds the soak lasts, warm-up included (a multiple of 10).
    #[arg(long, default_value_t = 3600)]
    seconds: u64,
    /// Seconds of warm-up at the start of the soak, not counted in the figures (a multiple of 10).
    #[arg(long, default_value_t = 300)]
    warmup_seconds: u64,
    /// Metrics reports per second the simulated agents send together.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Simulated agents, each enrolled with its own key, certificate and connection.
    #[arg(long, default_value_t = 1000)]
    agents: usize,
    /// Seconds between a simulated agent's inventories (staggered over the agents). Real agents
    /// send one every 6 h beside a report every 10 s; at 1 report/s per agent, 900 s is a
    /// compressed version of the same mix.
    #[arg(long, default_value_t = 900)]
    inventory_every: u64,
    /// One periodic inventory in N has changed content (each agent at its own phase, so they
    /// are spread over time); the others are "unchanged" markers (0: never changed).
    #[arg(long, default_value_t = 4)]
    changed_every: u32,
    /// Debian packages in each simulated agent's inventory.
    #[arg(long, default_value_t = 800)]
    packages: usize,
    /// The collector's metrics retention (`store.retention_days`; 1 is the least it accepts).
    #[arg(long, default_value_t = 1)]
    retention_days: u32,
    /// Print one JSON object on stdout (with every sample and window) instead of a table.
    #[arg(long)]
    json: bool,
    /// Keep the temporary directory (database, logs, configs) and print its path.
    #[arg(long)]
    keep: bool,
    /// Directory holding the release steward-collector and steward-agent (default: the
    /// workspace's target/release).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
}

pub fn run(args: &SoakArgs) -> Result<()> {
    validate(args)?;
    let collector_bin = ingest::locate_collector(args.bin_dir.as_deref())?;
    let agent_bin = locate_release_bin(args.bin_dir.as_deref(), "steward-agent")?;
    let ticks_per_second = procfs::clock_ticks_per_second();
    let runtime = tokio_runtime()?;
    steward_agent::install_crypto_provider();
    let workdir = WorkDir::create(0)?;
    let (guard, dir) = if args.keep {
        let path = workdir.keep();
        (None, path)
    } else {
        let path = workdir.path.clone();
        (Some(workdir), path)
    };
    let disk = check_disk(&dir, args)?;
    let bins = Bins {
        collector: collector_bin,
        agent: agent_bin,
    };
    // The processes are stopped when `soak` returns (by its guards), before the directory goes.
    let result = soak(&runtime, &bins, args, ticks_per_second, &dir, disk);
    drop(runtime);
    if args.keep {
        eprintln!("kept {}", dir.display());
    }
    drop(guard);
    let report = result?;
    print_report(args.json, &report, || report.table())?;
    if report.interrupted {
        bail!("interrupted: the figures above cover only the time before the signal");
    }
    Ok(())
}

fn validate(args: &SoakArgs) -> Result<()> {
    if !(1..=MAX_AGENTS).contains(&args.agents) {
        bail!("--agents must be between 1 and {MAX_AGENTS}");
    }
    if args.seconds > MAX_SECONDS || !args.seconds.is_multiple_of(SAMPLE_SECS) {
        bail!("--seconds must be a multiple of {SAMPLE_SECS} up to {MAX_SECONDS}");
    }
    if !args.warmup_seconds.is_multiple_of(SAMPLE_SECS) {
        bail!("--warmup-seconds must be a multiple of {SAMPLE_SECS}");
    }
    if args.seconds < args.warmup_seconds + 2 * SAMPLE_SECS {
        bail!(
            "--seconds must exceed --warmup-seconds by at least {} s (two samples)",
            2 * SAMPLE_SECS
        );
    }
    let max_rate = (1000 * args.agents as u64).min(u64::from(MAX_RATE));
    if args.rate == 0 || u64::from(args.rate) > max_rate {
        bail!(
            "--rate must be between 1 and {max_rate} (at most {MAX_RATE}, and 1,000 reports/s per agent)"
        );
    }
    if args.inventory_every < 60 {
        bail!("--inventory-every must be at least 60 s (the agent's own minimum)");
    }
    if args.packages > MAX_PACKAGES {
        bail!("--packages must be at most {MAX_PACKAGES}");
    }
    if !(1..=3650).contains(&args.retention_days) {
        bail!("--retention-days must be between 1 and 3650");
    }
    Ok(())
}

#[derive(Debug)]
struct Bins {
    collector: PathBuf,
    agent: PathBuf,
}

// ---------------------------------------------------------------------------------------------
// Disk space.

#[derive(Debug, Clone, Copy, Serialize)]
struct DiskCheck {
    free_bytes_at_start: u64,
    /// What the soak was estimated to write, from the sizes `steward-bench ingest` measured.
    estimated_bytes: u64,
}

/// Fails unless the work directory's filesystem has room for the estimated database plus
/// [`MIN_FREE_BYTES`] and a margin.
fn check_disk(dir: &Path, args: &SoakArgs) -> Result<DiskCheck> {
    let free = free_bytes(dir)?;
    let reports = u64::from(args.rate) * args.seconds;
    let changed_per_agent = if args.changed_every == 0 {
        0
    } else {
        args.seconds / args.inventory_every / u64::from(args.changed_every) + 1
    };
    let full_inventories = args.agents as u64 * (1 + changed_per_agent);
    let estimated = reports * EST_BYTES_PER_REPORT
        + full_inventories * EST_BYTES_PER_INVENTORY * args.packages.max(1) as u64 / 800;
    let needed = estimated + estimated / 2 + 2 * MIN_FREE_BYTES;
    let gib = |bytes: u64| bytes as f64 / f64::from(1u32 << 30);
    eprintln!(
        "disk: {:.1} GiB free under {}; the soak should write about {:.1} GiB",
        gib(free),
        dir.display(),
        gib(estimated)
    );
    if free < needed {
        bail!(
            "not enough disk: {:.1} GiB free under {}, {:.1} GiB wanted (estimate × 1.5 + 2 GiB); lower --seconds or --rate, or set TMPDIR to a larger filesystem",
            gib(free),
            dir.display(),
            gib(needed)
        );
    }
    Ok(DiskCheck {
        free_bytes_at_start: free,
        estimated_bytes: estimated,
    })
}

/// Free bytes for an unprivileged user on `dir`'s filesystem, from `df -Pk`.
fn free_bytes(dir: &Path) -> Result<u64> {
    let out = std::process::Command::new("df")
        .arg("-Pk")
        .arg(dir)
        .output()
        .context("cannot run df")?;
    if !out.status.success() {
        bail!("df -Pk {} failed", dir.display());
    }
    parse_df_available_kb(&String::from_utf8_lossy(&out.stdout))
        .map(|kb| kb * 1024)
        .ok_or_else(|| anyhow!("cannot read df's output"))
}

/// The "Available" column (kB) of `df -P` output's data line.
fn parse_df_available_kb(text: &str) -> Option<u64> {
    let line = text.lines().nth(1)?;
    line.split_whitespace().nth(3)?.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// The collector's configuration.

/// Sets `retention_days` in the `[store]` table `init` wrote (the only such line).
fn set_retention(text: &mut String, days: u32) -> Result<()> {
    let mut found = 0;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let key = line.split('=').next().unwrap_or_default().trim();
            if key == "retention_days" {
                found += 1;
                format!("retention_days = {days}")
            } else {
                line.to_string()
            }
        })
        .collect();
    if found != 1 {
        bail!("expected one retention_days line in collector.toml, found {found}");
    }
    *text = lines.join("\n") + "\n";
    Ok(())
}

/// The real agent's config file: everything in the soak's directory, a 1 s interval, inventory
/// as often as the simulated agents'.
fn agent_config(dir: &Path, inventory_every: u64) -> String {
    format!(
        "interval_secs = {REAL_AGENT_INTERVAL}\nstate_dir = {:?}\nroot = \"/\"\nlog_level = \"info\"\nrequest_timeout_secs = 30\n\n[inventory]\nenabled = true\ninterval_secs = {inventory_every}\nasset_file = {:?}\n",
        path_str(&dir.join("agent-state")),
        path_str(&dir.join("asset.toml")),
    )
}

// ---------------------------------------------------------------------------------------------
// Signals.

/// SIGINT and SIGTERM, watched from the start of the soak: a signal stops the load and the
/// processes in order instead of killing this benchmark before its guards run.
#[derive(Debug)]
struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    fn new(runtime: &Runtime) -> Result<Signals> {
        let _context = runtime.enter();
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).context("cannot watch SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot watch SIGTERM")?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }

    /// `work`, unless a signal comes first.
    async fn or_signal<T>(
        &mut self,
        what: &str,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        tokio::select! {
            result = work => result,
            () = self.recv() => bail!("interrupted during {what}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One soak.

fn soak(
    runtime: &Runtime,
    bins: &Bins,
    args: &SoakArgs,
    ticks_per_second: u64,
    dir: &Path,
    disk: DiskCheck,
) -> Result<Report> {
    let mut signals = Signals::new(runtime)?;
    let retention_days = args.retention_days;
    let StartedCollector {
        proc: mut collector,
        listen,
        data,
        fingerprint,
        log: collector_log,
    } = ingest::start_collector(&bins.collector, dir, |text| {
        set_retention(text, retention_days)
    })?;
    let url = format!("https://{listen}");
    let token = ingest::create_token(&bins.collector, dir, &data, args.agents + 1)?;

    // The real agent: enrolled now, started when the soak's clock starts.
    let agent_config_path = dir.join("agent.toml");
    std::fs::write(&agent_config_path, agent_config(dir, args.inventory_every))
        .with_context(|| format!("cannot write {}", agent_config_path.display()))?;
    let config_arg = path_str(&agent_config_path);
    peers::run_to_completion(
        &bins.agent,
        &strings(&[
            "--config",
            &config_arg,
            "enroll",
            "--collector",
            &url,
            "--token",
            &token,
            "--ca-fingerprint",
            &fingerprint,
        ]),
        dir,
        "agent-enroll",
        ingest::COMMAND_TIMEOUT,
    )
    .context("enrolling the real agent")?;

    let clock = std::time::Instant::now();
    let agents = runtime.block_on(signals.or_signal(
        "enrollment",
        ingest::enroll_all(&url, &token, &fingerprint, &dir.join("agents"), args.agents),
    ))?;
    let enroll_secs = clock.elapsed().as_secs_f64();
    eprintln!(
        "enrolled {} simulated agents in {enroll_secs:.1} s",
        agents.len()
    );
    collector.ensure_running()?;

    let shape = Shape::new(args);
    let clock = std::time::Instant::now();
    let (agents, startup) = runtime
        .block_on(signals.or_signal("start-up inventories", startup_inventories(agents, shape)))?;
    let startup_secs = clock.elapsed().as_secs_f64();
    eprintln!(
        "start-up: {} full inventories stored in {startup_secs:.1} s ({} failed)",
        startup.totals.inventories_full,
        startup.totals.failures()
    );
    if startup.totals.inventories_full == 0 {
        bail!(
            "no start-up inventory was stored: {}",
            startup.first_problem().unwrap_or_default()
        );
    }
    collector.ensure_running()?;

    let agent_log = dir.join("agent.log");
    let mut agent = Proc::spawn(
        "steward-agent run",
        &bins.agent,
        &strings(&[
            "--config",
            &config_arg,
            "run",
            "--interval",
            &REAL_AGENT_INTERVAL.to_string(),
        ]),
        &agent_log,
    )?;
    eprintln!(
        "soak: {} reports/s from {} simulated agents for {} s (warm-up {} s) + steward-agent pid {} at --interval {REAL_AGENT_INTERVAL}; collector pid {}",
        args.rate,
        args.agents,
        args.seconds,
        args.warmup_seconds,
        agent.pid(),
        collector.pid()
    );

    let db = data.join(steward_collector::config::DATABASE_FILE);
    let observed = runtime.block_on(drive(
        agents,
        shape,
        &mut collector,
        &mut agent,
        &db,
        dir,
        &mut signals,
    ))?;

    // Cross-checks while both still run.
    let listed = if observed.interrupted {
        None
    } else {
        Some(peers::run_to_completion(
            &bins.collector,
            &strings(&["agents", "list", "--json", "--data-dir", &path_str(&data)]),
            dir,
            "agents-list",
            ingest::COMMAND_TIMEOUT,
        )?)
    };
    let cross_check = match &listed {
        Some(json) => Some(cross_check(json, &observed, &bins.collector, dir, &data)?),
        None => None,
    };
    let db_end = DbSize::of(&db);
    agent.stop();
    collector.stop();
    let (collector_log_problems, collector_examples) = ingest::log_problems(&collector_log);
    let (agent_log_problems, agent_examples) = ingest::log_problems(&agent_log);
    for (name, count, examples) in [
        ("collector", collector_log_problems, collector_examples),
        ("steward-agent", agent_log_problems, agent_examples),
    ] {
        if count > 0 {
            eprintln!("{name} log: {count} WARN/ERROR line(s), for example:");
            for line in examples {
                eprintln!("  {line}");
            }
        }
    }
    Report::new(
        args,
        ticks_per_second,
        Setup {
            enroll_secs,
            startup_secs,
            startup: startup.totals,
            disk,
            db_end,
            cross_check,
            collector_log_problems,
            agent_log_problems,
        },
        observed,
    )
}

/// The shape of the simulated load.
#[derive(Debug, Clone, Copy)]
struct Shape {
    agents: usize,
    /// Each agent's interval between metrics reports.
    period: Duration,
    /// `interval_secs` in the simulated reports.
    interval_secs: u32,
    seconds: u64,
    warmup_seconds: u64,
    inventory_every: Duration,
    changed_every: u32,
    packages: usize,
}

impl Shape {
    fn new(args: &SoakArgs) -> Shape {
        let period = args.agents as f64 / f64::from(args.rate);
        Shape {
            agents: args.agents,
            period: Duration::from_secs_f64(period),
            interval_secs: period.ceil().clamp(1.0, f64::from(u32::MAX)) as u32,
            seconds: args.seconds,
            warmup_seconds: args.warmup_seconds,
            inventory_every: Duration::from_secs(args.inventory_every),
            changed_every: args.changed_every,
            packages: args.packages,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Simulated agents.

/// A simulated agent with its inventory state.
#[derive(Debug)]
struct Soaker {
    sim: SimAgent,
    /// The content the collector has (or will have) for this host.
    generation: Generation,
    /// Periodic inventories sent so far.
    inventories: u32,
    /// The collector asked for the full inventory after a marker.
    full_wanted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Metrics,
    InventoryFull,
    InventoryMarker,
}

impl Soaker {
    fn inventory_body(&mut self, full: bool, packages: usize) -> Result<Vec<u8>, String> {
        let index = self.sim.index;
        let host = self.sim.host.clone();
        let content = full.then(|| cmdb::inventory(index, &host, packages, self.generation));
        let now = ingest::unix_ms_now();
        let report = v1::InventoryReport {
            host,
            collected_at_ms: now,
            content_hash: cmdb::content_hash(index, self.generation),
            content,
        };
        self.sim.encode_next(now, v1::Payload::Inventory(report))
    }
}

fn other(generation: Generation) -> Generation {
    match generation {
        Generation::First => Generation::Changed,
        Generation::Changed => Generation::First,
    }
}

/// Each agent's first full inventory, [`STARTUP_CONCURRENCY`] at a time.
async fn startup_inventories(agents: Vec<SimAgent>, shape: Shape) -> Result<(Vec<Soaker>, Tally)> {
    let start = Instant::now();
    let recorder = Arc::new(Recorder::new(start, Duration::ZERO, 1));
    let hard_stop = start + STARTUP_TIMEOUT;
    let permits = Arc::new(tokio::sync::Semaphore::new(STARTUP_CONCURRENCY));
    let mut set = JoinSet::new();
    for sim in agents {
        let (recorder, permits) = (recorder.clone(), permits.clone());
        set.spawn(async move {
            let mut soaker = Soaker {
                sim,
                generation: Generation::First,
                inventories: 0,
                full_wanted: false,
            };
            let Ok(_permit) = permits.acquire_owned().await else {
                recorder.fail("start-up limiter closed".to_string());
                return soaker;
            };
            match soaker.inventory_body(true, shape.packages) {
                Ok(body) => {
                    let transport = soaker.sim.transport.clone();
                    send(&transport, body, Kind::InventoryFull, hard_stop, &recorder).await;
                }
                Err(message) => recorder.fail(message),
            }
            soaker
        });
    }
    let limit = hard_stop + ingest::SEND_TIMEOUT;
    let mut soakers = Vec::with_capacity(shape.agents);
    while let Some(joined) = tokio::time::timeout_at(limit, set.join_next())
        .await
        .map_err(|_| anyhow!("start-up inventories took longer than {STARTUP_TIMEOUT:?}"))?
    {
        soakers.push(joined.context("a start-up task failed")?);
    }
    soakers.sort_by_key(|s| s.sim.index);
    let tally = recorder.tally();
    Ok((soakers, tally))
}

/// What the soak's main loop observed.
#[derive(Debug)]
struct Observed {
    samples: Vec<SampleRow>,
    tally: Tally,
    interrupted: bool,
    /// Sequence numbers the simulated agents used (each once).
    seqs_issued: u64,
    /// Seconds from the soak's start to the last sample.
    elapsed_secs: f64,
}

/// Runs the soak: the agents' schedules, the samples every [`SAMPLE_EVERY`], the signals.
async fn drive(
    soakers: Vec<Soaker>,
    shape: Shape,
    collector: &mut Proc,
    agent: &mut Proc,
    db: &Path,
    dir: &Path,
    signals: &mut Signals,
) -> Result<Observed> {
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(shape.seconds);
    let hard_stop = deadline + DRAIN_GRACE;
    let windows = usize::try_from(
        (shape.seconds + (DRAIN_GRACE + ingest::SEND_TIMEOUT).as_secs()) / SAMPLE_SECS + 2,
    )
    .unwrap_or(usize::MAX);
    let recorder = Arc::new(Recorder::new(
        t0,
        Duration::from_secs(shape.warmup_seconds),
        windows,
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let count = soakers.len();
    let mut set = JoinSet::new();
    for (position, soaker) in soakers.into_iter().enumerate() {
        let spread = (position as f64 + 0.5) / count as f64;
        let schedule = Schedule {
            first_tick: t0 + shape.period.mul_f64(position as f64 / count as f64),
            first_inventory: t0 + shape.inventory_every.mul_f64(spread),
            deadline,
            hard_stop,
        };
        set.spawn(agent_loop(
            soaker,
            shape,
            schedule,
            recorder.clone(),
            stop.clone(),
        ));
    }

    let mut samples = Vec::new();
    let mut interrupted = false;
    let me = std::process::id();
    let sample_count = shape.seconds / SAMPLE_SECS;
    let mut last_progress_stored = 0;
    for k in 0..=sample_count {
        let due = t0 + SAMPLE_EVERY * u32::try_from(k).unwrap_or(u32::MAX);
        tokio::select! {
            () = tokio::time::sleep_until(due) => {}
            () = signals.recv() => { interrupted = true; }
        }
        if interrupted {
            eprintln!("signal: stopping the soak");
            recorder.freeze();
            break;
        }
        collector.ensure_running()?;
        agent.ensure_running()?;
        let row = SampleRow::take(t0, collector.pid(), agent.pid(), me, db, &recorder)?;
        recorder.close_windows(Instant::now());
        if k % PROGRESS_EVERY_SAMPLES == 0 && k > 0 {
            let stored = row.metrics_stored;
            eprintln!(
                "  {:>5} s: {:.0} metrics reports/s over the last minute, {} stored; collector RSS {} kB, agent RSS {} kB; database {:.0} MB",
                row.t_secs,
                (stored - last_progress_stored) as f64
                    / (PROGRESS_EVERY_SAMPLES * SAMPLE_SECS) as f64,
                stored,
                row.collector_rss_kb,
                row.agent_rss_kb,
                row.db_bytes as f64 / 1_048_576.0
            );
            last_progress_stored = stored;
            let free = free_bytes(dir)?;
            if free < MIN_FREE_BYTES {
                stop.store(true, Ordering::Relaxed);
                bail!(
                    "only {} MB free under {}: stopping the soak",
                    free / 1_048_576,
                    dir.display()
                );
            }
        }
        samples.push(row);
    }
    let elapsed_secs = samples.last().map_or(0.0, |s| s.t_secs as f64);
    stop.store(true, Ordering::Relaxed);
    if interrupted {
        set.abort_all();
    }
    let mut seqs_issued = 0;
    let limit = hard_stop + ingest::SEND_TIMEOUT + Duration::from_secs(5);
    while let Some(joined) = tokio::time::timeout_at(limit, set.join_next())
        .await
        .map_err(|_| anyhow!("simulated agents were still busy at the time limit"))?
    {
        match joined {
            Ok(issued) => seqs_issued += issued,
            Err(error) if error.is_cancelled() => {}
            Err(error) => recorder.fail(format!("an agent task failed: {error}")),
        }
    }
    // The last window may be partial (the drain after the soak's end).
    recorder.close_windows(Instant::now() + SAMPLE_EVERY + Duration::from_secs(1));
    Ok(Observed {
        samples,
        tally: recorder.tally(),
        interrupted,
        seqs_issued,
        elapsed_secs,
    })
}

#[derive(Debug, Clone, Copy)]
struct Schedule {
    first_tick: Instant,
    first_inventory: Instant,
    /// No report is started at or after this.
    deadline: Instant,
    /// No retry is started after this.
    hard_stop: Instant,
}

/// One simulated agent's schedule. Returns the sequence numbers it used (after start-up).
async fn agent_loop(
    mut soaker: Soaker,
    shape: Shape,
    schedule: Schedule,
    recorder: Arc<Recorder>,
    stop: Arc<AtomicBool>,
) -> u64 {
    let seq_before = soaker.sim.next_seq;
    let period_ns = u64::try_from(shape.period.as_nanos())
        .unwrap_or(u64::MAX)
        .max(1);
    let due_at = |k: u64| schedule.first_tick + Duration::from_nanos(period_ns.saturating_mul(k));
    let mut next_inventory = schedule.first_inventory;
    let mut in_flight: Option<JoinHandle<bool>> = None;
    // Bounded: one more tick than the soak holds; each pass moves k forward.
    let max_ticks = shape.seconds.saturating_mul(1_000_000_000) / period_ns + 2;
    let mut k = 0;
    while k < max_ticks {
        let due = due_at(k);
        if due >= schedule.deadline || stop.load(Ordering::Relaxed) {
            break;
        }
        tokio::time::sleep_until(due).await;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        k += 1;
        if in_flight.as_ref().is_some_and(|task| !task.is_finished()) {
            recorder.late_tick();
            continue;
        }
        if let Some(task) = in_flight.take() {
            reap(task, &mut soaker, &recorder).await;
        }
        let now = Instant::now();
        if now.saturating_duration_since(due) > LATE_START {
            recorder.late_start();
        }
        let mut bodies = Vec::with_capacity(2);
        match soaker.sim.next_body(shape.interval_secs) {
            Ok(body) => bodies.push((Kind::Metrics, body)),
            Err(message) => recorder.fail(message),
        }
        let inventory_due = now >= next_inventory;
        if inventory_due || soaker.full_wanted {
            let full = if inventory_due {
                next_inventory += shape.inventory_every;
                soaker.inventories += 1;
                // Agents' changed inventories fall in different rounds, so changed content
                // arrives at an even rate rather than all in one round.
                let round = u64::from(soaker.inventories) + soaker.sim.index as u64;
                let changed =
                    shape.changed_every > 0 && round.is_multiple_of(u64::from(shape.changed_every));
                if changed {
                    soaker.generation = other(soaker.generation);
                }
                changed || soaker.full_wanted
            } else {
                true
            };
            soaker.full_wanted = false;
            let kind = if full {
                Kind::InventoryFull
            } else {
                Kind::InventoryMarker
            };
            match soaker.inventory_body(full, shape.packages) {
                Ok(body) => bodies.push((kind, body)),
                Err(message) => recorder.fail(message),
            }
        }
        let (transport, recorder_for_task) = (soaker.sim.transport.clone(), recorder.clone());
        let hard_stop = schedule.hard_stop;
        in_flight = Some(tokio::spawn(async move {
            let mut full_wanted = false;
            for (kind, body) in bodies {
                let ack = send(&transport, body, kind, hard_stop, &recorder_for_task).await;
                if kind == Kind::InventoryMarker && ack.is_some_and(|a| a.send_full_inventory) {
                    recorder_for_task.full_requested();
                    full_wanted = true;
                }
            }
            full_wanted
        }));
        // A task that woke more than a period late skips the ticks it missed (no burst).
        let behind = Instant::now().saturating_duration_since(schedule.first_tick);
        let current = u64::try_from(behind.as_nanos()).unwrap_or(u64::MAX) / period_ns;
        if current > k {
            recorder.missed(current - k);
            k = current;
        }
    }
    if let Some(task) = in_flight.take() {
        reap(task, &mut soaker, &recorder).await;
    }
    soaker.sim.next_seq - seq_before
}

async fn reap(task: JoinHandle<bool>, soaker: &mut Soaker, recorder: &Recorder) {
    match task.await {
        Ok(full_wanted) => soaker.full_wanted |= full_wanted,
        Err(error) if error.is_cancelled() => {}
        Err(error) => recorder.fail(format!("a send task failed: {error}")),
    }
}

/// Sends one report until it is acknowledged or refused, retrying 5xx, 429 and network
/// failures after [`RETRY_AFTER`] until `hard_stop`.
async fn send(
    transport: &Transport,
    body: Vec<u8>,
    kind: Kind,
    hard_stop: Instant,
    recorder: &Recorder,
) -> Option<Ack> {
    let start = Instant::now();
    loop {
        match transport.send(body.clone()).await {
            Ok(ack) => {
                let micros = u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX);
                match ack.status.as_str() {
                    "stored" => recorder.acked(kind, micros, false),
                    "duplicate" => recorder.acked(kind, micros, true),
                    other => {
                        recorder.reject(format!(
                            "unexpected ack status {other:?} for seq {}",
                            ack.seq
                        ));
                        return None;
                    }
                }
                return Some(ack);
            }
            Err(SendError::Retryable(message)) => {
                recorder.retry(message);
                if Instant::now() + RETRY_AFTER >= hard_stop {
                    recorder.gave_up();
                    return None;
                }
                tokio::time::sleep(RETRY_AFTER).await;
            }
            Err(SendError::Rejected { status, message }) => {
                recorder.reject(format!("{status}: {message}"));
                return None;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Recording outcomes.

/// A log-linear latency histogram (microseconds): exact below 128 µs, then 64 buckets per power
/// of two, so a percentile read from it is within 1/64 (1.6 %) of the true value.
#[derive(Debug, Clone)]
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u32,
}

const HISTOGRAM_BUCKETS: usize = 26 * 64 + 128;

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            counts: vec![0; HISTOGRAM_BUCKETS],
            total: 0,
            max: 0,
        }
    }

    fn bucket(value: u32) -> usize {
        if value < 128 {
            return value as usize;
        }
        let shift = 31 - value.leading_zeros() - 6;
        shift as usize * 64 + (value >> shift) as usize
    }

    /// The largest value that falls in `bucket`.
    fn upper(bucket: usize) -> u32 {
        if bucket < 128 {
            return bucket as u32;
        }
        let shift = (bucket / 64 - 1) as u32;
        let top = (bucket - (bucket / 64 - 1) * 64) as u64;
        u32::try_from(((top + 1) << shift) - 1).unwrap_or(u32::MAX)
    }

    fn add(&mut self, value: u32) {
        if let Some(count) = self.counts.get_mut(Self::bucket(value)) {
            *count += 1;
        }
        self.total += 1;
        self.max = self.max.max(value);
    }

    /// The nearest-rank percentile, as its bucket's upper bound (never above the maximum).
    fn percentile(&self, p: f64) -> u32 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((p.clamp(0.0, 100.0) / 100.0 * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Self::upper(bucket).min(self.max);
            }
        }
        self.max
    }
}

/// Counts of outcomes.
#[derive(Debug, Clone, Copy, Default, Serialize)]
struct Counts {
    metrics_stored: u64,
    metrics_duplicate: u64,
    inventories_full: u64,
    inventory_markers: u64,
    /// Markers the collector answered with "send the full inventory".
    full_requested: u64,
    /// Attempts answered 503 (overload: `store.queue_max` or `ingest.max_inflight_bytes`).
    retried_503: u64,
    /// Other retryable failures: other 5xx, 429, 408, network errors, timeouts.
    retried_other: u64,
    /// Reports the collector refused (4xx): should be 0.
    rejected: u64,
    /// Reports still failing at the hard stop.
    gave_up: u64,
    /// Reports that could not be built, or tasks that failed (a bug in this benchmark).
    failed: u64,
    /// Ticks skipped because the agent's previous report was still in flight.
    late_ticks: u64,
    /// Reports sent more than 100 ms after their due time.
    late_starts: u64,
    /// Ticks a stalled agent task missed and skipped.
    missed_ticks: u64,
}

impl Counts {
    fn failures(&self) -> u64 {
        self.rejected + self.gave_up + self.failed
    }
}

/// One 10-s window of the soak (by the time each outcome happened).
#[derive(Debug, Clone, Serialize)]
struct WindowRow {
    /// Seconds from the soak's start to the window's end.
    t_end_secs: u64,
    reports_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    #[serde(flatten)]
    counts: Counts,
}

#[derive(Debug)]
struct Window {
    counts: Counts,
    latencies: Histogram,
}

#[derive(Debug)]
struct RecorderInner {
    frozen: bool,
    windows: Vec<Window>,
    closed: Vec<WindowRow>,
    /// Windows before this index are closed.
    next_open: usize,
    totals: Counts,
    after_warmup: Counts,
    metrics_after_warmup: Histogram,
    inventories_after_warmup: Histogram,
    first_rejection: Option<String>,
    first_retryable: Option<String>,
    first_failure: Option<String>,
}

/// Outcomes over time, shared by every agent task (a short lock per outcome).
#[derive(Debug)]
struct Recorder {
    t0: Instant,
    warmup: Duration,
    inner: Mutex<RecorderInner>,
}

/// What a [`Recorder`] counted.
#[derive(Debug, Clone)]
struct Tally {
    totals: Counts,
    after_warmup: Counts,
    metrics_after_warmup: Histogram,
    inventories_after_warmup: Histogram,
    windows: Vec<WindowRow>,
    first_rejection: Option<String>,
    first_retryable: Option<String>,
    first_failure: Option<String>,
}

impl Tally {
    fn first_problem(&self) -> Option<String> {
        self.first_rejection
            .clone()
            .or_else(|| self.first_failure.clone())
            .or_else(|| self.first_retryable.clone())
    }
}

impl Recorder {
    fn new(t0: Instant, warmup: Duration, windows: usize) -> Recorder {
        Recorder {
            t0,
            warmup,
            inner: Mutex::new(RecorderInner {
                frozen: false,
                windows: (0..windows.max(1))
                    .map(|_| Window {
                        counts: Counts::default(),
                        latencies: Histogram::new(),
                    })
                    .collect(),
                closed: Vec::new(),
                next_open: 0,
                totals: Counts::default(),
                after_warmup: Counts::default(),
                metrics_after_warmup: Histogram::new(),
                inventories_after_warmup: Histogram::new(),
                first_rejection: None,
                first_retryable: None,
                first_failure: None,
            }),
        }
    }

    /// Applies `f` to the whole soak's counts, the post-warm-up counts (after warm-up only) and
    /// the current window's; `latency` goes to the histograms of metrics or inventory reports.
    fn record(&self, f: impl Fn(&mut Counts), latency: Option<(Kind, u32)>) {
        let now = Instant::now();
        let since = now.saturating_duration_since(self.t0);
        let after_warmup = since >= self.warmup;
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.frozen {
            return;
        }
        f(&mut inner.totals);
        if after_warmup {
            f(&mut inner.after_warmup);
        }
        let last = inner.windows.len() - 1;
        let index = usize::try_from(since.as_secs() / SAMPLE_SECS)
            .unwrap_or(last)
            .min(last);
        if let Some(window) = inner.windows.get_mut(index) {
            f(&mut window.counts);
            if let Some((Kind::Metrics, micros)) = latency {
                window.latencies.add(micros);
            }
        }
        match latency {
            Some((Kind::Metrics, micros)) if after_warmup => {
                inner.metrics_after_warmup.add(micros);
            }
            Some((_, micros)) if after_warmup => inner.inventories_after_warmup.add(micros),
            _ => {}
        }
    }

    fn acked(&self, kind: Kind, micros: u32, duplicate: bool) {
        self.record(
            |c| match (kind, duplicate) {
                (Kind::Metrics, false) => c.metrics_stored += 1,
                (Kind::Metrics, true) => c.metrics_duplicate += 1,
                (Kind::InventoryFull, _) => c.inventories_full += 1,
                (Kind::InventoryMarker, _) => c.inventory_markers += 1,
            },
            Some((kind, micros)),
        );
    }

    fn retry(&self, message: String) {
        let overload = message.starts_with("503");
        self.record(
            |c| {
                if overload {
                    c.retried_503 += 1;
                } else {
                    c.retried_other += 1;
                }
            },
            None,
        );
        self.note(|inner| &mut inner.first_retryable, message);
    }

    fn reject(&self, message: String) {
        self.record(|c| c.rejected += 1, None);
        self.note(|inner| &mut inner.first_rejection, message);
    }

    fn fail(&self, message: String) {
        self.record(|c| c.failed += 1, None);
        self.note(|inner| &mut inner.first_failure, message);
    }

    fn gave_up(&self) {
        self.record(|c| c.gave_up += 1, None);
    }

    fn late_tick(&self) {
        self.record(|c| c.late_ticks += 1, None);
    }

    fn late_start(&self) {
        self.record(|c| c.late_starts += 1, None);
    }

    fn missed(&self, ticks: u64) {
        self.record(|c| c.missed_ticks += ticks, None);
    }

    fn full_requested(&self) {
        self.record(|c| c.full_requested += 1, None);
    }

    fn note(&self, slot: impl Fn(&mut RecorderInner) -> &mut Option<String>, message: String) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if !inner.frozen {
            slot(&mut inner).get_or_insert(message);
        }
    }

    /// From now on nothing is recorded (after a signal the processes are going away).
    fn freeze(&self) {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .frozen = true;
    }

    /// Summarises every window that ended at least a second before `now` and drops its
    /// histogram.
    fn close_windows(&self, now: Instant) {
        let since = now.saturating_duration_since(self.t0);
        let ended = since.saturating_sub(Duration::from_secs(1)).as_secs() / SAMPLE_SECS;
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let ended = usize::try_from(ended)
            .unwrap_or(usize::MAX)
            .min(inner.windows.len());
        while inner.next_open < ended {
            let index = inner.next_open;
            let window = &mut inner.windows[index];
            let ms = |micros: u32| f64::from(micros) / 1000.0;
            let row = WindowRow {
                t_end_secs: (index as u64 + 1) * SAMPLE_SECS,
                reports_per_sec: window.counts.metrics_stored as f64 / SAMPLE_SECS as f64,
                p50_ms: ms(window.latencies.percentile(50.0)),
                p99_ms: ms(window.latencies.percentile(99.0)),
                max_ms: ms(window.latencies.max),
                counts: window.counts,
            };
            window.latencies = Histogram {
                counts: Vec::new(),
                total: 0,
                max: 0,
            };
            inner.closed.push(row);
            inner.next_open += 1;
        }
    }

    fn tally(&self) -> Tally {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        Tally {
            totals: inner.totals,
            after_warmup: inner.after_warmup,
            metrics_after_warmup: inner.metrics_after_warmup.clone(),
            inventories_after_warmup: inner.inventories_after_warmup.clone(),
            windows: inner.closed.clone(),
            first_rejection: inner.first_rejection.clone(),
            first_retryable: inner.first_retryable.clone(),
            first_failure: inner.first_failure.clone(),
        }
    }

    fn metrics_stored(&self) -> u64 {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.totals.metrics_stored
    }

    fn reports_stored(&self) -> u64 {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let c = &inner.totals;
        c.metrics_stored + c.inventories_full + c.inventory_markers
    }
}

// ---------------------------------------------------------------------------------------------
// Samples.

/// The database's files.
#[derive(Debug, Clone, Copy, Default, Serialize)]
struct DbSize {
    db_bytes: u64,
    wal_bytes: u64,
    shm_bytes: u64,
}

impl DbSize {
    fn of(db: &Path) -> DbSize {
        let size = |suffix: &str| {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            std::fs::metadata(PathBuf::from(name)).map_or(0, |m| m.len())
        };
        DbSize {
            db_bytes: size(""),
            wal_bytes: size("-wal"),
            shm_bytes: size("-shm"),
        }
    }

    fn total(&self) -> u64 {
        self.db_bytes + self.wal_bytes + self.shm_bytes
    }
}

/// One sample, every [`SAMPLE_EVERY`].
#[derive(Debug, Clone, Serialize)]
struct SampleRow {
    t_secs: u64,
    collector_rss_kb: u64,
    collector_pss_kb: u64,
    /// utime + stime so far, ms (clock ticks).
    collector_cpu_ms: f64,
    agent_rss_kb: u64,
    agent_pss_kb: u64,
    /// Time on CPU so far, ms (schedstat, ns resolution).
    agent_cpu_ms: f64,
    /// This load generator's CPU so far, ms.
    generator_cpu_ms: f64,
    /// steward.db + WAL + shm.
    db_bytes: u64,
    wal_bytes: u64,
    /// Reports acknowledged (so committed) since the soak started: metrics and inventories.
    reports_stored: u64,
    metrics_stored: u64,
    #[serde(skip)]
    collector_cpu_ticks: u64,
    #[serde(skip)]
    generator_cpu_ticks: u64,
}

impl SampleRow {
    fn take(
        t0: Instant,
        collector: u32,
        agent: u32,
        me: u32,
        db: &Path,
        recorder: &Recorder,
    ) -> Result<SampleRow> {
        let t_secs = (Instant::now().saturating_duration_since(t0).as_millis() as u64 + 500)
            / 1000
            / SAMPLE_SECS
            * SAMPLE_SECS;
        let c = procfs::sample_pid(collector).context("collector")?;
        let a = procfs::sample_pid(agent).context("steward-agent")?;
        let g = procfs::sample_pid(me).context("this benchmark")?;
        let size = DbSize::of(db);
        Ok(SampleRow {
            t_secs,
            collector_rss_kb: c.rss_kb,
            collector_pss_kb: c.pss_kb,
            collector_cpu_ms: 0.0,
            agent_rss_kb: a.rss_kb,
            agent_pss_kb: a.pss_kb,
            agent_cpu_ms: a.cpu_ns as f64 / 1e6,
            generator_cpu_ms: 0.0,
            db_bytes: size.total(),
            wal_bytes: size.wal_bytes,
            reports_stored: recorder.reports_stored(),
            metrics_stored: recorder.metrics_stored(),
            collector_cpu_ticks: c.cpu_ticks,
            generator_cpu_ticks: g.cpu_ticks,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Cross-checks with the collector.

#[derive(Debug, Clone, Serialize)]
struct CrossCheck {
    /// `last_seq` summed over the simulated agents (`agents list`): their sequence numbers
    /// start at 1, so this is the reports each one had stored.
    collector_sim_last_seq_sum: u64,
    /// Sequence numbers the simulated agents used, start-up included.
    sim_seqs_issued: u64,
    /// Metrics reports of the real agent's CI kept in the database (`ci show`).
    agent_reports_stored: Option<u64>,
}

fn cross_check(
    listed: &str,
    observed: &Observed,
    collector_bin: &Path,
    dir: &Path,
    data: &Path,
) -> Result<CrossCheck> {
    let agents: serde_json::Value =
        serde_json::from_str(listed).context("agents list --json is not JSON")?;
    let agents = agents
        .as_array()
        .ok_or_else(|| anyhow!("agents list --json is not an array"))?;
    let is_sim = |a: &serde_json::Value| {
        a.get("hostname")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|h| h.starts_with("sim-"))
    };
    let sim_sum = agents
        .iter()
        .filter(|a| is_sim(a))
        .filter_map(|a| a.get("last_seq").and_then(serde_json::Value::as_u64))
        .sum();
    let real_ci = agents
        .iter()
        .find(|a| !is_sim(a))
        .and_then(|a| a.get("ci_id").and_then(serde_json::Value::as_i64));
    let agent_reports_stored = match real_ci {
        Some(ci) => {
            let shown = peers::run_to_completion(
                collector_bin,
                &strings(&[
                    "ci",
                    "show",
                    &ci.to_string(),
                    "--json",
                    "--data-dir",
                    &path_str(data),
                ]),
                dir,
                "ci-show",
                ingest::COMMAND_TIMEOUT,
            )?;
            let ci: serde_json::Value =
                serde_json::from_str(&shown).context("ci show --json is not JSON")?;
            ci.get("reports_stored").and_then(serde_json::Value::as_u64)
        }
        None => None,
    };
    // Start-up used one sequence number per agent.
    let sim_seqs_issued = observed.seqs_issued + agents.iter().filter(|a| is_sim(a)).count() as u64;
    Ok(CrossCheck {
        collector_sim_last_seq_sum: sim_sum,
        sim_seqs_issued,
        agent_reports_stored,
    })
}

// ---------------------------------------------------------------------------------------------
// Figures and output.

/// One process's memory over the soak.
#[derive(Debug, Clone, Serialize)]
struct MemoryFigures {
    name: &'static str,
    /// RSS in the sample at the end of warm-up.
    rss_at_warmup_end_kb: u64,
    /// Median, min and max RSS over the samples after warm-up.
    rss_median_kb: u64,
    rss_min_kb: u64,
    rss_max_kb: u64,
    rss_first_window_median_kb: u64,
    rss_last_window_median_kb: u64,
    /// (last window median − first window median) / first, percent.
    drift_pct: f64,
    /// "flat" within ±5 %, else "growing" or "shrinking".
    verdict: &'static str,
    pss_median_kb: u64,
    /// Cores kept busy after warm-up.
    cpu_cores: f64,
}

/// Drift verdict.
fn verdict(drift_pct: f64) -> &'static str {
    if drift_pct.abs() <= FLAT_PCT {
        "flat"
    } else if drift_pct > 0.0 {
        "growing"
    } else {
        "shrinking"
    }
}

/// The drift window: [`DRIFT_WINDOW_SECS`], or half the post-warm-up time if that is shorter.
fn drift_window_secs(post_warmup_secs: u64) -> u64 {
    DRIFT_WINDOW_SECS.min(post_warmup_secs / 2).max(SAMPLE_SECS)
}

/// Memory figures from `(t_secs, rss_kb, pss_kb)` samples.
fn memory_figures(
    name: &'static str,
    series: &[(u64, u64, u64)],
    warmup: u64,
    end: u64,
    cpu_cores: f64,
) -> MemoryFigures {
    let after: Vec<&(u64, u64, u64)> = series.iter().filter(|s| s.0 >= warmup).collect();
    let rss: Vec<u64> = after.iter().map(|s| s.1).collect();
    let window = drift_window_secs(end.saturating_sub(warmup));
    let first = median_u64(
        after
            .iter()
            .filter(|s| s.0 < warmup + window)
            .map(|s| s.1)
            .collect(),
    );
    let last = median_u64(
        after
            .iter()
            .filter(|s| s.0 + window > end)
            .map(|s| s.1)
            .collect(),
    );
    let drift_pct = if first == 0 {
        0.0
    } else {
        (last as f64 - first as f64) * 100.0 / first as f64
    };
    MemoryFigures {
        name,
        rss_at_warmup_end_kb: after.first().map_or(0, |s| s.1),
        rss_median_kb: median_u64(rss.clone()),
        rss_min_kb: rss.iter().copied().min().unwrap_or(0),
        rss_max_kb: rss.iter().copied().max().unwrap_or(0),
        rss_first_window_median_kb: first,
        rss_last_window_median_kb: last,
        drift_pct,
        verdict: verdict(drift_pct),
        pss_median_kb: median_u64(after.iter().map(|s| s.2).collect()),
        cpu_cores,
    }
}

#[derive(Debug, Clone, Serialize)]
struct LoadFigures {
    target_rate: u32,
    /// Median over the 10-s windows after warm-up of the metrics reports stored per second.
    achieved_rate: f64,
    min_window_rate: f64,
    max_window_rate: f64,
    windows_after_warmup: usize,
    /// Metrics reports' acknowledgement latency after warm-up (histogram, within 1.6 %).
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    inventory_p50_ms: f64,
    inventory_p99_ms: f64,
    /// After warm-up.
    counts: Counts,
    /// The whole soak, warm-up included.
    counts_whole_soak: Counts,
    collector_cores: f64,
    generator_cores: f64,
}

#[derive(Debug, Clone, Serialize)]
struct DatabaseFigures {
    retention_days: u32,
    prune_every_secs: u64,
    retention_note: String,
    bytes_at_warmup_end: u64,
    bytes_at_end: u64,
    wal_bytes_at_end: u64,
    /// Growth after warm-up, per hour.
    growth_bytes_per_hour: f64,
    /// Growth after warm-up / reports stored after warm-up (metrics reports and inventories;
    /// the WAL's size, up to 64 MiB, moves this a little).
    bytes_per_report_after_warmup: f64,
    /// What the database would hold once reports start reaching the retention: rate × seconds
    /// of retention × bytes per report after warm-up, plus what it held at the end of warm-up.
    projected_bytes_at_retention: f64,
    disk: DiskCheck,
}

/// What happened before the soak and after it, for the report.
#[derive(Debug)]
struct Setup {
    enroll_secs: f64,
    startup_secs: f64,
    startup: Counts,
    disk: DiskCheck,
    db_end: DbSize,
    cross_check: Option<CrossCheck>,
    collector_log_problems: u64,
    agent_log_problems: u64,
}

/// The JSON document (and the source of the table).
#[derive(Debug, Serialize)]
struct Report {
    machine: Machine,
    interrupted: bool,
    agents: usize,
    seconds: u64,
    warmup_seconds: u64,
    elapsed_secs: f64,
    sample_every_secs: u64,
    drift_window_secs: u64,
    inventory_every_secs: u64,
    changed_every: u32,
    packages: usize,
    rules: &'static str,
    real_agent_interval_secs: u32,
    /// The real agent's CPU (schedstat) per metrics cycle after warm-up, ms.
    agent_cpu_ms_per_cycle: f64,
    enroll_secs: f64,
    startup_secs: f64,
    startup: Counts,
    load: LoadFigures,
    collector: MemoryFigures,
    agent: MemoryFigures,
    database: DatabaseFigures,
    cross_check: Option<CrossCheck>,
    collector_log_problems: u64,
    agent_log_problems: u64,
    first_rejection: Option<String>,
    first_retryable: Option<String>,
    first_failure: Option<String>,
    windows: Vec<WindowRow>,
    samples: Vec<SampleRow>,
}

impl Report {
    fn new(
        args: &SoakArgs,
        ticks_per_second: u64,
        setup: Setup,
        mut observed: Observed,
    ) -> Result<Report> {
        let warmup = args.warmup_seconds;
        let end = observed.samples.last().map_or(0, |s| s.t_secs);
        let tick_ms = 1000.0 / ticks_per_second.max(1) as f64;
        for s in &mut observed.samples {
            s.collector_cpu_ms = s.collector_cpu_ticks as f64 * tick_ms;
            s.generator_cpu_ms = s.generator_cpu_ticks as f64 * tick_ms;
        }
        let samples = &observed.samples;
        let at_warmup = samples.iter().find(|s| s.t_secs >= warmup);
        let last = samples.last();
        let (Some(at_warmup), Some(last)) = (at_warmup, last) else {
            bail!(
                "the soak ended before the end of warm-up ({} samples): nothing to report",
                samples.len()
            );
        };
        let post_secs = last.t_secs.saturating_sub(at_warmup.t_secs).max(1) as f64;
        let collector_cores =
            (last.collector_cpu_ms - at_warmup.collector_cpu_ms) / 1000.0 / post_secs;
        let generator_cores =
            (last.generator_cpu_ms - at_warmup.generator_cpu_ms) / 1000.0 / post_secs;
        let agent_cpu_ms = last.agent_cpu_ms - at_warmup.agent_cpu_ms;
        let agent_ms_per_cycle = agent_cpu_ms / (post_secs / f64::from(REAL_AGENT_INTERVAL));
        let collector = memory_figures(
            "steward-collector",
            &samples
                .iter()
                .map(|s| (s.t_secs, s.collector_rss_kb, s.collector_pss_kb))
                .collect::<Vec<_>>(),
            warmup,
            end,
            collector_cores,
        );
        let agent = memory_figures(
            "steward-agent",
            &samples
                .iter()
                .map(|s| (s.t_secs, s.agent_rss_kb, s.agent_pss_kb))
                .collect::<Vec<_>>(),
            warmup,
            end,
            agent_cpu_ms / 1000.0 / post_secs,
        );

        let tally = &observed.tally;
        let rates: Vec<f64> = tally
            .windows
            .iter()
            .filter(|w| w.t_end_secs > warmup && w.t_end_secs <= end)
            .map(|w| w.reports_per_sec)
            .collect();
        let ms = |micros: u32| f64::from(micros) / 1000.0;
        let m = &tally.metrics_after_warmup;
        let inv = &tally.inventories_after_warmup;
        let load = LoadFigures {
            target_rate: args.rate,
            achieved_rate: crate::stats::median_f64(rates.clone()),
            min_window_rate: rates.iter().copied().reduce(f64::min).unwrap_or(0.0),
            max_window_rate: rates.iter().copied().fold(0.0, f64::max),
            windows_after_warmup: rates.len(),
            p50_ms: ms(m.percentile(50.0)),
            p99_ms: ms(m.percentile(99.0)),
            max_ms: ms(m.max),
            inventory_p50_ms: ms(inv.percentile(50.0)),
            inventory_p99_ms: ms(inv.percentile(99.0)),
            counts: tally.after_warmup,
            counts_whole_soak: tally.totals,
            collector_cores,
            generator_cores,
        };

        let growth = last.db_bytes as f64 - at_warmup.db_bytes as f64;
        let stored_after = last.reports_stored.saturating_sub(at_warmup.reports_stored);
        let bytes_per_report = if stored_after == 0 {
            0.0
        } else {
            growth / stored_after as f64
        };
        let retention_secs = u64::from(args.retention_days) * 86_400;
        let database = DatabaseFigures {
            retention_days: args.retention_days,
            prune_every_secs: COLLECTOR_PRUNE_EVERY_SECS,
            retention_note: retention_note(args.retention_days, args.seconds),
            bytes_at_warmup_end: at_warmup.db_bytes,
            bytes_at_end: setup.db_end.total(),
            wal_bytes_at_end: setup.db_end.wal_bytes,
            growth_bytes_per_hour: growth * 3600.0 / post_secs,
            bytes_per_report_after_warmup: bytes_per_report,
            projected_bytes_at_retention: f64::from(args.rate)
                * retention_secs as f64
                * bytes_per_report
                + at_warmup.db_bytes as f64,
            disk: setup.disk,
        };
        Ok(Report {
            machine: machine(ticks_per_second),
            interrupted: observed.interrupted,
            agents: args.agents,
            seconds: args.seconds,
            warmup_seconds: warmup,
            elapsed_secs: observed.elapsed_secs,
            sample_every_secs: SAMPLE_SECS,
            drift_window_secs: drift_window_secs(end.saturating_sub(warmup)),
            inventory_every_secs: args.inventory_every,
            changed_every: args.changed_every,
            packages: args.packages,
            rules: "on (the defaults)",
            real_agent_interval_secs: REAL_AGENT_INTERVAL,
            agent_cpu_ms_per_cycle: agent_ms_per_cycle,
            enroll_secs: setup.enroll_secs,
            startup_secs: setup.startup_secs,
            startup: setup.startup,
            load,
            collector,
            agent,
            database,
            cross_check: setup.cross_check,
            collector_log_problems: setup.collector_log_problems,
            agent_log_problems: setup.agent_log_problems,
            first_rejection: tally.first_rejection.clone(),
            first_retryable: tally.first_retryable.clone(),
            first_failure: tally.first_failure.clone(),
            windows: tally.windows.clone(),
            samples: observed.samples.clone(),
        })
    }

    fn table(&self) -> String {
        let mut out = String::new();
        let l = &self.load;
        let c = &l.counts;
        out.push_str(&format!(
            "machine: {}; soak {} s (warm-up {} s{}), samples every {SAMPLE_SECS} s; rules {}\n",
            ingest::machine_line(&self.machine),
            self.seconds,
            self.warmup_seconds,
            if self.interrupted {
                format!(", INTERRUPTED at {:.0} s", self.elapsed_secs)
            } else {
                String::new()
            },
            self.rules
        ));
        out.push_str(&format!(
            "load: {} simulated agents (own mutual-TLS connection each), {} metrics reports/s on a schedule; inventory every {} s per agent (1 in {} changed, {} packages); 1 real steward-agent at --interval {}\n",
            self.agents,
            l.target_rate,
            self.inventory_every_secs,
            self.changed_every,
            self.packages,
            self.real_agent_interval_secs
        ));
        out.push_str(&format!(
            "start-up: enrolled in {:.1} s; {} first inventories stored in {:.1} s\n\n",
            self.enroll_secs, self.startup.inventories_full, self.startup_secs
        ));
        out.push_str(&format!(
            "after warm-up: achieved {:.1} reports/s (median of {} 10-s windows; min {:.1}, max {:.1}); ack p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms\n",
            l.achieved_rate,
            l.windows_after_warmup,
            l.min_window_rate,
            l.max_window_rate,
            l.p50_ms,
            l.p99_ms,
            l.max_ms
        ));
        out.push_str(&format!(
            "  stored: {} metrics reports, {} full inventories, {} unchanged markers (inventory ack p50 {:.1} ms, p99 {:.1} ms)\n",
            c.metrics_stored,
            c.inventories_full,
            c.inventory_markers,
            l.inventory_p50_ms,
            l.inventory_p99_ms
        ));
        out.push_str(&format!(
            "  errors: 503 {}, other retried {}, rejected {}, gave up {}, failed {}; late ticks {} (previous still in flight), started >100 ms late {}, missed ticks {}\n",
            c.retried_503,
            c.retried_other,
            c.rejected,
            c.gave_up,
            c.failed,
            c.late_ticks,
            c.late_starts,
            c.missed_ticks
        ));
        let w = &l.counts_whole_soak;
        out.push_str(&format!(
            "  whole soak incl. warm-up: {} metrics stored; 503 {}, other retried {}, rejected {}, gave up {}, late ticks {}, late starts {}\n",
            w.metrics_stored,
            w.retried_503,
            w.retried_other,
            w.rejected,
            w.gave_up,
            w.late_ticks,
            w.late_starts
        ));
        out.push_str(&format!(
            "  CPU after warm-up: collector {:.2} cores, load generator {:.2} cores, steward-agent {:.3} ms per 1 s cycle\n\n",
            l.collector_cores, l.generator_cores, self.agent_cpu_ms_per_cycle
        ));
        out.push_str(&format!(
            "{:<18} {:>11} {:>10} {:>9} {:>9} {:>11} {:>11} {:>8} {:>9} {:>10}\n",
            "process",
            "RSS@warmup",
            "median",
            "min",
            "max",
            "first-win",
            "last-win",
            "drift",
            "verdict",
            "PSS median"
        ));
        for p in [&self.collector, &self.agent] {
            out.push_str(&format!(
                "{:<18} {:>8} kB {:>7} kB {:>6} kB {:>6} kB {:>8} kB {:>8} kB {:>7.2}% {:>9} {:>7} kB\n",
                p.name,
                p.rss_at_warmup_end_kb,
                p.rss_median_kb,
                p.rss_min_kb,
                p.rss_max_kb,
                p.rss_first_window_median_kb,
                p.rss_last_window_median_kb,
                p.drift_pct,
                p.verdict,
                p.pss_median_kb
            ));
        }
        out.push_str(&format!(
            "(drift: median RSS of the last {0} s − median of the first {0} s after warm-up, over the first; flat within ±{FLAT_PCT} %)\n\n",
            self.drift_window_secs
        ));
        let d = &self.database;
        let mb = |bytes: f64| bytes / 1_048_576.0;
        out.push_str(&format!(
            "database: {:.0} MB at the end (WAL {:.0} MB), {:.0} MB at the end of warm-up; {:.0} MB/hour after warm-up ({:.0} bytes per report stored after warm-up)\n",
            mb(d.bytes_at_end as f64),
            mb(d.wal_bytes_at_end as f64),
            mb(d.bytes_at_warmup_end as f64),
            mb(d.growth_bytes_per_hour),
            d.bytes_per_report_after_warmup
        ));
        out.push_str(&format!(
            "retention: store.retention_days = {} (pruned every {} s): {}; at this rate it would level off near {:.1} GiB\n",
            d.retention_days,
            d.prune_every_secs,
            d.retention_note,
            d.projected_bytes_at_retention / f64::from(1u32 << 30)
        ));
        if let Some(x) = &self.cross_check {
            out.push_str(&format!(
                "cross-check: the collector's last_seq summed over the simulated agents {} (sequence numbers used {}); the real agent's CI keeps {} metrics reports\n",
                x.collector_sim_last_seq_sum,
                x.sim_seqs_issued,
                x.agent_reports_stored
                    .map_or_else(|| "?".to_string(), |n| n.to_string())
            ));
        }
        if self.collector_log_problems + self.agent_log_problems > 0 {
            out.push_str(&format!(
                "logs: collector {} WARN/ERROR lines, steward-agent {}\n",
                self.collector_log_problems, self.agent_log_problems
            ));
        }
        for (what, message) in [
            ("first rejection", &self.first_rejection),
            ("first retryable failure", &self.first_retryable),
            ("first failure", &self.first_failure),
        ] {
            if let Some(message) = message {
                out.push_str(&format!("{what}: {message}\n"));
            }
        }
        out
    }
}

/// What the retention means for this soak.
fn retention_note(days: u32, seconds: u64) -> String {
    let retention_secs = u64::from(days) * 86_400;
    if seconds < retention_secs {
        format!(
            "no report reaches it within the {seconds} s soak, so nothing is pruned and the database grows for the whole soak"
        )
    } else {
        "reports older than it are pruned during the soak".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> SoakArgs {
        SoakArgs {
            seconds: 3600,
            warmup_seconds: 300,
            rate: 1000,
            agents: 1000,
            inventory_every: 900,
            changed_every: 4,
            packages: 800,
            retention_days: 1,
            json: false,
            keep: false,
            bin_dir: None,
        }
    }

    #[test]
    fn validation_bounds() {
        assert!(validate(&args()).is_ok());
        let bad = [
            SoakArgs {
                seconds: 3605,
                ..args()
            },
            SoakArgs {
                seconds: 310,
                ..args()
            },
            SoakArgs {
                warmup_seconds: 15,
                ..args()
            },
            SoakArgs {
                seconds: MAX_SECONDS + 10,
                ..args()
            },
            SoakArgs { rate: 0, ..args() },
            SoakArgs {
                agents: 1,
                rate: 1001,
                ..args()
            },
            SoakArgs {
                agents: 0,
                ..args()
            },
            SoakArgs {
                inventory_every: 59,
                ..args()
            },
            SoakArgs {
                retention_days: 0,
                ..args()
            },
        ];
        for a in bad {
            assert!(validate(&a).is_err(), "{a:?}");
        }
        assert!(
            validate(&SoakArgs {
                seconds: 320,
                ..args()
            })
            .is_ok()
        );
    }

    #[test]
    fn retention_is_set_in_the_store_table_only() {
        let mut text = "listen = \"127.0.0.1:1\"\n\n[store]\n# Days of metrics history kept.\nretention_days = 7\nbatch_max = 1024\n".to_string();
        set_retention(&mut text, 1).unwrap();
        assert!(text.contains("\nretention_days = 1\n"), "{text}");
        let config = steward_collector::config::Config::parse(&text).unwrap();
        assert_eq!(config.store.retention_days, 1);
        assert!(set_retention(&mut "listen = \"x\"\n".to_string(), 1).is_err());
        let mut both = "[store]\nretention_days = 7\nhistory_retention_days = 365\n".to_string();
        set_retention(&mut both, 2).unwrap();
        assert!(both.contains("history_retention_days = 365"), "{both}");
    }

    #[test]
    fn the_agent_config_parses() {
        let text = agent_config(Path::new("/tmp/soak x"), 900);
        let config = steward_agent::config::Config::parse(&text).unwrap();
        assert_eq!(config.interval_secs, 1);
        assert_eq!(config.inventory.interval_secs, 900);
        assert_eq!(config.state_dir, Path::new("/tmp/soak x/agent-state"));
    }

    #[test]
    fn df_available_column() {
        let text = "Filesystem     1024-blocks     Used Available Capacity Mounted on\n/dev/vda         263174212 24000000  71000000      26% /\n";
        assert_eq!(parse_df_available_kb(text), Some(71_000_000));
        assert_eq!(parse_df_available_kb("Filesystem\n"), None);
    }

    #[test]
    fn histogram_percentiles_are_within_two_percent() {
        let mut h = Histogram::new();
        let values: Vec<u32> = (1..=100_000).map(|i| i * 7).collect();
        for &v in &values {
            h.add(v);
        }
        for p in [50.0, 90.0, 99.0, 100.0] {
            let exact = crate::stats::percentile_sorted(&values, p);
            let got = h.percentile(p);
            assert!(got >= exact, "p{p}: {got} < {exact}");
            assert!(
                f64::from(got - exact) <= f64::from(exact) / 64.0,
                "p{p}: {got} vs {exact}"
            );
        }
        assert_eq!(h.max, 700_000);
        assert_eq!(Histogram::new().percentile(99.0), 0);
        // Buckets are contiguous and their upper bounds increase.
        let mut previous = 0;
        for value in (0..2_000_000u32).step_by(97).chain([u32::MAX]) {
            let bucket = Histogram::bucket(value);
            assert!(bucket < HISTOGRAM_BUCKETS, "{value}");
            assert!(Histogram::upper(bucket) >= value, "{value}");
            assert!(bucket >= previous);
            previous = bucket;
        }
        assert_eq!(Histogram::upper(Histogram::bucket(127)), 127);
        assert_eq!(Histogram::upper(Histogram::bucket(128)), 129);
    }

    #[test]
    fn drift_and_verdict() {
        // RSS 100 MB for the first 10 min after a 300 s warm-up, 104 MB in the last 10 min.
        let series: Vec<(u64, u64, u64)> = (0..=360)
            .map(|i| {
                let t = i * 10;
                let rss = if t < 1800 { 100_000 } else { 104_000 };
                (t, rss, rss - 1000)
            })
            .collect();
        let f = memory_figures("x", &series, 300, 3600, 0.5);
        assert_eq!(f.rss_at_warmup_end_kb, 100_000);
        assert_eq!(f.rss_first_window_median_kb, 100_000);
        assert_eq!(f.rss_last_window_median_kb, 104_000);
        assert!((f.drift_pct - 4.0).abs() < 1e-9);
        assert_eq!(f.verdict, "flat");
        assert_eq!((f.rss_min_kb, f.rss_max_kb), (100_000, 104_000));
        assert_eq!(verdict(5.01), "growing");
        assert_eq!(verdict(-7.0), "shrinking");
        assert_eq!(drift_window_secs(3300), 600);
        assert_eq!(drift_window_secs(240), 120);
    }

    #[test]
    fn windows_close_with_rates_and_latency() {
        let t0 = Instant::now();
        let recorder = Recorder::new(t0, Duration::ZERO, 4);
        for _ in 0..50 {
            recorder.acked(Kind::Metrics, 2000, false);
        }
        recorder.acked(Kind::InventoryMarker, 9000, false);
        recorder.retry("503 Service Unavailable: busy".to_string());
        recorder.retry("error sending request".to_string());
        recorder.late_tick();
        recorder.close_windows(t0 + Duration::from_secs(12));
        let tally = recorder.tally();
        assert_eq!(tally.windows.len(), 1);
        let w = &tally.windows[0];
        assert_eq!(w.t_end_secs, 10);
        assert_eq!(w.reports_per_sec, 5.0);
        assert!((w.p99_ms - 2.0).abs() < 0.05, "{}", w.p99_ms);
        assert_eq!(w.counts.retried_503, 1);
        assert_eq!(w.counts.retried_other, 1);
        assert_eq!(w.counts.inventory_markers, 1);
        assert_eq!(tally.totals.late_ticks, 1);
        assert_eq!(
            tally.first_retryable.as_deref(),
            Some("503 Service Unavailable: busy")
        );
        recorder.freeze();
        recorder.acked(Kind::Metrics, 1, false);
        assert_eq!(recorder.metrics_stored(), 50);
    }

    #[test]
    fn generations_alternate() {
        assert_eq!(other(Generation::First), Generation::Changed);
        assert_eq!(other(Generation::Changed), Generation::First);
        assert!(retention_note(1, 3600).contains("nothing is pruned"));
        assert!(retention_note(1, 100_000).contains("pruned during"));
    }
}
