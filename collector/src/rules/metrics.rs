//! The metrics rules can be written against: one table, [`METRICS`]. The collector produces
//! observations ([`super::Sample`]) for exactly these names, from agent reports, SNMP polls,
//! inventories and its own timer; a rule naming anything else is refused when it loads.
//!
//! A metric is identified in samples by the [`Metric`] enum (one byte, no string hashing on
//! the hot path); its name is what rule files use. The enum and the table are generated from
//! the single list below, so they cannot drift apart.

use std::fmt;

/// What kind of value a metric carries, which decides the aggregations that make sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A level that goes up and down (a percentage, a count of days).
    Gauge,
    /// A total that only grows, except when the device restarts and it starts again from
    /// zero. Only `rate` makes sense on it.
    Counter,
    /// 1 (true) or 0 (false).
    Flag,
}

impl MetricKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Gauge => "gauge",
            MetricKind::Counter => "counter",
            MetricKind::Flag => "flag",
        }
    }
}

/// One row of [`METRICS`].
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    pub metric: Metric,
    /// The name rule files use.
    pub name: &'static str,
    /// Unit of the value, for people (`%`, `errors/s`, ...).
    pub unit: &'static str,
    pub kind: MetricKind,
    /// What a sample's `instance` is for this metric; `None` when the metric has one value per
    /// CI (instance is the empty string).
    pub instance: Option<&'static str>,
    /// The values a sample can take, when bounded: a threshold outside them can never be
    /// crossed, so a rule with one is refused.
    pub range: Option<(f64, f64)>,
    /// Where the value comes from and what it means.
    pub about: &'static str,
}

macro_rules! metrics {
    ($( $variant:ident {
        name: $name:literal, unit: $unit:literal, kind: $kind:ident,
        instance: $instance:expr, range: $range:expr, about: $about:literal $(,)?
    } )*) => {
        /// A known metric. `Metric::X as usize` is its row in [`METRICS`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Metric { $( $variant, )* }

        /// Every known metric, in [`Metric`] order.
        pub const METRICS: &[MetricDef] = &[ $( MetricDef {
            metric: Metric::$variant,
            name: $name,
            unit: $unit,
            kind: MetricKind::$kind,
            instance: $instance,
            range: $range,
            about: $about,
        }, )* ];
    };
}

metrics! {
    AgentSilentIntervals {
        name: "agent.silent_intervals", unit: "intervals", kind: Gauge, instance: None,
        range: None,
        about: "Seconds since the agent's last report divided by its report interval; sent by \
                the collector's timer for every agent CI, and as the fresh (small) value when a \
                report arrives, so an agent that comes back clears the event.",
    }
    CpuUsagePct {
        name: "cpu.usage_pct", unit: "%", kind: Gauge, instance: None,
        range: Some((0.0, 100.0)),
        about: "Total CPU use over the agent's last interval, all cores (agent report).",
    }
    MemoryAvailablePct {
        name: "memory.available_pct", unit: "%", kind: Gauge, instance: None,
        range: Some((0.0, 100.0)),
        about: "Available memory as a share of total memory (agent report).",
    }
    FilesystemUsedPct {
        name: "filesystem.used_pct", unit: "%", kind: Gauge, instance: Some("mount point"),
        range: Some((0.0, 100.0)),
        about: "Used space as a share of the space usable by unprivileged users, i.e. \
                used / (used + available) (agent report).",
    }
    SnmpUnreachable {
        name: "snmp.unreachable", unit: "", kind: Flag, instance: None,
        range: Some((0.0, 1.0)),
        about: "1 when the last SNMP poll of the device got no answer (timeout, \
                authentication failure), 0 when it answered (SNMP poll).",
    }
    InterfaceDown {
        name: "interface.down", unit: "", kind: Flag, instance: Some("interface name"),
        range: Some((0.0, 1.0)),
        about: "1 when an interface is administratively up but operationally down, else 0 \
                (SNMP poll, agent report).",
    }
    InterfaceUtilPct {
        name: "interface.util_pct", unit: "%", kind: Gauge, instance: Some("interface name"),
        range: Some((0.0, 100.0)),
        about: "The busier direction's utilisation, max(in, out) bits per second over the \
                interface speed (SNMP poll; agent report when the speed is known).",
    }
    InterfaceErrorsPerSec {
        name: "interface.errors_per_sec", unit: "errors/s", kind: Gauge,
        instance: Some("interface name"), range: None,
        about: "Input plus output errors per second since the previous poll or report.",
    }
    InterfaceErrorsTotal {
        name: "interface.errors_total", unit: "errors", kind: Counter,
        instance: Some("interface name"), range: None,
        about: "Input plus output error counter as the device reports it (ifInErrors + \
                ifOutErrors; SNMP poll). Use with aggregation \"rate\".",
    }
    WarrantyDaysLeft {
        name: "warranty.days_left", unit: "days", kind: Gauge, instance: None,
        range: None,
        about: "Days until the CI's warranty ends, negative once it has ended (imported \
                warranty data; sent daily and when the data changes).",
    }
    SoftwareInstalled {
        name: "software.installed", unit: "", kind: Flag, instance: Some("package name"),
        range: Some((0.0, 1.0)),
        about: "1 for each package installed on the CI (inventory); removed packages are \
                resolved with Engine::observe_complete or Engine::forget_instance.",
    }
}

impl Metric {
    /// This metric's row in [`METRICS`].
    pub fn def(self) -> &'static MetricDef {
        // The macro emits the enum and the table from one list in one order, so the
        // discriminant is always a valid index (a unit test checks it as well).
        &METRICS[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.def().name
    }

    pub fn kind(self) -> MetricKind {
        self.def().kind
    }

    /// Looks a metric up by the name rule files use.
    pub fn from_name(name: &str) -> Option<Metric> {
        METRICS
            .iter()
            .find(|def| def.name == name)
            .map(|def| def.metric)
    }

    /// Every metric, in table order.
    pub fn all() -> impl Iterator<Item = Metric> {
        METRICS.iter().map(|def| def.metric)
    }

    /// The known names, comma-separated, for error messages.
    pub fn known_names() -> String {
        METRICS
            .iter()
            .map(|def| def.name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows_are_in_enum_order() {
        for (index, def) in METRICS.iter().enumerate() {
            assert_eq!(def.metric as usize, index, "{}", def.name);
            assert_eq!(def.metric.def().name, def.name);
        }
    }

    #[test]
    fn names_are_unique_and_look_up_both_ways() {
        let mut names: Vec<_> = METRICS.iter().map(|def| def.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METRICS.len());
        for metric in Metric::all() {
            assert_eq!(Metric::from_name(metric.name()), Some(metric));
        }
        assert_eq!(Metric::from_name("cpu.usage"), None);
    }

    #[test]
    fn flags_are_bounded_to_zero_and_one() {
        for def in METRICS.iter().filter(|def| def.kind == MetricKind::Flag) {
            assert_eq!(def.range, Some((0.0, 1.0)), "{}", def.name);
        }
    }

    #[test]
    fn the_issue_metrics_are_all_known() {
        for name in [
            "agent.silent_intervals",
            "filesystem.used_pct",
            "memory.available_pct",
            "cpu.usage_pct",
            "snmp.unreachable",
            "interface.down",
            "interface.util_pct",
            "interface.errors_per_sec",
            "warranty.days_left",
            "software.installed",
        ] {
            assert!(Metric::from_name(name).is_some(), "{name}");
        }
    }
}
