//! `steward-bench cmdb`: the CMDB's two budgets, measured against the real store.
//!
//! * **Identification and inventory** (≤ 5 ms of collector CPU per report), in-process against
//!   a real [`Store`] on a temporary SQLite file. The store first gets `--cis` other CIs, each
//!   from a full inventory of `--packages` Debian-like packages and a Dell server's hardware, sent
//!   as concurrent ingests the writer batches. Then each run takes `--agents` newly enrolled
//!   agents through three cases, one report at a time (each alone in its transaction, with its
//!   own commit):
//!   1. the agent's first full inventory: identification against the other CIs, a new CI, its
//!      identifiers, and its software rows;
//!   2. its next inventory with [`UPGRADED`] packages upgraded, [`REMOVED`] removed and
//!      [`INSTALLED`] installed: the diff and the history entry;
//!   3. an "inventory unchanged" marker.
//!
//!   The collector's CPU for a report is the time on CPU of the store's writer thread across
//!   that one ingest, read from `/proc/self/task/TID/schedstat` (nanoseconds; the 10 ms clock
//!   ticks of `/proc/PID/stat` are too coarse for one report), plus the WAL checkpointer
//!   thread's time over the case divided by its reports. The report is built before the clock
//!   starts. Decoding the wire report (postcard) happens in the server before the store sees it;
//!   its CPU is measured on its own and shown beside, not added.
//! * **`ci list` over `--list-cis` CIs** (≤ 1 s): a data directory from `steward-collector
//!   init`, filled in-process through the store API (enrollments, then `--reports-per-ci`
//!   metrics reports per agent, a real sample of this machine's metrics in each), closed, then a
//!   real `steward-collector serve` on it and the admin's command, `steward-collector ci list
//!   --json --data-dir D`, end to end over HTTPS, `--runs` times: wall clock, the CLI's CPU
//!   (GNU time) and the collector's CPU (`/proc`). `Store::list_cis` and
//!   `Store::list_cis_filtered` (what the admin endpoint runs) are also timed in-process.
//!
//! Only loopback and temporary directories are used; the collector is stopped by PID.

use std::fs;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use steward_collector::store::{
    CiFilter, IngestOutcome, InventoryRecord, NewAgent, ReportContent, ReportRecord, Store,
};
use steward_shared::v1;
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

use crate::agent::{Machine, WorkDir, machine, path_str, print_report, strings, tokio_runtime};
use crate::peers::{self, Proc};
use crate::procfs;
use crate::stats::{Latency, median_f64, median_u64};

const MAX_CIS: usize = 1_000_000;
const MAX_AGENTS: usize = 5_000;
const MAX_PACKAGES: usize = 20_000;
const MAX_RUNS: u32 = 25;
const MAX_REPORTS_PER_CI: u32 = 100;
/// The budgets.
const BUDGET_REPORT_CPU_MS: f64 = 5.0;
const BUDGET_LIST_MS: f64 = 1000.0;
/// The changed inventory of case 2.
const UPGRADED: usize = 20;
const REMOVED: usize = 5;
const INSTALLED: usize = 5;
/// Writes in flight while filling a store: enough for the writer to batch them.
const FILL_CONCURRENCY: usize = 64;
/// The store's batch and queue limits (the collector's defaults are 1024 and 2048).
const BATCH_MAX: usize = 1024;
const QUEUE_MAX: usize = 4096;
/// Timeout for `init` and for each `ci list`.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
const GNU_TIME: &str = "/usr/bin/time";
/// Thread names of the store (`comm` keeps 15 bytes: "store-checkpoint" reads "store-checkpoin").
const WRITER_THREAD: &str = "store-writer";
const CHECKPOINT_THREAD: &str = "store-checkpoin";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    /// Identification and inventory diff, then `ci list`.
    Both,
    /// Identification and inventory diff only.
    Identify,
    /// `ci list` only.
    List,
}

#[derive(Debug, clap::Args)]
pub struct CmdbArgs {
    /// Other CIs in the store (each with a full inventory) when the measured agents report.
    #[arg(long, default_value_t = 10_000)]
    cis: usize,
    /// New agents per run, each sending a first inventory, a changed one and an unchanged marker.
    #[arg(long, default_value_t = 200)]
    agents: usize,
    /// Packages in each host's inventory.
    #[arg(long, default_value_t = 800)]
    packages: usize,
    /// CIs in the store `ci list` is timed over.
    #[arg(long, default_value_t = 100_000)]
    list_cis: usize,
    /// Metrics reports stored per CI for `ci list` (its "last seen" and "latest" read them).
    #[arg(long, default_value_t = 2)]
    reports_per_ci: u32,
    /// Runs of each measurement (medians are reported). The stores are filled once.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Which part to measure.
    #[arg(long, value_enum, default_value_t = Part::Both)]
    part: Part,
    /// Print one JSON object on stdout instead of tables.
    #[arg(long)]
    json: bool,
    /// Copy the filled databases here (`identify.db`, `list.db`) for inspection, e.g. with
    /// `sqlite3 list.db 'EXPLAIN QUERY PLAN ...'`.
    #[arg(long)]
    keep_db: Option<PathBuf>,
    /// Directory holding the release steward-collector (default: the workspace's target/release).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
}

pub fn run(args: &CmdbArgs) -> Result<()> {
    validate(args)?;
    let runtime = tokio_runtime()?;
    let identify = match args.part {
        Part::Both | Part::Identify => Some(measure_identify(&runtime, args)?),
        Part::List => None,
    };
    let list = match args.part {
        Part::Both | Part::List => Some(measure_list(&runtime, args)?),
        Part::Identify => None,
    };
    let report = Report {
        machine: machine(procfs::clock_ticks_per_second()),
        runs: args.runs,
        identify,
        list,
    };
    print_report(args.json, &report, || report.table())
}

fn validate(args: &CmdbArgs) -> Result<()> {
    if args.cis > MAX_CIS || !(1..=MAX_CIS).contains(&args.list_cis) {
        bail!("--cis must be at most {MAX_CIS} and --list-cis between 1 and {MAX_CIS}");
    }
    if !(1..=MAX_AGENTS).contains(&args.agents) {
        bail!("--agents must be between 1 and {MAX_AGENTS}");
    }
    if !(UPGRADED + REMOVED + 1..=MAX_PACKAGES).contains(&args.packages) {
        bail!(
            "--packages must be between {} and {MAX_PACKAGES}",
            UPGRADED + REMOVED + 1
        );
    }
    if !(1..=MAX_REPORTS_PER_CI).contains(&args.reports_per_ci) {
        bail!("--reports-per-ci must be between 1 and {MAX_REPORTS_PER_CI}");
    }
    if !(1..=MAX_RUNS).contains(&args.runs) {
        bail!("--runs must be between 1 and {MAX_RUNS}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Part 1: identification and the inventory diff.

/// The three cases, in the order each agent sends them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    First,
    Changed,
    Unchanged,
}

impl Case {
    const ALL: [Case; 3] = [Case::First, Case::Changed, Case::Unchanged];

    fn label(self) -> &'static str {
        match self {
            Case::First => "first inventory (new CI)",
            Case::Changed => "changed: 20 up, 5 removed, 5 new",
            Case::Unchanged => "unchanged marker",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Case::First => "first_inventory",
            Case::Changed => "changed_inventory",
            Case::Unchanged => "unchanged_marker",
        }
    }
}

/// One case of one run.
#[derive(Debug, Clone)]
struct CaseRun {
    /// The writer thread's CPU for each report, µs.
    writer_us: Vec<u32>,
    /// The checkpointer thread's CPU over the whole case, ns.
    checkpointer_ns: u64,
    /// Each report's ingest, from the call to the acknowledgement (after the commit), µs.
    wall_us: Vec<u32>,
}

/// One case's figures: medians over runs of each run's figure.
#[derive(Debug, Clone, Serialize)]
struct CaseFigures {
    case: &'static str,
    reports_per_run: usize,
    /// Writer CPU per report: the run's total divided by its reports.
    writer_cpu_ms_mean: f64,
    writer_cpu_ms_p50: f64,
    writer_cpu_ms_p90: f64,
    writer_cpu_ms_max: f64,
    /// The checkpointer's CPU over the case, per report.
    checkpointer_cpu_ms: f64,
    /// Writer mean + checkpointer: what the budget is judged on.
    collector_cpu_ms: f64,
    wall_ms_p50: f64,
    wall_ms_p90: f64,
    within_budget: bool,
}

impl CaseFigures {
    fn of(case: Case, runs: &[CaseRun]) -> CaseFigures {
        let ms = |us: u32| f64::from(us) / 1000.0;
        let per_run = |f: &dyn Fn(&CaseRun) -> f64| median_f64(runs.iter().map(f).collect());
        let mean = per_run(&|r| {
            r.writer_us.iter().map(|&us| f64::from(us)).sum::<f64>()
                / r.writer_us.len().max(1) as f64
                / 1000.0
        });
        let checkpointer =
            per_run(&|r| r.checkpointer_ns as f64 / 1e6 / r.writer_us.len().max(1) as f64);
        let writer = |r: &CaseRun| Latency::of(&mut r.writer_us.clone());
        let wall = |r: &CaseRun| Latency::of(&mut r.wall_us.clone());
        CaseFigures {
            case: case.key(),
            reports_per_run: runs.first().map_or(0, |r| r.writer_us.len()),
            writer_cpu_ms_mean: mean,
            writer_cpu_ms_p50: per_run(&|r| ms(writer(r).p50)),
            writer_cpu_ms_p90: per_run(&|r| ms(writer(r).p90)),
            writer_cpu_ms_max: per_run(&|r| ms(writer(r).max)),
            checkpointer_cpu_ms: checkpointer,
            collector_cpu_ms: mean + checkpointer,
            wall_ms_p50: per_run(&|r| ms(wall(r).p50)),
            wall_ms_p90: per_run(&|r| ms(wall(r).p90)),
            within_budget: mean + checkpointer <= BUDGET_REPORT_CPU_MS,
        }
    }
}

/// Filling the store with the other CIs.
#[derive(Debug, Clone, Serialize)]
struct FillFigures {
    cis: usize,
    packages_per_ci: usize,
    secs: f64,
    /// Writer CPU per inventory while filling (batched: many per transaction).
    writer_cpu_ms_per_inventory: f64,
    /// steward.db plus WAL after filling.
    db_bytes: u64,
}

/// The batched merge of queued CIs into the software name index (see the collector's
/// `store::software_index`), which a first inventory defers to.
#[derive(Debug, Clone, Serialize)]
struct MergeFigures {
    /// CIs queued by each run's first inventories and merged together.
    cis_per_run: usize,
    /// Writer + checkpointer CPU of that merge, per CI (median over runs).
    cpu_ms_per_ci: f64,
    /// The same for one CI merged alone (a lone new host between two merges).
    lone_ci_cpu_ms: f64,
    /// Merging the fill's CIs, per CI.
    fill_cpu_ms_per_ci: f64,
}

#[derive(Debug, Clone, Serialize)]
struct IdentifyReport {
    other_cis: usize,
    packages: usize,
    agents_per_run: usize,
    fill: FillFigures,
    cases: Vec<CaseFigures>,
    name_index_merge: MergeFigures,
    /// A first inventory's whole cost: its report (the first case) plus its share of a merge.
    first_inventory_with_merge_ms: f64,
    /// The wire size of one full inventory report (postcard envelope).
    inventory_report_bytes: usize,
    /// CPU to decode that report (done by the server before the store; not in the budget's
    /// figure), median ms.
    decode_cpu_ms: f64,
    budget_ms: f64,
    budget_met: bool,
    /// Reports answered otherwise than expected (duplicates, unexpected "send your full
    /// inventory"); must be 0.
    unexpected_outcomes: u64,
    /// Open identification conflicts at the end; must be 0 (every host is distinct).
    open_conflicts: usize,
}

fn measure_identify(runtime: &Runtime, args: &CmdbArgs) -> Result<IdentifyReport> {
    let dir = WorkDir::create(1)?;
    let db = dir.path.join("cmdb.db");
    let store = Store::open(&db, BATCH_MAX, QUEUE_MAX).context("cannot open the store")?;
    let threads = StoreThreads::find()?;
    let measured = args.agents * args.runs as usize;
    // One more than measured: the host whose first inventory is merged alone.
    let total = args.cis + measured + 1;
    eprintln!("enrolling {total} agents");
    let ids = Arc::new(runtime.block_on(enroll_all(&store, total, |i| host_identity(i, "srv")))?);

    eprintln!(
        "filling the store: {} CIs with {} packages each",
        args.cis, args.packages
    );
    let fill_clock = Instant::now();
    let writer_before = threads.writer_ns()?;
    let packages = args.packages;
    let fill_store = store.clone();
    let fill_ids = ids.clone();
    let progress = Progress::new("inventories", args.cis);
    runtime.block_on(for_each_concurrent(args.cis, FILL_CONCURRENCY, move |i| {
        let (store, ids, progress) = (fill_store.clone(), fill_ids.clone(), progress.clone());
        async move {
            let record = inventory_record(&ids[i], i, 1, Some(packages), Generation::First)?;
            expect_stored(store.ingest(record).await, &ids[i])?;
            progress.tick();
            Ok(())
        }
    }))?;
    let fill = FillFigures {
        cis: args.cis,
        packages_per_ci: args.packages,
        secs: fill_clock.elapsed().as_secs_f64(),
        writer_cpu_ms_per_inventory: (threads.writer_ns()? - writer_before) as f64
            / 1e6
            / args.cis.max(1) as f64,
        db_bytes: db_bytes(&db),
    };
    eprintln!(
        "filled in {:.1} s, writer {:.2} ms CPU per inventory (batched), database {:.0} MB",
        fill.secs,
        fill.writer_cpu_ms_per_inventory,
        fill.db_bytes as f64 / 1e6
    );
    let (fill_merge_ns, fill_merged) = runtime.block_on(timed_merge(&store, &threads))?;
    let fill_merge_ms_per_ci = fill_merge_ns as f64 / 1e6 / fill_merged.max(1) as f64;
    eprintln!(
        "merged {fill_merged} CIs into the software name index: {fill_merge_ms_per_ci:.3} ms CPU per CI"
    );

    let mut merge_ms_per_ci = Vec::new();
    let mut per_case: Vec<Vec<CaseRun>> = vec![Vec::new(); Case::ALL.len()];
    let mut unexpected = 0;
    for run in 0..args.runs as usize {
        let first = args.cis + run * args.agents;
        for (slot, case) in Case::ALL.into_iter().enumerate() {
            let records = (first..first + args.agents)
                .map(|i| case_record(&ids[i], i, case, packages))
                .collect::<Result<Vec<_>>>()?;
            let (case_run, odd) = runtime.block_on(one_at_a_time(&store, &threads, records))?;
            unexpected += odd;
            let figures = CaseFigures::of(case, std::slice::from_ref(&case_run));
            eprintln!(
                "run {}: {:<34} writer {:.3} ms CPU per report (p50 {:.3}, p90 {:.3}), checkpointer {:.3}, wall p50 {:.2} ms",
                run + 1,
                case.label(),
                figures.writer_cpu_ms_mean,
                figures.writer_cpu_ms_p50,
                figures.writer_cpu_ms_p90,
                figures.checkpointer_cpu_ms,
                figures.wall_ms_p50
            );
            per_case[slot].push(case_run);
            if case == Case::First {
                let (ns, merged) = runtime.block_on(timed_merge(&store, &threads))?;
                if merged != args.agents {
                    bail!(
                        "the name index merged {merged} CIs, not the run's {}",
                        args.agents
                    );
                }
                let per_ci = ns as f64 / 1e6 / merged.max(1) as f64;
                eprintln!(
                    "run {}: name index merge of {merged} CIs: {per_ci:.3} ms CPU per CI",
                    run + 1
                );
                merge_ms_per_ci.push(per_ci);
            }
        }
    }
    let lone = total - 1;
    let (_, odd) = runtime.block_on(one_at_a_time(
        &store,
        &threads,
        vec![case_record(&ids[lone], lone, Case::First, packages)?],
    ))?;
    unexpected += odd;
    let (lone_ns, lone_merged) = runtime.block_on(timed_merge(&store, &threads))?;
    if lone_merged != 1 {
        bail!("the name index merged {lone_merged} CIs, not the lone host");
    }
    let name_index_merge = MergeFigures {
        cis_per_run: args.agents,
        cpu_ms_per_ci: median_f64(merge_ms_per_ci),
        lone_ci_cpu_ms: lone_ns as f64 / 1e6,
        fill_cpu_ms_per_ci: fill_merge_ms_per_ci,
    };
    let history_ok = runtime.block_on(check_history(&store, args.cis))?;
    if !history_ok {
        unexpected += 1;
    }
    let open_conflicts = runtime
        .block_on(store.list_conflicts(false))
        .context("cannot list conflicts")?
        .len();
    store.close();
    keep_db(args, &db, "identify.db")?;

    let (inventory_report_bytes, decode_cpu_ms) = decode_cost(args.packages, args.runs)?;
    let cases: Vec<CaseFigures> = Case::ALL
        .into_iter()
        .zip(&per_case)
        .map(|(case, runs)| CaseFigures::of(case, runs))
        .collect();
    let first_inventory_with_merge_ms = cases
        .iter()
        .find(|c| c.case == Case::First.key())
        .map_or(0.0, |c| c.collector_cpu_ms)
        + name_index_merge.cpu_ms_per_ci;
    let budget_met = cases.iter().all(|c| c.within_budget)
        && first_inventory_with_merge_ms <= BUDGET_REPORT_CPU_MS;
    Ok(IdentifyReport {
        other_cis: args.cis,
        packages: args.packages,
        agents_per_run: args.agents,
        fill,
        cases,
        name_index_merge,
        first_inventory_with_merge_ms,
        inventory_report_bytes,
        decode_cpu_ms,
        budget_ms: BUDGET_REPORT_CPU_MS,
        budget_met,
        unexpected_outcomes: unexpected,
        open_conflicts,
    })
}

/// Runs the software name index merge until nothing is queued, timing the writer and
/// checkpointer threads' CPU over it (ns). Returns that and how many CIs were merged.
async fn timed_merge(store: &Store, threads: &StoreThreads) -> Result<(u64, usize)> {
    let before = threads.writer_ns()? + threads.checkpointer_ns()?;
    let merged = store
        .index_software()
        .await
        .context("cannot merge the software name index")?;
    // The checkpointer copies the merge's pages on its next pass (every 100 ms).
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    let after = threads.writer_ns()? + threads.checkpointer_ns()?;
    Ok((after - before, merged))
}

/// The record agent `i` sends in `case`.
fn case_record(agent_id: &str, i: usize, case: Case, packages: usize) -> Result<ReportRecord> {
    match case {
        Case::First => inventory_record(agent_id, i, 1, Some(packages), Generation::First),
        Case::Changed => inventory_record(agent_id, i, 2, Some(packages), Generation::Changed),
        // The content it confirms is the changed inventory's.
        Case::Unchanged => inventory_record(agent_id, i, 3, None, Generation::Changed),
    }
}

/// Ingests each record alone (the next only after the previous one's commit), timing the writer
/// thread's CPU across each. Returns the case's figures and how many outcomes were unexpected.
async fn one_at_a_time(
    store: &Store,
    threads: &StoreThreads,
    records: Vec<ReportRecord>,
) -> Result<(CaseRun, u64)> {
    let mut run = CaseRun {
        writer_us: Vec::with_capacity(records.len()),
        checkpointer_ns: 0,
        wall_us: Vec::with_capacity(records.len()),
    };
    let mut unexpected = 0;
    let checkpointer_before = threads.checkpointer_ns()?;
    for record in records {
        let agent = record.agent_id.clone();
        let before = threads.writer_ns()?;
        let clock = Instant::now();
        let outcome = store.ingest(record).await;
        let wall = clock.elapsed();
        let after = threads.writer_ns()?;
        match outcome {
            Ok(IngestOutcome::Stored {
                inventory_wanted: false,
                ..
            }) => {}
            Ok(other) => {
                unexpected += 1;
                eprintln!("unexpected outcome for {agent}: {other:?}");
            }
            Err(error) => bail!("ingest for {agent} failed: {error}"),
        }
        run.writer_us.push(micros((after - before) as f64 / 1000.0));
        run.wall_us.push(micros(wall.as_secs_f64() * 1e6));
    }
    run.checkpointer_ns = threads.checkpointer_ns()? - checkpointer_before;
    Ok((run, unexpected))
}

fn micros(us: f64) -> u32 {
    us.round().clamp(0.0, f64::from(u32::MAX)) as u32
}

/// The first measured agent's CI must show the diff in its history.
async fn check_history(store: &Store, first_measured: usize) -> Result<bool> {
    let name = host_identity(first_measured, "srv").hostname;
    let detail = store
        .find_ci(name.clone())
        .await
        .context("cannot read a CI")?
        .map_err(|ids| anyhow!("{name} names several CIs: {ids:?}"))?
        .ok_or_else(|| anyhow!("no CI named {name}"))?;
    let expected =
        format!("software: {INSTALLED} installed, {REMOVED} removed, {UPGRADED} changed version");
    let found = detail.history.iter().any(|entry| entry.summary == expected);
    if !found {
        eprintln!(
            "the history of {name} lacks {expected:?}: {:?}",
            detail
                .history
                .iter()
                .map(|e| e.summary.as_str())
                .collect::<Vec<_>>()
        );
    }
    Ok(found)
}

/// The wire size of one full inventory report and the median CPU (this thread's schedstat) to
/// decode it, over `runs` batches of 50 decodes.
fn decode_cost(packages: usize, runs: u32) -> Result<(usize, f64)> {
    const DECODES: u32 = 50;
    let record = inventory_record(
        "a-0000000000000000",
        0,
        1,
        Some(packages),
        Generation::First,
    )?;
    let ReportContent::Inventory(content) = record.content else {
        bail!("expected an inventory");
    };
    let bytes = steward_shared::encode_v1(&v1::Envelope {
        agent_id: record.agent_id,
        seq: record.seq,
        sent_at_ms: record.collected_at,
        payload: v1::Payload::Inventory(v1::InventoryReport {
            host: record.host,
            collected_at_ms: record.collected_at,
            content_hash: content.content_hash,
            content: content.inventory.map(|inventory| *inventory),
        }),
    })
    .context("cannot encode an inventory report")?;
    let mut per_decode = Vec::new();
    for _ in 0..runs {
        let before = this_thread_ns()?;
        for _ in 0..DECODES {
            let decoded = steward_shared::decode(std::hint::black_box(&bytes))
                .context("cannot decode the inventory report")?;
            std::hint::black_box(decoded);
        }
        per_decode.push((this_thread_ns()? - before) as f64 / 1e6 / f64::from(DECODES));
    }
    Ok((bytes.len(), median_f64(per_decode)))
}

// ---------------------------------------------------------------------------------------------
// Part 2: `ci list` over many CIs.

#[derive(Debug, Clone, Serialize)]
struct ListReport {
    cis: usize,
    reports_per_ci: u32,
    enroll_secs: f64,
    reports_secs: f64,
    db_bytes: u64,
    /// `Store::list_cis` in-process: wall and this process's CPU, median ms.
    list_cis_wall_ms: f64,
    list_cis_cpu_ms: f64,
    /// The same for `Store::list_cis_filtered` without a filter: what `GET /admin/v1/cis` runs.
    list_cis_filtered_wall_ms: f64,
    list_cis_filtered_cpu_ms: f64,
    /// `steward-collector ci list --json` end to end, each run's wall ms.
    cli_wall_ms_runs: Vec<f64>,
    cli_wall_ms: f64,
    /// The CLI process's own CPU and peak RSS (GNU time); absent without it.
    cli_cpu_ms: Option<f64>,
    cli_peak_rss_kb: Option<u64>,
    /// The collector's CPU per `ci list`: clock ticks (all threads) and schedstat (live threads).
    collector_cpu_ms: f64,
    collector_cpu_ms_schedstat: f64,
    /// Bytes of JSON the CLI printed.
    cli_output_bytes: u64,
    rows_listed: usize,
    budget_ms: f64,
    budget_met: bool,
}

fn measure_list(runtime: &Runtime, args: &CmdbArgs) -> Result<ListReport> {
    let collector_bin = crate::ingest::locate_collector(args.bin_dir.as_deref())?;
    let dir = WorkDir::create(2)?;
    let data = dir.path.join("data");
    let port = peers::free_port()?;
    let listen = format!("127.0.0.1:{port}");
    peers::run_to_completion(
        &collector_bin,
        &strings(&["init", "--data-dir", &path_str(&data), "--listen", &listen]),
        &dir.path,
        "collector-init",
        COMMAND_TIMEOUT,
    )?;
    let db = data.join(steward_collector::config::DATABASE_FILE);
    let store = Store::open(&db, BATCH_MAX, QUEUE_MAX).context("cannot open the store")?;

    eprintln!("enrolling {} agents", args.list_cis);
    let clock = Instant::now();
    let ids = Arc::new(runtime.block_on(enroll_all(&store, args.list_cis, |i| {
        host_identity(i, "host")
    }))?);
    let enroll_secs = clock.elapsed().as_secs_f64();
    eprintln!(
        "enrolled in {enroll_secs:.1} s; storing {} metrics reports per agent",
        args.reports_per_ci
    );
    let metrics = sample_metrics()?;
    let clock = Instant::now();
    let reports_per_ci = args.reports_per_ci;
    let (fill_store, fill_ids) = (store.clone(), ids.clone());
    let progress = Progress::new("agents' reports", args.list_cis);
    runtime.block_on(for_each_concurrent(
        args.list_cis,
        FILL_CONCURRENCY,
        move |i| {
            let (store, ids, metrics, progress) = (
                fill_store.clone(),
                fill_ids.clone(),
                metrics.clone(),
                progress.clone(),
            );
            async move {
                for seq in 1..=u64::from(reports_per_ci) {
                    let record = metrics_record(&ids[i], i, seq, reports_per_ci, &metrics)?;
                    expect_stored(store.ingest(record).await, &ids[i])?;
                }
                progress.tick();
                Ok(())
            }
        },
    ))?;
    let reports_secs = clock.elapsed().as_secs_f64();
    eprintln!("stored in {reports_secs:.1} s");

    let (list_wall, list_cpu) = time_in_process(runtime, "Store::list_cis", args, || {
        let store = store.clone();
        async move { Ok(store.list_cis().await?.len()) }
    })?;
    // What `GET /admin/v1/cis` (the CLI's `ci list`) runs.
    let (filtered_wall, filtered_cpu) = time_in_process(
        runtime,
        "Store::list_cis_filtered (no filter)",
        args,
        || {
            let store = store.clone();
            async move {
                Ok(store
                    .list_cis_filtered(CiFilter::default())
                    .await
                    .map_err(|error| anyhow!("{error}"))?
                    .len())
            }
        },
    )?;
    store.close();
    let db_bytes = db_bytes(&db);
    keep_db(args, &db, "list.db")?;

    let log = dir.path.join("collector.log");
    let mut collector = Proc::spawn(
        "steward-collector serve",
        &collector_bin,
        &strings(&["serve", "--data-dir", &path_str(&data)]),
        &log,
    )?;
    collector.wait_for_port(port, Duration::from_secs(30))?;
    let pid = collector.pid();
    let ticks_per_second = procfs::clock_ticks_per_second();
    let time_bin = Path::new(GNU_TIME)
        .is_file()
        .then(|| PathBuf::from(GNU_TIME));
    if time_bin.is_none() {
        eprintln!("note: {GNU_TIME} is missing; the CLI's CPU is not measured");
    }
    let mut cli = Vec::new();
    let mut collector_cpu = Vec::new();
    let mut collector_ns = Vec::new();
    let mut rows_listed = 0;
    let mut output_bytes = 0;
    for run in 0..args.runs {
        let before = procfs::sample_pid(pid).context("collector")?;
        let timed = ci_list(&collector_bin, time_bin.as_deref(), &data, &dir.path, run)?;
        let after = procfs::sample_pid(pid).context("collector")?;
        let ticks_ms =
            (after.cpu_ticks - before.cpu_ticks) as f64 * 1000.0 / ticks_per_second.max(1) as f64;
        let ns_ms = after.cpu_ns.saturating_sub(before.cpu_ns) as f64 / 1e6;
        eprintln!(
            "ci list run {}: {} rows, {:.0} ms wall, CLI {} ms CPU, collector {ticks_ms:.0} ms CPU ({ns_ms:.0} by schedstat)",
            run + 1,
            timed.rows,
            timed.wall_ms,
            timed
                .cpu_ms
                .map_or_else(|| "-".to_string(), |ms| format!("{ms:.0}"))
        );
        rows_listed = timed.rows;
        output_bytes = timed.output_bytes;
        collector_cpu.push(ticks_ms);
        collector_ns.push(ns_ms);
        cli.push(timed);
        collector.ensure_running()?;
    }
    collector.stop();
    if rows_listed != args.list_cis {
        bail!(
            "ci list printed {rows_listed} CIs, expected {}",
            args.list_cis
        );
    }
    let cli_wall_ms_runs: Vec<f64> = cli.iter().map(|t| t.wall_ms).collect();
    let cli_wall_ms = median_f64(cli_wall_ms_runs.clone());
    let cpu: Vec<f64> = cli.iter().filter_map(|t| t.cpu_ms).collect();
    let rss: Vec<u64> = cli.iter().filter_map(|t| t.peak_rss_kb).collect();
    Ok(ListReport {
        cis: args.list_cis,
        reports_per_ci: args.reports_per_ci,
        enroll_secs,
        reports_secs,
        db_bytes,
        list_cis_wall_ms: list_wall,
        list_cis_cpu_ms: list_cpu,
        list_cis_filtered_wall_ms: filtered_wall,
        list_cis_filtered_cpu_ms: filtered_cpu,
        cli_wall_ms_runs,
        cli_wall_ms,
        cli_cpu_ms: (!cpu.is_empty()).then(|| median_f64(cpu)),
        cli_peak_rss_kb: (!rss.is_empty()).then(|| median_u64(rss)),
        collector_cpu_ms: median_f64(collector_cpu),
        collector_cpu_ms_schedstat: median_f64(collector_ns),
        cli_output_bytes: output_bytes,
        rows_listed,
        budget_ms: BUDGET_LIST_MS,
        budget_met: cli_wall_ms <= BUDGET_LIST_MS,
    })
}

/// Times `list` (which returns how many CIs it listed) `--runs` times in this process: median
/// wall and CPU ms (this process's live threads by schedstat; the read runs on a tokio blocking
/// thread, which stays alive between runs).
fn time_in_process<F, Fut>(
    runtime: &Runtime,
    label: &str,
    args: &CmdbArgs,
    list: F,
) -> Result<(f64, f64)>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<usize>>,
{
    let me = std::process::id();
    let mut wall = Vec::new();
    let mut cpu = Vec::new();
    for run in 0..args.runs {
        let before = procfs::sample_pid(me)?;
        let clock = Instant::now();
        let rows = runtime
            .block_on(list())
            .with_context(|| format!("{label} failed"))?;
        let wall_ms = clock.elapsed().as_secs_f64() * 1000.0;
        let after = procfs::sample_pid(me)?;
        let cpu_ms = after.cpu_ns.saturating_sub(before.cpu_ns) as f64 / 1e6;
        eprintln!(
            "{label} run {}: {rows} rows, {wall_ms:.0} ms wall, {cpu_ms:.0} ms CPU",
            run + 1
        );
        if rows != args.list_cis {
            bail!("{label} returned {rows} CIs, expected {}", args.list_cis);
        }
        wall.push(wall_ms);
        cpu.push(cpu_ms);
    }
    Ok((median_f64(wall), median_f64(cpu)))
}

/// One `ci list --json` run.
#[derive(Debug, Clone)]
struct TimedList {
    wall_ms: f64,
    cpu_ms: Option<f64>,
    peak_rss_kb: Option<u64>,
    rows: usize,
    output_bytes: u64,
}

/// Runs `steward-collector ci list --json --data-dir DATA` (under GNU time when there is one,
/// for the CLI's CPU and peak RSS). The wall clock runs from the spawn to the exit, waited for
/// on a helper thread so the reading is not rounded to a polling step.
fn ci_list(
    collector: &Path,
    time_bin: Option<&Path>,
    data: &Path,
    dir: &Path,
    run: u32,
) -> Result<TimedList> {
    let label = format!("ci-list-{run}");
    let list_args = strings(&["ci", "list", "--json", "--data-dir", &path_str(data)]);
    let measure = dir.join(format!("{label}.time"));
    let (program, args) = match time_bin {
        Some(time) => {
            let mut full = strings(&["-f", "%U %S %M", "-o", &path_str(&measure)]);
            full.push(path_str(collector));
            full.extend(list_args);
            (time, full)
        }
        None => (collector, list_args),
    };
    let out_path = dir.join(format!("{label}.out"));
    let err_path = dir.join(format!("{label}.err"));
    let (status, wall_ms) = run_timed(program, &args, &out_path, &err_path, COMMAND_TIMEOUT)?;
    if !status.success() {
        let stderr = fs::read_to_string(&err_path).unwrap_or_default();
        bail!("ci list failed ({status}): {}", stderr.trim());
    }
    let measured = match time_bin {
        Some(_) => {
            let text = fs::read_to_string(&measure)
                .with_context(|| format!("cannot read {}", measure.display()))?;
            Some(
                parse_gnu_time(&text)
                    .ok_or_else(|| anyhow!("unexpected GNU time output {text:?}"))?,
            )
        }
        None => None,
    };
    let stdout = fs::read_to_string(&out_path)
        .with_context(|| format!("cannot read {}", out_path.display()))?;
    let rows = serde_json::from_str::<Vec<serde::de::IgnoredAny>>(&stdout)
        .context("ci list --json did not print a JSON array")?
        .len();
    Ok(TimedList {
        wall_ms,
        cpu_ms: measured.map(|m| m.cpu_ms),
        peak_rss_kb: measured.map(|m| m.peak_rss_kb),
        rows,
        output_bytes: stdout.len() as u64,
    })
}

/// Runs `program args` with its output in files; returns its exit status and wall ms. Killed
/// (by its PID) after `timeout`.
fn run_timed(
    program: &Path,
    args: &[String],
    out_path: &Path,
    err_path: &Path,
    timeout: Duration,
) -> Result<(std::process::ExitStatus, f64)> {
    let create = |path: &Path| {
        fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))
    };
    let (out, err) = (create(out_path)?, create(err_path)?);
    let clock = Instant::now();
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("cannot run {}", program.display()))?;
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait());
    });
    match finished.recv_timeout(timeout) {
        Ok(status) => {
            let wall_ms = clock.elapsed().as_secs_f64() * 1000.0;
            Ok((status.context("cannot wait for a child")?, wall_ms))
        }
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            bail!("{} took longer than {timeout:?}", program.display())
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct GnuTime {
    cpu_ms: f64,
    peak_rss_kb: u64,
}

/// The last line of GNU time's `%U %S %M`: user and system seconds, peak RSS kB.
fn parse_gnu_time(text: &str) -> Option<GnuTime> {
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let mut fields = line.split_whitespace();
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    let peak_rss_kb: u64 = fields.next()?.parse().ok()?;
    Some(GnuTime {
        cpu_ms: (user + system) * 1000.0,
        peak_rss_kb,
    })
}

/// This machine's metrics, sampled twice a second apart (so rates are present), as every
/// simulated host's metrics: real sizes and shapes.
fn sample_metrics() -> Result<Arc<v1::Metrics>> {
    let mut sampler =
        steward_agent::metrics::Sampler::new(steward_agent::config::MetricsConfig::default(), 60)?;
    sampler.sample();
    std::thread::sleep(Duration::from_secs(1));
    Ok(Arc::new(sampler.sample()))
}

/// Metrics report `seq` of `count` for agent `i`, collected a minute apart, the last one now.
fn metrics_record(
    agent_id: &str,
    i: usize,
    seq: u64,
    count: u32,
    metrics: &v1::Metrics,
) -> Result<ReportRecord> {
    let host = host_identity(i, "host");
    let minutes_ago = i64::from(count) - i64::try_from(seq).unwrap_or(i64::MAX);
    let collected_at = steward_collector::now_ms() - minutes_ago * 60_000;
    let report = v1::MetricsReport {
        host: host.clone(),
        metrics: v1::Metrics {
            collected_at_ms: collected_at,
            ..metrics.clone()
        },
    };
    // What the server stores: the report alone, re-encoded from the decoded envelope.
    let body = postcard::to_stdvec(&report).context("cannot encode a metrics report")?;
    Ok(ReportRecord {
        agent_id: agent_id.to_string(),
        seq,
        version: 1,
        collected_at,
        host,
        content: ReportContent::Metrics(body),
        spool: None,
        cert_serial: None,
    })
}

// ---------------------------------------------------------------------------------------------
// Store helpers.

/// The store's writer and checkpointer threads in this process, by name.
#[derive(Debug)]
struct StoreThreads {
    writer: PathBuf,
    checkpointer: PathBuf,
}

impl StoreThreads {
    /// Exactly one store must be open. A new thread names itself once it runs, so this looks
    /// again for up to a second.
    fn find() -> Result<StoreThreads> {
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            match StoreThreads::find_once() {
                Ok(threads) => return Ok(threads),
                Err(error) if Instant::now() >= deadline => return Err(error),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    fn find_once() -> Result<StoreThreads> {
        let mut writer = Vec::new();
        let mut checkpointer = Vec::new();
        let tasks = Path::new("/proc/self/task");
        for entry in fs::read_dir(tasks).context("cannot list /proc/self/task")? {
            let path = entry?.path();
            let Ok(comm) = fs::read_to_string(path.join("comm")) else {
                continue;
            };
            match comm.trim() {
                WRITER_THREAD => writer.push(path.join("schedstat")),
                CHECKPOINT_THREAD => checkpointer.push(path.join("schedstat")),
                _ => {}
            }
        }
        match (writer.as_slice(), checkpointer.as_slice()) {
            ([writer], [checkpointer]) => Ok(StoreThreads {
                writer: writer.clone(),
                checkpointer: checkpointer.clone(),
            }),
            _ => bail!(
                "expected one {WRITER_THREAD} and one {CHECKPOINT_THREAD} thread, found {} and {}",
                writer.len(),
                checkpointer.len()
            ),
        }
    }

    fn writer_ns(&self) -> Result<u64> {
        read_schedstat(&self.writer)
    }

    fn checkpointer_ns(&self) -> Result<u64> {
        read_schedstat(&self.checkpointer)
    }
}

fn read_schedstat(path: &Path) -> Result<u64> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    procfs::parse_schedstat(&text).with_context(|| path.display().to_string())
}

fn this_thread_ns() -> Result<u64> {
    read_schedstat(Path::new("/proc/thread-self/schedstat"))
}

/// Enrolls `count` agents through the store (one token with `count` uses), many at a time; the
/// agent ids are returned in host order.
async fn enroll_all(
    store: &Store,
    count: usize,
    host: impl Fn(usize) -> v1::HostIdentity + Send + Sync + 'static,
) -> Result<Vec<String>> {
    let token = steward_collector::sha256_hex(format!("bench-{}", std::process::id()).as_bytes());
    store
        .create_enroll_token(
            token.clone(),
            steward_collector::now_ms() + 24 * 3_600_000,
            u32::try_from(count).context("too many agents for one token")?,
        )
        .await
        .context("cannot create an enrollment token")?;
    let ids: Vec<String> = (0..count).map(agent_id).collect();
    let store = store.clone();
    let shared = Arc::new(ids.clone());
    let host = Arc::new(host);
    let progress = Progress::new("enrollments", count);
    for_each_concurrent(count, FILL_CONCURRENCY * 4, move |i| {
        let (store, ids, host, token, progress) = (
            store.clone(),
            shared.clone(),
            host.clone(),
            token.clone(),
            progress.clone(),
        );
        async move {
            let identity = host(i);
            let agent = NewAgent {
                id: ids[i].clone(),
                hostname: identity.hostname,
                machine_id: identity.machine_id,
            };
            let serial = format!("{:016x}{:016x}", splitmix64(i as u64), i);
            store
                .enroll_agent(token, agent, move |_| Ok(("CERT".into(), serial, 0)))
                .await
                .with_context(|| format!("cannot enroll agent {i}"))?;
            progress.tick();
            Ok(())
        }
    })
    .await?;
    Ok(ids)
}

fn expect_stored(
    outcome: Result<IngestOutcome, steward_collector::store::IngestRejection>,
    agent: &str,
) -> Result<()> {
    match outcome {
        Ok(IngestOutcome::Stored { .. }) => Ok(()),
        Ok(IngestOutcome::Duplicate) => bail!("a report of {agent} was a duplicate"),
        Err(error) => Err(anyhow!("ingest for {agent} failed: {error}")),
    }
}

/// Runs `f(0..count)`, `width` at a time.
async fn for_each_concurrent<F, Fut>(count: usize, width: usize, f: F) -> Result<()>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let f = Arc::new(f);
    let mut set = JoinSet::new();
    for _ in 0..width.clamp(1, count.max(1)) {
        let (next, f) = (next.clone(), f.clone());
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<(), anyhow::Error>(());
                }
                f(i).await?;
            }
        });
    }
    while let Some(joined) = set.join_next().await {
        joined.context("a worker task failed")??;
    }
    Ok(())
}

/// A progress line on stderr at every tenth of `total`.
#[derive(Debug, Clone)]
struct Progress {
    what: &'static str,
    total: usize,
    done: Arc<AtomicUsize>,
    started: Instant,
}

impl Progress {
    fn new(what: &'static str, total: usize) -> Progress {
        Progress {
            what,
            total,
            done: Arc::new(AtomicUsize::new(0)),
            started: Instant::now(),
        }
    }

    fn tick(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let step = (self.total / 10).max(1);
        if done.is_multiple_of(step) || done == self.total {
            eprintln!(
                "  {done}/{} {} ({:.1} s)",
                self.total,
                self.what,
                self.started.elapsed().as_secs_f64()
            );
        }
    }
}

/// Copies a closed store's database (checkpointed into one file by its last close) to
/// `--keep-db DIR/NAME`.
fn keep_db(args: &CmdbArgs, db: &Path, name: &str) -> Result<()> {
    let Some(dir) = &args.keep_db else {
        return Ok(());
    };
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for suffix in ["", "-wal"] {
        let mut from = db.as_os_str().to_owned();
        from.push(suffix);
        let from = PathBuf::from(from);
        if from.is_file() {
            let to = dir.join(format!("{name}{suffix}"));
            fs::copy(&from, &to)
                .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
        }
    }
    eprintln!("kept the database as {}", dir.join(name).display());
    Ok(())
}

/// The database file plus its WAL, in bytes.
fn db_bytes(db: &Path) -> u64 {
    let size = |path: PathBuf| fs::metadata(path).map_or(0, |m| m.len());
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    size(db.to_path_buf()) + size(PathBuf::from(wal))
}

// ---------------------------------------------------------------------------------------------
// Realistic hosts and inventories (deterministic).

/// Which inventory of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Generation {
    First,
    /// [`UPGRADED`] upgraded, [`REMOVED`] removed, [`INSTALLED`] installed.
    Changed,
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn splitmix64(x: u64) -> u64 {
    mix64(x.wrapping_add(0x9E37_79B9_7F4A_7C15))
}

/// Like the collector's: `a-` and 16 hex digits.
fn agent_id(i: usize) -> String {
    format!("a-{:016x}", splitmix64(i as u64 ^ 0x6167_656E_7421))
}

const ROLES: &[&str] = &[
    "web", "db", "app", "cache", "mq", "build", "mail", "proxy", "k8s", "backup",
];

fn host_identity(i: usize, kind: &str) -> v1::HostIdentity {
    let role = ROLES[i % ROLES.len()];
    let hostname = format!("{role}-{kind}-{i:06}");
    let high = splitmix64(i as u64);
    let low = splitmix64(high ^ 0x5354_4557_4152_4421);
    v1::HostIdentity {
        fqdn: format!("{hostname}.dc1.example.org"),
        hostname,
        os_name: "Debian GNU/Linux".into(),
        os_version: "12".into(),
        kernel: "6.1.0-28-amd64".into(),
        arch: "x86_64".into(),
        machine_id: format!("{high:016x}{low:016x}"),
        agent_version: steward_agent::AGENT_VERSION.into(),
    }
}

/// A Dell service tag: 7 characters of digits and consonant-free capitals.
fn service_tag(i: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789BCDFGHJKLMNPQRSTVWXYZ";
    let mut x = splitmix64(i as u64 ^ 0x7461_6773);
    (0..7)
        .map(|_| {
            let c = ALPHABET[(x % ALPHABET.len() as u64) as usize];
            x /= ALPHABET.len() as u64;
            char::from(c)
        })
        .collect()
}

/// A hex SHA-256, as agents send.
pub(crate) fn content_hash(i: usize, generation: Generation) -> String {
    steward_collector::sha256_hex(format!("inventory {i} {generation:?}").as_bytes())
}

/// An inventory report of host `i` as the server hands it to the store: the full inventory with
/// `packages`, or without them an "unchanged" marker for `generation`'s content.
fn inventory_record(
    agent_id: &str,
    i: usize,
    seq: u64,
    packages: Option<usize>,
    generation: Generation,
) -> Result<ReportRecord> {
    let host = host_identity(i, "srv");
    let collected_at = steward_collector::now_ms() - 3_600_000 + i64::try_from(seq)? * 60_000;
    Ok(ReportRecord {
        agent_id: agent_id.to_string(),
        seq,
        version: 1,
        collected_at,
        content: ReportContent::Inventory(InventoryRecord {
            content_hash: content_hash(i, generation),
            inventory: packages.map(|n| Box::new(inventory(i, &host, n, generation))),
        }),
        host,
        spool: None,
        cert_serial: None,
    })
}

const GIB: u64 = 1 << 30;

/// A Dell rack server running Debian 12: two physical NICs (consecutive Broadcom MACs), a
/// docker bridge, two SSDs, eight DIMMs, and `packages` Debian packages.
pub(crate) fn inventory(
    i: usize,
    host: &v1::HostIdentity,
    packages: usize,
    generation: Generation,
) -> v1::Inventory {
    let tag = service_tag(i);
    let h = splitmix64(i as u64 ^ 0x7575_6964);
    let uuid = format!(
        "4c4c4544-{:04x}-{:04x}-{:04x}-{:012x}",
        (h >> 48) & 0xffff,
        (h >> 32) & 0xffff,
        0x8000 | ((h >> 16) & 0x3fff),
        splitmix64(h) & 0xffff_ffff_ffff
    );
    let mac = |n: usize| {
        let x = i * 2 + n;
        format!(
            "b0:7b:25:{:02x}:{:02x}:{:02x}",
            (x >> 16) & 0xff,
            (x >> 8) & 0xff,
            x & 0xff
        )
    };
    let nic = |name: &str, mac: String| v1::NicInfo {
        name: name.into(),
        mac,
        permanent_mac: String::new(),
        speed_mbps: Some(10_000),
        driver: "tg3".into(),
        virtual_nic: false,
    };
    let disk = |n: usize| v1::DiskInfo {
        name: format!("sd{}", char::from(b'a' + n as u8)),
        model: "MZ7KH960HAJR0D3".into(),
        serial: format!("S47NNA0R{:06}", h.wrapping_add(n as u64) % 1_000_000),
        size_bytes: 960 * 1_000_000_000,
        rotational: Some(false),
        transport: "sata".into(),
        removable: false,
    };
    let dimm = |n: usize| v1::Dimm {
        locator: format!("{}{}", if n < 4 { 'A' } else { 'B' }, n % 4 + 1),
        size_bytes: 32 * GIB,
        kind: "DDR4".into(),
        speed_mts: Some(3200),
        manufacturer: "Hynix Semiconductor".into(),
        serial: format!("{:08X}", splitmix64(h ^ n as u64) as u32),
        part_number: "HMA84GR7CJR4N-XN".into(),
    };
    let software = software(i, packages, generation);
    let sources = [
        ("dmi", 1),
        ("cpu", 1),
        ("memory", 8),
        ("disks", 2),
        ("nics", 3),
        ("os", 1),
    ]
    .into_iter()
    .map(|(source, items)| (source.to_string(), items))
    .chain([("dpkg".to_string(), software.len() as u32)])
    .map(|(source, items)| v1::SourceStatus {
        source,
        items,
        error: None,
        warnings: Vec::new(),
    })
    .collect();
    v1::Inventory {
        hardware: v1::Hardware {
            system: v1::SystemInfo {
                vendor: "Dell Inc.".into(),
                product: "PowerEdge R650".into(),
                version: String::new(),
                serial: tag.clone(),
                uuid,
                sku: "SKU=0A8B;ModelName=PowerEdge R650".into(),
                family: "PowerEdge".into(),
                bios_vendor: "Dell Inc.".into(),
                bios_version: "1.10.2".into(),
                bios_date: "09/12/2023".into(),
                board_vendor: "Dell Inc.".into(),
                board_product: "0Y2K8N".into(),
                board_serial: format!(".{tag}.CNFCP0036N00{:02}.", i % 100),
                chassis_type: 23,
                chassis_asset_tag: String::new(),
                chassis_serial: tag,
            },
            cpu: v1::CpuInfo {
                vendor: "GenuineIntel".into(),
                model: "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz".into(),
                sockets: 2,
                cores: 64,
                threads: 128,
                max_mhz: Some(3200),
            },
            memory: v1::MemoryInfo {
                total_bytes: 256 * GIB,
                dimms: (0..8).map(dimm).collect(),
            },
            disks: (0..2).map(disk).collect(),
            nics: vec![
                nic("eno1", mac(0)),
                nic("eno2", mac(1)),
                v1::NicInfo {
                    name: "docker0".into(),
                    mac: format!("02:42:ac:{:02x}:{:02x}:02", (i >> 8) & 0xff, i & 0xff),
                    driver: "bridge".into(),
                    virtual_nic: true,
                    ..v1::NicInfo::default()
                },
            ],
            virtualization: v1::Virtualization::default(),
            board: None,
            os: v1::OsInfo {
                id: "debian".into(),
                id_like: String::new(),
                name: host.os_name.clone(),
                version: host.os_version.clone(),
                pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
                kernel: host.kernel.clone(),
                arch: host.arch.clone(),
                machine_id: host.machine_id.clone(),
            },
        },
        software,
        sources,
        // No asset file, no guests (not a hypervisor).
        ..v1::Inventory::default()
    }
}

/// Host `i`'s packages, sorted by name as dpkg lists them: 95 % a base every host shares, the
/// rest picked per host from a pool four times their number. The changed generation upgrades
/// [`UPGRADED`] packages, removes [`REMOVED`] and installs [`INSTALLED`] from outside the pool.
fn software(i: usize, packages: usize, generation: Generation) -> Vec<v1::SoftwarePackage> {
    let base = packages * 19 / 20;
    let extra = packages - base;
    let pool = extra * 4;
    let start = (splitmix64(i as u64 ^ 0x706B_6773) % pool.max(1) as u64) as usize;
    let mut chosen: Vec<usize> = (0..base)
        .chain((0..extra).map(|j| base + (start + j) % pool))
        .collect();
    let mut upgraded = Vec::new();
    if generation == Generation::Changed {
        // Spread over the list: every (packages / 32)-th package changes.
        let stride = (packages / (UPGRADED + REMOVED)).max(1);
        let touched: Vec<usize> = (0..UPGRADED + REMOVED).map(|k| k * stride).collect();
        upgraded = touched[..UPGRADED].iter().map(|&k| chosen[k]).collect();
        let removed: Vec<usize> = touched[UPGRADED..].iter().map(|&k| chosen[k]).collect();
        chosen.retain(|k| !removed.contains(k));
        chosen.extend((0..INSTALLED).map(|j| base + pool + (start + j) % (pool + INSTALLED)));
    }
    let mut list: Vec<v1::SoftwarePackage> = chosen
        .into_iter()
        .map(|k| {
            let mut package = debian_package(k);
            if upgraded.contains(&k) {
                package.version.push_str("+deb12u1");
            }
            package
        })
        .collect();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    list
}

const PREFIXES: &[&str] = &[
    "lib", "", "python3-", "fonts-", "gir1.2-", "node-", "golang-", "perl-", "x11-", "r-cran-",
];
const STEMS: &[&str] = &[
    "ssl", "curl", "xml2", "gtk", "glib", "pango", "cairo", "harfbuzz", "freetype", "png", "jpeg",
    "tiff", "webp", "zstd", "lzma", "bz2", "sqlite", "pcre", "ffi", "gnutls", "nettle", "gmp",
    "idn", "krb5", "ldap", "sasl", "systemd", "udev", "dbus", "apt", "debconf", "readline",
    "ncurses", "acl", "attr", "cap", "selinux", "audit", "pam", "crypt", "uuid", "blkid", "mount",
    "fdisk", "smartcol", "nghttp", "rtmp", "ssh", "brotli", "expat", "yaml", "json", "event", "uv",
    "icu", "gcrypt", "gpgerr", "assuan", "ksba", "npth",
];
const SUFFIXES: &[&str] = &[
    "", "-dev", "-common", "3", "-bin", "-data", "-doc", "6", "-utils", "2", "-tools", "0",
];
const TEAMS: &[(&str, &str)] = &[
    (
        "Debian GNOME Maintainers",
        "pkg-gnome-maintainers@lists.alioth.debian.org",
    ),
    ("Debian Python Team", "team+python@tracker.debian.org"),
    ("Debian Fonts Task Force", "debian-fonts@lists.debian.org"),
    (
        "Debian Javascript Maintainers",
        "pkg-javascript-devel@lists.alioth.debian.org",
    ),
    ("Debian Go Packaging Team", "team+pkg-go@tracker.debian.org"),
    (
        "Debian Perl Group",
        "pkg-perl-maintainers@lists.alioth.debian.org",
    ),
    ("Debian X Strike Force", "debian-x@lists.debian.org"),
    (
        "Debian R Packages Maintainers",
        "r-pkg-team@alioth-lists.debian.net",
    ),
    (
        "Debian systemd Maintainers",
        "pkg-systemd-maintainers@lists.alioth.debian.org",
    ),
    ("Matthias Klose", "doko@debian.org"),
];

/// Package `k` of a Debian-like universe: about 13-character names, 11-character versions,
/// 50-character maintainers, three quarters `amd64` and the rest `all`, like Debian 12's.
fn debian_package(k: usize) -> v1::SoftwarePackage {
    let prefix = PREFIXES[k % PREFIXES.len()];
    let stem = STEMS[(k / PREFIXES.len()) % STEMS.len()];
    let suffix = SUFFIXES[(k / (PREFIXES.len() * STEMS.len())) % SUFFIXES.len()];
    let round = k / (PREFIXES.len() * STEMS.len() * SUFFIXES.len());
    let name = if round == 0 {
        format!("{prefix}{stem}{suffix}")
    } else {
        format!("{prefix}{stem}{suffix}-{round}")
    };
    let h = splitmix64(k as u64 ^ 0x6465_6269_616E);
    let mut version = format!(
        "{}.{}.{}-{}",
        h % 12,
        (h >> 8) % 30,
        (h >> 16) % 20,
        1 + (h >> 24) % 4
    );
    match (h >> 32) % 10 {
        0 | 1 => version.push_str(&format!("+deb12u{}", 1 + (h >> 40) % 9)),
        2 => version.push_str(&format!("+b{}", 1 + (h >> 40) % 3)),
        _ => {}
    }
    if (h >> 48).is_multiple_of(20) {
        version.insert_str(0, "1:");
    }
    let (team, email) = TEAMS[((h >> 52) % TEAMS.len() as u64) as usize];
    v1::SoftwarePackage {
        name,
        version,
        arch: if (h >> 56).is_multiple_of(4) {
            "all"
        } else {
            "amd64"
        }
        .into(),
        publisher: format!("{team} <{email}>"),
        installed_at_ms: Some(1_700_000_000_000 + ((h >> 12) % 30_000_000_000) as i64),
        size_bytes: Some(1024 * (16 + (h >> 20) % 50_000)),
        source: "dpkg".into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Output.

/// The JSON document (and the source of the tables).
#[derive(Debug, Serialize)]
struct Report {
    machine: Machine,
    runs: u32,
    identify: Option<IdentifyReport>,
    list: Option<ListReport>,
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

impl Report {
    fn table(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        out.push_str(&format!(
            "machine: {} cores, {:.1} GiB, {}; {} run(s), medians over runs\n",
            m.cores,
            m.mem_gb,
            m.cpu_model.as_deref().unwrap_or("unknown CPU"),
            self.runs
        ));
        if let Some(r) = &self.identify {
            out.push_str(&format!(
                "\nidentification and inventory: {} packages per host; {} other CIs in the store (filled in {:.0} s, {:.2} ms writer CPU per inventory batched, {:.0} MB); {} new agents per run, each report alone in its transaction\n",
                r.packages,
                r.other_cis,
                r.fill.secs,
                r.fill.writer_cpu_ms_per_inventory,
                r.fill.db_bytes as f64 / 1e6,
                r.agents_per_run
            ));
            out.push_str(&format!(
                "{:<34} {:>9} {:>8} {:>8} {:>8} {:>13} {:>14} {:>9} {:>9} {:>7}\n",
                "case",
                "writer ms",
                "p50",
                "p90",
                "max",
                "checkpointer",
                "collector CPU",
                "wall p50",
                "wall p90",
                "<= 5 ms"
            ));
            out.push_str(&format!(
                "{:<34} {:>9} {:>8} {:>8} {:>8} {:>13} {:>14} {:>9} {:>9} {:>7}\n",
                "", "mean CPU", "", "", "", "ms/report", "ms/report", "ms", "ms", ""
            ));
            for (case, f) in Case::ALL.into_iter().zip(&r.cases) {
                out.push_str(&format!(
                    "{:<34} {:>9.3} {:>8.3} {:>8.3} {:>8.3} {:>13.3} {:>14.3} {:>9.2} {:>9.2} {:>7}\n",
                    case.label(),
                    f.writer_cpu_ms_mean,
                    f.writer_cpu_ms_p50,
                    f.writer_cpu_ms_p90,
                    f.writer_cpu_ms_max,
                    f.checkpointer_cpu_ms,
                    f.collector_cpu_ms,
                    f.wall_ms_p50,
                    f.wall_ms_p90,
                    if f.within_budget { "yes" } else { "NO" }
                ));
            }
            let m = &r.name_index_merge;
            out.push_str(&format!(
                "software name index merge (deferred from first inventories): {:.3} ms CPU per CI with {} queued, {:.3} ms for one CI alone, {:.3} ms per CI after the fill\n",
                m.cpu_ms_per_ci, m.cis_per_run, m.lone_ci_cpu_ms, m.fill_cpu_ms_per_ci
            ));
            out.push_str(&format!(
                "first inventory with its share of the merge: {:.3} ms collector CPU ({})\n",
                r.first_inventory_with_merge_ms,
                if r.first_inventory_with_merge_ms <= r.budget_ms {
                    "within budget"
                } else {
                    "OVER budget"
                }
            ));
            out.push_str(&format!(
                "decoding one full inventory report ({} bytes, in the server before the store): {:.3} ms CPU, not included above\n",
                r.inventory_report_bytes, r.decode_cpu_ms
            ));
            out.push_str(&format!(
                "unexpected outcomes: {}; open conflicts: {}\n",
                r.unexpected_outcomes, r.open_conflicts
            ));
            out.push_str(&format!(
                "budget: <= {} ms collector CPU per report: {}\n",
                r.budget_ms,
                verdict(r.budget_met)
            ));
        }
        if let Some(l) = &self.list {
            out.push_str(&format!(
                "\nci list over {} CIs ({} metrics reports each; enrolled in {:.0} s, reports stored in {:.0} s; database {:.0} MB)\n",
                l.cis,
                l.reports_per_ci,
                l.enroll_secs,
                l.reports_secs,
                l.db_bytes as f64 / 1e6
            ));
            let runs = l
                .cli_wall_ms_runs
                .iter()
                .map(|ms| format!("{ms:.0}"))
                .collect::<Vec<_>>()
                .join(", ");
            out.push_str(&format!("{:<44} {:>10} {:>10}\n", "", "wall ms", "CPU ms"));
            out.push_str(&format!(
                "{:<44} {:>10.0} {:>10.0}\n",
                "Store::list_cis (in-process)", l.list_cis_wall_ms, l.list_cis_cpu_ms
            ));
            out.push_str(&format!(
                "{:<44} {:>10.0} {:>10.0}\n",
                "Store::list_cis_filtered, no filter",
                l.list_cis_filtered_wall_ms,
                l.list_cis_filtered_cpu_ms
            ));
            out.push_str(&format!(
                "{:<44} {:>10.0} {:>10}\n",
                "steward-collector ci list --json (the CLI)",
                l.cli_wall_ms,
                l.cli_cpu_ms
                    .map_or_else(|| "-".to_string(), |ms| format!("{ms:.0}"))
            ));
            out.push_str(&format!(
                "{:<44} {:>10} {:>10.0}\n",
                "  of which the collector serving it", "", l.collector_cpu_ms
            ));
            out.push_str(&format!(
                "CLI runs: {runs} ms; {} rows, {:.1} MB of JSON; CLI peak RSS {}; collector CPU by schedstat {:.0} ms\n",
                l.rows_listed,
                l.cli_output_bytes as f64 / 1e6,
                l.cli_peak_rss_kb
                    .map_or_else(|| "-".to_string(), |kb| format!("{:.1} MB", kb as f64 / 1024.0)),
                l.collector_cpu_ms_schedstat
            ));
            out.push_str(&format!(
                "budget: ci list <= {} ms: {}\n",
                l.budget_ms,
                verdict(l.budget_met)
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn package_names_are_unique_and_debian_sized() {
        let packages: Vec<_> = (0..4000).map(debian_package).collect();
        let names: BTreeSet<&str> = packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names.len(), packages.len());
        let mean = |f: &dyn Fn(&v1::SoftwarePackage) -> usize| {
            packages[..1000].iter().map(f).sum::<usize>() as f64 / 1000.0
        };
        let name = mean(&|p| p.name.len());
        let version = mean(&|p| p.version.len());
        assert!((8.0..18.0).contains(&name), "{name}");
        assert!((7.0..15.0).contains(&version), "{version}");
        let all = packages[..1000].iter().filter(|p| p.arch == "all").count();
        assert!((150..350).contains(&all), "{all}");
    }

    #[test]
    fn the_changed_inventory_differs_by_exactly_the_stated_packages() {
        let key = |p: &v1::SoftwarePackage| (p.name.clone(), p.version.clone());
        for host in [0, 1, 77, 9_999] {
            let first = software(host, 800, Generation::First);
            let changed = software(host, 800, Generation::Changed);
            assert_eq!(first.len(), 800);
            assert_eq!(changed.len(), 800 - REMOVED + INSTALLED);
            let names = |list: &[v1::SoftwarePackage]| {
                list.iter().map(|p| p.name.clone()).collect::<BTreeSet<_>>()
            };
            let (before, after) = (names(&first), names(&changed));
            assert_eq!(before.difference(&after).count(), REMOVED);
            assert_eq!(after.difference(&before).count(), INSTALLED);
            let versions: BTreeSet<_> = first.iter().map(key).collect();
            let upgraded = changed
                .iter()
                .filter(|p| before.contains(&p.name) && !versions.contains(&key(p)))
                .count();
            assert_eq!(upgraded, UPGRADED);
            assert!(changed.windows(2).all(|w| w[0].name < w[1].name));
        }
    }

    #[test]
    fn hosts_have_distinct_usable_identities() {
        let hosts: Vec<_> = (0..2000)
            .map(|i| inventory(i, &host_identity(i, "srv"), 30, Generation::First))
            .collect();
        let serials: BTreeSet<_> = hosts.iter().map(|h| &h.hardware.system.serial).collect();
        let uuids: BTreeSet<_> = hosts.iter().map(|h| &h.hardware.system.uuid).collect();
        let macs: BTreeSet<_> = hosts
            .iter()
            .flat_map(|h| h.hardware.nics.iter().filter(|n| !n.virtual_nic))
            .map(|n| &n.mac)
            .collect();
        assert_eq!(serials.len(), 2000);
        assert_eq!(uuids.len(), 2000);
        assert_eq!(macs.len(), 4000);
        let names: BTreeSet<_> = (0..2000)
            .map(|i| host_identity(i, "srv").hostname)
            .collect();
        assert_eq!(names.len(), 2000);
        let ids: BTreeSet<_> = (0..2000).map(agent_id).collect();
        assert_eq!(ids.len(), 2000);
        // Universally administered unicast: the collector's identification uses them.
        assert!(macs.iter().all(|m| m.starts_with("b0:7b:25:")));
        assert_eq!(service_tag(5).len(), 7);
    }

    #[test]
    fn unchanged_marker_carries_the_changed_hash_and_no_content() {
        let record = case_record("a-1", 3, Case::Unchanged, 800).unwrap();
        match record.content {
            ReportContent::Inventory(InventoryRecord {
                content_hash,
                inventory: None,
            }) => assert_eq!(content_hash, content_hash_of(3)),
            other => panic!("unexpected content {other:?}"),
        }
        assert_eq!(record.seq, 3);
    }

    fn content_hash_of(i: usize) -> String {
        content_hash(i, Generation::Changed)
    }

    #[test]
    fn gnu_time_line_is_parsed() {
        assert_eq!(
            parse_gnu_time("Command exited with non-zero status 1\n0.51 0.09 61234\n"),
            Some(GnuTime {
                cpu_ms: 600.0,
                peak_rss_kb: 61234
            })
        );
        assert_eq!(parse_gnu_time("garbage"), None);
    }

    #[test]
    fn case_figures_are_medians_of_run_means() {
        let run = |writer: Vec<u32>, checkpointer_ns| CaseRun {
            wall_us: writer.clone(),
            writer_us: writer,
            checkpointer_ns,
        };
        let runs = [
            run(vec![1000, 2000, 3000], 3_000_000),
            run(vec![4000, 5000, 6000], 0),
            run(vec![2000, 2000, 2000], 1_500_000),
        ];
        let f = CaseFigures::of(Case::First, &runs);
        assert_eq!(f.writer_cpu_ms_mean, 2.0);
        assert_eq!(f.checkpointer_cpu_ms, 0.5);
        assert_eq!(f.collector_cpu_ms, 2.5);
        assert_eq!(f.writer_cpu_ms_p50, 2.0);
        assert_eq!(f.writer_cpu_ms_max, 3.0);
        assert!(f.within_budget);
        assert_eq!(f.reports_per_run, 3);
    }

    #[test]
    fn validation_bounds() {
        let args = |cis, agents, packages| CmdbArgs {
            cis,
            agents,
            packages,
            list_cis: 10,
            reports_per_ci: 1,
            runs: 1,
            part: Part::Both,
            json: false,
            keep_db: None,
            bin_dir: None,
        };
        assert!(validate(&args(0, 1, 800)).is_ok());
        assert!(validate(&args(10, 0, 800)).is_err());
        assert!(validate(&args(10, 1, 10)).is_err());
        assert!(validate(&args(MAX_CIS + 1, 1, 800)).is_err());
    }

    #[test]
    fn a_small_store_goes_through_all_three_cases() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(small_store());
    }

    async fn small_store() {
        let dir = WorkDir::create(900).unwrap();
        let store = Store::open(&dir.path.join("t.db"), BATCH_MAX, QUEUE_MAX).unwrap();
        let threads = StoreThreads::find().unwrap();
        let ids = enroll_all(&store, 3, |i| host_identity(i, "srv"))
            .await
            .unwrap();
        for case in Case::ALL {
            let records = (1..3)
                .map(|i| case_record(&ids[i], i, case, 60).unwrap())
                .collect();
            let (run, unexpected) = one_at_a_time(&store, &threads, records).await.unwrap();
            assert_eq!(unexpected, 0, "{case:?}");
            assert_eq!(run.writer_us.len(), 2);
        }
        assert!(check_history(&store, 1).await.unwrap());
        assert!(store.list_conflicts(false).await.unwrap().is_empty());
        store.close();
    }
}
