//! Threshold rules and events, the pure core: no SQL, no async, no I/O but reading a rules
//! file. The collector feeds it samples and stores the transitions it returns.
//!
//! In data-flow order:
//! - [`metrics`] — the one table of metrics rules can name ([`METRICS`]).
//! - [`config`] + [`parse`] — rule files (`[[rule]]` in TOML) into a validated [`RuleSet`];
//!   `defaults.toml` holds the shipped rules ([`RuleSet::with_defaults`]).
//! - [`selector`], [`glob`], [`template`] — what rules are made of.
//! - [`engine`] — the streaming evaluation: per (rule, CI, instance) one event with hold-down,
//!   hysteresis, `clear_for`, severity changes and flap damping (`state.rs`); windows and rates
//!   ([`series`]).
//! - [`silence`] + [`recurrence`] — silences and maintenance windows: whether an event is
//!   escalated now.
//! - [`symptoms`] — which down CIs are only symptoms of another one upstream.
//! - [`clock`] — time, which tests drive by hand.
//! - [`mod@bench`] — a micro-benchmark of [`Engine::observe`] for `steward-bench`.

pub mod bench;
pub mod clock;
pub mod config;
pub mod defaults;
pub mod engine;
pub mod event;
pub mod glob;
pub mod metrics;
pub mod parse;
pub mod recurrence;

pub mod selector;
pub mod series;
pub mod silence;

mod state;
pub mod symptoms;

pub mod template;

#[cfg(test)]
mod engine_tests;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Aggregation, Op, Origin, Problem, Rule, RuleSet, RulesError};
pub use engine::{
    Cause, CiFacts, Engine, EventKey, EventState, EventStatus, Sample, Severity, Transition,
};
pub use glob::Glob;
pub use metrics::{METRICS, Metric, MetricDef, MetricKind};
pub use recurrence::Recurrence;

pub use selector::Selector;
pub use silence::{MaintenanceWindow, Silence, SilenceTarget, WindowTarget};
pub use symptoms::root_causes;
#[cfg(test)]
mod parse_tests;
