//! The engine's vocabulary: what goes in ([`CiFacts`], [`Sample`]) and what comes out
//! ([`Transition`]), and the event states, severities and causes they use. Re-exported by
//! [`super::engine`] and [`super`].

use super::metrics::Metric;

/// What the engine needs to know about a CI to match selectors and write summaries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CiFacts {
    pub id: i64,
    pub name: String,
    pub class: String,
    pub tags: Vec<String>,
    /// Names of the services the CI belongs to.
    pub services: Vec<String>,
}

/// One observation. `metric` is the [`Metric`] enum rather than a string: one byte, compared
/// and indexed without hashing. `instance` is what [`super::metrics::MetricDef::instance`]
/// says (mount point, interface name, package name), empty for per-CI metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub metric: Metric,
    pub instance: String,
    /// Non-finite values (NaN, infinities) are ignored.
    pub value: f64,
}

impl Sample {
    pub fn new(metric: Metric, instance: impl Into<String>, value: f64) -> Sample {
        Sample {
            metric,
            instance: instance.into(),
            value,
        }
    }
}

/// The state of an event. `Resolved` appears only as a transition's `to`: a resolved event is
/// closed and no longer held by the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventState {
    /// Bad, waiting out the rule's hold-down (`for_secs`). Never worth a ticket.
    Pending,
    Firing,
    /// Opening and closing too often; held open until stable for the flap window.
    Flapping,
    Resolved,
}

impl EventState {
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Pending => "pending",
            EventState::Firing => "firing",
            EventState::Flapping => "flapping",
            EventState::Resolved => "resolved",
        }
    }

    pub fn from_name(text: &str) -> Option<EventState> {
        [
            EventState::Pending,
            EventState::Firing,
            EventState::Flapping,
            EventState::Resolved,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn from_name(text: &str) -> Option<Severity> {
        [Severity::Warning, Severity::Critical]
            .into_iter()
            .find(|severity| severity.as_str() == text)
    }
}

/// Why a transition happened, for the event's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// A value (or its aggregate over the window) crossed a threshold or the recovery line.
    Value,
    /// The hold-down elapsed without a good value in between ([`Engine::tick`](super::Engine::tick)).
    HoldDownElapsed,
    /// The value stayed on the good side of recovery for `clear_for_secs` ([`Engine::tick`](super::Engine::tick)).
    ClearElapsed,
    /// This close made more than `flap_transitions` opens and closes within the flap window.
    Flapping,
    /// No open or close for a whole flap window: flapping is over.
    Stable,
    /// The instance went away: a filesystem unmounted, a package removed, an interface
    /// deleted ([`Engine::observe_complete`](super::Engine::observe_complete), [`Engine::forget_instance`](super::Engine::forget_instance)).
    InstanceGone,
    /// The CI was deleted ([`Engine::forget_ci`](super::Engine::forget_ci)).
    CiGone,
    /// The rule was removed or disabled, or now watches another metric
    /// ([`Engine::replace_rules`](super::Engine::replace_rules), [`Engine::restore`](super::Engine::restore)).
    RuleGone,
    /// The CI or instance no longer matches the rule's selector (the CI's class, tags,
    /// services or name changed, or the rule's selector did).
    Deselected,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Value => "value",
            Cause::HoldDownElapsed => "hold_down_elapsed",
            Cause::ClearElapsed => "clear_elapsed",
            Cause::Flapping => "flapping",
            Cause::Stable => "stable",
            Cause::InstanceGone => "instance_gone",
            Cause::CiGone => "ci_gone",
            Cause::RuleGone => "rule_gone",
            Cause::Deselected => "deselected",
        }
    }
}

/// One event per key: (rule, CI, instance).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventKey {
    pub rule: String,
    pub ci_id: i64,
    pub instance: String,
}

/// An open event as the engine holds it. To survive a restart the lead stores every field
/// and hands them back to [`Engine::restore`](super::Engine::restore).
#[derive(Debug, Clone, PartialEq)]
pub struct EventStatus {
    /// Pending, Firing or Flapping.
    pub state: EventState,
    pub severity: Severity,
    /// When the event opened (its first Pending or Firing).
    pub opened_ms: i64,
    /// When it entered its current state; for Pending, when the hold-down started.
    pub since_ms: i64,
    /// The latest value evaluated.
    pub value: f64,
    /// The threshold of the current severity.
    pub threshold: f64,
    /// The CI's name when the event last changed, for summaries written by [`Engine::tick`](super::Engine::tick).
    pub ci_name: String,
}

/// A change of an event's state or severity.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub rule: String,
    pub ci_id: i64,
    pub instance: String,
    /// `None`: a new event opens.
    pub from: Option<EventState>,
    /// `Resolved`: the event closes.
    pub to: EventState,
    /// The event's severity after the transition (for `Resolved`, the one it had).
    pub severity: Severity,
    /// Set on a severity change within a firing event (`Firing → Firing`).
    pub previous_severity: Option<Severity>,
    pub value: f64,
    /// The threshold of `severity`; for `Resolved`, the recovery threshold.
    pub threshold: f64,
    pub at_ms: i64,
    pub summary: String,
    pub description: String,
    pub cause: Cause,
}

impl Transition {
    pub fn key(&self) -> EventKey {
        EventKey {
            rule: self.rule.clone(),
            ci_id: self.ci_id,
            instance: self.instance.clone(),
        }
    }
}
