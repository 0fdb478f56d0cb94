//! Network interfaces: counters (bytes, packets, errors, drops) from `/proc/net/dev`, and
//! link state, speed, MTU and MAC from `/sys/class/net/<if>`, addresses through sysinfo
//! (`getifaddrs`). sysinfo alone lacks drop counters.
//!
//! Addresses, MAC, speed and MTU change rarely and reading them is the dearest part of a cycle
//! (a netlink dump, sysinfo's ten files per interface, three more of ours), so they are re-read
//! every [`ADDRESS_REFRESH`] or as soon as an interface appears that the cache does not know.
//! Link state is read every cycle: a link going down must show at once.
//!
//! On Windows everything comes from sysinfo's interface table (`GetIfTable2`, addresses from
//! `GetAdaptersAddresses`), refreshed each cycle. It lists only connected hardware interfaces, so
//! an unplugged link leaves the report rather than showing as down, and it has no drop counters:
//! the drop rates read 0 there.

use std::collections::HashMap;
#[cfg(unix)]
use std::time::Duration;
use std::time::Instant;

use steward_shared::v1::{NetInterface, NetRates};

use super::rate;
use crate::config::{MetricsConfig, matches_any};

/// Cumulative counters of one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetCounters {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_drops: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_drops: u64,
}

/// Parses `/proc/net/dev` (two header lines, then `name: rx 8 fields, tx 8 fields`).
pub fn parse_net_dev(text: &str) -> Vec<(String, NetCounters)> {
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let f: Vec<u64> = rest
                .split_whitespace()
                .map(|v| v.parse::<u64>())
                .collect::<Result<_, _>>()
                .ok()?;
            if f.len() < 16 {
                return None;
            }
            Some((
                name.trim().to_string(),
                NetCounters {
                    rx_bytes: f[0],
                    rx_packets: f[1],
                    rx_errors: f[2],
                    rx_drops: f[3],
                    tx_bytes: f[8],
                    tx_packets: f[9],
                    tx_errors: f[10],
                    tx_drops: f[11],
                },
            ))
        })
        .collect()
}

/// How long interface addresses are cached.
#[cfg(unix)]
pub const ADDRESS_REFRESH: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub(super) struct NetworkSampler {
    previous: HashMap<String, NetCounters>,
    previous_at: Option<Instant>,
    /// Created on first use. On Unix only addresses are taken from it; on Windows everything.
    networks: Option<sysinfo::Networks>,
    #[cfg(unix)]
    attributes: HashMap<String, Attributes>,
    #[cfg(unix)]
    attributes_at: Option<Instant>,
}

/// What is cached per interface between refreshes.
#[cfg(unix)]
#[derive(Debug, Clone, Default)]
struct Attributes {
    mac: String,
    addresses: Vec<String>,
    speed_mbps: Option<u32>,
    mtu: Option<u32>,
}

#[cfg(unix)]
impl NetworkSampler {
    pub(super) fn sample(&mut self, config: &MetricsConfig, now: Instant) -> Vec<NetInterface> {
        let Ok(text) = std::fs::read_to_string("/proc/net/dev") else {
            return Vec::new();
        };
        let counters: Vec<(String, NetCounters)> = parse_net_dev(&text)
            .into_iter()
            .filter(|(name, _)| !matches_any(&config.exclude_interfaces, name))
            .collect();
        let stale = self
            .attributes_at
            .is_none_or(|at| now.duration_since(at) >= ADDRESS_REFRESH)
            || counters
                .iter()
                .any(|(name, _)| !self.attributes.contains_key(name));
        if stale {
            self.attributes = self.read_attributes(&counters);
            self.attributes_at = Some(now);
        }
        let seconds = self
            .previous_at
            .map(|t| now.duration_since(t).as_secs_f64())
            .unwrap_or(0.0);
        let out = counters
            .iter()
            .map(|(name, current)| {
                let attributes = self.attributes.get(name).cloned().unwrap_or_default();
                NetInterface {
                    name: name.clone(),
                    mac: attributes.mac,
                    addresses: attributes.addresses,
                    link_up: read_sys(name, "operstate").and_then(|s| parse_operstate(&s)),
                    speed_mbps: attributes.speed_mbps,
                    mtu: attributes.mtu,
                    rates: self
                        .previous
                        .get(name)
                        .and_then(|before| net_rates(before, current, seconds)),
                }
            })
            .collect();
        self.previous = counters.into_iter().collect();
        self.previous_at = Some(now);
        out
    }

    fn read_attributes(
        &mut self,
        counters: &[(String, NetCounters)],
    ) -> HashMap<String, Attributes> {
        let mut addresses = self.read_addresses();
        counters
            .iter()
            .map(|(name, _)| {
                let attributes = Attributes {
                    mac: read_sys(name, "address")
                        .map(|m| m.trim().to_string())
                        .filter(|m| m != "00:00:00:00:00:00")
                        .unwrap_or_default(),
                    addresses: addresses.remove(name).unwrap_or_default(),
                    speed_mbps: read_sys(name, "speed")
                        .and_then(|s| s.trim().parse::<i64>().ok())
                        .and_then(|s| u32::try_from(s).ok()),
                    mtu: read_sys(name, "mtu").and_then(|s| s.trim().parse().ok()),
                };
                (name.clone(), attributes)
            })
            .collect()
    }

    fn read_addresses(&mut self) -> HashMap<String, Vec<String>> {
        let networks = match &mut self.networks {
            Some(networks) => {
                networks.refresh(true);
                networks
            }
            None => match sysinfo::Networks::new_with_refreshed_list() {
                Ok(networks) => self.networks.insert(networks),
                Err(_) => return HashMap::new(),
            },
        };
        networks
            .iter()
            .map(|(name, data)| {
                (
                    name.to_string_lossy().into_owned(),
                    data.ip_networks().iter().map(|n| n.to_string()).collect(),
                )
            })
            .collect()
    }
}

#[cfg(windows)]
impl NetworkSampler {
    pub(super) fn sample(&mut self, config: &MetricsConfig, now: Instant) -> Vec<NetInterface> {
        let networks = match &mut self.networks {
            Some(networks) => {
                networks.refresh(true);
                networks
            }
            None => match sysinfo::Networks::new_with_refreshed_list() {
                Ok(networks) => self.networks.insert(networks),
                Err(_) => return Vec::new(),
            },
        };
        let seconds = self
            .previous_at
            .map(|t| now.duration_since(t).as_secs_f64())
            .unwrap_or(0.0);
        let mut counters = HashMap::new();
        let mut out: Vec<NetInterface> = networks
            .iter()
            .map(|(name, data)| (name.to_string_lossy().into_owned(), data))
            .filter(|(name, _)| !matches_any(&config.exclude_interfaces, name))
            .map(|(name, data)| {
                let current = NetCounters {
                    rx_bytes: data.total_received(),
                    rx_packets: data.total_packets_received(),
                    rx_errors: data.total_errors_on_received(),
                    tx_bytes: data.total_transmitted(),
                    tx_packets: data.total_packets_transmitted(),
                    tx_errors: data.total_errors_on_transmitted(),
                    // Not in sysinfo's table (see the module documentation).
                    rx_drops: 0,
                    tx_drops: 0,
                };
                let mac = data.mac_address();
                let interface = NetInterface {
                    mac: if mac.is_unspecified() {
                        String::new()
                    } else {
                        mac.to_string()
                    },
                    addresses: data.ip_networks().iter().map(|n| n.to_string()).collect(),
                    link_up: parse_operstate(&data.operational_state().to_string()),
                    speed_mbps: data
                        .transmit_link_speed()
                        .and_then(|bps| u32::try_from(bps / 1_000_000).ok())
                        .filter(|mbps| *mbps > 0),
                    mtu: u32::try_from(data.mtu()).ok().filter(|mtu| *mtu > 0),
                    rates: self
                        .previous
                        .get(&name)
                        .and_then(|before| net_rates(before, &current, seconds)),
                    name: name.clone(),
                };
                counters.insert(name, current);
                interface
            })
            .collect();
        // sysinfo keeps interfaces in a hash map: report them in a stable order.
        out.sort_by(|a, b| a.name.cmp(&b.name));
        self.previous = counters;
        self.previous_at = Some(now);
        out
    }
}

#[cfg(unix)]
fn read_sys(interface: &str, file: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/class/net/{interface}/{file}")).ok()
}

/// `up` and `down` are definite; `unknown`, `dormant`, `testing` and the rest are not. Linux's
/// `operstate` words; sysinfo prints Windows' operational states with the same words.
fn parse_operstate(text: &str) -> Option<bool> {
    match text.trim() {
        "up" => Some(true),
        "down" | "lowerlayerdown" | "notpresent" => Some(false),
        _ => None,
    }
}

fn net_rates(before: &NetCounters, now: &NetCounters, seconds: f64) -> Option<NetRates> {
    Some(NetRates {
        rx_bytes_per_sec: rate(before.rx_bytes, now.rx_bytes, seconds)?,
        tx_bytes_per_sec: rate(before.tx_bytes, now.tx_bytes, seconds)?,
        rx_packets_per_sec: rate(before.rx_packets, now.rx_packets, seconds)?,
        tx_packets_per_sec: rate(before.tx_packets, now.tx_packets, seconds)?,
        rx_errors_per_sec: rate(before.rx_errors, now.rx_errors, seconds)?,
        tx_errors_per_sec: rate(before.tx_errors, now.tx_errors, seconds)?,
        rx_drops_per_sec: rate(before.rx_drops, now.rx_drops, seconds)?,
        tx_drops_per_sec: rate(before.tx_drops, now.tx_drops, seconds)?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const NET_DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  123456     100    0    0    0     0          0         0   123456     100    0    0    0     0       0          0
  eth0: 1000000    2000    1    4    0     0          0        10   500000    1500    2    3    0     0       0          0
";

    #[test]
    fn parses_all_counters_including_drops() {
        let parsed = parse_net_dev(NET_DEV);
        assert_eq!(parsed.len(), 2);
        assert_eq!(
            parsed[1],
            (
                "eth0".to_string(),
                NetCounters {
                    rx_bytes: 1000000,
                    rx_packets: 2000,
                    rx_errors: 1,
                    rx_drops: 4,
                    tx_bytes: 500000,
                    tx_packets: 1500,
                    tx_errors: 2,
                    tx_drops: 3
                }
            )
        );
    }

    #[test]
    fn rates_and_resets() {
        let before = NetCounters {
            rx_bytes: 1000,
            tx_bytes: 1000,
            ..Default::default()
        };
        let after = NetCounters {
            rx_bytes: 11000,
            tx_bytes: 3000,
            rx_drops: 5,
            ..Default::default()
        };
        let rates = net_rates(&before, &after, 10.0).unwrap();
        assert_eq!(
            (
                rates.rx_bytes_per_sec,
                rates.tx_bytes_per_sec,
                rates.rx_drops_per_sec
            ),
            (1000.0, 200.0, 0.5)
        );
        assert_eq!(
            net_rates(&after, &before, 10.0),
            None,
            "a reset interface must not produce a spike"
        );
    }

    #[test]
    fn operstate() {
        assert_eq!(parse_operstate("up\n"), Some(true));
        assert_eq!(parse_operstate("down\n"), Some(false));
        assert_eq!(parse_operstate("unknown\n"), None);
    }
}
