//! Snaps (Ubuntu and others with snapd): `/snap/<name>/current` → the current revision, and
//! that revision's `/snap/<name>/<revision>/meta/snap.yaml`.
//!
//! `/var/lib/snapd/state.json` holds the same and more, but it is megabytes of JSON rewritten
//! constantly; the mounted `snap.yaml` files are small. Only three top-level keys are read
//! (`name`, `version`, `architectures`), line by line, so no YAML parser is pulled in. The size
//! is that of the revision's `.snap` file in `/var/lib/snapd/snaps/` (snaps stay compressed on
//! disk, so that is what they occupy). snap.yaml names no publisher and snapd records no install
//! time outside `state.json`, so both are left empty.

use std::path::Path;

use steward_shared::v1::SoftwarePackage;

use super::{Collected, SoftwareSource, SourceError, host_path, lossy};

pub struct Snap;

pub const SNAP_DIR: &str = "snap";
pub const SNAPS_DIR: &str = "var/lib/snapd/snaps";

/// The cap for one `snap.yaml`.
const YAML_CAP: u64 = 1 << 20;

impl SoftwareSource for Snap {
    fn name(&self) -> &'static str {
        "snap"
    }

    fn present(&self, root: &Path) -> bool {
        super::is_dir(root, SNAP_DIR)
    }

    fn collect(&self, root: &Path) -> Result<Collected, SourceError> {
        let mut collected = Collected::default();
        for name in super::list_dir(root, SNAP_DIR)? {
            if !super::is_plain_name(&name) {
                continue;
            }
            // `/snap/bin`, `/snap/README` and the like have no `current` link.
            let current = root.join(SNAP_DIR).join(&name).join("current");
            let Ok(target) = std::fs::read_link(&current) else {
                continue;
            };
            let Some(revision) = target
                .file_name()
                .map(|r| r.to_string_lossy().into_owned())
                .filter(|r| super::is_plain_name(r))
            else {
                collected.warnings.push(format!(
                    "/{SNAP_DIR}/{name}/current: link to '{}' names no revision; skipped",
                    target.display()
                ));
                continue;
            };
            let rel = format!("{SNAP_DIR}/{name}/{revision}/meta/snap.yaml");
            let text = match super::read_capped(root, &rel, YAML_CAP) {
                Ok(text) => text,
                Err(error) => {
                    collected.warnings.push(format!("{error}; skipped"));
                    continue;
                }
            };
            let meta = parse_snap_yaml(&text);
            if meta.version.is_empty() {
                collected
                    .warnings
                    .push(format!("{}: no version; skipped", host_path(&rel)));
                continue;
            }
            let size_bytes =
                std::fs::metadata(root.join(SNAPS_DIR).join(format!("{name}_{revision}.snap")))
                    .ok()
                    .map(|m| m.len());
            collected.packages.push(SoftwarePackage {
                // The directory is the instance name (`name_key` for parallel installs), which
                // is unique where snap.yaml's `name` is not.
                name,
                version: meta.version,
                arch: meta.architectures.join(","),
                publisher: String::new(),
                installed_at_ms: None,
                size_bytes,
                source: "snap".to_string(),
            });
        }
        Ok(collected)
    }
}

/// The top-level keys of `snap.yaml` this source reads.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SnapMeta {
    pub name: String,
    pub version: String,
    /// `all` when snap.yaml does not say (snapcraft's default).
    pub architectures: Vec<String>,
}

/// Reads `name`, `version` and `architectures` (flow `[a, b]` or block `- a` form) from the
/// top level of a snap.yaml; everything else is ignored.
pub fn parse_snap_yaml(text: &[u8]) -> SnapMeta {
    let mut meta = SnapMeta::default();
    let mut in_architectures = false;
    let mut architectures = None;
    for (_, line) in super::numbered_lines(text) {
        let trimmed = super::trim(line);
        if in_architectures {
            if let Some(item) = trimmed.strip_prefix(b"-") {
                architectures
                    .get_or_insert_with(Vec::new)
                    .push(scalar(item));
                continue;
            }
            if trimmed.is_empty() || trimmed.starts_with(b"#") {
                continue;
            }
            in_architectures = false;
        }
        if line.first().is_none_or(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = super::trim(&line[colon + 1..]);
        match &line[..colon] {
            b"name" => meta.name = scalar(value),
            b"version" => meta.version = scalar(value),
            b"architectures" => {
                if let Some(list) = value.strip_prefix(b"[") {
                    let list = list.split(|&b| b == b']').next().unwrap_or_default();
                    architectures = Some(
                        list.split(|&b| b == b',')
                            .map(scalar)
                            .filter(|a| !a.is_empty())
                            .collect(),
                    );
                } else {
                    in_architectures = true;
                }
            }
            _ => {}
        }
    }
    meta.architectures = architectures.unwrap_or_else(|| vec!["all".to_string()]);
    meta
}

/// A plain or quoted YAML scalar, without a trailing comment.
fn scalar(raw: &[u8]) -> String {
    let raw = super::trim(raw);
    if let Some(inner) = raw.strip_prefix(b"'") {
        let end = inner
            .iter()
            .rposition(|&b| b == b'\'')
            .unwrap_or(inner.len());
        return lossy(&inner[..end]).replace("''", "'");
    }
    if let Some(inner) = raw.strip_prefix(b"\"") {
        let end = inner
            .iter()
            .rposition(|&b| b == b'"')
            .unwrap_or(inner.len());
        return lossy(&inner[..end])
            .replace("\\\"", "\"")
            .replace("\\\\", "\\");
    }
    let plain = match raw.windows(2).position(|w| w == b" #") {
        Some(comment) => &raw[..comment],
        None => raw,
    };
    lossy(super::trim(plain))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snap_yaml_keys_are_read_in_both_list_forms() {
        let meta = parse_snap_yaml(
            b"name: core22\nversion: '20240111'\nsummary: Runtime\narchitectures:\n- amd64\n  - arm64 # x\nbase: none\n",
        );
        assert_eq!(meta.name, "core22");
        assert_eq!(meta.version, "20240111");
        assert_eq!(meta.architectures, ["amd64", "arm64"]);
        let meta = parse_snap_yaml(b"name: lxd\nversion: \"5.21.1-2d13beb\" \narchitectures: [ amd64, i386 ]\napps:\n  lxd:\n    version: nope\n");
        assert_eq!(meta.version, "5.21.1-2d13beb");
        assert_eq!(meta.architectures, ["amd64", "i386"]);
        let meta = parse_snap_yaml(b"name: x\nversion: 1.0 # comment\n");
        assert_eq!(meta.version, "1.0");
        assert_eq!(meta.architectures, ["all"]);
    }

    #[cfg(unix)]
    #[test]
    fn current_links_select_the_revision() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for rev in ["10", "11"] {
            let meta = root.join(format!("snap/hello/{rev}/meta"));
            std::fs::create_dir_all(&meta).unwrap();
            std::fs::write(
                meta.join("snap.yaml"),
                format!("name: hello\nversion: 2.{rev}\n"),
            )
            .unwrap();
        }
        std::os::unix::fs::symlink("11", root.join("snap/hello/current")).unwrap();
        std::fs::create_dir_all(root.join("snap/bin")).unwrap();
        std::fs::create_dir_all(root.join("snap/broken/1")).unwrap();
        std::os::unix::fs::symlink("1", root.join("snap/broken/current")).unwrap();
        std::fs::create_dir_all(root.join(SNAPS_DIR)).unwrap();
        std::fs::write(root.join(SNAPS_DIR).join("hello_11.snap"), [0u8; 4096]).unwrap();
        let collected = Snap.collect(root).unwrap();
        assert_eq!(collected.packages.len(), 1);
        assert_eq!(collected.packages[0].version, "2.11");
        assert_eq!(collected.packages[0].size_bytes, Some(4096));
        assert_eq!(collected.warnings.len(), 1);
        assert!(
            collected.warnings[0].starts_with("/snap/broken/1/meta/snap.yaml: "),
            "{:?}",
            collected.warnings
        );
    }
}
