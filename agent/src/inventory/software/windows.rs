//! Windows: the Uninstall keys behind "Apps & features".
//!
//! - `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall` (opened in the 64-bit view),
//! - `HKLM\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall` (32-bit programs on
//!   64-bit Windows, reported with arch `x86`),
//! - `HKU\<sid>\Software\Microsoft\Windows\CurrentVersion\Uninstall` for every loaded user hive
//!   (`HKCU` is one of them; users who are not logged on have no loaded hive and are missed).
//!
//! One subkey per program: `DisplayName`, `DisplayVersion`, `Publisher`, `InstallDate`
//! (`YYYYMMDD`), `EstimatedSize` (KiB). Entries without a `DisplayName` or with
//! `SystemComponent` = 1 are hidden by Windows itself and skipped here too.
//!
//! The walk is written against the small [`Registry`] trait so that it and the per-key mapping
//! ([`package_from_values`]) compile and are tested everywhere; only the adapter over the
//! `winreg` crate is Windows-only. The root argument does not apply: the registry is the live
//! machine's.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use steward_shared::v1::SoftwarePackage;

use super::{Collected, SoftwareSource, SourceError};

pub struct WindowsRegistry;

pub const UNINSTALL: &str = r"SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall";
pub const UNINSTALL_WOW64: &str =
    r"SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall";

impl SoftwareSource for WindowsRegistry {
    fn name(&self) -> &'static str {
        "windows-registry"
    }

    fn present(&self, _root: &Path) -> bool {
        cfg!(windows)
    }

    fn collect(&self, _root: &Path) -> Result<Collected, SourceError> {
        #[cfg(windows)]
        {
            walk(&live::LiveRegistry)
        }
        #[cfg(not(windows))]
        {
            Err(SourceError::Unsupported {
                path: "HKLM".to_string(),
                message: "the Windows registry exists only on Windows".to_string(),
            })
        }
    }
}

/// A registry hive the walk reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hive {
    LocalMachine,
    Users,
}

impl Hive {
    fn label(self) -> &'static str {
        match self {
            Hive::LocalMachine => "HKLM",
            Hive::Users => "HKU",
        }
    }
}

/// A registry value, as far as this source needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegValue {
    String(String),
    Number(u64),
    Other,
}

/// The values of one key, by name.
pub type Values = BTreeMap<String, RegValue>;

/// What the walk needs from a registry. `path` is relative to the hive ("" for the hive
/// itself); a key that does not exist is an `io::ErrorKind::NotFound` error.
pub trait Registry {
    fn subkeys(&self, hive: Hive, path: &str) -> io::Result<Vec<String>>;
    fn values(&self, hive: Hive, path: &str) -> io::Result<Values>;
}

/// Reads every Uninstall key. A missing Uninstall key is normal (no 32-bit programs, a user
/// without per-user installs); any other error on a key is a warning.
pub fn walk(registry: &impl Registry) -> Result<Collected, SourceError> {
    let mut collected = Collected::default();
    let mut roots = vec![
        (Hive::LocalMachine, UNINSTALL.to_string(), ""),
        (Hive::LocalMachine, UNINSTALL_WOW64.to_string(), "x86"),
    ];
    match registry.subkeys(Hive::Users, "") {
        Ok(users) => roots.extend(
            users
                .into_iter()
                .filter(|sid| !sid.ends_with("_Classes"))
                .map(|sid| (Hive::Users, format!(r"{sid}\{UNINSTALL}"), "")),
        ),
        Err(error) => collected.warnings.push(format!("HKU: {error}")),
    }
    let mut any_root = false;
    for (hive, path, arch) in &roots {
        let entries = match registry.subkeys(*hive, path) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => {
                collected
                    .warnings
                    .push(format!(r"{}\{path}: {error}", hive.label()));
                continue;
            }
        };
        any_root = true;
        for entry in entries {
            let key = format!(r"{path}\{entry}");
            match registry.values(*hive, &key) {
                Ok(values) => collected
                    .packages
                    .extend(package_from_values(&values, arch)),
                Err(error) => collected
                    .warnings
                    .push(format!(r"{}\{key}: {error}; skipped", hive.label())),
            }
        }
    }
    if !any_root {
        return Err(SourceError::Read {
            path: format!(r"HKLM\{UNINSTALL}"),
            source: io::ErrorKind::NotFound.into(),
        });
    }
    Ok(collected)
}

/// The program one Uninstall subkey describes; `None` for entries Windows hides.
pub fn package_from_values(values: &Values, arch: &str) -> Option<SoftwarePackage> {
    let string = |name: &str| match get(values, name) {
        Some(RegValue::String(s)) => Some(s.trim()).filter(|s| !s.is_empty()),
        _ => None,
    };
    let number = |name: &str| match get(values, name) {
        Some(RegValue::Number(n)) => Some(*n),
        Some(RegValue::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    let name = string("DisplayName")?;
    if number("SystemComponent") == Some(1) {
        return None;
    }
    Some(SoftwarePackage {
        name: name.to_string(),
        version: string("DisplayVersion").unwrap_or_default().to_string(),
        arch: arch.to_string(),
        publisher: string("Publisher").unwrap_or_default().to_string(),
        installed_at_ms: string("InstallDate").and_then(install_date_ms),
        size_bytes: number("EstimatedSize").and_then(|kib| kib.checked_mul(1024)),
        source: "windows-registry".to_string(),
    })
}

/// Registry value names are case-insensitive.
fn get<'a>(values: &'a Values, name: &str) -> Option<&'a RegValue> {
    values.get(name).or_else(|| {
        values
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// `YYYYMMDD` (what installers write) as midnight UTC.
fn install_date_ms(text: &str) -> Option<i64> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year = text[..4].parse().ok()?;
    let month = text[4..6].parse().ok()?;
    let day = text[6..].parse().ok()?;
    super::date_to_ms(year, month, day)
}

#[cfg(windows)]
mod live {
    use std::io;

    use winreg::RegKey;
    use winreg::enums::{
        HKEY_LOCAL_MACHINE, HKEY_USERS, KEY_READ, KEY_WOW64_64KEY, REG_DWORD, REG_EXPAND_SZ,
        REG_QWORD, REG_SZ,
    };
    use winreg::types::FromRegValue;

    use super::{Hive, RegValue, Registry, Values};

    pub struct LiveRegistry;

    fn open(hive: Hive, path: &str) -> io::Result<RegKey> {
        let predef = RegKey::predef(match hive {
            Hive::LocalMachine => HKEY_LOCAL_MACHINE,
            Hive::Users => HKEY_USERS,
        });
        // The 64-bit view, so a 32-bit build still sees 64-bit programs (and WOW6432Node by
        // its explicit path).
        predef.open_subkey_with_flags(path, KEY_READ | KEY_WOW64_64KEY)
    }

    impl Registry for LiveRegistry {
        fn subkeys(&self, hive: Hive, path: &str) -> io::Result<Vec<String>> {
            open(hive, path)?.enum_keys().collect()
        }

        fn values(&self, hive: Hive, path: &str) -> io::Result<Values> {
            let mut values = Values::new();
            for item in open(hive, path)?.enum_values() {
                let (name, value) = item?;
                let converted = match value.vtype {
                    REG_SZ | REG_EXPAND_SZ => String::from_reg_value(&value)
                        .map(RegValue::String)
                        .unwrap_or(RegValue::Other),
                    REG_DWORD => u32::from_reg_value(&value)
                        .map(|n| RegValue::Number(n.into()))
                        .unwrap_or(RegValue::Other),
                    REG_QWORD => u64::from_reg_value(&value)
                        .map(RegValue::Number)
                        .unwrap_or(RegValue::Other),
                    _ => RegValue::Other,
                };
                values.insert(name, converted);
            }
            Ok(values)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn values(pairs: &[(&str, RegValue)]) -> Values {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn s(text: &str) -> RegValue {
        RegValue::String(text.to_string())
    }

    #[test]
    fn a_typical_entry_maps() {
        let package = package_from_values(
            &values(&[
                ("DisplayName", s("7-Zip 23.01 (x64)")),
                ("DisplayVersion", s("23.01")),
                ("Publisher", s("Igor Pavlov")),
                ("InstallDate", s("20240229")),
                ("EstimatedSize", RegValue::Number(5_678)),
                ("NoModify", RegValue::Number(1)),
            ]),
            "",
        )
        .unwrap();
        assert_eq!(package.name, "7-Zip 23.01 (x64)");
        assert_eq!(package.version, "23.01");
        assert_eq!(package.publisher, "Igor Pavlov");
        assert_eq!(package.installed_at_ms, Some(1_709_164_800_000));
        assert_eq!(package.size_bytes, Some(5_678 * 1024));
        assert_eq!(package.source, "windows-registry");
    }

    #[test]
    fn hidden_and_nameless_entries_are_skipped() {
        let hidden = values(&[
            ("DisplayName", s("Visual C++ runtime")),
            ("SystemComponent", RegValue::Number(1)),
        ]);
        assert_eq!(package_from_values(&hidden, ""), None);
        assert_eq!(
            package_from_values(&values(&[("DisplayVersion", s("1"))]), ""),
            None
        );
        assert_eq!(
            package_from_values(&values(&[("DisplayName", s("  "))]), ""),
            None
        );
    }

    #[test]
    fn odd_values_are_tolerated() {
        let package = package_from_values(
            &values(&[
                ("displayname", s("Lower Case")),
                ("InstallDate", s("29.02.2024")),
                ("EstimatedSize", s("12")),
                ("Publisher", RegValue::Other),
            ]),
            "x86",
        )
        .unwrap();
        assert_eq!(package.name, "Lower Case");
        assert_eq!(package.installed_at_ms, None);
        assert_eq!(package.size_bytes, Some(12 * 1024));
        assert_eq!(package.publisher, "");
        assert_eq!(package.arch, "x86");
        assert_eq!(install_date_ms("20241301"), None);
    }

    /// A registry in memory: keys by (hive, path).
    #[derive(Default)]
    struct FakeRegistry {
        keys: HashMap<(Hive, String), Values>,
        denied: Vec<String>,
    }

    impl FakeRegistry {
        fn add(&mut self, hive: Hive, path: &str, pairs: &[(&str, RegValue)]) {
            self.keys.insert((hive, path.to_string()), values(pairs));
        }
    }

    impl Registry for FakeRegistry {
        fn subkeys(&self, hive: Hive, path: &str) -> io::Result<Vec<String>> {
            if self.denied.iter().any(|d| d == path) {
                return Err(io::ErrorKind::PermissionDenied.into());
            }
            let prefix = if path.is_empty() {
                String::new()
            } else {
                format!(r"{path}\")
            };
            let mut found: Vec<String> = self
                .keys
                .keys()
                .filter(|(h, p)| *h == hive && p.starts_with(&prefix))
                .filter_map(|(_, p)| p[prefix.len()..].split('\\').next().map(str::to_string))
                .collect();
            found.sort();
            found.dedup();
            if found.is_empty() {
                return Err(io::ErrorKind::NotFound.into());
            }
            Ok(found)
        }

        fn values(&self, hive: Hive, path: &str) -> io::Result<Values> {
            if self.denied.iter().any(|d| d == path) {
                return Err(io::ErrorKind::PermissionDenied.into());
            }
            self.keys
                .get(&(hive, path.to_string()))
                .cloned()
                .ok_or_else(|| io::ErrorKind::NotFound.into())
        }
    }

    #[test]
    fn the_walk_covers_both_views_and_every_user() {
        let mut registry = FakeRegistry::default();
        registry.add(
            Hive::LocalMachine,
            &format!(r"{UNINSTALL}\{{1111}}"),
            &[("DisplayName", s("Native")), ("DisplayVersion", s("1"))],
        );
        registry.add(
            Hive::LocalMachine,
            &format!(r"{UNINSTALL}\Hidden"),
            &[
                ("DisplayName", s("Hidden")),
                ("SystemComponent", RegValue::Number(1)),
            ],
        );
        registry.add(
            Hive::LocalMachine,
            &format!(r"{UNINSTALL_WOW64}\Old"),
            &[("DisplayName", s("Thirty-two"))],
        );
        let sid = "S-1-5-21-1-2-3-1001";
        registry.add(
            Hive::Users,
            &format!(r"{sid}\{UNINSTALL}\Per-user"),
            &[("DisplayName", s("Per user"))],
        );
        registry.add(Hive::Users, &format!(r"{sid}_Classes\x"), &[]);
        registry.add(
            Hive::Users,
            &format!(r"{sid}\{UNINSTALL}\Denied"),
            &[("DisplayName", s("Denied"))],
        );
        registry.denied.push(format!(r"{sid}\{UNINSTALL}\Denied"));
        let collected = walk(&registry).unwrap();
        let mut names: Vec<(&str, &str)> = collected
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.arch.as_str()))
            .collect();
        names.sort();
        assert_eq!(
            names,
            [("Native", ""), ("Per user", ""), ("Thirty-two", "x86")]
        );
        assert_eq!(collected.warnings.len(), 1);
        assert!(
            collected.warnings[0].starts_with(&format!(r"HKU\{sid}\{UNINSTALL}\Denied: ")),
            "{:?}",
            collected.warnings
        );
    }

    #[test]
    fn no_uninstall_key_at_all_fails_the_source() {
        let error = walk(&FakeRegistry::default()).unwrap_err().to_string();
        assert!(error.starts_with(r"HKLM\SOFTWARE\Microsoft"), "{error}");
    }

    #[test]
    fn absent_off_windows() {
        assert_eq!(WindowsRegistry.present(Path::new("/")), cfg!(windows));
    }
}
