//! The software inventory over fixture trees of real machines: each folder under
//! `tests/fixtures/software/` with a `root/` is a case, and its `expected.json` holds what
//! `software::collect` returns for it (packages and source statuses). Adding a case adds no
//! code. `STEWARD_UPDATE_GOLDEN=1 cargo test -p steward-agent --test software_inventory`
//! rewrites the expected files on purpose.
//!
//! Each root is copied to a temporary directory first, with every file's modification time set
//! to one fixed instant: install times derived from mtimes (dpkg `.list` files, flatpak
//! `deploy`) would otherwise be whenever git checked the file out. The copy also proves that
//! sources read only under the root they are given.
#![cfg(unix)]
#![allow(clippy::unwrap_used)] // reason: test helpers

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use steward_agent::inventory::software;
use steward_shared::v1::{SoftwarePackage, SourceStatus};

/// 2024-01-02T03:04:05Z: the mtime of every fixture file.
const FIXED_MTIME_SECS: u64 = 1_704_164_645;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Expected {
    packages: Vec<SoftwarePackage>,
    sources: Vec<SourceStatus>,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/software")
}

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("root").is_dir())
        .collect();
    cases.sort();
    cases
}

/// Copies a tree, links as links, every file's mtime set to [`FIXED_MTIME_SECS`].
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &target).unwrap();
        } else if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            let file = std::fs::File::options().write(true).open(&target).unwrap();
            file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(FIXED_MTIME_SECS))
                .unwrap();
        }
    }
}

fn run_case(case: &Path) -> Expected {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&case.join("root"), dir.path());
    let (packages, sources) = software::collect(dir.path());
    Expected { packages, sources }
}

#[test]
fn fixture_trees_match_their_expected_output() {
    let update = std::env::var_os("STEWARD_UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let cases = cases();
    let names: Vec<String> = cases
        .iter()
        .map(|c| c.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for required in [
        "alpine", "arch", "broken", "debian", "fedora", "macos", "ubuntu",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "missing case {required}"
        );
    }
    let mut failures = Vec::new();
    for case in &cases {
        let actual = run_case(case);
        let expected_path = case.join("expected.json");
        let mut text = serde_json::to_string_pretty(&actual).unwrap();
        text.push('\n');
        if update {
            std::fs::write(&expected_path, &text).unwrap();
            continue;
        }
        let expected_text = std::fs::read_to_string(&expected_path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (STEWARD_UPDATE_GOLDEN=1 writes it)",
                expected_path.display()
            )
        });
        let expected: Expected = serde_json::from_str(&expected_text).unwrap();
        if expected != actual {
            failures.push(format!(
                "{}: differs from expected.json; got:\n{text}",
                case.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The cases prove what they are there for, whatever their golden files say.
#[test]
fn the_cases_cover_what_they_claim() {
    let debian = run_case(&fixtures().join("debian"));
    let arches: Vec<(&str, &str)> = debian
        .packages
        .iter()
        .filter(|p| p.name == "libc6")
        .map(|p| (p.name.as_str(), p.arch.as_str()))
        .collect();
    assert_eq!(arches, [("libc6", "amd64"), ("libc6", "i386")]);
    assert!(
        !debian
            .packages
            .iter()
            .any(|p| p.name == "pacman-package-manager")
    );
    let fixture_status =
        std::fs::read_to_string(fixtures().join("debian/root/var/lib/dpkg/status")).unwrap();
    assert!(fixture_status.contains("Status: deinstall ok config-files"));

    let fedora = run_case(&fixtures().join("fedora"));
    assert!(fedora.packages.iter().any(|p| p.version == "2:0.9-1.fc40"));
    assert!(!fedora.packages.iter().any(|p| p.name == "gpg-pubkey"));

    let broken = run_case(&fixtures().join("broken"));
    let status = |name: &str| broken.sources.iter().find(|s| s.source == name).unwrap();
    let dpkg_error = status("dpkg").error.as_deref().unwrap();
    assert!(
        dpkg_error.starts_with("/var/lib/dpkg/status:"),
        "{dpkg_error}"
    );
    assert_eq!(status("apk").error, None);
    assert_eq!(status("apk").items, 1);
}

/// On a Debian-family machine, the dpkg source agrees with dpkg itself about how many packages
/// are installed (`ii`, and the `hi`/`iW`/`it` states it counts too). Skipped without
/// dpkg-query.
#[test]
fn dpkg_on_this_machine_matches_dpkg_query() {
    let Ok(output) = std::process::Command::new("dpkg-query")
        .args(["-f", "${db:Status-Abbrev}\n", "-W"])
        .output()
    else {
        eprintln!("dpkg-query not found; skipped");
        return;
    };
    if !output.status.success() || !Path::new("/var/lib/dpkg/status").is_file() {
        eprintln!("dpkg-query failed; skipped");
        return;
    }
    let installed = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|abbrev| matches!(abbrev.as_bytes().get(1), Some(b'i' | b'W' | b't')))
        .count();
    let (packages, sources) = software::collect(Path::new("/"));
    let dpkg = sources.iter().find(|s| s.source == "dpkg").unwrap();
    assert_eq!(dpkg.error, None);
    let ours = packages.iter().filter(|p| p.source == "dpkg").count();
    assert_eq!(ours, installed);
    assert_eq!(dpkg.items as usize, installed);
}
