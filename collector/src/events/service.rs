//! The event service: one task owns the rules engine and is fed, through a bounded channel,
//! by ingest (agent metrics and inventories), the SNMP poller (device samples, unreachable
//! devices) and its own timer (silent agents, warranties, hold-down and clear timers,
//! silences ending). It records the engine's transitions as events, decides escalation
//! (silences, maintenance windows, symptoms of a root cause) and restores open events after a
//! restart. Feeding never blocks ingest: a full channel drops the observation and counts it.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::rules::{
    CiFacts, Clock, EventKey, EventState, EventStatus, MaintenanceWindow, Metric, Recurrence,
    RuleSet, Sample, Selector, Severity, Silence, SilenceTarget, Transition, WindowTarget,
    root_causes, silence,
};
use crate::store::{EventChange, EventRow, SilenceRow, Store};
use crate::tickets::route::{Destination, RouteFacts, Routes};

use super::observe;

/// Observations waiting for the engine; past it they are dropped (and counted).
const QUEUE: usize = 65_536;
/// How often silent agents, timers and silences are checked.
const TICK: Duration = Duration::from_secs(5);
/// How often the CMDB context (classes, tags, services, topology) and warranties are re-read.
const CONTEXT_EVERY: Duration = Duration::from_secs(60);

enum Input {
    Metrics {
        ci_id: i64,
        samples: Vec<Sample>,
        interval_secs: u32,
    },
    Device {
        ci_id: i64,
        samples: Vec<Sample>,
    },
    Unreachable {
        ci_id: i64,
    },
    Software {
        ci_id: i64,
        names: Vec<String>,
    },
    Forget(EventKey),
    Refresh,
    Reload(RuleSet, oneshot::Sender<usize>),
    Flush(oneshot::Sender<()>),
    Tick(oneshot::Sender<()>),
}

/// The handle the rest of the collector holds.
#[derive(Debug)]
pub struct EventService {
    tx: mpsc::Sender<Input>,
    dropped: AtomicU64,
    rules: std::sync::Mutex<Vec<RuleSummary>>,
    /// The rules file laid over the defaults (`[rules] file`), re-read by `reload`.
    pub rules_file: Option<PathBuf>,
}

/// What `rules list` shows of a rule.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RuleSummary {
    pub name: String,
    pub metric: String,
    pub selector: String,
    pub op: String,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    pub for_secs: u64,
    pub enabled: bool,
    /// `file:line` where it is defined.
    pub origin: String,
}

fn summaries(rules: &RuleSet) -> Vec<RuleSummary> {
    rules
        .rules()
        .iter()
        .map(|r| RuleSummary {
            name: r.name.clone(),
            metric: r.metric.name().to_string(),
            selector: r.selector.to_string(),
            op: r.op.as_str().to_string(),
            warning: r.warning,
            critical: r.critical,
            for_secs: r.for_secs,
            enabled: r.enabled,
            origin: format!("{}:{}", r.origin.file, r.origin.line),
        })
        .collect()
}

impl EventService {
    /// Restores open events and starts the task.
    pub async fn start(
        store: Store,
        rules: RuleSet,
        rules_file: Option<PathBuf>,
        clock: Arc<dyn Clock>,
        routes: Arc<Routes>,
    ) -> anyhow::Result<(Arc<EventService>, tokio::task::JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let service = Arc::new(EventService {
            tx,
            dropped: AtomicU64::new(0),
            rules: std::sync::Mutex::new(summaries(&rules)),
            rules_file,
        });
        let mut worker = Worker::new(store, rules, clock, routes).await?;
        let task = tokio::spawn(async move { worker.run(rx).await });
        Ok((service, task))
    }

    fn send(&self, input: Input) {
        if self.tx.try_send(input).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "rules engine behind: observations dropped");
            }
        }
    }

    /// An agent's metrics report, after it was stored (`samples` from
    /// [`observe::from_metrics`], taken before the report was moved into the store).
    pub fn metrics(&self, ci_id: i64, samples: Vec<Sample>, interval_secs: u32) {
        self.send(Input::Metrics {
            ci_id,
            samples,
            interval_secs,
        });
    }

    /// A host's full inventory: its installed packages, for deny-list rules.
    pub fn software(&self, ci_id: i64, names: Vec<String>) {
        self.send(Input::Software { ci_id, names });
    }

    /// A device's stored poll sample.
    pub fn device(&self, ci_id: i64, sample: &serde_json::Value) {
        self.send(Input::Device {
            ci_id,
            samples: observe::from_device_sample(sample),
        });
    }

    pub fn unreachable(&self, ci_id: i64) {
        self.send(Input::Unreachable { ci_id });
    }

    /// An event resolved by hand: the engine starts afresh on its key.
    pub async fn forget(&self, event: &EventRow) {
        self.send(Input::Forget(EventKey {
            rule: event.rule.clone(),
            ci_id: event.ci_id,
            instance: event.instance.clone(),
        }));
    }

    /// Silences, windows or the CMDB changed: re-read them now.
    pub async fn silences_changed(&self) {
        self.send(Input::Refresh);
    }

    /// Replaces the rules; returns how many are loaded.
    pub async fn reload(&self, rules: RuleSet) -> anyhow::Result<usize> {
        let list = summaries(&rules);
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Input::Reload(rules, done))
            .await
            .map_err(|_| anyhow::anyhow!("the rules engine has stopped"))?;
        let count = wait
            .await
            .map_err(|_| anyhow::anyhow!("the rules engine has stopped"))?;
        if let Ok(mut rules) = self.rules.lock() {
            *rules = list;
        }
        Ok(count)
    }

    /// Re-reads the rules file (and the defaults) and replaces the rules; an invalid file is
    /// an error naming its line, and the running rules stay.
    pub async fn reload_file(&self) -> anyhow::Result<usize> {
        let rules = load_rules(self.rules_file.as_deref())?;
        self.reload(rules).await
    }

    /// Waits until everything sent before has been evaluated and recorded (tests, shutdown).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Input::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Runs the timer's work now and waits for it (tests drive time with a manual clock).
    pub async fn tick_now(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Input::Tick(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    pub fn rules(&self) -> Vec<RuleSummary> {
        self.rules.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Observations dropped because the engine was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The rules `[rules] file` names laid over the defaults, or the defaults alone.
pub fn load_rules(file: Option<&std::path::Path>) -> Result<RuleSet, crate::rules::RulesError> {
    match file {
        Some(path) => RuleSet::load_with_defaults(path),
        None => Ok(RuleSet::with_defaults()),
    }
}

/// Checks a recurrence as `silence add --every` takes it.
pub fn check_recurrence(text: &str) -> Result<(), String> {
    Recurrence::parse(text)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

struct Worker {
    store: Store,
    engine: crate::rules::Engine,
    clock: Arc<dyn Clock>,
    facts: HashMap<i64, CiFacts>,
    upstream: HashMap<i64, Vec<i64>>,
    warranty_end: HashMap<i64, String>,
    silences: Vec<Silence>,
    windows: Vec<MaintenanceWindow>,
    /// Agent CIs: when their last report arrived and their interval.
    last_report: HashMap<i64, (i64, u32)>,
    /// Open events' ids, by key.
    ids: HashMap<EventKey, i64>,
    /// Open events that fired but are not escalated (silenced, symptom).
    held: HashMap<EventKey, String>,
    /// Open events whose state is firing or flapping, with their rule's metric.
    firing: HashMap<EventKey, Metric>,
    /// Where escalated events' tickets go.
    routes: Arc<Routes>,
}

impl Worker {
    async fn new(
        store: Store,
        rules: RuleSet,
        clock: Arc<dyn Clock>,
        routes: Arc<Routes>,
    ) -> anyhow::Result<Worker> {
        let engine = crate::rules::Engine::new(rules, clock.clone());
        let mut worker = Worker {
            store,
            engine,
            clock,
            facts: HashMap::new(),
            upstream: HashMap::new(),
            warranty_end: HashMap::new(),
            silences: Vec::new(),
            windows: Vec::new(),
            last_report: HashMap::new(),
            ids: HashMap::new(),
            held: HashMap::new(),
            firing: HashMap::new(),
            routes,
        };
        worker.refresh().await?;
        for (ci, at, interval) in worker.store.latest_agent_reports().await? {
            worker.last_report.insert(ci, (at, interval));
        }
        let open = worker.store.open_events().await?;
        let mut restore = Vec::new();
        for event in &open {
            let (Some(state), Some(severity)) = (
                EventState::from_name(&event.state),
                Severity::from_name(&event.severity),
            ) else {
                continue;
            };
            let key = EventKey {
                rule: event.rule.clone(),
                ci_id: event.ci_id,
                instance: event.instance.clone(),
            };
            worker.ids.insert(key.clone(), event.id);
            if event.escalated_at.is_none() && state != EventState::Pending {
                worker
                    .held
                    .insert(key.clone(), event.silenced_by.clone().unwrap_or_default());
            }
            restore.push((
                key,
                EventStatus {
                    state,
                    severity,
                    opened_ms: event.first_seen_at,
                    since_ms: event.last_seen_at,
                    value: event.value.unwrap_or(0.0),
                    threshold: event.threshold.unwrap_or(0.0),
                    ci_name: event.ci_name.clone(),
                },
            ));
        }
        let transitions = worker.engine.restore(restore);
        for (key, status) in worker.engine.open() {
            if matches!(status.state, EventState::Firing | EventState::Flapping)
                && let Some(rule) = worker.engine.rules().iter().find(|r| r.name == key.rule)
            {
                worker.firing.insert(key.clone(), rule.metric);
            }
        }
        worker.record(transitions).await;
        worker.observe_installed_software().await;
        if !open.is_empty() {
            tracing::info!(open = open.len(), "open events restored");
        }
        Ok(worker)
    }

    async fn run(&mut self, mut rx: mpsc::Receiver<Input>) {
        let mut tick = tokio::time::interval(TICK);
        let mut context = tokio::time::interval(CONTEXT_EVERY);
        loop {
            tokio::select! {
                input = rx.recv() => {
                    let Some(input) = input else { return };
                    self.handle(input).await;
                }
                _ = tick.tick() => self.tick().await,
                _ = context.tick() => {
                    if let Err(error) = self.refresh().await {
                        tracing::warn!(%error, "cannot refresh the rules context");
                    }
                }
            }
        }
    }

    fn facts(&self, ci_id: i64) -> CiFacts {
        self.facts.get(&ci_id).cloned().unwrap_or_else(|| CiFacts {
            id: ci_id,
            name: format!("CI {ci_id}"),
            ..CiFacts::default()
        })
    }

    async fn handle(&mut self, input: Input) {
        let transitions = match input {
            Input::Metrics {
                ci_id,
                samples,
                interval_secs,
            } => {
                // The engine's clock, not the sender's: arrival order is evaluation order.
                let at_ms = self.clock.now_ms();
                self.last_report.insert(ci_id, (at_ms, interval_secs));
                let facts = self.ensure_facts(ci_id).await;
                let mut samples = samples;
                samples.push(observe::silence(at_ms, at_ms, interval_secs));
                self.engine.observe_complete(&facts, &samples)
            }
            Input::Device { ci_id, samples } => {
                let facts = self.ensure_facts(ci_id).await;
                self.engine.observe_complete(&facts, &samples)
            }
            Input::Unreachable { ci_id } => {
                let facts = self.ensure_facts(ci_id).await;
                self.engine.observe(&facts, &observe::unreachable())
            }
            Input::Software { ci_id, names } => {
                let facts = self.ensure_facts(ci_id).await;
                let samples = observe::software(names.iter().map(String::as_str));
                let mut out = self.engine.observe_complete(&facts, &samples);
                if names.is_empty() {
                    // No package left: nothing in the samples says which ones went.
                    let open: Vec<String> = self
                        .firing
                        .keys()
                        .filter(|k| k.ci_id == ci_id)
                        .map(|k| k.instance.clone())
                        .collect();
                    for instance in open {
                        out.extend(self.engine.forget_instance(
                            ci_id,
                            Some(Metric::SoftwareInstalled),
                            &instance,
                        ));
                    }
                }
                out
            }
            Input::Forget(key) => {
                self.ids.remove(&key);
                self.held.remove(&key);
                self.firing.remove(&key);
                self.engine.forget_key(&key);
                Vec::new()
            }
            Input::Refresh => {
                if let Err(error) = self.refresh().await {
                    tracing::warn!(%error, "cannot refresh silences");
                }
                Vec::new()
            }
            Input::Reload(rules, done) => {
                let count = rules.len();
                let out = self.engine.replace_rules(rules);
                self.record(out).await;
                // A new or changed deny list applies to what is installed already.
                self.observe_installed_software().await;
                let _ = done.send(count);
                Vec::new()
            }
            Input::Flush(done) => {
                let _ = done.send(());
                Vec::new()
            }
            Input::Tick(done) => {
                self.tick().await;
                let _ = done.send(());
                Vec::new()
            }
        };
        self.record(transitions).await;
    }

    /// Evaluates rules on installed software against what the CMDB holds now (at start and
    /// after a reload): hosts send their packages only when they change, so a new deny rule
    /// would otherwise wait for each host's next change. Packages no longer installed resolve.
    async fn observe_installed_software(&mut self) {
        let globs: Vec<crate::rules::Glob> = self
            .engine
            .rules()
            .iter()
            .filter(|r| r.enabled && r.metric == Metric::SoftwareInstalled)
            .filter_map(|r| r.selector.instance.clone())
            .collect();
        // A rule without an instance glob would match every package of every host: such a
        // rule is evaluated as inventories arrive, not by reading the whole CMDB here.
        if globs.is_empty() {
            return;
        }
        let found = match self
            .store
            .software_matching(move |name| globs.iter().any(|g| g.matches(name)))
            .await
        {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(%error, "cannot read installed software for the rules");
                return;
            }
        };
        let mut by_ci: HashMap<i64, Vec<String>> = HashMap::new();
        for (ci, name) in found {
            by_ci.entry(ci).or_default().push(name);
        }
        // CIs with open software events and none of the packages now: those resolve.
        let stale: Vec<EventKey> = self
            .firing
            .iter()
            .filter(|(k, m)| **m == Metric::SoftwareInstalled && !by_ci.contains_key(&k.ci_id))
            .map(|(k, _)| k.clone())
            .collect();
        let mut transitions = Vec::new();
        for key in stale {
            transitions.extend(self.engine.forget_instance(
                key.ci_id,
                Some(Metric::SoftwareInstalled),
                &key.instance,
            ));
        }
        for (ci, names) in by_ci {
            let facts = self.facts(ci);
            let samples = observe::software(names.iter().map(String::as_str));
            transitions.extend(self.engine.observe_complete(&facts, &samples));
        }
        self.record(transitions).await;
    }

    /// Facts of a CI the context does not know yet (it appeared since the last refresh): read
    /// for that CI alone, so a thousand hosts enrolling at once cost a thousand small reads,
    /// not a thousand reads of the whole CMDB. Its services follow at the next refresh.
    async fn ensure_facts(&mut self, ci_id: i64) -> CiFacts {
        if !self.facts.contains_key(&ci_id) {
            match self.store.ci_facts(ci_id).await {
                Ok(Some((name, class, tags))) => {
                    self.facts.insert(
                        ci_id,
                        CiFacts {
                            id: ci_id,
                            name,
                            class,
                            tags,
                            services: Vec::new(),
                        },
                    );
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "cannot read a CI for the rules"),
            }
        }
        self.facts(ci_id)
    }

    async fn refresh(&mut self) -> anyhow::Result<()> {
        let context = self.store.rules_context().await?;
        self.facts = context
            .cis
            .into_iter()
            .map(|(id, name, class, tags)| {
                let services = context.services.get(&id).cloned().unwrap_or_default();
                (
                    id,
                    CiFacts {
                        id,
                        name,
                        class,
                        tags,
                        services,
                    },
                )
            })
            .collect();
        self.upstream = context.upstream;
        self.warranty_end = self
            .store
            .warranties(None)
            .await?
            .into_iter()
            .map(|w| (w.ci_id, w.warranty_end))
            .collect();
        let (silences, windows) = parse_silences(&self.store.list_silences(false).await?);
        self.silences = silences;
        self.windows = windows;
        Ok(())
    }

    async fn tick(&mut self) {
        let now = self.clock.now_ms();
        let mut transitions = Vec::new();
        let silent: Vec<(i64, i64, u32)> = self
            .last_report
            .iter()
            .map(|(&ci, &(at, interval))| (ci, at, interval))
            .collect();
        for (ci, at, interval) in silent {
            let facts = self.facts(ci);
            transitions.extend(
                self.engine
                    .observe(&facts, &[observe::silence(now, at, interval)]),
            );
        }
        let today = time::OffsetDateTime::from_unix_timestamp(now / 1000)
            .map(|t| t.date())
            .unwrap_or(time::Date::MIN);
        let warranties: Vec<(i64, String)> = self
            .warranty_end
            .iter()
            .map(|(&ci, end)| (ci, end.clone()))
            .collect();
        for (ci, end) in warranties {
            if let Some(sample) = observe::warranty(today, &end) {
                let facts = self.facts(ci);
                transitions.extend(self.engine.observe(&facts, &[sample]));
            }
        }
        transitions.extend(self.engine.tick());
        self.record(transitions).await;
        self.escalate_released(now).await;
    }

    /// Events held back by a silence, a window or as a symptom that are due now.
    async fn escalate_released(&mut self, now: i64) {
        if self.held.is_empty() {
            return;
        }
        let down = self.down();
        let causes = root_causes(&self.upstream, &down);
        let mut due = Vec::new();
        for (key, _) in self.held.iter() {
            let Some(status) = self.engine.status(key) else {
                continue;
            };
            let facts = self.facts(key.ci_id);
            let symptom = causes.contains_key(&key.ci_id) && self.is_down_metric(key);
            if !symptom
                && silence::escalation_due(
                    status.state,
                    false,
                    &facts,
                    &key.instance,
                    &key.rule,
                    &self.silences,
                    &self.windows,
                    now,
                )
                && let Some(&id) = self.ids.get(key)
            {
                due.push((key.clone(), id));
            }
        }
        if due.is_empty() {
            return;
        }
        let mut events = Vec::with_capacity(due.len());
        for (key, id) in &due {
            let severity = self
                .engine
                .status(key)
                .map(|s| s.severity.as_str())
                .unwrap_or("warning");
            events.push((*id, self.destinations(key, severity).await));
        }
        match self.store.escalate_events(events, now).await {
            Ok(()) => {
                for (key, _) in due {
                    self.held.remove(&key);
                }
            }
            Err(error) => tracing::warn!(%error, "cannot mark events escalated"),
        }
    }

    fn is_down_metric(&self, key: &EventKey) -> bool {
        matches!(
            self.firing.get(key),
            Some(Metric::AgentSilentIntervals | Metric::SnmpUnreachable)
        )
    }

    /// CIs with a firing "down" event: a silent agent or an unreachable device.
    fn down(&self) -> HashSet<i64> {
        self.firing
            .iter()
            .filter(|(_, m)| matches!(m, Metric::AgentSilentIntervals | Metric::SnmpUnreachable))
            .map(|(k, _)| k.ci_id)
            .collect()
    }

    async fn record(&mut self, transitions: Vec<Transition>) {
        if transitions.is_empty() {
            return;
        }
        let metric_of = |rule: &str, engine: &crate::rules::Engine| {
            engine
                .rules()
                .iter()
                .find(|r| r.name == rule)
                .map(|r| r.metric)
        };
        // Update what is firing first, so symptoms are judged with this batch's downs.
        for t in &transitions {
            let key = t.key();
            match t.to {
                EventState::Firing | EventState::Flapping => {
                    if let Some(metric) = metric_of(&t.rule, &self.engine) {
                        self.firing.insert(key, metric);
                    }
                }
                _ => {
                    self.firing.remove(&key);
                }
            }
        }
        let down = self.down();
        let causes = root_causes(&self.upstream, &down);
        let mut changes = Vec::with_capacity(transitions.len());
        let mut escalate = Vec::new();
        for t in &transitions {
            let key = t.key();
            let facts = self.facts(t.ci_id);
            let opening = matches!(t.to, EventState::Firing | EventState::Flapping)
                && !matches!(t.from, Some(EventState::Firing | EventState::Flapping));
            let mut silenced_by = None;
            let mut symptom_of_ci = None;
            if matches!(t.to, EventState::Firing | EventState::Flapping) {
                if self.is_down_metric(&key)
                    && let Some(root) = causes.get(&t.ci_id).and_then(|r| r.first())
                {
                    symptom_of_ci = Some(*root);
                    silenced_by = Some(format!("symptom of {}", self.facts(*root).name));
                } else if let Some(reason) = silence::silenced(
                    &facts,
                    &t.instance,
                    &t.rule,
                    &self.silences,
                    &self.windows,
                    t.at_ms,
                ) {
                    silenced_by = Some(format!("silenced: {reason}"));
                }
            }
            let escalate_now = match (t.to, &silenced_by) {
                (EventState::Firing | EventState::Flapping, None) => {
                    opening || self.held.contains_key(&key)
                }
                _ => false,
            };
            let escalate_to = if escalate_now {
                escalate.push(key.clone());
                Some(self.destinations(&key, t.severity.as_str()).await)
            } else {
                None
            };
            changes.push(EventChange {
                rule: t.rule.clone(),
                ci_id: t.ci_id,
                instance: t.instance.clone(),
                to_state: t.to.as_str().into(),
                severity: t.severity.as_str().into(),
                value: Some(t.value).filter(|v| v.is_finite()),
                threshold: Some(t.threshold).filter(|v| v.is_finite()),
                at: t.at_ms,
                summary: t.summary.clone(),
                description: t.description.clone(),
                silenced_by: silenced_by.clone(),
                symptom_of_ci,
                note: match t.previous_severity {
                    Some(before) => format!(
                        "{} -> {} ({})",
                        before.as_str(),
                        t.severity.as_str(),
                        t.cause.as_str()
                    ),
                    None => t.cause.as_str().replace('_', " "),
                },
                escalate: escalate_to,
            });
            match (t.to, &silenced_by) {
                (EventState::Resolved, _) => {
                    self.held.remove(&key);
                }
                (EventState::Firing | EventState::Flapping, Some(why)) => {
                    self.held.insert(key.clone(), why.clone());
                }
                _ => {}
            }
        }
        let ids = match self.store.apply_event_changes(changes).await {
            Ok(ids) => ids,
            Err(error) => {
                tracing::error!(%error, "cannot record events");
                return;
            }
        };
        for (t, id) in transitions.iter().zip(ids) {
            let key = t.key();
            match (t.to, id) {
                (EventState::Resolved, _) => {
                    self.ids.remove(&key);
                }
                (_, Some(id)) => {
                    self.ids.insert(key, id);
                }
                _ => {}
            }
        }
        // Marked escalated (and their tickets queued) in the same transaction as the change.
        for key in &escalate {
            self.held.remove(key);
        }
    }

    /// Where an event's tickets go: routing over the CI's class, services, tags and owner.
    async fn destinations(&mut self, key: &EventKey, severity: &str) -> Vec<Destination> {
        if self.routes.is_empty() {
            return Vec::new();
        }
        let facts = self.ensure_facts(key.ci_id).await;
        let owner = self.store.ci_owner(key.ci_id).await.unwrap_or_default();
        self.routes.destinations(&RouteFacts {
            rule: &key.rule,
            severity,
            class: &facts.class,
            services: &facts.services,
            tags: &facts.tags,
            owner: &owner,
        })
    }
}

/// Stored silences and windows as the engine's types; unparsable ones are skipped (they were
/// checked when added).
fn parse_silences(rows: &[SilenceRow]) -> (Vec<Silence>, Vec<MaintenanceWindow>) {
    let mut silences = Vec::new();
    let mut windows = Vec::new();
    for row in rows {
        let target = if let Some(ci) = row.matcher["ci"].as_str() {
            Some((
                SilenceTarget::Ci(ci.into()),
                Some(WindowTarget::Ci(ci.into())),
            ))
        } else if let Some(service) = row.matcher["service"].as_str() {
            Some((
                SilenceTarget::Service(service.into()),
                Some(WindowTarget::Service(service.into())),
            ))
        } else {
            row.matcher["selector"]
                .as_str()
                .and_then(|s| Selector::parse(s).ok())
                .map(|s| (SilenceTarget::Selector(s), None))
        };
        let Some((silence_target, window_target)) = target else {
            continue;
        };
        if row.kind == "window" {
            if let (Some(target), Ok(recurrence)) =
                (window_target, Recurrence::parse(&row.recurrence))
            {
                windows.push(MaintenanceWindow {
                    id: row.id,
                    target,
                    recurrence,
                    reason: row.reason.clone(),
                });
            }
        } else if let (Some(starts_ms), Some(ends_ms)) = (row.starts_at, row.ends_at) {
            silences.push(Silence {
                id: row.id,
                target: silence_target,
                rule: None,
                starts_ms,
                ends_ms,
                reason: row.reason.clone(),
                created_by: row.created_by.clone(),
            });
        }
    }
    (silences, windows)
}
