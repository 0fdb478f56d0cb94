//! Golden tests: every `collector/testdata/snmp/<case>.walk` decodes to
//! `<case>.expected.json`. Adding a case adds no code. Set `STEWARD_UPDATE_GOLDEN=1` to
//! rewrite the expected files on purpose, then review the diff.

use std::path::{Path, PathBuf};

use super::*;
use crate::snmp::types::{Value, VarBind};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/snmp")
}

/// Reads a recorded walk. An empty octet string is written `Hex-STRING: ` (what
/// `VarBind`'s `Display` writes), which `VarBind::from_str` does not read back: it trims the
/// line and then finds no `": "`. Until that is fixed in types.rs, such lines are read here.
fn load_walk(path: &Path) -> Vec<VarBind> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(n, line)| {
            let trimmed = line.trim_end();
            for empty in [" = Hex-STRING:", " = STRING:"] {
                if let Some(oid) = trimmed.strip_suffix(empty) {
                    return VarBind {
                        oid: oid.parse().unwrap(),
                        value: Value::OctetString(Vec::new()),
                    };
                }
            }
            line.parse()
                .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), n + 1))
        })
        .collect()
}

fn cases() -> Vec<PathBuf> {
    let mut walks: Vec<PathBuf> = std::fs::read_dir(testdata())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "walk"))
        .collect();
    walks.sort();
    walks
}

#[test]
fn recorded_walks_decode_to_their_expected_json() {
    let update = std::env::var_os("STEWARD_UPDATE_GOLDEN").is_some();
    let walks = cases();
    assert!(walks.len() >= 8, "golden walks missing: {walks:?}");
    let mut failed = Vec::new();
    for walk in &walks {
        let decoded = decode_device(&load_walk(walk));
        let json = serde_json::to_string_pretty(&decoded).unwrap() + "\n";
        let expected_path = walk.with_extension("expected.json");
        if update {
            std::fs::write(&expected_path, &json).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        if json != expected {
            failed.push(format!(
                "{} differs from {}; decoded:\n{json}",
                walk.display(),
                expected_path.display()
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

#[test]
fn golden_cases_that_should_be_clean_have_no_problems_and_malformed_ones_do() {
    for walk in cases() {
        let name = walk.file_name().unwrap().to_string_lossy().to_string();
        let decoded = decode_device(&load_walk(&walk));
        if name.starts_with("malformed-") {
            assert!(!decoded.problems.is_empty(), "{name}: no problems reported");
        } else {
            assert!(
                decoded.problems.is_empty(),
                "{name}: {:?}",
                decoded.problems
            );
        }
    }
}

#[test]
fn every_module_has_a_unique_name_and_roots() {
    let mut names: Vec<&str> = MODULES.iter().map(|m| m.name()).collect();
    assert!(MODULES.iter().all(|m| !m.roots().is_empty()));
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), MODULES.len());
}

#[test]
fn modules_that_name_ports_run_after_interfaces() {
    let position = |name: &str| MODULES.iter().position(|m| m.name() == name).unwrap();
    assert!(position("interfaces") < position("cdp"));
    assert!(position("interfaces") < position("bridge"));
    assert!(
        position("lldp") < position("cdp"),
        "LLDP neighbours are listed first"
    );
}

/// The modules net-snmp implements are recorded from it; the script must walk all their
/// roots, or a recording silently lacks a table.
#[test]
fn the_recording_script_walks_every_root_net_snmp_implements() {
    let script = std::fs::read_to_string(testdata().join("record-netsnmp.sh")).unwrap();
    for module in MODULES
        .iter()
        .filter(|m| ["system", "interfaces", "host-resources"].contains(&m.name()))
    {
        for root in module.roots() {
            assert!(
                script.contains(&format!(" {root}")),
                "record-netsnmp.sh does not walk {root} ({})",
                module.name()
            );
        }
    }
}

#[test]
fn all_roots_lists_each_root_once() {
    let roots = all_roots();
    let total: usize = MODULES.iter().map(|m| m.roots().len()).sum();
    assert_eq!(roots.len(), total, "no two modules share a root today");
}

#[test]
fn problems_are_capped_per_module() {
    // 30 interfaces whose ifType is a string: 30 problems, 20 listed plus a count.
    let walked: Vec<VarBind> = (1..=30)
        .map(|i| VarBind {
            oid: Oid(vec![1, 3, 6, 1, 2, 1, 2, 2, 1, 3, i]),
            value: Value::OctetString(b"ethernet".to_vec()),
        })
        .collect();
    let decoded = decode_device(&walked);
    assert_eq!(decoded.interfaces.len(), 30);
    assert_eq!(decoded.problems.len(), MAX_PROBLEMS_PER_MODULE + 1);
    assert_eq!(
        decoded.problems.last().map(String::as_str),
        Some("interfaces: 10 more problems not listed")
    );
    assert!(decoded.problems[0].starts_with("interfaces: 1.3.6.1.2.1.2.2.1.3.1: "));
}

/// Every varbind of every golden walk, with its value swapped for each other type and its
/// OID cut short at each length: decoding must report, never panic.
#[test]
fn decoding_never_panics_on_mangled_walks() {
    let values = [
        Value::Integer(-1),
        Value::Integer(i64::MAX),
        Value::OctetString(Vec::new()),
        Value::OctetString(vec![0xff; 40]),
        Value::ObjectIdentifier(Oid(vec![0])),
        Value::IpAddress([0; 4]),
        Value::Counter32(u32::MAX),
        Value::Unsigned32(0),
        Value::Timeticks(u32::MAX),
        Value::Counter64(u64::MAX),
        Value::Opaque(vec![1]),
        Value::Null,
        Value::NoSuchInstance,
        Value::EndOfMibView,
    ];
    for walk in cases() {
        let walked = load_walk(&walk);
        for (i, value) in values.iter().enumerate() {
            let mangled: Vec<VarBind> = walked
                .iter()
                .enumerate()
                .map(|(n, vb)| {
                    let mut vb = vb.clone();
                    if n % values.len() == i {
                        vb.value = value.clone();
                    }
                    if n % 7 == i % 7 {
                        let keep = vb.oid.0.len().saturating_sub(1 + n % 3);
                        vb.oid.0.truncate(keep);
                    }
                    vb
                })
                .collect();
            let decoded = decode_device(&mangled);
            let _ = serde_json::to_string(&decoded).unwrap();
        }
    }
}

fn decode_case(name: &str) -> DeviceData {
    decode_device(&load_walk(&testdata().join(name)))
}

#[test]
fn the_stack_member_with_a_serial_is_the_catalysts_chassis() {
    let data = decode_case("cisco-catalyst-2960x.walk");
    let chassis = data.chassis().unwrap();
    assert_eq!(chassis.index, 1001);
    assert_eq!(chassis.serial.as_deref(), Some("FOC2031T0XA"));
    assert_eq!(chassis.model_name.as_deref(), Some("WS-C2960X-48FPD-L"));
    assert_eq!(chassis.software_rev.as_deref(), Some("15.2(7)E4"));
}

#[test]
fn a_top_level_chassis_with_a_serial_beats_an_empty_one() {
    let data = decode_case("malformed-entity-lldp.walk");
    assert_eq!(
        data.chassis().and_then(|c| c.serial.as_deref()),
        Some("SN-OF-6")
    );
}

/// Real counters from two polls of the same net-snmp agent 30 s apart, with the interval
/// taken from its sysUpTime: plausible rates, no problems.
#[test]
fn rates_between_two_recorded_polls_of_net_snmp() {
    use std::time::{Duration, Instant};

    let first = decode_case("linux-netsnmp.walk");
    let later = decode_case("linux-netsnmp-later.walk");
    let ticks = |d: &DeviceData| d.system.as_ref().and_then(|s| s.uptime_ticks).unwrap();
    let secs = f64::from(ticks(&later) - ticks(&first)) / 100.0;
    let t0 = Instant::now();
    let r = rates::compute(
        &rates::Sample::new(t0, &first),
        &rates::Sample::new(t0 + Duration::from_secs_f64(secs), &later),
    );
    assert_eq!(r.rebaselined, None);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.interfaces.len(), 4);
    let lo = r.interfaces.iter().find(|i| i.if_index == 1).unwrap();
    // The recording's own SNMP packets crossed the loopback, so lo carried traffic, and
    // what goes out of lo comes back in.
    let bits = lo.in_bits_per_sec.unwrap();
    assert!(bits > 0.0 && bits < 1e6, "{lo:?}");
    assert_eq!(lo.in_bits_per_sec, lo.out_bits_per_sec);
    // net-snmp reports lo at 10 Mb/s, so utilisation is known; eth0's speed is not.
    assert!(
        lo.in_utilisation_pct.is_some_and(|u| u > 0.0 && u < 10.0),
        "{lo:?}"
    );
    let eth0 = r.interfaces.iter().find(|i| i.if_index == 4).unwrap();
    assert!(eth0.in_bits_per_sec.is_some());
    assert_eq!(eth0.in_utilisation_pct, None);
}
