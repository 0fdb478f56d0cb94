//! `ci import-assets FILE.csv`: procurement or vendor exports matched to CIs by serial or asset
//! tag. The file is checked whole first: any bad row names its line and column, and nothing is
//! imported unless the admin asks to skip bad rows.

use serde::{Deserialize, Serialize};
use steward_shared::v1::AssetInfo;

/// Most rows one import may hold.
pub const MAX_ROWS: usize = 200_000;
/// Longest value accepted in any cell.
const MAX_CELL: usize = 1024;

/// A checked import, ready for the store.
#[derive(Debug, Clone)]
pub struct AssetImport {
    /// For the CI history ("import purchases-2026.csv").
    pub file_name: String,
    pub rows: Vec<AssetRow>,
}

#[derive(Debug, Clone)]
pub struct AssetRow {
    /// Line in the file (the header is line 1).
    pub line: u64,
    pub serial: String,
    pub asset: AssetInfo,
}

/// A row or cell that cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    pub line: u64,
    /// The column's header as written in the file, or empty for a whole-row problem.
    pub column: String,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.column.is_empty() {
            write!(f, "line {}: {}", self.line, self.message)
        } else {
            write!(
                f,
                "line {}, column {}: {}",
                self.line, self.column, self.message
            )
        }
    }
}

/// A row that matched no CI, or several.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unmatched {
    pub line: u64,
    pub serial: String,
    pub asset_tag: String,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImportOutcome {
    /// Rows matched to exactly one CI.
    pub matched: u64,
    /// Of those, rows that changed something.
    pub updated: u64,
    pub unmatched: Vec<Unmatched>,
    /// Bad rows: with errors and without `skip_bad_rows`, nothing was imported.
    pub errors: Vec<RowError>,
    /// Whether the good rows were applied.
    pub applied: bool,
    /// Header columns that are not asset fields (ignored).
    pub ignored_columns: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Serial,
    AssetTag,
    Owner,
    Location,
    CostCentre,
    PurchaseDate,
    WarrantyEnd,
    Supplier,
    SupportContract,
}

/// Accepted header names (lower case, spaces and hyphens as underscores).
const HEADERS: &[(&str, Field)] = &[
    ("serial", Field::Serial),
    ("serial_number", Field::Serial),
    ("serialnumber", Field::Serial),
    ("service_tag", Field::Serial),
    ("asset_tag", Field::AssetTag),
    ("assettag", Field::AssetTag),
    ("asset", Field::AssetTag),
    ("owner", Field::Owner),
    ("location", Field::Location),
    ("cost_centre", Field::CostCentre),
    ("cost_center", Field::CostCentre),
    ("purchase_date", Field::PurchaseDate),
    ("purchased", Field::PurchaseDate),
    ("warranty_end", Field::WarrantyEnd),
    ("warranty_end_date", Field::WarrantyEnd),
    ("warranty_expires", Field::WarrantyEnd),
    ("warranty_expiry", Field::WarrantyEnd),
    ("supplier", Field::Supplier),
    ("support_contract", Field::SupportContract),
    ("contract", Field::SupportContract),
];

/// Whether `text` is an ISO calendar date `YYYY-MM-DD` that exists.
pub fn is_iso_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return false;
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return false;
    }
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<i32>(), m.parse::<u8>(), d.parse::<u8>()) else {
        return false;
    };
    time::Month::try_from(m)
        .ok()
        .and_then(|month| time::Date::from_calendar_date(y, month, d).ok())
        .is_some()
}

/// Parses and checks a CSV file. Returns the good rows, the errors (each naming line and
/// column) and the ignored columns. A header without a serial or asset-tag column is one
/// error for line 1.
pub fn parse(data: &[u8]) -> (Vec<AssetRow>, Vec<RowError>, Vec<String>) {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(data);
    let mut errors = Vec::new();
    let header = match reader.byte_headers() {
        Ok(header) => header.clone(),
        Err(error) => {
            errors.push(RowError {
                line: 1,
                column: String::new(),
                message: format!("cannot read the header: {error}"),
            });
            return (Vec::new(), errors, Vec::new());
        }
    };
    let mut columns: Vec<(usize, Field, String)> = Vec::new();
    let mut ignored = Vec::new();
    for (index, raw) in header.iter().enumerate() {
        let name = String::from_utf8_lossy(raw)
            .trim_start_matches('\u{feff}')
            .trim()
            .to_string();
        let key = name.to_ascii_lowercase().replace([' ', '-'], "_");
        match HEADERS.iter().find(|(h, _)| *h == key) {
            Some((_, field)) => {
                if columns.iter().any(|(_, f, _)| f == field) {
                    errors.push(RowError {
                        line: 1,
                        column: name.clone(),
                        message: "this field appears twice in the header".into(),
                    });
                }
                columns.push((index, *field, name));
            }
            None if name.is_empty() => {}
            None => ignored.push(name),
        }
    }
    if !columns
        .iter()
        .any(|(_, f, _)| matches!(f, Field::Serial | Field::AssetTag))
    {
        errors.push(RowError {
            line: 1,
            column: String::new(),
            message:
                "the header has no serial or asset_tag column, so no row can be matched to a CI"
                    .into(),
        });
        return (Vec::new(), errors, ignored);
    }
    let mut rows = Vec::new();
    let mut record = csv::ByteRecord::new();
    // Line numbers are counted from byte offsets: the csv reader's own count skips blank lines.
    let mut counted = (0usize, 1u64); // (byte offset, line at that offset)
    let mut line_at = |byte: usize| {
        let byte = byte.min(data.len());
        if byte >= counted.0 {
            let newlines = data[counted.0..byte]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            counted = (byte, counted.1 + newlines as u64);
        }
        counted.1
    };
    loop {
        let before = usize::try_from(reader.position().byte()).unwrap_or(usize::MAX);
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => {
                errors.push(RowError {
                    line: line_at(before),
                    column: String::new(),
                    message: format!("not valid CSV: {error}"),
                });
                break;
            }
        }
        let start = record
            .position()
            .and_then(|p| usize::try_from(p.byte()).ok())
            .unwrap_or(before);
        // The record's position is where the reader started, before any blank lines it skipped.
        let skipped = data
            .get(start..)
            .unwrap_or_default()
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        let line = line_at(start + skipped);
        if record.iter().all(|cell| cell.is_empty()) {
            continue;
        }
        if rows.len() + errors.len() >= MAX_ROWS {
            errors.push(RowError {
                line,
                column: String::new(),
                message: format!("more than {MAX_ROWS} rows; split the file"),
            });
            break;
        }
        match parse_row(&record, &columns, line) {
            Ok(row) => rows.push(row),
            Err(error) => errors.push(error),
        }
    }
    (rows, errors, ignored)
}

fn parse_row(
    record: &csv::ByteRecord,
    columns: &[(usize, Field, String)],
    line: u64,
) -> Result<AssetRow, RowError> {
    let mut row = AssetRow {
        line,
        serial: String::new(),
        asset: AssetInfo::default(),
    };
    for (index, field, name) in columns {
        let bad = |message: String| RowError {
            line,
            column: name.clone(),
            message,
        };
        let raw = record.get(*index).unwrap_or_default();
        let value = std::str::from_utf8(raw)
            .map_err(|_| bad("not valid UTF-8 (save the file as UTF-8)".into()))?
            .trim()
            .to_string();
        if value.len() > MAX_CELL {
            return Err(bad(format!("longer than {MAX_CELL} bytes")));
        }
        if matches!(field, Field::PurchaseDate | Field::WarrantyEnd)
            && !value.is_empty()
            && !is_iso_date(&value)
        {
            return Err(bad(format!("{value:?} is not a date; expected YYYY-MM-DD")));
        }
        let slot = match field {
            Field::Serial => &mut row.serial,
            Field::AssetTag => &mut row.asset.asset_tag,
            Field::Owner => &mut row.asset.owner,
            Field::Location => &mut row.asset.location,
            Field::CostCentre => &mut row.asset.cost_centre,
            Field::PurchaseDate => &mut row.asset.purchase_date,
            Field::WarrantyEnd => &mut row.asset.warranty_end,
            Field::Supplier => &mut row.asset.supplier,
            Field::SupportContract => &mut row.asset.support_contract,
        };
        *slot = value;
    }
    if row.serial.is_empty() && row.asset.asset_tag.is_empty() {
        return Err(RowError {
            line,
            column: String::new(),
            message: "neither a serial nor an asset tag: cannot be matched to a CI".into(),
        });
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_read_with_aliases_and_extra_columns_are_reported() {
        let csv = "\u{feff}Serial Number,Asset Tag,Warranty End,Cost Center,Model\n\
                   CZ123,A-1,2027-03-31,IT-OPS,DL380\n\
                   \n\
                   ,A-2,,,\n";
        let (rows, errors, ignored) = parse(csv.as_bytes());
        assert_eq!(errors, vec![]);
        assert_eq!(ignored, vec!["Model".to_string()]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].serial, "CZ123");
        assert_eq!(rows[0].asset.warranty_end, "2027-03-31");
        assert_eq!(rows[0].asset.cost_centre, "IT-OPS");
        assert_eq!(rows[0].line, 2);
        assert_eq!((rows[1].line, rows[1].asset.asset_tag.as_str()), (4, "A-2"));
    }

    #[test]
    fn errors_name_the_line_and_the_column() {
        let csv = "serial,warranty_end\nA1,2026-02-30\n,\nA3,31/12/2027\nA4,2027-01-01\n";
        let (rows, errors, _) = parse(csv.as_bytes());
        assert_eq!(rows.len(), 1);
        let messages: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(
            messages[0].starts_with("line 2, column warranty_end:"),
            "{messages:?}"
        );
        assert!(
            messages[1].starts_with("line 4, column warranty_end:"),
            "{messages:?}"
        );
        assert!(messages[1].contains("YYYY-MM-DD"));
    }

    #[test]
    fn a_header_without_an_identifier_is_refused() {
        let (rows, errors, _) = parse(b"owner,location\nann,lab\n");
        assert!(rows.is_empty());
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.contains("serial or asset_tag"));
    }

    #[test]
    fn bad_bytes_and_ragged_rows_do_not_panic() {
        let (rows, errors, _) = parse(b"serial,owner\n\xff\xfe,x\nS2\nS3,a,b,c\n");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0]
                .to_string()
                .contains("line 2, column serial: not valid UTF-8")
        );
        assert_eq!(rows.len(), 2);
        for cut in 0..40 {
            let data = b"serial,owner,warranty_end\nS1,\"ann\",2027-01-01\nS2,bob,2028-02-29\n";
            let _ = parse(&data[..cut.min(data.len())]);
        }
    }

    #[test]
    fn iso_dates_must_exist() {
        assert!(is_iso_date("2028-02-29"));
        assert!(!is_iso_date("2027-02-29"));
        assert!(!is_iso_date("2027-1-01"));
        assert!(!is_iso_date("27-01-01"));
        assert!(!is_iso_date(""));
    }
}
