//! macOS installer receipts (what `pkgutil --pkgs` lists): `/var/db/receipts/*.plist`, each a
//! property list (binary on current macOS) with `PackageIdentifier`, `PackageVersion` and
//! `InstallDate`. The publisher is the identifier's reverse-DNS domain (`com.microsoft.Word` →
//! `microsoft.com`), the only vendor information a receipt has.

use std::path::Path;

use steward_shared::v1::SoftwarePackage;

use super::plist::{self, Scalar};
use super::{Collected, SoftwareSource, SourceError, TEXT_DB_CAP, host_path};

pub struct Pkgutil;

pub const RECEIPTS: &str = "var/db/receipts";

impl SoftwareSource for Pkgutil {
    fn name(&self) -> &'static str {
        "pkgutil"
    }

    fn present(&self, root: &Path) -> bool {
        super::is_dir(root, RECEIPTS)
    }

    fn collect(&self, root: &Path) -> Result<Collected, SourceError> {
        let mut collected = Collected::default();
        for file in super::list_dir(root, RECEIPTS)? {
            let Some(stem) = file.strip_suffix(".plist") else {
                continue;
            };
            if !super::is_plain_name(&file) {
                continue;
            }
            let rel = format!("{RECEIPTS}/{file}");
            let result = super::read_capped(root, &rel, TEXT_DB_CAP).and_then(|bytes| {
                plist::top_level(&bytes).map_err(|e| SourceError::Corrupt {
                    path: host_path(&rel),
                    message: e.to_string(),
                })
            });
            match result {
                Ok(dict) => match receipt(&dict, stem) {
                    Some(package) => collected.packages.push(package),
                    None => collected
                        .warnings
                        .push(format!("{}: no PackageVersion; skipped", host_path(&rel))),
                },
                Err(error) => collected.warnings.push(format!("{error}; skipped")),
            }
        }
        Ok(collected)
    }
}

/// A receipt's package; `None` without a version. `stem` (the file name) stands in for a
/// missing identifier.
pub fn receipt(dict: &plist::Dict, stem: &str) -> Option<SoftwarePackage> {
    let identifier = dict.string("PackageIdentifier").unwrap_or(stem);
    let version = dict.string("PackageVersion")?;
    Some(SoftwarePackage {
        name: identifier.to_string(),
        version: version.to_string(),
        arch: String::new(),
        publisher: reverse_dns_domain(identifier),
        installed_at_ms: match dict.get("InstallDate") {
            Some(Scalar::Date(ms)) => Some(*ms),
            _ => None,
        },
        size_bytes: None,
        source: "pkgutil".to_string(),
    })
}

/// The domain a reverse-DNS identifier starts with: `com.apple.pkg.Safari` → `apple.com`;
/// empty when the identifier has no dot.
pub fn reverse_dns_domain(identifier: &str) -> String {
    let mut labels = identifier.split('.');
    match (labels.next(), labels.next()) {
        (Some(tld), Some(name)) if !tld.is_empty() && !name.is_empty() => {
            format!("{}.{}", name.to_ascii_lowercase(), tld.to_ascii_lowercase())
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_from_identifiers() {
        assert_eq!(reverse_dns_domain("com.microsoft.Word"), "microsoft.com");
        assert_eq!(reverse_dns_domain("org.mozilla.firefox"), "mozilla.org");
        assert_eq!(reverse_dns_domain("Firefox"), "");
        assert_eq!(reverse_dns_domain(".x"), "");
    }

    #[test]
    fn receipts_need_a_version() {
        let dict = plist::Dict(vec![(
            "PackageIdentifier".into(),
            Scalar::String("com.example.a".into()),
        )]);
        assert_eq!(receipt(&dict, "x"), None);
        let dict = plist::Dict(vec![("PackageVersion".into(), Scalar::String("1".into()))]);
        let package = receipt(&dict, "com.example.fallback").unwrap();
        assert_eq!(package.name, "com.example.fallback");
        assert_eq!(package.publisher, "example.com");
    }

    #[test]
    fn a_corrupt_receipt_is_skipped_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let receipts = dir.path().join(RECEIPTS);
        std::fs::create_dir_all(&receipts).unwrap();
        std::fs::write(receipts.join("com.example.bad.plist"), b"bplist00garbage").unwrap();
        std::fs::write(receipts.join("com.example.bad.bom"), b"BOMStore").unwrap();
        let collected = Pkgutil.collect(dir.path()).unwrap();
        assert!(collected.packages.is_empty());
        assert_eq!(
            collected.warnings,
            [
                "/var/db/receipts/com.example.bad.plist: invalid property list: too short for a \
                 binary plist; skipped"
            ]
        );
    }
}
