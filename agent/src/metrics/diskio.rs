//! Block device I/O from `/proc/diskstats`, whole devices only (those listed in `/sys/block`):
//! partitions would count the same bytes twice.
//!
//! Windows reports no disk I/O. sysinfo gives only bytes read and written per volume there, and
//! a [`DiskRates`](steward_shared::v1::DiskRates) also holds operations per second and busy
//! time, which would take performance counters (PDH) or `IOCTL_DISK_PERFORMANCE`: an empty list
//! is honest where zeros would not be.

#[cfg(unix)]
use std::collections::{HashMap, HashSet};
use std::time::Instant;

use steward_shared::v1::DiskIo;
#[cfg(unix)]
use steward_shared::v1::DiskRates;

#[cfg(unix)]
use super::rate;
use crate::config::MetricsConfig;
#[cfg(unix)]
use crate::config::matches_any;

/// `/proc/diskstats` counts in 512-byte sectors whatever the device's sector size.
#[cfg(unix)]
const SECTOR_BYTES: u64 = 512;

/// Cumulative counters of one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiskCounters {
    pub reads: u64,
    pub read_sectors: u64,
    pub writes: u64,
    pub write_sectors: u64,
    pub io_ms: u64,
}

/// Parses `/proc/diskstats`: `major minor name reads merged sectors ms writes merged sectors ms
/// in_flight io_ms weighted_ms ...`. Malformed lines are skipped.
pub fn parse_diskstats(text: &str) -> Vec<(String, DiskCounters)> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let num = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
            Some((
                (*fields.get(2)?).to_string(),
                DiskCounters {
                    reads: num(3)?,
                    read_sectors: num(5)?,
                    writes: num(7)?,
                    write_sectors: num(9)?,
                    io_ms: num(12)?,
                },
            ))
        })
        .collect()
}

#[cfg(unix)]
#[derive(Debug, Default)]
pub(super) struct DiskSampler {
    previous: HashMap<String, DiskCounters>,
    previous_at: Option<Instant>,
}

#[cfg(unix)]
impl DiskSampler {
    pub(super) fn sample(&mut self, config: &MetricsConfig, now: Instant) -> Vec<DiskIo> {
        let Ok(text) = std::fs::read_to_string("/proc/diskstats") else {
            return Vec::new();
        };
        let whole: HashSet<String> = std::fs::read_dir("/sys/block")
            .map(|dir| {
                dir.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let counters: Vec<(String, DiskCounters)> = parse_diskstats(&text)
            .into_iter()
            .filter(|(name, _)| whole.contains(name) && !matches_any(&config.exclude_disks, name))
            .collect();
        let out = self.rates(&counters, now);
        self.previous = counters.into_iter().collect();
        self.previous_at = Some(now);
        out
    }

    fn rates(&self, counters: &[(String, DiskCounters)], now: Instant) -> Vec<DiskIo> {
        let seconds = self
            .previous_at
            .map(|t| now.duration_since(t).as_secs_f64())
            .unwrap_or(0.0);
        counters
            .iter()
            .map(|(name, current)| DiskIo {
                device: name.clone(),
                rates: self
                    .previous
                    .get(name)
                    .and_then(|before| disk_rates(before, current, seconds)),
            })
            .collect()
    }
}

/// Windows: no disk I/O (see the module documentation). Braces, not a unit struct, so the
/// sampler is built with `default()` on every platform.
#[cfg(windows)]
#[derive(Debug, Default)]
pub(super) struct DiskSampler {}

#[cfg(windows)]
impl DiskSampler {
    pub(super) fn sample(&mut self, _config: &MetricsConfig, _now: Instant) -> Vec<DiskIo> {
        Vec::new()
    }
}

#[cfg(unix)]
fn disk_rates(before: &DiskCounters, now: &DiskCounters, seconds: f64) -> Option<DiskRates> {
    let busy_ms = rate(before.io_ms, now.io_ms, seconds)?;
    Some(DiskRates {
        read_bytes_per_sec: rate(before.read_sectors, now.read_sectors, seconds)?
            * SECTOR_BYTES as f64,
        write_bytes_per_sec: rate(before.write_sectors, now.write_sectors, seconds)?
            * SECTOR_BYTES as f64,
        reads_per_sec: rate(before.reads, now.reads, seconds)?,
        writes_per_sec: rate(before.writes, now.writes, seconds)?,
        busy_pct: (busy_ms / 10.0).clamp(0.0, 100.0) as f32,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const BEFORE: &str = "\
   8       0 sda 1000 10 80000 500 2000 20 160000 900 0 1200 1400 0 0 0 0
   8       1 sda1 900 10 70000 450 1900 20 150000 850 0 1100 1300 0 0 0 0
 259       0 nvme0n1 50 0 4000 10 60 0 8000 20 0 25 30
   7       0 loop0 5 0 10 0 0 0 0 0 0 0 0 0 0 0 0
garbage line
";
    #[cfg(unix)]
    const AFTER: &str = "\
   8       0 sda 1100 10 100480 500 2200 20 201120 900 0 1700 1400 0 0 0 0
 259       0 nvme0n1 50 0 4000 10 60 0 8000 20 0 25 30
";

    #[test]
    fn parses_devices_and_skips_garbage() {
        let parsed = parse_diskstats(BEFORE);
        assert_eq!(parsed.len(), 4);
        assert_eq!(parsed[0].0, "sda");
        assert_eq!(
            parsed[0].1,
            DiskCounters {
                reads: 1000,
                read_sectors: 80000,
                writes: 2000,
                write_sectors: 160000,
                io_ms: 1200
            }
        );
    }

    #[cfg(unix)]
    #[test]
    fn rates_over_two_seconds() {
        let before = parse_diskstats(BEFORE)[0].1;
        let after = parse_diskstats(AFTER)[0].1;
        let rates = disk_rates(&before, &after, 2.0).unwrap();
        assert_eq!(rates.reads_per_sec, 50.0);
        assert_eq!(rates.writes_per_sec, 100.0);
        assert_eq!(rates.read_bytes_per_sec, 20480.0 * 512.0 / 2.0);
        assert_eq!(rates.write_bytes_per_sec, 41120.0 * 512.0 / 2.0);
        assert_eq!(rates.busy_pct, 25.0);
    }

    #[cfg(unix)]
    #[test]
    fn a_counter_going_backwards_gives_no_rate_not_a_spike() {
        let before = parse_diskstats(AFTER)[0].1;
        let after = parse_diskstats(BEFORE)[0].1;
        assert_eq!(disk_rates(&before, &after, 2.0), None);
    }
}
