//! The state machine of one event key (rule, CI, instance). [`super::engine::Engine`] finds
//! the key and computes the value; this file decides what the value means:
//!
//! ```text
//!            bad (for_secs > 0)           bad for for_secs
//!   (none) ───────────────────► Pending ──────────────────► Firing ◄──┐ severity changes:
//!     │ ▲                         │ good: Pending→Resolved   │    └───┘ Firing→Firing
//!     │ └─────────────────────────┘  (never a ticket)         │
//!     │ bad (for_secs = 0)                                    │ good side of recovery
//!     └───────────────────────────────────────────────────► ──┤ for clear_for_secs
//!                                                             ▼
//!                      Resolved, or Flapping when this close makes more than
//!                      flap_transitions opens/closes within flap_window_secs
//! ```
//!
//! Underneath the outward state runs a [`Phase`], the plain threshold machine. While the key
//! is flapping the phase keeps changing but nothing is emitted; once it has not opened or
//! closed for a whole flap window, the key leaves Flapping for what the phase says (Firing,
//! or Resolved).

use std::collections::VecDeque;

use super::config::Rule;
use super::event::{Cause, EventKey, EventState, EventStatus, Severity, Transition};
use super::template::TemplateValues;

/// The threshold machine under the outward state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Phase {
    Ok,
    /// Bad since `since_ms`, waiting out the hold-down.
    Pending {
        since_ms: i64,
        severity: Severity,
    },
    /// Bad; `clearing_since_ms` is when the value got back on the good side of recovery.
    Firing {
        severity: Severity,
        clearing_since_ms: Option<i64>,
    },
}

/// What a key's transitions are computed against.
pub(super) struct Ctx<'a> {
    pub rule: &'a Rule,
    pub ci_name: &'a str,
    pub now_ms: i64,
}

fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000)
}

#[derive(Debug)]
pub(super) struct KeyState {
    /// The rule's index in the engine's rule list.
    pub slot: u32,
    pub key: EventKey,
    pub phase: Phase,
    /// The open event as the outside sees it; `None` when there is none.
    pub status: Option<EventStatus>,
    pub flapping: bool,
    /// When the phase opened or closed, within the flap window, oldest first; at most
    /// `flap_transitions + 1` entries.
    flap_log: VecDeque<i64>,
    last_change_ms: i64,
    pub last_value: f64,
}

impl KeyState {
    pub fn new(slot: u32, key: EventKey) -> KeyState {
        KeyState {
            slot,
            key,
            phase: Phase::Ok,
            status: None,
            flapping: false,
            flap_log: VecDeque::new(),
            last_change_ms: i64::MIN,
            last_value: f64::NAN,
        }
    }

    /// Rebuilds a key from an open event saved before a restart. The hold-down keeps its
    /// start; a clear in progress and the flap history are not saved, so a clear starts over
    /// and a flapping key must be stable for a whole window from now.
    pub fn restore(slot: u32, key: EventKey, status: EventStatus, now_ms: i64) -> Option<KeyState> {
        let phase = match status.state {
            EventState::Pending => Phase::Pending {
                since_ms: status.since_ms,
                severity: status.severity,
            },
            EventState::Firing | EventState::Flapping => Phase::Firing {
                severity: status.severity,
                clearing_since_ms: None,
            },
            EventState::Resolved => return None,
        };
        Some(KeyState {
            slot,
            key,
            phase,
            flapping: status.state == EventState::Flapping,
            flap_log: VecDeque::new(),
            last_change_ms: now_ms,
            last_value: status.value,
            status: Some(status),
        })
    }

    /// Takes a new value.
    pub fn evaluate(&mut self, cx: &Ctx<'_>, value: f64, out: &mut Vec<Transition>) {
        self.last_value = value;
        self.end_flapping_if_stable(cx, out);
        let rule = cx.rule;
        let level = rule.level(value);
        match self.phase {
            Phase::Ok => {
                if let Some(severity) = level {
                    if rule.for_secs == 0 {
                        self.fire(cx, severity, Cause::Value, out);
                    } else {
                        self.phase = Phase::Pending {
                            since_ms: cx.now_ms,
                            severity,
                        };
                        if !self.flapping {
                            self.emit(cx, EventState::Pending, severity, None, Cause::Value, out);
                        }
                    }
                }
            }
            Phase::Pending { since_ms, severity } => match level {
                Some(now_severity) => {
                    self.phase = Phase::Pending {
                        since_ms,
                        severity: now_severity,
                    };
                    if cx.now_ms.saturating_sub(since_ms) >= secs_to_ms(rule.for_secs) {
                        self.fire(cx, now_severity, Cause::Value, out);
                    }
                }
                None => {
                    // A good value cancels the hold-down: the pending event resolves, and no
                    // ticket was ever due for it.
                    self.phase = Phase::Ok;
                    if !self.flapping {
                        self.emit(cx, EventState::Resolved, severity, None, Cause::Value, out);
                    }
                }
            },
            Phase::Firing {
                severity,
                clearing_since_ms,
            } => {
                if rule.recovered(value) {
                    let since = clearing_since_ms.unwrap_or(cx.now_ms);
                    if cx.now_ms.saturating_sub(since) >= secs_to_ms(rule.clear_for_secs) {
                        self.close(cx, Cause::Value, out);
                    } else {
                        self.phase = Phase::Firing {
                            severity,
                            clearing_since_ms: Some(since),
                        };
                    }
                } else {
                    // Between recovery and the lowest threshold (hysteresis) the event stays
                    // open at its lowest severity.
                    let now_severity = level.unwrap_or(rule.lowest_severity());
                    self.phase = Phase::Firing {
                        severity: now_severity,
                        clearing_since_ms: None,
                    };
                    if now_severity != severity && !self.flapping {
                        self.emit(
                            cx,
                            EventState::Firing,
                            now_severity,
                            Some(severity),
                            Cause::Value,
                            out,
                        );
                    }
                }
            }
        }
        if let Some(status) = &mut self.status {
            status.value = value;
            if let (Phase::Pending { severity, .. }, EventState::Pending) =
                (self.phase, status.state)
            {
                status.severity = severity;
            }
            if status.ci_name != cx.ci_name {
                status.ci_name = cx.ci_name.to_string();
            }
        }
    }

    /// Time-based changes: hold-down and clear delays elapsed, flapping ended.
    pub fn tick(&mut self, cx: &Ctx<'_>, out: &mut Vec<Transition>) {
        self.end_flapping_if_stable(cx, out);
        match self.phase {
            Phase::Pending { since_ms, severity }
                if cx.now_ms.saturating_sub(since_ms) >= secs_to_ms(cx.rule.for_secs) =>
            {
                // No good value arrived since the hold-down started: it has been bad throughout.
                self.fire(cx, severity, Cause::HoldDownElapsed, out);
            }
            Phase::Firing {
                clearing_since_ms: Some(since),
                ..
            } if cx.now_ms.saturating_sub(since) >= secs_to_ms(cx.rule.clear_for_secs) => {
                self.close(cx, Cause::ClearElapsed, out);
            }
            _ => {}
        }
    }

    /// Resolves whatever is open, for a reason outside the values (instance or CI gone, rule
    /// removed, no longer selected). Not counted towards flapping: the key is dropped next.
    pub fn resolve(&mut self, cx: &Ctx<'_>, cause: Cause, out: &mut Vec<Transition>) {
        if let Some(status) = &self.status {
            let severity = status.severity;
            self.emit(cx, EventState::Resolved, severity, None, cause, out);
        }
        self.phase = Phase::Ok;
        self.flapping = false;
        self.flap_log.clear();
    }

    /// Whether the key holds nothing worth keeping: no event, no hold-down, no flap history
    /// that could still count.
    pub fn is_idle(&self, rule: &Rule, now_ms: i64) -> bool {
        self.status.is_none()
            && self.phase == Phase::Ok
            && !self.flapping
            && self
                .flap_log
                .back()
                .is_none_or(|&at| at <= now_ms.saturating_sub(secs_to_ms(rule.flap_window_secs)))
    }

    fn fire(&mut self, cx: &Ctx<'_>, severity: Severity, cause: Cause, out: &mut Vec<Transition>) {
        self.phase = Phase::Firing {
            severity,
            clearing_since_ms: None,
        };
        self.record_open_or_close(cx);
        if !self.flapping {
            self.emit(cx, EventState::Firing, severity, None, cause, out);
        }
    }

    fn close(&mut self, cx: &Ctx<'_>, cause: Cause, out: &mut Vec<Transition>) {
        let severity = match self.phase {
            Phase::Firing { severity, .. } | Phase::Pending { severity, .. } => severity,
            Phase::Ok => cx.rule.lowest_severity(),
        };
        self.phase = Phase::Ok;
        self.record_open_or_close(cx);
        if self.flapping {
            return;
        }
        let limit = cx.rule.flap_transitions as usize;
        if limit > 0 && self.flap_log.len() > limit {
            // The event stays open as Flapping rather than closing (and soon reopening): one
            // event, one ticket comment, instead of a ticket per bounce.
            self.flapping = true;
            self.emit(
                cx,
                EventState::Flapping,
                severity,
                None,
                Cause::Flapping,
                out,
            );
        } else {
            self.emit(cx, EventState::Resolved, severity, None, cause, out);
        }
    }

    fn record_open_or_close(&mut self, cx: &Ctx<'_>) {
        self.last_change_ms = cx.now_ms;
        let limit = cx.rule.flap_transitions as usize;
        if limit == 0 {
            self.flap_log.clear();
            return;
        }
        self.flap_log.push_back(cx.now_ms);
        let cutoff = cx
            .now_ms
            .saturating_sub(secs_to_ms(cx.rule.flap_window_secs));
        while self.flap_log.front().is_some_and(|&at| at <= cutoff)
            || self.flap_log.len() > limit + 1
        {
            self.flap_log.pop_front();
        }
    }

    fn end_flapping_if_stable(&mut self, cx: &Ctx<'_>, out: &mut Vec<Transition>) {
        if !self.flapping
            || cx.now_ms.saturating_sub(self.last_change_ms) < secs_to_ms(cx.rule.flap_window_secs)
        {
            return;
        }
        self.flapping = false;
        self.flap_log.clear();
        match self.phase {
            Phase::Firing { severity, .. } => {
                self.emit(cx, EventState::Firing, severity, None, Cause::Stable, out);
            }
            Phase::Ok => {
                let severity = self
                    .status
                    .as_ref()
                    .map_or(cx.rule.lowest_severity(), |s| s.severity);
                self.emit(cx, EventState::Resolved, severity, None, Cause::Stable, out);
            }
            Phase::Pending { severity, .. } => {
                // Stable, but inside a new hold-down: the flapping event ends and a new
                // pending one begins, which fires only if its hold-down completes.
                let previous = self.status.as_ref().map_or(severity, |s| s.severity);
                self.emit(cx, EventState::Resolved, previous, None, Cause::Stable, out);
                self.emit(cx, EventState::Pending, severity, None, Cause::Value, out);
            }
        }
    }

    /// Records a transition of the outward state and updates `status` to match.
    fn emit(
        &mut self,
        cx: &Ctx<'_>,
        to: EventState,
        severity: Severity,
        previous_severity: Option<Severity>,
        cause: Cause,
        out: &mut Vec<Transition>,
    ) {
        let rule = cx.rule;
        let value = self.last_value;
        let threshold = if to == EventState::Resolved {
            rule.recovery
        } else {
            rule.threshold(severity)
        };
        let values = TemplateValues {
            ci: cx.ci_name,
            value,
            threshold,
            instance: &self.key.instance,
            rule: &rule.name,
            severity: severity.as_str(),
            metric: rule.metric.name(),
        };
        let from = self.status.as_ref().map(|status| status.state);
        out.push(Transition {
            rule: self.key.rule.clone(),
            ci_id: self.key.ci_id,
            instance: self.key.instance.clone(),
            from,
            to,
            severity,
            previous_severity,
            value,
            threshold,
            at_ms: cx.now_ms,
            summary: rule.summary.render(&values).trim().to_string(),
            description: rule.description.render(&values).trim().to_string(),
            cause,
        });
        match (to, &mut self.status) {
            (EventState::Resolved, status) => *status = None,
            (_, Some(status)) => {
                if status.state != to {
                    status.state = to;
                    status.since_ms = cx.now_ms;
                }
                status.severity = severity;
                status.value = value;
                status.threshold = threshold;
            }
            (_, status @ None) => {
                *status = Some(EventStatus {
                    state: to,
                    severity,
                    opened_ms: cx.now_ms,
                    since_ms: cx.now_ms,
                    value,
                    threshold,
                    ci_name: cx.ci_name.to_string(),
                });
            }
        }
    }
}
