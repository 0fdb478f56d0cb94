//! ARCHITECTURE.md stays true: every path it names in backticks exists.
#![allow(clippy::unwrap_used)] // reason: test helpers

use std::path::Path;

#[test]
fn every_path_named_in_architecture_md_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let mut checked = 0;
    for (i, chunk) in text.split('`').enumerate() {
        let looks_like_path = i % 2 == 1
            && !chunk.contains(' ')
            && [
                "shared/",
                "agent/",
                "collector/",
                "tests/",
                "bench/",
                "packaging/",
                "README",
                "BENCHMARKS",
            ]
            .iter()
            .any(|prefix| chunk.starts_with(prefix));
        if looks_like_path {
            assert!(
                root.join(chunk).exists(),
                "ARCHITECTURE.md names {chunk}, which does not exist"
            );
            checked += 1;
        }
    }
    assert!(
        checked > 20,
        "only {checked} paths found: did the format change?"
    );
}

#[test]
fn the_agent_never_refreshes_everything() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    for entry in walk(&root.join("agent/src")) {
        let text = std::fs::read_to_string(&entry).unwrap();
        for forbidden in ["refresh_all(", "new_all("] {
            assert!(
                !text.contains(forbidden),
                "{} calls {forbidden}",
                entry.display()
            );
        }
    }
}

/// Only the ticket connectors (and the admin CLI's client of our own API) make HTTP calls.
#[test]
fn only_the_tickets_module_calls_ticketing_apis() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let src = root.join("collector/src");
    for entry in walk(&src) {
        let relative = entry
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .to_string();
        if relative.starts_with("tickets/") || relative == "cli/admin.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&entry).unwrap();
        assert!(
            !text.contains("reqwest"),
            "collector/src/{relative} makes HTTP calls outside collector/src/tickets/"
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}
