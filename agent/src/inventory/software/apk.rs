//! apk (Alpine Linux): `/lib/apk/db/installed`.
//!
//! One record per package, records separated by blank lines, every line `<letter>:<value>`:
//! `P` name, `V` version, `A` arch, `m` maintainer, `I` installed size in bytes, plus file
//! lines (`F`, `R`, `a`, `Z`) and others this source skips. apk records no install time; `t` is
//! the *build* time and is deliberately not reported as one.

use std::path::Path;

use steward_shared::v1::SoftwarePackage;

use super::{Collected, SoftwareSource, SourceError, TEXT_DB_CAP, host_path, lossy, parse_u64};

pub struct Apk;

pub const INSTALLED: &str = "lib/apk/db/installed";

impl SoftwareSource for Apk {
    fn name(&self) -> &'static str {
        "apk"
    }

    fn present(&self, root: &Path) -> bool {
        super::is_file(root, INSTALLED)
    }

    fn collect(&self, root: &Path) -> Result<Collected, SourceError> {
        let text = super::read_capped(root, INSTALLED, TEXT_DB_CAP)?;
        let mut collected = parse(&text).map_err(|(line, message)| SourceError::Syntax {
            path: host_path(INSTALLED),
            line,
            message,
        })?;
        for warning in &mut collected.warnings {
            *warning = format!("{}:{warning}", host_path(INSTALLED));
        }
        Ok(collected)
    }
}

#[derive(Default)]
struct Record<'a> {
    line: usize,
    name: Option<&'a [u8]>,
    version: Option<&'a [u8]>,
    arch: &'a [u8],
    maintainer: &'a [u8],
    size: Option<(usize, &'a [u8])>,
}

/// Parses an `installed` database: packages, and `line: message` warnings for records skipped.
/// A line that is not `<letter>:<value>` fails the file with its line number.
pub fn parse(text: &[u8]) -> Result<Collected, (usize, String)> {
    let mut collected = Collected::default();
    let mut record: Option<Record<'_>> = None;
    for (number, line) in super::numbered_lines(text) {
        if line.is_empty() {
            if let Some(done) = record.take() {
                finish(done, &mut collected);
            }
            continue;
        }
        if line.len() < 2 || line[1] != b':' {
            return Err((
                number,
                format!("{} is not a '<letter>:<value>' line", super::excerpt(line)),
            ));
        }
        let value = &line[2..];
        let current = record.get_or_insert_with(|| Record {
            line: number,
            ..Record::default()
        });
        match line[0] {
            b'P' => current.name = Some(value),
            b'V' => current.version = Some(value),
            b'A' => current.arch = value,
            b'm' => current.maintainer = value,
            b'I' => current.size = Some((number, value)),
            _ => {}
        }
    }
    if let Some(done) = record.take() {
        finish(done, &mut collected);
    }
    Ok(collected)
}

fn finish(record: Record<'_>, collected: &mut Collected) {
    let line = record.line;
    let Some(name) = record.name.filter(|n| !n.is_empty()) else {
        collected
            .warnings
            .push(format!("{line}: a record has no P: (name); skipped"));
        return;
    };
    let Some(version) = record.version.filter(|v| !v.is_empty()) else {
        collected.warnings.push(format!(
            "{line}: package '{}' has no V: (version); skipped",
            lossy(name)
        ));
        return;
    };
    let size_bytes = record.size.and_then(|(size_line, value)| {
        let size = parse_u64(value);
        if size.is_none() {
            collected.warnings.push(format!(
                "{size_line}: package '{}' has I:{}, not a number",
                lossy(name),
                lossy(value)
            ));
        }
        size
    });
    collected.packages.push(SoftwarePackage {
        name: lossy(name),
        version: lossy(version),
        arch: lossy(record.arch),
        publisher: lossy(record.maintainer),
        installed_at_ms: None,
        size_bytes,
        source: "apk".to_string(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = b"C:Q1abc=\n\
P:musl\n\
V:1.2.4_git20230717-r4\n\
A:x86_64\n\
S:407170\n\
I:662528\n\
T:the musl c library (libc) implementation\n\
m:Timo Ter\xe4s <timo.teras@iki.fi>\n\
t:1705942315\n\
F:lib\n\
R:libc.musl-x86_64.so.1\n\
a:0:0:777\n\
Z:Q17yJ3JFNypA4mxhJJr0ou6CzsJVI=\n\
\n\
P:nover\n\
\n\
P:busybox\n\
V:1.36.1-r15\n\
I:many\n";

    #[test]
    fn records_are_read_and_build_time_is_not_an_install_time() {
        let collected = parse(SAMPLE).unwrap();
        assert_eq!(collected.packages.len(), 2);
        let musl = &collected.packages[0];
        assert_eq!(musl.name, "musl");
        assert_eq!(musl.version, "1.2.4_git20230717-r4");
        assert_eq!(musl.arch, "x86_64");
        assert_eq!(musl.publisher, "Timo Ter\u{fffd}s <timo.teras@iki.fi>");
        assert_eq!(musl.size_bytes, Some(662_528));
        assert_eq!(musl.installed_at_ms, None);
        assert_eq!(collected.packages[1].size_bytes, None);
        assert_eq!(
            collected.warnings,
            [
                "15: package 'nover' has no V: (version); skipped",
                "19: package 'busybox' has I:many, not a number",
            ]
        );
    }

    #[test]
    fn a_malformed_line_fails_with_its_number() {
        let error = parse(b"P:a\nV:1\nnonsense\n").unwrap_err();
        assert_eq!(
            error,
            (
                3,
                "\"nonsense\" is not a '<letter>:<value>' line".to_string()
            )
        );
    }

    #[test]
    fn every_truncation_is_handled() {
        for len in 0..SAMPLE.len() {
            let _ = parse(&SAMPLE[..len]);
        }
    }
}
