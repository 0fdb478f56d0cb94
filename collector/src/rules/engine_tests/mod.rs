//! Engine semantics, one behaviour per test, time driven by a [`ManualClock`] (no sleeping).
//! Flapping and the event lifecycle (reload, instances and CIs going away, restart) have
//! their own files.

mod flapping;
mod lifecycle;

use std::sync::Arc;

use super::{
    Cause, CiFacts, Engine, EventState, ManualClock, Metric, RuleSet, Sample, Severity, Transition,
};

pub(super) const T0: i64 = 1_700_000_000_000;

pub(super) struct Harness {
    pub engine: Engine,
    pub clock: Arc<ManualClock>,
    pub ci: CiFacts,
}

/// An engine over the rules in `toml` (no defaults), at T0, with one server CI "web-1".
pub(super) fn harness(toml: &str) -> Harness {
    let clock = Arc::new(ManualClock::new(T0));
    let rules = RuleSet::parse(toml, "test.toml").unwrap();
    Harness {
        engine: Engine::new(rules, clock.clone()),
        clock,
        ci: CiFacts {
            id: 1,
            name: "web-1".into(),
            class: "server".into(),
            tags: vec!["prod".into()],
            services: vec!["web-shop".into()],
        },
    }
}

impl Harness {
    pub fn at(&mut self, secs: i64) -> &mut Harness {
        self.clock.set_ms(T0 + secs * 1000);
        self
    }

    pub fn fs(&mut self, mount: &str, value: f64) -> Vec<Transition> {
        let sample = Sample::new(Metric::FilesystemUsedPct, mount, value);
        self.engine.observe(&self.ci, &[sample])
    }

    pub fn cpu(&mut self, value: f64) -> Vec<Transition> {
        let sample = Sample::new(Metric::CpuUsagePct, "", value);
        self.engine.observe(&self.ci, &[sample])
    }

    pub fn open_states(&self) -> Vec<(String, EventState, Severity)> {
        let mut open: Vec<_> = self
            .engine
            .open()
            .map(|(key, status)| (key.instance.clone(), status.state, status.severity))
            .collect();
        open.sort_by(|a, b| a.0.cmp(&b.0));
        open
    }
}

/// The (from, to) of each transition.
pub(super) fn moves(transitions: &[Transition]) -> Vec<(Option<EventState>, EventState)> {
    transitions.iter().map(|t| (t.from, t.to)).collect()
}

use EventState::{Firing, Pending, Resolved};

pub(super) const FS: &str = r#"
[[rule]]
name = "fs"
metric = "filesystem.used_pct"
op = ">="
warning = 90
critical = 95
recovery = 85
summary = "{instance} on {ci} at {value}% ({severity} >= {threshold})"
"#;

pub(super) const CPU_HOLD: &str = r#"
[[rule]]
name = "cpu"
metric = "cpu.usage_pct"
op = ">="
warning = 95
for_secs = 600
"#;

// --- one event per key -------------------------------------------------------------------

#[test]
fn one_event_per_rule_ci_and_instance() {
    let mut h = harness(FS);
    assert_eq!(moves(&h.fs("/var", 91.0)), [(None, Firing)]);
    assert_eq!(
        moves(&h.fs("/home", 92.0)),
        [(None, Firing)],
        "another instance, another event"
    );
    assert!(
        h.at(60).fs("/var", 93.0).is_empty(),
        "still bad: no new event"
    );
    assert_eq!(h.open_states().len(), 2);
}

#[test]
fn good_values_hold_no_state() {
    let mut h = harness(FS);
    for (i, mount) in ["/", "/var", "/home"].iter().enumerate() {
        h.at(i as i64).fs(mount, 40.0);
    }
    let stats = h.engine.stats();
    assert_eq!(
        (stats.instances, stats.keys, stats.series_samples),
        (0, 0, 0)
    );
}

#[test]
fn transitions_carry_value_threshold_time_and_rendered_summary() {
    let mut h = harness(FS);
    let fired = h.at(5).fs("/var", 96.5);
    let t = &fired[0];
    assert_eq!(
        (t.rule.as_str(), t.ci_id, t.instance.as_str()),
        ("fs", 1, "/var")
    );
    assert_eq!(
        (t.severity, t.value, t.threshold, t.at_ms),
        (Severity::Critical, 96.5, 95.0, T0 + 5000)
    );
    assert_eq!(t.summary, "/var on web-1 at 96.5% (critical >= 95)");
    assert_eq!(t.cause, Cause::Value);
    let resolved = h.at(10).fs("/var", 10.0);
    assert_eq!(
        (resolved[0].threshold, resolved[0].severity),
        (85.0, Severity::Critical),
        "recovery threshold, last severity"
    );
}

#[test]
fn non_finite_values_are_ignored() {
    let mut h = harness(FS);
    h.fs("/var", 96.0);
    assert!(h.at(1).fs("/var", f64::NAN).is_empty());
    assert!(h.at(2).fs("/var", f64::INFINITY).is_empty());
    assert_eq!(
        h.open_states(),
        [("/var".into(), Firing, Severity::Critical)]
    );
}

// --- hold-down ----------------------------------------------------------------------------

#[test]
fn hold_down_goes_pending_then_firing_after_for_secs_continuously_bad() {
    let mut h = harness(CPU_HOLD);
    assert_eq!(moves(&h.cpu(99.0)), [(None, Pending)]);
    assert!(h.at(300).cpu(97.0).is_empty());
    assert!(h.at(599).cpu(96.0).is_empty());
    let fired = h.at(600).cpu(98.0);
    assert_eq!(moves(&fired), [(Some(Pending), Firing)]);
    assert_eq!(fired[0].cause, Cause::Value);
}

#[test]
fn a_good_value_during_hold_down_resolves_the_pending_event_and_restarts_it() {
    let mut h = harness(CPU_HOLD);
    h.cpu(99.0);
    let cancelled = h.at(300).cpu(50.0);
    assert_eq!(
        moves(&cancelled),
        [(Some(Pending), Resolved)],
        "a blip: never a ticket"
    );
    assert_eq!(moves(&h.at(400).cpu(99.0)), [(None, Pending)]);
    assert!(
        h.at(900).cpu(99.0).is_empty(),
        "600 s from the first bad value is not enough"
    );
    assert_eq!(moves(&h.at(1000).cpu(99.0)), [(Some(Pending), Firing)]);
}

#[test]
fn tick_fires_a_pending_event_when_its_hold_down_elapses() {
    let mut h = harness(CPU_HOLD);
    h.cpu(99.0);
    h.at(599);
    assert!(h.engine.tick().is_empty());
    h.at(600);
    let fired = h.engine.tick();
    assert_eq!(moves(&fired), [(Some(Pending), Firing)]);
    assert_eq!(
        (fired[0].cause, fired[0].value),
        (Cause::HoldDownElapsed, 99.0)
    );
    assert_eq!(fired[0].summary, "cpu on web-1");
}

#[test]
fn a_pending_event_takes_the_severity_of_the_latest_value() {
    let mut h = harness(
        r#"
[[rule]]
name = "fs-slow"
metric = "filesystem.used_pct"
op = ">="
warning = 90
critical = 95
for_secs = 60
"#,
    );
    h.fs("/var", 91.0);
    h.at(30).fs("/var", 97.0);
    assert_eq!(
        h.open_states(),
        [("/var".into(), Pending, Severity::Critical)]
    );
    let fired = h.at(60).fs("/var", 97.0);
    assert_eq!(
        (fired[0].to, fired[0].severity),
        (Firing, Severity::Critical)
    );
}

// --- severity -----------------------------------------------------------------------------

#[test]
fn severity_escalates_and_de_escalates_within_the_same_event() {
    let mut h = harness(FS);
    h.fs("/var", 91.0);
    let up = h.at(60).fs("/var", 96.0);
    assert_eq!(moves(&up), [(Some(Firing), Firing)]);
    assert_eq!(
        (up[0].severity, up[0].previous_severity),
        (Severity::Critical, Some(Severity::Warning))
    );
    let down = h.at(120).fs("/var", 92.0);
    assert_eq!(
        (down[0].severity, down[0].previous_severity),
        (Severity::Warning, Some(Severity::Critical))
    );
    assert_eq!(h.open_states().len(), 1);
}

// --- hysteresis and clear_for -------------------------------------------------------------

#[test]
fn between_recovery_and_threshold_the_event_stays_firing() {
    let mut h = harness(FS);
    h.fs("/var", 91.0);
    assert!(
        h.at(60).fs("/var", 88.0).is_empty(),
        "below warning, above recovery"
    );
    assert!(h.at(120).fs("/var", 85.5).is_empty());
    assert_eq!(
        moves(&h.at(180).fs("/var", 84.9)),
        [(Some(Firing), Resolved)]
    );
}

#[test]
fn the_hysteresis_band_de_escalates_critical_to_the_lowest_severity() {
    let mut h = harness(FS);
    h.fs("/var", 97.0);
    let band = h.at(60).fs("/var", 87.0);
    assert_eq!(
        (band[0].severity, band[0].previous_severity),
        (Severity::Warning, Some(Severity::Critical))
    );
}

#[test]
fn a_value_bouncing_around_the_threshold_within_hysteresis_opens_one_event() {
    let mut h = harness(FS);
    let mut all = Vec::new();
    for (i, value) in [91.0, 89.0, 90.5, 88.0, 91.0, 86.0, 90.0]
        .into_iter()
        .enumerate()
    {
        all.extend(h.at(i as i64 * 60).fs("/var", value));
    }
    assert_eq!(moves(&all), [(None, Firing)]);
}

const CLEAR_FOR: &str = r#"
[[rule]]
name = "fs"
metric = "filesystem.used_pct"
op = ">="
warning = 90
recovery = 85
clear_for_secs = 300
"#;

#[test]
fn clear_for_needs_the_value_recovered_for_that_long() {
    let mut h = harness(CLEAR_FOR);
    h.fs("/var", 95.0);
    assert!(h.at(60).fs("/var", 50.0).is_empty(), "clearing starts");
    assert!(h.at(200).fs("/var", 50.0).is_empty());
    let resolved = h.at(360).fs("/var", 50.0);
    assert_eq!(moves(&resolved), [(Some(Firing), Resolved)]);
}

#[test]
fn a_value_back_past_recovery_restarts_the_clear_delay() {
    let mut h = harness(CLEAR_FOR);
    h.fs("/var", 95.0);
    h.at(60).fs("/var", 50.0);
    assert!(
        h.at(200).fs("/var", 87.0).is_empty(),
        "in the band: clearing stops"
    );
    assert!(
        h.at(300).fs("/var", 50.0).is_empty(),
        "clearing restarts at 300 s"
    );
    h.at(599);
    assert!(h.engine.tick().is_empty());
    h.at(600);
    let resolved = h.engine.tick();
    assert_eq!(moves(&resolved), [(Some(Firing), Resolved)]);
    assert_eq!(resolved[0].cause, Cause::ClearElapsed);
}

// --- aggregation ----------------------------------------------------------------------------

#[test]
fn avg_over_a_window_ignores_a_single_spike() {
    let mut h = harness(
        r#"
[[rule]]
name = "cpu-avg"
metric = "cpu.usage_pct"
aggregation = "avg"
window_secs = 300
op = ">="
warning = 90
"#,
    );
    let mut all = Vec::new();
    for (i, value) in [20.0, 20.0, 100.0, 20.0].into_iter().enumerate() {
        all.extend(h.at(i as i64 * 60).cpu(value));
    }
    assert!(all.is_empty(), "a spike averages out");
    for i in 4..10 {
        all.extend(h.at(i * 60).cpu(99.0));
    }
    assert_eq!(moves(&all), [(None, Firing)]);
    assert!(
        h.engine.stats().series_samples <= 7,
        "only the window is kept"
    );
}

#[test]
fn rate_of_a_counter_fires_on_growth_and_ignores_a_reset() {
    let mut h = harness(
        r#"
[[rule]]
name = "errors"
metric = "interface.errors_total"
aggregation = "rate"
op = ">="
warning = 5
"#,
    );
    let counter = |h: &mut Harness, secs: i64, value: f64| {
        h.at(secs);
        let sample = Sample::new(Metric::InterfaceErrorsTotal, "Gi1/0/1", value);
        h.engine.observe(&h.ci, &[sample])
    };
    assert!(
        counter(&mut h, 0, 1000.0).is_empty(),
        "one sample: no rate yet"
    );
    assert!(counter(&mut h, 10, 1010.0).is_empty(), "1/s");
    assert_eq!(
        moves(&counter(&mut h, 20, 1110.0)),
        [(None, Firing)],
        "10/s"
    );
    assert!(
        counter(&mut h, 30, 3.0).is_empty(),
        "device restart: no value, no change"
    );
    assert_eq!(
        moves(&counter(&mut h, 40, 4.0)),
        [(Some(Firing), Resolved)],
        "0.1/s"
    );
}

// --- selectors ------------------------------------------------------------------------------

const PROD_ONLY: &str = r#"
[[rule]]
name = "fs-prod-var"
metric = "filesystem.used_pct"
selector = { class = "server", tags = ["prod"], service = "web-shop", name = "web-*", instance = "/var*" }
op = ">="
warning = 90
"#;

#[test]
fn selectors_pick_ci_and_instance() {
    let mut h = harness(PROD_ONLY);
    assert!(h.fs("/home", 99.0).is_empty(), "instance not selected");
    assert_eq!(moves(&h.fs("/var/lib", 99.0)), [(None, Firing)]);
    let mut other = h.ci.clone();
    other.id = 2;
    other.class = "workstation".into();
    assert!(
        h.engine
            .observe(
                &other,
                &[Sample::new(Metric::FilesystemUsedPct, "/var", 99.0)]
            )
            .is_empty()
    );
}

#[test]
fn a_ci_that_stops_matching_has_its_events_resolved() {
    let mut h = harness(PROD_ONLY);
    h.fs("/var", 99.0);
    h.ci.tags.clear();
    h.at(60);
    let resolved = h.engine.observe(&h.ci, &[]);
    assert_eq!(moves(&resolved), [(Some(Firing), Resolved)]);
    assert_eq!(resolved[0].cause, Cause::Deselected);
}

#[test]
fn a_renamed_ci_keeps_its_events_and_new_summaries_use_the_new_name() {
    let mut h = harness(FS);
    h.fs("/var", 91.0);
    h.ci.name = "web-1.example.com".into();
    let up = h.at(60).fs("/var", 96.0);
    assert_eq!(moves(&up), [(Some(Firing), Firing)]);
    assert!(
        up[0].summary.contains("web-1.example.com"),
        "{}",
        up[0].summary
    );
}
