//! The `[snmp]` section of `collector.toml`: polling defaults and targets kept in the file.
//!
//! ```toml
//! [snmp]
//! interval_secs = 60
//!
//! [[snmp.targets]]
//! host = "10.0.0.1"
//! credentials = { version = "v2c", community = "public" }
//!
//! [[snmp.targets]]
//! host = "core1.example.org"
//! port = 161
//! interval_secs = 30
//! credentials = { version = "v3", user = "monitor", auth = "sha256", auth_pass = "...",
//!                 privacy = { proto = "aes256", pass = "..." } }
//! ```
//!
//! Targets from the file are synchronised into the store at start (their credentials sealed
//! like those added with `snmp add`); removing one from the file removes it at the next start.

use serde::{Deserialize, Serialize};

use super::client::Credentials;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnmpConfig {
    /// Seconds between polls of a target that sets no interval of its own.
    pub interval_secs: u32,
    /// Milliseconds to wait for each answer.
    pub timeout_ms: u64,
    /// Requests re-sent after a timeout before the device counts as unreachable.
    pub retries: u32,
    /// GETBULK max-repetitions (rows asked per request); lowered by itself on tooBig.
    pub max_repetitions: u32,
    /// Devices polled at once. One slow or dead device then holds one slot, not the others.
    pub max_in_flight: usize,
    /// Addresses probed at once by `snmp discover`.
    pub discover_concurrency: usize,
    /// Largest range `snmp discover` sweeps, in addresses.
    pub discover_max_addresses: u32,
    /// Targets kept in this file.
    pub targets: Vec<TargetConfig>,
}

impl Default for SnmpConfig {
    fn default() -> Self {
        SnmpConfig {
            interval_secs: 60,
            timeout_ms: 2000,
            retries: 2,
            max_repetitions: 25,
            max_in_flight: 64,
            discover_concurrency: 64,
            discover_max_addresses: 1024,
            targets: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// Overrides `[snmp] interval_secs`.
    #[serde(default)]
    pub interval_secs: Option<u32>,
    pub credentials: Credentials,
}

fn default_port() -> u16 {
    161
}

impl SnmpConfig {
    /// Refuses values that cannot work, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.interval_secs < 5 {
            return Err("snmp.interval_secs must be at least 5".into());
        }
        if !(100..=60_000).contains(&self.timeout_ms) {
            return Err("snmp.timeout_ms must be between 100 and 60000".into());
        }
        if self.retries > 10 {
            return Err("snmp.retries must be at most 10".into());
        }
        if !(1..=200).contains(&self.max_repetitions) {
            return Err("snmp.max_repetitions must be between 1 and 200".into());
        }
        if self.max_in_flight == 0 || self.discover_concurrency == 0 {
            return Err(
                "snmp.max_in_flight and snmp.discover_concurrency must be at least 1".into(),
            );
        }
        for (i, t) in self.targets.iter().enumerate() {
            if t.host.trim().is_empty() {
                return Err(format!("snmp.targets[{i}].host is empty"));
            }
            if t.interval_secs.is_some_and(|s| s < 5) {
                return Err(format!(
                    "snmp.targets[{i}].interval_secs must be at least 5"
                ));
            }
            t.credentials
                .validate()
                .map_err(|e| format!("snmp.targets[{i}] ({}): {e}", t.host))?;
        }
        Ok(())
    }
}
