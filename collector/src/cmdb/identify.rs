//! The identification engine: which CI a source's report is about. Pure: the store loads the
//! candidate CIs that share any identifier with the claim, and this decides.
//!
//! Rules run in the configured order (by default the strongest first, in the spirit of
//! ServiceNow's IRE): hardware UUID + serial, serial with manufacturer, machine-id, the set of
//! physical MAC addresses, FQDN, hostname. The first rule with candidates decides:
//! - several candidates: a conflict (never a guess);
//! - one candidate by a weak rule (FQDN, hostname): the same name on different hardware is a
//!   different machine (next rule); without hardware to compare, a conflict — a weak match never
//!   merges on its own;
//! - one candidate by a strong or MAC rule: a match, unless that CI is being reported at the same
//!   time by another agent (two machines claiming one identity), or the claim is a virtual machine
//!   whose MACs and hostname both differ (a clone): then a conflict.
//!
//! Junk never identifies: placeholder serials and UUIDs, locally administered or all-zero MACs and
//! configured deny lists are dropped from the claim before any rule runs.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::inventory::junk;

/// One identification rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Hardware UUID and serial both equal.
    UuidSerial,
    /// Serial number with the same manufacturer.
    Serial,
    /// The operating system installation's machine-id.
    MachineId,
    /// Every physical MAC address of the claim belongs to the CI.
    Macs,
    Fqdn,
    Hostname,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::UuidSerial => "uuid_serial",
            Rule::Serial => "serial",
            Rule::MachineId => "machine_id",
            Rule::Macs => "macs",
            Rule::Fqdn => "fqdn",
            Rule::Hostname => "hostname",
        }
    }

    fn weak(self) -> bool {
        matches!(self, Rule::Fqdn | Rule::Hostname)
    }
}

/// The default order: strongest first.
pub const DEFAULT_RULES: &[Rule] = &[
    Rule::UuidSerial,
    Rule::Serial,
    Rule::MachineId,
    Rule::Macs,
    Rule::Fqdn,
    Rule::Hostname,
];

/// `[identification]` in `collector.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentifyConfig {
    /// Rules in the order they are tried.
    pub rules: Vec<Rule>,
    /// Serials that never identify, in addition to the built-in placeholders (case-insensitive).
    pub deny_serials: Vec<String>,
    /// UUIDs that never identify, in addition to the built-in dummies.
    pub deny_uuids: Vec<String>,
    /// MAC addresses that never identify (e.g. a USB dock's NIC shared by many laptops).
    pub deny_macs: Vec<String>,
    /// A CI whose agent reported within this many seconds is "being reported": another agent
    /// claiming the same hardware then is a conflict, not a takeover.
    pub active_window_secs: u32,
}

impl Default for IdentifyConfig {
    fn default() -> Self {
        IdentifyConfig {
            rules: DEFAULT_RULES.to_vec(),
            deny_serials: Vec::new(),
            deny_uuids: Vec::new(),
            deny_macs: Vec::new(),
            active_window_secs: 900,
        }
    }
}

/// What a source says about the machine, after junk is dropped (see [`Claim::clean`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The agent making the claim (empty for sources without agents).
    pub agent_id: String,
    pub machine_id: String,
    pub hostname: String,
    pub fqdn: String,
    /// Canonical UUID (see [`canonical_uuid`]), empty when unknown or junk.
    pub uuid: String,
    /// Manufacturer, lower case, for the serial rule.
    pub vendor: String,
    pub serial: String,
    /// Physical, globally administered MACs, lower case.
    pub macs: BTreeSet<String>,
    /// The claim is a virtual machine (a hypervisor was detected).
    pub virtual_machine: bool,
}

/// A CI the store found sharing an identifier with the claim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub ci_id: i64,
    pub machine_ids: BTreeSet<String>,
    pub hostname: String,
    pub fqdn: String,
    pub uuid: String,
    pub vendor: String,
    pub serial: String,
    pub macs: BTreeSet<String>,
    /// Agents bound to the CI that reported within the active window, other than the claimant.
    pub active_agents: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    Match {
        ci_id: i64,
        rule: Rule,
    },
    /// No CI matches: a new one.
    New,
    /// Cannot be decided safely: the admin resolves it (`ci conflicts resolve`).
    Conflict {
        candidates: Vec<i64>,
        rule: Rule,
        reason: String,
    },
}

impl Claim {
    /// Drops junk: placeholder and denied serials and UUIDs, denied MACs; normalises case and
    /// VMware's byte-swapped UUIDs.
    pub fn clean(mut self, config: &IdentifyConfig) -> Claim {
        let denied =
            |list: &[String], value: &str| list.iter().any(|d| d.eq_ignore_ascii_case(value));
        self.serial = junk::usable_serial(&self.serial)
            .filter(|s| !denied(&config.deny_serials, s))
            .unwrap_or_default();
        self.uuid = junk::usable_uuid(&self.uuid)
            .filter(|u| !denied(&config.deny_uuids, u))
            .map(|u| canonical_uuid(&u))
            .unwrap_or_default();
        self.vendor = self.vendor.trim().to_ascii_lowercase();
        self.hostname = self.hostname.trim().to_ascii_lowercase();
        self.fqdn = self.fqdn.trim().to_ascii_lowercase();
        self.macs = self
            .macs
            .iter()
            .filter_map(|m| physical_mac(m))
            .filter(|m| !denied(&config.deny_macs, m))
            .collect();
        self
    }

    fn has_hardware(&self) -> bool {
        !self.uuid.is_empty() || !self.serial.is_empty()
    }
}

impl Candidate {
    fn has_hardware(&self) -> bool {
        !self.uuid.is_empty() || !self.serial.is_empty()
    }

    /// Whether this candidate satisfies `rule` for `claim`.
    fn matches(&self, rule: Rule, claim: &Claim) -> bool {
        let eq = |a: &str, b: &str| !a.is_empty() && a == b;
        match rule {
            Rule::UuidSerial => eq(&claim.uuid, &self.uuid) && eq(&claim.serial, &self.serial),
            Rule::Serial => {
                eq(&claim.serial, &self.serial)
                    && (claim.vendor.is_empty()
                        || self.vendor.is_empty()
                        || claim.vendor == self.vendor)
            }
            Rule::MachineId => {
                !claim.machine_id.is_empty() && self.machine_ids.contains(&claim.machine_id)
            }
            Rule::Macs => !claim.macs.is_empty() && claim.macs.is_subset(&self.macs),
            Rule::Fqdn => eq(&claim.fqdn, &self.fqdn) && claim.fqdn.contains('.'),
            Rule::Hostname => eq(&claim.hostname, &self.hostname),
        }
    }

    /// The claim and this CI have different hardware identities (both known, neither shared).
    fn different_hardware(&self, claim: &Claim) -> bool {
        let shares = |a: &str, b: &str| !a.is_empty() && a == b;
        claim.has_hardware()
            && self.has_hardware()
            && !shares(&claim.uuid, &self.uuid)
            && !shares(&claim.serial, &self.serial)
    }
}

/// Decides which CI `claim` is about among `candidates` (the CIs sharing any identifier with it,
/// minus those an admin declared distinct).
pub fn decide(config: &IdentifyConfig, claim: &Claim, candidates: &[Candidate]) -> Decision {
    for &rule in &config.rules {
        let matching: Vec<&Candidate> = candidates
            .iter()
            .filter(|c| c.matches(rule, claim))
            .collect();
        let candidate = match matching.as_slice() {
            [] => continue,
            [one] => *one,
            many => {
                return Decision::Conflict {
                    candidates: many.iter().map(|c| c.ci_id).collect(),
                    rule,
                    reason: format!("{} CIs match by {}", many.len(), rule.name()),
                };
            }
        };
        if rule.weak() {
            if candidate.different_hardware(claim) {
                // The same name on other hardware: another machine.
                continue;
            }
            return Decision::Conflict {
                candidates: vec![candidate.ci_id],
                rule,
                reason: format!(
                    "only the {} matches, which cannot identify a machine on its own",
                    rule.name()
                ),
            };
        }
        if let Some(other) = candidate.active_agents.first() {
            return Decision::Conflict {
                candidates: vec![candidate.ci_id],
                rule,
                reason: format!(
                    "matches by {}, but agent {other} reports that CI at the same time: two machines claim one identity",
                    rule.name()
                ),
            };
        }
        let hardware_rule = matches!(rule, Rule::UuidSerial | Rule::Serial);
        let macs_differ = !claim.macs.is_empty()
            && !candidate.macs.is_empty()
            && claim.macs.is_disjoint(&candidate.macs);
        let name_differs = !claim.hostname.is_empty() && claim.hostname != candidate.hostname;
        if hardware_rule && claim.virtual_machine && macs_differ && name_differs {
            return Decision::Conflict {
                candidates: vec![candidate.ci_id],
                rule,
                reason: format!(
                    "a virtual machine with the same {} but different MAC addresses and hostname: a clone?",
                    rule.name()
                ),
            };
        }
        return Decision::Match {
            ci_id: candidate.ci_id,
            rule,
        };
    }
    Decision::New
}

/// The MAC, lower case, if it identifies hardware: well-formed, not all zeros or all ones, and
/// globally administered (locally administered ones are made up by software: docker, veth,
/// bridges, randomised Wi-Fi).
pub fn physical_mac(mac: &str) -> Option<String> {
    let mac = mac.trim().to_ascii_lowercase().replace('-', ":");
    let octets: Vec<u8> = mac
        .split(':')
        .map(|o| u8::from_str_radix(o, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    if octets.len() != 6 || octets.iter().all(|o| *o == 0) || octets.iter().all(|o| *o == 0xff) {
        return None;
    }
    // Bit 1 of the first octet: locally administered; bit 0: multicast.
    if octets[0] & 0b11 != 0 {
        return None;
    }
    Some(mac)
}

/// One form for a UUID and its byte-swapped twin. SMBIOS 2.6+ stores the first three fields
/// little-endian and older readers (and VMware's BIOS serial) show them swapped, so the same
/// machine can appear under both; the smaller of the two forms is the canonical one.
pub fn canonical_uuid(uuid: &str) -> String {
    let lower = uuid.trim().to_ascii_lowercase();
    let hex: String = lower.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return lower;
    }
    let swap = |s: &str| -> String {
        s.as_bytes()
            .chunks(2)
            .rev()
            .map(|pair| String::from_utf8_lossy(pair).into_owned())
            .collect()
    };
    let dashed = |h: &str| {
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    };
    let straight = dashed(&hex);
    let swapped = dashed(&format!(
        "{}{}{}{}",
        swap(&hex[0..8]),
        swap(&hex[8..12]),
        swap(&hex[12..16]),
        &hex[16..32]
    ));
    straight.min(swapped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_swapped_uuids_are_one_uuid() {
        let a = canonical_uuid("4C4C4544-0058-4B10-8032-B7C04F514833");
        let b = canonical_uuid("44454c4c-5800-104b-8032-b7c04f514833");
        assert_eq!(a, b);
    }

    #[test]
    fn only_globally_administered_unicast_macs_identify() {
        assert_eq!(
            physical_mac("00:1A:2B:3C:4D:5E"),
            Some("00:1a:2b:3c:4d:5e".into())
        );
        assert_eq!(
            physical_mac("00-50-56-aa-bb-cc"),
            Some("00:50:56:aa:bb:cc".into())
        );
        for junk in [
            "02:42:ac:11:00:02",
            "fe:54:00:12:34:56",
            "00:00:00:00:00:00",
            "ff:ff:ff:ff:ff:ff",
            "01:00:5e:00:00:01",
            "zz",
            "",
        ] {
            assert_eq!(physical_mac(junk), None, "{junk}");
        }
    }

    #[test]
    fn junk_is_dropped_from_claims() {
        let config = IdentifyConfig {
            deny_serials: vec!["LAB-SHARED".into()],
            deny_macs: vec!["00:11:22:33:44:55".into()],
            ..Default::default()
        };
        let claim = Claim {
            serial: "lab-shared".into(),
            uuid: "03000200-0400-0500-0006-000700080009".into(),
            macs: [
                "00:11:22:33:44:55".to_string(),
                "02:42:ac:11:00:02".to_string(),
            ]
            .into(),
            ..Default::default()
        }
        .clean(&config);
        assert_eq!((claim.serial.as_str(), claim.uuid.as_str()), ("", ""));
        assert!(claim.macs.is_empty());
    }

    fn candidate(ci_id: i64, serial: &str, macs: &[&str], hostname: &str) -> Candidate {
        Candidate {
            ci_id,
            serial: serial.into(),
            uuid: if serial.is_empty() {
                String::new()
            } else {
                format!("uuid-{serial}")
            },
            macs: macs.iter().map(|m| m.to_string()).collect(),
            hostname: hostname.into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_strongest_rule_decides_and_weak_ones_never_merge() {
        let config = IdentifyConfig::default();
        let claim = Claim {
            serial: "S1".into(),
            uuid: "uuid-S1".into(),
            hostname: "web1".into(),
            ..Default::default()
        };
        assert_eq!(
            decide(&config, &claim, &[candidate(1, "S1", &[], "other")]),
            Decision::Match {
                ci_id: 1,
                rule: Rule::UuidSerial
            }
        );
        // Same hostname, different hardware: another machine.
        assert_eq!(
            decide(&config, &claim, &[candidate(2, "S2", &[], "web1")]),
            Decision::New
        );
        // Same hostname, nothing to compare: a conflict, not a merge.
        let bare = Claim {
            hostname: "web1".into(),
            ..Default::default()
        };
        assert!(matches!(
            decide(&config, &bare, &[candidate(3, "", &[], "web1")]),
            Decision::Conflict {
                rule: Rule::Hostname,
                ..
            }
        ));
        // Two CIs by the same rule: a conflict.
        assert!(matches!(
            decide(
                &config,
                &claim,
                &[candidate(4, "S1", &[], "a"), candidate(5, "S1", &[], "b")]
            ),
            Decision::Conflict {
                rule: Rule::UuidSerial,
                ..
            }
        ));
    }
}
