//! macOS application bundles: `/Applications/*.app` and `/Applications/Utilities/*.app`, from
//! each bundle's `Contents/Info.plist` (XML or binary): the name is `CFBundleDisplayName`, else
//! `CFBundleName`, else the bundle's file name; the version `CFBundleShortVersionString`, else
//! `CFBundleVersion`; the publisher the reverse-DNS domain of `CFBundleIdentifier`. Bundles
//! record neither an install time nor a size (summing a bundle's files would cost more than the
//! whole inventory budget), so both are left empty.

use std::path::Path;

use steward_shared::v1::SoftwarePackage;

use super::pkgutil::reverse_dns_domain;
use super::plist;
use super::{Collected, SoftwareSource, SourceError, host_path};

pub struct MacApps;

pub const APP_DIRS: [&str; 2] = ["Applications", "Applications/Utilities"];

/// The cap for one `Info.plist`.
const INFO_PLIST_CAP: u64 = 4 << 20;

impl SoftwareSource for MacApps {
    fn name(&self) -> &'static str {
        "macos-app"
    }

    fn present(&self, root: &Path) -> bool {
        super::is_dir(root, APP_DIRS[0])
    }

    fn collect(&self, root: &Path) -> Result<Collected, SourceError> {
        let mut collected = Collected::default();
        for dir in APP_DIRS {
            if dir != APP_DIRS[0] && !super::is_dir(root, dir) {
                continue;
            }
            for bundle in super::list_dir(root, dir)? {
                let Some(stem) = bundle.strip_suffix(".app") else {
                    continue;
                };
                if !super::is_plain_name(&bundle) {
                    continue;
                }
                let rel = format!("{dir}/{bundle}/Contents/Info.plist");
                let dict = super::read_capped(root, &rel, INFO_PLIST_CAP).and_then(|bytes| {
                    plist::top_level(&bytes).map_err(|e| SourceError::Corrupt {
                        path: host_path(&rel),
                        message: e.to_string(),
                    })
                });
                match dict {
                    Ok(dict) => collected.packages.push(app(&dict, stem)),
                    Err(error) => collected.warnings.push(format!("{error}; skipped")),
                }
            }
        }
        Ok(collected)
    }
}

/// The application an `Info.plist` describes; `stem` is the bundle's name without `.app`.
pub fn app(dict: &plist::Dict, stem: &str) -> SoftwarePackage {
    let name = dict
        .string("CFBundleDisplayName")
        .or_else(|| dict.string("CFBundleName"))
        .unwrap_or(stem);
    let version = dict
        .string("CFBundleShortVersionString")
        .or_else(|| dict.string("CFBundleVersion"))
        .unwrap_or_default();
    SoftwarePackage {
        name: name.to_string(),
        version: version.to_string(),
        arch: String::new(),
        publisher: dict
            .string("CFBundleIdentifier")
            .map(reverse_dns_domain)
            .unwrap_or_default(),
        installed_at_ms: None,
        size_bytes: None,
        source: "macos-app".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::plist::Scalar;
    use super::*;

    #[test]
    fn names_and_versions_fall_back() {
        let dict = plist::Dict(vec![
            ("CFBundleName".into(), Scalar::String("Safari".into())),
            (
                "CFBundleVersion".into(),
                Scalar::String("19618.1.15".into()),
            ),
            (
                "CFBundleIdentifier".into(),
                Scalar::String("com.apple.Safari".into()),
            ),
        ]);
        let package = app(&dict, "Safari");
        assert_eq!(package.name, "Safari");
        assert_eq!(package.version, "19618.1.15");
        assert_eq!(package.publisher, "apple.com");
        let package = app(&plist::Dict::default(), "Bare");
        assert_eq!(
            (package.name.as_str(), package.version.as_str()),
            ("Bare", "")
        );
    }

    #[test]
    fn a_bundle_without_info_plist_is_skipped_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("Applications/Broken.app/Contents")).unwrap();
        let collected = MacApps.collect(dir.path()).unwrap();
        assert!(collected.packages.is_empty());
        assert_eq!(collected.warnings.len(), 1);
        assert!(
            collected.warnings[0].starts_with("/Applications/Broken.app/Contents/Info.plist: "),
            "{:?}",
            collected.warnings
        );
    }
}
