//! `steward-bench rules`: the rules engine's evaluation cost per incoming report, at the issue's
//! scale (1,000 rules over 10,000 CIs), in-process on the release build. The workload and the
//! timing loop are the collector's own (`steward_collector::rules::bench`): generated rules of
//! every metric with class, tag, name and instance selectors, and reports like a server's
//! (CPU, memory, several filesystems, silence), each CI reporting in turn at its interval.

use anyhow::{Result, bail};
use serde::Serialize;
use steward_collector::rules::bench::{self, BenchFigures};

/// The budget: rule evaluation per incoming report, on average.
const BUDGET_MEAN_US: f64 = 50.0;

#[derive(Debug, clap::Args)]
pub struct RulesArgs {
    #[arg(long, default_value_t = 1000)]
    rules: usize,
    #[arg(long, default_value_t = 10_000)]
    cis: usize,
    /// Reports per CI in each run.
    #[arg(long, default_value_t = 6)]
    reports_per_ci: usize,
    /// Runs (medians are reported), each with its own workload seed.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct RulesReport {
    rules: usize,
    cis: usize,
    reports_per_run: usize,
    samples_per_report: f64,
    mean_us: f64,
    median_us: f64,
    p99_us: f64,
    cold_mean_us: f64,
    tick_mean_ms: f64,
    runs_mean_us: Vec<f64>,
    budget_mean_us: f64,
    budget_met: bool,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

pub fn run(args: &RulesArgs) -> Result<()> {
    if args.rules == 0 || args.cis == 0 || args.reports_per_ci == 0 || args.runs == 0 {
        bail!("--rules, --cis, --reports-per-ci and --runs must be at least 1");
    }
    let mut figures: Vec<BenchFigures> = Vec::new();
    for run in 0..args.runs {
        // Odd seeds: the workload's generator ORs the seed with 1.
        let (rules, cis, reports) = bench::workload(
            args.rules,
            args.cis,
            args.reports_per_ci,
            u64::from(run) * 2 + 1,
        );
        let f = bench::run(rules, &cis, &reports);
        eprintln!("run {}: {}", run + 1, f.summary());
        figures.push(f);
    }
    let of = |f: &dyn Fn(&BenchFigures) -> f64| median(figures.iter().map(f).collect());
    let report = RulesReport {
        rules: args.rules,
        cis: args.cis,
        reports_per_run: figures.first().map_or(0, |f| f.reports),
        samples_per_report: of(&|f| f.samples_per_report),
        mean_us: of(&|f| f.mean_us),
        median_us: of(&|f| f.median_us),
        p99_us: of(&|f| f.p99_us),
        cold_mean_us: of(&|f| f.cold_mean_us),
        tick_mean_ms: of(&|f| f.tick_mean_us / 1000.0),
        runs_mean_us: figures.iter().map(|f| f.mean_us).collect(),
        budget_mean_us: BUDGET_MEAN_US,
        budget_met: of(&|f| f.mean_us) <= BUDGET_MEAN_US,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "rules engine: {} rules over {} CIs, {} reports per run ({:.1} samples each), {} run(s), medians\n\
             per report: mean {:.2} µs, median {:.2} µs, p99 {:.2} µs; a CI's first report (selector cache) {:.1} µs\n\
             tick over all state: {:.2} ms\n\
             budget: mean <= {} µs per report: {}",
            report.rules,
            report.cis,
            report.reports_per_run,
            report.samples_per_report,
            args.runs,
            report.mean_us,
            report.median_us,
            report.p99_us,
            report.cold_mean_us,
            report.tick_mean_ms,
            BUDGET_MEAN_US,
            if report.budget_met { "met" } else { "NOT met" }
        );
    }
    Ok(())
}
