//! Engine semantics, one behaviour per test, time driven by a [`ManualClock`] (no sleeping).

use std::sync::Arc;

use super::{
    Cause, CiFacts, Engine, EventKey, EventState, ManualClock, Metric, RuleSet, Sample, Severity,
    Transition,
};

const T0: i64 = 1_700_000_000_000;

struct Harness {
    engine: Engine,
    clock: Arc<ManualClock>,
    ci: CiFacts,
}

/// An engine over the rules in `toml` (no defaults), at T0, with one server CI "web-1".
fn harness(toml: &str) -> Harness {
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
    fn at(&mut self, secs: i64) -> &mut Harness {
        self.clock.set_ms(T0 + secs * 1000);
        self
    }

    fn fs(&mut self, mount: &str, value: f64) -> Vec<Transition> {
        let sample = Sample::new(Metric::FilesystemUsedPct, mount, value);
        self.engine.observe(&self.ci, &[sample])
    }

    fn cpu(&mut self, value: f64) -> Vec<Transition> {
        let sample = Sample::new(Metric::CpuUsagePct, "", value);
        self.engine.observe(&self.ci, &[sample])
    }

    fn open_states(&self) -> Vec<(String, EventState, Severity)> {
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
fn moves(transitions: &[Transition]) -> Vec<(Option<EventState>, EventState)> {
    transitions.iter().map(|t| (t.from, t.to)).collect()
}

use EventState::{Firing, Flapping, Pending, Resolved};

const FS: &str = r#"
[[rule]]
name = "fs"
metric = "filesystem.used_pct"
op = ">="
warning = 90
critical = 95
recovery = 85
summary = "{instance} on {ci} at {value}% ({severity} >= {threshold})"
"#;

const CPU_HOLD: &str = r#"
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

// --- flapping -----------------------------------------------------------------------------

const FLAPPY: &str = r#"
[[rule]]
name = "link"
metric = "interface.down"
op = ">="
warning = 1
flap_transitions = 3
flap_window_secs = 600
"#;

fn link(h: &mut Harness, secs: i64, down: bool) -> Vec<Transition> {
    h.at(secs);
    let sample = Sample::new(Metric::InterfaceDown, "eth0", if down { 1.0 } else { 0.0 });
    h.engine.observe(&h.ci, &[sample])
}

/// Bounces the link at `start`, `start + 10`, ... `count` times (down, up, down, ...).
fn bounce(h: &mut Harness, start: i64, count: usize) -> Vec<Transition> {
    (0..count)
        .flat_map(|i| link(h, start + 10 * i as i64, i % 2 == 0))
        .collect()
}

#[test]
fn too_many_transitions_within_the_window_become_one_flapping_state() {
    let mut h = harness(FLAPPY);
    let all = bounce(&mut h, 0, 12);
    assert_eq!(
        moves(&all),
        [
            (None, Firing),
            (Some(Firing), Resolved),
            (None, Firing),
            (Some(Firing), Flapping), // the 4th open/close within 600 s: more than 3
        ],
        "then nothing, however often it bounces"
    );
    assert_eq!(all[3].cause, Cause::Flapping);
    assert_eq!(
        h.open_states(),
        [("eth0".into(), Flapping, Severity::Warning)]
    );
}

#[test]
fn flapping_ends_resolved_once_stable_for_the_window() {
    let mut h = harness(FLAPPY);
    bounce(&mut h, 0, 12); // last change at 110 s, link up
    assert!(link(&mut h, 700, false).is_empty(), "590 s stable: not yet");
    h.at(710);
    let ended = h.engine.tick();
    assert_eq!(moves(&ended), [(Some(Flapping), Resolved)]);
    assert_eq!(ended[0].cause, Cause::Stable);
    assert!(h.open_states().is_empty());
}

#[test]
fn flapping_ends_firing_when_it_settles_bad() {
    let mut h = harness(FLAPPY);
    bounce(&mut h, 0, 13); // ends down at 120 s
    let ended = link(&mut h, 720, true);
    assert_eq!(moves(&ended), [(Some(Flapping), Firing)]);
    assert_eq!(
        h.open_states(),
        [("eth0".into(), Firing, Severity::Warning)]
    );
}

#[test]
fn bouncing_while_flapping_extends_it() {
    let mut h = harness(FLAPPY);
    bounce(&mut h, 0, 12);
    assert!(bounce(&mut h, 500, 2).is_empty(), "down at 500, up at 510");
    h.at(720);
    assert!(
        h.engine.tick().is_empty(),
        "only 210 s since the last change"
    );
    h.at(1110);
    assert_eq!(moves(&h.engine.tick()), [(Some(Flapping), Resolved)]);
}

#[test]
fn transitions_spread_beyond_the_window_are_not_flapping() {
    let mut h = harness(FLAPPY);
    let all: Vec<_> = (0..10)
        .flat_map(|i| link(&mut h, i * 400, i % 2 == 0))
        .collect();
    assert!(all.iter().all(|t| t.to != Flapping), "{:?}", moves(&all));
    assert_eq!(all.len(), 10);
}

#[test]
fn flap_detection_off_opens_and_closes_every_time() {
    let mut h = harness(&FLAPPY.replace("flap_transitions = 3", "flap_transitions = 0"));
    let all = bounce(&mut h, 0, 12);
    assert_eq!(all.len(), 12);
    assert!(all.iter().all(|t| t.to != Flapping));
    assert_eq!(h.engine.stats().keys, 0, "nothing kept between events");
}

#[test]
fn cancelled_hold_downs_do_not_count_as_flapping() {
    let mut h = harness(&format!("{FLAPPY}for_secs = 60\n"));
    let all = bounce(&mut h, 0, 20);
    assert!(
        all.iter().all(|t| t.to == Pending || t.to == Resolved),
        "{:?}",
        moves(&all)
    );
    assert!(all.iter().all(|t| t.to != Flapping));
}

#[test]
fn tick_forgets_a_resolved_key_once_its_flap_window_has_passed() {
    let mut h = harness(FLAPPY);
    link(&mut h, 0, true);
    link(&mut h, 10, false);
    assert_eq!(h.engine.stats().keys, 1, "flap history kept");
    h.at(611);
    h.engine.tick();
    assert_eq!(h.engine.stats().keys, 0);
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

// --- rules reload ---------------------------------------------------------------------------

#[test]
fn reload_keeps_events_of_rules_that_still_exist_and_applies_new_thresholds() {
    let mut h = harness(FS);
    h.fs("/var", 91.0);
    let stricter = RuleSet::parse(
        &FS.replace("warning = 90", "warning = 80")
            .replace("recovery = 85", "recovery = 75"),
        "t.toml",
    )
    .unwrap();
    assert!(h.engine.replace_rules(stricter).is_empty());
    assert_eq!(
        h.open_states(),
        [("/var".into(), Firing, Severity::Warning)]
    );
    assert!(
        h.at(60).fs("/var", 80.0).is_empty(),
        "still beyond the new recovery"
    );
    assert_eq!(
        moves(&h.at(120).fs("/var", 70.0)),
        [(Some(Firing), Resolved)]
    );
}

#[test]
fn reload_resolves_events_of_removed_disabled_or_repurposed_rules() {
    for replacement in [
        String::new(),
        format!("{FS}enabled = false\n"),
        FS.replace("filesystem.used_pct", "memory.available_pct")
            .replace(">=", "<")
            .replace("warning = 90\ncritical = 95\nrecovery = 85", "warning = 10"),
    ] {
        let mut h = harness(FS);
        h.fs("/var", 91.0);
        let resolved = h
            .engine
            .replace_rules(RuleSet::parse(&replacement, "t.toml").unwrap());
        assert_eq!(
            moves(&resolved),
            [(Some(Firing), Resolved)],
            "{replacement}"
        );
        assert_eq!(resolved[0].cause, Cause::RuleGone);
        assert!(h.open_states().is_empty());
    }
}

#[test]
fn reload_with_a_narrower_selector_resolves_at_the_next_observe() {
    let mut h = harness(FS);
    h.fs("/home", 91.0);
    let narrower = RuleSet::parse(
        &FS.replace(
            "op = \">=\"",
            "selector = { instance = \"/var*\" }\nop = \">=\"",
        ),
        "t.toml",
    )
    .unwrap();
    assert!(h.engine.replace_rules(narrower).is_empty());
    h.at(60);
    let resolved = h.engine.observe(&h.ci, &[]);
    assert_eq!(resolved[0].cause, Cause::Deselected);
}

// --- instances and CIs going away -----------------------------------------------------------

#[test]
fn forget_instance_resolves_open_and_pending_events() {
    let mut h = harness(&format!("{FS}\n{CPU_HOLD}"));
    h.fs("/mnt/usb", 99.0);
    h.cpu(99.0);
    let gone = h
        .engine
        .forget_instance(1, Some(Metric::FilesystemUsedPct), "/mnt/usb");
    assert_eq!(moves(&gone), [(Some(Firing), Resolved)]);
    assert_eq!(gone[0].cause, Cause::InstanceGone);
    let cpu = h.engine.forget_instance(1, None, "");
    assert_eq!(moves(&cpu), [(Some(Pending), Resolved)]);
    assert_eq!(h.engine.stats().instances, 0);
}

#[test]
fn forget_ci_resolves_everything_it_had_open() {
    let mut h = harness(FS);
    h.fs("/", 99.0);
    h.fs("/var", 91.0);
    let gone = h.engine.forget_ci(1);
    assert_eq!(gone.len(), 2);
    assert!(
        gone.iter()
            .all(|t| t.to == Resolved && t.cause == Cause::CiGone)
    );
    assert_eq!(h.engine.stats().cis, 0);
    assert!(h.engine.forget_ci(1).is_empty(), "twice is harmless");
}

#[test]
fn observe_complete_resolves_instances_missing_from_reported_metrics_only() {
    let mut h = harness(&format!("{FS}\n{CPU_HOLD}"));
    h.engine.observe_complete(
        &h.ci,
        &[
            Sample::new(Metric::FilesystemUsedPct, "/", 99.0),
            Sample::new(Metric::FilesystemUsedPct, "/mnt/usb", 99.0),
            Sample::new(Metric::CpuUsagePct, "", 99.0),
        ],
    );
    h.at(60);
    let next = h
        .engine
        .observe_complete(&h.ci, &[Sample::new(Metric::FilesystemUsedPct, "/", 99.0)]);
    assert_eq!(moves(&next), [(Some(Firing), Resolved)]);
    assert_eq!(
        (next[0].instance.as_str(), next[0].cause),
        ("/mnt/usb", Cause::InstanceGone)
    );
    assert_eq!(h.open_states().len(), 2, "/ and the cpu hold-down stay");
}

// --- restart --------------------------------------------------------------------------------

fn saved(engine: &Engine) -> Vec<(EventKey, super::EventStatus)> {
    engine.open().map(|(k, s)| (k.clone(), s.clone())).collect()
}

#[test]
fn restored_events_continue_where_they_were() {
    let mut h = harness(FS);
    h.fs("/var", 97.0);
    let open = saved(&h.engine);
    let mut after = harness(FS);
    assert!(after.engine.restore(open.clone()).is_empty());
    assert_eq!(saved(&after.engine), open);
    assert!(
        after.at(60).fs("/var", 96.0).is_empty(),
        "same event, same severity"
    );
    assert_eq!(
        moves(&after.at(120).fs("/var", 10.0)),
        [(Some(Firing), Resolved)]
    );
}

#[test]
fn a_restored_pending_event_fires_when_its_original_hold_down_ends() {
    let mut h = harness(CPU_HOLD);
    h.cpu(99.0);
    let open = saved(&h.engine);
    let mut after = harness(CPU_HOLD);
    after.engine.restore(open);
    after.at(600);
    assert_eq!(moves(&after.engine.tick()), [(Some(Pending), Firing)]);
}

#[test]
fn a_restored_flapping_event_waits_a_whole_window() {
    let mut h = harness(FLAPPY);
    bounce(&mut h, 0, 12);
    let open = saved(&h.engine);
    let mut after = harness(FLAPPY);
    after.at(200);
    after.engine.restore(open);
    after.at(799);
    assert!(
        after.engine.tick().is_empty(),
        "the window counts from the restore"
    );
    // Restored flapping assumes the condition is still bad, so a good value is a change.
    assert!(link(&mut after, 799, false).is_empty());
    after.at(1398);
    assert!(after.engine.tick().is_empty());
    after.at(1399);
    assert_eq!(moves(&after.engine.tick()), [(Some(Flapping), Resolved)]);
}

#[test]
fn restoring_an_event_of_a_rule_that_is_gone_resolves_it() {
    let mut h = harness(FS);
    h.fs("/var", 97.0);
    let open = saved(&h.engine);
    let mut after = harness(CPU_HOLD);
    let resolved = after.engine.restore(open);
    assert_eq!(moves(&resolved), [(Some(Firing), Resolved)]);
    assert_eq!(resolved[0].cause, Cause::RuleGone);
    assert_eq!(resolved[0].summary, "fs on web-1 /var");
    assert!(after.open_states().is_empty());
}

#[test]
fn status_looks_up_one_key() {
    let mut h = harness(FS);
    h.fs("/var", 97.0);
    let key = EventKey {
        rule: "fs".into(),
        ci_id: 1,
        instance: "/var".into(),
    };
    assert_eq!(h.engine.status(&key).map(|s| s.state), Some(Firing));
    assert_eq!(
        h.engine.status(&EventKey {
            instance: "/".into(),
            ..key
        }),
        None
    );
}

#[test]
fn stale_series_are_dropped_by_tick() {
    let mut h = harness(
        r#"
[[rule]]
name = "cpu-avg"
metric = "cpu.usage_pct"
aggregation = "avg"
window_secs = 60
op = ">="
warning = 90
"#,
    );
    h.cpu(10.0);
    assert_eq!(h.engine.stats().series_samples, 1);
    h.at(3601);
    h.engine.tick();
    assert_eq!(
        h.engine.stats(),
        super::engine::EngineStats {
            cis: 1,
            ..Default::default()
        }
    );
}
