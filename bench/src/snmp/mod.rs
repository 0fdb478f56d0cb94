//! `steward-bench snmp`: the collector's SNMP poller against real net-snmp agents on loopback.
//!
//! * **ratio** ([`ratio`]): CPU per 1,000 varbinds of Steward's poller and of
//!   prometheus-snmp-exporter (the Debian package), polling the same snmpd the same number of
//!   times in the same run. Budget: Steward ≤ 0.2 × the exporter.
//! * **fleet** ([`fleet`]): `--targets` distinct targets (loopback address and port pairs on
//!   `--daemons` snmpd processes, [`daemons`]) polled once with the poller's `max_in_flight`.
//!   Budget: all of them within one poll interval (60 s), none failing.
//!
//! All snmpd processes are started first and the bench waits (≤ 90 s) until they serve
//! hrProcessorLoad, which net-snmp adds after its first minute, so every poll walks the same
//! tables. Everything is bounded by `--polls`, `--runs` and `--targets`, and by the pollers'
//! own timeouts; only processes this bench started are stopped, by PID.

mod daemons;
mod exporter;
mod fleet;
mod ratio;
mod report;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use steward_collector::snmp::{SnmpConfig, mib};

use report::{
    BUDGET_RATIO, FleetReport, RatioReport, Report, Settings, exporter_version, load_average,
    snmpd_version,
};

use crate::agent::{WorkDir, machine, print_report, tokio_runtime};
use crate::peers;
use crate::procfs;

const MAX_POLLS: u32 = 100_000;
const MAX_RUNS: u32 = 25;
const MAX_TARGETS: usize = 5000;
const MAX_DAEMONS: usize = 16;
/// How long to wait for snmpd's hrProcessorLoad rows (it adds them after a minute).
const PROCESSOR_ROWS_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    Ratio,
    Fleet,
    Both,
}

#[derive(Debug, clap::Args)]
pub struct SnmpArgs {
    /// Polls of the one snmpd by each poller, per run, for the CPU ratio.
    #[arg(long, default_value_t = 500)]
    polls: u32,
    /// Repeat each part this many times and report medians.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Distinct targets (loopback address and port pairs) polled in the fleet part.
    #[arg(long, default_value_t = 1000)]
    targets: usize,
    /// snmpd processes the fleet's targets are spread over.
    #[arg(long, default_value_t = 4)]
    daemons: usize,
    /// Devices polled at once in the fleet part (default: the collector's `snmp.max_in_flight`).
    #[arg(long)]
    max_in_flight: Option<usize>,
    /// Which part to measure.
    #[arg(long, value_enum, default_value_t = Part::Both)]
    part: Part,
    /// Print one JSON object on stdout instead of a table.
    #[arg(long)]
    json: bool,
    /// The prometheus-snmp-exporter binary (installed with apt-get if it is the default and
    /// missing).
    #[arg(long, default_value = exporter::BINARY)]
    exporter_bin: PathBuf,
}

pub fn run(args: &SnmpArgs) -> Result<()> {
    validate(args)?;
    let with_ratio = matches!(args.part, Part::Ratio | Part::Both);
    let with_fleet = matches!(args.part, Part::Fleet | Part::Both);
    let snmpd_bin = daemons::find_snmpd()?;
    let exporter_bin = if with_ratio {
        Some(
            peers::ensure_installed(&args.exporter_bin, exporter::PACKAGE)
                .ok_or_else(|| anyhow!("{} is not available", args.exporter_bin.display()))?,
        )
    } else {
        None
    };
    let ticks_per_second = procfs::clock_ticks_per_second();
    let mut config = SnmpConfig::default();
    if let Some(n) = args.max_in_flight {
        config.max_in_flight = n;
    }
    config
        .validate()
        .map_err(|e| anyhow!("invalid poller settings: {e}"))?;
    let load_at_start = load_average();
    let workdir = WorkDir::create(0)?;
    let setup_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;

    let (count, addresses) = if with_fleet {
        (
            args.daemons,
            daemons::addresses_per_daemon(args.targets, args.daemons),
        )
    } else {
        (1, 1)
    };
    eprintln!(
        "starting {count} snmpd ({addresses} loopback address(es) each) from {}",
        snmpd_bin.display()
    );
    let mut snmpds =
        daemons::start_all(&snmpd_bin, count, addresses, &workdir.path, &setup_runtime)?;
    let first = snmpds
        .first()
        .and_then(|d| d.target(0))
        .ok_or_else(|| anyhow!("no snmpd started"))?;
    eprintln!(
        "waiting (at most {PROCESSOR_ROWS_TIMEOUT:?}) for snmpd's hrProcessorLoad rows, which it adds after a minute"
    );
    let processor_rows =
        daemons::wait_for_processor_rows(first, PROCESSOR_ROWS_TIMEOUT, &setup_runtime);
    if !processor_rows {
        eprintln!("warning: no hrProcessorLoad rows yet; polls walk without them");
    }

    let ratio_report = match &exporter_bin {
        Some(binary) => {
            let snmpd = snmpds
                .first_mut()
                .ok_or_else(|| anyhow!("no snmpd started"))?;
            Some(measure_ratio(
                args,
                &config,
                binary,
                snmpd,
                &setup_runtime,
                ticks_per_second,
                &workdir.path,
            )?)
        }
        None => None,
    };
    let fleet_report = if with_fleet {
        Some(measure_fleet(args, &config, &mut snmpds, ticks_per_second)?)
    } else {
        None
    };
    drop(snmpds);

    let report = Report {
        machine: machine(ticks_per_second),
        snmpd_version: snmpd_version(&snmpd_bin),
        exporter_version: exporter_bin.as_deref().and_then(exporter_version),
        walked_roots: mib::all_roots().iter().map(ToString::to_string).collect(),
        poller_settings: Settings::of(&config),
        processor_rows,
        load_average: [load_at_start, load_average()],
        ratio: ratio_report,
        fleet: fleet_report,
    };
    print_report(args.json, &report, || report.table())
}

fn validate(args: &SnmpArgs) -> Result<()> {
    if !(1..=MAX_POLLS).contains(&args.polls) {
        bail!("--polls must be between 1 and {MAX_POLLS}");
    }
    if !(1..=MAX_RUNS).contains(&args.runs) {
        bail!("--runs must be between 1 and {MAX_RUNS}");
    }
    if !(1..=MAX_TARGETS).contains(&args.targets) {
        bail!("--targets must be between 1 and {MAX_TARGETS}");
    }
    if !(1..=MAX_DAEMONS).contains(&args.daemons) {
        bail!("--daemons must be between 1 and {MAX_DAEMONS}");
    }
    if daemons::addresses_per_daemon(args.targets, args.daemons) > daemons::MAX_ADDRESSES_PER_DAEMON
    {
        bail!(
            "--targets / --daemons must be at most {} (snmpd's select() limit); add --daemons",
            daemons::MAX_ADDRESSES_PER_DAEMON
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Part 1: the CPU ratio.

/// Polls the first address of `snmpd` with both pollers.
fn measure_ratio(
    args: &SnmpArgs,
    config: &SnmpConfig,
    exporter_bin: &Path,
    snmpd: &mut daemons::Daemon,
    runtime: &tokio::runtime::Runtime,
    ticks_per_second: u64,
    dir: &Path,
) -> Result<RatioReport> {
    let target = snmpd
        .target(0)
        .ok_or_else(|| anyhow!("snmpd has no address"))?;
    let yaml = exporter::config_yaml(&mib::all_roots(), config, daemons::COMMUNITY);
    let mut exporter = exporter::Exporter::start(exporter_bin, &yaml, dir)?;
    eprintln!(
        "ratio: Steward and prometheus-snmp-exporter (pid {}) poll {target}, {} polls each per run",
        exporter.proc.pid(),
        args.polls
    );
    let mut setup = ratio::Setup {
        runtime,
        snmpd,
        target,
        config,
        exporter: &mut exporter,
        ticks_per_second,
    };
    ratio::warm_up(&mut setup)?;
    let mut runs = Vec::new();
    for run in 1..=args.runs {
        let steward_first = run % 2 == 1;
        let measured = ratio::measure_run(&mut setup, args.polls, steward_first)
            .with_context(|| format!("ratio run {run}"))?;
        let (s, e) = (
            ratio::Figures::of(&measured.steward),
            ratio::Figures::of(&measured.exporter),
        );
        eprintln!(
            "ratio run {run}/{}: Steward {:.3} ms CPU per 1k varbinds ({:.0} varbinds/poll, {:.2} ms wall/poll); exporter {:.3} ({:.0} varbinds/scrape, {:.2} ms wall); ratio {:.3}",
            args.runs,
            s.cpu_ms_per_1k_varbinds,
            s.varbinds_per_poll,
            s.wall_ms_per_poll,
            e.cpu_ms_per_1k_varbinds,
            e.varbinds_per_poll,
            e.wall_ms_per_poll,
            ratio::ratio(&s, &e)
        );
        runs.push(measured);
    }
    exporter.proc.stop();
    let steward_runs: Vec<ratio::Figures> = runs
        .iter()
        .map(|r| ratio::Figures::of(&r.steward))
        .collect();
    let exporter_runs: Vec<ratio::Figures> = runs
        .iter()
        .map(|r| ratio::Figures::of(&r.exporter))
        .collect();
    let steward = ratio::Figures::median(&steward_runs);
    let exporter = ratio::Figures::median(&exporter_runs);
    let value = ratio::ratio(&steward, &exporter);
    Ok(RatioReport {
        polls_per_run: args.polls,
        target: target.to_string(),
        steward,
        exporter,
        ratio: value,
        ratio_per_run: steward_runs
            .iter()
            .zip(&exporter_runs)
            .map(|(s, e)| ratio::ratio(s, e))
            .collect(),
        budget_met: value <= BUDGET_RATIO,
        runs,
    })
}

// ---------------------------------------------------------------------------------------------
// Part 2: the fleet.

fn measure_fleet(
    args: &SnmpArgs,
    config: &SnmpConfig,
    snmpds: &mut [daemons::Daemon],
    ticks_per_second: u64,
) -> Result<FleetReport> {
    let count = snmpds.len();
    let targets = (0..args.targets)
        .map(|t| {
            let (k, j) = daemons::place(t, count);
            snmpds
                .get(k)
                .and_then(|d| d.target(j))
                .ok_or_else(|| anyhow!("target {t} has no daemon address"))
        })
        .collect::<Result<Vec<_>>>()?;
    let runtime = tokio_runtime()?;
    let config = Arc::new(config.clone());
    let previous = fleet::Previous::default();
    eprintln!(
        "fleet: {} targets on {count} snmpd, {} in flight, interval {} s",
        targets.len(),
        config.max_in_flight,
        config.interval_secs
    );
    let mut rounds = Vec::new();
    for run in 1..=args.runs {
        let round = fleet::round(
            &runtime,
            &targets,
            &config,
            &previous,
            snmpds,
            ticks_per_second,
        )
        .with_context(|| format!("fleet round {run}"))?;
        eprintln!(
            "fleet round {run}/{}: {} ok, {} failed in {:.2} s; poller {:.0} ms CPU ({:.2} cores), snmpd {:.0} ms CPU ({:.2} cores); poll p50 {:.1} ms, p99 {:.1} ms",
            args.runs,
            round.ok,
            round.failed,
            round.wall_s,
            round.poller_cpu_ms,
            round.poller_cores(),
            round.snmpd_cpu_ms,
            round.snmpd_cores(),
            f64::from(round.poll_us.p50) / 1000.0,
            f64::from(round.poll_us.p99) / 1000.0,
        );
        if let Some(error) = &round.first_error {
            eprintln!("  first failure: {error}");
        }
        rounds.push(round);
    }
    let summary = fleet::Summary::of(&rounds).ok_or_else(|| anyhow!("no fleet rounds"))?;
    let interval = f64::from(config.interval_secs);
    Ok(FleetReport {
        targets: targets.len(),
        daemons: count,
        addresses_per_daemon: daemons::addresses_per_daemon(args.targets, count),
        max_in_flight: config.max_in_flight,
        interval_secs: config.interval_secs,
        budget_met: summary.failed_total == 0 && summary.wall_s_max < interval,
        summary,
        rounds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> SnmpArgs {
        SnmpArgs {
            polls: 500,
            runs: 3,
            targets: 1000,
            daemons: 4,
            max_in_flight: None,
            part: Part::Both,
            json: false,
            exporter_bin: PathBuf::from(exporter::BINARY),
        }
    }

    #[test]
    fn arguments_are_bounded() {
        assert!(validate(&args()).is_ok());
        assert!(validate(&SnmpArgs { polls: 0, ..args() }).is_err());
        assert!(validate(&SnmpArgs { runs: 26, ..args() }).is_err());
        assert!(
            validate(&SnmpArgs {
                daemons: 0,
                ..args()
            })
            .is_err()
        );
        // 1,000 targets on one daemon would need 1,000 sockets in one select().
        assert!(
            validate(&SnmpArgs {
                daemons: 1,
                ..args()
            })
            .is_err()
        );
        assert!(
            validate(&SnmpArgs {
                daemons: 2,
                ..args()
            })
            .is_ok()
        );
    }
}
