//! The streaming rules engine: samples in, event transitions out.
//!
//! The engine keeps, per CI, which rules' selectors match it (rebuilt only when the CI's
//! class, tags, services or name change, or the rules are replaced), and per (rule, CI,
//! instance) the state of its one event (`state.rs`). Keys whose values are all good
//! hold no state at all, so memory follows the number of problems, not of CIs × rules.
//!
//! The collector calls [`Engine::observe`] (or [`Engine::observe_complete`]) with each report's
//! samples, [`Engine::tick`] every few seconds, and stores every [`Transition`] it gets back
//! (the event table is the lead's, not the engine's). After a restart it hands the open events
//! back with [`Engine::restore`].
//!
//! What a transition means for tickets: `from: None` opens an event; `to: Firing` (from
//! `None`, `Pending` or `Flapping`) is the moment to escalate, unless silenced; `Pending` never
//! warrants a ticket (a pending event resolved by a good value was a blip); `Firing → Firing`
//! is a severity change of the same event; `Firing → Flapping` keeps the event (and its
//! ticket) open and should be a comment; `to: Resolved` closes the event.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use super::clock::Clock;
use super::config::{Aggregation, Rule, RuleSet};
pub use super::event::{
    Cause, CiFacts, EventKey, EventState, EventStatus, Sample, Severity, Transition,
};
use super::metrics::{METRICS, Metric};
use super::series::{HistoryNeed, Series};
use super::state::{Ctx, KeyState};

/// Series whose newest sample is older than this (or than their window, if longer) are
/// dropped by [`Engine::tick`]: the instance stopped reporting.
pub const STALE_SERIES_MS: i64 = 3600 * 1000;

/// Counts of what the engine holds ([`Engine::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// CIs with a selector cache.
    pub cis: usize,
    /// Instances with a key or a series.
    pub instances: usize,
    /// Keys with state: an open event, a hold-down, or recent flap history.
    pub keys: usize,
    pub open_events: usize,
    /// Samples held for windows and rates.
    pub series_samples: usize,
}

/// Rules indexed for evaluation: only enabled ones, grouped by metric.
struct Index {
    rules: Vec<Rule>,
    /// Per metric (in [`METRICS`] order), the indices of the rules on it.
    by_metric: Vec<Vec<u32>>,
    /// Per metric, what the rules on it need kept.
    history: Vec<Option<HistoryNeed>>,
}

impl Index {
    fn new(set: &RuleSet) -> Index {
        let rules: Vec<Rule> = set.rules().iter().filter(|r| r.enabled).cloned().collect();
        let mut by_metric = vec![Vec::new(); METRICS.len()];
        for (slot, rule) in (0u32..).zip(&rules) {
            by_metric[rule.metric as usize].push(slot);
        }
        let history = by_metric
            .iter()
            .map(|slots: &Vec<u32>| HistoryNeed::of(slots.iter().map(|&s| &rules[s as usize])))
            .collect();
        Index {
            rules,
            by_metric,
            history,
        }
    }

    fn rule(&self, slot: u32) -> &Rule {
        &self.rules[slot as usize]
    }

    fn slot(&self, name: &str) -> Option<u32> {
        (0u32..)
            .zip(&self.rules)
            .find(|(_, rule)| rule.name == name)
            .map(|(slot, _)| slot)
    }
}

/// Per CI: the selector cache and the instances with state.
struct CiState {
    id: i64,
    name: String,
    /// Hash of the facts the cache was built from.
    facts_hash: u64,
    /// The rule generation the cache was built for.
    generation: u64,
    /// The matching rule slots of every metric, concatenated in metric order;
    /// `matched_start[m]..matched_start[m + 1]` are metric `m`'s.
    matched: Vec<u32>,
    matched_start: Vec<u32>,
    instances: HashMap<String, InstanceState>,
}

#[derive(Default)]
struct InstanceState {
    series: Vec<(Metric, Series)>,
    keys: Vec<KeyState>,
}

impl InstanceState {
    fn is_empty(&self) -> bool {
        self.series.is_empty() && self.keys.is_empty()
    }
}

/// The slots of metric index `m` in a CI's concatenated selector cache.
fn slots_of<'a>(matched: &'a [u32], matched_start: &[u32], m: usize) -> &'a [u32] {
    &matched[matched_start[m] as usize..matched_start[m + 1] as usize]
}

fn facts_hash(ci: &CiFacts) -> u64 {
    let mut hasher = DefaultHasher::new();
    (&ci.name, &ci.class, &ci.tags, &ci.services).hash(&mut hasher);
    hasher.finish()
}

impl CiState {
    fn new(id: i64, name: &str) -> CiState {
        CiState {
            id,
            name: name.to_string(),
            facts_hash: 0,
            // Never a real generation, so the first observe builds the cache.
            generation: u64::MAX,
            matched: Vec::new(),
            matched_start: vec![0; METRICS.len() + 1],
            instances: HashMap::new(),
        }
    }

    /// Rebuilds the selector cache if the CI's facts or the rules changed, and resolves the
    /// events the new selection no longer covers.
    fn refresh(
        &mut self,
        ci: &CiFacts,
        index: &Index,
        generation: u64,
        now_ms: i64,
        out: &mut Vec<Transition>,
    ) {
        let hash = facts_hash(ci);
        if hash == self.facts_hash && generation == self.generation {
            return;
        }
        self.facts_hash = hash;
        self.generation = generation;
        if self.name != ci.name {
            self.name = ci.name.clone();
        }
        self.matched.clear();
        self.matched_start.clear();
        for slots in &index.by_metric {
            self.matched_start.push(self.matched.len() as u32);
            self.matched.extend(
                slots
                    .iter()
                    .copied()
                    .filter(|&s| index.rule(s).selector.matches_ci(ci)),
            );
        }
        self.matched_start.push(self.matched.len() as u32);

        let CiState {
            name,
            matched,
            matched_start,
            instances,
            ..
        } = self;
        for (instance, state) in instances.iter_mut() {
            state.keys.retain_mut(|key| {
                let rule = index.rule(key.slot);
                let m = rule.metric as usize;
                let selected = slots_of(matched, matched_start, m).contains(&key.slot)
                    && rule.selector.matches_instance(instance);
                if !selected {
                    let cx = Ctx {
                        rule,
                        ci_name: name,
                        now_ms,
                    };
                    key.resolve(&cx, Cause::Deselected, out);
                }
                selected
            });
        }
        instances.retain(|_, state| !state.is_empty());
    }

    fn observe(&mut self, sample: &Sample, index: &Index, now_ms: i64, out: &mut Vec<Transition>) {
        if !sample.value.is_finite() {
            return;
        }
        let metric = sample.metric;
        let m = metric as usize;
        let CiState {
            id,
            name,
            matched,
            matched_start,
            instances,
            ..
        } = self;
        let slots = slots_of(matched, matched_start, m);
        if slots.is_empty() {
            return;
        }
        let applies = |slot: u32| index.rule(slot).selector.matches_instance(&sample.instance);
        let need = index.history[m];
        let keep_series = need.is_some()
            && slots
                .iter()
                .any(|&s| index.rule(s).aggregation != Aggregation::Last && applies(s));
        let state = match instances.get_mut(sample.instance.as_str()) {
            Some(state) => state,
            None => {
                // The common case: nothing known about this instance and the value is fine
                // for every rule, so nothing is stored.
                let bad = slots.iter().any(|&s| {
                    let rule = index.rule(s);
                    rule.aggregation == Aggregation::Last
                        && applies(s)
                        && rule.level(sample.value).is_some()
                });
                if !keep_series && !bad {
                    return;
                }
                instances.entry(sample.instance.clone()).or_default()
            }
        };
        let series = match need {
            Some(need) if keep_series => {
                let at = match state.series.iter().position(|(m, _)| *m == metric) {
                    Some(at) => at,
                    None => {
                        state.series.push((metric, Series::default()));
                        state.series.len() - 1
                    }
                };
                let series = &mut state.series[at].1;
                series.push(now_ms, sample.value, need);
                Some(&state.series[at].1)
            }
            _ => None,
        };
        for &slot in slots {
            if !applies(slot) {
                continue;
            }
            let rule = index.rule(slot);
            let value = match (rule.aggregation, series) {
                (Aggregation::Last, _) => Some(sample.value),
                (_, Some(series)) => series.aggregate(rule, now_ms),
                (_, None) => None,
            };
            let Some(value) = value else {
                continue;
            };
            let cx = Ctx {
                rule,
                ci_name: name,
                now_ms,
            };
            match state.keys.iter_mut().find(|key| key.slot == slot) {
                Some(key) => key.evaluate(&cx, value, out),
                None if rule.level(value).is_some() => {
                    let mut key = KeyState::new(
                        slot,
                        EventKey {
                            rule: rule.name.clone(),
                            ci_id: *id,
                            instance: sample.instance.clone(),
                        },
                    );
                    key.evaluate(&cx, value, out);
                    state.keys.push(key);
                }
                None => {}
            }
        }
        state
            .keys
            .retain(|key| !key.is_idle(index.rule(key.slot), now_ms));
        if state.is_empty() {
            instances.remove(sample.instance.as_str());
        }
    }
}

/// The rules engine. Not thread-safe by itself: the collector owns it behind one lock or task.
pub struct Engine {
    clock: Arc<dyn Clock>,
    index: Index,
    /// Bumped by [`Engine::replace_rules`], so every CI's selector cache is rebuilt.
    generation: u64,
    cis: HashMap<i64, CiState>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("rules", &self.index.rules.len())
            .field("cis", &self.cis.len())
            .field("generation", &self.generation)
            .finish()
    }
}

impl Engine {
    pub fn new(rules: RuleSet, clock: Arc<dyn Clock>) -> Engine {
        Engine {
            clock,
            index: Index::new(&rules),
            generation: 0,
            cis: HashMap::new(),
        }
    }

    /// The enabled rules the engine evaluates.
    pub fn rules(&self) -> &[Rule] {
        &self.index.rules
    }

    /// Evaluates a CI's samples at the clock's now. `samples` may be any subset of the CI's
    /// metrics and instances: what is not in it is left as it was.
    pub fn observe(&mut self, ci: &CiFacts, samples: &[Sample]) -> Vec<Transition> {
        let now_ms = self.clock.now_ms();
        let mut out = Vec::new();
        let state = self
            .cis
            .entry(ci.id)
            .or_insert_with(|| CiState::new(ci.id, &ci.name));
        state.refresh(ci, &self.index, self.generation, now_ms, &mut out);
        for sample in samples {
            state.observe(sample, &self.index, now_ms, &mut out);
        }
        out
    }

    /// Like [`Engine::observe`], but `samples` holds every instance of each metric it
    /// mentions (a report lists all mounted filesystems, an inventory all packages): events
    /// on an instance of such a metric that is not in `samples` resolve as
    /// [`Cause::InstanceGone`]. Metrics with no sample at all are left as they were, so the
    /// last package of a CI being removed needs [`Engine::forget_instance`].
    pub fn observe_complete(&mut self, ci: &CiFacts, samples: &[Sample]) -> Vec<Transition> {
        let mut out = self.observe(ci, samples);
        let now_ms = self.clock.now_ms();
        let mut reported = [false; METRICS.len()];
        let mut present: HashSet<(Metric, &str)> = HashSet::new();
        for sample in samples {
            reported[sample.metric as usize] = true;
            present.insert((sample.metric, sample.instance.as_str()));
        }
        let Some(state) = self.cis.get_mut(&ci.id) else {
            return out;
        };
        let index = &self.index;
        for (instance, instance_state) in state.instances.iter_mut() {
            let gone = |metric: Metric| {
                reported[metric as usize] && !present.contains(&(metric, instance.as_str()))
            };
            instance_state.keys.retain_mut(|key| {
                let rule = index.rule(key.slot);
                if !gone(rule.metric) {
                    return true;
                }
                let cx = Ctx {
                    rule,
                    ci_name: &state.name,
                    now_ms,
                };
                key.resolve(&cx, Cause::InstanceGone, &mut out);
                false
            });
            instance_state.series.retain(|(metric, _)| !gone(*metric));
        }
        state
            .instances
            .retain(|_, instance_state| !instance_state.is_empty());
        out
    }

    /// Resolves and forgets what an instance of a CI had open: for one metric, or for every
    /// metric when `metric` is `None` (a filesystem unmounted, an interface removed).
    pub fn forget_instance(
        &mut self,
        ci_id: i64,
        metric: Option<Metric>,
        instance: &str,
    ) -> Vec<Transition> {
        let now_ms = self.clock.now_ms();
        let mut out = Vec::new();
        let Some(state) = self.cis.get_mut(&ci_id) else {
            return out;
        };
        let Some(instance_state) = state.instances.get_mut(instance) else {
            return out;
        };
        let index = &self.index;
        let applies = |m: Metric| metric.is_none_or(|metric| metric == m);
        instance_state.keys.retain_mut(|key| {
            let rule = index.rule(key.slot);
            if !applies(rule.metric) {
                return true;
            }
            let cx = Ctx {
                rule,
                ci_name: &state.name,
                now_ms,
            };
            key.resolve(&cx, Cause::InstanceGone, &mut out);
            false
        });
        instance_state.series.retain(|(m, _)| !applies(*m));
        if instance_state.is_empty() {
            state.instances.remove(instance);
        }
        out
    }

    /// Resolves and forgets everything about a CI (it was deleted or merged away).
    pub fn forget_ci(&mut self, ci_id: i64) -> Vec<Transition> {
        let now_ms = self.clock.now_ms();
        let mut out = Vec::new();
        let Some(mut state) = self.cis.remove(&ci_id) else {
            return out;
        };
        for instance_state in state.instances.values_mut() {
            for key in &mut instance_state.keys {
                let cx = Ctx {
                    rule: self.index.rule(key.slot),
                    ci_name: &state.name,
                    now_ms,
                };
                key.resolve(&cx, Cause::CiGone, &mut out);
            }
        }
        out
    }

    /// Drops an event's state without a transition: an admin resolved it by hand, so the
    /// next bad value opens a new event. The instance's series (for windows) is kept.
    pub fn forget_key(&mut self, key: &EventKey) {
        let Some(state) = self.cis.get_mut(&key.ci_id) else {
            return;
        };
        let Some(instance_state) = state.instances.get_mut(&key.instance) else {
            return;
        };
        let index = &self.index;
        instance_state
            .keys
            .retain(|k| index.rule(k.slot).name != key.rule);
    }

    /// Time-based work, to be called every few seconds: hold-downs and clear delays that
    /// elapsed, flapping that ended; also drops state nothing needs any more (series of
    /// instances that stopped reporting, keys idle past their flap window).
    pub fn tick(&mut self) -> Vec<Transition> {
        let now_ms = self.clock.now_ms();
        let mut out = Vec::new();
        let index = &self.index;
        for state in self.cis.values_mut() {
            if state.instances.is_empty() {
                continue;
            }
            let name = &state.name;
            for instance_state in state.instances.values_mut() {
                for key in &mut instance_state.keys {
                    let cx = Ctx {
                        rule: index.rule(key.slot),
                        ci_name: name,
                        now_ms,
                    };
                    key.tick(&cx, &mut out);
                }
                instance_state
                    .keys
                    .retain(|key| !key.is_idle(index.rule(key.slot), now_ms));
                instance_state.series.retain(|(metric, series)| {
                    index.history[*metric as usize].is_some_and(|need| {
                        series
                            .newest_ms()
                            .is_some_and(|at| at > now_ms - need.window_ms.max(STALE_SERIES_MS))
                    })
                });
            }
            state
                .instances
                .retain(|_, instance_state| !instance_state.is_empty());
        }
        out
    }

    /// Replaces the rules (a reload). Events of rules that keep their name (and metric) keep
    /// their state and are judged by the new definition from the next sample on; events of
    /// rules removed, disabled or moved to another metric are resolved ([`Cause::RuleGone`]).
    /// Selectors are re-matched at each CI's next observe ([`Cause::Deselected`] for events
    /// they no longer cover).
    pub fn replace_rules(&mut self, rules: RuleSet) -> Vec<Transition> {
        let now_ms = self.clock.now_ms();
        let mut out = Vec::new();
        let new = Index::new(&rules);
        let old = &self.index;
        for state in self.cis.values_mut() {
            let name = &state.name;
            for instance_state in state.instances.values_mut() {
                instance_state.keys.retain_mut(|key| {
                    let rule = old.rule(key.slot);
                    match new.slot(&rule.name) {
                        Some(slot) if new.rule(slot).metric == rule.metric => {
                            key.slot = slot;
                            true
                        }
                        _ => {
                            let cx = Ctx {
                                rule,
                                ci_name: name,
                                now_ms,
                            };
                            key.resolve(&cx, Cause::RuleGone, &mut out);
                            false
                        }
                    }
                });
            }
            state
                .instances
                .retain(|_, instance_state| !instance_state.is_empty());
        }
        self.index = new;
        self.generation += 1;
        out
    }

    /// Every open event (Pending, Firing or Flapping), in no particular order.
    pub fn open(&self) -> impl Iterator<Item = (&EventKey, &EventStatus)> {
        self.cis.values().flat_map(|state| {
            state.instances.values().flat_map(|instance_state| {
                instance_state
                    .keys
                    .iter()
                    .filter_map(|key| key.status.as_ref().map(|status| (&key.key, status)))
            })
        })
    }

    /// How much state the engine holds, for tests and the benchmark.
    pub fn stats(&self) -> EngineStats {
        let mut stats = EngineStats {
            cis: self.cis.len(),
            ..EngineStats::default()
        };
        for state in self.cis.values() {
            stats.instances += state.instances.len();
            for instance_state in state.instances.values() {
                stats.keys += instance_state.keys.len();
                stats.open_events += instance_state
                    .keys
                    .iter()
                    .filter(|k| k.status.is_some())
                    .count();
                stats.series_samples += instance_state
                    .series
                    .iter()
                    .map(|(_, s)| s.len())
                    .sum::<usize>();
            }
        }
        stats
    }

    /// The open event of a key, if any.
    pub fn status(&self, key: &EventKey) -> Option<&EventStatus> {
        self.cis
            .get(&key.ci_id)?
            .instances
            .get(key.instance.as_str())?
            .keys
            .iter()
            .find(|state| state.key.rule == key.rule)?
            .status
            .as_ref()
    }

    /// Puts back the open events saved before a restart; call it before the first observe.
    /// Events of rules that no longer exist (or are disabled) are resolved instead
    /// ([`Cause::RuleGone`], summary written without the rule's template); those in state
    /// `Resolved` are ignored. A hold-down keeps its start; a clear in progress and the flap
    /// history are not saved, so a clear starts over and a restored Flapping event must be stable
    /// for a whole flap window from the restore.
    pub fn restore(&mut self, open: Vec<(EventKey, EventStatus)>) -> Vec<Transition> {
        let now_ms = self.clock.now_ms();
        let mut out = Vec::new();
        for (key, status) in open {
            let Some(slot) = self.index.slot(&key.rule) else {
                if status.state != EventState::Resolved {
                    out.push(Transition {
                        summary: format!("{} on {} {}", key.rule, status.ci_name, key.instance)
                            .trim()
                            .to_string(),
                        description: format!(
                            "Rule {} no longer exists or is disabled; its open event is resolved.",
                            key.rule
                        ),
                        rule: key.rule,
                        ci_id: key.ci_id,
                        instance: key.instance,
                        from: Some(status.state),
                        to: EventState::Resolved,
                        severity: status.severity,
                        previous_severity: None,
                        value: status.value,
                        threshold: status.threshold,
                        at_ms: now_ms,
                        cause: Cause::RuleGone,
                    });
                }
                continue;
            };
            let ci_state = self
                .cis
                .entry(key.ci_id)
                .or_insert_with(|| CiState::new(key.ci_id, &status.ci_name));
            let instance = key.instance.clone();
            let Some(restored) = KeyState::restore(slot, key, status, now_ms) else {
                continue;
            };
            let instance_state = ci_state.instances.entry(instance).or_default();
            instance_state.keys.retain(|existing| existing.slot != slot);
            instance_state.keys.push(restored);
        }
        out
    }
}
