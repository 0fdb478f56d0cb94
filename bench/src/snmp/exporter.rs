//! prometheus-snmp-exporter as the reference poller: an `snmp.yml` written for this run, the
//! exporter started on a loopback port, scrapes of `/snmp`, and what a scrape says about itself.
//!
//! The config is in the format of the Debian package (0.21: modules at the top level, each with
//! its own `auth`). Its one module walks exactly the subtrees Steward's poller walks (taken from
//! `mib::all_roots()`, so the two cannot drift apart) with the collector's own timeout, retries
//! and max-repetitions, and turns every object snmpd serves under them into a metric, the way
//! the exporter's generator would: counters, gauges, strings as labels, and the `if_mib`
//! module's ifAlias/ifDescr/ifName lookups on every interface metric.

use std::fmt::Write as _;
use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use steward_collector::snmp::{Oid, SnmpConfig};

use crate::peers::{self, Proc};

pub const BINARY: &str = "/usr/bin/prometheus-snmp-exporter";
pub const PACKAGE: &str = "prometheus-snmp-exporter";
/// The module name in the generated `snmp.yml`.
pub const MODULE: &str = "steward";

/// How a table's rows are labelled: the index label, and lookups of other columns by it.
struct Labels {
    index: &'static str,
    lookups: &'static [(&'static str, &'static str)],
}

const IF_LOOKUPS: &[(&str, &str)] = &[
    ("ifAlias", "1.3.6.1.2.1.31.1.1.1.18"),
    ("ifDescr", "1.3.6.1.2.1.2.2.1.2"),
    ("ifName", "1.3.6.1.2.1.31.1.1.1.1"),
];
const SCALAR: Labels = Labels {
    index: "",
    lookups: &[],
};
const SYS_OR: Labels = Labels {
    index: "sysORIndex",
    lookups: &[],
};
const IF: Labels = Labels {
    index: "ifIndex",
    lookups: IF_LOOKUPS,
};
const STORAGE: Labels = Labels {
    index: "hrStorageIndex",
    lookups: &[("hrStorageDescr", "1.3.6.1.2.1.25.2.3.1.3")],
};
const PROCESSOR: Labels = Labels {
    index: "hrDeviceIndex",
    lookups: &[],
};

/// (metric, OID, exporter type, labels) for every object net-snmp serves under the walked
/// roots. The columns used as lookups (ifDescr, ifName, ifAlias, hrStorageDescr) are labels
/// only, as in the exporter's `if_mib`.
const METRICS: &[(&str, &str, &str, &Labels)] = &[
    ("sysDescr", "1.3.6.1.2.1.1.1", "DisplayString", &SCALAR),
    ("sysObjectID", "1.3.6.1.2.1.1.2", "DisplayString", &SCALAR),
    ("sysUpTime", "1.3.6.1.2.1.1.3", "gauge", &SCALAR),
    ("sysContact", "1.3.6.1.2.1.1.4", "DisplayString", &SCALAR),
    ("sysName", "1.3.6.1.2.1.1.5", "DisplayString", &SCALAR),
    ("sysLocation", "1.3.6.1.2.1.1.6", "DisplayString", &SCALAR),
    ("sysServices", "1.3.6.1.2.1.1.7", "gauge", &SCALAR),
    ("sysORLastChange", "1.3.6.1.2.1.1.8", "gauge", &SCALAR),
    ("sysORID", "1.3.6.1.2.1.1.9.1.2", "DisplayString", &SYS_OR),
    (
        "sysORDescr",
        "1.3.6.1.2.1.1.9.1.3",
        "DisplayString",
        &SYS_OR,
    ),
    ("sysORUpTime", "1.3.6.1.2.1.1.9.1.4", "gauge", &SYS_OR),
    ("ifIndex", "1.3.6.1.2.1.2.2.1.1", "gauge", &IF),
    ("ifType", "1.3.6.1.2.1.2.2.1.3", "gauge", &IF),
    ("ifMtu", "1.3.6.1.2.1.2.2.1.4", "gauge", &IF),
    ("ifSpeed", "1.3.6.1.2.1.2.2.1.5", "gauge", &IF),
    ("ifPhysAddress", "1.3.6.1.2.1.2.2.1.6", "PhysAddress48", &IF),
    ("ifAdminStatus", "1.3.6.1.2.1.2.2.1.7", "gauge", &IF),
    ("ifOperStatus", "1.3.6.1.2.1.2.2.1.8", "gauge", &IF),
    ("ifLastChange", "1.3.6.1.2.1.2.2.1.9", "gauge", &IF),
    ("ifInOctets", "1.3.6.1.2.1.2.2.1.10", "counter", &IF),
    ("ifInUcastPkts", "1.3.6.1.2.1.2.2.1.11", "counter", &IF),
    ("ifInNUcastPkts", "1.3.6.1.2.1.2.2.1.12", "counter", &IF),
    ("ifInDiscards", "1.3.6.1.2.1.2.2.1.13", "counter", &IF),
    ("ifInErrors", "1.3.6.1.2.1.2.2.1.14", "counter", &IF),
    ("ifInUnknownProtos", "1.3.6.1.2.1.2.2.1.15", "counter", &IF),
    ("ifOutOctets", "1.3.6.1.2.1.2.2.1.16", "counter", &IF),
    ("ifOutUcastPkts", "1.3.6.1.2.1.2.2.1.17", "counter", &IF),
    ("ifOutNUcastPkts", "1.3.6.1.2.1.2.2.1.18", "counter", &IF),
    ("ifOutDiscards", "1.3.6.1.2.1.2.2.1.19", "counter", &IF),
    ("ifOutErrors", "1.3.6.1.2.1.2.2.1.20", "counter", &IF),
    ("ifOutQLen", "1.3.6.1.2.1.2.2.1.21", "gauge", &IF),
    ("ifSpecific", "1.3.6.1.2.1.2.2.1.22", "DisplayString", &IF),
    (
        "ifInMulticastPkts",
        "1.3.6.1.2.1.31.1.1.1.2",
        "counter",
        &IF,
    ),
    (
        "ifInBroadcastPkts",
        "1.3.6.1.2.1.31.1.1.1.3",
        "counter",
        &IF,
    ),
    (
        "ifOutMulticastPkts",
        "1.3.6.1.2.1.31.1.1.1.4",
        "counter",
        &IF,
    ),
    (
        "ifOutBroadcastPkts",
        "1.3.6.1.2.1.31.1.1.1.5",
        "counter",
        &IF,
    ),
    ("ifHCInOctets", "1.3.6.1.2.1.31.1.1.1.6", "counter", &IF),
    ("ifHCInUcastPkts", "1.3.6.1.2.1.31.1.1.1.7", "counter", &IF),
    (
        "ifHCInMulticastPkts",
        "1.3.6.1.2.1.31.1.1.1.8",
        "counter",
        &IF,
    ),
    (
        "ifHCInBroadcastPkts",
        "1.3.6.1.2.1.31.1.1.1.9",
        "counter",
        &IF,
    ),
    ("ifHCOutOctets", "1.3.6.1.2.1.31.1.1.1.10", "counter", &IF),
    (
        "ifHCOutUcastPkts",
        "1.3.6.1.2.1.31.1.1.1.11",
        "counter",
        &IF,
    ),
    (
        "ifHCOutMulticastPkts",
        "1.3.6.1.2.1.31.1.1.1.12",
        "counter",
        &IF,
    ),
    (
        "ifHCOutBroadcastPkts",
        "1.3.6.1.2.1.31.1.1.1.13",
        "counter",
        &IF,
    ),
    (
        "ifLinkUpDownTrapEnable",
        "1.3.6.1.2.1.31.1.1.1.14",
        "gauge",
        &IF,
    ),
    ("ifHighSpeed", "1.3.6.1.2.1.31.1.1.1.15", "gauge", &IF),
    ("ifPromiscuousMode", "1.3.6.1.2.1.31.1.1.1.16", "gauge", &IF),
    (
        "ifConnectorPresent",
        "1.3.6.1.2.1.31.1.1.1.17",
        "gauge",
        &IF,
    ),
    (
        "ifCounterDiscontinuityTime",
        "1.3.6.1.2.1.31.1.1.1.19",
        "gauge",
        &IF,
    ),
    (
        "hrProcessorLoad",
        "1.3.6.1.2.1.25.3.3.1.2",
        "gauge",
        &PROCESSOR,
    ),
    (
        "hrStorageIndex",
        "1.3.6.1.2.1.25.2.3.1.1",
        "gauge",
        &STORAGE,
    ),
    (
        "hrStorageType",
        "1.3.6.1.2.1.25.2.3.1.2",
        "DisplayString",
        &STORAGE,
    ),
    (
        "hrStorageAllocationUnits",
        "1.3.6.1.2.1.25.2.3.1.4",
        "gauge",
        &STORAGE,
    ),
    ("hrStorageSize", "1.3.6.1.2.1.25.2.3.1.5", "gauge", &STORAGE),
    ("hrStorageUsed", "1.3.6.1.2.1.25.2.3.1.6", "gauge", &STORAGE),
    (
        "hrStorageAllocationFailures",
        "1.3.6.1.2.1.25.2.3.1.7",
        "counter",
        &STORAGE,
    ),
];

/// The `snmp.yml` (0.21 format) with one module, [`MODULE`], walking `roots` with `config`'s
/// timeout, retries and max-repetitions and the v2c `community`.
pub fn config_yaml(roots: &[Oid], config: &SnmpConfig, community: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Written by steward-bench snmp.\n{MODULE}:\n  walk:");
    for root in roots {
        let _ = writeln!(out, "  - {root}");
    }
    let _ = writeln!(
        out,
        "  version: 2\n  max_repetitions: {}\n  retries: {}\n  timeout: {}ms\n  auth:\n    community: {community}\n  metrics:",
        config.max_repetitions, config.retries, config.timeout_ms
    );
    for (name, oid, kind, labels) in METRICS {
        let _ = writeln!(out, "  - name: {name}\n    oid: {oid}\n    type: {kind}");
        if labels.index.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "    indexes:\n    - labelname: {}\n      type: gauge",
            labels.index
        );
        if labels.lookups.is_empty() {
            continue;
        }
        let _ = writeln!(out, "    lookups:");
        for (label, lookup_oid) in labels.lookups {
            let _ = writeln!(
                out,
                "    - labels:\n      - {}\n      labelname: {label}\n      oid: {lookup_oid}\n      type: DisplayString",
                labels.index
            );
        }
    }
    out
}

/// A running exporter.
#[derive(Debug)]
pub struct Exporter {
    pub proc: Proc,
    port: u16,
}

impl Exporter {
    /// Writes `yaml` to `dir/snmp.yml`, starts the exporter on a free loopback port and waits
    /// until it listens.
    pub fn start(binary: &Path, yaml: &str, dir: &Path) -> Result<Exporter> {
        let config = dir.join("snmp.yml");
        fs::write(&config, yaml).with_context(|| format!("cannot write {}", config.display()))?;
        let port = peers::free_port()?;
        let args = vec![
            format!("--config.file={}", config.display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--log.level=warn".to_string(),
        ];
        let mut proc = Proc::spawn(
            "prometheus-snmp-exporter",
            binary,
            &args,
            &dir.join("snmp_exporter.log"),
        )?;
        proc.wait_for_port(port, Duration::from_secs(10))?;
        Ok(Exporter { proc, port })
    }

    /// One scrape of `target` with [`MODULE`], as Prometheus makes it.
    pub fn scrape(&self, target: SocketAddr) -> Result<Scrape> {
        let body = peers::http_get(self.port, &format!("/snmp?target={target}&module={MODULE}"))?;
        parse_scrape(&String::from_utf8_lossy(&body))
    }
}

/// What one scrape's own metrics say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scrape {
    /// `snmp_scrape_pdus_returned`: varbinds the walks returned (inside the walked subtrees).
    pub varbinds: u64,
    /// `snmp_scrape_packets_sent`: requests, retries included.
    pub packets_sent: u64,
    /// `snmp_scrape_packets_retried`.
    pub packets_retried: u64,
    /// Samples exposed, the exporter's own `snmp_scrape_*` left out.
    pub samples: u64,
}

/// Reads a scrape's exposition text. A scrape without `snmp_scrape_pdus_returned`, or with
/// `snmp_error` (the exporter's sign of a failed walk), is an error.
pub fn parse_scrape(text: &str) -> Result<Scrape> {
    let mut scrape = Scrape::default();
    let mut saw_pdus = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = match line.rsplit_once(' ') {
            Some((series, value)) => (series.split('{').next().unwrap_or(series), value),
            None => bail!("exposition line without a value: {line:?}"),
        };
        let number = || -> Result<u64> {
            let parsed: f64 = value
                .parse()
                .with_context(|| format!("{name} is not a number: {value:?}"))?;
            if !(parsed.is_finite() && parsed >= 0.0) {
                bail!("{name} is {value}");
            }
            Ok(parsed as u64)
        };
        match name {
            "snmp_error" => bail!("the exporter reported a failed scrape: {line}"),
            "snmp_scrape_pdus_returned" => {
                scrape.varbinds = number()?;
                saw_pdus = true;
            }
            "snmp_scrape_packets_sent" => scrape.packets_sent = number()?,
            "snmp_scrape_packets_retried" => scrape.packets_retried = number()?,
            other if other.starts_with("snmp_scrape_") => {}
            _ => scrape.samples += 1,
        }
    }
    if !saw_pdus {
        let start: String = text.chars().take(300).collect();
        return Err(anyhow!(
            "the scrape has no snmp_scrape_pdus_returned; it began: {start:?}"
        ));
    }
    Ok(scrape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_collector::snmp::mib;

    const SCRAPE: &str = "# HELP ifInOctets \n# TYPE ifInOctets counter\n\
        ifInOctets{ifAlias=\"\",ifDescr=\"eth0\",ifIndex=\"4\",ifName=\"eth0\"} 4.94484652e+08\n\
        ifInOctets{ifAlias=\"\",ifDescr=\"lo\",ifIndex=\"1\",ifName=\"lo\"} 1.2394942e+07\n\
        # HELP snmp_scrape_duration_seconds Total SNMP time scrape took (walk and processing).\n\
        # TYPE snmp_scrape_duration_seconds gauge\nsnmp_scrape_duration_seconds 0.001585995\n\
        snmp_scrape_packets_retried 0\nsnmp_scrape_packets_sent 31\n\
        snmp_scrape_pdus_returned 265\nsnmp_scrape_walk_duration_seconds 0.001406177\n\
        sysDescr{sysDescr=\"Linux vm 6.18 #1 SMP x86_64\"} 1\nsysUpTime 1460\n";

    #[test]
    fn a_scrape_reports_its_varbinds_packets_and_samples() {
        let scrape = parse_scrape(SCRAPE).unwrap();
        assert_eq!(
            scrape,
            Scrape {
                varbinds: 265,
                packets_sent: 31,
                packets_retried: 0,
                samples: 4,
            }
        );
    }

    #[test]
    fn a_failed_or_foreign_scrape_is_an_error() {
        let failed = "# HELP snmp_error Error scraping target\nsnmp_error 0\n";
        let error = parse_scrape(failed).unwrap_err().to_string();
        assert!(error.contains("failed scrape"), "{error}");
        let error = parse_scrape("up 1\n").unwrap_err().to_string();
        assert!(error.contains("snmp_scrape_pdus_returned"), "{error}");
        assert!(parse_scrape("snmp_scrape_pdus_returned x\n").is_err());
        assert!(parse_scrape("snmp_scrape_pdus_returned\n").is_err());
    }

    #[test]
    fn the_module_walks_exactly_what_steward_walks_with_its_settings() {
        let roots = mib::all_roots();
        let config = SnmpConfig::default();
        let yaml = config_yaml(&roots, &config, "sekrit");
        let walked: Vec<&str> = yaml
            .lines()
            .skip_while(|l| *l != "  walk:")
            .skip(1)
            .take_while(|l| l.starts_with("  - "))
            .map(|l| l.trim_start_matches("  - "))
            .collect();
        let expected: Vec<String> = roots.iter().map(ToString::to_string).collect();
        assert_eq!(walked, expected);
        assert!(yaml.contains("  max_repetitions: 25\n  retries: 2\n  timeout: 2000ms\n"));
        assert!(yaml.contains("  auth:\n    community: sekrit\n"));
        // Every metric lies under a walked root, so none is defined for nothing.
        for (name, oid, _, _) in METRICS {
            let oid: Oid = oid.parse().unwrap();
            assert!(
                roots.iter().any(|r| oid.starts_with(r)),
                "{name} is not walked"
            );
        }
        // Interface metrics carry the three if_mib lookups.
        let in_octets = yaml
            .split("  - name: ")
            .find(|m| m.starts_with("ifInOctets\n"));
        let in_octets = in_octets.unwrap();
        for label in ["ifAlias", "ifDescr", "ifName"] {
            assert!(
                in_octets.contains(&format!("labelname: {label}")),
                "{in_octets}"
            );
        }
    }
}
