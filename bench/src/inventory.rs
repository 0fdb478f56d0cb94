//! `steward-bench inventory`: one full inventory of this machine by the release agent
//! (`steward-agent inventory --json`), beside `fusioninventory-agent --local DIR`, each run to
//! completion under GNU time (which reports CPU and peak RSS from `wait4`, children included).
//! Both must find the same number of Debian packages.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::agent::{WorkDir, default_bin_dir};
use crate::peers::{ensure_installed, run_to_completion};
use crate::stats::{median_f64, median_u64};

const MAX_RUNS: u32 = 50;
/// How long one inventory may take before the run fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
const GNU_TIME: &str = "/usr/bin/time";
const FUSION: &str = "/usr/bin/fusioninventory-agent";

#[derive(Debug, clap::Args)]
pub struct InventoryArgs {
    /// Measurements of the Steward agent, each timing a batch of inventories (the median is
    /// reported).
    #[arg(long, default_value_t = 5)]
    runs: u32,
    /// Runs of fusioninventory-agent (slower; the median is reported).
    #[arg(long, default_value_t = 3)]
    peer_runs: u32,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    json: bool,
    /// The steward-agent binary (default: target/release/steward-agent).
    #[arg(long)]
    agent_bin: Option<PathBuf>,
}

/// One tool's medians.
#[derive(Debug, Clone, Default, Serialize)]
struct ToolFigures {
    runs: u32,
    /// CPU (user + system) of one inventory, children included.
    cpu_ms: f64,
    peak_rss_kb: u64,
    /// Debian packages found.
    packages: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    steward: ToolFigures,
    fusioninventory: Option<ToolFigures>,
    /// fusioninventory-agent ÷ Steward.
    cpu_ratio: Option<f64>,
    rss_ratio: Option<f64>,
    packages_match: Option<bool>,
    /// `dpkg-query`'s count of installed packages, the reference for both.
    dpkg_installed: Option<u64>,
    /// Sources the agent reported as failed, with their errors.
    failed_sources: Vec<String>,
}

pub fn run(args: &InventoryArgs) -> Result<()> {
    if !(1..=MAX_RUNS).contains(&args.runs) || args.peer_runs > MAX_RUNS {
        bail!("--runs must be 1..={MAX_RUNS} and --peer-runs 0..={MAX_RUNS}");
    }
    let agent = args
        .agent_bin
        .clone()
        .unwrap_or_else(|| default_bin_dir("steward-agent").join("steward-agent"));
    if !agent.is_file() {
        bail!(
            "{} not found; build it first: cargo build --release -p steward-agent",
            agent.display()
        );
    }
    let time = ensure_installed(Path::new(GNU_TIME), "time")
        .context("GNU time is needed to measure CPU and peak RSS")?;
    // Installed before anything is measured: installing it adds Debian packages, and both tools
    // must see the same package database.
    let fusion_bin = if args.peer_runs == 0 {
        None
    } else {
        let found = ensure_installed(Path::new(FUSION), "fusioninventory-agent");
        if found.is_none() {
            eprintln!("fusioninventory-agent is not available: reporting Steward alone");
        }
        found
    };
    let dir = WorkDir::create(0)?;

    let mut steward_runs = Vec::new();
    let mut failed_sources = Vec::new();
    for run in 0..args.runs {
        let (figures, failed) = steward_once(&time, &agent, &dir.path, run)?;
        eprintln!(
            "steward run {}: {:.2} ms CPU per inventory, {} kB peak RSS, {} deb packages",
            run + 1,
            figures.cpu_ms,
            figures.peak_rss_kb,
            figures.packages
        );
        failed_sources = failed;
        steward_runs.push(figures);
    }
    let steward = medians(&steward_runs);

    let fusion = match fusion_bin {
        None => None,
        Some(fusion) => {
            let mut runs = Vec::new();
            for run in 0..args.peer_runs {
                let figures = fusion_once(&time, &fusion, &dir.path, run)?;
                eprintln!(
                    "fusioninventory run {}: {:.1} ms CPU, {} kB peak RSS, {} packages",
                    run + 1,
                    figures.cpu_ms,
                    figures.peak_rss_kb,
                    figures.packages
                );
                runs.push(figures);
            }
            Some(medians(&runs))
        }
    };
    let ratio = |peer: f64, ours: f64| (ours > 0.0).then(|| peer / ours);
    let report = Report {
        cpu_ratio: fusion
            .as_ref()
            .and_then(|f| ratio(f.cpu_ms, steward.cpu_ms)),
        rss_ratio: fusion
            .as_ref()
            .and_then(|f| ratio(f.peak_rss_kb as f64, steward.peak_rss_kb as f64)),
        packages_match: fusion.as_ref().map(|f| f.packages == steward.packages),
        dpkg_installed: dpkg_installed(&dir.path),
        failed_sources,
        steward,
        fusioninventory: fusion,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

fn medians(runs: &[ToolFigures]) -> ToolFigures {
    ToolFigures {
        runs: u32::try_from(runs.len()).unwrap_or(u32::MAX),
        cpu_ms: median_f64(runs.iter().map(|r| r.cpu_ms).collect()),
        peak_rss_kb: median_u64(runs.iter().map(|r| r.peak_rss_kb).collect()),
        packages: median_u64(runs.iter().map(|r| r.packages).collect()),
    }
}

/// Steward inventories per measurement: GNU time reports CPU in 10 ms steps, so one
/// measurement times this many inventories in a row and divides.
const STEWARD_BATCH: u32 = 25;

/// Runs `program args` under GNU time; returns (CPU ms, peak RSS kB) and stdout.
fn timed(
    time: &Path,
    program: &Path,
    args: &[String],
    dir: &Path,
    label: &str,
) -> Result<(f64, u64, String)> {
    let measure = dir.join(format!("{label}.time"));
    let mut full = vec![
        "-f".to_string(),
        "%U %S %M".to_string(),
        "-o".to_string(),
        measure.display().to_string(),
        program.display().to_string(),
    ];
    full.extend_from_slice(args);
    let stdout = run_to_completion(time, &full, dir, label, RUN_TIMEOUT)?;
    let text = fs::read_to_string(&measure)
        .with_context(|| format!("cannot read {}", measure.display()))?;
    let (cpu_ms, rss_kb) =
        parse_time_output(&text).with_context(|| format!("unexpected GNU time output {text:?}"))?;
    Ok((cpu_ms, rss_kb, stdout))
}

/// Parses the last line of GNU time's `%U %S %M`: user and system seconds, peak RSS in kB.
fn parse_time_output(text: &str) -> Option<(f64, u64)> {
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let mut fields = line.split_whitespace();
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    let rss: u64 = fields.next()?.parse().ok()?;
    Some(((user + system) * 1000.0, rss))
}

fn steward_once(
    time: &Path,
    agent: &Path,
    dir: &Path,
    run: u32,
) -> Result<(ToolFigures, Vec<String>)> {
    // One shell runs the batch: the first inventory's JSON is kept, the rest are discarded.
    let script = format!(
        "\"$0\" inventory --json || exit 1; i=1; while [ $i -lt {STEWARD_BATCH} ]; do \"$0\" inventory --json > /dev/null || exit 1; i=$((i+1)); done"
    );
    let args = vec!["-c".to_string(), script, agent.display().to_string()];
    let (cpu_ms, peak_rss_kb, stdout) = timed(
        time,
        Path::new("/bin/sh"),
        &args,
        dir,
        &format!("steward-{run}"),
    )?;
    let cpu_ms = cpu_ms / f64::from(STEWARD_BATCH);
    let json: serde_json::Value =
        serde_json::from_str(&stdout).context("steward-agent inventory --json is not JSON")?;
    let packages = json["software"]
        .as_array()
        .map(|s| s.iter().filter(|p| p["source"] == "dpkg").count() as u64)
        .unwrap_or(0);
    let failed = json["sources"]
        .as_array()
        .map(|sources| {
            sources
                .iter()
                .filter(|s| !s["error"].is_null())
                .map(|s| format!("{}: {}", s["source"], s["error"]))
                .collect()
        })
        .unwrap_or_default();
    Ok((
        ToolFigures {
            runs: 1,
            cpu_ms,
            peak_rss_kb,
            packages,
        },
        failed,
    ))
}

fn fusion_once(time: &Path, fusion: &Path, dir: &Path, run: u32) -> Result<ToolFigures> {
    let out = dir.join(format!("fusion-{run}"));
    fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let args = vec!["--local".to_string(), out.display().to_string()];
    let (cpu_ms, peak_rss_kb, _) = timed(time, fusion, &args, dir, &format!("fusion-{run}"))?;
    let mut packages = 0;
    for entry in fs::read_dir(&out).with_context(|| format!("cannot list {}", out.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "ocs" || e == "xml") {
            let xml = fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            packages += count_deb_softwares(&xml);
        }
    }
    Ok(ToolFigures {
        runs: 1,
        cpu_ms,
        peak_rss_kb,
        packages,
    })
}

/// `<SOFTWARES>` entries of fusioninventory's XML that come from dpkg (`<FROM>deb</FROM>`).
fn count_deb_softwares(xml: &str) -> u64 {
    xml.split("<SOFTWARES>")
        .skip(1)
        .filter(|entry| {
            let entry = entry.split("</SOFTWARES>").next().unwrap_or_default();
            entry.contains("<FROM>deb</FROM>")
        })
        .count() as u64
}

fn dpkg_installed(dir: &Path) -> Option<u64> {
    let args = vec![
        "-W".to_string(),
        "-f".to_string(),
        "${db:Status-Abbrev}\\n".to_string(),
    ];
    let out = run_to_completion(
        Path::new("/usr/bin/dpkg-query"),
        &args,
        dir,
        "dpkg-query",
        Duration::from_secs(60),
    )
    .ok()?;
    Some(out.lines().filter(|l| l.starts_with("ii")).count() as u64)
}

fn print_table(report: &Report) {
    println!(
        "{:<24} {:>5} {:>10} {:>14} {:>12}",
        "tool", "runs", "CPU ms", "peak RSS MB", "deb packages"
    );
    let row = |name: &str, f: &ToolFigures| {
        println!(
            "{:<24} {:>5} {:>10.2} {:>14.1} {:>12}",
            name,
            f.runs,
            f.cpu_ms,
            f.peak_rss_kb as f64 / 1024.0,
            f.packages
        );
    };
    row("steward-agent", &report.steward);
    if let Some(fusion) = &report.fusioninventory {
        row("fusioninventory-agent", fusion);
    }
    if let (Some(cpu), Some(rss)) = (report.cpu_ratio, report.rss_ratio) {
        println!("fusioninventory-agent / steward: CPU {cpu:.1}x, peak RSS {rss:.1}x");
    }
    if let Some(count) = report.dpkg_installed {
        println!("dpkg-query counts {count} installed packages");
    }
    match report.packages_match {
        Some(true) => println!("both found the same number of packages"),
        Some(false) => println!("the package counts DIFFER"),
        None => {}
    }
    for failed in &report.failed_sources {
        println!("agent source failed: {failed}");
    }
    println!(
        "budget: <= 40 ms CPU and <= 8 MB peak RSS: {}",
        if report.steward.cpu_ms <= 40.0 && report.steward.peak_rss_kb <= 8 * 1024 {
            "met"
        } else {
            "NOT met"
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gnu_time_output_is_parsed_from_its_last_line() {
        assert_eq!(
            parse_time_output("Command exited with non-zero status 1\n0.02 0.01 5120\n"),
            Some((30.0, 5120))
        );
        assert_eq!(parse_time_output("garbage"), None);
    }

    #[test]
    fn only_deb_softwares_are_counted() {
        let xml = "<REQUEST><CONTENT><SOFTWARES><NAME>a</NAME><FROM>deb</FROM></SOFTWARES>\
                   <SOFTWARES><NAME>b</NAME><FROM>snap</FROM></SOFTWARES>\
                   <SOFTWARES><FROM>deb</FROM></SOFTWARES></CONTENT></REQUEST>";
        assert_eq!(count_deb_softwares(xml), 2);
    }
}
