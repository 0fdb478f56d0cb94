//! pacman (Arch Linux and derivatives): `/var/lib/pacman/local/<name>-<version>/desc`.
//!
//! Each `desc` is sections of a `%KEY%` line followed by value lines up to a blank line:
//! `%NAME%`, `%VERSION%`, `%ARCH%`, `%PACKAGER%`, `%INSTALLDATE%` (Unix seconds), `%SIZE%`
//! (bytes). A package directory whose `desc` cannot be read or lacks a name or version is
//! skipped with a warning; only an unreadable `local` directory fails the source.

use std::path::Path;

use steward_shared::v1::SoftwarePackage;

use super::{Collected, SoftwareSource, SourceError, host_path, lossy, parse_u64};

pub struct Pacman;

pub const LOCAL: &str = "var/lib/pacman/local";

/// The cap for one `desc` file (they are a few hundred bytes).
const DESC_CAP: u64 = 1 << 20;

impl SoftwareSource for Pacman {
    fn name(&self) -> &'static str {
        "pacman"
    }

    fn present(&self, root: &Path) -> bool {
        super::is_dir(root, LOCAL)
    }

    fn collect(&self, root: &Path) -> Result<Collected, SourceError> {
        let mut collected = Collected::default();
        for entry in super::list_dir(root, LOCAL)? {
            if !super::is_plain_name(&entry) || !super::is_dir(root, &format!("{LOCAL}/{entry}")) {
                continue;
            }
            let rel = format!("{LOCAL}/{entry}/desc");
            let text = match super::read_capped(root, &rel, DESC_CAP) {
                Ok(text) => text,
                Err(error) => {
                    collected.warnings.push(format!("{error}; skipped"));
                    continue;
                }
            };
            match parse_desc(&text) {
                Ok(package) => collected.packages.push(package),
                Err(message) => collected
                    .warnings
                    .push(format!("{}: {message}; skipped", host_path(&rel))),
            }
        }
        Ok(collected)
    }
}

/// One package from its `desc` file.
pub fn parse_desc(text: &[u8]) -> Result<SoftwarePackage, String> {
    let mut package = SoftwarePackage {
        source: "pacman".to_string(),
        ..SoftwarePackage::default()
    };
    let mut key: Option<&[u8]> = None;
    for (_, line) in super::numbered_lines(text) {
        if line.is_empty() {
            key = None;
            continue;
        }
        let Some(current) = key else {
            if line.len() > 2 && line.starts_with(b"%") && line.ends_with(b"%") {
                key = Some(&line[1..line.len() - 1]);
            }
            continue;
        };
        // Multi-valued sections (%LICENSE%, %DEPENDS%) keep their first value here.
        key = Some(b"");
        match current {
            b"NAME" => package.name = lossy(line),
            b"VERSION" => package.version = lossy(line),
            b"ARCH" => package.arch = lossy(line),
            b"PACKAGER" => package.publisher = lossy(line),
            b"INSTALLDATE" => {
                package.installed_at_ms = super::parse_i64(line).and_then(super::seconds_to_ms)
            }
            b"SIZE" => package.size_bytes = parse_u64(line),
            _ => {}
        }
    }
    if package.name.is_empty() {
        return Err("no %NAME%".into());
    }
    if package.version.is_empty() {
        return Err(format!("package '{}' has no %VERSION%", package.name));
    }
    Ok(package)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_desc_file_parses() {
        let text = b"%NAME%\nlinux\n\n%VERSION%\n6.7.4.arch1-1\n\n%URL%\n\n\n%ARCH%\nx86_64\n\n\
%INSTALLDATE%\n1707400000\n\n%PACKAGER%\nJan Alexander Steffens (heftig) <heftig@archlinux.org>\n\n\
%SIZE%\n135432123\n\n%LICENSE%\nGPL-2.0-only\n\n%DEPENDS%\ncoreutils\nkmod\n";
        let package = parse_desc(text).unwrap();
        assert_eq!(package.name, "linux");
        assert_eq!(package.version, "6.7.4.arch1-1");
        assert_eq!(package.arch, "x86_64");
        assert_eq!(package.installed_at_ms, Some(1_707_400_000_000));
        assert_eq!(package.size_bytes, Some(135_432_123));
        assert!(package.publisher.starts_with("Jan Alexander"));
    }

    #[test]
    fn missing_fields_and_bad_numbers() {
        assert_eq!(parse_desc(b"%VERSION%\n1\n").unwrap_err(), "no %NAME%");
        assert_eq!(
            parse_desc(b"%NAME%\nx\n").unwrap_err(),
            "package 'x' has no %VERSION%"
        );
        let package = parse_desc(b"%NAME%\nx\n\n%VERSION%\n1\n\n%SIZE%\nhuge\n").unwrap();
        assert_eq!(package.size_bytes, None);
        let text = b"%NAME%\nx\n\n%VERSION%\n1-1\n\n%SIZE%\n5\n";
        for len in 0..text.len() {
            let _ = parse_desc(&text[..len]);
        }
    }

    #[test]
    fn a_bad_package_directory_is_skipped_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join(LOCAL);
        std::fs::create_dir_all(local.join("good-1-1")).unwrap();
        std::fs::create_dir_all(local.join("nodesc-1-1")).unwrap();
        std::fs::create_dir_all(local.join("noname-1-1")).unwrap();
        std::fs::write(local.join("ALPM_DB_VERSION"), "9\n").unwrap();
        std::fs::write(
            local.join("good-1-1/desc"),
            "%NAME%\ngood\n\n%VERSION%\n1-1\n",
        )
        .unwrap();
        std::fs::write(local.join("noname-1-1/desc"), "%VERSION%\n1-1\n").unwrap();
        let collected = Pacman.collect(dir.path()).unwrap();
        assert_eq!(collected.packages.len(), 1);
        assert_eq!(collected.warnings.len(), 2);
        assert!(
            collected.warnings[0].starts_with("/var/lib/pacman/local/nodesc-1-1/desc: "),
            "{:?}",
            collected.warnings
        );
        assert_eq!(
            collected.warnings[1],
            "/var/lib/pacman/local/noname-1-1/desc: no %NAME%; skipped"
        );
    }
}
