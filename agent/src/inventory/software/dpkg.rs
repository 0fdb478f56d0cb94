//! dpkg (Debian, Ubuntu and derivatives): `/var/lib/dpkg/status`.
//!
//! The status file is RFC 822-style stanzas separated by blank lines; a field is `Name: value`
//! and a line starting with a space or tab continues the previous field. The file (about 700 KB
//! for 800 packages) is read into one buffer and parsed in place: fields are borrowed slices,
//! and only the packages kept are copied into owned strings.
//!
//! A package counts as installed when the status word (third of `Status:`) is `installed`,
//! `triggers-pending` or `triggers-awaited` (configured, only waiting for triggers: `dpkg -l`
//! shows `ii`, `it`, `iW`; a held package `hi` too), whatever the wanted action. `config-files`,
//! `unpacked`, `half-installed`, `half-configured` and `not-installed` do not count.
//!
//! The install time is the modification time of the package's file list,
//! `/var/lib/dpkg/info/<name>.list` (`<name>:<arch>.list` for `Multi-Arch: same` packages), which
//! dpkg rewrites when it unpacks the package.

use std::path::Path;

use steward_shared::v1::SoftwarePackage;

use super::{
    Collected, SoftwareSource, SourceError, TEXT_DB_CAP, host_path, lossy, mtime_ms, parse_u64,
};

pub struct Dpkg;

pub const STATUS: &str = "var/lib/dpkg/status";
pub const INFO_DIR: &str = "var/lib/dpkg/info";

impl SoftwareSource for Dpkg {
    fn name(&self) -> &'static str {
        "dpkg"
    }

    fn present(&self, root: &Path) -> bool {
        super::is_file(root, STATUS)
    }

    fn collect(&self, root: &Path) -> Result<Collected, SourceError> {
        let text = super::read_capped(root, STATUS, TEXT_DB_CAP)?;
        let parsed = parse(&text).map_err(|e| SourceError::Syntax {
            path: host_path(STATUS),
            line: e.line,
            message: e.message,
        })?;
        let info = root.join(INFO_DIR);
        let packages = parsed
            .packages
            .iter()
            .map(|entry| {
                let mut package = entry.to_package();
                package.installed_at_ms = install_time(&info, entry);
                package
            })
            .collect();
        Ok(Collected {
            packages,
            warnings: parsed
                .warnings
                .into_iter()
                .map(|w| format!("{}:{w}", host_path(STATUS)))
                .collect(),
        })
    }
}

/// The mtime of the package's `.list` file, trying the arch-qualified name first where dpkg
/// uses it.
fn install_time(info: &Path, entry: &Entry<'_>) -> Option<i64> {
    let name = std::str::from_utf8(entry.package).ok()?;
    let arch = std::str::from_utf8(entry.architecture).ok()?;
    if !super::is_plain_name(name) || (!arch.is_empty() && !super::is_plain_name(arch)) {
        return None;
    }
    let plain = format!("{name}.list");
    let qualified = (!arch.is_empty()).then(|| format!("{name}:{arch}.list"));
    let mut candidates = [Some(plain), qualified];
    if entry.multi_arch_same {
        candidates.reverse();
    }
    for file in candidates.into_iter().flatten() {
        if let Some(ms) = mtime_ms(&info.join(file)) {
            return Some(ms);
        }
    }
    None
}

/// One installed package, its fields borrowed from the status file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The line its stanza starts on.
    pub line: usize,
    pub package: &'a [u8],
    pub version: &'a [u8],
    pub architecture: &'a [u8],
    pub maintainer: &'a [u8],
    /// `Installed-Size` in bytes (the field is KiB).
    pub size_bytes: Option<u64>,
    pub multi_arch_same: bool,
}

impl Entry<'_> {
    fn to_package(self) -> SoftwarePackage {
        SoftwarePackage {
            name: lossy(self.package),
            version: lossy(self.version),
            arch: lossy(self.architecture),
            publisher: lossy(self.maintainer),
            installed_at_ms: None,
            size_bytes: self.size_bytes,
            source: "dpkg".to_string(),
        }
    }
}

/// The installed packages of a status file, and `line: message` warnings for stanzas skipped or
/// read in part.
#[derive(Debug, Default)]
pub struct Parsed<'a> {
    pub packages: Vec<Entry<'a>>,
    pub warnings: Vec<String>,
}

/// A line that is not part of any stanza: dpkg itself refuses such a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

/// The fields of the stanza being read.
#[derive(Default)]
struct Stanza<'a> {
    line: usize,
    package: Option<&'a [u8]>,
    status: Option<&'a [u8]>,
    version: Option<&'a [u8]>,
    architecture: &'a [u8],
    maintainer: &'a [u8],
    installed_size: Option<(usize, &'a [u8])>,
    multi_arch: &'a [u8],
}

/// Parses a status file. A syntax error fails the whole file, as it does for dpkg; stanzas that
/// are well-formed but lack a field are skipped with a warning.
pub fn parse(text: &[u8]) -> Result<Parsed<'_>, SyntaxError> {
    let mut parsed = Parsed::default();
    let mut stanza: Option<Stanza<'_>> = None;
    let mut in_field = false;
    for (number, line) in super::numbered_lines(text) {
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            if let Some(done) = stanza.take() {
                finish(done, &mut parsed);
            }
            in_field = false;
            continue;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if !in_field {
                return Err(SyntaxError {
                    line: number,
                    message: "continuation line outside a field".into(),
                });
            }
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(SyntaxError {
                line: number,
                message: format!(
                    "{} is neither a field nor a continuation line",
                    super::excerpt(line)
                ),
            });
        };
        let name = &line[..colon];
        if name.is_empty() || name.iter().any(|b| b.is_ascii_whitespace()) {
            return Err(SyntaxError {
                line: number,
                message: format!("invalid field name '{}'", lossy(name)),
            });
        }
        let value = super::trim(&line[colon + 1..]);
        let current = stanza.get_or_insert_with(|| Stanza {
            line: number,
            ..Stanza::default()
        });
        in_field = true;
        // Field names are case-insensitive (deb822).
        let is = |field: &str| name.eq_ignore_ascii_case(field.as_bytes());
        if is("Package") {
            current.package = Some(value);
        } else if is("Status") {
            current.status = Some(value);
        } else if is("Version") {
            current.version = Some(value);
        } else if is("Architecture") {
            current.architecture = value;
        } else if is("Maintainer") {
            current.maintainer = value;
        } else if is("Installed-Size") {
            current.installed_size = Some((number, value));
        } else if is("Multi-Arch") {
            current.multi_arch = value;
        }
    }
    if let Some(done) = stanza.take() {
        finish(done, &mut parsed);
    }
    if !text.is_empty() && !text.ends_with(b"\n") {
        parsed.warnings.push(format!(
            "{}: the file does not end with a newline; the last stanza may be truncated",
            super::numbered_lines(text).count()
        ));
    }
    Ok(parsed)
}

/// Adds a finished stanza if its package is installed.
fn finish<'a>(stanza: Stanza<'a>, parsed: &mut Parsed<'a>) {
    let line = stanza.line;
    let name = stanza.package.map(lossy);
    let label = name.as_deref().unwrap_or("(unnamed)");
    let Some(status) = stanza.status else {
        parsed
            .warnings
            .push(format!("{line}: package '{label}' has no Status; skipped"));
        return;
    };
    let words: Vec<&[u8]> = status
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    let [_want, _flag, state] = words[..] else {
        parsed.warnings.push(format!(
            "{line}: package '{label}' has status '{}', not 'want flag state'; skipped",
            lossy(status)
        ));
        return;
    };
    if !matches!(
        state,
        b"installed" | b"triggers-pending" | b"triggers-awaited"
    ) {
        return;
    }
    let Some(package) = stanza.package.filter(|p| !p.is_empty()) else {
        parsed.warnings.push(format!(
            "{line}: an installed stanza has no Package; skipped"
        ));
        return;
    };
    let Some(version) = stanza.version.filter(|v| !v.is_empty()) else {
        parsed
            .warnings
            .push(format!("{line}: package '{label}' has no Version; skipped"));
        return;
    };
    let size_bytes = match stanza.installed_size {
        None => None,
        Some((size_line, value)) => {
            let kib = parse_u64(value);
            if kib.is_none() {
                parsed.warnings.push(format!(
                    "{size_line}: package '{label}' has Installed-Size '{}', not a number",
                    lossy(value)
                ));
            }
            kib.and_then(|k| k.checked_mul(1024))
        }
    };
    parsed.packages.push(Entry {
        line,
        package,
        version,
        architecture: stanza.architecture,
        maintainer: stanza.maintainer,
        size_bytes,
        multi_arch_same: stanza.multi_arch.eq_ignore_ascii_case(b"same"),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE_STATUS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/software/debian/root/var/lib/dpkg/status"
    );

    const SAMPLE: &[u8] = b"Package: libc6\n\
Status: install ok installed\n\
Priority: optional\n\
Installed-Size: 12\n\
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>\n\
Architecture: i386\n\
Multi-Arch: same\n\
Version: 2.36-9+deb12u4\n\
Description: GNU C Library: Shared libraries\n Contains the standard libraries.\n .\n More.\n\
\n\
Package: removed\n\
Status: deinstall ok config-files\n\
Version: 1.0\n\
\n\
Package: held\n\
status: hold ok installed\n\
version: 3\n\
Installed-Size: lots\n";

    #[test]
    fn installed_stanzas_are_read_with_their_fields() {
        let parsed = parse(SAMPLE).unwrap();
        assert_eq!(parsed.packages.len(), 2);
        let libc = parsed.packages[0];
        assert_eq!(libc.line, 1);
        assert_eq!(libc.package, b"libc6");
        assert_eq!(libc.version, b"2.36-9+deb12u4");
        assert_eq!(libc.architecture, b"i386");
        assert_eq!(libc.size_bytes, Some(12 * 1024));
        assert!(libc.multi_arch_same);
        assert_eq!(parsed.packages[1].package, b"held");
        assert_eq!(parsed.packages[1].size_bytes, None);
        assert_eq!(
            parsed.warnings,
            ["21: package 'held' has Installed-Size 'lots', not a number"]
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let error = parse(b"Package: a\nStatus: install ok installed\ngarbage here\n").unwrap_err();
        assert_eq!(error.line, 3);
        assert_eq!(
            error.message,
            "\"garbage here\" is neither a field nor a continuation line"
        );
        let error = parse(b"\n continued\n").unwrap_err();
        assert_eq!(
            (error.line, error.message.as_str()),
            (2, "continuation line outside a field")
        );
    }

    #[test]
    fn incomplete_stanzas_are_skipped_with_warnings() {
        let text = b"Package: a\nStatus: install ok installed\n\n\
Status: install ok installed\nVersion: 1\n\n\
Package: b\nVersion: 1\n\n\
Package: c\nStatus: broken\nVersion: 1\n\n\
Package: d\nStatus: install ok installed\nVersion: 2";
        let parsed = parse(text).unwrap();
        let names: Vec<&[u8]> = parsed.packages.iter().map(|p| p.package).collect();
        assert_eq!(names, [b"d"]);
        assert_eq!(
            parsed.warnings,
            [
                "1: package 'a' has no Version; skipped",
                "4: an installed stanza has no Package; skipped",
                "7: package 'b' has no Status; skipped",
                "10: package 'c' has status 'broken', not 'want flag state'; skipped",
                "16: the file does not end with a newline; the last stanza may be truncated",
            ]
        );
    }

    #[test]
    fn non_utf8_fields_are_converted_lossily() {
        let text =
            b"Package: caf\xe9\nStatus: install ok installed\nVersion: 1\nMaintainer: J\xf6rg\n";
        let parsed = parse(text).unwrap();
        let package = parsed.packages[0].to_package();
        assert_eq!(package.name, "caf\u{fffd}");
        assert_eq!(package.publisher, "J\u{fffd}rg");
    }

    #[test]
    fn crlf_line_ends_are_tolerated() {
        let parsed =
            parse(b"Package: a\r\nStatus: install ok installed\r\nVersion: 1\r\n\r\n").unwrap();
        assert_eq!(parsed.packages[0].version, b"1");
        assert!(parsed.warnings.is_empty());
    }

    /// Every prefix of real status text parses to an error or a subset, never a panic: every
    /// length for the first stanzas (quadratic, so not the whole file in a debug build), and
    /// around every line end for the whole fixture.
    #[test]
    fn every_truncation_of_a_real_status_file_is_handled() {
        let text = std::fs::read(FIXTURE_STATUS).unwrap();
        let full = parse(&text).unwrap().packages.len();
        assert!(full >= 20, "{full}");
        let head = text
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w == b"\n\n")
            .nth(3)
            .map(|(i, _)| i + 2)
            .unwrap();
        for len in 0..head {
            if let Ok(parsed) = parse(&text[..len]) {
                assert!(parsed.packages.len() <= 4);
            }
        }
        for (end, _) in text.iter().enumerate().filter(|(_, b)| **b == b'\n') {
            for len in [end, end + 1, end + 2] {
                if let Ok(parsed) = parse(&text[..len.min(text.len())]) {
                    assert!(parsed.packages.len() <= full);
                }
            }
        }
    }

    #[test]
    fn install_times_come_from_list_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join(INFO_DIR)).unwrap();
        std::fs::write(root.join(STATUS), SAMPLE).unwrap();
        std::fs::write(root.join(INFO_DIR).join("libc6:i386.list"), "").unwrap();
        let collected = Dpkg.collect(root).unwrap();
        assert!(collected.packages[0].installed_at_ms.is_some());
        assert_eq!(collected.packages[1].installed_at_ms, None);
        assert_eq!(
            collected.warnings,
            ["/var/lib/dpkg/status:21: package 'held' has Installed-Size 'lots', not a number"]
        );
    }

    #[test]
    fn an_absurdly_large_status_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("var/lib/dpkg")).unwrap();
        let file = std::fs::File::create(dir.path().join(STATUS)).unwrap();
        file.set_len(TEXT_DB_CAP + 1).unwrap();
        let error = Dpkg.collect(dir.path()).unwrap_err().to_string();
        assert!(
            error.starts_with("/var/lib/dpkg/status: 67108865 bytes is more than"),
            "{error}"
        );
    }

    #[test]
    fn an_unreadable_status_fails_the_source_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(STATUS)).unwrap();
        let error = Dpkg.collect(dir.path()).unwrap_err().to_string();
        assert!(error.starts_with("/var/lib/dpkg/status: "), "{error}");
    }
}
