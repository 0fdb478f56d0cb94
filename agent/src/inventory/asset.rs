//! The host's asset file (`/etc/steward/asset.toml` unless configured otherwise): procurement and
//! support data an administrator writes down because the machine cannot discover it. It is
//! optional: no file, no asset data and no source status. A file that is there but wrong is the
//! `asset-file` source's error, naming the file, line and field, so the typo can be fixed from
//! the collector's view alone.
//!
//! ```toml
//! asset_tag = "INV-004217"
//! owner = "Platform team"
//! location = "DC2 / row 4 / rack 12 / U20"
//! cost_centre = "CC-3100"
//! purchase_date = 2023-04-17        # a TOML date or a "YYYY-MM-DD" string
//! warranty_end = "2028-04-16"
//! supplier = "Acme Systems"
//! support_contract = "ProSupport 5y NBD #88231"
//! ```

use std::fmt;
use std::io;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use steward_shared::v1::{AssetInfo, SourceStatus};

use super::hardware::fs::{Root, read_capped};

/// The default location of the asset file.
pub const DEFAULT_PATH: &str = "/etc/steward/asset.toml";

/// An asset file is a few lines; anything larger is a mistake (or a file put there by mistake).
pub const MAX_BYTES: u64 = 64 * 1024;

const SOURCE: &str = "asset-file";

/// Why an asset file could not be used. Each message starts with the file's path.
#[derive(Debug, thiserror::Error)]
pub enum AssetError {
    #[error("{path}: cannot read: {source}")]
    Read { path: String, source: io::Error },
    #[error("{path}: {size} bytes, more than the {MAX_BYTES}-byte limit for an asset file")]
    TooLarge { path: String, size: u64 },
    #[error("{path}: line {line}: not UTF-8")]
    NotUtf8 { path: String, line: usize },
    #[error("{path}: line {line}, column {column}{}: {message}", field_label(.field))]
    Invalid {
        path: String,
        line: usize,
        column: usize,
        /// The key the error is about, where one can be named.
        field: Option<String>,
        message: String,
    },
}

fn field_label(field: &Option<String>) -> String {
    field
        .as_ref()
        .map(|f| format!(", field `{f}`"))
        .unwrap_or_default()
}

/// The file's format. Every field is optional; unknown keys are errors (a misspelt key would
/// otherwise be silently lost).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssetFile {
    /// The organisation's inventory number, as on the sticker.
    #[serde(default)]
    asset_tag: String,
    /// Who is responsible for the machine (team or person).
    #[serde(default)]
    owner: String,
    /// Where it is: site, room, rack, unit.
    #[serde(default)]
    location: String,
    /// The cost centre it is charged to.
    #[serde(default)]
    cost_centre: String,
    /// When it was bought.
    #[serde(default)]
    purchase_date: IsoDate,
    /// When the vendor warranty ends.
    #[serde(default)]
    warranty_end: IsoDate,
    /// Who sold it.
    #[serde(default)]
    supplier: String,
    /// Support contract reference.
    #[serde(default)]
    support_contract: String,
}

/// A calendar date, `YYYY-MM-DD`, given as a TOML local date or a string; empty when not given.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct IsoDate(String);

impl<'de> Deserialize<'de> for IsoDate {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<IsoDate, D::Error> {
        deserializer.deserialize_any(IsoDateVisitor)
    }
}

struct IsoDateVisitor;

impl<'de> Visitor<'de> for IsoDateVisitor {
    type Value = IsoDate;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a date YYYY-MM-DD")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<IsoDate, E> {
        if text.is_empty() {
            return Ok(IsoDate::default());
        }
        validate_date(text)
            .map(|()| IsoDate(text.to_string()))
            .map_err(E::custom)
    }

    /// TOML dates arrive as toml's datetime, which deserializes from a map.
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<IsoDate, A::Error> {
        let datetime =
            toml::value::Datetime::deserialize(de::value::MapAccessDeserializer::new(map))?;
        match (datetime.date, datetime.time, datetime.offset) {
            (Some(date), None, None) => self.visit_str(&date.to_string()),
            _ => Err(de::Error::custom(format!(
                "expected a date YYYY-MM-DD, found the date-time {datetime}"
            ))),
        }
    }
}

/// Checks `YYYY-MM-DD` is a real calendar date (2024-02-29 yes, 2026-02-30 no).
pub fn validate_date(text: &str) -> Result<(), String> {
    let invalid = || format!("`{text}` is not a date YYYY-MM-DD");
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shape_ok {
        return Err(invalid());
    }
    let number = |range: std::ops::Range<usize>| text[range].parse::<u32>().map_err(|_| invalid());
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(format!("`{text}` has no month {month}")),
    };
    if day == 0 || day > days {
        return Err(format!(
            "`{text}` is not a calendar date: {year}-{month:02} has {days} days"
        ));
    }
    Ok(())
}

/// Reads the asset file at `path` (as seen on the host) under `root`. No file: `(None, None)`.
/// Otherwise the status says whether it was used; a bad file gives no asset data at all.
pub fn collect(root: &Path, path: &Path) -> (Option<AssetInfo>, Option<SourceStatus>) {
    let shown = path.display().to_string();
    let rel = path.strip_prefix("/").unwrap_or(path).to_string_lossy();
    let result = match Root::new(root).path(&rel) {
        Ok(on_disk) => read(&on_disk, &shown),
        Err(source) => Err(AssetError::Read {
            path: shown.clone(),
            source,
        }),
    };
    let result = match result {
        Ok(None) => return (None, None),
        Ok(Some(bytes)) => parse(&bytes, &shown),
        Err(error) => Err(error),
    };
    match result {
        Ok(asset) => (
            Some(asset),
            Some(SourceStatus {
                source: SOURCE.into(),
                items: 1,
                error: None,
                warnings: Vec::new(),
            }),
        ),
        Err(error) => (
            None,
            Some(SourceStatus {
                source: SOURCE.into(),
                items: 0,
                error: Some(error.to_string()),
                warnings: Vec::new(),
            }),
        ),
    }
}

fn read(on_disk: &Path, shown: &str) -> Result<Option<Vec<u8>>, AssetError> {
    let read_error = |source: io::Error| AssetError::Read {
        path: shown.to_string(),
        source,
    };
    let size = match std::fs::metadata(on_disk) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_error(e)),
    };
    let too_large = |size| AssetError::TooLarge {
        path: shown.to_string(),
        size,
    };
    if size > MAX_BYTES {
        return Err(too_large(size));
    }
    match read_capped(on_disk, MAX_BYTES) {
        Ok(bytes) => Ok(Some(bytes)),
        // The file grew between the two calls.
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Err(too_large(MAX_BYTES + 1)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(read_error(e)),
    }
}

/// Parses asset file bytes; `path` is only for messages.
pub fn parse(bytes: &[u8], path: &str) -> Result<AssetInfo, AssetError> {
    let text = std::str::from_utf8(bytes).map_err(|e| AssetError::NotUtf8 {
        path: path.to_string(),
        line: line_of(bytes, e.valid_up_to()),
    })?;
    let file: AssetFile = toml::from_str(text).map_err(|e| {
        let at = e.span().map(|span| span.start).unwrap_or(0).min(text.len());
        let line_start = text[..at].rfind('\n').map(|i| i + 1).unwrap_or(0);
        AssetError::Invalid {
            path: path.to_string(),
            line: line_of(text.as_bytes(), at),
            column: text[line_start..at].chars().count() + 1,
            field: key_on_line(text, line_start),
            message: e.message().trim().to_string(),
        }
    })?;
    Ok(AssetInfo {
        asset_tag: file.asset_tag,
        owner: file.owner,
        location: file.location,
        cost_centre: file.cost_centre,
        purchase_date: file.purchase_date.0,
        warranty_end: file.warranty_end.0,
        supplier: file.supplier,
        support_contract: file.support_contract,
    })
}

/// 1-based line of a byte offset.
fn line_of(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The key assigned on the line starting at `line_start`, if the line is a `key = value`.
fn key_on_line(text: &str, line_start: usize) -> Option<String> {
    let line = text[line_start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"').trim_matches('\'');
    (!key.is_empty() && !key.starts_with('#') && !key.starts_with('[')).then(|| key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/etc/steward/asset.toml";

    fn invalid(text: &str) -> (usize, Option<String>, String) {
        match parse(text.as_bytes(), PATH).unwrap_err() {
            AssetError::Invalid {
                line,
                field,
                message,
                ..
            } => (line, field, message),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn full_file() {
        let text = "asset_tag = \"INV-004217\"\nowner = \"Platform team\"\nlocation = \"DC2 / rack 12\"\ncost_centre = \"CC-3100\"\npurchase_date = 2023-04-17\nwarranty_end = \"2028-02-29\"\nsupplier = \"Acme\"\nsupport_contract = \"NBD #88231\"\n";
        let asset = parse(text.as_bytes(), PATH).unwrap();
        assert_eq!(asset.asset_tag, "INV-004217");
        assert_eq!(asset.purchase_date, "2023-04-17", "TOML date");
        assert_eq!(asset.warranty_end, "2028-02-29", "string date, leap year");
        assert_eq!(asset.support_contract, "NBD #88231");
    }

    #[test]
    fn empty_file_is_empty_asset_data() {
        assert_eq!(parse(b"", PATH).unwrap(), AssetInfo::default());
    }

    #[test]
    fn unknown_field_names_line_and_field() {
        let (line, field, message) = invalid("owner = \"ops\"\ncolour = \"blue\"\n");
        assert_eq!(line, 2);
        assert_eq!(field.as_deref(), Some("colour"));
        assert!(message.contains("unknown field `colour`"), "{message}");
    }

    #[test]
    fn impossible_date_names_line_and_field() {
        let text = "owner = \"ops\"\n\nwarranty_end = \"2026-02-30\"\n";
        let (line, field, message) = invalid(text);
        assert_eq!((line, field.as_deref()), (3, Some("warranty_end")));
        assert!(message.contains("2026-02 has 28 days"), "{message}");
        let error = parse(text.as_bytes(), PATH).unwrap_err().to_string();
        assert!(
            error.starts_with("/etc/steward/asset.toml: line 3, column 16, field `warranty_end`: "),
            "{error}"
        );
        let (_, field, _) = invalid("purchase_date = 2026-02-30\n");
        assert_eq!(field.as_deref(), Some("purchase_date"), "TOML date literal");
    }

    #[test]
    fn dates_must_be_dates() {
        assert!(validate_date("2024-02-29").is_ok());
        for bad in [
            "2023-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-04-31",
            "26-01-01",
            "2026/01/01",
            "2026-1-01",
            "2026-01-01T00:00",
            "２０２６-01-01",
        ] {
            assert!(validate_date(bad).is_err(), "{bad}");
        }
        assert!(validate_date("1900-02-29").is_err());
        assert!(validate_date("2000-02-29").is_ok());
        let (_, field, message) = invalid("purchase_date = 2026-01-01T10:00:00Z\n");
        assert_eq!(field.as_deref(), Some("purchase_date"));
        assert!(message.contains("date-time"), "{message}");
        let (_, _, message) = invalid("purchase_date = 20260101\n");
        assert!(message.contains("YYYY-MM-DD"), "{message}");
    }

    #[test]
    fn wrong_type_and_syntax_errors_have_lines() {
        let (line, field, _) = invalid("owner = \"ops\"\nasset_tag = 42\n");
        assert_eq!((line, field.as_deref()), (2, Some("asset_tag")));
        let (line, _, _) = invalid("owner = \"ops\"\nlocation = \"unterminated\n");
        assert_eq!(line, 2);
    }

    #[test]
    fn non_utf8_names_the_line() {
        let error = parse(b"owner = \"ops\"\nlocation = \"Z\xfcrich\"\n", PATH).unwrap_err();
        assert!(
            matches!(error, AssetError::NotUtf8 { line: 2, .. }),
            "{error}"
        );
        assert_eq!(
            error.to_string(),
            "/etc/steward/asset.toml: line 2: not UTF-8"
        );
    }

    #[test]
    fn missing_file_is_no_data_and_no_status() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(collect(root.path(), Path::new(PATH)), (None, None));
    }

    #[test]
    fn huge_file_is_refused_with_its_size() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc/steward")).unwrap();
        let mut text = String::from("owner = \"ops\"\n");
        while text.len() as u64 <= MAX_BYTES {
            text.push_str("# padding padding padding padding padding padding padding\n");
        }
        std::fs::write(root.path().join("etc/steward/asset.toml"), &text).unwrap();
        let (asset, status) = collect(root.path(), Path::new(PATH));
        assert_eq!(asset, None);
        let error = status.unwrap().error.unwrap();
        assert!(error.starts_with(PATH), "{error}");
        assert!(error.contains("more than the 65536-byte limit"), "{error}");
    }

    #[test]
    fn good_file_under_root_has_a_clean_status() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc/steward")).unwrap();
        std::fs::write(
            root.path().join("etc/steward/asset.toml"),
            "asset_tag = \"INV-1\"\n",
        )
        .unwrap();
        let (asset, status) = collect(root.path(), Path::new(PATH));
        assert_eq!(asset.unwrap().asset_tag, "INV-1");
        let status = status.unwrap();
        assert_eq!(
            (status.source.as_str(), status.items, status.error),
            ("asset-file", 1, None)
        );
    }
}
