//! The rule file format (see [`super::config`] for an annotated example) and its validation.
//!
//! The file is deserialised into raw structs whose fields keep their byte spans
//! ([`toml::Spanned`]), then each rule is checked and turned into a [`Rule`]. Every problem is
//! collected, not just the first, each naming the file, the line, the rule and the field:
//! `rules.toml line 14: rule "fs-full": critical (90) must be beyond warning (95) for op ">="
//! (higher is worse)`.

use std::collections::HashMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::config::{Aggregation, Disable, Op, Origin, Problem, Rule, RulesError};
use super::glob::Glob;
use super::metrics::{Metric, MetricKind};
use super::selector::Selector;
use super::template::Template;

/// The longest aggregation window. The engine keeps a bounded ring of samples per series,
/// so a longer window would silently cover fewer samples than it says.
pub const MAX_WINDOW_SECS: i64 = 24 * 3600;
/// The longest hold-down, clear and flap window: longer ones are almost certainly a unit
/// mistake (minutes written as seconds is the other way round).
pub const MAX_DURATION_SECS: i64 = 30 * 24 * 3600;
/// The most transitions `flap_transitions` may allow; the engine keeps this many times.
pub const MAX_FLAP_TRANSITIONS: i64 = 1000;

pub const DEFAULT_FLAP_TRANSITIONS: u32 = 5;
pub const DEFAULT_FLAP_WINDOW_SECS: u64 = 600;
pub const DEFAULT_SUMMARY: &str = "{rule} on {ci} {instance}";
pub const DEFAULT_DESCRIPTION: &str =
    "{metric} {instance} on {ci} is {value} ({severity} threshold {threshold}; rule {rule})";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Option<Spanned<String>>,
    description: Option<Spanned<String>>,
    summary: Option<Spanned<String>>,
    metric: Option<Spanned<String>>,
    selector: Option<Spanned<RawSelector>>,
    aggregation: Option<Spanned<String>>,
    // Durations and counts are read signed so a negative one gets our message rather than
    // serde's "invalid value: integer `-5`, expected u64".
    window_secs: Option<Spanned<i64>>,
    op: Option<Spanned<String>>,
    warning: Option<Spanned<f64>>,
    critical: Option<Spanned<f64>>,
    for_secs: Option<Spanned<i64>>,
    recovery: Option<Spanned<f64>>,
    clear_for_secs: Option<Spanned<i64>>,
    flap_transitions: Option<Spanned<i64>>,
    flap_window_secs: Option<Spanned<i64>>,
    enabled: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSelector {
    class: Option<OneOrMany>,
    tags: Option<Vec<String>>,
    service: Option<OneOrMany>,
    name: Option<String>,
    instance: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

/// Parses and validates a rule file's text.
pub(super) fn parse(text: &str, file: &str) -> Result<(Vec<Rule>, Vec<Disable>), RulesError> {
    let raw: RawFile = toml::from_str(text).map_err(|error| {
        let at = error.span().map(|span| span.start).unwrap_or(0);
        let mut checker = Checker::new(text, file);
        checker.rule = rule_name_around(text, at);
        let field = key_on_line(text, at);
        let message = match &field {
            Some(field) if !error.message().contains(field.as_str()) => {
                format!("{field}: {}", error.message().trim_end())
            }
            _ => error.message().trim_end().to_string(),
        };
        checker.problem(at..at, field.as_deref(), message);
        RulesError::Invalid(checker.problems)
    })?;

    let mut checker = Checker::new(text, file);
    let mut rules = Vec::new();
    let mut disables = Vec::new();
    for raw_rule in raw.rule {
        let rule_span = raw_rule.span();
        match checker.rule(raw_rule.into_inner(), rule_span) {
            Some(Built::Rule(rule)) => rules.push(rule),
            Some(Built::Disable(disable)) => disables.push(disable),
            None => {}
        }
    }
    checker.problems.sort_by_key(|problem| problem.line);
    if checker.problems.is_empty() {
        Ok((rules, disables))
    } else {
        Err(RulesError::Invalid(checker.problems))
    }
}

enum Built {
    Rule(Rule),
    Disable(Disable),
}

/// Collects problems with their place.
struct Checker<'a> {
    text: &'a str,
    file: &'a str,
    /// The name of the rule being checked, for messages.
    rule: Option<String>,
    /// Names seen so far and their lines, for duplicates.
    seen: HashMap<String, usize>,
    problems: Vec<Problem>,
}

impl<'a> Checker<'a> {
    fn new(text: &'a str, file: &'a str) -> Checker<'a> {
        Checker {
            text,
            file,
            rule: None,
            seen: HashMap::new(),
            problems: Vec::new(),
        }
    }

    fn line(&self, span: &Range<usize>) -> usize {
        line_of(self.text, span.start)
    }

    fn problem(&mut self, span: Range<usize>, field: Option<&str>, message: String) {
        self.problems.push(Problem {
            file: self.file.to_string(),
            line: Some(self.line(&span)),
            rule: self.rule.clone(),
            field: field.map(str::to_string),
            message,
        });
    }

    /// A duration or count field: not negative, at most `max`; `None` after a problem.
    fn secs(
        &mut self,
        field: &str,
        value: Option<Spanned<i64>>,
        default: u64,
        max: i64,
    ) -> Option<u64> {
        let Some(value) = value else {
            return Some(default);
        };
        let (span, secs) = (value.span(), *value.get_ref());
        if secs < 0 {
            self.problem(
                span,
                Some(field),
                format!("{field}: must not be negative ({secs})"),
            );
            None
        } else if secs > max {
            self.problem(
                span,
                Some(field),
                format!("{field}: {secs} is more than the most allowed, {max}"),
            );
            None
        } else {
            Some(secs.unsigned_abs())
        }
    }

    fn template(&mut self, field: &str, value: Option<Spanned<String>>, default: &str) -> Template {
        let (span, text) = match value {
            Some(value) => (value.span(), value.into_inner()),
            None => (0..0, default.to_string()),
        };
        match Template::parse(&text) {
            Ok(template) => template,
            Err(message) => {
                self.problem(span, Some(field), format!("{field}: {message}"));
                Template::default()
            }
        }
    }

    fn threshold(
        &mut self,
        field: &str,
        value: &Option<Spanned<f64>>,
        metric: Option<Metric>,
    ) -> Option<f64> {
        let value = value.as_ref()?;
        let (span, number) = (value.span(), *value.get_ref());
        if !number.is_finite() {
            self.problem(
                span,
                Some(field),
                format!("{field}: must be a finite number, not {number}"),
            );
            return None;
        }
        if let Some((low, high)) = metric.and_then(|metric| metric.def().range)
            && !(low..=high).contains(&number)
        {
            self.problem(
                span,
                Some(field),
                format!(
                    "{field}: {number} is outside the values {} takes ({low} to {high})",
                    metric.map(Metric::name).unwrap_or_default()
                ),
            );
            return None;
        }
        Some(number)
    }

    /// Checks one `[[rule]]` entry; `None` when it has problems (already recorded).
    fn rule(&mut self, raw: RawRule, rule_span: Range<usize>) -> Option<Built> {
        let before = self.problems.len();
        self.rule = None;
        let name_span = raw
            .name
            .as_ref()
            .map(Spanned::span)
            .unwrap_or(rule_span.clone());
        let origin = Origin {
            file: self.file.to_string(),
            line: self.line(&name_span),
        };
        let name = match raw.name {
            None => {
                self.problem(
                    rule_span.clone(),
                    Some("name"),
                    "name: missing; every rule needs a unique name".into(),
                );
                None
            }
            Some(name) => {
                let (span, name) = (name.span(), name.into_inner());
                if name.is_empty()
                    || name.len() > 100
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                {
                    self.problem(
                        span,
                        Some("name"),
                        format!("name: {name:?} must be 1 to 100 letters, digits, '-', '_' or '.'"),
                    );
                    None
                } else {
                    self.rule = Some(name.clone());
                    if let Some(first) = self.seen.get(&name) {
                        let message =
                            format!("name: duplicate rule name (first defined at line {first})");
                        self.problem(span, Some("name"), message);
                    } else {
                        self.seen.insert(name.clone(), origin.line);
                    }
                    Some(name)
                }
            }
        };

        // `name` and `enabled = false` alone switch off a rule of the set this file is laid over.
        let only_disables = raw.metric.is_none()
            && raw
                .enabled
                .as_ref()
                .is_some_and(|enabled| !enabled.get_ref())
            && raw.selector.is_none()
            && raw.aggregation.is_none()
            && raw.window_secs.is_none()
            && raw.op.is_none()
            && raw.warning.is_none()
            && raw.critical.is_none()
            && raw.for_secs.is_none()
            && raw.recovery.is_none()
            && raw.clear_for_secs.is_none()
            && raw.summary.is_none()
            && raw.flap_transitions.is_none()
            && raw.flap_window_secs.is_none();
        if only_disables {
            return Some(Built::Disable(Disable {
                name: name?,
                origin,
            }));
        }

        let metric = match &raw.metric {
            None => {
                self.problem(
                    rule_span.clone(),
                    Some("metric"),
                    format!(
                        "metric: missing (only a rule that just disables another may omit it); known metrics: {}",
                        Metric::known_names()
                    ),
                );
                None
            }
            Some(metric) => match Metric::from_name(metric.get_ref()) {
                Some(known) => Some(known),
                None => {
                    self.problem(
                        metric.span(),
                        Some("metric"),
                        format!(
                            "metric: unknown metric {:?}; known metrics: {}",
                            metric.get_ref(),
                            Metric::known_names()
                        ),
                    );
                    None
                }
            },
        };

        let op = match &raw.op {
            None => {
                self.problem(
                    rule_span.clone(),
                    Some("op"),
                    "op: missing; one of \">\", \">=\", \"<\", \"<=\"".into(),
                );
                None
            }
            Some(op) => {
                let parsed = Op::from_name(op.get_ref());
                if parsed.is_none() {
                    self.problem(
                        op.span(),
                        Some("op"),
                        format!(
                            "op: {:?} is not one of \">\", \">=\", \"<\", \"<=\"",
                            op.get_ref()
                        ),
                    );
                }
                parsed
            }
        };

        let aggregation_span = raw
            .aggregation
            .as_ref()
            .map(Spanned::span)
            .unwrap_or(rule_span.clone());
        let aggregation = match &raw.aggregation {
            None => Some(Aggregation::Last),
            Some(aggregation) => {
                let parsed = Aggregation::from_name(aggregation.get_ref());
                if parsed.is_none() {
                    self.problem(
                        aggregation.span(),
                        Some("aggregation"),
                        format!(
                            "aggregation: {:?} is not one of \"last\", \"avg\", \"min\", \"max\", \"rate\"",
                            aggregation.get_ref()
                        ),
                    );
                }
                parsed
            }
        };
        let window_span = raw
            .window_secs
            .as_ref()
            .map(Spanned::span)
            .unwrap_or(aggregation_span.clone());
        let window_secs = self.secs("window_secs", raw.window_secs, 0, MAX_WINDOW_SECS);
        if let (Some(aggregation), Some(window_secs)) = (aggregation, window_secs) {
            match aggregation {
                Aggregation::Last if window_secs > 0 => self.problem(
                    window_span,
                    Some("window_secs"),
                    format!("window_secs: {window_secs} has no effect with aggregation \"last\"; use avg, min, max or rate, or drop it"),
                ),
                Aggregation::Avg | Aggregation::Min | Aggregation::Max if window_secs == 0 => self.problem(
                    window_span,
                    Some("window_secs"),
                    format!("window_secs: aggregation {:?} needs a window (window_secs > 0)", aggregation.as_str()),
                ),
                _ => {}
            }
            if let Some(metric) = metric {
                let counter = metric.kind() == MetricKind::Counter;
                if aggregation == Aggregation::Rate && !counter {
                    self.problem(
                        aggregation_span,
                        Some("aggregation"),
                        format!(
                            "aggregation: \"rate\" applies only to counters, and {} is a {}",
                            metric.name(),
                            metric.kind().as_str()
                        ),
                    );
                } else if aggregation != Aggregation::Rate && counter {
                    self.problem(
                        aggregation_span,
                        Some("aggregation"),
                        format!(
                            "aggregation: {} is a counter, which only grows; use aggregation = \"rate\"",
                            metric.name()
                        ),
                    );
                }
            }
        }

        let warning = self.threshold("warning", &raw.warning, metric);
        let critical = self.threshold("critical", &raw.critical, metric);
        if raw.warning.is_none() && raw.critical.is_none() {
            self.problem(
                rule_span.clone(),
                Some("warning"),
                "warning, critical: give at least one threshold".into(),
            );
        }
        if let (Some(op), Some(w), Some(c), Some(critical_raw)) =
            (op, warning, critical, &raw.critical)
            && (c == w || op.bad(w, c))
        {
            self.problem(
                critical_raw.span(),
                Some("critical"),
                format!(
                    "critical ({c}) must be beyond warning ({w}) for op {:?} ({} is worse)",
                    op.as_str(),
                    if op.upward() { "higher" } else { "lower" }
                ),
            );
        }
        let lowest = warning.or(critical);
        let recovery = match (&raw.recovery, lowest) {
            (Some(recovery), _) => {
                let checked = self.threshold("recovery", &raw.recovery, metric);
                if let (Some(op), Some(r), Some(lowest)) = (op, checked, lowest)
                    && op.bad(r, lowest)
                    && r != lowest
                {
                    let which = if warning.is_some() {
                        "warning"
                    } else {
                        "critical"
                    };
                    self.problem(
                        recovery.span(),
                        Some("recovery"),
                        format!(
                            "recovery ({r}) must not be beyond {which} ({lowest}) for op {:?}: the event clears once the value is back on the good side of recovery",
                            op.as_str()
                        ),
                    );
                }
                checked
            }
            (None, lowest) => lowest,
        };

        let for_secs = self.secs("for_secs", raw.for_secs, 0, MAX_DURATION_SECS);
        let clear_for_secs = self.secs("clear_for_secs", raw.clear_for_secs, 0, MAX_DURATION_SECS);
        let flap_window_span = raw.flap_window_secs.as_ref().map(Spanned::span);
        let flap_transitions = self.secs(
            "flap_transitions",
            raw.flap_transitions,
            u64::from(DEFAULT_FLAP_TRANSITIONS),
            MAX_FLAP_TRANSITIONS,
        );
        let flap_window_secs = self.secs(
            "flap_window_secs",
            raw.flap_window_secs,
            DEFAULT_FLAP_WINDOW_SECS,
            MAX_DURATION_SECS,
        );
        if let (Some(transitions), Some(0)) = (flap_transitions, flap_window_secs)
            && transitions > 0
        {
            self.problem(
                flap_window_span.unwrap_or(rule_span.clone()),
                Some("flap_window_secs"),
                "flap_window_secs: must be more than 0 while flap_transitions is (set flap_transitions = 0 to switch flap detection off)".into(),
            );
        }

        let selector = match raw.selector {
            None => Selector::default(),
            Some(selector) => {
                let span = selector.span();
                self.selector(selector.into_inner(), span, metric)
            }
        };

        let summary = self.template("summary", raw.summary, DEFAULT_SUMMARY);
        let description = self.template("description", raw.description, DEFAULT_DESCRIPTION);
        let enabled = raw.enabled.map(Spanned::into_inner).unwrap_or(true);

        if self.problems.len() > before {
            return None;
        }
        Some(Built::Rule(Rule {
            name: name?,
            metric: metric?,
            selector,
            aggregation: aggregation?,
            window_secs: window_secs?,
            op: op?,
            warning,
            critical,
            for_secs: for_secs?,
            recovery: recovery?,
            clear_for_secs: clear_for_secs?,
            summary,
            description,
            flap_transitions: u32::try_from(flap_transitions?).ok()?,
            flap_window_secs: flap_window_secs?,
            enabled,
            origin,
        }))
    }

    fn selector(
        &mut self,
        raw: RawSelector,
        span: Range<usize>,
        metric: Option<Metric>,
    ) -> Selector {
        let list = |checker: &mut Checker, field: &str, values: Vec<String>| {
            if values.iter().any(String::is_empty) {
                checker.problem(
                    span.clone(),
                    Some(field),
                    format!("selector.{field}: empty name in the list"),
                );
            }
            values
        };
        let classes = list(
            self,
            "class",
            raw.class.map(OneOrMany::into_vec).unwrap_or_default(),
        );
        let tags = list(self, "tags", raw.tags.unwrap_or_default());
        let services = list(
            self,
            "service",
            raw.service.map(OneOrMany::into_vec).unwrap_or_default(),
        );
        let glob = |checker: &mut Checker, field: &str, text: Option<String>| {
            let text = text?;
            match Glob::parse(&text) {
                Ok(glob) => Some(glob),
                Err(error) => {
                    checker.problem(
                        span.clone(),
                        Some(field),
                        format!("selector.{field}: {error}"),
                    );
                    None
                }
            }
        };
        let name = glob(self, "name", raw.name);
        let instance = glob(self, "instance", raw.instance);
        if let (Some(metric), Some(_)) = (metric, &instance)
            && metric.def().instance.is_none()
        {
            self.problem(
                span.clone(),
                Some("selector.instance"),
                format!(
                    "selector.instance: {} has one value per CI and no instance to match",
                    metric.name()
                ),
            );
        }
        Selector {
            classes,
            tags,
            services,
            name,
            instance,
        }
    }
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The key assigned on the line holding `offset`, if that line is `key = ...`.
fn key_on_line(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |at| at + 1);
    let line = text[start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    (!key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.'))
    .then(|| key.to_string())
}

/// The `name` of the `[[rule]]` entry around `offset`, found textually (for errors raised
/// before the file could be deserialised).
fn rule_name_around(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let header = text[..offset].rfind("[[rule]]")?;
    let body_start = header + "[[rule]]".len();
    let body_end = text[body_start..]
        .find("\n[")
        .map_or(text.len(), |at| body_start + at);
    text[body_start..body_end].lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "name").then(|| value.trim().trim_matches('"').to_string())
    })
}
