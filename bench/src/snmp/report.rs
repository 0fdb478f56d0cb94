//! The report of `steward-bench snmp`: one JSON document, and the table printed from it.

use std::path::Path;

use serde::Serialize;
use steward_collector::snmp::SnmpConfig;

use super::{fleet, ratio};
use crate::agent::Machine;

/// The budget: Steward's CPU per 1,000 varbinds over the exporter's.
pub const BUDGET_RATIO: f64 = 0.2;

#[derive(Debug, Serialize)]
pub struct RatioReport {
    pub polls_per_run: u32,
    pub target: String,
    pub steward: ratio::Figures,
    pub exporter: ratio::Figures,
    /// Steward ÷ exporter, CPU per 1,000 varbinds, of the medians.
    pub ratio: f64,
    /// The same ratio in each run.
    pub ratio_per_run: Vec<f64>,
    pub budget_met: bool,
    pub runs: Vec<ratio::Run>,
}

#[derive(Debug, Serialize)]
pub struct FleetReport {
    pub targets: usize,
    pub daemons: usize,
    pub addresses_per_daemon: usize,
    pub max_in_flight: usize,
    pub interval_secs: u32,
    pub summary: fleet::Summary,
    /// Whether every round finished within the interval with no failed poll.
    pub budget_met: bool,
    pub rounds: Vec<fleet::Round>,
}

#[derive(Debug, Serialize)]
pub struct Settings {
    pub timeout_ms: u64,
    pub retries: u32,
    pub max_repetitions: u32,
    pub max_in_flight: usize,
    pub interval_secs: u32,
}

impl Settings {
    pub fn of(config: &SnmpConfig) -> Settings {
        Settings {
            timeout_ms: config.timeout_ms,
            retries: config.retries,
            max_repetitions: config.max_repetitions,
            max_in_flight: config.max_in_flight,
            interval_secs: config.interval_secs,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub snmpd_version: Option<String>,
    pub exporter_version: Option<String>,
    pub walked_roots: Vec<String>,
    pub poller_settings: Settings,
    /// Whether snmpd served hrProcessorLoad before measuring began.
    pub processor_rows: bool,
    /// The 1-minute load average at the start and at the end (`/proc/loadavg`): other work
    /// on the machine shows here.
    pub load_average: [Option<f64>; 2],
    pub ratio: Option<RatioReport>,
    pub fleet: Option<FleetReport>,
}

impl Report {
    pub fn table(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        out.push_str(&format!(
            "machine: {} cores, {:.1} GiB, {}; snmpd {}, prometheus-snmp-exporter {}; medians over runs\n",
            m.cores,
            m.mem_gb,
            m.cpu_model.as_deref().unwrap_or("unknown CPU"),
            self.snmpd_version.as_deref().unwrap_or("?"),
            self.exporter_version.as_deref().unwrap_or("-"),
        ));
        let s = &self.poller_settings;
        let load = |l: Option<f64>| l.map_or_else(|| "?".to_string(), |l| format!("{l:.2}"));
        out.push_str(&format!(
            "poller: {} subtrees, GETBULK max-repetitions {}, timeout {} ms, {} retries; load average {} at start, {} at end\n",
            self.walked_roots.len(),
            s.max_repetitions,
            s.timeout_ms,
            s.retries,
            load(self.load_average[0]),
            load(self.load_average[1]),
        ));
        if let Some(r) = &self.ratio {
            out.push_str(&format!(
                "\nCPU per 1,000 varbinds, the same snmpd ({}), {} polls per poller per run, {} runs\n",
                r.target,
                r.polls_per_run,
                r.runs.len()
            ));
            out.push_str(&format!(
                "{:<26} {:>9} {:>9} {:>12} {:>12} {:>10} {:>14} {:>12}\n",
                "poller",
                "vb/poll",
                "req/poll",
                "CPU ms/1k vb",
                "CPU ms/poll",
                "wall ms",
                "ticks ms/1k vb",
                "snmpd ms/poll"
            ));
            for (name, f) in [
                ("steward (poll + map)", &r.steward),
                ("prometheus-snmp-exporter", &r.exporter),
            ] {
                out.push_str(&format!(
                    "{:<26} {:>9.1} {:>9.1} {:>12.3} {:>12.3} {:>10.3} {:>14.3} {:>12.3}\n",
                    name,
                    f.varbinds_per_poll,
                    f.requests_per_poll,
                    f.cpu_ms_per_1k_varbinds,
                    f.cpu_ms_per_poll,
                    f.wall_ms_per_poll,
                    f.process_cpu_ms_per_1k_varbinds_ticks,
                    f.snmpd_cpu_ms_per_poll
                ));
            }
            let per_run: Vec<String> = r.ratio_per_run.iter().map(|x| format!("{x:.3}")).collect();
            out.push_str(&format!(
                "ratio steward / exporter: {:.3} (runs: {}); budget <= {BUDGET_RATIO}: {}\n",
                r.ratio,
                per_run.join(", "),
                verdict(r.budget_met)
            ));
        }
        if let Some(f) = &self.fleet {
            let s = &f.summary;
            out.push_str(&format!(
                "\n{} targets ({} snmpd x {} loopback addresses), {} in flight, {} rounds\n",
                f.targets, f.daemons, f.addresses_per_daemon, f.max_in_flight, s.rounds
            ));
            out.push_str(&format!(
                "{:>8} {:>8} {:>7} {:>13} {:>12} {:>13} {:>12} {:>11} {:>9} {:>9} {:>9}\n",
                "wall s",
                "max s",
                "failed",
                "poller CPU s",
                "poller cores",
                "CPU ms/1k vb",
                "snmpd CPU s",
                "snmpd cores",
                "p50 ms",
                "p99 ms",
                "max ms"
            ));
            out.push_str(&format!(
                "{:>8.2} {:>8.2} {:>7} {:>13.2} {:>12.2} {:>13.3} {:>12.2} {:>11.2} {:>9.1} {:>9.1} {:>9.1}\n",
                s.wall_s,
                s.wall_s_max,
                s.failed_total,
                s.poller_cpu_ms / 1000.0,
                s.poller_cores,
                s.poller_cpu_ms_per_1k_varbinds,
                s.snmpd_cpu_ms / 1000.0,
                s.snmpd_cores,
                s.poll_ms_p50,
                s.poll_ms_p99,
                s.poll_ms_max
            ));
            out.push_str(&format!(
                "{} varbinds and {} requests per round; all targets within the {} s interval, none failing: {}\n",
                s.varbinds_per_round,
                s.requests_per_round,
                f.interval_secs,
                verdict(f.budget_met)
            ));
            if let Some(error) = &s.first_error {
                out.push_str(&format!("first failure: {error}\n"));
            }
        }
        out
    }
}

pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

/// The 1-minute load average from `/proc/loadavg`.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| parse_load_average(&text))
}

pub fn parse_load_average(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// `snmpd -v`'s version line (`NET-SNMP version:  5.9.3`), if it runs.
pub fn snmpd_version(binary: &Path) -> Option<String> {
    let out = std::process::Command::new(binary).arg("-v").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    parse_version_line(&text, "NET-SNMP version:")
}

/// `prometheus-snmp-exporter --version`'s first line's version.
pub fn exporter_version(binary: &Path) -> Option<String> {
    let out = std::process::Command::new(binary)
        .arg("--version")
        .output()
        .ok()?;
    // Older Go binaries print the version on stderr.
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    parse_version_line(&text, "snmp_exporter, version")
}

/// The first word after `prefix` on the line that holds it.
pub fn parse_version_line(text: &str, prefix: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.trim().strip_prefix(prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_and_json_show_both_parts_and_the_verdicts() {
        let phase = |cpu_ms: f64| ratio::Phase {
            polls: 100,
            varbinds: 26_500,
            requests: 3100,
            wall_ms: 500.0,
            cpu_ms,
            process_cpu_ms_ticks: cpu_ms,
            process_cpu_ms: cpu_ms,
            snmpd_cpu_ms: 400.0,
        };
        let run = ratio::Run {
            steward: phase(60.0),
            exporter: phase(420.0),
            steward_first: true,
        };
        let steward = ratio::Figures::of(&run.steward);
        let exporter = ratio::Figures::of(&run.exporter);
        let round = fleet::Round {
            targets: 1000,
            ok: 999,
            failed: 1,
            failures: std::collections::BTreeMap::from([("unreachable".to_string(), 1)]),
            first_error: Some("127.0.1.9:1: no answer".to_string()),
            wall_s: 3.5,
            varbinds: 264_735,
            requests: 31_000,
            poller_cpu_ms: 800.0,
            poller_cpu_ms_ticks: 800.0,
            snmpd_cpu_ms: 3400.0,
            poll_us: crate::stats::Latency::default(),
        };
        let summary = fleet::Summary::of(std::slice::from_ref(&round)).unwrap();
        let report = Report {
            machine: Machine {
                cores: 2,
                mem_gb: 23.5,
                cpu_model: None,
                clk_tck: 100,
            },
            snmpd_version: Some("5.9.3".into()),
            exporter_version: Some("0.21.0".into()),
            walked_roots: vec!["1.3.6.1.2.1.1".into()],
            poller_settings: Settings::of(&SnmpConfig::default()),
            processor_rows: true,
            load_average: [Some(0.1), None],
            ratio: Some(RatioReport {
                polls_per_run: 100,
                target: "127.0.1.1:161".into(),
                ratio: ratio::ratio(&steward, &exporter),
                ratio_per_run: vec![ratio::ratio(&steward, &exporter)],
                budget_met: true,
                steward,
                exporter,
                runs: vec![run],
            }),
            fleet: Some(FleetReport {
                targets: 1000,
                daemons: 4,
                addresses_per_daemon: 250,
                max_in_flight: 64,
                interval_secs: 60,
                budget_met: false,
                summary,
                rounds: vec![round],
            }),
        };
        let table = report.table();
        assert!(table.contains("ratio steward / exporter: 0.143"), "{table}");
        assert!(table.contains("budget <= 0.2: met"), "{table}");
        assert!(table.contains("none failing: NOT met"), "{table}");
        assert!(table.contains("first failure: 127.0.1.9:1"), "{table}");
        assert!(
            table.contains("load average 0.10 at start, ? at end"),
            "{table}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["fleet"]["summary"]["failed_total"], 1);
        assert_eq!(json["ratio"]["budget_met"], true);
    }

    #[test]
    fn versions_are_read_from_either_tool() {
        let snmpd = "\nNET-SNMP version:  5.9.3\nWeb:               http://www.net-snmp.org/\n";
        assert_eq!(
            parse_version_line(snmpd, "NET-SNMP version:").as_deref(),
            Some("5.9.3")
        );
        let exporter = "snmp_exporter, version 0.21.0 (branch: debian/sid, revision: 0.21.0-1+b5)\n  build user: x\n";
        assert_eq!(
            parse_version_line(exporter, "snmp_exporter, version").as_deref(),
            Some("0.21.0")
        );
        assert_eq!(parse_version_line("nothing", "x:"), None);
        assert_eq!(
            parse_load_average("1.25 1.90 2.04 3/180 15233\n"),
            Some(1.25)
        );
        assert_eq!(parse_load_average(""), None);
    }
}
