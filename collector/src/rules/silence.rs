//! Silences and maintenance windows: whether an event is escalated now.
//!
//! The collector records every event whatever the silences say; what a silence changes is
//! escalation (the ticket). The lead's loop, with the helpers below:
//! - on a transition to Firing, escalate unless [`silenced`] gives a reason; store that the
//!   event is not escalated yet (and, for the timer, [`silenced_until`]);
//! - on its timer, for each open event not escalated yet, [`escalation_due`] says whether the
//!   silence (or window) has ended with the event still firing: escalate then.
//!
//! A silence targets a CI by name, a service, or a [`Selector`] (class, tags, service, name
//! and instance globs), optionally only some rules (a glob on the rule name); it lasts from
//! `starts_ms` to `ends_ms`. A maintenance window targets a CI or a service on a
//! [`Recurrence`].

use std::fmt;

use super::event::{CiFacts, EventState};
use super::glob::Glob;
use super::recurrence::Recurrence;
use super::selector::Selector;

/// What a silence applies to.
#[derive(Debug, Clone, PartialEq)]
pub enum SilenceTarget {
    /// The CI of this name, exactly.
    Ci(String),
    /// Every CI of this service.
    Service(String),
    Selector(Selector),
}

impl SilenceTarget {
    pub fn matches(&self, ci: &CiFacts, instance: &str) -> bool {
        match self {
            SilenceTarget::Ci(name) => *name == ci.name,
            SilenceTarget::Service(service) => ci.services.contains(service),
            SilenceTarget::Selector(selector) => selector.matches(ci, instance),
        }
    }
}

impl fmt::Display for SilenceTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SilenceTarget::Ci(name) => write!(f, "ci={name}"),
            SilenceTarget::Service(service) => write!(f, "service={service}"),
            SilenceTarget::Selector(selector) => write!(f, "selector {selector}"),
        }
    }
}

/// A one-off silence.
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    pub id: i64,
    pub target: SilenceTarget,
    /// Only events of rules whose name matches; every rule when `None`.
    pub rule: Option<Glob>,
    pub starts_ms: i64,
    /// Exclusive.
    pub ends_ms: i64,
    pub reason: String,
    pub created_by: String,
}

impl Silence {
    pub fn active(&self, at_ms: i64) -> bool {
        self.starts_ms <= at_ms && at_ms < self.ends_ms
    }

    /// When it ends, if that is still ahead.
    pub fn next_end(&self, at_ms: i64) -> Option<i64> {
        (at_ms < self.ends_ms).then_some(self.ends_ms)
    }

    /// Whether it applies to this event, whatever the time.
    pub fn covers(&self, ci: &CiFacts, instance: &str, rule: &str) -> bool {
        self.rule.as_ref().is_none_or(|glob| glob.matches(rule))
            && self.target.matches(ci, instance)
    }
}

/// What a maintenance window applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowTarget {
    Ci(String),
    Service(String),
}

impl fmt::Display for WindowTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowTarget::Ci(name) => write!(f, "ci={name}"),
            WindowTarget::Service(service) => write!(f, "service={service}"),
        }
    }
}

/// A recurring maintenance window.
#[derive(Debug, Clone, PartialEq)]
pub struct MaintenanceWindow {
    pub id: i64,
    pub target: WindowTarget,
    pub recurrence: Recurrence,
    pub reason: String,
}

impl MaintenanceWindow {
    pub fn active(&self, at_ms: i64) -> bool {
        self.recurrence.active(at_ms)
    }

    /// When the window open at `at_ms` ends, or else when the next one does.
    pub fn next_end(&self, at_ms: i64) -> Option<i64> {
        self.recurrence.next_end(at_ms)
    }

    pub fn covers(&self, ci: &CiFacts) -> bool {
        match &self.target {
            WindowTarget::Ci(name) => *name == ci.name,
            WindowTarget::Service(service) => ci.services.contains(service),
        }
    }
}

/// The reason an event of `rule` on `ci`/`instance` is silenced at `at_ms`: the first active
/// silence covering it, else the first open maintenance window; `None` when it is not.
pub fn silenced<'a>(
    ci: &CiFacts,
    instance: &str,
    rule: &str,
    silences: &'a [Silence],
    windows: &'a [MaintenanceWindow],
    at_ms: i64,
) -> Option<&'a str> {
    silences
        .iter()
        .find(|s| s.active(at_ms) && s.covers(ci, instance, rule))
        .map(|s| s.reason.as_str())
        .or_else(|| {
            windows
                .iter()
                .find(|w| w.covers(ci) && w.active(at_ms))
                .map(|w| w.reason.as_str())
        })
}

/// When the event stops being silenced, following silences and windows that overlap or
/// follow each other without a gap; `None` when it is not silenced at `at_ms`. The lead can
/// schedule its escalation check for then instead of polling.
pub fn silenced_until(
    ci: &CiFacts,
    instance: &str,
    rule: &str,
    silences: &[Silence],
    windows: &[MaintenanceWindow],
    at_ms: i64,
) -> Option<i64> {
    let covering_end = |t: i64| -> Option<i64> {
        let silence_end = silences
            .iter()
            .filter(|s| s.active(t) && s.covers(ci, instance, rule))
            .map(|s| s.ends_ms)
            .max();
        let window_end = windows
            .iter()
            .filter(|w| w.covers(ci))
            .filter_map(|w| w.recurrence.current(t).map(|(_, end)| end))
            .max();
        silence_end.max(window_end)
    };
    let mut until = covering_end(at_ms)?;
    // Each step moves to the end of something that covers the previous end, so the loop
    // ends; the bound is a guard against a pathological list (a daily window chained with
    // silences for years).
    for _ in 0..1000 {
        match covering_end(until) {
            Some(next) if next > until => until = next,
            _ => break,
        }
    }
    Some(until)
}

/// Whether an open event that was not escalated (it fired inside a silence) must be now:
/// it is still a problem (Firing, or Flapping after having fired) and nothing silences it any
/// more. Pending events are never escalated.
#[allow(clippy::too_many_arguments)]
pub fn escalation_due(
    state: EventState,
    escalated: bool,
    ci: &CiFacts,
    instance: &str,
    rule: &str,
    silences: &[Silence],
    windows: &[MaintenanceWindow],
    at_ms: i64,
) -> bool {
    matches!(state, EventState::Firing | EventState::Flapping)
        && !escalated
        && silenced(ci, instance, rule, silences, windows, at_ms).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;
    /// 2024-06-02 00:00 UTC, a Sunday.
    const SUNDAY: i64 = 1_717_286_400_000;

    fn ci() -> CiFacts {
        CiFacts {
            id: 1,
            name: "web-1".into(),
            class: "server".into(),
            tags: vec!["prod".into()],
            services: vec!["web-shop".into()],
        }
    }

    fn silence(target: SilenceTarget, starts_ms: i64, ends_ms: i64) -> Silence {
        Silence {
            id: 1,
            target,
            rule: None,
            starts_ms,
            ends_ms,
            reason: "disk swap".into(),
            created_by: "alice".into(),
        }
    }

    fn window(target: WindowTarget, recurrence: &str) -> MaintenanceWindow {
        MaintenanceWindow {
            id: 2,
            target,
            recurrence: Recurrence::parse(recurrence).unwrap(),
            reason: "patch Sunday".into(),
        }
    }

    #[test]
    fn a_silence_on_a_ci_covers_its_events_while_active() {
        let silences = [silence(SilenceTarget::Ci("web-1".into()), 0, 2 * HOUR)];
        assert_eq!(
            silenced(&ci(), "/var", "fs", &silences, &[], HOUR),
            Some("disk swap")
        );
        assert_eq!(
            silenced(&ci(), "/var", "fs", &silences, &[], 2 * HOUR),
            None,
            "ended"
        );
        let mut other = ci();
        other.name = "web-2".into();
        assert_eq!(silenced(&other, "/var", "fs", &silences, &[], HOUR), None);
    }

    #[test]
    fn a_silence_on_a_service_or_selector() {
        let by_service = [silence(SilenceTarget::Service("web-shop".into()), 0, HOUR)];
        assert!(silenced(&ci(), "", "cpu", &by_service, &[], 0).is_some());
        let selector = Selector::parse("tag=prod,instance=/var*").unwrap();
        let by_selector = [silence(SilenceTarget::Selector(selector), 0, HOUR)];
        assert!(silenced(&ci(), "/var/log", "fs", &by_selector, &[], 0).is_some());
        assert!(silenced(&ci(), "/home", "fs", &by_selector, &[], 0).is_none());
    }

    #[test]
    fn a_silence_may_cover_only_some_rules() {
        let mut only_fs = silence(SilenceTarget::Ci("web-1".into()), 0, HOUR);
        only_fs.rule = Some(Glob::parse("filesystem-*").unwrap());
        let silences = [only_fs];
        assert!(silenced(&ci(), "/", "filesystem-full", &silences, &[], 0).is_some());
        assert!(silenced(&ci(), "", "cpu-high", &silences, &[], 0).is_none());
    }

    #[test]
    fn a_maintenance_window_silences_during_its_occurrences() {
        let windows = [window(
            WindowTarget::Service("web-shop".into()),
            "every Sunday 02:00-04:00",
        )];
        assert_eq!(
            silenced(&ci(), "", "cpu", &[], &windows, SUNDAY + 3 * HOUR),
            Some("patch Sunday")
        );
        assert_eq!(
            silenced(&ci(), "", "cpu", &[], &windows, SUNDAY + 5 * HOUR),
            None
        );
        let elsewhere = [window(
            WindowTarget::Ci("db-1".into()),
            "every Sunday 02:00-04:00",
        )];
        assert_eq!(
            silenced(&ci(), "", "cpu", &[], &elsewhere, SUNDAY + 3 * HOUR),
            None
        );
    }

    #[test]
    fn silenced_until_follows_overlapping_silences_and_windows() {
        let windows = [window(
            WindowTarget::Ci("web-1".into()),
            "every Sunday 02:00-04:00",
        )];
        let silences = [
            silence(
                SilenceTarget::Ci("web-1".into()),
                SUNDAY + HOUR,
                SUNDAY + 3 * HOUR,
            ),
            silence(
                SilenceTarget::Service("web-shop".into()),
                SUNDAY + 4 * HOUR,
                SUNDAY + 6 * HOUR,
            ),
        ];
        // 01:00-03:00 silence, 02:00-04:00 window, 04:00-06:00 silence: silenced until 06:00.
        assert_eq!(
            silenced_until(&ci(), "", "cpu", &silences, &windows, SUNDAY + HOUR + 1),
            Some(SUNDAY + 6 * HOUR)
        );
        assert_eq!(
            silenced_until(&ci(), "", "cpu", &silences, &windows, SUNDAY + 7 * HOUR),
            None
        );
    }

    #[test]
    fn escalation_is_due_when_the_silence_ends_with_the_event_still_firing() {
        let silences = [silence(SilenceTarget::Ci("web-1".into()), 0, HOUR)];
        let due = |state, escalated, at| {
            escalation_due(state, escalated, &ci(), "", "cpu", &silences, &[], at)
        };
        assert!(!due(EventState::Firing, false, HOUR - 1), "still silenced");
        assert!(
            due(EventState::Firing, false, HOUR),
            "silence over, still firing"
        );
        assert!(due(EventState::Flapping, false, HOUR));
        assert!(!due(EventState::Firing, true, HOUR), "already escalated");
        assert!(
            !due(EventState::Pending, false, HOUR),
            "pending never escalates"
        );
    }

    #[test]
    fn silence_next_end_and_target_display() {
        let s = silence(SilenceTarget::Service("web-shop".into()), 0, HOUR);
        assert_eq!(s.next_end(10), Some(HOUR));
        assert_eq!(s.next_end(HOUR), None);
        assert_eq!(s.target.to_string(), "service=web-shop");
        let selector = SilenceTarget::Selector(Selector::parse("class=server,tag=prod").unwrap());
        assert_eq!(selector.to_string(), "selector class=server,tag=prod");
        let w = window(WindowTarget::Ci("web-1".into()), "daily 01:00-02:00");
        assert_eq!(w.next_end(0), Some(2 * HOUR));
        assert_eq!(w.target.to_string(), "ci=web-1");
    }
}
