//! The reporting loop: sample, wrap in a v1 envelope, send, repeat every interval.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use steward_shared::v1::{self, HostIdentity, MetricsReport};
use tokio::time::MissedTickBehavior;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::inventory::schedule::Schedule;
use crate::metrics::{Sampler, unix_ms};
use crate::spool::{Kind, Spool};
use crate::state::{Sequencer, StateDir};
use crate::transport::{Failed, SendError, Transport};

/// How long a one-shot sample waits between its priming sample and the real one, so CPU, disk
/// and network rates exist.
pub const PRIMING_DELAY: Duration = Duration::from_millis(500);
/// Host identity changes rarely (hostname, OS upgrade); it is re-read this often.
const IDENTITY_REFRESH: Duration = Duration::from_secs(600);

/// One report of this host, as `collect` prints it and `run --once` sends it.
pub async fn collect_once(config: &Config) -> Result<MetricsReport> {
    let mut sampler = Sampler::new(config.metrics.clone(), config.interval_secs)?;
    sampler.sample();
    tokio::time::sleep(PRIMING_DELAY).await;
    Ok(MetricsReport {
        host: crate::host::identity(&config.root),
        metrics: sampler.sample(),
    })
}

/// Runs the agent until `shutdown` resolves (or after one report with `once`).
pub async fn run(
    config: &Config,
    once: bool,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let state = StateDir::new(&config.state_dir);
    state
        .finish_interrupted_renewal()
        .context("cannot finish an interrupted certificate renewal")?;
    let enrolled = state.load()?;
    let request_timeout = Duration::from_secs(u64::from(config.request_timeout_secs));
    let transport = Transport::new(&enrolled, request_timeout)?;
    let mut identity = enrolled.identity.clone();
    let mut renew_after = Instant::now();
    let mut sequencer = Sequencer::new(state.clone()).context("cannot reserve sequence numbers")?;
    let agent_id = enrolled.identity.agent_id.clone();
    info!(
        agent_id,
        collector = enrolled.identity.collector_url,
        interval_secs = config.interval_secs,
        "agent started"
    );

    let mut inventory = Schedule::new(config, state.clone());
    if once {
        // Inventory first: a new agent's first report then carries the hardware identity the
        // collector identifies its CI by (after an OS reinstall, the same CI).
        if inventory.due() {
            let host = crate::host::identity(&config.root);
            let ack = send_inventory(
                &mut inventory,
                config,
                &host,
                &transport,
                &agent_id,
                sequencer.next_seq()?,
            )
            .await?;
            info!(seq = ack.seq, status = ack.status, "inventory acknowledged");
        }
        let report = collect_once(config).await?;
        let seq = sequencer.next_seq()?;
        let ack = send(&transport, &agent_id, seq, v1::Payload::Metrics(report)).await?;
        info!(seq = ack.seq, status = ack.status, "report acknowledged");
        return Ok(());
    }

    let interval = Duration::from_secs(u64::from(config.interval_secs));
    let mut delivery = Delivery {
        spool: Spool::open(state.path(), config.spool.limits()).context("cannot open the spool")?,
        transport,
        backoff: Backoff::new(
            interval,
            Duration::from_secs(u64::from(config.spool.max_backoff_secs)),
        ),
        health: Health::default(),
        drain_batch: config.spool.drain_batch,
    };
    let waiting = delivery.spool.stats();
    if waiting.backlog > 0 {
        info!(
            backlog = waiting.backlog,
            bytes = waiting.bytes,
            "reports from an earlier run wait in the spool; they are delivered oldest first"
        );
    }
    tokio::pin!(shutdown);
    // A fleet restarting together (a power cut, a package upgrade) spreads its first reports
    // over the jitter window instead of arriving at the collector in the same instant.
    let jitter = Duration::from_secs(u64::from(
        config
            .spool
            .start_jitter_secs
            .unwrap_or(config.interval_secs),
    ));
    tokio::select! {
        () = tokio::time::sleep(random_below(jitter)) => {}
        () = &mut shutdown => {
            info!("agent stopping");
            return Ok(());
        }
    }

    let mut sampler = Sampler::new(config.metrics.clone(), config.interval_secs)?;
    let mut host = crate::host::identity(&config.root);
    let mut host_read_at = Instant::now();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = &mut shutdown => {
                info!("agent stopping");
                return Ok(());
            }
        }
        if host_read_at.elapsed() >= IDENTITY_REFRESH {
            host = crate::host::identity(&config.root);
            host_read_at = Instant::now();
        }
        // Inventory before metrics, so a new agent's first report identifies its hardware.
        if inventory.due() {
            let taken = inventory.take(config, &host).await;
            let kind = match taken.report.content {
                Some(_) => Kind::Inventory,
                None => Kind::InventoryUnchanged,
            };
            let seq = sequencer.next_seq()?;
            let outcome = delivery
                .deliver(&agent_id, seq, kind, v1::Payload::Inventory(taken.report))
                .await;
            inventory.outcome(taken.hash, &outcome);
        }
        let report = MetricsReport {
            host: host.clone(),
            metrics: sampler.sample(),
        };
        let seq = sequencer.next_seq()?;
        delivery
            .deliver(&agent_id, seq, Kind::Metrics, v1::Payload::Metrics(report))
            .await;
        if Instant::now() >= renew_after
            && crate::renew::due(&identity, unix_ms(SystemTime::now()))
            && delivery.backoff.ready(Instant::now())
        {
            match renew_certificate(&state, &delivery.transport, request_timeout).await {
                Ok((renewed, transport)) => {
                    identity = renewed;
                    delivery.transport = transport;
                }
                Err(error) => {
                    warn!(%error, "certificate renewal failed; the current certificate stays in use and renewal is retried");
                    renew_after = Instant::now() + RENEW_RETRY;
                }
            }
        }
        // What waits in the spool goes out oldest first, within half an interval so the next
        // sample stays on time; a stop request ends it between two reports.
        tokio::select! {
            () = delivery.drain(&mut inventory, interval / 2) => {}
            () = &mut shutdown => {
                info!("agent stopping");
                return Ok(());
            }
        }
    }
}

/// How long after a failed certificate renewal the agent tries again.
const RENEW_RETRY: Duration = Duration::from_secs(300);

/// Renews the certificate and builds the client that presents the new one.
async fn renew_certificate(
    state: &StateDir,
    transport: &Transport,
    timeout: Duration,
) -> Result<(crate::state::Identity, Transport)> {
    let identity = crate::renew::renew(state, transport).await?;
    let transport = Transport::new(&state.load()?, timeout)?;
    info!(
        expires_ms = identity.cert_not_after_ms,
        "agent certificate renewed with a new key"
    );
    Ok((identity, transport))
}

/// What became of a fresh report.
#[derive(Debug)]
pub enum Outcome {
    Acknowledged(crate::transport::Ack),
    /// Kept in the spool for later delivery.
    Spooled,
    /// Refused by the collector (4xx) or dropped for lack of room: not kept.
    NotKept(SendError),
}

/// Sends fresh reports, keeps what the collector does not take in the spool, and delivers the
/// spool when the collector answers again.
struct Delivery {
    transport: Transport,
    spool: Spool,
    backoff: Backoff,
    health: Health,
    drain_batch: u32,
}

impl Delivery {
    async fn deliver(
        &mut self,
        agent_id: &str,
        seq: u64,
        kind: Kind,
        payload: v1::Payload,
    ) -> Outcome {
        let created_ms = unix_ms(SystemTime::now());
        let body = match encode(agent_id, seq, payload) {
            Ok(body) => body,
            Err(error) => {
                error!(seq, %error, "cannot encode the report");
                return Outcome::NotKept(error);
            }
        };
        // While backing off, fresh reports queue without a try; an inventory queues behind a
        // waiting one so the collector sees inventory changes in order.
        let queue = !self.backoff.ready(Instant::now())
            || (kind != Kind::Metrics && self.spool.holds_inventory());
        if !queue {
            match self
                .transport
                .send_report(body.clone(), Some(self.spool.stats()))
                .await
            {
                Ok(ack) => {
                    self.backoff.succeeded();
                    self.health.record(&Ok(ack.clone()));
                    return Outcome::Acknowledged(ack);
                }
                Err(Failed { error, .. }) if error.refuses_the_report() => {
                    self.health.record(&Err(error.clone()));
                    return Outcome::NotKept(error);
                }
                // Unreachable, overloaded, or refusing the agent rather than the report (a
                // revoked certificate, a proxy's 404): the report is kept, the agent backs off.
                Err(Failed { error, retry_after }) => {
                    self.backoff.failed(Instant::now(), retry_after);
                    self.health.record(&Err(error));
                }
            }
        }
        match self.spool.push(seq, kind, created_ms, &body) {
            Ok(true) => Outcome::Spooled,
            Ok(false) => Outcome::NotKept(SendError::Retryable(
                "the spool is full of inventories".into(),
            )),
            Err(error) => {
                error!(seq, error = %format!("{error:#}"), "cannot spool the report; it is lost");
                Outcome::NotKept(SendError::Retryable(format!("{error:#}")))
            }
        }
    }

    /// Delivers spooled reports oldest first: at most `drain_batch`, within `budget`, and only
    /// while the collector takes them.
    async fn drain(&mut self, schedule: &mut Schedule, budget: Duration) {
        if self.spool.is_empty() || !self.backoff.ready(Instant::now()) {
            return;
        }
        let deadline = Instant::now() + budget;
        let mut delivered = 0u32;
        while delivered < self.drain_batch && Instant::now() < deadline {
            let Some((entry, body)) = self.spool.oldest() else {
                break;
            };
            let stats = self.spool.stats();
            let result = match self.transport.send_report(body, Some(stats)).await {
                Ok(ack) => {
                    self.health.record(&Ok(ack.clone()));
                    Ok(ack)
                }
                Err(Failed { error, .. }) if error.refuses_the_report() => {
                    warn!(seq = entry.seq, %error, "the collector refused a spooled report; it is removed");
                    Err(error)
                }
                Err(Failed { error, retry_after }) => {
                    self.backoff.failed(Instant::now(), retry_after);
                    self.health.record(&Err(error));
                    break;
                }
            };
            self.backoff.succeeded();
            if entry.kind != Kind::Metrics {
                schedule.delivered_later(&result);
            }
            if let Err(error) = self.spool.remove(entry.seq) {
                warn!(seq = entry.seq, error = %format!("{error:#}"), "cannot remove a delivered report from the spool; it will be sent again and counted once");
                break;
            }
            delivered += 1;
        }
        if delivered > 0 {
            let left = self.spool.stats();
            info!(
                delivered,
                backlog = left.backlog,
                "delivered spooled reports"
            );
        }
    }
}

/// Exponential backoff with jitter between attempts while the collector is unreachable or
/// overloaded: the first retry after half to one interval, doubling up to `max`; a
/// `Retry-After` from the collector is a floor.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
    next_try: Option<Instant>,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max: max.max(base),
            failures: 0,
            next_try: None,
        }
    }

    pub fn ready(&self, now: Instant) -> bool {
        self.next_try.is_none_or(|at| now >= at)
    }

    /// Records a failed attempt and returns the wait before the next.
    pub fn failed(&mut self, now: Instant, retry_after: Option<Duration>) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let exponent = self.failures.saturating_sub(1).min(20);
        let ceiling = self.base.saturating_mul(1 << exponent).min(self.max);
        let wait = (ceiling / 2 + random_below(ceiling / 2)).max(retry_after.unwrap_or_default());
        self.next_try = Some(now + wait);
        wait
    }

    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.next_try = None;
    }
}

/// A uniformly random duration in `[0, max)` (zero for zero).
fn random_below(max: Duration) -> Duration {
    let millis = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    if millis == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(crate::random_u64() % millis)
}

/// Takes the inventory, sends it (in full or as the unchanged marker) and schedules the next.
async fn send_inventory(
    schedule: &mut Schedule,
    config: &Config,
    host: &HostIdentity,
    transport: &Transport,
    agent_id: &str,
    seq: u64,
) -> Result<crate::transport::Ack, SendError> {
    let taken = schedule.take(config, host).await;
    let result = send(
        transport,
        agent_id,
        seq,
        v1::Payload::Inventory(taken.report),
    )
    .await;
    schedule.record(taken.hash, &result);
    result
}

async fn send(
    transport: &Transport,
    agent_id: &str,
    seq: u64,
    payload: v1::Payload,
) -> Result<crate::transport::Ack, SendError> {
    transport.send(encode(agent_id, seq, payload)?).await
}

fn encode(agent_id: &str, seq: u64, payload: v1::Payload) -> Result<Vec<u8>, SendError> {
    let envelope = v1::Envelope {
        agent_id: agent_id.to_string(),
        seq,
        sent_at_ms: unix_ms(SystemTime::now()),
        payload,
    };
    steward_shared::encode_v1(&envelope).map_err(|e| SendError::Rejected {
        status: 0,
        message: e.to_string(),
    })
}

/// Logs transitions, not every failure: an operator wants "collector unreachable" once and
/// "reachable again" once, not a line every ten seconds; a rejection (such as an unsupported
/// protocol version) is logged once until its message changes or a report gets through.
#[derive(Debug, Default)]
struct Health {
    failing_since: Option<(Instant, u64)>,
    last_rejection: Option<String>,
}

/// What changed, worth one log line.
#[derive(Debug, PartialEq)]
enum Transition {
    Unreachable(String),
    Recovered { failures: u64 },
    Rejected { status: u16, message: String },
}

impl Health {
    fn record(&mut self, result: &Result<crate::transport::Ack, SendError>) {
        // Every report this loop sends has a fresh sequence number, so a duplicate means the
        // sequence state went backwards (restored state directory, two agents sharing one).
        if let Ok(ack) = result
            && ack.status == "duplicate"
        {
            warn!(
                seq = ack.seq,
                "the collector already had this sequence number; the report was not stored again"
            );
        }
        match self.transition(result) {
            Some(Transition::Unreachable(reason)) => {
                warn!(%reason, "collector unreachable; reports wait in the spool and are retried with backoff")
            }
            Some(Transition::Recovered { failures }) => {
                info!(failures, "collector reachable again")
            }
            Some(Transition::Rejected { status, message }) => {
                error!(status, %message, "collector rejected the report")
            }
            None => {}
        }
    }

    fn transition(
        &mut self,
        result: &Result<crate::transport::Ack, SendError>,
    ) -> Option<Transition> {
        match result {
            Ok(_) => {
                self.last_rejection = None;
                self.failing_since
                    .take()
                    .map(|(_, failures)| Transition::Recovered { failures })
            }
            Err(SendError::Retryable(reason)) => match &mut self.failing_since {
                Some((_, failures)) => {
                    *failures += 1;
                    None
                }
                None => {
                    self.failing_since = Some((Instant::now(), 1));
                    Some(Transition::Unreachable(reason.clone()))
                }
            },
            Err(SendError::Rejected { status, message }) => {
                if self.last_rejection.as_deref() == Some(message.as_str()) {
                    return None;
                }
                self.last_rejection = Some(message.clone());
                Some(Transition::Rejected {
                    status: *status,
                    message: message.clone(),
                })
            }
        }
    }
}

/// Enrolls with the collector unless already enrolled there.
pub async fn enroll(
    config: &Config,
    collector: &str,
    token: &str,
    fingerprint: &str,
    state_dir: &Path,
) -> Result<String> {
    let state = StateDir::new(state_dir);
    if state.is_enrolled() {
        let current = state.load()?;
        bail!(
            "already enrolled as {} with {} (state in {}); remove the state directory to enroll again",
            current.identity.agent_id,
            current.identity.collector_url,
            state_dir.display()
        );
    }
    let host: HostIdentity = crate::host::identity(&config.root);
    let identity = crate::enroll::enroll(collector, token, fingerprint, &state, &host).await?;
    Ok(identity.agent_id)
}

/// A short human view of one report, for `collect` without `--json` and for `quickstart`.
pub fn human_summary(report: &MetricsReport) -> String {
    use std::fmt::Write;
    let (h, m) = (&report.host, &report.metrics);
    let mut out = String::new();
    let gib = |b: u64| b as f64 / 1_073_741_824.0;
    let _ = writeln!(
        out,
        "host      {} ({}), {} {}, kernel {}, {}",
        h.hostname, h.fqdn, h.os_name, h.os_version, h.kernel, h.arch
    );
    let _ = writeln!(
        out,
        "machine   {}  agent {}  up {}s",
        h.machine_id, h.agent_version, m.uptime_secs
    );
    let _ = writeln!(
        out,
        "cpu       {:.1}% over {} cores, load {:.2} {:.2} {:.2}",
        m.cpu.total_pct,
        m.cpu.per_core_pct.len(),
        m.cpu.load1,
        m.cpu.load5,
        m.cpu.load15
    );
    let _ = writeln!(
        out,
        "memory    {:.1} of {:.1} GiB used, {:.1} available; swap {:.1} of {:.1} GiB",
        gib(m.memory.used),
        gib(m.memory.total),
        gib(m.memory.available),
        gib(m.memory.swap_used),
        gib(m.memory.swap_total)
    );
    for fs in &m.filesystems {
        let pct = if fs.total_bytes > 0 {
            fs.used_bytes as f64 * 100.0 / fs.total_bytes as f64
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "fs        {:<20} {:<6} {:>5.1}% of {:.1} GiB  ({})",
            fs.mount,
            fs.fs_type,
            pct,
            gib(fs.total_bytes),
            fs.device
        );
    }
    for disk in &m.disks {
        match &disk.rates {
            Some(r) => {
                let _ = writeln!(
                    out,
                    "disk      {:<10} read {:.0} B/s ({:.1}/s)  write {:.0} B/s ({:.1}/s)  busy {:.1}%",
                    disk.device,
                    r.read_bytes_per_sec,
                    r.reads_per_sec,
                    r.write_bytes_per_sec,
                    r.writes_per_sec,
                    r.busy_pct
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "disk      {:<10} (rates from the next cycle)",
                    disk.device
                );
            }
        }
    }
    for net in &m.networks {
        let state = match net.link_up {
            Some(true) => "up",
            Some(false) => "down",
            None => "unknown",
        };
        let rates = net
            .rates
            .as_ref()
            .map(|r| {
                format!(
                    "rx {:.0} B/s tx {:.0} B/s",
                    r.rx_bytes_per_sec, r.tx_bytes_per_sec
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "net       {:<10} {:<7} {} {}  {}",
            net.name,
            state,
            net.mac,
            net.addresses.join(","),
            rates
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected() -> Result<crate::transport::Ack, SendError> {
        Err(SendError::Rejected {
            status: 400,
            message: "unsupported protocol version 2: this collector decodes versions [1]".into(),
        })
    }

    #[test]
    fn a_rejection_is_logged_once_until_it_changes_or_clears() {
        let mut health = Health::default();
        assert!(matches!(
            health.transition(&rejected()),
            Some(Transition::Rejected { status: 400, .. })
        ));
        assert_eq!(health.transition(&rejected()), None);
        assert_eq!(health.transition(&rejected()), None);
        assert_eq!(
            health.transition(&Ok(crate::transport::Ack {
                seq: 1,
                status: "stored".into(),
                send_full_inventory: false,
            })),
            None
        );
        assert!(
            health.transition(&rejected()).is_some(),
            "after a success, a new rejection is news again"
        );
    }

    #[test]
    fn an_outage_is_logged_when_it_starts_and_when_it_ends() {
        let mut health = Health::default();
        let down = || Err(SendError::Retryable("connection refused".into()));
        assert_eq!(
            health.transition(&down()),
            Some(Transition::Unreachable("connection refused".into()))
        );
        assert_eq!(health.transition(&down()), None);
        assert_eq!(health.transition(&down()), None);
        let ok = Ok(crate::transport::Ack {
            seq: 9,
            status: "stored".into(),
            send_full_inventory: false,
        });
        assert_eq!(
            health.transition(&ok),
            Some(Transition::Recovered { failures: 3 })
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap_and_honours_retry_after() {
        let base = Duration::from_secs(10);
        let mut backoff = Backoff::new(base, Duration::from_secs(60));
        let now = Instant::now();
        assert!(backoff.ready(now));
        for (attempt, ceiling) in [10u64, 20, 40, 60, 60, 60].into_iter().enumerate() {
            let wait = backoff.failed(now, None);
            let ceiling = Duration::from_secs(ceiling);
            assert!(
                wait >= ceiling / 2 && wait <= ceiling,
                "attempt {attempt}: {wait:?} outside [{:?}, {ceiling:?}]",
                ceiling / 2
            );
            assert!(!backoff.ready(now));
            assert!(backoff.ready(now + wait));
        }
        // The collector's Retry-After is a floor.
        backoff.succeeded();
        assert!(backoff.ready(now));
        let wait = backoff.failed(now, Some(Duration::from_secs(120)));
        assert_eq!(wait, Duration::from_secs(120));
    }

    #[test]
    fn jitter_spreads_over_the_window() {
        let window = Duration::from_secs(10);
        let waits: Vec<Duration> = (0..200).map(|_| random_below(window)).collect();
        assert!(waits.iter().all(|w| *w < window));
        assert!(waits.iter().any(|w| *w < window / 4));
        assert!(waits.iter().any(|w| *w > window * 3 / 4));
        assert_eq!(random_below(Duration::ZERO), Duration::ZERO);
    }
}
