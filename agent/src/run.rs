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
use crate::state::{Sequencer, StateDir};
use crate::transport::{SendError, Transport};

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
    let enrolled = state.load()?;
    let transport = Transport::new(
        &enrolled,
        Duration::from_secs(u64::from(config.request_timeout_secs)),
    )?;
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

    let mut sampler = Sampler::new(config.metrics.clone(), config.interval_secs)?;
    let mut host = crate::host::identity(&config.root);
    let mut host_read_at = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs(u64::from(config.interval_secs)));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut health = Health::default();
    tokio::pin!(shutdown);
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
            let result = send_inventory(
                &mut inventory,
                config,
                &host,
                &transport,
                &agent_id,
                sequencer.next_seq()?,
            )
            .await;
            health.record(result);
        }
        let report = MetricsReport {
            host: host.clone(),
            metrics: sampler.sample(),
        };
        let seq = sequencer.next_seq()?;
        health.record(send(&transport, &agent_id, seq, v1::Payload::Metrics(report)).await);
    }
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
    let envelope = v1::Envelope {
        agent_id: agent_id.to_string(),
        seq,
        sent_at_ms: unix_ms(SystemTime::now()),
        payload,
    };
    let body = steward_shared::encode_v1(&envelope).map_err(|e| SendError::Rejected {
        status: 0,
        message: e.to_string(),
    })?;
    transport.send(body).await
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
    fn record(&mut self, result: Result<crate::transport::Ack, SendError>) {
        // Every report this loop sends has a fresh sequence number, so a duplicate means the
        // sequence state went backwards (restored state directory, two agents sharing one).
        if let Ok(ack) = &result
            && ack.status == "duplicate"
        {
            warn!(
                seq = ack.seq,
                "the collector already had this sequence number; the report was not stored again"
            );
        }
        match self.transition(result) {
            Some(Transition::Unreachable(reason)) => {
                warn!(%reason, "report not delivered; will keep trying every interval")
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
        result: Result<crate::transport::Ack, SendError>,
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
                    Some(Transition::Unreachable(reason))
                }
            },
            Err(SendError::Rejected { status, message }) => {
                if self.last_rejection.as_deref() == Some(message.as_str()) {
                    return None;
                }
                self.last_rejection = Some(message.clone());
                Some(Transition::Rejected { status, message })
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
            health.transition(rejected()),
            Some(Transition::Rejected { status: 400, .. })
        ));
        assert_eq!(health.transition(rejected()), None);
        assert_eq!(health.transition(rejected()), None);
        assert_eq!(
            health.transition(Ok(crate::transport::Ack {
                seq: 1,
                status: "stored".into(),
                send_full_inventory: false,
            })),
            None
        );
        assert!(
            health.transition(rejected()).is_some(),
            "after a success, a new rejection is news again"
        );
    }

    #[test]
    fn an_outage_is_logged_when_it_starts_and_when_it_ends() {
        let mut health = Health::default();
        let down = || Err(SendError::Retryable("connection refused".into()));
        assert_eq!(
            health.transition(down()),
            Some(Transition::Unreachable("connection refused".into()))
        );
        assert_eq!(health.transition(down()), None);
        assert_eq!(health.transition(down()), None);
        let ok = Ok(crate::transport::Ack {
            seq: 9,
            status: "stored".into(),
            send_full_inventory: false,
        });
        assert_eq!(
            health.transition(ok),
            Some(Transition::Recovered { failures: 3 })
        );
    }
}
