//! Installed software: one [`SoftwareSource`] per package database, one file each, all listed in
//! [`SOURCES`]. Every source reads only under the root it is given ("/" on a real host, a
//! fixture tree in tests) and hands the bytes it read to a pure parser that the unit tests feed
//! directly.
//!
//! [`collect`] runs every source whose database is present. A source that fails is reported in
//! its [`SourceStatus`] with an error naming the file (and line, where there is one) and the
//! others still report; a single bad record is skipped with a warning instead. Files are read
//! with a size cap ([`TEXT_DB_CAP`], [`rpm::RPMDB_CAP`]) so a corrupt or hostile database cannot
//! exhaust memory, and text fields are converted lossily, so a non-UTF-8 byte never fails a
//! source.
//!
//! Paths in messages are the paths on the inspected host (`/var/lib/dpkg/status`), not where
//! the root happens to be mounted, so reports do not depend on the tree they were taken from.

pub mod apk;
pub mod dpkg;
pub mod flatpak;
pub mod macos_apps;
pub mod pacman;
pub mod pkgutil;
pub mod plist;
pub mod rpm;
pub mod snap;
pub mod sqlite_read;
pub mod windows;

use std::io::{self, Read};
use std::path::Path;
use std::time::SystemTime;

use steward_shared::v1::{SoftwarePackage, SourceStatus};

/// One package database.
pub trait SoftwareSource: Sync {
    /// The source's name in [`SourceStatus::source`] and [`SoftwarePackage::source`].
    fn name(&self) -> &'static str;
    /// Whether this host has the source's database under `root`; absent sources are not
    /// reported at all.
    fn present(&self, root: &Path) -> bool;
    /// Reads the database under `root`.
    fn collect(&self, root: &Path) -> Result<Collected, SourceError>;
}

/// Every software source, in report order.
pub static SOURCES: &[&dyn SoftwareSource] = &[
    &dpkg::Dpkg,
    &rpm::Rpm,
    &apk::Apk,
    &pacman::Pacman,
    &snap::Snap,
    &flatpak::Flatpak,
    &pkgutil::Pkgutil,
    &macos_apps::MacApps,
    &windows::WindowsRegistry,
];

/// What a source read: its packages, and the records it skipped or could only partly read.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Collected {
    pub packages: Vec<SoftwarePackage>,
    pub warnings: Vec<String>,
}

/// Why a source failed as a whole. `path` is the file's path on the inspected host.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("{path}: {size} bytes is more than the {cap}-byte limit for this file")]
    TooLarge { path: String, size: u64, cap: u64 },
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Corrupt { path: String, message: String },
    #[error("{path}: {message}")]
    Unsupported { path: String, message: String },
    #[error("`{command}`: {message}")]
    Command { command: String, message: String },
}

/// The cap for one text database (dpkg status, apk installed, a pacman `desc`, a plist).
pub const TEXT_DB_CAP: u64 = 64 << 20;

/// At most this many warnings per source are reported, then a count of the rest: one corrupt
/// database must not turn into a megabyte of report.
pub const MAX_WARNINGS: usize = 20;

/// Runs every present source in [`SOURCES`] under `root`: the packages of all sources, sorted,
/// and one status per present source, in table order.
pub fn collect(root: &Path) -> (Vec<SoftwarePackage>, Vec<SourceStatus>) {
    collect_from(SOURCES, root)
}

/// [`collect`] over any table of sources (tests pass their own).
pub fn collect_from(
    sources: &[&dyn SoftwareSource],
    root: &Path,
) -> (Vec<SoftwarePackage>, Vec<SourceStatus>) {
    let mut packages = Vec::new();
    let mut statuses = Vec::new();
    for source in sources {
        if !source.present(root) {
            continue;
        }
        let status = match source.collect(root) {
            Ok(collected) => {
                let items = u32::try_from(collected.packages.len()).unwrap_or(u32::MAX);
                packages.extend(collected.packages);
                SourceStatus {
                    source: source.name().to_string(),
                    items,
                    error: None,
                    warnings: capped_warnings(collected.warnings),
                }
            }
            Err(error) => SourceStatus {
                source: source.name().to_string(),
                items: 0,
                error: Some(error.to_string()),
                warnings: Vec::new(),
            },
        };
        statuses.push(status);
    }
    packages.sort();
    (packages, statuses)
}

fn capped_warnings(mut warnings: Vec<String>) -> Vec<String> {
    if warnings.len() > MAX_WARNINGS {
        let rest = warnings.len() - MAX_WARNINGS;
        warnings.truncate(MAX_WARNINGS);
        warnings.push(format!("... and {rest} more warnings"));
    }
    warnings
}

/// `rel` (a path inside the root, without a leading `/`) as it is named in messages.
pub(crate) fn host_path(rel: &str) -> String {
    format!("/{rel}")
}

/// Reads `rel` under `root`, refusing files over `cap` bytes.
pub(crate) fn read_capped(root: &Path, rel: &str, cap: u64) -> Result<Vec<u8>, SourceError> {
    let read_error = |source| SourceError::Read {
        path: host_path(rel),
        source,
    };
    let file = std::fs::File::open(root.join(rel)).map_err(read_error)?;
    let size = file.metadata().map_err(read_error)?.len();
    if size > cap {
        return Err(SourceError::TooLarge {
            path: host_path(rel),
            size,
            cap,
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // The file may grow between the stat and the read: never read more than the cap.
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > cap {
        return Err(SourceError::TooLarge {
            path: host_path(rel),
            size: bytes.len() as u64,
            cap,
        });
    }
    Ok(bytes)
}

/// The names in a directory under `root`, sorted (directory order is not stable), lossily
/// converted. Names that are not valid UTF-8 are kept converted: they are only used as labels
/// or joined back onto paths that exist.
pub(crate) fn list_dir(root: &Path, rel: &str) -> Result<Vec<String>, SourceError> {
    let read_error = |source| SourceError::Read {
        path: host_path(rel),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(root.join(rel)).map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

pub(crate) fn is_dir(root: &Path, rel: &str) -> bool {
    root.join(rel).is_dir()
}

pub(crate) fn is_file(root: &Path, rel: &str) -> bool {
    root.join(rel).is_file()
}

/// Whether a directory entry name is safe to join onto a path: one plain component.
pub(crate) fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

/// Milliseconds since the Unix epoch (negative before it).
pub(crate) fn system_time_ms(time: SystemTime) -> Option<i64> {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).ok(),
        Err(before) => i64::try_from(before.duration().as_millis())
            .ok()
            .map(|ms| -ms),
    }
}

/// Seconds since the Unix epoch as milliseconds; `None` on overflow.
pub(crate) fn seconds_to_ms(seconds: i64) -> Option<i64> {
    seconds.checked_mul(1000)
}

/// The modification time of `path`, in milliseconds since the Unix epoch.
pub(crate) fn mtime_ms(path: &Path) -> Option<i64> {
    system_time_ms(std::fs::metadata(path).ok()?.modified().ok()?)
}

/// Bytes as text, invalid UTF-8 replaced rather than refused.
pub(crate) fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The start of a line for an error message, quoted with control characters escaped (a
/// corrupt file can hold anything).
pub(crate) fn excerpt(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let short: String = text.chars().take(40).collect();
    let ellipsis = if short.len() < text.len() { "..." } else { "" };
    format!("{short:?}{ellipsis}")
}

/// ASCII whitespace trimmed from both ends.
pub(crate) fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// A decimal integer with nothing else around it but whitespace.
pub(crate) fn parse_u64(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(trim(bytes)).ok()?.parse().ok()
}

/// A decimal integer, possibly negative, with nothing else around it but whitespace.
pub(crate) fn parse_i64(bytes: &[u8]) -> Option<i64> {
    std::str::from_utf8(trim(bytes)).ok()?.parse().ok()
}

/// Lines of `text` split on `\n` with a trailing `\r` removed, each with its 1-based number.
pub(crate) fn numbered_lines(text: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let empty = text.is_empty();
    body.split(|&b| b == b'\n')
        .filter(move |_| !empty)
        .enumerate()
        .map(|(i, line)| (i + 1, line.strip_suffix(b"\r").unwrap_or(line)))
}

/// Midnight UTC of a proleptic Gregorian date, in milliseconds since the Unix epoch; `None` for
/// an impossible date.
pub(crate) fn date_to_ms(year: i64, month: u32, day: u32) -> Option<i64> {
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days.checked_mul(86_400_000)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// The five predefined XML entities and numeric character references.
pub(crate) fn decode_xml_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';').filter(|&e| e <= 12) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(&'static str, bool, Result<usize, &'static str>);

    impl SoftwareSource for Fixed {
        fn name(&self) -> &'static str {
            self.0
        }
        fn present(&self, _root: &Path) -> bool {
            self.1
        }
        fn collect(&self, _root: &Path) -> Result<Collected, SourceError> {
            match self.2 {
                Ok(n) => Ok(Collected {
                    packages: (0..n)
                        .rev()
                        .map(|i| SoftwarePackage {
                            name: format!("{}-{i}", self.0),
                            source: self.0.to_string(),
                            ..SoftwarePackage::default()
                        })
                        .collect(),
                    warnings: (0..n * 10).map(|i| format!("w{i}")).collect(),
                }),
                Err(message) => Err(SourceError::Corrupt {
                    path: "/x".into(),
                    message: message.into(),
                }),
            }
        }
    }

    #[test]
    fn a_failing_source_is_reported_and_the_others_still_run() {
        let sources: &[&dyn SoftwareSource] = &[
            &Fixed("b", true, Ok(3)),
            &Fixed("absent", false, Ok(1)),
            &Fixed("a", true, Err("broken")),
        ];
        let (packages, statuses) = collect_from(sources, Path::new("/nonexistent"));
        let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["b-0", "b-1", "b-2"]);
        assert_eq!(statuses.len(), 2);
        assert_eq!(statuses[0].source, "b");
        assert_eq!(statuses[0].items, 3);
        assert_eq!(statuses[0].warnings.len(), MAX_WARNINGS + 1);
        assert_eq!(
            statuses[0].warnings[MAX_WARNINGS],
            "... and 10 more warnings"
        );
        assert_eq!(statuses[1].source, "a");
        assert_eq!(statuses[1].error.as_deref(), Some("/x: broken"));
    }

    #[test]
    fn source_names_are_unique_and_documented_on_the_wire_type() {
        let mut names: Vec<&str> = SOURCES.iter().map(|s| s.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), SOURCES.len());
        let wire_doc = include_str!("../../../../shared/src/v1.rs");
        for name in names {
            assert!(wire_doc.contains(&format!("`{name}`")), "{name}");
        }
    }

    #[test]
    fn an_empty_root_has_no_sources() {
        let dir = tempfile::tempdir().unwrap();
        let (packages, statuses) = collect(dir.path());
        assert!(packages.is_empty());
        assert!(statuses.is_empty(), "{statuses:?}");
    }

    #[test]
    fn reads_over_the_cap_fail_with_the_size() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("big"), vec![b'x'; 100]).unwrap();
        let error = read_capped(dir.path(), "big", 99).unwrap_err().to_string();
        assert_eq!(
            error,
            "/big: 100 bytes is more than the 99-byte limit for this file"
        );
        assert_eq!(read_capped(dir.path(), "big", 100).unwrap().len(), 100);
        let missing = read_capped(dir.path(), "missing", 100).unwrap_err();
        assert!(missing.to_string().starts_with("/missing: "), "{missing}");
    }

    #[test]
    fn dates_convert_to_epoch_milliseconds() {
        assert_eq!(date_to_ms(1970, 1, 1), Some(0));
        assert_eq!(date_to_ms(2024, 2, 29), Some(1_709_164_800_000));
        assert_eq!(date_to_ms(2023, 2, 29), None);
        assert_eq!(date_to_ms(2000, 13, 1), None);
        assert_eq!(date_to_ms(1969, 12, 31), Some(-86_400_000));
    }

    #[test]
    fn xml_entities_decode() {
        assert_eq!(
            decode_xml_entities("a &lt;b&gt; &#65;&#x42; & c &bogus;"),
            "a <b> AB & c &bogus;"
        );
    }

    #[test]
    fn lines_are_numbered_and_lose_their_carriage_returns() {
        let lines: Vec<(usize, &[u8])> = numbered_lines(b"a\r\n\nb").collect();
        assert_eq!(lines, [(1, &b"a"[..]), (2, b""), (3, b"b")]);
        assert_eq!(numbered_lines(b"").count(), 0);
        assert_eq!(numbered_lines(b"x\n").count(), 1);
    }
}
