//! The rpm database (Fedora, RHEL and derivatives, SUSE, Amazon Linux, ...).
//!
//! Three backends exist, in `usr/lib/sysimage/rpm/` (current) or `var/lib/rpm/` (older, and a
//! symbolic link to the former on current Fedora):
//!
//! - **SQLite** (`rpmdb.sqlite`, rpm ≥ 4.16; Fedora 33+, RHEL 9+): read directly. The table
//!   `Packages(hnum INTEGER PRIMARY KEY, blob BLOB)` holds one rpm header per package, read with
//!   [`super::sqlite_read`] (why not rusqlite is said there) and parsed by
//!   [`package_from_header`].
//! - **Berkeley DB** (`Packages`, RHEL ≤ 8, CentOS 7/8, older SUSE) and **ndb** (`Packages.db`,
//!   SUSE since 15 SP?/Tumbleweed 2021): both hold the same header blobs, BDB in hash pages and
//!   ndb in rpm's own slot/blob format. Neither is read directly yet: on the live root ("/") the
//!   source runs `rpm -qa --queryformat ...` (bounded by [`RPM_TIMEOUT`]) when `rpm` is on
//!   `PATH`; otherwise, and on any other root, it fails with an error naming the format. Reading
//!   them directly later means only a new page walker: the header parser below is shared.
//!
//! The header blob as stored in the database (rpm's `headerExport`, without the lead and
//! signature of a package file): `il` (index entries, u32 BE), `dl` (data bytes, u32 BE), `il`
//! entries of 16 bytes (tag, type, offset, count; all u32 BE) and `dl` bytes of data. Every
//! offset is checked against the data, so a corrupt blob is an error for that package (skipped
//! with a warning), never a panic.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use steward_shared::v1::SoftwarePackage;

use super::sqlite_read::{self, Database, Value};
use super::{Collected, SoftwareSource, SourceError, host_path, lossy, seconds_to_ms};

pub struct Rpm;

/// Where rpm databases live, newest layout first.
pub const DB_DIRS: [&str; 2] = ["usr/lib/sysimage/rpm", "var/lib/rpm"];

/// The largest rpm database (or write-ahead log) read; a Fedora workstation's is ~100 MB.
pub const RPMDB_CAP: u64 = 256 << 20;

/// How long `rpm -qa` may run before it is killed.
pub const RPM_TIMEOUT: Duration = Duration::from_secs(60);

/// The database formats, by file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Ndb,
    BerkeleyDb,
}

impl Backend {
    const ALL: [Backend; 3] = [Backend::Sqlite, Backend::Ndb, Backend::BerkeleyDb];

    fn file(self) -> &'static str {
        match self {
            Backend::Sqlite => "rpmdb.sqlite",
            Backend::Ndb => "Packages.db",
            Backend::BerkeleyDb => "Packages",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Ndb => "ndb",
            Backend::BerkeleyDb => "Berkeley DB",
        }
    }
}

/// The first database found under `root`: its path inside the root and its backend.
pub fn locate(root: &Path) -> Option<(String, Backend)> {
    DB_DIRS.iter().find_map(|dir| {
        Backend::ALL.iter().find_map(|&backend| {
            let rel = format!("{dir}/{}", backend.file());
            root.join(&rel).is_file().then_some((rel, backend))
        })
    })
}

impl SoftwareSource for Rpm {
    fn name(&self) -> &'static str {
        "rpm"
    }

    fn present(&self, root: &Path) -> bool {
        locate(root).is_some()
    }

    fn collect(&self, root: &Path) -> Result<Collected, SourceError> {
        let Some((rel, backend)) = locate(root) else {
            return Err(SourceError::Read {
                path: host_path(DB_DIRS[0]),
                source: std::io::ErrorKind::NotFound.into(),
            });
        };
        match backend {
            Backend::Sqlite => read_sqlite(root, &rel),
            Backend::Ndb | Backend::BerkeleyDb => {
                let unsupported = |why: &str| SourceError::Unsupported {
                    path: host_path(&rel),
                    message: format!(
                        "{} rpm database: not read directly, and {why}",
                        backend.describe()
                    ),
                };
                if root != Path::new("/") {
                    return Err(unsupported("`rpm` is run only on the live root"));
                }
                let Some(rpm) = find_on_path("rpm") else {
                    return Err(unsupported("`rpm` is not on PATH"));
                };
                let output = run_query(&rpm, &[], RPM_TIMEOUT)?;
                Ok(parse_query_output(&output))
            }
        }
    }
}

fn read_sqlite(root: &Path, rel: &str) -> Result<Collected, SourceError> {
    let path = host_path(rel);
    let open = |rel: &str| -> Result<Option<(std::fs::File, u64)>, SourceError> {
        let read_error = |source| SourceError::Read {
            path: host_path(rel),
            source,
        };
        let file = match std::fs::File::open(root.join(rel)) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(read_error(e)),
        };
        let size = file.metadata().map_err(read_error)?.len();
        if size > RPMDB_CAP {
            return Err(SourceError::TooLarge {
                path: host_path(rel),
                size,
                cap: RPMDB_CAP,
            });
        }
        Ok(Some((file, size)))
    };
    let (main, len) = open(rel)?.ok_or_else(|| SourceError::Read {
        path: path.clone(),
        source: std::io::ErrorKind::NotFound.into(),
    })?;
    let wal = open(&format!("{rel}-wal"))?;
    let db_error = |error: sqlite_read::Error| match error {
        sqlite_read::Error::Io(source) => SourceError::Read {
            path: path.clone(),
            source,
        },
        other => SourceError::Corrupt {
            path: path.clone(),
            message: other.to_string(),
        },
    };
    let mut db = Database::open(main, len, wal).map_err(db_error)?;
    let table = db.table_root("Packages").map_err(db_error)?;
    let mut collected = Collected::default();
    db.scan(table, |hnum, record| {
        match sqlite_read::column(record, 1) {
            Ok(Value::Blob(blob)) => match package_from_header(blob) {
                Ok(Some(package)) => collected.packages.push(package),
                Ok(None) => {}
                Err(error) => collected
                    .warnings
                    .push(format!("{path}: package {hnum}: {error}; skipped")),
            },
            Ok(other) => collected.warnings.push(format!(
                "{path}: package {hnum}: blob column holds {}; skipped",
                describe_value(&other)
            )),
            Err(error) => collected
                .warnings
                .push(format!("{path}: package {hnum}: {error}; skipped")),
        }
        Ok(())
    })
    .map_err(db_error)?;
    Ok(collected)
}

fn describe_value(value: &Value<'_>) -> &'static str {
    match value {
        Value::Null => "NULL",
        Value::Integer(_) => "an integer",
        Value::Real(_) => "a real",
        Value::Text(_) => "text",
        Value::Blob(_) => "a blob",
    }
}

/// rpm tags this source reads.
pub mod tag {
    pub const NAME: u32 = 1000;
    pub const VERSION: u32 = 1001;
    pub const RELEASE: u32 = 1002;
    pub const EPOCH: u32 = 1003;
    pub const INSTALLTIME: u32 = 1008;
    pub const SIZE: u32 = 1009;
    pub const VENDOR: u32 = 1011;
    pub const PACKAGER: u32 = 1015;
    pub const ARCH: u32 = 1022;
    pub const LONGSIZE: u32 = 5009;
}

/// rpm tag data types.
mod kind {
    pub const INT32: u32 = 4;
    pub const INT64: u32 = 5;
    pub const STRING: u32 = 6;
    pub const STRING_ARRAY: u32 = 8;
    pub const I18NSTRING: u32 = 9;
}

/// rpm's own limits (`hdrchkTags`, `hdrchkData`): more is a corrupt header.
const MAX_INDEX_ENTRIES: u32 = 0xffff;
const MAX_DATA_BYTES: u32 = 0x0fff_ffff;

/// Why one header blob could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt rpm header: {0}")]
pub struct HeaderError(String);

/// A header blob with its bounds checked: the index entries and the data store.
struct Header<'a> {
    index: &'a [u8],
    data: &'a [u8],
}

impl<'a> Header<'a> {
    fn parse(blob: &'a [u8]) -> Result<Header<'a>, HeaderError> {
        let err = |m: String| Err(HeaderError(m));
        if blob.len() < 8 {
            return err(format!(
                "{} bytes, shorter than the 8-byte preamble",
                blob.len()
            ));
        }
        let entries = be32(blob, 0);
        let data_len = be32(blob, 4);
        if entries > MAX_INDEX_ENTRIES || data_len > MAX_DATA_BYTES {
            return err(format!("{entries} index entries and {data_len} data bytes"));
        }
        let index_end = 8 + 16 * entries as usize;
        let data_end = index_end + data_len as usize;
        if blob.len() < data_end {
            return err(format!(
                "{entries} index entries and {data_len} data bytes need {data_end} bytes, \
                 the blob has {}",
                blob.len()
            ));
        }
        Ok(Header {
            index: &blob[8..index_end],
            data: &blob[index_end..data_end],
        })
    }

    /// The (type, offset, count) of `tag`, if the header has it.
    fn entry(&self, tag: u32) -> Option<(u32, usize, u32)> {
        self.index.chunks_exact(16).find_map(|e| {
            (be32(e, 0) == tag).then(|| (be32(e, 4), be32(e, 8) as usize, be32(e, 12)))
        })
    }

    /// A string tag (or the first string of an array or i18n tag).
    fn string(&self, tag: u32) -> Result<Option<&'a [u8]>, HeaderError> {
        let Some((kind, offset, count)) = self.entry(tag) else {
            return Ok(None);
        };
        if !matches!(kind, kind::STRING | kind::STRING_ARRAY | kind::I18NSTRING) || count == 0 {
            return Err(HeaderError(format!(
                "tag {tag} has type {kind} and count {count}, not a string"
            )));
        }
        let rest = self
            .data
            .get(offset..)
            .ok_or_else(|| HeaderError(format!("tag {tag} at offset {offset} is past the data")))?;
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| HeaderError(format!("tag {tag}: string is not terminated")))?;
        Ok(Some(&rest[..end]))
    }

    /// The first value of an integer tag.
    fn integer(&self, tag: u32) -> Result<Option<u64>, HeaderError> {
        let Some((kind, offset, count)) = self.entry(tag) else {
            return Ok(None);
        };
        let width = match kind {
            kind::INT32 => 4,
            kind::INT64 => 8,
            _ => {
                return Err(HeaderError(format!(
                    "tag {tag} has type {kind}, not an integer"
                )));
            }
        };
        let bytes = (count > 0)
            .then(|| self.data.get(offset..offset.checked_add(width)?))
            .flatten()
            .ok_or_else(|| HeaderError(format!("tag {tag} at offset {offset} is past the data")))?;
        Ok(Some(
            bytes.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b)),
        ))
    }
}

/// The package an rpm header blob describes; `None` for the `gpg-pubkey` pseudo-packages rpm
/// keeps for imported signing keys.
pub fn package_from_header(blob: &[u8]) -> Result<Option<SoftwarePackage>, HeaderError> {
    let header = Header::parse(blob)?;
    let name = header
        .string(tag::NAME)?
        .ok_or_else(|| HeaderError("no NAME tag".into()))?;
    if name == b"gpg-pubkey" {
        return Ok(None);
    }
    let version = header.string(tag::VERSION)?.map(lossy).unwrap_or_default();
    let release = header.string(tag::RELEASE)?.map(lossy);
    let epoch = header.integer(tag::EPOCH)?;
    let vendor = header.string(tag::VENDOR)?.filter(|v| !v.is_empty());
    let publisher = match vendor {
        Some(vendor) => Some(vendor),
        None => header.string(tag::PACKAGER)?,
    };
    let size = match header.integer(tag::LONGSIZE)? {
        Some(size) => Some(size),
        None => header.integer(tag::SIZE)?,
    };
    let installed = header.integer(tag::INSTALLTIME)?;
    Ok(Some(SoftwarePackage {
        name: lossy(name),
        version: full_version(epoch, &version, release.as_deref()),
        arch: header.string(tag::ARCH)?.map(lossy).unwrap_or_default(),
        publisher: publisher.map(lossy).unwrap_or_default(),
        installed_at_ms: installed.and_then(|s| seconds_to_ms(i64::try_from(s).ok()?)),
        size_bytes: size,
        source: "rpm".to_string(),
    }))
}

/// `[epoch:]version-release`, as rpm prints it with `%{EVR}`.
fn full_version(epoch: Option<u64>, version: &str, release: Option<&str>) -> String {
    let mut text = String::new();
    if let Some(epoch) = epoch {
        text.push_str(&format!("{epoch}:"));
    }
    text.push_str(version);
    if let Some(release) = release.filter(|r| !r.is_empty()) {
        text.push('-');
        text.push_str(release);
    }
    text
}

/// What `rpm -qa` prints per package: tab-separated fields, one line each.
const QUERY_FORMAT: &str = "%{NAME}\\t%|EPOCH?{%{EPOCH}}:{}|\\t%{VERSION}\\t%{RELEASE}\\t\
     %|ARCH?{%{ARCH}}:{}|\\t%|VENDOR?{%{VENDOR}}:{}|\\t%|PACKAGER?{%{PACKAGER}}:{}|\\t\
     %|INSTALLTIME?{%{INSTALLTIME}}:{}|\\t%|LONGSIZE?{%{LONGSIZE}}:{%|SIZE?{%{SIZE}}:{}|}|\\n";

/// Runs `rpm [extra] -qa --queryformat ...` and returns its output, killing it after
/// `timeout`.
pub fn run_query(rpm: &Path, extra: &[&str], timeout: Duration) -> Result<Vec<u8>, SourceError> {
    let command = format!("{} -qa", rpm.display());
    let fail = |message: String| SourceError::Command {
        command: command.clone(),
        message,
    };
    let mut child = Command::new(rpm)
        .args(extra)
        .args(["-qa", "--queryformat", QUERY_FORMAT])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    // Both pipes are drained on their own threads so a chatty child never blocks on a full pipe.
    let stdout = child.stdout.take().map(|out| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let read = out.take(RPMDB_CAP).read_to_end(&mut bytes);
            read.map(|_| bytes)
        })
    });
    let stderr = child.stderr.take().map(|err| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = err.take(4096).read_to_end(&mut bytes);
            bytes
        })
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "no answer within {} s",
                    timeout.as_secs_f32()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(fail(e.to_string())),
        }
    };
    let output = match stdout.map(|t| t.join()) {
        Some(Ok(Ok(bytes))) => bytes,
        Some(Ok(Err(e))) => return Err(fail(e.to_string())),
        _ => Vec::new(),
    };
    if !status.success() {
        let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
        return Err(fail(format!(
            "{status}: {}",
            String::from_utf8_lossy(&stderr).trim()
        )));
    }
    Ok(output)
}

/// Packages from [`QUERY_FORMAT`] output; lines with the wrong number of fields are skipped
/// with a warning.
pub fn parse_query_output(output: &[u8]) -> Collected {
    let mut collected = Collected::default();
    for (number, line) in super::numbered_lines(output) {
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&[u8]> = line.split(|&b| b == b'\t').collect();
        let [
            name,
            epoch,
            version,
            release,
            arch,
            vendor,
            packager,
            installed,
            size,
        ] = fields[..]
        else {
            collected.warnings.push(format!(
                "rpm -qa output line {number}: {} fields instead of 9; skipped",
                fields.len()
            ));
            continue;
        };
        if name == b"gpg-pubkey" {
            continue;
        }
        let publisher = if vendor.is_empty() { packager } else { vendor };
        collected.packages.push(SoftwarePackage {
            name: lossy(name),
            version: full_version(
                super::parse_u64(epoch),
                &lossy(version),
                Some(&lossy(release)),
            ),
            arch: lossy(arch),
            publisher: lossy(publisher),
            installed_at_ms: super::parse_i64(installed).and_then(seconds_to_ms),
            size_bytes: super::parse_u64(size),
            source: "rpm".to_string(),
        });
    }
    collected
}

/// The first executable file named `program` in a `PATH` directory.
fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

fn be32(bytes: &[u8], at: usize) -> u32 {
    // Callers index within lengths they checked (the preamble, 16-byte index entries).
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/software/fedora/root"
    );

    /// The header blobs of the fixture database, as rpm wrote them.
    fn fixture_blobs() -> Vec<Vec<u8>> {
        let path = Path::new(FIXTURE).join("usr/lib/sysimage/rpm/rpmdb.sqlite");
        let file = std::fs::File::open(&path).unwrap();
        let len = file.metadata().unwrap().len();
        let mut db = Database::open(file, len, None).unwrap();
        let root = db.table_root("Packages").unwrap();
        let mut blobs = Vec::new();
        db.scan(root, |_, record| {
            if let Value::Blob(blob) = sqlite_read::column(record, 1)? {
                blobs.push(blob.to_vec());
            }
            Ok(())
        })
        .unwrap();
        blobs
    }

    /// A header blob built by hand: (tag, type, data) entries.
    fn header(entries: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, kind, bytes) in entries {
            while kind == &kind::INT32 && data.len() % 4 != 0 {
                data.push(0);
            }
            index.extend_from_slice(&tag.to_be_bytes());
            index.extend_from_slice(&kind.to_be_bytes());
            index.extend_from_slice(&(data.len() as u32).to_be_bytes());
            index.extend_from_slice(&1u32.to_be_bytes());
            data.extend_from_slice(bytes);
        }
        let mut blob = Vec::new();
        blob.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
        blob.extend_from_slice(&index);
        blob.extend_from_slice(&data);
        blob
    }

    #[test]
    fn a_hand_built_header_reads_with_epoch_and_longsize() {
        let blob = header(&[
            (tag::NAME, kind::STRING, b"bash\0"),
            (tag::VERSION, kind::STRING, b"5.2.26\0"),
            (tag::RELEASE, kind::STRING, b"3.fc40\0"),
            (tag::EPOCH, kind::INT32, &7u32.to_be_bytes()),
            (tag::ARCH, kind::STRING, b"x86_64\0"),
            (tag::VENDOR, kind::STRING, b"Fedora Project\0"),
            (
                tag::INSTALLTIME,
                kind::INT32,
                &1_700_000_000u32.to_be_bytes(),
            ),
            (tag::SIZE, kind::INT32, &10u32.to_be_bytes()),
            (tag::LONGSIZE, kind::INT64, &(5u64 << 32).to_be_bytes()),
        ]);
        let package = package_from_header(&blob).unwrap().unwrap();
        assert_eq!(package.name, "bash");
        assert_eq!(package.version, "7:5.2.26-3.fc40");
        assert_eq!(package.arch, "x86_64");
        assert_eq!(package.publisher, "Fedora Project");
        assert_eq!(package.installed_at_ms, Some(1_700_000_000_000));
        assert_eq!(package.size_bytes, Some(5 << 32));
    }

    #[test]
    fn non_utf8_strings_are_converted_lossily() {
        let blob = header(&[
            (tag::NAME, kind::STRING, b"caf\xe9\0"),
            (tag::PACKAGER, kind::STRING, b"J\xf6rg\0"),
        ]);
        let package = package_from_header(&blob).unwrap().unwrap();
        assert_eq!(package.name, "caf\u{fffd}");
        assert_eq!(package.publisher, "J\u{fffd}rg");
        assert_eq!(package.version, "");
    }

    #[test]
    fn gpg_pubkeys_are_not_packages() {
        let blob = header(&[(tag::NAME, kind::STRING, b"gpg-pubkey\0")]);
        assert_eq!(package_from_header(&blob), Ok(None));
    }

    #[test]
    fn corrupt_headers_are_errors() {
        let cases: [(Vec<u8>, &str); 5] = [
            (vec![0, 0, 0], "3 bytes, shorter than the 8-byte preamble"),
            (
                vec![0, 1, 0, 0, 0, 0, 0, 0],
                "65536 index entries and 0 data bytes",
            ),
            (
                vec![0, 0, 0, 1, 0, 0, 0, 4],
                "1 index entries and 4 data bytes need 28 bytes, the blob has 8",
            ),
            (
                header(&[(tag::VERSION, kind::STRING, b"1\0")]),
                "no NAME tag",
            ),
            (
                header(&[(tag::NAME, kind::STRING, b"unterminated")]),
                "tag 1000: string is not terminated",
            ),
        ];
        for (blob, message) in cases {
            assert_eq!(
                package_from_header(&blob).unwrap_err().to_string(),
                format!("corrupt rpm header: {message}")
            );
        }
        let mut wrong_offset = header(&[(tag::NAME, kind::STRING, b"x\0")]);
        wrong_offset[16..20].copy_from_slice(&1000u32.to_be_bytes());
        assert_eq!(
            package_from_header(&wrong_offset).unwrap_err().to_string(),
            "corrupt rpm header: tag 1000 at offset 1000 is past the data"
        );
        let wrong_type = header(&[
            (tag::NAME, kind::STRING, b"x\0"),
            (tag::INSTALLTIME, kind::STRING, b"x\0"),
        ]);
        assert!(package_from_header(&wrong_type).is_err());
    }

    /// Every prefix of every real header blob: an error or a package, never a panic.
    #[test]
    fn every_truncation_of_a_real_header_is_handled() {
        let blobs = fixture_blobs();
        assert_eq!(blobs.len(), 5);
        for blob in &blobs {
            assert!(package_from_header(blob).is_ok());
            for len in 0..blob.len() {
                let _ = package_from_header(&blob[..len]);
            }
            // And single flipped bytes in the index.
            for at in 0..blob.len().min(8 + 16 * 40) {
                let mut broken = blob.clone();
                broken[at] ^= 0xff;
                let _ = package_from_header(&broken);
            }
        }
    }

    #[test]
    fn query_output_parses() {
        let output = b"bash\t\t5.2\t1.fc40\tx86_64\tFedora Project\tFedora\t1700000000\t42\n\
                       gpg-pubkey\t\t5cd8afc6\t6b051e42\t\t\tKey\t1700000000\t0\n\
                       epochal\t2\t0.9\t1\tnoarch\t\tJane\t\t\n\
                       short\tline\n";
        let collected = parse_query_output(output);
        assert_eq!(collected.packages.len(), 2);
        assert_eq!(collected.packages[0].publisher, "Fedora Project");
        assert_eq!(collected.packages[0].size_bytes, Some(42));
        assert_eq!(collected.packages[1].version, "2:0.9-1");
        assert_eq!(collected.packages[1].publisher, "Jane");
        assert_eq!(collected.packages[1].installed_at_ms, None);
        assert_eq!(
            collected.warnings,
            ["rpm -qa output line 4: 2 fields instead of 9; skipped"]
        );
    }

    /// The fallback parses exactly what the direct reader reads, checked against the real rpm
    /// on the fixture (skipped where rpm is not installed).
    #[test]
    fn the_rpm_command_agrees_with_the_direct_reader() {
        let Some(rpm) = find_on_path("rpm") else {
            eprintln!("rpm not installed; skipped");
            return;
        };
        let direct = Rpm.collect(Path::new(FIXTURE)).unwrap();
        let output = run_query(
            &rpm,
            &["--root", FIXTURE, "--dbpath", "/usr/lib/sysimage/rpm"],
            Duration::from_secs(30),
        )
        .unwrap();
        let mut via_rpm = parse_query_output(&output).packages;
        let mut direct = direct.packages;
        via_rpm.sort();
        direct.sort();
        assert_eq!(via_rpm, direct);
    }

    #[test]
    fn a_hanging_command_is_killed() {
        // A shell script that ignores the query arguments and hangs.
        let Some(sh) = find_on_path("sh") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("slow");
        std::fs::write(&script, "sleep 5\n").unwrap();
        let started = Instant::now();
        let error = run_query(&sh, &[script.to_str().unwrap()], Duration::from_millis(200))
            .unwrap_err()
            .to_string();
        assert!(error.contains("no answer within 0.2 s"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(4));
    }

    #[test]
    fn other_backends_name_their_format_off_the_live_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("var/lib/rpm")).unwrap();
        std::fs::write(dir.path().join("var/lib/rpm/Packages"), b"\0\0\0\0").unwrap();
        assert!(Rpm.present(dir.path()));
        let error = Rpm.collect(dir.path()).unwrap_err().to_string();
        assert_eq!(
            error,
            "/var/lib/rpm/Packages: Berkeley DB rpm database: not read directly, and `rpm` is \
             run only on the live root"
        );
    }

    #[test]
    fn a_corrupt_header_skips_its_package_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let db_dir = dir.path().join("usr/lib/sysimage/rpm");
        std::fs::create_dir_all(&db_dir).unwrap();
        let db = db_dir.join("rpmdb.sqlite");
        std::fs::copy(
            Path::new(FIXTURE).join("usr/lib/sysimage/rpm/rpmdb.sqlite"),
            &db,
        )
        .unwrap();
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "UPDATE Packages SET blob = x'0000000100000010' WHERE hnum = 3;
             UPDATE Packages SET blob = 42 WHERE hnum = 4;",
        )
        .unwrap();
        drop(conn);
        let collected = Rpm.collect(dir.path()).unwrap();
        assert_eq!(collected.packages.len(), 2);
        assert_eq!(
            collected.warnings,
            [
                "/usr/lib/sysimage/rpm/rpmdb.sqlite: package 3: corrupt rpm header: 1 index \
                 entries and 16 data bytes need 40 bytes, the blob has 8; skipped",
                "/usr/lib/sysimage/rpm/rpmdb.sqlite: package 4: blob column holds an integer; skipped",
            ]
        );
    }

    #[test]
    fn an_absurdly_large_database_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("var/lib/rpm")).unwrap();
        let file = std::fs::File::create(dir.path().join("var/lib/rpm/rpmdb.sqlite")).unwrap();
        // Sparse: no disk is used.
        file.set_len(RPMDB_CAP + 1).unwrap();
        let error = Rpm.collect(dir.path()).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "/var/lib/rpm/rpmdb.sqlite: {} bytes is more than the {RPMDB_CAP}-byte limit \
                 for this file",
                RPMDB_CAP + 1
            )
        );
    }

    #[test]
    fn a_corrupt_sqlite_file_fails_the_source_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("var/lib/rpm")).unwrap();
        std::fs::write(dir.path().join("var/lib/rpm/rpmdb.sqlite"), vec![7u8; 5000]).unwrap();
        let error = Rpm.collect(dir.path()).unwrap_err().to_string();
        assert_eq!(
            error,
            "/var/lib/rpm/rpmdb.sqlite: not an SQLite 3 database (no SQLite header)"
        );
        // Truncated after the header: the first page is not all there.
        let real =
            std::fs::read(Path::new(FIXTURE).join("usr/lib/sysimage/rpm/rpmdb.sqlite")).unwrap();
        for len in [100, 4000, 4096, 20_000, real.len() / 2, real.len() - 1] {
            std::fs::write(dir.path().join("var/lib/rpm/rpmdb.sqlite"), &real[..len]).unwrap();
            match Rpm.collect(dir.path()) {
                Ok(collected) => assert!(collected.packages.len() <= 4),
                Err(error) => assert!(
                    error.to_string().starts_with("/var/lib/rpm/rpmdb.sqlite: "),
                    "{error}"
                ),
            }
        }
    }
}
