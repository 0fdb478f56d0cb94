//! Hardware inventory against fixture trees of real machines: each folder under
//! `tests/fixtures/hardware/` is one machine, `root/` its files (symbolic links included, as
//! sysfs has them) and `expected.json` what the agent reports for it: the hardware, the asset
//! file's data, and every source's status. Adding a case adds no code.
//!
//! `STEWARD_UPDATE_GOLDEN=1 cargo test -p steward-agent --test hardware_inventory` rewrites the
//! expected files; review the diff.
#![allow(clippy::unwrap_used)] // reason: test helpers

use std::path::{Path, PathBuf};

use serde::Serialize;
use steward_agent::inventory::{asset, hardware};
use steward_shared::v1::{AssetInfo, Hardware, SourceStatus};

#[derive(Serialize)]
struct Report {
    hardware: Hardware,
    asset: Option<AssetInfo>,
    sources: Vec<SourceStatus>,
}

fn report(root: &Path) -> Report {
    let (hardware, mut sources) = hardware::collect(root);
    let (asset, asset_status) = asset::collect(root, Path::new(asset::DEFAULT_PATH));
    sources.extend(asset_status);
    Report {
        hardware,
        asset,
        sources,
    }
}

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hardware");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("root").is_dir())
        .collect();
    cases.sort();
    cases
}

#[test]
fn every_fixture_machine_matches_its_expected_report() {
    let update = std::env::var_os("STEWARD_UPDATE_GOLDEN").is_some();
    let cases = cases();
    assert!(cases.len() >= 6, "fixture cases missing: {cases:?}");
    let mut mismatched = Vec::new();
    for case in &cases {
        let json = serde_json::to_string_pretty(&report(&case.join("root"))).unwrap() + "\n";
        let golden = case.join("expected.json");
        if update {
            std::fs::write(&golden, &json).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        if expected != json {
            let name = case.file_name().unwrap().to_string_lossy().into_owned();
            eprintln!("--- {name}: expected.json differs; got:\n{json}");
            mismatched.push(name);
        }
    }
    assert!(
        mismatched.is_empty(),
        "{mismatched:?} differ from expected.json (STEWARD_UPDATE_GOLDEN=1 rewrites them)"
    );
}

/// Every case reports every hardware part, in the table's order, whatever failed.
#[test]
fn every_case_reports_every_part() {
    for case in cases() {
        let (_, sources) = hardware::collect(&case.join("root"));
        let names: Vec<&str> = sources.iter().map(|s| s.source.as_str()).collect();
        assert_eq!(names, hardware::PARTS, "{}", case.display());
    }
}

/// The running machine: whatever it is, collecting must not panic and must report every part.
#[test]
fn the_live_root_is_collected() {
    let (hardware, sources) = hardware::collect(Path::new("/"));
    assert_eq!(sources.len(), hardware::PARTS.len());
    if cfg!(target_os = "linux") {
        assert!(hardware.cpu.threads > 0, "{sources:?}");
        assert!(!hardware.os.kernel.is_empty());
        assert!(!hardware.os.arch.is_empty());
    }
}
