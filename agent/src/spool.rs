//! The on-disk spool: reports the collector did not acknowledge (unreachable, or answering
//! 429/5xx) wait here, one file per report, and are delivered oldest first once it answers
//! again. It survives agent restarts and host reboots (each file is written through a
//! temporary name, synced, then renamed), and it is bounded in bytes and in age.
//!
//! When the bound is reached, the oldest metrics reports go first, then the oldest
//! "inventory unchanged" markers; full inventories (what changed on the host) are kept, except
//! that a new full inventory may replace the oldest ones when nothing else is left to drop. A
//! report larger than the whole spool is dropped at once. How many reports were dropped is
//! counted on disk, reported to the collector with every report, and shown by
//! `steward-agent status`.
//!
//! A fresh report is written here only once a delivery attempt failed (or while the agent backs
//! off): a report whose first attempt is cut short by the agent being killed is lost, at most
//! that one, never one the collector acknowledged or one already spooled.
//!
//! A report keeps its sequence number in the spool, so the collector stores each
//! (agent, sequence) once, however often a delivery is repeated after a crash.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use tracing::{debug, warn};

use crate::state::write_atomic;

/// The spool's folder inside the state directory.
pub const SPOOL_DIR: &str = "spool";
/// Total reports dropped since enrollment, one number.
const DROPPED_FILE: &str = "dropped";
const ENTRY_SUFFIX: &str = ".report";

/// What a spooled report is, which decides what is dropped first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Metrics,
    /// An inventory sent in full: a change on the host, never dropped for space.
    Inventory,
    /// An "inventory unchanged" marker.
    InventoryUnchanged,
}

impl Kind {
    fn letter(self) -> char {
        match self {
            Kind::Metrics => 'm',
            Kind::Inventory => 'i',
            Kind::InventoryUnchanged => 'u',
        }
    }

    fn from_letter(letter: &str) -> Option<Kind> {
        match letter {
            "m" => Some(Kind::Metrics),
            "i" => Some(Kind::Inventory),
            "u" => Some(Kind::InventoryUnchanged),
            _ => None,
        }
    }
}

/// The spool's bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_age_ms: i64,
}

/// One spooled report, as listed (its bytes stay on disk until it is sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub kind: Kind,
    /// When the report was made (Unix ms).
    pub created_ms: i64,
    pub bytes: u64,
}

/// What the spool holds: shown by `status` and sent to the collector with each report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub backlog: u64,
    pub bytes: u64,
    /// When the oldest waiting report was made (Unix ms).
    pub oldest_ms: Option<i64>,
    /// Reports dropped since enrollment because the spool was full or they were too old.
    pub dropped: u64,
}

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    limits: Limits,
    entries: BTreeMap<u64, Entry>,
    bytes: u64,
    dropped: u64,
}

impl Spool {
    /// Opens (creating) the spool in `state_dir`, listing what an earlier run left. Leftover
    /// temporary files (a crash mid-write) are removed; files that are not spool entries are
    /// left alone and named in a warning.
    pub fn open(state_dir: &Path, limits: Limits) -> Result<Spool> {
        let dir = state_dir.join(SPOOL_DIR);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot restrict {}", dir.display()))?;
        }
        let mut spool = Spool {
            dropped: read_dropped(&dir),
            dir,
            limits,
            entries: BTreeMap::new(),
            bytes: 0,
        };
        let listing = std::fs::read_dir(&spool.dir)
            .with_context(|| format!("cannot list {}", spool.dir.display()))?;
        for item in listing {
            let item = item.with_context(|| format!("cannot list {}", spool.dir.display()))?;
            let name = item.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(item.path());
                continue;
            }
            if name == DROPPED_FILE {
                continue;
            }
            let Some(mut entry) = parse_name(&name) else {
                warn!(file = %item.path().display(), "not a spool entry; left alone");
                continue;
            };
            entry.bytes = item.metadata().map(|m| m.len()).unwrap_or(0);
            spool.bytes += entry.bytes;
            spool.entries.insert(entry.seq, entry);
        }
        spool.expire(crate::metrics::unix_ms(std::time::SystemTime::now()))?;
        Ok(spool)
    }

    pub fn stats(&self) -> Stats {
        Stats {
            backlog: self.entries.len() as u64,
            bytes: self.bytes,
            // Sequence numbers grow with time (state.rs), so the first entry is the oldest.
            oldest_ms: self.entries.values().next().map(|e| e.created_ms),
            dropped: self.dropped,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether an inventory (full or marker) waits: a fresh inventory then queues behind it,
    /// so the collector sees inventory changes in the order they happened.
    pub fn holds_inventory(&self) -> bool {
        self.entries.values().any(|e| e.kind != Kind::Metrics)
    }

    /// Adds a report, first making room within the bounds (see the module documentation).
    /// Returns false when the report itself was dropped (a metrics report larger than what
    /// can be freed).
    pub fn push(&mut self, seq: u64, kind: Kind, created_ms: i64, bytes: &[u8]) -> Result<bool> {
        self.expire(created_ms)?;
        let size = bytes.len() as u64;
        if size > self.limits.max_bytes {
            // Room for it would mean emptying the spool, and it still would not fit.
            warn!(
                seq,
                bytes = size,
                max_bytes = self.limits.max_bytes,
                "a report larger than the whole spool was dropped"
            );
            self.count_dropped(1)?;
            return Ok(false);
        }
        while self.bytes + size > self.limits.max_bytes {
            let victim = self
                .oldest_of(Kind::Metrics)
                .or_else(|| self.oldest_of(Kind::InventoryUnchanged))
                .or_else(|| (kind == Kind::Inventory).then(|| self.oldest_of(Kind::Inventory))?);
            match victim {
                Some(seq) => {
                    self.drop_entry(seq)?;
                    self.count_dropped(1)?;
                }
                None => {
                    warn!(
                        seq,
                        bytes = size,
                        "the spool is full of inventories; this report was dropped"
                    );
                    self.count_dropped(1)?;
                    return Ok(false);
                }
            }
        }
        let entry = Entry {
            seq,
            kind,
            created_ms,
            bytes: size,
        };
        write_atomic(&self.dir.join(file_name(&entry)), bytes, true)?;
        self.bytes += size;
        self.entries.insert(seq, entry);
        Ok(true)
    }

    /// The oldest waiting report and its bytes. An entry whose file went missing or cannot be
    /// read is forgotten (and named in a warning) so one bad file never blocks the rest.
    pub fn oldest(&mut self) -> Option<(Entry, Vec<u8>)> {
        loop {
            let entry = *self.entries.values().next()?;
            let path = self.dir.join(file_name(&entry));
            match std::fs::read(&path) {
                Ok(bytes) => return Some((entry, bytes)),
                Err(error) => {
                    warn!(file = %path.display(), %error, "cannot read a spooled report; dropped");
                    self.forget(entry.seq);
                    let _ = std::fs::remove_file(&path);
                    if let Err(error) = self.count_dropped(1) {
                        warn!(error = %format!("{error:#}"), "cannot record the drop");
                    }
                }
            }
        }
    }

    /// Removes a delivered (or refused) report.
    pub fn remove(&mut self, seq: u64) -> Result<()> {
        self.drop_entry(seq)
    }

    /// Drops metrics reports and unchanged markers older than the age bound.
    pub fn expire(&mut self, now_ms: i64) -> Result<()> {
        let cutoff = now_ms.saturating_sub(self.limits.max_age_ms);
        let old: Vec<u64> = self
            .entries
            .values()
            .filter(|e| e.kind != Kind::Inventory && e.created_ms < cutoff)
            .map(|e| e.seq)
            .collect();
        if old.is_empty() {
            return Ok(());
        }
        for seq in &old {
            self.drop_entry(*seq)?;
        }
        debug!(
            count = old.len(),
            "dropped spooled reports past the age limit"
        );
        self.count_dropped(old.len() as u64)
    }

    fn oldest_of(&self, kind: Kind) -> Option<u64> {
        self.entries
            .values()
            .find(|e| e.kind == kind)
            .map(|e| e.seq)
    }

    fn forget(&mut self, seq: u64) -> Option<Entry> {
        let entry = self.entries.remove(&seq)?;
        self.bytes = self.bytes.saturating_sub(entry.bytes);
        Some(entry)
    }

    fn drop_entry(&mut self, seq: u64) -> Result<()> {
        if let Some(entry) = self.forget(seq) {
            let path = self.dir.join(file_name(&entry));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    return Err(error).with_context(|| format!("cannot remove {}", path.display()));
                }
            }
        }
        Ok(())
    }

    fn count_dropped(&mut self, count: u64) -> Result<()> {
        self.dropped += count;
        write_atomic(
            &self.dir.join(DROPPED_FILE),
            format!("{}\n", self.dropped).as_bytes(),
            false,
        )
    }
}

/// The spool's figures read from disk without opening it for writing: for `status`, which runs
/// beside a running agent.
pub fn read_stats(state_dir: &Path) -> Stats {
    let dir = state_dir.join(SPOOL_DIR);
    let mut stats = Stats {
        dropped: read_dropped(&dir),
        ..Stats::default()
    };
    let Ok(listing) = std::fs::read_dir(&dir) else {
        return stats;
    };
    for item in listing.flatten() {
        if let Some(entry) = parse_name(&item.file_name().to_string_lossy()) {
            stats.backlog += 1;
            stats.bytes += item.metadata().map(|m| m.len()).unwrap_or(0);
            stats.oldest_ms = Some(
                stats
                    .oldest_ms
                    .map_or(entry.created_ms, |o| o.min(entry.created_ms)),
            );
        }
    }
    stats
}

fn read_dropped(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join(DROPPED_FILE))
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

/// `<seq, 20 digits>-<kind letter>-<created ms>.report`: the listing sorts oldest first and
/// says what each entry is without reading it.
fn file_name(entry: &Entry) -> String {
    format!(
        "{:020}-{}-{}{ENTRY_SUFFIX}",
        entry.seq,
        entry.kind.letter(),
        entry.created_ms
    )
}

fn parse_name(name: &str) -> Option<Entry> {
    let stem = name.strip_suffix(ENTRY_SUFFIX)?;
    let mut parts = stem.splitn(3, '-');
    let seq = parts.next()?.parse().ok()?;
    let kind = Kind::from_letter(parts.next()?)?;
    let created_ms = parts.next()?.parse().ok()?;
    Some(Entry {
        seq,
        kind,
        created_ms,
        bytes: 0,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const DAY_MS: i64 = 86_400_000;

    fn limits(max_bytes: u64) -> Limits {
        Limits {
            max_bytes,
            max_age_ms: 7 * DAY_MS,
        }
    }

    fn seqs(spool: &Spool) -> Vec<(u64, Kind)> {
        spool.entries.values().map(|e| (e.seq, e.kind)).collect()
    }

    #[test]
    fn reports_survive_a_restart_and_come_back_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = crate::metrics::unix_ms(std::time::SystemTime::now()) - 60_000;
        let mut spool = Spool::open(dir.path(), limits(1 << 20)).unwrap();
        spool
            .push(12, Kind::Metrics, t0 + 2_000, b"twelve")
            .unwrap();
        spool.push(10, Kind::Inventory, t0 + 1_000, b"ten").unwrap();
        spool
            .push(11, Kind::Metrics, t0 + 1_500, b"eleven")
            .unwrap();
        drop(spool);

        let mut spool = Spool::open(dir.path(), limits(1 << 20)).unwrap();
        assert_eq!(
            spool.stats(),
            Stats {
                backlog: 3,
                bytes: 15,
                oldest_ms: Some(t0 + 1_000),
                dropped: 0
            }
        );
        assert_eq!(read_stats(dir.path()), spool.stats());
        let mut delivered = Vec::new();
        while let Some((entry, bytes)) = spool.oldest() {
            delivered.push((entry.seq, bytes));
            spool.remove(entry.seq).unwrap();
        }
        assert_eq!(
            delivered,
            vec![
                (10, b"ten".to_vec()),
                (11, b"eleven".to_vec()),
                (12, b"twelve".to_vec())
            ]
        );
        assert_eq!(read_stats(dir.path()).backlog, 0);
    }

    #[test]
    fn when_full_the_oldest_metrics_go_first_and_inventory_changes_stay() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), limits(40)).unwrap();
        spool.push(1, Kind::Metrics, 1, &[0; 10]).unwrap();
        spool.push(2, Kind::Inventory, 2, &[0; 10]).unwrap();
        spool.push(3, Kind::InventoryUnchanged, 3, &[0; 5]).unwrap();
        spool.push(4, Kind::Metrics, 4, &[0; 10]).unwrap();
        assert_eq!(spool.stats().bytes, 35);
        // Needs 10 more: the oldest metrics report (1) goes.
        spool.push(5, Kind::Metrics, 5, &[0; 10]).unwrap();
        assert_eq!(
            seqs(&spool),
            vec![
                (2, Kind::Inventory),
                (3, Kind::InventoryUnchanged),
                (4, Kind::Metrics),
                (5, Kind::Metrics)
            ]
        );
        // A big inventory: both metrics go, then the unchanged marker; the inventory stays.
        spool.push(6, Kind::Inventory, 6, &[0; 30]).unwrap();
        assert_eq!(
            seqs(&spool),
            vec![(2, Kind::Inventory), (6, Kind::Inventory)]
        );
        assert_eq!(spool.stats().dropped, 4);
        // Nothing left to drop but inventories: a metrics report is refused, not them.
        assert!(!spool.push(7, Kind::Metrics, 7, &[0; 10]).unwrap());
        assert_eq!(
            seqs(&spool),
            vec![(2, Kind::Inventory), (6, Kind::Inventory)]
        );
        assert_eq!(spool.stats().dropped, 5);
        assert!(spool.stats().bytes <= 40);
        // The count survives a restart.
        drop(spool);
        assert_eq!(read_stats(dir.path()).dropped, 5);
        assert_eq!(
            Spool::open(dir.path(), limits(40)).unwrap().stats().dropped,
            5
        );
    }

    #[test]
    fn a_report_larger_than_the_spool_is_dropped_without_emptying_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), limits(40)).unwrap();
        spool.push(1, Kind::Metrics, 1, &[0; 10]).unwrap();
        spool.push(2, Kind::Inventory, 2, &[0; 10]).unwrap();
        assert!(!spool.push(3, Kind::Inventory, 3, &[0; 41]).unwrap());
        assert_eq!(seqs(&spool), vec![(1, Kind::Metrics), (2, Kind::Inventory)]);
        assert_eq!(spool.stats().dropped, 1);
    }

    #[test]
    fn metrics_older_than_the_age_limit_are_dropped_and_inventories_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), limits(1 << 20)).unwrap();
        spool.push(1, Kind::Metrics, 0, b"old").unwrap();
        spool.push(2, Kind::Inventory, 0, b"old inventory").unwrap();
        spool
            .push(3, Kind::InventoryUnchanged, DAY_MS / 2, b"marker")
            .unwrap();
        spool.push(4, Kind::Metrics, 8 * DAY_MS, b"new").unwrap();
        assert_eq!(seqs(&spool), vec![(2, Kind::Inventory), (4, Kind::Metrics)]);
        assert_eq!(spool.stats().dropped, 2);
    }

    #[test]
    fn leftovers_of_a_crash_are_cleaned_and_strangers_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let spool_dir = dir.path().join(SPOOL_DIR);
        std::fs::create_dir_all(&spool_dir).unwrap();
        let now = crate::metrics::unix_ms(std::time::SystemTime::now());
        let name = format!("00000000000000000009-m-{now}.report");
        std::fs::write(spool_dir.join(format!(".{name}.tmp")), b"half").unwrap();
        std::fs::write(spool_dir.join("notes.txt"), b"mine").unwrap();
        std::fs::write(spool_dir.join(&name), b"whole").unwrap();
        // Left by a run long ago: past the age limit, dropped when the spool opens.
        std::fs::write(spool_dir.join("00000000000000000001-m-5.report"), b"old").unwrap();
        let mut spool = Spool::open(dir.path(), limits(1 << 20)).unwrap();
        assert_eq!(seqs(&spool), vec![(9, Kind::Metrics)]);
        assert_eq!(spool.stats().dropped, 1);
        assert!(!spool_dir.join(format!(".{name}.tmp")).exists());
        assert!(spool_dir.join("notes.txt").exists());
        // A file removed behind the spool's back is skipped, not an error.
        std::fs::remove_file(spool_dir.join(&name)).unwrap();
        assert!(spool.oldest().is_none());
        assert!(spool.is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn the_spool_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), limits(1 << 20)).unwrap();
        spool.push(1, Kind::Inventory, 1, b"serials").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join(SPOOL_DIR)), 0o700);
        let entry = std::fs::read_dir(dir.path().join(SPOOL_DIR))
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(mode(&entry.path()), 0o600);
    }
}
