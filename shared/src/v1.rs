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
    /// Appended in protocol v1 before its first release: kind 1.
    Inventory(InventoryReport),
}

impl Payload {
    /// A short name for logs and error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::Metrics(_) => "metrics",
            Payload::Inventory(_) => "inventory",
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

/// What a host is and what runs on it. Sent at agent start and every inventory interval; in full
/// only when `content_hash` changed since the last inventory the collector acknowledged,
/// otherwise with `content: None` (the "unchanged" marker, a few dozen bytes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryReport {
    pub host: HostIdentity,
    /// When the inventory was taken, milliseconds since the Unix epoch (UTC).
    pub collected_at_ms: i64,
    /// Hex SHA-256 of the postcard encoding of the [`Inventory`] (of this protocol version).
    pub content_hash: String,
    /// The inventory; `None` when it is unchanged since `content_hash` was last sent.
    pub content: Option<Inventory>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub hardware: Hardware,
    pub software: Vec<SoftwarePackage>,
    /// From the host's asset file (`/etc/steward/asset.toml`), if it has one.
    pub asset: Option<AssetInfo>,
    /// Every source that ran, with its outcome: a failed source does not stop the others.
    pub sources: Vec<SourceStatus>,
    /// Virtual machines defined on this host when it is a hypervisor (libvirt, Proxmox).
    pub guests: Vec<VirtualGuest>,
}

/// A virtual machine defined on a hypervisor host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualGuest {
    pub name: String,
    /// The guest's SMBIOS UUID, as its own agent reports it.
    pub uuid: String,
    /// `libvirt` or `proxmox`.
    pub source: String,
}

/// The outcome of one inventory source (`dpkg`, `rpm`, `dmi`, `asset-file`, ...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceStatus {
    pub source: String,
    /// Records this source contributed.
    pub items: u32,
    /// Why the source failed, naming the file (and line where there is one); `None` on success.
    pub error: Option<String>,
    /// Things the source could not read without failing, e.g. root-only DMI serials.
    pub warnings: Vec<String>,
}

/// One installed package or application, as its package manager reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SoftwarePackage {
    pub name: String,
    pub version: String,
    /// Package architecture (`amd64`, `x86_64`, `noarch`, `all`, ...), empty if the source has none.
    pub arch: String,
    /// Publisher, vendor or maintainer, empty if unknown.
    pub publisher: String,
    /// Install time, milliseconds since the Unix epoch, where the source records it.
    pub installed_at_ms: Option<i64>,
    /// Installed size in bytes, where the source records it.
    pub size_bytes: Option<u64>,
    /// The source: `dpkg`, `rpm`, `apk`, `pacman`, `snap`, `flatpak`, `windows-registry`,
    /// `pkgutil`, `macos-app`.
    pub source: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hardware {
    pub system: SystemInfo,
    pub cpu: CpuInfo,
    pub memory: MemoryInfo,
    pub disks: Vec<DiskInfo>,
    pub nics: Vec<NicInfo>,
    pub virtualization: Virtualization,
    /// ARM boards (IoT gateways): `/proc/device-tree/model` and serial number.
    pub board: Option<BoardInfo>,
    pub os: OsInfo,
}

/// DMI / SMBIOS system data. Empty strings are unknown or unreadable (see the `dmi` source's
/// warnings for fields that need root).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemInfo {
    pub vendor: String,
    pub product: String,
    pub version: String,
    pub serial: String,
    pub uuid: String,
    pub sku: String,
    pub family: String,
    pub bios_vendor: String,
    pub bios_version: String,
    pub bios_date: String,
    pub board_vendor: String,
    pub board_product: String,
    pub board_serial: String,
    /// SMBIOS chassis type number (3 desktop, 9 laptop, 10 notebook, 17 main server chassis,
    /// 23 rack mount, ...); 0 unknown.
    pub chassis_type: u8,
    pub chassis_asset_tag: String,
    pub chassis_serial: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuInfo {
    pub vendor: String,
    pub model: String,
    pub sockets: u32,
    pub cores: u32,
    pub threads: u32,
    pub max_mhz: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryInfo {
    pub total_bytes: u64,
    /// Populated memory modules, where SMBIOS is readable (root).
    pub dimms: Vec<Dimm>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dimm {
    pub locator: String,
    pub size_bytes: u64,
    /// `DDR4`, `LPDDR5`, ...
    pub kind: String,
    pub speed_mts: Option<u32>,
    pub manufacturer: String,
    pub serial: String,
    pub part_number: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiskInfo {
    /// Kernel name, e.g. `sda`, `nvme0n1`.
    pub name: String,
    pub model: String,
    pub serial: String,
    pub size_bytes: u64,
    /// `Some(true)` spinning disk, `Some(false)` solid state, `None` unknown.
    pub rotational: Option<bool>,
    /// `sata`, `sas`, `nvme`, `usb`, `virtio`, `mmc`, `scsi`, or empty if unknown.
    pub transport: String,
    pub removable: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NicInfo {
    pub name: String,
    /// Current address, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// The burned-in address where the kernel exposes it and it differs (bonding, spoofing).
    pub permanent_mac: String,
    pub speed_mbps: Option<u32>,
    pub driver: String,
    /// A software interface (bridge, veth, tun, docker, bond, vlan) rather than a device.
    pub virtual_nic: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Virtualization {
    /// Hypervisor when the host is a VM (`kvm`, `vmware`, `hyperv`, `xen`, `virtualbox`,
    /// `amazon`, `google`, ...), empty on bare metal.
    pub hypervisor: String,
    /// Container runtime when the agent runs in one (`docker`, `podman`, `lxc`, `wsl`, ...).
    pub container: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BoardInfo {
    pub model: String,
    pub serial: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OsInfo {
    /// os-release `ID`, e.g. `debian`, `rhel`, `alpine`.
    pub id: String,
    pub id_like: String,
    pub name: String,
    pub version: String,
    pub pretty_name: String,
    pub kernel: String,
    pub arch: String,
    pub machine_id: String,
}

/// The host's asset file: procurement and support data the machine cannot discover itself.
/// Dates are ISO `YYYY-MM-DD`; empty when not given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AssetInfo {
    pub asset_tag: String,
    pub owner: String,
    pub location: String,
    pub cost_centre: String,
    pub purchase_date: String,
    pub warranty_end: String,
    pub supplier: String,
    pub support_contract: String,
}
