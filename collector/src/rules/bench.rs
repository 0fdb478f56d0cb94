//! A micro-benchmark of rule evaluation, for `steward-bench` (results in BENCHMARKS.md).
//! Issue 7's target: with 1,000 rules over 10,000 CIs, evaluating an incoming report (about
//! 15 samples) takes at most 50 µs on average.
//!
//! [`workload`] builds a deterministic synthetic set-up (the shipped defaults plus generated
//! rules with class, tag, service, name and instance selectors, windows and rates; CIs of
//! every class; reports with CPU, memory, three filesystems, two interfaces), and [`run`]
//! times [`Engine::observe`] per report with plain `Instant`s. No criterion: the figures are
//! medians and means of per-report times, which is what the target is stated in.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use super::clock::ManualClock;
use super::config::RuleSet;
use super::engine::Engine;
use super::event::{CiFacts, Sample};
use super::metrics::Metric;

/// One incoming report: the samples of `cis[ci]`.
#[derive(Debug, Clone)]
pub struct Report {
    pub ci: usize,
    pub samples: Vec<Sample>,
}

/// What [`run`] measured. Times are in microseconds per report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BenchFigures {
    pub rules: usize,
    pub cis: usize,
    /// Reports timed (warm: each CI's selector cache already built).
    pub reports: usize,
    pub samples_per_report: f64,
    /// First report of each CI: the selector cache is built (every rule's CI selector is
    /// matched once).
    pub cold_mean_us: f64,
    pub median_us: f64,
    pub mean_us: f64,
    pub p99_us: f64,
    /// One [`Engine::tick`] over all state, run once per simulated interval.
    pub tick_mean_us: f64,
    pub transitions: usize,
    pub open_events: usize,
    /// Samples held for windows and rates at the end.
    pub series_samples: usize,
}

impl BenchFigures {
    /// A short human-readable summary.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "{} rules, {} CIs, {} reports of {:.1} samples: median {:.2} µs, mean {:.2} µs, p99 {:.2} µs per report (first report per CI {:.2} µs); tick {:.0} µs; {} transitions, {} open events, {} samples kept",
            self.rules,
            self.cis,
            self.reports,
            self.samples_per_report,
            self.median_us,
            self.mean_us,
            self.p99_us,
            self.cold_mean_us,
            self.tick_mean_us,
            self.transitions,
            self.open_events,
            self.series_samples
        );
        out
    }
}

/// Simulated seconds between two reports of the same CI.
const INTERVAL_SECS: i64 = 60;

/// Evaluates `reports` in order against `rules`. Each CI's first report is timed apart
/// (cold); the clock advances so that every CI reports once per simulated minute, and the
/// engine ticks once per simulated minute.
pub fn run(rules: RuleSet, cis: &[CiFacts], reports: &[Report]) -> BenchFigures {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let rule_count = rules.rules().iter().filter(|r| r.enabled).count();
    let mut engine = Engine::new(rules, clock.clone());
    let step_ms = (INTERVAL_SECS * 1000 / i64::try_from(cis.len().max(1)).unwrap_or(1)).max(1);
    let mut seen = vec![false; cis.len()];
    let (mut cold, mut warm, mut ticks) = (Vec::new(), Vec::new(), Vec::new());
    let mut transitions = 0;
    let mut samples = 0;
    let mut since_tick_ms = 0;
    for report in reports {
        let Some(ci) = cis.get(report.ci) else {
            continue;
        };
        clock.advance_ms(step_ms);
        since_tick_ms += step_ms;
        if since_tick_ms >= INTERVAL_SECS * 1000 {
            since_tick_ms = 0;
            let started = Instant::now();
            transitions += engine.tick().len();
            ticks.push(started.elapsed().as_secs_f64() * 1e6);
        }
        let started = Instant::now();
        let out = engine.observe(ci, &report.samples);
        let micros = started.elapsed().as_secs_f64() * 1e6;
        transitions += out.len();
        if std::mem::replace(&mut seen[report.ci], true) {
            warm.push(micros);
            samples += report.samples.len();
        } else {
            cold.push(micros);
        }
    }
    let stats = engine.stats();
    warm.sort_by(f64::total_cmp);
    let percentile = |sorted: &[f64], p: f64| -> f64 {
        if sorted.is_empty() {
            return 0.0;
        }
        let at = ((sorted.len() - 1) as f64 * p).round() as usize;
        sorted[at.min(sorted.len() - 1)]
    };
    let mean = |values: &[f64]| {
        if values.is_empty() {
            0.0
        } else {
            values.iter().sum::<f64>() / values.len() as f64
        }
    };
    BenchFigures {
        rules: rule_count,
        cis: cis.len(),
        reports: warm.len(),
        samples_per_report: if warm.is_empty() {
            0.0
        } else {
            samples as f64 / warm.len() as f64
        },
        cold_mean_us: mean(&cold),
        median_us: percentile(&warm, 0.5),
        mean_us: mean(&warm),
        p99_us: percentile(&warm, 0.99),
        tick_mean_us: mean(&ticks),
        transitions,
        open_events: stats.open_events,
        series_samples: stats.series_samples,
    }
}

/// A small deterministic generator (xorshift64*), so the workload is the same on every run
/// without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// Uniform in [low, high).
    fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (self.next() >> 11) as f64 / (1u64 << 53) as f64 * (high - low)
    }
}

const TEAMS: usize = 20;
const SERVICES: usize = 30;
const CLASSES: [&str; 4] = ["server", "virtual_machine", "workstation", "network_device"];
const MOUNTS: [&str; 3] = ["/", "/var", "/home"];
const INTERFACES: [&str; 2] = ["eth0", "eth1"];

/// The shipped defaults plus generated rules up to `rule_count`, `ci_count` CIs, and
/// `reports_per_ci` reports from each (interleaved, as they arrive). About 2 % of the CIs
/// have a full filesystem or a busy CPU, so events open and some hold-downs run.
pub fn workload(
    rule_count: usize,
    ci_count: usize,
    reports_per_ci: usize,
    seed: u64,
) -> (RuleSet, Vec<CiFacts>, Vec<Report>) {
    let mut rng = Rng(seed | 1);
    let rules = generated_rules(&mut rng, rule_count);
    let cis: Vec<CiFacts> = (0..ci_count)
        .map(|i| {
            let class = CLASSES[match rng.below(100) {
                0..60 => 0,
                60..85 => 1,
                85..95 => 2,
                _ => 3,
            }];
            let mut tags = vec![
                format!("team-{:02}", rng.below(TEAMS)),
                ["prod", "staging", "dev"][rng.below(3)].to_string(),
                ["eu", "us"][rng.below(2)].to_string(),
            ];
            tags.sort();
            CiFacts {
                id: i64::try_from(i).unwrap_or(i64::MAX),
                name: format!("host-{i:05}"),
                class: class.to_string(),
                tags,
                services: vec![format!("svc-{:02}", rng.below(SERVICES))],
            }
        })
        .collect();
    let troubled: Vec<bool> = (0..ci_count).map(|_| rng.below(50) == 0).collect();
    let mut counters = vec![0.0f64; ci_count * INTERFACES.len()];
    let mut reports = Vec::with_capacity(ci_count * reports_per_ci);
    for _round in 0..reports_per_ci {
        for (i, ci) in cis.iter().enumerate() {
            let bad = troubled[i];
            let mut samples = Vec::with_capacity(16);
            if ci.class == "network_device" {
                samples.push(Sample::new(Metric::SnmpUnreachable, "", 0.0));
            } else {
                samples.push(Sample::new(
                    Metric::AgentSilentIntervals,
                    "",
                    rng.between(0.0, 1.0),
                ));
                samples.push(Sample::new(
                    Metric::CpuUsagePct,
                    "",
                    if bad { 99.0 } else { rng.between(1.0, 70.0) },
                ));
                samples.push(Sample::new(
                    Metric::MemoryAvailablePct,
                    "",
                    rng.between(20.0, 80.0),
                ));
                for mount in MOUNTS {
                    let used = if bad && mount == "/var" {
                        96.0
                    } else {
                        rng.between(10.0, 80.0)
                    };
                    samples.push(Sample::new(Metric::FilesystemUsedPct, mount, used));
                }
            }
            for (n, interface) in INTERFACES.iter().enumerate() {
                let counter = &mut counters[i * INTERFACES.len() + n];
                *counter += rng.between(0.0, 30.0).floor();
                samples.push(Sample::new(Metric::InterfaceDown, *interface, 0.0));
                samples.push(Sample::new(
                    Metric::InterfaceUtilPct,
                    *interface,
                    rng.between(0.0, 60.0),
                ));
                samples.push(Sample::new(
                    Metric::InterfaceErrorsPerSec,
                    *interface,
                    rng.between(0.0, 0.5),
                ));
                samples.push(Sample::new(
                    Metric::InterfaceErrorsTotal,
                    *interface,
                    *counter,
                ));
            }
            reports.push(Report { ci: i, samples });
        }
    }
    (rules, cis, reports)
}

/// The defaults plus generated rules, written as TOML and parsed like a user's file, so they
/// are valid by the same checks.
fn generated_rules(rng: &mut Rng, rule_count: usize) -> RuleSet {
    let defaults = RuleSet::with_defaults();
    let mut text = String::new();
    for n in 0..rule_count.saturating_sub(defaults.len()) {
        let (body, instance) = match rng.below(8) {
            0 => (format!("metric = \"cpu.usage_pct\"\nop = \">=\"\nwarning = {}\nfor_secs = 300", 80 + rng.below(15)), None),
            1 => (format!("metric = \"cpu.usage_pct\"\naggregation = \"avg\"\nwindow_secs = 300\nop = \">=\"\nwarning = {}", 70 + rng.below(20)), None),
            2 => (format!("metric = \"memory.available_pct\"\nop = \"<\"\nwarning = {}\ncritical = 3", 5 + rng.below(10)), None),
            3 => (format!("metric = \"filesystem.used_pct\"\nop = \">=\"\nwarning = {}\ncritical = 98", 80 + rng.below(15)), None),
            4 => ("metric = \"filesystem.used_pct\"\nop = \">=\"\ncritical = 92".to_string(), Some("/var*|/srv*")),
            5 => (format!("metric = \"interface.util_pct\"\naggregation = \"max\"\nwindow_secs = 600\nop = \">=\"\nwarning = {}", 70 + rng.below(25)), Some("eth*")),
            6 => ("metric = \"interface.errors_total\"\naggregation = \"rate\"\nwindow_secs = 300\nop = \">=\"\nwarning = 5".to_string(), None),
            _ => (format!("metric = \"interface.errors_per_sec\"\nop = \">=\"\nwarning = {}", 1 + rng.below(5)), Some("eth1")),
        };
        let ci_part = match rng.below(6) {
            0 => format!("tags = [\"team-{:02}\"]", rng.below(TEAMS)),
            1 => format!("service = \"svc-{:02}\"", rng.below(SERVICES)),
            2 => format!(
                "class = \"{}\", tags = [\"prod\", \"team-{:02}\"]",
                CLASSES[rng.below(3)],
                rng.below(TEAMS)
            ),
            3 => format!(
                "name = \"host-{}*\", tags = [\"team-{:02}\"]",
                rng.below(10),
                rng.below(TEAMS)
            ),
            4 => format!(
                "service = [\"svc-{:02}\", \"svc-{:02}\"], tags = [\"eu\"]",
                rng.below(SERVICES),
                rng.below(SERVICES)
            ),
            _ => format!(
                "class = [\"server\", \"virtual_machine\"], tags = [\"team-{:02}\", \"staging\"]",
                rng.below(TEAMS)
            ),
        };
        let instance = instance
            .map(|glob| format!(", instance = \"{glob}\""))
            .unwrap_or_default();
        let _ = writeln!(
            text,
            "[[rule]]\nname = \"generated-{n:04}\"\nselector = {{ {ci_part}{instance} }}\n{body}\n"
        );
    }
    let generated = match RuleSet::parse(&text, "generated.toml") {
        Ok(generated) => generated,
        // The generator writes only valid rules (its test checks); an empty set keeps the
        // benchmark running on the defaults if that ever breaks.
        Err(_) => RuleSet::empty(),
    };
    match defaults.clone().overlay(generated) {
        Ok(rules) => rules,
        Err(_) => defaults,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_run_produces_figures() {
        let (rules, cis, reports) = workload(60, 200, 4, 7);
        assert_eq!(rules.len(), 60, "the generator writes only valid rules");
        let figures = run(rules, &cis, &reports);
        assert_eq!(figures.rules, 60);
        assert_eq!(figures.cis, 200);
        assert_eq!(
            figures.reports, 600,
            "the first report of each CI is timed apart"
        );
        assert!(figures.samples_per_report > 10.0, "{}", figures.summary());
        assert!(figures.median_us > 0.0 && figures.mean_us > 0.0);
        assert!(
            figures.open_events > 0,
            "some CIs are in trouble: {}",
            figures.summary()
        );
        assert!(figures.series_samples > 0, "windows and rates keep samples");
        assert!(figures.summary().contains("60 rules, 200 CIs"));
    }

    #[test]
    fn the_workload_is_deterministic() {
        let (a_rules, a_cis, a_reports) = workload(30, 20, 2, 42);
        let (b_rules, b_cis, b_reports) = workload(30, 20, 2, 42);
        assert_eq!(a_cis, b_cis);
        assert_eq!(a_reports.len(), b_reports.len());
        assert_eq!(a_reports[7].samples, b_reports[7].samples);
        let names = |set: &RuleSet| {
            set.rules()
                .iter()
                .map(|r| r.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&a_rules), names(&b_rules));
    }
}
