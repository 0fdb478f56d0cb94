//! What the rules engine observes, from each source: an agent's metrics report, an SNMP
//! device's poll, the time since a host last reported, warranty dates and installed software.
//! Pure functions, one per source, producing the metrics of the rules' table (`rules::metrics`).

use steward_shared::v1::Metrics;

use crate::rules::{Metric, Sample};

/// The engine's sample type: one value of one metric and instance (a mount point, an
/// interface, a package).
pub type Observed = Sample;

fn obs(metric: Metric, instance: impl Into<String>, value: f64) -> Observed {
    Sample::new(metric, instance, value)
}

fn pct(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 * 100.0 / whole as f64)
}

/// An agent's metrics report: CPU, memory available, each filesystem's use.
pub fn from_metrics(metrics: &Metrics) -> Vec<Observed> {
    let mut out = Vec::with_capacity(2 + metrics.filesystems.len());
    out.push(obs(
        Metric::CpuUsagePct,
        "",
        f64::from(metrics.cpu.total_pct),
    ));
    if let Some(available) = pct(metrics.memory.available, metrics.memory.total) {
        out.push(obs(Metric::MemoryAvailablePct, "", available));
    }
    for fs in &metrics.filesystems {
        // Used as `df` computes it: of what an unprivileged user can use (used + available),
        // so the root-reserved blocks do not hide a full filesystem. Summed in u128: the values
        // come off the wire, and two near u64::MAX overflowed (found by the `ingest` fuzz target).
        let whole = u128::from(fs.used_bytes) + u128::from(fs.available_bytes);
        if let Some(used) = (whole > 0).then(|| fs.used_bytes as f64 * 100.0 / whole as f64) {
            out.push(obs(Metric::FilesystemUsedPct, fs.mount.clone(), used));
        }
    }
    out
}

/// A device's poll sample as stored (see `snmp::poller::device_poll`): CPU, each storage's
/// use, and per interface whether it is down while enabled, its utilisation and error rate.
pub fn from_device_sample(sample: &serde_json::Value) -> Vec<Observed> {
    let mut out = vec![obs(Metric::SnmpUnreachable, "", 0.0)];
    if let Some(cpu) = sample["cpu_pct"].as_f64() {
        out.push(obs(Metric::CpuUsagePct, "", cpu));
    }
    for s in sample["storage"].as_array().into_iter().flatten() {
        let kind = s["kind"].as_str().unwrap_or("");
        if let (Some(used), Some(descr)) = (s["used_pct"].as_f64(), s["descr"].as_str())
            && matches!(kind, "fixedDisk" | "networkDisk" | "flashMemory")
        {
            out.push(obs(Metric::FilesystemUsedPct, descr, used));
        }
    }
    for i in sample["interfaces"].as_array().into_iter().flatten() {
        let Some(name) = i["name"].as_str() else {
            continue;
        };
        let admin_up = i["admin_status"].as_str() == Some("up");
        let oper = i["oper_status"].as_str().unwrap_or("");
        // `dormant` and `notPresent` ports are not failures; `down` (or its lower layer down)
        // with admin up is.
        let down = admin_up && matches!(oper, "down" | "lowerLayerDown");
        out.push(obs(
            Metric::InterfaceDown,
            name,
            if down { 1.0 } else { 0.0 },
        ));
        let util = [i["in_util_pct"].as_f64(), i["out_util_pct"].as_f64()]
            .into_iter()
            .flatten()
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
        if let Some(util) = util {
            out.push(obs(Metric::InterfaceUtilPct, name, util));
        }
        let errors: Option<f64> = [i["in_errors_ps"].as_f64(), i["out_errors_ps"].as_f64()]
            .into_iter()
            .flatten()
            .fold(None, |s: Option<f64>, v| Some(s.unwrap_or(0.0) + v));
        if let Some(errors) = errors {
            out.push(obs(Metric::InterfaceErrorsPerSec, name, errors));
        }
    }
    out
}

/// An SNMP device that did not answer.
pub fn unreachable() -> Vec<Observed> {
    vec![obs(Metric::SnmpUnreachable, "", 1.0)]
}

/// How many of its own reporting intervals a host has been silent.
pub fn silence(now_ms: i64, last_report_ms: i64, interval_secs: u32) -> Observed {
    let interval_ms = f64::from(interval_secs.max(1)) * 1000.0;
    obs(
        Metric::AgentSilentIntervals,
        "",
        ((now_ms - last_report_ms).max(0) as f64) / interval_ms,
    )
}

/// Days from `today` to a warranty's end (negative once expired), if it has a valid date.
pub fn warranty(today: time::Date, warranty_end: &str) -> Option<Observed> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let end = time::Date::parse(warranty_end.trim(), &format).ok()?;
    Some(obs(
        Metric::WarrantyDaysLeft,
        "",
        f64::from((end - today).whole_days() as i32),
    ))
}

/// One observation per installed package (value 1), for deny-list rules on the instance.
pub fn software<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<Observed> {
    names
        .into_iter()
        .map(|name| obs(Metric::SoftwareInstalled, name, 1.0))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use steward_shared::v1::{Cpu, Filesystem, Memory};

    #[test]
    fn an_agent_report_gives_cpu_memory_and_filesystems_as_df_counts_them() {
        let metrics = Metrics {
            cpu: Cpu {
                total_pct: 97.5,
                ..Default::default()
            },
            memory: Memory {
                total: 1000,
                available: 40,
                ..Default::default()
            },
            filesystems: vec![Filesystem {
                mount: "/var".into(),
                // 5 % reserved for root: 90 used + 5 available of 100 is 94.7 % as df says.
                total_bytes: 100,
                used_bytes: 90,
                available_bytes: 5,
                ..Default::default()
            }],
            ..Default::default()
        };
        let seen = from_metrics(&metrics);
        assert_eq!(seen[0], obs(Metric::CpuUsagePct, "", 97.5));
        assert_eq!(seen[1], obs(Metric::MemoryAvailablePct, "", 4.0));
        assert_eq!(seen[2].instance, "/var");
        assert!((seen[2].value - 94.736).abs() < 0.01, "{}", seen[2].value);
    }

    #[test]
    fn a_device_sample_gives_down_ports_utilisation_and_errors() {
        let sample = serde_json::json!({
            "cpu_pct": 12.0,
            "interfaces": [
                { "name": "Gi1/0/1", "admin_status": "up", "oper_status": "down" },
                { "name": "Gi1/0/2", "admin_status": "down", "oper_status": "down" },
                { "name": "Gi1/0/3", "admin_status": "up", "oper_status": "up",
                  "in_util_pct": 91.0, "out_util_pct": 20.0, "in_errors_ps": 0.5, "out_errors_ps": 1.5 },
            ],
        });
        let seen = from_device_sample(&sample);
        let find = |metric: Metric, instance: &str| {
            seen.iter()
                .find(|o| o.metric == metric && o.instance == instance)
                .map(|o| o.value)
        };
        assert_eq!(find(Metric::SnmpUnreachable, ""), Some(0.0));
        assert_eq!(find(Metric::InterfaceDown, "Gi1/0/1"), Some(1.0));
        assert_eq!(
            find(Metric::InterfaceDown, "Gi1/0/2"),
            Some(0.0),
            "shut down by an admin"
        );
        assert_eq!(find(Metric::InterfaceUtilPct, "Gi1/0/3"), Some(91.0));
        assert_eq!(find(Metric::InterfaceErrorsPerSec, "Gi1/0/3"), Some(2.0));
        assert_eq!(
            find(Metric::InterfaceUtilPct, "Gi1/0/1"),
            None,
            "no rate yet"
        );
    }

    #[test]
    fn silence_warranty_and_software() {
        assert_eq!(silence(190_000, 10_000, 60).value, 3.0);
        let today = time::macros::date!(2026 - 11 - 24);
        assert_eq!(warranty(today, "2027-01-23").unwrap().value, 60.0);
        assert_eq!(warranty(today, "2026-11-20").unwrap().value, -4.0);
        assert!(warranty(today, "soon").is_none());
        assert_eq!(
            software(["telnetd"])[0],
            obs(Metric::SoftwareInstalled, "telnetd", 1.0)
        );
    }
}
