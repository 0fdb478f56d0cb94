//! Live host metrics. [`Sampler`] keeps what rates need between cycles (previous counters and when
//! they were read) and the sysinfo objects, refreshed with only the kinds needed — never
//! `refresh_all`, which would read every process.
//!
//! One file per metric family; each splits reading files from a pure `parse` that tests feed
//! with fixture text.

mod diskio;
mod filesystems;
mod network;
mod system;

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use steward_shared::v1::Metrics;

use crate::config::MetricsConfig;

pub use diskio::parse_diskstats;
pub use filesystems::{MountEntry, parse_mounts};
pub use network::parse_net_dev;

/// Samples the host; call [`Sampler::sample`] once per cycle.
#[derive(Debug)]
pub struct Sampler {
    config: MetricsConfig,
    interval_secs: u32,
    system: system::SystemSampler,
    filesystems: filesystems::FilesystemSampler,
    disks: diskio::DiskSampler,
    network: network::NetworkSampler,
}

impl Sampler {
    /// Fails only on a platform sysinfo does not support.
    pub fn new(config: MetricsConfig, interval_secs: u32) -> anyhow::Result<Sampler> {
        let system = system::SystemSampler::new().map_err(|error| {
            anyhow::anyhow!("cannot read CPU and memory on this platform: {error:?}")
        })?;
        Ok(Sampler {
            filesystems: filesystems::FilesystemSampler::new(config.network_fs_timeout_secs),
            config,
            interval_secs,
            system,
            disks: diskio::DiskSampler::default(),
            network: network::NetworkSampler::default(),
        })
    }

    /// Takes one sample. Rates cover the time since the previous call; on the first call they
    /// are absent (or, for CPU, measured since the sampler was created).
    pub fn sample(&mut self) -> Metrics {
        let now = Instant::now();
        let (cpu, memory, uptime_secs) = self.system.sample();
        Metrics {
            collected_at_ms: unix_ms(SystemTime::now()),
            interval_secs: self.interval_secs,
            uptime_secs,
            cpu,
            memory,
            filesystems: self.filesystems.sample(&self.config),
            disks: self.disks.sample(&self.config, now),
            networks: self.network.sample(&self.config, now),
        }
    }
}

/// Milliseconds since the Unix epoch; 0 for a clock before 1970.
pub fn unix_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Per-second rate of a counter, or `None` if it went backwards (reset or wrap).
fn rate(previous: u64, current: u64, seconds: f64) -> Option<f64> {
    (current >= previous && seconds > 0.0).then(|| (current - previous) as f64 / seconds)
}
