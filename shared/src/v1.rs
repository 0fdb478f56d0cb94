//! Protocol version 1. **Frozen**: these types are the v1 wire format, pinned by the golden bytes
//! in `testdata/`. Do not add, remove, reorder or retype fields; add a `v2` module instead (see
//! `PROTOCOL.md`). New payload kinds may be appended at the *end* of [`Payload`]: older agents never
//! send them and the variant indices of the existing kinds stay the same.
//!
//! Serde field names matter only for the JSON views (`steward-agent collect --json`, the admin
//! API); postcard encodes fields by position.

use serde::{Deserialize, Serialize};

/// What an agent sends: who it is, which report this is, and the payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The agent's id, as issued at enrollment; must match the client certificate.
    pub agent_id: String,
    /// Per-agent sequence number, strictly increasing across restarts; the collector stores a
    /// repeated (agent, seq) only once.
    pub seq: u64,
    /// When the agent sent the report, milliseconds since the Unix epoch (UTC).
    pub sent_at_ms: i64,
    pub payload: Payload,
}

/// The payload kinds of protocol v1. Append only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Payload {
    Metrics(MetricsReport),
}

impl Payload {
    /// A short name for logs and error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::Metrics(_) => "metrics",
        }
    }
}

/// One metrics cycle of one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsReport {
    pub host: HostIdentity,
    pub metrics: Metrics,
}

/// Who the host is. Enough to identify it as a CI until full inventory arrives.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostIdentity {
    pub hostname: String,
    /// Fully qualified name if the host knows one, else the hostname.
    pub fqdn: String,
    /// `NAME` from os-release (or the platform's equivalent).
    pub os_name: String,
    /// `VERSION_ID` from os-release (or the platform's equivalent).
    pub os_version: String,
    pub kernel: String,
    /// CPU architecture, e.g. `x86_64`, `aarch64`.
    pub arch: String,
    /// `/etc/machine-id` (empty if the host has none).
    pub machine_id: String,
    pub agent_version: String,
}

/// Live measurements. Rates are per second over the interval since the previous cycle; they are
/// `None` on the first cycle and after a counter went backwards (reset, device re-added).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// When the sample was taken, milliseconds since the Unix epoch (UTC).
    pub collected_at_ms: i64,
    /// The agent's reporting interval, so the collector can tell when a host went silent.
    pub interval_secs: u32,
    pub uptime_secs: u64,
    pub cpu: Cpu,
    pub memory: Memory,
    pub filesystems: Vec<Filesystem>,
    pub disks: Vec<DiskIo>,
    pub networks: Vec<NetInterface>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    /// Busy percentage over all cores, 0–100.
    pub total_pct: f32,
    /// Busy percentage of each logical core, 0–100, in core order.
    pub per_core_pct: Vec<f32>,
    pub load1: f32,
    pub load5: f32,
    pub load15: f32,
}

/// Bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    pub total: u64,
    pub used: u64,
    pub available: u64,
    pub free: u64,
    pub swap_total: u64,
    pub swap_used: u64,
}

/// One mounted, real filesystem. Sizes in bytes, as seen by an unprivileged user for `available`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Filesystem {
    pub mount: String,
    pub device: String,
    pub fs_type: String,
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub available_bytes: u64,
    pub inodes_total: u64,
    pub inodes_used: u64,
    pub inodes_free: u64,
    pub read_only: bool,
}

/// I/O of one block device.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiskIo {
    /// Kernel name, e.g. `sda`, `nvme0n1`, `mmcblk0`.
    pub device: String,
    pub rates: Option<DiskRates>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiskRates {
    pub read_bytes_per_sec: f64,
    pub write_bytes_per_sec: f64,
    pub reads_per_sec: f64,
    pub writes_per_sec: f64,
    /// Share of the interval the device was busy, 0–100.
    pub busy_pct: f32,
}

/// One network interface.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetInterface {
    pub name: String,
    /// `aa:bb:cc:dd:ee:ff`, or empty when the interface has none (loopback, tunnels).
    pub mac: String,
    /// Addresses in CIDR form, e.g. `192.0.2.10/24`, `2001:db8::1/64`.
    pub addresses: Vec<String>,
    /// Operational state: `Some(true)` up, `Some(false)` down, `None` unknown.
    pub link_up: Option<bool>,
    /// Negotiated speed in Mbit/s where the driver reports one.
    pub speed_mbps: Option<u32>,
    pub mtu: Option<u32>,
    pub rates: Option<NetRates>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetRates {
    pub rx_bytes_per_sec: f64,
    pub tx_bytes_per_sec: f64,
    pub rx_packets_per_sec: f64,
    pub tx_packets_per_sec: f64,
    pub rx_errors_per_sec: f64,
    pub tx_errors_per_sec: f64,
    pub rx_drops_per_sec: f64,
    pub tx_drops_per_sec: f64,
}
