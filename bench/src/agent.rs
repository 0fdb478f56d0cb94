//! `steward-bench agent`: the release steward-agent's footprint beside peer agents
//! (prometheus-node-exporter, zabbix_agentd), measured one after another on this machine.
//!
//! Each agent runs for `--seconds` and is sampled every second from /proc. "Steady" figures
//! are taken from the samples after the first [`WARMUP_SECS`] seconds. Every measurement is
//! repeated `--runs` times and the median of each figure is reported.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;

use crate::peers::{self, Proc};
use crate::procfs::{self, Sample};
use crate::stats::{median_f64, median_i64, median_u64};

/// Samples before this many seconds are warm-up and are left out of the steady figures.
const WARMUP_SECS: u64 = 10;
/// The shortest `--seconds` that leaves at least two steady samples.
const MIN_SECONDS: u64 = WARMUP_SECS + 2;
const MAX_SECONDS: u64 = 3600;
const MAX_RUNS: u32 = 25;
/// Timeout for the short collector and agent commands (init, token, enroll, list).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";
const ZABBIX_AGENTD: &str = "/usr/sbin/zabbix_agentd";

#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// Seconds each agent is measured for, per run.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Seconds between metrics cycles: the agent's --interval, and the scrape / poll period
    /// for the peers.
    #[arg(long, default_value_t = 1)]
    interval: u32,
    /// Repeat the whole measurement this many times and report medians.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Print one JSON object on stdout instead of a table.
    #[arg(long)]
    json: bool,
    /// Directory holding the release steward-agent and steward-collector
    /// (default: the workspace's target/release).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// The steward-agent to measure, if not the one in the bin dir: e.g. the shipped static
    /// build, target/x86_64-unknown-linux-musl/agent-release/steward-agent.
    #[arg(long)]
    agent_bin: Option<PathBuf>,
}

/// What every measurement in one invocation shares.
#[derive(Debug, Clone, Copy)]
struct Settings {
    seconds: u64,
    interval: u32,
    ticks_per_second: u64,
}

/// The steward binaries under test.
#[derive(Debug)]
struct StewardBins {
    agent: PathBuf,
    collector: PathBuf,
}

/// Peer binaries, `None` when not available.
#[derive(Debug)]
struct PeerBins {
    node_exporter: Option<PathBuf>,
    zabbix: Option<PathBuf>,
}

/// One agent's figures from one run (or the medians over runs).
#[derive(Debug, Clone, Serialize)]
struct Footprint {
    steady_rss_kb: u64,
    steady_pss_kb: u64,
    peak_rss_kb: u64,
    cpu_ms_per_cycle: f64,
    /// The same from the nanosecond `schedstat` clock of the live threads (cross-check).
    cpu_ms_per_cycle_schedstat: f64,
    binary_bytes: u64,
    /// Metrics cycles in the steady window the CPU figure is divided by.
    window_cycles: f64,
    /// CPU clock ticks consumed in the steady window.
    window_cpu_ticks: u64,
    /// RSS at the last sample minus RSS at the first steady sample.
    rss_growth_kb: i64,
    /// Processes summed (zabbix_agentd forks workers).
    processes: usize,
    /// Reports the collector stored (`reports_stored` of the host's CI), steward only.
    #[serde(skip_serializing_if = "Option::is_none")]
    reports_stored: Option<u64>,
}

#[derive(Debug)]
struct RunResult {
    steward: Footprint,
    node_exporter: Option<Footprint>,
    zabbix: Option<Footprint>,
}

/// How the cycles in the steady window are counted.
#[derive(Debug, Clone, Copy)]
enum Cycles {
    /// The agent paces itself: window seconds / interval.
    ByTime,
    /// The benchmark drives the work: completed requests in the window.
    ByWork,
}

/// Samples and completed work of one measurement, timed from its start.
#[derive(Debug, Default)]
struct Observation {
    /// (nominal second, elapsed seconds, sample)
    samples: Vec<(u64, f64, Sample)>,
    /// Elapsed seconds at which each successful work cycle completed.
    work_done: Vec<f64>,
    work_failures: u32,
}

pub fn run(args: &AgentArgs) -> Result<()> {
    validate(args)?;
    let bins = locate_steward(args.bin_dir.as_deref(), args.agent_bin.as_deref())?;
    let peer_bins = PeerBins {
        node_exporter: peers::ensure_installed(
            Path::new(NODE_EXPORTER),
            "prometheus-node-exporter",
        ),
        zabbix: peers::ensure_installed(Path::new(ZABBIX_AGENTD), "zabbix-agent"),
    };
    let settings = Settings {
        seconds: args.seconds,
        interval: args.interval,
        ticks_per_second: procfs::clock_ticks_per_second(),
    };
    let mut results = Vec::new();
    for run in 1..=args.runs {
        eprintln!("== run {run}/{}", args.runs);
        let workdir = WorkDir::create(run)?;
        results.push(measure_run(&bins, &peer_bins, settings, &workdir.path)?);
    }
    let report = Report::new(args, settings, &results)?;
    print_report(args.json, &report, || report.table())
}

fn validate(args: &AgentArgs) -> Result<()> {
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&args.seconds) {
        bail!(
            "--seconds must be between {MIN_SECONDS} and {MAX_SECONDS} (the first {WARMUP_SECS} s are warm-up)"
        );
    }
    if args.interval == 0 || u64::from(args.interval) * 2 > args.seconds - WARMUP_SECS {
        bail!(
            "--interval must be at least 1 and leave two cycles after the {WARMUP_SECS} s warm-up"
        );
    }
    if !(1..=MAX_RUNS).contains(&args.runs) {
        bail!("--runs must be between 1 and {MAX_RUNS}");
    }
    Ok(())
}

/// Finds steward-agent and steward-collector; never builds them.
fn locate_steward(bin_dir: Option<&Path>, agent_bin: Option<&Path>) -> Result<StewardBins> {
    let dir = match bin_dir {
        Some(dir) => dir.to_path_buf(),
        None => default_bin_dir("steward-agent"),
    };
    let agent = agent_bin.map_or_else(|| dir.join("steward-agent"), Path::to_path_buf);
    let collector = dir.join("steward-collector");
    for binary in [&agent, &collector] {
        if !binary.is_file() {
            bail!(
                "{} not found. Build the release binaries first:\n  cargo build --release -p steward-agent -p steward-collector\n(or point --bin-dir at a directory holding them)",
                binary.display()
            );
        }
    }
    Ok(StewardBins { agent, collector })
}

/// The workspace's target/release if it holds `binary`, else ./target/release.
pub(crate) fn default_bin_dir(binary: &str) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let from_workspace = workspace.join("target").join("release");
    if from_workspace.join(binary).is_file() {
        return from_workspace;
    }
    PathBuf::from("target").join("release")
}

/// Finds the release binary `binary` (built by the package of that name) in `bin_dir`, or by
/// default the workspace's target/release; never builds it.
pub(crate) fn locate_release_bin(bin_dir: Option<&Path>, binary: &str) -> Result<PathBuf> {
    let dir = match bin_dir {
        Some(dir) => dir.to_path_buf(),
        None => default_bin_dir(binary),
    };
    let path = dir.join(binary);
    if !path.is_file() {
        bail!(
            "{} not found. Build it first:\n  cargo build --release -p {binary}\n(or point --bin-dir at a directory holding it)",
            path.display()
        );
    }
    Ok(path)
}

/// The multi-threaded tokio runtime a benchmark runs its load on.
pub(crate) fn tokio_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
}

/// Prints a benchmark's report: one JSON object on stdout with `--json`, else its table.
pub(crate) fn print_report(
    json: bool,
    report: &impl Serialize,
    table: impl FnOnce() -> String,
) -> Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string(report).context("cannot encode the report")?
        );
    } else {
        print!("{}", table());
    }
    Ok(())
}

/// A scratch directory for one run, removed when dropped.
#[derive(Debug)]
pub(crate) struct WorkDir {
    pub(crate) path: PathBuf,
}

impl WorkDir {
    pub(crate) fn create(run: u32) -> Result<WorkDir> {
        let path = std::env::temp_dir().join(format!("steward-bench-{}-{run}", std::process::id()));
        if path.exists() {
            fs::remove_dir_all(&path)
                .with_context(|| format!("cannot clear {}", path.display()))?;
        }
        fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(WorkDir { path })
    }

    /// Keeps the directory on disk (it is not removed when dropped); returns its path.
    pub(crate) fn keep(mut self) -> PathBuf {
        std::mem::take(&mut self.path)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Steward, then each available peer, one after another.
fn measure_run(
    bins: &StewardBins,
    peer_bins: &PeerBins,
    settings: Settings,
    dir: &Path,
) -> Result<RunResult> {
    let steward = measure_steward(bins, settings, dir).context("steward-agent")?;
    let node_exporter = match &peer_bins.node_exporter {
        Some(binary) => {
            Some(measure_node_exporter(binary, settings, dir).context("prometheus-node-exporter")?)
        }
        None => None,
    };
    let zabbix = match &peer_bins.zabbix {
        Some(binary) => Some(measure_zabbix(binary, settings, dir).context("zabbix_agentd")?),
        None => None,
    };
    Ok(RunResult {
        steward,
        node_exporter,
        zabbix,
    })
}

fn measure_steward(bins: &StewardBins, settings: Settings, dir: &Path) -> Result<Footprint> {
    let data = dir.join("data");
    let state = dir.join("agent");
    let port = peers::free_port()?;
    eprintln!("steward: collector on 127.0.0.1:{port}");
    let collector_cmd = |label: &str, args: Vec<String>| {
        peers::run_to_completion(&bins.collector, &args, dir, label, COMMAND_TIMEOUT)
    };
    let init = collector_cmd(
        "collector-init",
        strings(&[
            "init",
            "--data-dir",
            &path_str(&data),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ]),
    )?;
    let fingerprint = last_line(&init)
        .filter(|line| line.starts_with("sha256:"))
        .ok_or_else(|| anyhow!("collector init printed no sha256: fingerprint last:\n{init}"))?;
    let mut collector = Proc::spawn(
        "steward-collector serve",
        &bins.collector,
        &strings(&["serve", "--data-dir", &path_str(&data)]),
        &dir.join("collector.log"),
    )?;
    collector.wait_for_port(port, Duration::from_secs(10))?;
    let token = collector_cmd(
        "enroll-token",
        strings(&["enroll-token", "create", "--data-dir", &path_str(&data)]),
    )?;
    let token = token.trim();
    if token.is_empty() {
        bail!("enroll-token create printed no token");
    }
    peers::run_to_completion(
        &bins.agent,
        &strings(&[
            "enroll",
            "--collector",
            &format!("https://127.0.0.1:{port}"),
            "--token",
            token,
            "--ca-fingerprint",
            &fingerprint,
            "--state-dir",
            &path_str(&state),
        ]),
        dir,
        "agent-enroll",
        COMMAND_TIMEOUT,
    )?;

    eprintln!("steward: agent running for {} s", settings.seconds);
    let mut agent = Proc::spawn(
        "steward-agent run",
        &bins.agent,
        &strings(&[
            "run",
            "--state-dir",
            &path_str(&state),
            "--interval",
            &settings.interval.to_string(),
        ]),
        &dir.join("agent.log"),
    )?;
    let observation = observe(&mut agent, settings, &mut || Ok(()))?;
    agent.stop();
    collector.ensure_running()?;

    // Sequence numbers start at the Unix time in ms, so the count comes from the CI itself.
    let listed = collector_cmd(
        "ci-list",
        strings(&["ci", "list", "--json", "--data-dir", &path_str(&data)]),
    )?;
    let ci_id = single_ci_id(&listed)?;
    let shown = collector_cmd(
        "ci-show",
        strings(&[
            "ci",
            "show",
            &ci_id.to_string(),
            "--json",
            "--data-dir",
            &path_str(&data),
        ]),
    )?;
    let stored = reports_stored(&shown)?;
    let mut footprint = summarize(&observation, settings, Cycles::ByTime, &bins.agent)?;
    footprint.reports_stored = Some(stored);
    let expected = settings.seconds / u64::from(settings.interval);
    eprintln!(
        "steward: collector stored {stored} reports (about {expected} expected); {}",
        brief(&footprint)
    );
    collector.stop();
    Ok(footprint)
}

fn measure_node_exporter(binary: &Path, settings: Settings, dir: &Path) -> Result<Footprint> {
    let port = peers::free_port()?;
    eprintln!(
        "node_exporter: 127.0.0.1:{port}, scraped every {} s for {} s",
        settings.interval, settings.seconds
    );
    let mut exporter = peers::start_node_exporter(binary, port, dir)?;
    let mut first = true;
    let observation = observe(&mut exporter, settings, &mut || {
        let bytes = peers::scrape_metrics(port)?;
        if std::mem::take(&mut first) {
            eprintln!("node_exporter: first scrape {bytes} bytes");
        }
        Ok(())
    })?;
    exporter.stop();
    let footprint = summarize(&observation, settings, Cycles::ByWork, binary)?;
    eprintln!("node_exporter: {}", brief(&footprint));
    Ok(footprint)
}

fn measure_zabbix(binary: &Path, settings: Settings, dir: &Path) -> Result<Footprint> {
    let port = peers::free_port_in(peers::ZABBIX_PORTS)?;
    let iface = fs::read_to_string("/proc/net/route")
        .ok()
        .and_then(|text| procfs::parse_default_route_iface(&text))
        .unwrap_or_else(|| "lo".to_string());
    let items = peers::zabbix_items(&iface);
    eprintln!(
        "zabbix_agentd: 127.0.0.1:{port}, StartAgents={}, polling {} every {} s for {} s",
        peers::ZABBIX_START_AGENTS,
        items.join(", "),
        settings.interval,
        settings.seconds
    );
    let mut zabbix = peers::start_zabbix(binary, port, dir)?;
    let mut first_ok = true;
    let observation = observe(&mut zabbix, settings, &mut || {
        let values = items
            .iter()
            .map(|key| peers::zabbix_get(port, key))
            .collect::<Result<Vec<_>>>()?;
        if std::mem::take(&mut first_ok) {
            let shown: Vec<String> = items
                .iter()
                .zip(&values)
                .map(|(key, value)| format!("{key}={value}"))
                .collect();
            eprintln!("zabbix_agentd: first full poll: {}", shown.join(" "));
        }
        Ok(())
    })?;
    zabbix.stop();
    let footprint = summarize(&observation, settings, Cycles::ByWork, binary)?;
    eprintln!("zabbix_agentd: {}", brief(&footprint));
    Ok(footprint)
}

/// Samples `proc`'s process tree every second for `settings.seconds`, calling `work` every
/// `settings.interval` seconds (before the sample when both fall due together).
fn observe(
    proc: &mut Proc,
    settings: Settings,
    work: &mut dyn FnMut() -> Result<()>,
) -> Result<Observation> {
    let pid = proc.pid();
    let start = Instant::now();
    let end = start + Duration::from_secs(settings.seconds);
    let every = Duration::from_secs(1);
    let interval = Duration::from_secs(u64::from(settings.interval));
    let mut next_sample = start + every;
    let mut next_work = start + interval;
    let mut second = 1u64;
    let mut observation = Observation::default();
    // Each pass handles at least one sample or one work cycle, so this bound is never reached
    // in a healthy run.
    let max_passes = 2 * settings.seconds + 10;
    for _ in 0..max_passes {
        let due = next_sample.min(next_work);
        if due > end {
            break;
        }
        sleep(due.saturating_duration_since(Instant::now()));
        if Instant::now() >= next_work {
            match work() {
                Ok(()) => observation.work_done.push(start.elapsed().as_secs_f64()),
                Err(error) => {
                    observation.work_failures += 1;
                    if observation.work_failures <= 3 {
                        eprintln!("  work cycle failed: {error:#}");
                    }
                }
            }
            next_work = next_tick(next_work, interval);
        }
        if Instant::now() >= next_sample {
            proc.ensure_running()?;
            let sample = procfs::sample_tree(pid)?;
            observation
                .samples
                .push((second, start.elapsed().as_secs_f64(), sample));
            let after = next_tick(next_sample, every);
            second += (after - next_sample).as_secs().max(1);
            next_sample = after;
        }
    }
    if observation.work_failures > 0 {
        eprintln!(
            "  {} work cycle(s) failed in total",
            observation.work_failures
        );
    }
    Ok(observation)
}

/// The next tick after `tick`, skipping ticks already missed.
fn next_tick(tick: Instant, period: Duration) -> Instant {
    let mut next = tick + period;
    let now = Instant::now();
    // Bounded: a pass never lags by more than the measurement's length.
    for _ in 0..10_000 {
        if next > now {
            break;
        }
        next += period;
    }
    next
}

/// Turns an observation into the reported figures.
fn summarize(
    observation: &Observation,
    settings: Settings,
    cycles: Cycles,
    binary: &Path,
) -> Result<Footprint> {
    let steady: Vec<&(u64, f64, Sample)> = observation
        .samples
        .iter()
        .filter(|(second, _, _)| *second >= WARMUP_SECS)
        .collect();
    let (Some(first), Some(last)) = (steady.first(), steady.last()) else {
        bail!("no samples after the {WARMUP_SECS} s warm-up");
    };
    let (_, t0, s0) = **first;
    let (_, t1, s1) = **last;
    if steady.len() < 2 || t1 <= t0 {
        bail!("fewer than two samples after the warm-up");
    }
    let window_cycles = match cycles {
        Cycles::ByTime => (t1 - t0) / f64::from(settings.interval),
        Cycles::ByWork => observation
            .work_done
            .iter()
            .filter(|&&t| t > t0 && t <= t1)
            .count() as f64,
    };
    if window_cycles <= 0.0 {
        bail!("no completed metrics cycles in the steady window");
    }
    let window_cpu_ticks = s1.cpu_ticks.saturating_sub(s0.cpu_ticks);
    let cpu_ms = window_cpu_ticks as f64 * 1000.0 / settings.ticks_per_second as f64;
    let schedstat_ms = s1.cpu_ns.saturating_sub(s0.cpu_ns) as f64 / 1e6;
    let binary_bytes = fs::metadata(binary)
        .with_context(|| format!("cannot stat {}", binary.display()))?
        .len();
    Ok(Footprint {
        steady_rss_kb: median_u64(steady.iter().map(|(_, _, s)| s.rss_kb).collect()),
        steady_pss_kb: median_u64(steady.iter().map(|(_, _, s)| s.pss_kb).collect()),
        peak_rss_kb: observation
            .samples
            .iter()
            .map(|(_, _, s)| s.hwm_kb)
            .max()
            .unwrap_or(0),
        cpu_ms_per_cycle: cpu_ms / window_cycles,
        cpu_ms_per_cycle_schedstat: schedstat_ms / window_cycles,
        binary_bytes,
        window_cycles,
        window_cpu_ticks,
        rss_growth_kb: s1.rss_kb as i64 - s0.rss_kb as i64,
        processes: s1.processes,
        reports_stored: None,
    })
}

/// The id of the one CI in `steward-collector ci list --json` output.
fn single_ci_id(json: &str) -> Result<i64> {
    let cis: serde_json::Value =
        serde_json::from_str(json).context("ci list --json is not JSON")?;
    let cis = cis
        .as_array()
        .ok_or_else(|| anyhow!("ci list --json is not an array"))?;
    let [ci] = cis.as_slice() else {
        bail!("expected one CI, found {}", cis.len());
    };
    ci.get("id")
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| anyhow!("the CI has no id"))
}

/// `reports_stored` from `steward-collector ci show ID --json` output.
fn reports_stored(json: &str) -> Result<u64> {
    let ci: serde_json::Value = serde_json::from_str(json).context("ci show --json is not JSON")?;
    ci.get("reports_stored")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| anyhow!("ci show --json has no reports_stored"))
}

/// The median of each figure across runs.
fn median_footprint(runs: &[&Footprint]) -> Option<Footprint> {
    let first = runs.first()?;
    let u = |f: fn(&Footprint) -> u64| median_u64(runs.iter().map(|r| f(r)).collect());
    let x = |f: fn(&Footprint) -> f64| median_f64(runs.iter().map(|r| f(r)).collect());
    let stored: Vec<u64> = runs.iter().filter_map(|r| r.reports_stored).collect();
    Some(Footprint {
        steady_rss_kb: u(|f| f.steady_rss_kb),
        steady_pss_kb: u(|f| f.steady_pss_kb),
        peak_rss_kb: u(|f| f.peak_rss_kb),
        cpu_ms_per_cycle: x(|f| f.cpu_ms_per_cycle),
        cpu_ms_per_cycle_schedstat: x(|f| f.cpu_ms_per_cycle_schedstat),
        binary_bytes: first.binary_bytes,
        window_cycles: x(|f| f.window_cycles),
        window_cpu_ticks: u(|f| f.window_cpu_ticks),
        rss_growth_kb: median_i64(runs.iter().map(|r| r.rss_growth_kb).collect()),
        processes: first.processes,
        reports_stored: (!stored.is_empty()).then(|| median_u64(stored)),
    })
}

#[derive(Debug, Serialize)]
pub(crate) struct Machine {
    pub(crate) cores: usize,
    pub(crate) mem_gb: f64,
    pub(crate) cpu_model: Option<String>,
    pub(crate) clk_tck: u64,
}

#[derive(Debug, Serialize)]
struct Agents {
    steward: Footprint,
    node_exporter: Option<Footprint>,
    zabbix_agentd: Option<Footprint>,
}

#[derive(Debug, Serialize)]
struct Ratio {
    steady_rss: f64,
    steady_pss: f64,
    cpu_per_cycle: f64,
    cpu_per_cycle_schedstat: f64,
}

#[derive(Debug, Serialize)]
struct Ratios {
    node_exporter: Option<Ratio>,
    zabbix_agentd: Option<Ratio>,
}

/// The JSON document (and the source of the table).
#[derive(Debug, Serialize)]
struct Report {
    machine: Machine,
    seconds: u64,
    interval: u32,
    runs: u32,
    warmup_seconds: u64,
    zabbix_start_agents: u32,
    agents: Agents,
    ratios: Ratios,
}

impl Report {
    fn new(args: &AgentArgs, settings: Settings, results: &[RunResult]) -> Result<Report> {
        let steward = median_footprint(&results.iter().map(|r| &r.steward).collect::<Vec<_>>())
            .ok_or_else(|| anyhow!("no runs"))?;
        let node_exporter = median_footprint(
            &results
                .iter()
                .filter_map(|r| r.node_exporter.as_ref())
                .collect::<Vec<_>>(),
        );
        let zabbix = median_footprint(
            &results
                .iter()
                .filter_map(|r| r.zabbix.as_ref())
                .collect::<Vec<_>>(),
        );
        let ratios = Ratios {
            node_exporter: node_exporter.as_ref().map(|peer| ratio(peer, &steward)),
            zabbix_agentd: zabbix.as_ref().map(|peer| ratio(peer, &steward)),
        };
        Ok(Report {
            machine: machine(settings.ticks_per_second),
            seconds: args.seconds,
            interval: args.interval,
            runs: args.runs,
            warmup_seconds: WARMUP_SECS,
            zabbix_start_agents: peers::ZABBIX_START_AGENTS,
            agents: Agents {
                steward,
                node_exporter,
                zabbix_agentd: zabbix,
            },
            ratios,
        })
    }

    fn table(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        out.push_str(&format!(
            "machine: {} cores, {:.1} GiB, {}; {} runs x {} s per agent, interval {} s, medians over runs (MB = MiB)\n\n",
            m.cores,
            m.mem_gb,
            m.cpu_model.as_deref().unwrap_or("unknown CPU"),
            self.runs,
            self.seconds,
            self.interval
        ));
        out.push_str(&format!(
            "{:<16} {:>14} {:>14} {:>12} {:>13} {:>10} {:>7} {:>6} {:>15}\n",
            "agent",
            "steady RSS MB",
            "steady PSS MB",
            "peak RSS MB",
            "CPU ms/cycle",
            "binary MB",
            "cycles",
            "procs",
            "(ns clock) ms"
        ));
        let rows = [
            ("steward-agent", Some(&self.agents.steward)),
            ("node_exporter", self.agents.node_exporter.as_ref()),
            ("zabbix_agentd", self.agents.zabbix_agentd.as_ref()),
        ];
        for (name, footprint) in rows {
            match footprint {
                Some(f) => out.push_str(&format!(
                    "{:<16} {:>14.2} {:>14.2} {:>12.2} {:>13.3} {:>10.2} {:>7.0} {:>6} {:>15.3}\n",
                    name,
                    mb(f.steady_rss_kb),
                    mb(f.steady_pss_kb),
                    mb(f.peak_rss_kb),
                    f.cpu_ms_per_cycle,
                    f.binary_bytes as f64 / 1024.0 / 1024.0,
                    f.window_cycles,
                    f.processes,
                    f.cpu_ms_per_cycle_schedstat
                )),
                None => out.push_str(&format!("{name:<16} not available\n")),
            }
        }
        out.push_str(&format!(
            "\n{:<24} {:>6} {:>6} {:>10} {:>22}\n",
            "ratio (peer / steward)", "RSS", "PSS", "CPU/cycle", "CPU/cycle (ns clock)"
        ));
        for (name, ratio) in [
            ("node_exporter", self.ratios.node_exporter.as_ref()),
            ("zabbix_agentd", self.ratios.zabbix_agentd.as_ref()),
        ] {
            match ratio {
                Some(r) => out.push_str(&format!(
                    "{:<24} {:>6.2} {:>6.2} {:>10.2} {:>22.2}\n",
                    name, r.steady_rss, r.steady_pss, r.cpu_per_cycle, r.cpu_per_cycle_schedstat
                )),
                None => out.push_str(&format!("{name:<24} not available\n")),
            }
        }
        let s = &self.agents.steward;
        out.push_str(&format!(
            "\nsteward-agent: {} reports stored per run (median), RSS change over the steady window {:+} kB\n",
            s.reports_stored.unwrap_or(0),
            s.rss_growth_kb
        ));
        out
    }
}

fn ratio(peer: &Footprint, steward: &Footprint) -> Ratio {
    let div = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    Ratio {
        steady_rss: div(peer.steady_rss_kb as f64, steward.steady_rss_kb as f64),
        steady_pss: div(peer.steady_pss_kb as f64, steward.steady_pss_kb as f64),
        cpu_per_cycle: div(peer.cpu_ms_per_cycle, steward.cpu_ms_per_cycle),
        cpu_per_cycle_schedstat: div(
            peer.cpu_ms_per_cycle_schedstat,
            steward.cpu_ms_per_cycle_schedstat,
        ),
    }
}

pub(crate) fn machine(clk_tck: u64) -> Machine {
    let mem_kb = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| procfs::parse_meminfo_total_kb(&text).ok())
        .unwrap_or(0);
    Machine {
        cores: std::thread::available_parallelism().map_or(0, usize::from),
        mem_gb: (mem_kb as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        cpu_model: fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| procfs::parse_cpu_model(&text)),
        clk_tck,
    }
}

fn brief(f: &Footprint) -> String {
    format!(
        "steady RSS {} kB, PSS {} kB, peak {} kB, {:.3} ms CPU/cycle ({:.3} by schedstat) over {:.0} cycles ({} ticks), RSS change {:+} kB",
        f.steady_rss_kb,
        f.steady_pss_kb,
        f.peak_rss_kb,
        f.cpu_ms_per_cycle,
        f.cpu_ms_per_cycle_schedstat,
        f.window_cycles,
        f.window_cpu_ticks,
        f.rss_growth_kb
    )
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

pub(crate) fn last_line(text: &str) -> Option<String> {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(str::to_string)
}

pub(crate) fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_string()).collect()
}

pub(crate) fn path_str(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rss_kb: u64, cpu_ticks: u64) -> Sample {
        Sample {
            rss_kb,
            hwm_kb: rss_kb + 100,
            pss_kb: rss_kb / 2,
            cpu_ticks,
            cpu_ns: cpu_ticks * 10_000_000,
            processes: 1,
        }
    }

    #[test]
    fn summary_uses_only_the_steady_window() {
        let settings = Settings {
            seconds: 14,
            interval: 1,
            ticks_per_second: 100,
        };
        let mut observation = Observation::default();
        for second in 1..=14u64 {
            // Warm-up samples are huge and must not count.
            let rss = if second < WARMUP_SECS {
                50_000
            } else {
                3000 + second
            };
            observation
                .samples
                .push((second, second as f64, sample(rss, second * 10)));
        }
        let binary = std::env::current_exe().unwrap();
        let f = summarize(&observation, settings, Cycles::ByTime, &binary).unwrap();
        assert_eq!(f.steady_rss_kb, 3012);
        assert_eq!(f.peak_rss_kb, 50_100);
        // 40 ticks = 400 ms over 4 cycles.
        assert_eq!(f.window_cpu_ticks, 40);
        assert!((f.cpu_ms_per_cycle - 100.0).abs() < 1e-9);
        assert!((f.cpu_ms_per_cycle_schedstat - 100.0).abs() < 1e-9);
        assert_eq!(f.rss_growth_kb, 4);

        observation.work_done = vec![10.0, 10.5, 12.0, 13.0, 14.0, 14.5];
        let f = summarize(&observation, settings, Cycles::ByWork, &binary).unwrap();
        assert_eq!(f.window_cycles, 4.0);
    }

    #[test]
    fn table_lists_every_agent_and_marks_missing_peers() {
        let footprint = |rss_kb, cpu| Footprint {
            steady_rss_kb: rss_kb,
            steady_pss_kb: rss_kb / 2,
            peak_rss_kb: rss_kb,
            cpu_ms_per_cycle: cpu,
            cpu_ms_per_cycle_schedstat: cpu,
            binary_bytes: 4 << 20,
            window_cycles: 30.0,
            window_cpu_ticks: 3,
            rss_growth_kb: 16,
            processes: 1,
            reports_stored: None,
        };
        let steward = footprint(4096, 1.0);
        let peer = footprint(20480, 7.0);
        let report = Report {
            machine: Machine {
                cores: 2,
                mem_gb: 23.5,
                cpu_model: None,
                clk_tck: 100,
            },
            seconds: 40,
            interval: 1,
            runs: 3,
            warmup_seconds: WARMUP_SECS,
            zabbix_start_agents: 3,
            ratios: Ratios {
                node_exporter: Some(ratio(&peer, &steward)),
                zabbix_agentd: None,
            },
            agents: Agents {
                steward,
                node_exporter: Some(peer),
                zabbix_agentd: None,
            },
        };
        let table = report.table();
        assert!(table.contains("steward-agent"), "{table}");
        assert!(table.contains("zabbix_agentd    not available"), "{table}");
        assert!(table.contains("5.00"), "RSS ratio 20480/4096: {table}");
        let json = serde_json::to_value(&report).unwrap();
        assert!(json["agents"]["zabbix_agentd"].is_null());
        assert_eq!(json["agents"]["steward"]["steady_rss_kb"], 4096);
    }

    #[test]
    fn stored_reports_come_from_the_single_ci() {
        assert_eq!(single_ci_id(r#"[{"id":7,"name":"h"}]"#).unwrap(), 7);
        assert!(single_ci_id("[]").is_err());
        assert_eq!(
            reports_stored(r#"{"id":7,"reports_stored":61}"#).unwrap(),
            61
        );
        assert!(reports_stored(r#"{"id":7}"#).is_err());
    }

    #[test]
    fn fingerprint_is_the_last_nonempty_line() {
        let out = "initialised /d\n  listen 127.0.0.1:1\nsha256:abcd\n\n";
        assert_eq!(last_line(out).as_deref(), Some("sha256:abcd"));
    }
}
