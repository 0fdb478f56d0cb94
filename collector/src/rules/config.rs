//! Rules as the engine uses them, the [`RuleSet`] that holds them, and its errors. The rule
//! file format and its validation are in [`super::parse`]; the shipped defaults in
//! `defaults.toml`.
//!
//! A rule file holds `[[rule]]` entries:
//!
//! ```toml
//! [[rule]]
//! name = "fs-full-prod"                 # unique; letters, digits, '-', '_', '.'
//! description = "{instance} on {ci} is {value}% full"   # template, optional
//! summary = "Filesystem {instance} full on {ci}"         # template, optional
//! metric = "filesystem.used_pct"        # one of rules::metrics::METRICS
//! selector = { class = ["server", "virtual_machine"], tags = ["prod"], service = "web-shop", name = "web*", instance = "/var*" }
//! aggregation = "avg"                   # last (default) | avg | min | max | rate
//! window_secs = 300                     # over the last 5 minutes (0 with "last")
//! op = ">="                             # > | >= | < | <=
//! warning = 85                          # at least one of warning, critical
//! critical = 95                         # beyond warning in the direction of op
//! for_secs = 120                        # hold-down: bad this long before firing (default 0)
//! recovery = 80                         # clears only on the good side of this (default: the lowest threshold)
//! clear_for_secs = 60                   # ... for this long (default 0)
//! flap_transitions = 5                  # more open/close transitions than this ... (0: no flap detection)
//! flap_window_secs = 600                # ... within this window is flapping
//! enabled = true
//! ```
//!
//! A user file is laid over the defaults ([`RuleSet::overlay`]): a rule with a default's name
//! replaces it, and an entry with only `name` and `enabled = false` switches one off.

use std::fmt;
use std::path::{Path, PathBuf};

use super::event::Severity;
use super::metrics::Metric;
use super::selector::Selector;
use super::template::Template;

/// The comparison that makes a value bad: `value op threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    /// Whether `value` is beyond `threshold`.
    pub fn bad(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
        }
    }

    /// Whether bad values are high ones (`>`, `>=`).
    pub fn upward(self) -> bool {
        matches!(self, Op::Gt | Op::Ge)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }

    pub fn from_name(text: &str) -> Option<Op> {
        [Op::Gt, Op::Ge, Op::Lt, Op::Le]
            .into_iter()
            .find(|op| op.as_str() == text)
    }
}

/// How the samples within a rule's window become the one value compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    /// The newest sample.
    Last,
    Avg,
    Min,
    Max,
    /// Per-second increase of a counter; a decrease is a counter reset and its interval is
    /// skipped.
    Rate,
}

impl Aggregation {
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregation::Last => "last",
            Aggregation::Avg => "avg",
            Aggregation::Min => "min",
            Aggregation::Max => "max",
            Aggregation::Rate => "rate",
        }
    }

    pub fn from_name(text: &str) -> Option<Aggregation> {
        [
            Aggregation::Last,
            Aggregation::Avg,
            Aggregation::Min,
            Aggregation::Max,
            Aggregation::Rate,
        ]
        .into_iter()
        .find(|aggregation| aggregation.as_str() == text)
    }
}

/// Where a rule was defined, for `rules list` and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub line: usize,
}

/// One validated rule. The parser builds it and checks what the engine relies on: at least
/// one threshold, critical beyond warning, recovery on the good side, finite numbers.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub metric: Metric,
    pub selector: Selector,
    pub aggregation: Aggregation,
    pub window_secs: u64,
    pub op: Op,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    pub for_secs: u64,
    /// The value must be on the good side of this (`!(value op recovery)`) to clear.
    pub recovery: f64,
    pub clear_for_secs: u64,
    pub summary: Template,
    pub description: Template,
    /// More open/close transitions than this within `flap_window_secs` is flapping; 0
    /// switches flap detection off.
    pub flap_transitions: u32,
    pub flap_window_secs: u64,
    pub enabled: bool,
    pub origin: Origin,
}

impl Rule {
    /// The severity a value is at: the worst threshold it is beyond, if any.
    pub fn level(&self, value: f64) -> Option<Severity> {
        if self.critical.is_some_and(|t| self.op.bad(value, t)) {
            Some(Severity::Critical)
        } else if self.warning.is_some_and(|t| self.op.bad(value, t)) {
            Some(Severity::Warning)
        } else {
            None
        }
    }

    /// Whether a value is on the good side of the recovery threshold.
    pub fn recovered(&self, value: f64) -> bool {
        !self.op.bad(value, self.recovery)
    }

    /// The least severe severity this rule raises (its "lowest active threshold").
    pub fn lowest_severity(&self) -> Severity {
        if self.warning.is_some() {
            Severity::Warning
        } else {
            Severity::Critical
        }
    }

    /// The threshold of a severity (the other one when the rule has only one).
    pub fn threshold(&self, severity: Severity) -> f64 {
        let (first, second) = match severity {
            Severity::Critical => (self.critical, self.warning),
            Severity::Warning => (self.warning, self.critical),
        };
        first.or(second).unwrap_or(self.recovery)
    }
}

/// One problem in a rule file, with as much of its place as is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: Option<usize>,
    /// The rule's name, when it has one.
    pub rule: Option<String>,
    /// The field at fault, when one is.
    pub field: Option<String>,
    /// What is wrong; it names the field itself, so the message reads on its own.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, " line {line}")?;
        }
        write!(f, ": ")?;
        if let Some(rule) = &self.rule {
            write!(f, "rule {rule:?}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Why rules could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("cannot read rules file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Every problem found, one per line when displayed.
    #[error("{}", display_problems(.0))]
    Invalid(Vec<Problem>),
}

fn display_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// An entry that only switches a rule of the set it is laid over off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disable {
    pub name: String,
    pub origin: Origin,
}

/// A validated set of rules with unique names, in file order. Disabled rules are kept (so
/// `rules list` shows them); the engine skips them.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    disables: Vec<Disable>,
}

/// The shipped defaults, embedded so a collector without a rules file still raises them.
pub const DEFAULTS_TOML: &str = include_str!("defaults.toml");

impl RuleSet {
    /// No rules.
    pub fn empty() -> RuleSet {
        RuleSet::default()
    }

    /// Parses rule file text; `file_name` is what errors call the file. Only the rules in the
    /// text: lay it over [`RuleSet::with_defaults`] with [`RuleSet::overlay`].
    pub fn parse(text: &str, file_name: &str) -> Result<RuleSet, RulesError> {
        let (rules, disables) = super::parse::parse(text, file_name)?;
        Ok(RuleSet { rules, disables })
    }

    /// Reads and parses a rule file (only its rules, see [`RuleSet::parse`]).
    pub fn load(path: &Path) -> Result<RuleSet, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        RuleSet::parse(&text, &path.display().to_string())
    }

    /// The shipped defaults with a user file laid over them: what the collector runs and
    /// what `rules check FILE` checks.
    pub fn load_with_defaults(path: &Path) -> Result<RuleSet, RulesError> {
        RuleSet::with_defaults().overlay(RuleSet::load(path)?)
    }

    /// The shipped default rules.
    pub fn with_defaults() -> RuleSet {
        #[allow(clippy::expect_used)]
        // Invariant: the embedded file is fixed at build time and a unit test parses it.
        RuleSet::parse(DEFAULTS_TOML, "defaults.toml").expect("the shipped defaults are valid")
    }

    /// Lays `user` over `self`: a user rule replaces the rule of the same name (keeping its
    /// place) or is added at the end; a disable entry switches the named rule off and is an
    /// error when there is no such rule (a typo would otherwise silently keep it on).
    pub fn overlay(mut self, user: RuleSet) -> Result<RuleSet, RulesError> {
        for rule in user.rules {
            match self.rules.iter_mut().find(|r| r.name == rule.name) {
                Some(slot) => *slot = rule,
                None => self.rules.push(rule),
            }
        }
        let mut problems = Vec::new();
        for disable in user.disables {
            match self.rules.iter_mut().find(|r| r.name == disable.name) {
                Some(rule) => rule.enabled = false,
                None => problems.push(Problem {
                    file: disable.origin.file.clone(),
                    line: Some(disable.origin.line),
                    rule: Some(disable.name.clone()),
                    field: Some("enabled".into()),
                    message: format!(
                        "enabled = false with no definition disables a default rule, and there is no default rule of this name; defaults: {}",
                        self.rules
                            .iter()
                            .map(|r| r.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }),
            }
        }
        if problems.is_empty() {
            Ok(self)
        } else {
            Err(RulesError::Invalid(problems))
        }
    }

    /// Every rule, enabled or not, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The entries that only disable a rule of the set this one is laid over.
    pub fn disables(&self) -> &[Disable] {
        &self.disables
    }

    pub fn get(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|rule| rule.name == name)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}
