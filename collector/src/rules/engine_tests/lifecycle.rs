//! The event lifecycle outside values: rules reloaded, instances and CIs going away, restart.

use super::{CPU_HOLD, FS, harness, moves};
use crate::rules::{
    Cause, Engine, EventKey, EventState, EventStatus, Metric, RuleSet, Sample, Severity,
};

use EventState::{Firing, Pending, Resolved};

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

pub(super) fn saved(engine: &Engine) -> Vec<(EventKey, EventStatus)> {
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
        crate::rules::engine::EngineStats {
            cis: 1,
            ..Default::default()
        }
    );
}

#[test]
fn restoring_absurd_times_does_not_overflow() {
    let mut h = harness(CPU_HOLD);
    h.cpu(99.0);
    let mut open = saved(&h.engine);
    open[0].1.since_ms = i64::MIN;
    let mut after = harness(CPU_HOLD);
    after.engine.restore(open);
    assert_eq!(moves(&after.engine.tick()), [(Some(Pending), Firing)]);
}
