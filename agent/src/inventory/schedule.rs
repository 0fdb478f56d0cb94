//! Inventory in the reporting loop: taken at start and every `inventory.interval_secs`, sent in
//! full only when its content hash differs from the last one the collector acknowledged, else as
//! a small "unchanged" marker. The collector answers a marker it cannot match with
//! `send_full_inventory`, and the next cycle sends it in full.
//!
//! The inventory is taken in a short-lived child process (`steward-agent inventory --postcard`)
//! when the agent runs as its own binary: the package databases it parses (megabytes on a
//! server) never become part of the resident agent's heap, and a source that hangs is killed at a
//! timeout instead of stalling the metrics.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use steward_shared::v1::{HostIdentity, Inventory, InventoryReport};
use tokio::io::AsyncReadExt;
use tracing::{debug, warn};

use crate::config::Config;
use crate::state::StateDir;
use crate::transport::{Ack, SendError};

/// How long the inventory child may run.
const CHILD_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest inventory the child may hand back.
const CHILD_OUTPUT_MAX: u64 = 64 * 1024 * 1024;
/// After a failed send, the inventory is retried this soon (not a whole interval later).
const RETRY_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Schedule {
    enabled: bool,
    interval: Duration,
    next_due: Instant,
    state: StateDir,
    /// Hash of the last inventory the collector acknowledged in full (or confirmed).
    acknowledged: Option<String>,
}

/// An inventory ready to send, with the hash it will be known by.
#[derive(Debug)]
pub struct Taken {
    pub report: InventoryReport,
    pub hash: String,
}

impl Schedule {
    /// Due at once (the agent reports its inventory at start).
    pub fn new(config: &Config, state: StateDir) -> Schedule {
        Schedule {
            enabled: config.inventory.enabled,
            interval: Duration::from_secs(u64::from(config.inventory.interval_secs)),
            next_due: Instant::now(),
            acknowledged: state.inventory_hash(),
            state,
        }
    }

    pub fn due(&self) -> bool {
        self.enabled && Instant::now() >= self.next_due
    }

    /// Takes the inventory; the report carries the content only when it changed.
    pub async fn take(&self, config: &Config, host: &HostIdentity) -> Taken {
        let inventory = take_inventory(config).await;
        let hash = super::content_hash(&inventory);
        let unchanged = self.acknowledged.as_deref() == Some(hash.as_str());
        debug!(hash, unchanged, "inventory taken");
        Taken {
            report: InventoryReport {
                host: host.clone(),
                collected_at_ms: crate::metrics::unix_ms(SystemTime::now()),
                content_hash: hash.clone(),
                content: (!unchanged).then_some(inventory),
            },
            hash,
        }
    }

    /// Schedules the next inventory from the collector's answer.
    pub fn record(&mut self, hash: String, result: &Result<Ack, SendError>) {
        let now = Instant::now();
        match result {
            Ok(ack) if ack.send_full_inventory => {
                // The collector lacks what the marker referred to: send in full next cycle.
                self.forget();
                self.next_due = now;
            }
            Ok(_) => {
                self.remember(hash);
                self.next_due = now + self.interval;
            }
            Err(SendError::Retryable(_)) => self.next_due = now + RETRY_AFTER.min(self.interval),
            Err(SendError::Rejected { .. }) => {
                // Sending the same again would fail the same way; a full one might not.
                self.forget();
                self.next_due = now + self.interval;
            }
        }
    }

    /// What became of a fresh inventory in the reporting loop.
    pub fn outcome(&mut self, hash: String, outcome: &crate::run::Outcome) {
        match outcome {
            crate::run::Outcome::Acknowledged(ack) => self.record(hash, &Ok(ack.clone())),
            crate::run::Outcome::NotKept(error) => self.record(hash, &Err(error.clone())),
            crate::run::Outcome::Spooled => {
                // Queued in order in the spool: later inventories compare against it, and a
                // collector that ends up without it asks for the full inventory.
                self.remember(hash);
                self.next_due = Instant::now() + self.interval;
            }
        }
    }

    /// A spooled inventory was delivered (or refused) later.
    pub fn delivered_later(&mut self, result: &Result<Ack, SendError>) {
        match result {
            Ok(ack) if ack.send_full_inventory => {
                self.forget();
                self.next_due = Instant::now();
            }
            Ok(_) => {}
            Err(_) => self.forget(),
        }
    }

    fn remember(&mut self, hash: String) {
        if let Err(error) = self.state.set_inventory_hash(Some(&hash)) {
            warn!(error = %format!("{error:#}"), "cannot record the inventory hash; the next inventory is sent in full");
        }
        self.acknowledged = Some(hash);
    }

    fn forget(&mut self) {
        self.acknowledged = None;
        if let Err(error) = self.state.set_inventory_hash(None) {
            warn!(error = %format!("{error:#}"), "cannot clear the inventory hash");
        }
    }
}

/// Takes the inventory in a child process when this is the agent's own binary, else (in
/// tests, or embedded in the collector's quickstart) in this process.
async fn take_inventory(config: &Config) -> Inventory {
    let exe = std::env::current_exe().ok().filter(|exe| {
        exe.file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("steward-agent"))
    });
    if let Some(exe) = exe {
        match in_child(&exe, config).await {
            Ok(inventory) => return inventory,
            Err(error) => {
                warn!(%error, "inventory child failed; taking the inventory in the agent")
            }
        }
    }
    super::collect(&config.root, &config.inventory.asset_file)
}

async fn in_child(exe: &Path, config: &Config) -> Result<Inventory, String> {
    let mut child = tokio::process::Command::new(exe)
        .arg("inventory")
        .arg("--postcard")
        .arg("--root")
        .arg(&config.root)
        .arg("--asset-file")
        .arg(&config.inventory.asset_file)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| format!("cannot start {}: {error}", exe.display()))?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| "no output pipe".to_string())?;
    let work = async {
        let mut bytes = Vec::new();
        (&mut stdout)
            .take(CHILD_OUTPUT_MAX + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|error| format!("cannot read its output: {error}"))?;
        let status = child
            .wait()
            .await
            .map_err(|error| format!("cannot wait for it: {error}"))?;
        Ok::<_, String>((bytes, status))
    };
    let (bytes, status) = tokio::time::timeout(CHILD_TIMEOUT, work)
        .await
        .map_err(|_| format!("it took longer than {CHILD_TIMEOUT:?} and was stopped"))??;
    if !status.success() {
        return Err(format!("it exited with {status}"));
    }
    if bytes.len() as u64 > CHILD_OUTPUT_MAX {
        return Err(format!(
            "its output is larger than {CHILD_OUTPUT_MAX} bytes"
        ));
    }
    postcard::from_bytes(&bytes).map_err(|error| format!("its output does not decode: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(dir: &Path) -> Schedule {
        let config = Config::default();
        Schedule::new(&config, StateDir::new(dir))
    }

    fn ack(send_full_inventory: bool) -> Result<Ack, SendError> {
        Ok(Ack {
            seq: 1,
            status: "stored".into(),
            send_full_inventory,
        })
    }

    #[tokio::test]
    async fn an_acknowledged_inventory_is_sent_as_a_marker_until_the_collector_asks_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let fixture = tempfile::tempdir().unwrap();
        let config = Config {
            root: fixture.path().to_path_buf(),
            ..Config::default()
        };
        let mut schedule = Schedule::new(&config, StateDir::new(dir.path()));
        assert!(schedule.due(), "due at start");
        let first = schedule.take(&config, &HostIdentity::default()).await;
        assert!(
            first.report.content.is_some(),
            "the first inventory is full"
        );
        schedule.record(first.hash.clone(), &ack(false));
        assert!(!schedule.due(), "next one an interval later");

        // After a restart the acknowledged hash is remembered: unchanged → marker.
        let restarted = Schedule::new(&config, StateDir::new(dir.path()));
        let second = restarted.take(&config, &HostIdentity::default()).await;
        assert_eq!(second.hash, first.hash);
        assert!(second.report.content.is_none(), "unchanged is a marker");

        // The collector does not know that content: full again, at once.
        let mut restarted = restarted;
        restarted.record(second.hash, &ack(true));
        assert!(restarted.due());
        let third = restarted.take(&config, &HostIdentity::default()).await;
        assert!(third.report.content.is_some());
    }

    #[test]
    fn a_failed_send_is_retried_within_a_minute() {
        let dir = tempfile::tempdir().unwrap();
        let mut schedule = schedule(dir.path());
        schedule.record("h".into(), &Err(SendError::Retryable("down".into())));
        assert!(!schedule.due());
        assert!(schedule.next_due <= Instant::now() + RETRY_AFTER);
        assert_eq!(schedule.acknowledged, None);
    }
}
