//! `steward-bench ingest`: a load generator that simulates N enrolled agents against a real
//! `steward-collector serve` on loopback, and measures what the collector sustains.
//!
//! Each run starts a fresh collector, enrolls `--agents` simulated agents in-process through the
//! agent library (each with its own key, certificate and state directory), and sends realistic
//! v1 metrics reports over each agent's own mutual-TLS keep-alive connection — the real agent
//! transport. After a warm-up (one report per agent, which opens the connections) come two
//! phases of `--seconds` each:
//!
//! * **saturation** (closed loop): every agent sends its next report as soon as the previous
//!   one is acknowledged. Shows the most the collector accepts; latency here is queueing.
//! * **paced** (open loop): the agents together send `--rate` reports/s, each on its own
//!   interval; a tick that finds the previous report still in flight is counted as late and
//!   skipped. The budget (>= 10,000 reports/s with p99 <= 50 ms) is judged on this phase.
//!
//! Acknowledgement latency runs from the first attempt at a sequence number to its ack, so a
//! retried report (5xx/429/network, retried after [`RETRY_DELAY`]) counts with its retries.
//! The collector's CPU and peak RSS are read from /proc at the start and end of each phase
//! (the peak is reset before each phase through `clear_refs`). Everything is bounded: a phase
//! stops issuing reports after `--seconds` or [`MAX_REPORTS_PER_PHASE`], in-flight reports
//! get [`DRAIN_GRACE`] (plus one request timeout) to finish, and only loopback is used.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use steward_agent::state::StateDir;
use steward_agent::transport::{SendError, Transport};
use steward_shared::v1;
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};

use crate::agent::{
    Machine, WorkDir, last_line, locate_release_bin, machine, path_str, print_report, strings,
    tokio_runtime,
};
use crate::peers::{self, Proc};
use crate::procfs::{self, Sample};
use crate::stats::{Latency, median_f64, median_u64};

const MAX_AGENTS: usize = 5000;
const MAX_SECONDS: u64 = 600;
const MAX_RUNS: u32 = 25;
/// A phase stops issuing reports after this many, whatever `--seconds` says.
const MAX_REPORTS_PER_PHASE: u64 = 5_000_000;
/// Enrollments in flight at once.
pub(crate) const ENROLL_CONCURRENCY: usize = 16;
/// Warm-up reports (and so new TLS connections) in flight at once.
const WARMUP_CONCURRENCY: usize = 64;
/// The agent transport's request timeout.
pub(crate) const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause before resending a report the collector answered 5xx/429 (or that hit a network error).
pub(crate) const RETRY_DELAY: Duration = Duration::from_millis(100);
/// After a phase's `--seconds`, how long reports in flight may keep retrying.
const DRAIN_GRACE: Duration = Duration::from_secs(15);
/// Bound on enrolling all agents.
const ENROLL_TIMEOUT: Duration = Duration::from_secs(600);
/// Bound on the warm-up.
const WARMUP_TIMEOUT: Duration = Duration::from_secs(120);
/// Timeout for the short collector commands (init, token, list).
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// The ingest budget: reports/s sustained, with this p99 acknowledgement latency.
const BUDGET_RATE: u32 = 10_000;
const BUDGET_P99_MS: f64 = 50.0;
/// The achieved rate may fall this much below the target and still count as sustained: the
/// agents' first ticks are spread over one period, and the last acks land after the window.
const RATE_TOLERANCE: f64 = 0.01;

#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Simulated agents, each enrolled with its own key and certificate.
    #[arg(long, default_value_t = 1000)]
    agents: usize,
    /// Seconds each phase (saturation, then paced) lasts, per run.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Reports per second the paced phase aims at, spread evenly over the agents.
    #[arg(long, default_value_t = 10_000)]
    rate: u32,
    /// Repeat everything (fresh collector each time) this many times and report medians.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Print one JSON object on stdout instead of a table.
    #[arg(long)]
    json: bool,
    /// Directory holding the release steward-collector (default: the workspace's target/release).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Run the collector with its rules off (`[rules] enabled = false`), to measure what
    /// evaluating the default rules costs ingest.
    #[arg(long)]
    no_rules: bool,
}

pub fn run(args: &IngestArgs) -> Result<()> {
    validate(args)?;
    let collector = locate_collector(args.bin_dir.as_deref())?;
    let ticks_per_second = procfs::clock_ticks_per_second();
    let runtime = tokio_runtime()?;
    steward_agent::install_crypto_provider();
    let mut results = Vec::new();
    for run in 1..=args.runs {
        eprintln!("== run {run}/{}", args.runs);
        let workdir = WorkDir::create(run)?;
        let result = measure_run(&runtime, &collector, args, ticks_per_second, &workdir.path)
            .with_context(|| format!("run {run}"))?;
        results.push(result);
    }
    let report = Report::new(args, ticks_per_second, &results)?;
    if let Some(message) = &report.first_rejection {
        eprintln!("warning: the collector rejected reports; the first: {message}");
    }
    print_report(args.json, &report, || report.table())
}

fn validate(args: &IngestArgs) -> Result<()> {
    if !(1..=MAX_AGENTS).contains(&args.agents) {
        bail!("--agents must be between 1 and {MAX_AGENTS}");
    }
    if !(1..=MAX_SECONDS).contains(&args.seconds) {
        bail!("--seconds must be between 1 and {MAX_SECONDS}");
    }
    if !(1..=MAX_RUNS).contains(&args.runs) {
        bail!("--runs must be between 1 and {MAX_RUNS}");
    }
    // Each agent's interval is agents / rate seconds; tokio timers have 1 ms resolution.
    let max_rate = 1000 * args.agents as u64;
    if args.rate == 0 || u64::from(args.rate) > max_rate {
        bail!(
            "--rate must be between 1 and {max_rate} (1,000 reports/s per agent at most; add --agents)"
        );
    }
    Ok(())
}

/// Finds steward-collector; never builds it.
pub(crate) fn locate_collector(bin_dir: Option<&Path>) -> Result<PathBuf> {
    locate_release_bin(bin_dir, "steward-collector")
}

// ---------------------------------------------------------------------------------------------
// One run: a fresh collector, enrollment, warm-up, the two phases, the database size.

/// What one run measured.
#[derive(Debug)]
struct RunResult {
    enroll_secs: f64,
    warmup_stored: u64,
    saturation: PhaseFigures,
    paced: PhaseFigures,
    db: DbFigures,
    first_rejection: Option<String>,
    first_retryable: Option<String>,
    collector_log_problems: u64,
}

fn measure_run(
    runtime: &Runtime,
    collector_bin: &Path,
    args: &IngestArgs,
    ticks_per_second: u64,
    dir: &Path,
) -> Result<RunResult> {
    let no_rules = args.no_rules;
    let StartedCollector {
        proc: mut collector,
        listen,
        data,
        fingerprint,
        log,
    } = start_collector(collector_bin, dir, |text| {
        if no_rules {
            text.push_str("\n[rules]\nenabled = false\n");
        }
        Ok(())
    })?;
    let pid = collector.pid();
    let collector_cmd = |label: &str, cmd: Vec<String>| {
        peers::run_to_completion(collector_bin, &cmd, dir, label, COMMAND_TIMEOUT)
    };
    let token = create_token(collector_bin, dir, &data, args.agents)?;

    let settings = Load::new(args);
    let enroll_clock = std::time::Instant::now();
    let agents = runtime.block_on(enroll_all(
        &format!("https://{listen}"),
        &token,
        &fingerprint,
        &dir.join("agents"),
        args.agents,
    ))?;
    let enroll_secs = enroll_clock.elapsed().as_secs_f64();
    eprintln!(
        "enrolled {} agents in {enroll_secs:.1} s ({ENROLL_CONCURRENCY} at a time)",
        agents.len()
    );
    collector.ensure_running()?;

    let (agents, mut warmup) = runtime.block_on(warm_up(agents, settings))?;
    eprintln!(
        "warm-up: {} stored, {} retried, {} rejected (one report per agent; connections open)",
        warmup.stored, warmup.retryable, warmup.rejected
    );
    if warmup.stored + warmup.duplicate == 0 {
        bail!(
            "no warm-up report was acknowledged: {}",
            warmup
                .first_rejection
                .or(warmup.first_retryable)
                .or(warmup.first_failure)
                .unwrap_or_default()
        );
    }
    collector.ensure_running()?;

    let phases = [Phase::Saturation, Phase::Paced { rate: args.rate }];
    let mut agents = agents;
    let mut figures = Vec::new();
    let mut notes = Notes::default();
    notes.take(&mut warmup);
    for phase in phases {
        let (back, mut tally, phase_figures) =
            measure_phase(runtime, phase, agents, pid, settings, ticks_per_second)?;
        agents = back;
        notes.take(&mut tally);
        eprintln!("{}: {}", phase.name(), phase_figures.brief());
        if let Some(failure) = &tally.first_failure {
            eprintln!("{}: a report could not be sent: {failure}", phase.name());
        }
        collector.ensure_running()?;
        figures.push(phase_figures);
    }
    let [mut saturation, mut paced]: [PhaseFigures; 2] = figures
        .try_into()
        .map_err(|_| anyhow!("expected two phases"))?;

    let stored_total = warmup.stored + saturation.stored + paced.stored;
    let listed = collector_cmd(
        "agents-list",
        strings(&["agents", "list", "--json", "--data-dir", &path_str(&data)]),
    )?;
    let db = DbFigures::measure(&data, stored_total, last_seq_sum(&listed)?)?;
    let acked_seqs: u64 = agents.iter().map(|a| a.next_seq - 1).sum();
    if db.collector_last_seq_sum != acked_seqs {
        eprintln!(
            "note: the collector's last_seq summed over agents is {}, the agents issued {acked_seqs} sequence numbers",
            db.collector_last_seq_sum
        );
    }
    for phase in [&mut saturation, &mut paced] {
        phase.db_bytes_per_report = db.bytes_per_report;
        phase.db_file_bytes_per_report = db.db_file_bytes_per_report;
    }
    eprintln!(
        "database: {} B steward.db + {} B WAL for {stored_total} stored reports = {:.0} B/report ({:.0} B/report for steward.db alone)",
        db.db_bytes, db.wal_bytes, db.bytes_per_report, db.db_file_bytes_per_report
    );
    drop(agents);
    collector.stop();
    let (collector_log_problems, examples) = log_problems(&log);
    if collector_log_problems > 0 {
        eprintln!("collector log: {collector_log_problems} WARN/ERROR line(s), for example:");
        for line in examples {
            eprintln!("  {line}");
        }
    }
    Ok(RunResult {
        enroll_secs,
        warmup_stored: warmup.stored,
        saturation,
        paced,
        db,
        first_rejection: notes.first_rejection,
        first_retryable: notes.first_retryable,
        collector_log_problems,
    })
}

/// A collector started by [`start_collector`]; dropping `proc` stops it (by PID).
#[derive(Debug)]
pub(crate) struct StartedCollector {
    pub(crate) proc: Proc,
    /// `127.0.0.1:PORT`.
    pub(crate) listen: String,
    /// The data directory (`DIR/data`): `collector.toml`, `steward.db`, the CA.
    pub(crate) data: PathBuf,
    /// The CA fingerprint `init` printed, for enrollment.
    pub(crate) fingerprint: String,
    pub(crate) log: PathBuf,
}

/// Runs `steward-collector init` on a free loopback port in `DIR/data`, lets `configure` edit
/// the `collector.toml` text init wrote, then starts `serve` (log in `DIR/collector.log`) and
/// waits, at most 10 s, until it accepts connections.
pub(crate) fn start_collector(
    collector_bin: &Path,
    dir: &Path,
    configure: impl FnOnce(&mut String) -> Result<()>,
) -> Result<StartedCollector> {
    let data = dir.join("data");
    let port = peers::free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let init = peers::run_to_completion(
        collector_bin,
        &strings(&["init", "--data-dir", &path_str(&data), "--listen", &listen]),
        dir,
        "collector-init",
        COMMAND_TIMEOUT,
    )?;
    let fingerprint = last_line(&init)
        .filter(|line| line.starts_with("sha256:"))
        .ok_or_else(|| anyhow!("collector init printed no sha256: fingerprint last:\n{init}"))?;
    let config = data.join("collector.toml");
    let mut text =
        fs::read_to_string(&config).with_context(|| format!("cannot read {}", config.display()))?;
    let before = text.clone();
    configure(&mut text)?;
    if text != before {
        fs::write(&config, text).with_context(|| format!("cannot write {}", config.display()))?;
    }
    let log = dir.join("collector.log");
    let mut proc = Proc::spawn(
        "steward-collector serve",
        collector_bin,
        &strings(&["serve", "--data-dir", &path_str(&data)]),
        &log,
    )?;
    proc.wait_for_port(port, Duration::from_secs(10))?;
    eprintln!("collector: pid {} on {listen}", proc.pid());
    Ok(StartedCollector {
        proc,
        listen,
        data,
        fingerprint,
        log,
    })
}

/// An enrollment token good for `uses` enrollments within the hour.
pub(crate) fn create_token(
    collector_bin: &Path,
    dir: &Path,
    data: &Path,
    uses: usize,
) -> Result<String> {
    let token = peers::run_to_completion(
        collector_bin,
        &strings(&[
            "enroll-token",
            "create",
            "--uses",
            &uses.to_string(),
            "--ttl",
            "1h",
            "--data-dir",
            &path_str(data),
        ]),
        dir,
        "enroll-token",
        COMMAND_TIMEOUT,
    )?;
    last_line(&token).ok_or_else(|| anyhow!("enroll-token create printed no token"))
}

/// The first message of each kind seen over a run.
#[derive(Debug, Default)]
struct Notes {
    first_rejection: Option<String>,
    first_retryable: Option<String>,
}

impl Notes {
    fn take(&mut self, tally: &mut Tally) {
        if self.first_rejection.is_none() {
            self.first_rejection = tally.first_rejection.take();
        }
        if self.first_retryable.is_none() {
            self.first_retryable = tally.first_retryable.take();
        }
    }
}

/// The shape of the load, shared by every phase of a run.
#[derive(Debug, Clone, Copy)]
struct Load {
    seconds: u64,
    /// The `interval_secs` the simulated agents put in their reports.
    interval_secs: u32,
}

impl Load {
    fn new(args: &IngestArgs) -> Load {
        let period = args.agents as f64 / f64::from(args.rate);
        Load {
            seconds: args.seconds,
            interval_secs: period.ceil().clamp(1.0, f64::from(u32::MAX)) as u32,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Saturation,
    Paced { rate: u32 },
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Saturation => "saturation",
            Phase::Paced { .. } => "paced",
        }
    }
}

/// Runs one phase and reads the collector's and this process's /proc around it.
fn measure_phase(
    runtime: &Runtime,
    phase: Phase,
    agents: Vec<SimAgent>,
    collector_pid: u32,
    load: Load,
    ticks_per_second: u64,
) -> Result<(Vec<SimAgent>, Tally, PhaseFigures)> {
    let me = std::process::id();
    if let Err(error) = procfs::reset_peak_rss(collector_pid) {
        eprintln!("note: peak RSS is since the collector started: {error:#}");
    }
    match phase {
        Phase::Saturation => eprintln!(
            "saturation: {} agents back to back for {} s",
            agents.len(),
            load.seconds
        ),
        Phase::Paced { rate } => eprintln!(
            "paced: {rate} reports/s over {} agents (one every {:.1} ms each) for {} s",
            agents.len(),
            agents.len() as f64 * 1000.0 / f64::from(rate),
            load.seconds
        ),
    }
    let collector_before = procfs::sample_pid(collector_pid).context("collector")?;
    let me_before = procfs::sample_pid(me)?;
    let clock = std::time::Instant::now();
    let (agents, mut tally) = runtime.block_on(drive(phase, agents, load))?;
    let elapsed = clock.elapsed().as_secs_f64();
    let collector_after = procfs::sample_pid(collector_pid).context("collector")?;
    let me_after = procfs::sample_pid(me)?;
    let target_rate = match phase {
        Phase::Saturation => None,
        Phase::Paced { rate } => Some(rate),
    };
    let figures = PhaseFigures::new(
        target_rate,
        &mut tally,
        elapsed,
        Cpu::between(collector_before, collector_after, ticks_per_second),
        collector_after.hwm_kb,
        Cpu::between(me_before, me_after, ticks_per_second),
    );
    Ok((agents, tally, figures))
}

/// CPU used between two samples of one process.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    /// utime + stime, in ms (clock-tick resolution; includes threads that exited).
    ticks_ms: f64,
    /// Sum of the live threads' schedstat, in ms (ns resolution; misses exited threads).
    schedstat_ms: f64,
}

impl Cpu {
    fn between(before: Sample, after: Sample, ticks_per_second: u64) -> Cpu {
        Cpu {
            ticks_ms: after.cpu_ticks.saturating_sub(before.cpu_ticks) as f64 * 1000.0
                / ticks_per_second.max(1) as f64,
            schedstat_ms: after.cpu_ns.saturating_sub(before.cpu_ns) as f64 / 1e6,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Simulated agents.

/// One enrolled simulated agent: its identity, its own transport (own client certificate, own
/// keep-alive connection) and its sequence counter.
#[derive(Debug)]
pub(crate) struct SimAgent {
    pub(crate) index: usize,
    pub(crate) agent_id: String,
    pub(crate) host: v1::HostIdentity,
    pub(crate) transport: Transport,
    /// The next sequence number; they start at 1 and strictly increase.
    pub(crate) next_seq: u64,
    jitter: Jitter,
}

impl SimAgent {
    fn new(index: usize, agent_id: String, host: v1::HostIdentity, transport: Transport) -> Self {
        SimAgent {
            index,
            agent_id,
            host,
            transport,
            next_seq: 1,
            jitter: Jitter(splitmix64(index as u64 ^ 0xA076_1D64_78BD_642F)),
        }
    }

    /// The next metrics report, encoded; takes the next sequence number.
    pub(crate) fn next_body(&mut self, interval_secs: u32) -> Result<Vec<u8>, String> {
        let now = unix_ms_now();
        let seq = self.next_seq;
        let report = metrics_report(
            &self.host,
            self.index,
            seq,
            now,
            interval_secs,
            &mut self.jitter,
        );
        self.encode_next(now, v1::Payload::Metrics(report))
    }

    /// `payload` in an envelope with the next sequence number (taken), encoded.
    pub(crate) fn encode_next(
        &mut self,
        now_ms: i64,
        payload: v1::Payload,
    ) -> Result<Vec<u8>, String> {
        let seq = self.next_seq;
        self.next_seq += 1;
        steward_shared::encode_v1(&v1::Envelope {
            agent_id: self.agent_id.clone(),
            seq,
            sent_at_ms: now_ms,
            payload,
        })
        .map_err(|error| format!("cannot encode seq {seq}: {error}"))
    }
}

/// Enrolls `count` agents in-process, [`ENROLL_CONCURRENCY`] at a time, each with its own
/// state directory under `root`, and builds each one's transport.
pub(crate) async fn enroll_all(
    url: &str,
    token: &str,
    fingerprint: &str,
    root: &Path,
    count: usize,
) -> Result<Vec<SimAgent>> {
    let permits = Arc::new(Semaphore::new(ENROLL_CONCURRENCY));
    let done = Arc::new(AtomicU64::new(0));
    let mut set = JoinSet::new();
    for index in 0..count {
        let (url, token, fingerprint) =
            (url.to_string(), token.to_string(), fingerprint.to_string());
        let (permits, done) = (permits.clone(), done.clone());
        let host = host_identity(index);
        let state = StateDir::new(root.join(&host.hostname));
        set.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .context("enrollment limiter closed")?;
            let identity = steward_agent::enroll::enroll(&url, &token, &fingerprint, &state, &host)
                .await
                .with_context(|| format!("cannot enroll {}", host.hostname))?;
            let enrolled = state.load()?;
            let transport = Transport::new(&enrolled, SEND_TIMEOUT)?;
            let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
            if finished % 250 == 0 {
                eprintln!("  enrolled {finished}/{count}");
            }
            Ok::<_, anyhow::Error>(SimAgent::new(index, identity.agent_id, host, transport))
        });
    }
    let deadline = Instant::now() + ENROLL_TIMEOUT;
    let mut agents = Vec::with_capacity(count);
    while let Some(joined) = tokio::time::timeout_at(deadline, set.join_next())
        .await
        .map_err(|_| anyhow!("enrolling {count} agents took longer than {ENROLL_TIMEOUT:?}"))?
    {
        agents.push(joined.context("an enrollment task failed")??);
    }
    agents.sort_by_key(|agent| agent.index);
    Ok(agents)
}

/// Sends one report per agent ([`WARMUP_CONCURRENCY`] at a time), which opens every agent's
/// keep-alive connection before the measured phases.
async fn warm_up(agents: Vec<SimAgent>, load: Load) -> Result<(Vec<SimAgent>, Tally)> {
    let ctl = Arc::new(PhaseCtl::new(
        Instant::now(),
        Duration::ZERO,
        WARMUP_TIMEOUT,
    ));
    let permits = Arc::new(Semaphore::new(WARMUP_CONCURRENCY));
    let mut set = JoinSet::new();
    let count = agents.len();
    for mut agent in agents {
        let (ctl, permits) = (ctl.clone(), permits.clone());
        set.spawn(async move {
            let mut tally = Tally::default();
            match permits.acquire_owned().await {
                Ok(_permit) => match agent.next_body(load.interval_secs) {
                    Ok(body) => send_report(&agent.transport, body, &ctl, &mut tally).await,
                    Err(message) => tally.fail(message),
                },
                Err(error) => tally.fail(error.to_string()),
            }
            (agent, tally)
        });
    }
    let limit = Instant::now() + WARMUP_TIMEOUT + SEND_TIMEOUT;
    let (agents, tally) = join_agents(set, limit, count).await?;
    Ok((agents, tally))
}

/// Runs one measured phase on the runtime: a task per agent, plus a progress line every
/// [`PROGRESS_EVERY`] on stderr.
async fn drive(phase: Phase, agents: Vec<SimAgent>, load: Load) -> Result<(Vec<SimAgent>, Tally)> {
    let count = agents.len();
    let start = Instant::now();
    let ctl = Arc::new(PhaseCtl::new(
        start,
        Duration::from_secs(load.seconds),
        DRAIN_GRACE,
    ));
    let progress = tokio::spawn(progress(ctl.clone(), phase.name()));
    let mut set = JoinSet::new();
    for (position, agent) in agents.into_iter().enumerate() {
        let ctl = ctl.clone();
        match phase {
            Phase::Saturation => {
                set.spawn(closed_loop(agent, ctl, load.interval_secs));
            }
            Phase::Paced { rate } => {
                let period = Duration::from_secs_f64(count as f64 / f64::from(rate));
                // Spread the agents' first ticks evenly over one period.
                let offset = period.mul_f64(position as f64 / count as f64);
                set.spawn(open_loop(
                    agent,
                    ctl,
                    start + offset,
                    period,
                    load.interval_secs,
                ));
            }
        }
    }
    let limit = ctl.hard_stop + SEND_TIMEOUT + Duration::from_secs(5);
    let joined = join_agents(set, limit, count).await;
    progress.abort();
    joined
}

/// Collects every agent task's agent and tally, in agent order.
async fn join_agents(
    mut set: JoinSet<(SimAgent, Tally)>,
    limit: Instant,
    count: usize,
) -> Result<(Vec<SimAgent>, Tally)> {
    let mut agents = Vec::with_capacity(count);
    let mut tally = Tally::default();
    while let Some(joined) = tokio::time::timeout_at(limit, set.join_next())
        .await
        .map_err(|_| anyhow!("simulated agents were still busy at the time limit"))?
    {
        let (agent, agent_tally) = joined.context("a simulated agent's task failed")?;
        agents.push(agent);
        tally.merge(agent_tally);
    }
    agents.sort_by_key(|agent| agent.index);
    Ok((agents, tally))
}

async fn progress(ctl: Arc<PhaseCtl>, name: &'static str) {
    let mut last = 0;
    loop {
        tokio::time::sleep(PROGRESS_EVERY).await;
        if Instant::now() > ctl.deadline {
            return;
        }
        let stored = ctl.stored.load(Ordering::Relaxed);
        eprintln!(
            "  {name}: {:>4.0} s, {stored} stored ({:.0}/s over the last {} s)",
            ctl.start.elapsed().as_secs_f64(),
            (stored - last) as f64 / PROGRESS_EVERY.as_secs_f64(),
            PROGRESS_EVERY.as_secs()
        );
        last = stored;
    }
}

/// Closed loop: the next report as soon as the previous one is acknowledged.
async fn closed_loop(
    mut agent: SimAgent,
    ctl: Arc<PhaseCtl>,
    interval_secs: u32,
) -> (SimAgent, Tally) {
    let mut tally = Tally::default();
    while Instant::now() < ctl.deadline && ctl.take_slot() {
        match agent.next_body(interval_secs) {
            Ok(body) => send_report(&agent.transport, body, &ctl, &mut tally).await,
            Err(message) => tally.fail(message),
        }
    }
    (agent, tally)
}

/// Open loop: one report per tick of the agent's own interval; a tick that finds the previous
/// report still in flight is counted as late and skipped (no pile-up, no sequence number used).
async fn open_loop(
    mut agent: SimAgent,
    ctl: Arc<PhaseCtl>,
    first_tick: Instant,
    period: Duration,
    interval_secs: u32,
) -> (SimAgent, Tally) {
    let mut tally = Tally::default();
    let mut ticker = tokio::time::interval_at(first_tick, period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut in_flight: Option<JoinHandle<Tally>> = None;
    loop {
        ticker.tick().await;
        if Instant::now() >= ctl.deadline {
            break;
        }
        if in_flight.as_ref().is_some_and(|task| !task.is_finished()) {
            tally.late += 1;
            continue;
        }
        if let Some(task) = in_flight.take() {
            tally.merge_task(task.await);
        }
        if !ctl.take_slot() {
            break;
        }
        match agent.next_body(interval_secs) {
            Ok(body) => {
                let (transport, ctl) = (agent.transport.clone(), ctl.clone());
                in_flight = Some(tokio::spawn(async move {
                    let mut sent = Tally::default();
                    send_report(&transport, body, &ctl, &mut sent).await;
                    sent
                }));
            }
            Err(message) => tally.fail(message),
        }
    }
    if let Some(task) = in_flight.take() {
        tally.merge_task(task.await);
    }
    (agent, tally)
}

/// Sends one report until it is acknowledged or rejected, retrying retryable failures after
/// [`RETRY_DELAY`] until the phase's hard stop.
async fn send_report(transport: &Transport, body: Vec<u8>, ctl: &PhaseCtl, tally: &mut Tally) {
    let start = Instant::now();
    tally.sent += 1;
    loop {
        match transport.send(body.clone()).await {
            Ok(ack) => {
                let micros = u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX);
                match ack.status.as_str() {
                    "stored" => {
                        tally.stored += 1;
                        ctl.stored.fetch_add(1, Ordering::Relaxed);
                    }
                    "duplicate" => tally.duplicate += 1,
                    other => {
                        tally.reject(format!(
                            "unexpected ack status {other:?} for seq {}",
                            ack.seq
                        ));
                        return;
                    }
                }
                tally.latencies_us.push(micros);
                return;
            }
            Err(SendError::Retryable(message)) => {
                tally.retryable += 1;
                tally.first_retryable.get_or_insert(message);
                if Instant::now() + RETRY_DELAY >= ctl.hard_stop {
                    tally.gave_up += 1;
                    return;
                }
                tokio::time::sleep(RETRY_DELAY).await;
            }
            Err(SendError::Rejected { status, message }) => {
                tally.reject(format!("{status}: {message}"));
                return;
            }
        }
    }
}

/// Shared by the tasks of one phase.
#[derive(Debug)]
struct PhaseCtl {
    start: Instant,
    /// No new report is started after this.
    deadline: Instant,
    /// No retry is started after this.
    hard_stop: Instant,
    /// Reports started, against [`MAX_REPORTS_PER_PHASE`].
    started: AtomicU64,
    /// Reports acknowledged as stored, for progress lines.
    stored: AtomicU64,
}

impl PhaseCtl {
    fn new(start: Instant, run_for: Duration, grace: Duration) -> PhaseCtl {
        PhaseCtl {
            start,
            deadline: start + run_for,
            hard_stop: start + run_for + grace,
            started: AtomicU64::new(0),
            stored: AtomicU64::new(0),
        }
    }

    /// Claims one report of the phase's cap; false once the cap is reached.
    fn take_slot(&self) -> bool {
        self.started.fetch_add(1, Ordering::Relaxed) < MAX_REPORTS_PER_PHASE
    }
}

/// Counts and latencies of one agent, one phase, or one run's phase summed over agents.
#[derive(Debug, Default)]
struct Tally {
    /// Reports (distinct sequence numbers) sent.
    sent: u64,
    stored: u64,
    duplicate: u64,
    /// Attempts answered 5xx/429/408 or lost to network trouble (each was retried).
    retryable: u64,
    /// Reports the collector refused (4xx); should be 0.
    rejected: u64,
    /// Paced ticks skipped because the previous report was still in flight.
    late: u64,
    /// Reports still failing retryably at the phase's hard stop.
    gave_up: u64,
    /// Reports that could not be built or whose task failed (a bug in this benchmark).
    failed: u64,
    /// Acknowledgement latency of each acked report, microseconds.
    latencies_us: Vec<u32>,
    first_rejection: Option<String>,
    first_retryable: Option<String>,
    first_failure: Option<String>,
}

impl Tally {
    fn reject(&mut self, message: String) {
        self.rejected += 1;
        self.first_rejection.get_or_insert(message);
    }

    fn fail(&mut self, message: String) {
        self.failed += 1;
        self.first_failure.get_or_insert(message);
    }

    fn merge_task(&mut self, joined: Result<Tally, tokio::task::JoinError>) {
        match joined {
            Ok(tally) => self.merge(tally),
            Err(error) => self.fail(format!("a send task failed: {error}")),
        }
    }

    fn merge(&mut self, mut other: Tally) {
        self.sent += other.sent;
        self.stored += other.stored;
        self.duplicate += other.duplicate;
        self.retryable += other.retryable;
        self.rejected += other.rejected;
        self.late += other.late;
        self.gave_up += other.gave_up;
        self.failed += other.failed;
        self.latencies_us.append(&mut other.latencies_us);
        if self.first_rejection.is_none() {
            self.first_rejection = other.first_rejection;
        }
        if self.first_retryable.is_none() {
            self.first_retryable = other.first_retryable;
        }
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Realistic reports.

/// A small deterministic generator (splitmix64) for varying report values.
#[derive(Debug, Clone)]
struct Jitter(u64);

impl Jitter {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [low, high).
    fn range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// splitmix64 of one value: a bijection, so distinct inputs give distinct outputs.
fn splitmix64(x: u64) -> u64 {
    mix64(x.wrapping_add(0x9E37_79B9_7F4A_7C15))
}

fn hostname(index: usize) -> String {
    format!("sim-{:05}", index + 1)
}

/// A distinct 32-hex-digit machine id per agent (like /etc/machine-id).
fn machine_id(index: usize) -> String {
    let high = splitmix64(index as u64);
    let low = splitmix64(high ^ 0x5354_4557_4152_4421);
    format!("{high:016x}{low:016x}")
}

fn host_identity(index: usize) -> v1::HostIdentity {
    let hostname = hostname(index);
    v1::HostIdentity {
        fqdn: format!("{hostname}.bench.steward.test"),
        hostname,
        os_name: "Debian GNU/Linux".to_string(),
        os_version: "12".to_string(),
        kernel: "6.1.0-27-amd64".to_string(),
        arch: "x86_64".to_string(),
        machine_id: machine_id(index),
        agent_version: steward_agent::AGENT_VERSION.to_string(),
    }
}

pub(crate) fn unix_ms_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

const GIB: u64 = 1 << 30;

/// A metrics report like a small 4-CPU server's: 3 filesystems, 2 disks, 2 interfaces. Values
/// vary a little from report to report; rates are absent on the first report, as an agent's are.
fn metrics_report(
    host: &v1::HostIdentity,
    index: usize,
    seq: u64,
    now_ms: i64,
    interval_secs: u32,
    j: &mut Jitter,
) -> v1::MetricsReport {
    let first = seq == 1;
    let per_core_pct: Vec<f32> = (0..4).map(|_| j.range(2.0, 60.0) as f32).collect();
    let total_pct = per_core_pct.iter().sum::<f32>() / per_core_pct.len() as f32;
    let mem_total = 8 * GIB;
    let mem_used = (mem_total as f64 * j.range(0.35, 0.55)) as u64;
    let memory = v1::Memory {
        total: mem_total,
        used: mem_used,
        available: mem_total - mem_used,
        free: (mem_total - mem_used) / 3,
        swap_total: 2 * GIB,
        swap_used: (j.range(0.0, 64.0) * 1024.0 * 1024.0) as u64,
    };
    let mut filesystem = |mount: &str, device: &str, fs_type: &str, size_gib: u64, fill: f64| {
        let total = size_gib * GIB;
        let used = (total as f64 * (fill + j.range(-0.002, 0.002))) as u64;
        let inodes_total = total / 16_384;
        let inodes_used = (inodes_total as f64 * fill * j.range(0.28, 0.30)) as u64;
        v1::Filesystem {
            mount: mount.to_string(),
            device: device.to_string(),
            fs_type: fs_type.to_string(),
            total_bytes: total,
            used_bytes: used,
            // ext4 reserves 5 % for root.
            available_bytes: (total - used).saturating_sub(total / 20),
            inodes_total,
            inodes_used,
            inodes_free: inodes_total - inodes_used,
            read_only: false,
        }
    };
    let filesystems = vec![
        filesystem("/", "/dev/sda1", "ext4", 50, 0.42),
        filesystem("/var", "/dev/sda2", "xfs", 100, 0.31),
        filesystem("/home", "/dev/sdb1", "ext4", 500, 0.63),
    ];
    let mut disk = |device: &str, busy: f64| v1::DiskIo {
        device: device.to_string(),
        rates: (!first).then(|| v1::DiskRates {
            read_bytes_per_sec: j.range(0.0, 4.0e6),
            write_bytes_per_sec: j.range(1.0e5, 8.0e6),
            reads_per_sec: j.range(0.0, 120.0),
            writes_per_sec: j.range(5.0, 300.0),
            busy_pct: j.range(0.0, busy) as f32,
        }),
    };
    let disks = vec![disk("sda", 25.0), disk("sdb", 10.0)];
    let (b1, b0) = ((index >> 8) as u8, index as u8);
    let mut interface = |n: u8, speed: u32, mtu: u32, addresses: Vec<String>| v1::NetInterface {
        name: format!("eth{n}"),
        mac: format!("52:54:0{n}:{:02x}:{b1:02x}:{b0:02x}", (index >> 16) as u8),
        addresses,
        link_up: Some(true),
        speed_mbps: Some(speed),
        mtu: Some(mtu),
        rates: (!first).then(|| {
            let rx = j.range(2.0e4, 5.0e6);
            let tx = j.range(1.0e4, 2.0e6);
            v1::NetRates {
                rx_bytes_per_sec: rx,
                tx_bytes_per_sec: tx,
                rx_packets_per_sec: rx / j.range(400.0, 1400.0),
                tx_packets_per_sec: tx / j.range(200.0, 1200.0),
                rx_errors_per_sec: 0.0,
                tx_errors_per_sec: 0.0,
                rx_drops_per_sec: if j.unit() < 0.05 {
                    j.range(0.1, 2.0)
                } else {
                    0.0
                },
                tx_drops_per_sec: 0.0,
            }
        }),
    };
    let networks = vec![
        interface(
            0,
            10_000,
            1500,
            vec![
                format!("10.20.{b1}.{b0}/16"),
                format!("fe80::5054:ff:fe{b1:02x}:{b0:02x}/64"),
            ],
        ),
        interface(
            1,
            1000,
            9000,
            vec![
                format!("192.168.{b1}.{b0}/24"),
                format!("fd00:5754::{b1:02x}{b0:02x}/64"),
            ],
        ),
    ];
    v1::MetricsReport {
        host: host.clone(),
        metrics: v1::Metrics {
            collected_at_ms: now_ms,
            interval_secs,
            uptime_secs: 86_400 + index as u64 * 977 + seq * u64::from(interval_secs),
            cpu: v1::Cpu {
                total_pct,
                per_core_pct,
                load1: j.range(0.1, 3.0) as f32,
                load5: j.range(0.2, 2.0) as f32,
                load15: j.range(0.3, 1.5) as f32,
            },
            memory,
            filesystems,
            disks,
            networks,
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Figures, medians and output.

/// One phase's figures (one run's, or the medians over runs).
#[derive(Debug, Clone, Serialize)]
struct PhaseFigures {
    /// Paced phase only: the reports/s aimed at.
    #[serde(skip_serializing_if = "Option::is_none")]
    target_rate: Option<u32>,
    /// Reports acknowledged as stored per second of the phase (until the last ack).
    reports_per_sec: f64,
    p50_ack_ms: f64,
    p90_ack_ms: f64,
    p99_ack_ms: f64,
    max_ack_ms: f64,
    /// Collector CPU (utime + stime) per 1,000 stored reports.
    collector_cpu_ms_per_1k: f64,
    /// The same by the live threads' schedstat nanosecond clock (cross-check).
    collector_cpu_ms_per_1k_schedstat: f64,
    /// Average cores the collector kept busy.
    collector_cpu_cores: f64,
    /// VmHWM at the end of the phase (reset at its start).
    collector_peak_rss_kb: u64,
    /// Average cores this load generator kept busy.
    generator_cpu_cores: f64,
    /// (steward.db + WAL) / reports stored over the run: the same in both phases.
    db_bytes_per_report: f64,
    db_file_bytes_per_report: f64,
    elapsed_secs: f64,
    sent: u64,
    stored: u64,
    duplicate: u64,
    retryable: u64,
    rejected: u64,
    late: u64,
    gave_up: u64,
    failed: u64,
}

impl PhaseFigures {
    fn new(
        target_rate: Option<u32>,
        tally: &mut Tally,
        elapsed_secs: f64,
        collector: Cpu,
        collector_peak_rss_kb: u64,
        generator: Cpu,
    ) -> PhaseFigures {
        let latency = Latency::of(&mut tally.latencies_us);
        let ms = |micros: u32| f64::from(micros) / 1000.0;
        let per_1k = |cpu_ms: f64| {
            if tally.stored == 0 {
                0.0
            } else {
                cpu_ms * 1000.0 / tally.stored as f64
            }
        };
        let per_sec = |x: f64| {
            if elapsed_secs > 0.0 {
                x / elapsed_secs
            } else {
                0.0
            }
        };
        PhaseFigures {
            target_rate,
            reports_per_sec: per_sec(tally.stored as f64),
            p50_ack_ms: ms(latency.p50),
            p90_ack_ms: ms(latency.p90),
            p99_ack_ms: ms(latency.p99),
            max_ack_ms: ms(latency.max),
            collector_cpu_ms_per_1k: per_1k(collector.ticks_ms),
            collector_cpu_ms_per_1k_schedstat: per_1k(collector.schedstat_ms),
            collector_cpu_cores: per_sec(collector.ticks_ms / 1000.0),
            collector_peak_rss_kb,
            generator_cpu_cores: per_sec(generator.ticks_ms / 1000.0),
            db_bytes_per_report: 0.0,
            db_file_bytes_per_report: 0.0,
            elapsed_secs,
            sent: tally.sent,
            stored: tally.stored,
            duplicate: tally.duplicate,
            retryable: tally.retryable,
            rejected: tally.rejected,
            late: tally.late,
            gave_up: tally.gave_up,
            failed: tally.failed,
        }
    }

    fn brief(&self) -> String {
        format!(
            "{:.0} stored/s over {:.1} s; ack p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; collector {:.1} ms CPU/1k reports ({:.2} cores), peak RSS {} kB; generator {:.2} cores; retryable {}, rejected {}, late {}, gave up {}",
            self.reports_per_sec,
            self.elapsed_secs,
            self.p50_ack_ms,
            self.p99_ack_ms,
            self.max_ack_ms,
            self.collector_cpu_ms_per_1k,
            self.collector_cpu_cores,
            self.collector_peak_rss_kb,
            self.generator_cpu_cores,
            self.retryable,
            self.rejected,
            self.late,
            self.gave_up
        )
    }

    /// The median of each figure over runs.
    fn median(runs: &[&PhaseFigures]) -> Option<PhaseFigures> {
        let first = runs.first()?;
        let x = |f: fn(&PhaseFigures) -> f64| median_f64(runs.iter().map(|r| f(r)).collect());
        let u = |f: fn(&PhaseFigures) -> u64| median_u64(runs.iter().map(|r| f(r)).collect());
        Some(PhaseFigures {
            target_rate: first.target_rate,
            reports_per_sec: x(|f| f.reports_per_sec),
            p50_ack_ms: x(|f| f.p50_ack_ms),
            p90_ack_ms: x(|f| f.p90_ack_ms),
            p99_ack_ms: x(|f| f.p99_ack_ms),
            max_ack_ms: x(|f| f.max_ack_ms),
            collector_cpu_ms_per_1k: x(|f| f.collector_cpu_ms_per_1k),
            collector_cpu_ms_per_1k_schedstat: x(|f| f.collector_cpu_ms_per_1k_schedstat),
            collector_cpu_cores: x(|f| f.collector_cpu_cores),
            collector_peak_rss_kb: u(|f| f.collector_peak_rss_kb),
            generator_cpu_cores: x(|f| f.generator_cpu_cores),
            db_bytes_per_report: x(|f| f.db_bytes_per_report),
            db_file_bytes_per_report: x(|f| f.db_file_bytes_per_report),
            elapsed_secs: x(|f| f.elapsed_secs),
            sent: u(|f| f.sent),
            stored: u(|f| f.stored),
            duplicate: u(|f| f.duplicate),
            retryable: u(|f| f.retryable),
            rejected: u(|f| f.rejected),
            late: u(|f| f.late),
            gave_up: u(|f| f.gave_up),
            failed: u(|f| f.failed),
        })
    }
}

/// The database after a run, while the collector still runs.
#[derive(Debug, Clone, Serialize)]
struct DbFigures {
    db_bytes: u64,
    wal_bytes: u64,
    /// Reports acknowledged as stored over the run (warm-up and both phases).
    stored_total: u64,
    bytes_per_report: f64,
    db_file_bytes_per_report: f64,
    /// `last_seq` summed over `steward-collector agents list`: a cross-check of `stored_total`.
    collector_last_seq_sum: u64,
}

impl DbFigures {
    fn measure(data: &Path, stored_total: u64, collector_last_seq_sum: u64) -> Result<DbFigures> {
        let db = data.join("steward.db");
        let db_bytes = fs::metadata(&db)
            .with_context(|| format!("cannot stat {}", db.display()))?
            .len();
        let wal_bytes = fs::metadata(data.join("steward.db-wal")).map_or(0, |m| m.len());
        Ok(DbFigures::new(
            db_bytes,
            wal_bytes,
            stored_total,
            collector_last_seq_sum,
        ))
    }

    fn new(
        db_bytes: u64,
        wal_bytes: u64,
        stored_total: u64,
        collector_last_seq_sum: u64,
    ) -> DbFigures {
        let per = |bytes: u64| {
            if stored_total == 0 {
                0.0
            } else {
                bytes as f64 / stored_total as f64
            }
        };
        DbFigures {
            db_bytes,
            wal_bytes,
            stored_total,
            bytes_per_report: per(db_bytes + wal_bytes),
            db_file_bytes_per_report: per(db_bytes),
            collector_last_seq_sum,
        }
    }

    fn median(runs: &[&DbFigures]) -> DbFigures {
        let u = |f: fn(&DbFigures) -> u64| median_u64(runs.iter().map(|r| f(r)).collect());
        let x = |f: fn(&DbFigures) -> f64| median_f64(runs.iter().map(|r| f(r)).collect());
        DbFigures {
            db_bytes: u(|d| d.db_bytes),
            wal_bytes: u(|d| d.wal_bytes),
            stored_total: u(|d| d.stored_total),
            bytes_per_report: x(|d| d.bytes_per_report),
            db_file_bytes_per_report: x(|d| d.db_file_bytes_per_report),
            collector_last_seq_sum: u(|d| d.collector_last_seq_sum),
        }
    }
}

/// `last_seq` summed over every agent in `steward-collector agents list --json` output.
pub(crate) fn last_seq_sum(json: &str) -> Result<u64> {
    let agents: serde_json::Value =
        serde_json::from_str(json).context("agents list --json is not JSON")?;
    let agents = agents
        .as_array()
        .ok_or_else(|| anyhow!("agents list --json is not an array"))?;
    Ok(agents
        .iter()
        .filter_map(|agent| agent.get("last_seq").and_then(serde_json::Value::as_u64))
        .sum())
}

/// WARN and ERROR lines in the collector's log: how many, and the first few.
pub(crate) fn log_problems(path: &Path) -> (u64, Vec<String>) {
    let text = fs::read_to_string(path).unwrap_or_default();
    let problems: Vec<&str> = text
        .lines()
        .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
        .collect();
    let examples = problems.iter().take(5).map(|s| (*s).to_string()).collect();
    (problems.len() as u64, examples)
}

#[derive(Debug, Serialize)]
struct Budget {
    reports_per_sec: u32,
    p99_ack_ms: f64,
    /// Whether the paced phase met it; `None` when `--rate` was below the budget's rate.
    met: Option<bool>,
}

/// The JSON document (and the source of the table).
#[derive(Debug, Serialize)]
struct Report {
    machine: Machine,
    /// Whether the collector evaluated its rules (the defaults) on every report.
    rules: bool,
    agents: usize,
    seconds: u64,
    runs: u32,
    max_reports_per_phase: u64,
    enroll_secs: f64,
    warmup_stored: u64,
    saturation: PhaseFigures,
    paced: PhaseFigures,
    db: DbFigures,
    budget: Budget,
    first_rejection: Option<String>,
    first_retryable: Option<String>,
    collector_log_problems: u64,
}

impl Report {
    fn new(args: &IngestArgs, ticks_per_second: u64, results: &[RunResult]) -> Result<Report> {
        let saturation =
            PhaseFigures::median(&results.iter().map(|r| &r.saturation).collect::<Vec<_>>())
                .ok_or_else(|| anyhow!("no runs"))?;
        let paced = PhaseFigures::median(&results.iter().map(|r| &r.paced).collect::<Vec<_>>())
            .ok_or_else(|| anyhow!("no runs"))?;
        let db = DbFigures::median(&results.iter().map(|r| &r.db).collect::<Vec<_>>());
        let budget = Budget {
            reports_per_sec: BUDGET_RATE,
            p99_ack_ms: BUDGET_P99_MS,
            met: budget_met(&paced),
        };
        Ok(Report {
            machine: machine(ticks_per_second),
            rules: !args.no_rules,
            agents: args.agents,
            seconds: args.seconds,
            runs: args.runs,
            max_reports_per_phase: MAX_REPORTS_PER_PHASE,
            enroll_secs: median_f64(results.iter().map(|r| r.enroll_secs).collect()),
            warmup_stored: median_u64(results.iter().map(|r| r.warmup_stored).collect()),
            saturation,
            paced,
            db,
            budget,
            first_rejection: results.iter().find_map(|r| r.first_rejection.clone()),
            first_retryable: results.iter().find_map(|r| r.first_retryable.clone()),
            collector_log_problems: results.iter().map(|r| r.collector_log_problems).sum(),
        })
    }

    fn table(&self) -> String {
        let mut out = String::new();
        let m = machine_line(&self.machine);
        out.push_str(&format!(
            "machine: {m}; {} simulated agents (own mutual-TLS keep-alive connection each), {} s per phase, {} run(s), medians over runs (MB = MiB); rules {}\n",
            self.agents,
            self.seconds,
            self.runs,
            if self.rules { "on (the defaults)" } else { "off" }
        ));
        out.push_str(&format!(
            "enrollment: {} agents in {:.1} s ({ENROLL_CONCURRENCY} at a time); warm-up: {} reports stored\n\n",
            self.agents, self.enroll_secs, self.warmup_stored
        ));
        out.push_str(&format!(
            "{:<11} {:>8} {:>9} {:>7} {:>7} {:>7} {:>8} {:>11} {:>11} {:>6} {:>6} {:>8} {:>6} {:>6} {:>6}\n",
            "phase",
            "target/s",
            "stored/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "coll CPU ms",
            "(ns clock)",
            "coll",
            "gen",
            "peak RSS",
            "retry",
            "reject",
            "late"
        ));
        out.push_str(&format!(
            "{:<11} {:>8} {:>9} {:>7} {:>7} {:>7} {:>8} {:>11} {:>11} {:>6} {:>6} {:>8} {:>6} {:>6} {:>6}\n",
            "", "", "", "", "", "", "", "per 1k rep", "per 1k rep", "cores", "cores", "MB", "", "", ""
        ));
        for (name, f) in [("saturation", &self.saturation), ("paced", &self.paced)] {
            let target = f
                .target_rate
                .map_or_else(|| "-".to_string(), |rate| rate.to_string());
            out.push_str(&format!(
                "{:<11} {:>8} {:>9.0} {:>7.1} {:>7.1} {:>7.1} {:>8.1} {:>11.1} {:>11.1} {:>6.2} {:>6.2} {:>8.1} {:>6} {:>6} {:>6}\n",
                name,
                target,
                f.reports_per_sec,
                f.p50_ack_ms,
                f.p90_ack_ms,
                f.p99_ack_ms,
                f.max_ack_ms,
                f.collector_cpu_ms_per_1k,
                f.collector_cpu_ms_per_1k_schedstat,
                f.collector_cpu_cores,
                f.generator_cpu_cores,
                f.collector_peak_rss_kb as f64 / 1024.0,
                f.retryable,
                f.rejected,
                f.late
            ));
        }
        let d = &self.db;
        out.push_str(&format!(
            "\ndatabase: {:.0} bytes per report (steward.db + WAL), {:.0} (steward.db alone); {} + {} bytes for {} stored reports (collector last_seq sum {})\n",
            d.bytes_per_report,
            d.db_file_bytes_per_report,
            d.db_bytes,
            d.wal_bytes,
            d.stored_total,
            d.collector_last_seq_sum
        ));
        let verdict = match self.budget.met {
            Some(true) => "met".to_string(),
            Some(false) => "NOT met".to_string(),
            None => format!(
                "not judged (--rate {} is below {BUDGET_RATE})",
                self.paced.target_rate.unwrap_or(0)
            ),
        };
        out.push_str(&format!(
            "budget (paced phase): >= {BUDGET_RATE} reports/s sustained with p99 <= {BUDGET_P99_MS} ms: {verdict}\n"
        ));
        if let Some(message) = &self.first_rejection {
            out.push_str(&format!("first rejection: {message}\n"));
        }
        if let Some(message) = &self.first_retryable {
            out.push_str(&format!("first retryable failure: {message}\n"));
        }
        if self.collector_log_problems > 0 {
            out.push_str(&format!(
                "collector log: {} WARN/ERROR lines over all runs\n",
                self.collector_log_problems
            ));
        }
        out
    }
}

/// Whether the paced phase met the budget; `None` if it did not aim at the budget's rate.
fn budget_met(paced: &PhaseFigures) -> Option<bool> {
    let target = paced.target_rate?;
    (target >= BUDGET_RATE).then(|| {
        paced.reports_per_sec >= f64::from(BUDGET_RATE) * (1.0 - RATE_TOLERANCE)
            && paced.p99_ack_ms <= BUDGET_P99_MS
            && paced.rejected == 0
    })
}

pub(crate) fn machine_line(machine: &Machine) -> String {
    format!(
        "{} cores, {:.1} GiB, {}",
        machine.cores,
        machine.mem_gb,
        machine.cpu_model.as_deref().unwrap_or("unknown CPU")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(rate: f64, p99: f64) -> PhaseFigures {
        let mut tally = Tally {
            stored: 2000,
            sent: 2000,
            latencies_us: vec![1000; 2000],
            ..Tally::default()
        };
        let cpu = Cpu {
            ticks_ms: 500.0,
            schedstat_ms: 480.0,
        };
        let mut f = PhaseFigures::new(Some(10_000), &mut tally, 2.0, cpu, 40_000, cpu);
        f.reports_per_sec = rate;
        f.p99_ack_ms = p99;
        f
    }

    #[test]
    fn reports_round_trip_and_vary() {
        let host = host_identity(41);
        let mut jitter = Jitter(7);
        let first = metrics_report(&host, 41, 1, 1_700_000_000_000, 1, &mut jitter);
        let second = metrics_report(&host, 41, 2, 1_700_000_001_000, 1, &mut jitter);
        assert_eq!(first.metrics.cpu.per_core_pct.len(), 4);
        assert_eq!(first.metrics.filesystems.len(), 3);
        assert_eq!(first.metrics.disks.len(), 2);
        assert_eq!(first.metrics.networks.len(), 2);
        assert!(first.metrics.disks[0].rates.is_none(), "no rates on seq 1");
        assert!(second.metrics.networks[1].rates.is_some());
        assert_ne!(first.metrics.cpu, second.metrics.cpu);
        assert_eq!(second.metrics.networks[0].addresses.len(), 2);
        assert_eq!(second.metrics.networks[0].mac, "52:54:00:00:00:29");
        for fs in &second.metrics.filesystems {
            assert!(fs.used_bytes + fs.available_bytes <= fs.total_bytes);
            assert_eq!(fs.inodes_used + fs.inodes_free, fs.inodes_total);
        }
        let envelope = v1::Envelope {
            agent_id: "a-1".to_string(),
            seq: 2,
            sent_at_ms: 1_700_000_001_000,
            payload: v1::Payload::Metrics(second.clone()),
        };
        let bytes = steward_shared::encode_v1(&envelope).unwrap();
        assert!(bytes.len() > 300 && bytes.len() < 2000, "{}", bytes.len());
        let steward_shared::Envelope::V1(decoded) = steward_shared::decode(&bytes).unwrap();
        assert_eq!(decoded, envelope);
    }

    #[test]
    fn hosts_are_distinct() {
        let ids: std::collections::HashSet<String> = (0..5000).map(machine_id).collect();
        assert_eq!(ids.len(), 5000);
        let id = machine_id(0);
        assert_eq!(id.len(), 32);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(hostname(0), "sim-00001");
        assert_eq!(host_identity(999).hostname, "sim-01000");
        assert_eq!(host_identity(3).fqdn, "sim-00004.bench.steward.test");
    }

    #[test]
    fn jitter_stays_in_range() {
        let mut j = Jitter(1);
        for _ in 0..10_000 {
            let x = j.range(2.0, 3.0);
            assert!((2.0..3.0).contains(&x));
        }
    }

    #[test]
    fn tallies_merge_and_keep_the_first_messages() {
        let mut a = Tally {
            stored: 1,
            latencies_us: vec![5],
            ..Tally::default()
        };
        a.reject("400: first".to_string());
        let mut b = Tally {
            stored: 2,
            late: 3,
            latencies_us: vec![6, 7],
            ..Tally::default()
        };
        b.reject("400: second".to_string());
        a.merge(b);
        assert_eq!((a.stored, a.late, a.rejected), (3, 3, 2));
        assert_eq!(a.latencies_us, vec![5, 6, 7]);
        assert_eq!(a.first_rejection.as_deref(), Some("400: first"));
    }

    #[test]
    fn phase_figures_per_thousand_and_per_second() {
        let f = figures(1000.0, 1.0);
        assert_eq!(f.collector_cpu_ms_per_1k, 250.0);
        assert_eq!(f.collector_cpu_ms_per_1k_schedstat, 240.0);
        assert_eq!(f.collector_cpu_cores, 0.25);
        assert_eq!(f.p50_ack_ms, 1.0);
        let ticks = Cpu::between(
            Sample {
                cpu_ticks: 10,
                cpu_ns: 5_000_000,
                ..Sample::default()
            },
            Sample {
                cpu_ticks: 35,
                cpu_ns: 255_000_000,
                ..Sample::default()
            },
            100,
        );
        assert_eq!(ticks.ticks_ms, 250.0);
        assert_eq!(ticks.schedstat_ms, 250.0);
    }

    #[test]
    fn budget_verdict() {
        assert_eq!(budget_met(&figures(9950.0, 40.0)), Some(true));
        assert_eq!(budget_met(&figures(9000.0, 40.0)), Some(false));
        assert_eq!(budget_met(&figures(10_500.0, 51.0)), Some(false));
        let mut slow = figures(100.0, 1.0);
        slow.target_rate = Some(100);
        assert_eq!(budget_met(&slow), None);
    }

    #[test]
    fn db_bytes_per_report() {
        let d = DbFigures::new(4_000_000, 1_000_000, 10_000, 10_000);
        assert_eq!(d.bytes_per_report, 500.0);
        assert_eq!(d.db_file_bytes_per_report, 400.0);
        assert_eq!(DbFigures::new(1, 1, 0, 0).bytes_per_report, 0.0);
    }

    #[test]
    fn last_seq_sum_of_all_agents() {
        let json =
            r#"[{"id":"a","last_seq":41},{"id":"b","last_seq":null},{"id":"c","last_seq":9}]"#;
        assert_eq!(last_seq_sum(json).unwrap(), 50);
        assert!(last_seq_sum("{}").is_err());
    }

    #[test]
    fn json_has_the_documented_fields() {
        let sat = figures(20_000.0, 80.0);
        let mut saturation = sat.clone();
        saturation.target_rate = None;
        let report = Report {
            machine: machine(100),
            rules: true,
            agents: 1000,
            seconds: 20,
            runs: 3,
            max_reports_per_phase: MAX_REPORTS_PER_PHASE,
            enroll_secs: 10.0,
            warmup_stored: 1000,
            saturation,
            paced: sat,
            db: DbFigures::new(1, 1, 1, 1),
            budget: Budget {
                reports_per_sec: BUDGET_RATE,
                p99_ack_ms: BUDGET_P99_MS,
                met: Some(false),
            },
            first_rejection: None,
            first_retryable: None,
            collector_log_problems: 0,
        };
        let json = serde_json::to_value(&report).unwrap();
        for phase in ["saturation", "paced"] {
            for key in [
                "reports_per_sec",
                "p50_ack_ms",
                "p99_ack_ms",
                "max_ack_ms",
                "collector_cpu_ms_per_1k",
                "collector_peak_rss_kb",
                "db_bytes_per_report",
            ] {
                assert!(json[phase].get(key).is_some(), "{phase}.{key}");
            }
        }
        assert_eq!(json["paced"]["target_rate"], 10_000);
        assert!(json["saturation"].get("target_rate").is_none());
        assert_eq!(json["agents"], 1000);
        assert!(json["machine"]["cores"].is_u64());
        let table = report.table();
        assert!(
            table.contains("saturation") && table.contains("NOT met"),
            "{table}"
        );
    }

    #[test]
    fn validation_bounds() {
        let args = |agents, seconds, rate, runs| IngestArgs {
            agents,
            seconds,
            rate,
            runs,
            json: false,
            bin_dir: None,
            no_rules: false,
        };
        assert!(validate(&args(1000, 20, 10_000, 3)).is_ok());
        assert!(validate(&args(0, 20, 10_000, 3)).is_err());
        assert!(validate(&args(1000, 0, 10_000, 3)).is_err());
        assert!(validate(&args(1000, 20, 0, 3)).is_err());
        assert!(
            validate(&args(1, 20, 10_000, 3)).is_err(),
            "10 kHz per agent"
        );
        assert!(validate(&args(1000, 20, 10_000, 0)).is_err());
    }
}
