//! Flap damping: too many opens and closes within a window become one Flapping state.

use super::lifecycle::saved;
use super::{Harness, harness, moves};
use crate::rules::{Cause, EventState, Metric, Sample, Severity, Transition};

use EventState::{Firing, Flapping, Pending, Resolved};

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
