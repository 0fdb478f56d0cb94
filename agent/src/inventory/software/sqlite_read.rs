//! A minimal, read-only SQLite reader: enough to scan the rows of one table, which is all the
//! rpm source needs from `rpmdb.sqlite` (`SELECT blob FROM Packages`).
//!
//! Why not `rusqlite`: with the bundled SQLite (static musl needs it) the shipped agent grew
//! from 3,647,576 to 5,711,656 bytes (+2.06 MB; the workspace builds `libsqlite3-sys` at
//! opt-level 3) and still to 4,854,792 bytes (+1.21 MB) at opt-level "s", over the 4 MB budget.
//! A table scan needs only a small part of the file format
//! (<https://www.sqlite.org/fileformat2.html>), implemented here:
//!
//! - the 100-byte file header (page size, reserved bytes, page count, text encoding);
//! - table b-tree pages, interior (`0x05`) and leaf (`0x0d`), walked in rowid order;
//! - varints, the record format (serial types) and overflow page chains;
//! - a write-ahead log beside the database (`-wal`): committed frames replace the pages they
//!   hold, as SQLite's own recovery does when it opens a database without its `-shm` index. rpm
//!   keeps `rpmdb.sqlite` in WAL mode and checkpoints on close, so the log is usually empty, but
//!   a log left by an interrupted transaction must not hide packages.
//!
//! Index b-trees, freelists, pointer maps, UTF-16 databases and writing are not implemented.
//! Every offset read from the file is bounds-checked and every page may be visited once, so a
//! corrupt or hostile file ends in an [`Error`], never a panic or a loop.

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom};

/// Why a database could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("not an SQLite 3 database ({0})")]
    NotADatabase(&'static str),
    #[error("corrupt database: page {page}: {what}")]
    Corrupt { page: u32, what: String },
    #[error("corrupt record: {0}")]
    CorruptRecord(String),
    #[error("corrupt write-ahead log: {0}")]
    CorruptWal(String),
    #[error("unsupported database: {0}")]
    Unsupported(String),
    #[error("no table named {0}")]
    NoSuchTable(String),
}

fn corrupt(page: u32, what: impl Into<String>) -> Error {
    Error::Corrupt {
        page,
        what: what.into(),
    }
}

/// A record (row) larger than this is refused: no table the agent reads has one, and the
/// payload buffer must stay bounded.
pub const MAX_PAYLOAD: u64 = 64 << 20;

/// SQLite's own limit on b-tree depth (`BTCURSOR_MAX_DEPTH`).
const MAX_DEPTH: usize = 20;

/// A database file, optionally with its write-ahead log. `R` is a `File` in use and a `Cursor`
/// in tests.
pub struct Database<R> {
    main: R,
    main_len: u64,
    page_size: usize,
    /// Page size minus the reserved bytes at the end of every page.
    usable: usize,
    page_count: u32,
    wal: Option<Wal<R>>,
}

impl<R> std::fmt::Debug for Database<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("page_size", &self.page_size)
            .field("page_count", &self.page_count)
            .field("wal_pages", &self.wal.as_ref().map(|w| w.frames.len()))
            .finish()
    }
}

struct Wal<R> {
    reader: R,
    /// The newest committed frame of each page: the offset of its page data in the log.
    frames: HashMap<u32, u64>,
}

/// One column value of a record, borrowing the record's bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'a [u8]),
    Blob(&'a [u8]),
}

impl<R: Read + Seek> Database<R> {
    /// Opens a database of `len` bytes. `wal` is the write-ahead log beside it, if there is
    /// one; it is used only when the database is in WAL mode.
    pub fn open(mut main: R, len: u64, wal: Option<(R, u64)>) -> Result<Database<R>, Error> {
        if len < 100 {
            return Err(Error::NotADatabase("shorter than the 100-byte header"));
        }
        let mut header = [0u8; 100];
        read_at(&mut main, 0, &mut header)?;
        if &header[..16] != b"SQLite format 3\0" {
            return Err(Error::NotADatabase("no SQLite header"));
        }
        let page_size = match be16(&header, 16) {
            1 => 65_536,
            n if (512..=32_768).contains(&n) && n.is_power_of_two() => n as usize,
            n => return Err(corrupt(1, format!("invalid page size {n}"))),
        };
        let reserved = header[20] as usize;
        let usable = page_size - reserved;
        if usable < 480 {
            return Err(corrupt(1, format!("{reserved} reserved bytes per page")));
        }
        let encoding = be32(&header, 56);
        if encoding > 1 {
            return Err(Error::Unsupported(format!(
                "text encoding {encoding} (only UTF-8 is read)"
            )));
        }
        // The in-header size is valid only if written by a version that maintains it.
        let header_pages = be32(&header, 28);
        let header_valid = header_pages != 0 && be32(&header, 24) == be32(&header, 92);
        let file_pages = u32::try_from(len / page_size as u64).unwrap_or(u32::MAX);
        let mut page_count = if header_valid {
            header_pages
        } else {
            file_pages
        };
        let wal_mode = header[18] == 2 || header[19] == 2;
        let wal = match wal {
            Some((reader, wal_len)) if wal_mode && wal_len > 0 => {
                let (wal, committed_pages) = Wal::recover(reader, wal_len, page_size)?;
                if let Some(pages) = committed_pages {
                    page_count = pages;
                }
                Some(wal)
            }
            _ => None,
        };
        // A corrupt header must not size anything: no page can exist beyond the file and the
        // log together.
        let wal_pages = wal.as_ref().map_or(0, |w| w.frames.len());
        page_count =
            page_count.min(file_pages.saturating_add(u32::try_from(wal_pages).unwrap_or(u32::MAX)));
        Ok(Database {
            main,
            main_len: len,
            page_size,
            usable,
            page_count,
            wal,
        })
    }

    pub fn page_size(&self) -> usize {
        self.page_size
    }

    pub fn page_count(&self) -> u32 {
        self.page_count
    }

    /// The root page of the table `name` (compared as SQLite does, ASCII case-insensitively).
    pub fn table_root(&mut self, name: &str) -> Result<u32, Error> {
        let mut found = None;
        self.scan(1, |_, record| {
            if found.is_some() {
                return Ok(());
            }
            let kind = column(record, 0)?;
            let table = column(record, 1)?;
            if let (Value::Text(b"table"), Value::Text(table)) = (kind, table)
                && table.eq_ignore_ascii_case(name.as_bytes())
            {
                match column(record, 3)? {
                    Value::Integer(root) => {
                        found = Some(u32::try_from(root).map_err(|_| {
                            corrupt(1, format!("table {name} has root page {root}"))
                        })?);
                    }
                    other => {
                        return Err(corrupt(1, format!("table {name} has root page {other:?}")));
                    }
                }
            }
            Ok(())
        })?;
        found.ok_or_else(|| Error::NoSuchTable(name.to_string()))
    }

    /// Calls `visit(rowid, record)` for every row of the table b-tree at `root`, in rowid order.
    /// An error from `visit` stops the scan and is returned.
    pub fn scan(
        &mut self,
        root: u32,
        mut visit: impl FnMut(i64, &[u8]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut seen = PageSet::new(self.page_count);
        let mut stack: Vec<Frame> = Vec::new();
        let mut payload = Vec::new();
        let mut overflow = vec![0u8; self.page_size];
        stack.push(self.frame(root, &mut seen)?);
        while let Some(frame) = stack.last_mut() {
            if frame.next > frame.cells {
                stack.pop();
                continue;
            }
            let index = frame.next;
            frame.next += 1;
            if frame.leaf {
                if index == frame.cells {
                    continue;
                }
                let cell = frame.cell_offset(index, self.usable)?;
                let page = frame.page;
                let rowid = self.leaf_payload(
                    page,
                    &frame.data,
                    cell,
                    &mut payload,
                    &mut overflow,
                    &mut seen,
                )?;
                visit(rowid, &payload)?;
            } else {
                let child = if index == frame.cells {
                    frame.right_most
                } else {
                    let cell = frame.cell_offset(index, self.usable)?;
                    be32_checked(&frame.data[..self.usable], cell, frame.page)?
                };
                if stack.len() >= MAX_DEPTH {
                    return Err(corrupt(child, "b-tree deeper than SQLite allows"));
                }
                let child = self.frame(child, &mut seen)?;
                stack.push(child);
            }
        }
        Ok(())
    }

    /// Reads a b-tree page and its header.
    fn frame(&mut self, page: u32, seen: &mut PageSet) -> Result<Frame, Error> {
        seen.visit(page)?;
        let mut data = vec![0u8; self.page_size];
        self.read_page(page, &mut data)?;
        let header = if page == 1 { 100 } else { 0 };
        let kind = data[header];
        let leaf = match kind {
            0x0d => true,
            0x05 => false,
            0x02 | 0x0a => return Err(corrupt(page, "an index page where a table page belongs")),
            other => {
                return Err(corrupt(
                    page,
                    format!("unknown b-tree page type {other:#04x}"),
                ));
            }
        };
        let cells = be16(&data, header + 3) as usize;
        let (right_most, pointers) = if leaf {
            (0, header + 8)
        } else {
            (be32(&data, header + 8), header + 12)
        };
        if pointers + 2 * cells > self.usable {
            return Err(corrupt(
                page,
                format!("{cells} cells do not fit in the page"),
            ));
        }
        Ok(Frame {
            page,
            data,
            leaf,
            cells,
            right_most,
            pointers,
            next: 0,
        })
    }

    /// The rowid of the leaf cell at `cell`, its whole payload copied into `payload`.
    fn leaf_payload(
        &mut self,
        page: u32,
        data: &[u8],
        cell: usize,
        payload: &mut Vec<u8>,
        overflow: &mut [u8],
        seen: &mut PageSet,
    ) -> Result<i64, Error> {
        let usable = self.usable;
        let (size, n) = varint(&data[..usable], cell).ok_or_else(|| corrupt(page, "bad cell"))?;
        let (rowid, m) =
            varint(&data[..usable], cell + n).ok_or_else(|| corrupt(page, "bad cell"))?;
        if size > MAX_PAYLOAD {
            return Err(corrupt(
                page,
                format!("row {rowid}: a {size}-byte record is over the {MAX_PAYLOAD}-byte limit"),
            ));
        }
        let size = size as usize;
        let local = local_payload(size, usable);
        let start = cell + n + m;
        let end = start
            .checked_add(local)
            .filter(|&end| end <= usable)
            .ok_or_else(|| corrupt(page, format!("row {rowid}: record runs off the page")))?;
        payload.clear();
        payload.extend_from_slice(&data[start..end]);
        if local < size {
            let mut next = be32_checked(&data[..usable], end, page)?;
            while payload.len() < size {
                if next == 0 {
                    return Err(corrupt(
                        page,
                        format!("row {rowid}: overflow chain ends early"),
                    ));
                }
                seen.visit(next)?;
                self.read_page(next, overflow)?;
                let take = (size - payload.len()).min(usable - 4);
                payload.extend_from_slice(&overflow[4..4 + take]);
                next = be32(overflow, 0);
            }
        }
        // Rowids are signed 64-bit integers stored as the varint's two's complement.
        Ok(rowid as i64)
    }

    /// Reads page `page` (1-based) into `buf`, from the log if it holds a committed copy.
    fn read_page(&mut self, page: u32, buf: &mut [u8]) -> Result<(), Error> {
        if page == 0 || page > self.page_count {
            return Err(corrupt(
                page,
                format!("page number out of range (1..={})", self.page_count),
            ));
        }
        if let Some(wal) = &mut self.wal
            && let Some(&offset) = wal.frames.get(&page)
        {
            return read_at(&mut wal.reader, offset, buf);
        }
        let offset = u64::from(page - 1) * self.page_size as u64;
        if offset + self.page_size as u64 > self.main_len {
            return Err(corrupt(page, "past the end of the file (truncated?)"));
        }
        read_at(&mut self.main, offset, buf)
    }
}

impl<R: Read + Seek> Wal<R> {
    /// Finds the committed frames of a write-ahead log: frames are valid while their salts match
    /// the header's and their cumulative checksums hold; only frames up to the last valid commit
    /// frame count. Returns the log and the database size in pages after its last commit.
    fn recover(mut reader: R, len: u64, page_size: usize) -> Result<(Wal<R>, Option<u32>), Error> {
        let mut header = [0u8; 32];
        if len < 32 {
            return Ok((
                Wal {
                    reader,
                    frames: HashMap::new(),
                },
                None,
            ));
        }
        read_at(&mut reader, 0, &mut header)?;
        let magic = be32(&header, 0);
        if magic & !1 != 0x377f_0682 {
            return Err(Error::CorruptWal("bad magic number".into()));
        }
        let big_endian = magic & 1 == 1;
        let wal_page_size = be32(&header, 8) as usize;
        if wal_page_size != page_size {
            // SQLite ignores such a log; so do we.
            return Ok((
                Wal {
                    reader,
                    frames: HashMap::new(),
                },
                None,
            ));
        }
        let salt = (be32(&header, 16), be32(&header, 20));
        let mut sum = checksum(big_endian, (0, 0), &header[..24]);
        if sum != (be32(&header, 24), be32(&header, 28)) {
            return Ok((
                Wal {
                    reader,
                    frames: HashMap::new(),
                },
                None,
            ));
        }
        let frame_len = 24 + page_size as u64;
        let mut frame = vec![0u8; 24 + page_size];
        let mut pending: Vec<(u32, u64)> = Vec::new();
        let mut frames = HashMap::new();
        let mut committed_pages = None;
        let mut offset = 32u64;
        while offset + frame_len <= len {
            read_at(&mut reader, offset, &mut frame)?;
            let page = be32(&frame, 0);
            let commit = be32(&frame, 4);
            if page == 0 || (be32(&frame, 8), be32(&frame, 12)) != salt {
                break;
            }
            sum = checksum(big_endian, sum, &frame[..8]);
            sum = checksum(big_endian, sum, &frame[24..]);
            if sum != (be32(&frame, 16), be32(&frame, 20)) {
                break;
            }
            pending.push((page, offset + 24));
            if commit != 0 {
                frames.extend(pending.drain(..));
                committed_pages = Some(commit);
            }
            offset += frame_len;
        }
        Ok((Wal { reader, frames }, committed_pages))
    }
}

/// SQLite's WAL checksum over 32-bit word pairs, continuing from `sum`.
fn checksum(big_endian: bool, sum: (u32, u32), bytes: &[u8]) -> (u32, u32) {
    let (mut s0, mut s1) = sum;
    for pair in bytes.chunks_exact(8) {
        let word = |i: usize| {
            let b = [pair[i], pair[i + 1], pair[i + 2], pair[i + 3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        s0 = s0.wrapping_add(word(0)).wrapping_add(s1);
        s1 = s1.wrapping_add(word(4)).wrapping_add(s0);
    }
    (s0, s1)
}

/// One b-tree page on the scan's stack.
struct Frame {
    page: u32,
    data: Vec<u8>,
    leaf: bool,
    cells: usize,
    right_most: u32,
    /// Where the cell pointer array starts.
    pointers: usize,
    /// The next cell to visit; `cells` stands for the right-most child of an interior page.
    next: usize,
}

impl Frame {
    fn cell_offset(&self, index: usize, usable: usize) -> Result<usize, Error> {
        let offset = be16(&self.data, self.pointers + 2 * index) as usize;
        if offset < self.pointers || offset + 4 > usable {
            return Err(corrupt(
                self.page,
                format!("cell {index} at offset {offset} is outside the page"),
            ));
        }
        Ok(offset)
    }
}

/// Pages seen in one scan: a page reached twice means a cycle (or a page shared by two
/// trees), which the file format never has.
struct PageSet(Vec<u64>);

impl PageSet {
    fn new(pages: u32) -> PageSet {
        PageSet(vec![0; (pages as usize).div_ceil(64) + 1])
    }

    fn visit(&mut self, page: u32) -> Result<(), Error> {
        let (word, bit) = ((page / 64) as usize, page % 64);
        let slot = self
            .0
            .get_mut(word)
            .ok_or_else(|| corrupt(page, "page number out of range"))?;
        if *slot & (1 << bit) != 0 {
            return Err(corrupt(page, "page reached twice (a loop in the b-tree)"));
        }
        *slot |= 1 << bit;
        Ok(())
    }
}

/// How many payload bytes of a table leaf cell are stored on the page itself.
fn local_payload(size: usize, usable: usize) -> usize {
    let max_local = usable - 35;
    if size <= max_local {
        return size;
    }
    let min_local = (usable - 12) * 32 / 255 - 23;
    let local = min_local + (size - min_local) % (usable - 4);
    if local <= max_local { local } else { min_local }
}

/// The value of column `index` of a record (the SQLite record format).
pub fn column(record: &[u8], index: usize) -> Result<Value<'_>, Error> {
    let bad = |what: &str| Error::CorruptRecord(what.to_string());
    let (header_len, mut at) = varint(record, 0).ok_or_else(|| bad("bad header size"))?;
    let header_len = usize::try_from(header_len)
        .ok()
        .filter(|&h| h <= record.len() && h >= at)
        .ok_or_else(|| bad("header longer than the record"))?;
    let mut body = header_len;
    let mut i = 0;
    while at < header_len {
        let (serial, n) =
            varint(&record[..header_len], at).ok_or_else(|| bad("bad serial type"))?;
        at += n;
        let len = serial_len(serial).ok_or_else(|| bad("reserved serial type"))?;
        let end = body
            .checked_add(len)
            .filter(|&end| end <= record.len())
            .ok_or_else(|| bad("value runs off the record"))?;
        if i == index {
            let bytes = &record[body..end];
            return Ok(match serial {
                0 => Value::Null,
                1..=6 => Value::Integer(signed_be(bytes)),
                7 => Value::Real(f64::from_bits(signed_be(bytes) as u64)),
                8 => Value::Integer(0),
                9 => Value::Integer(1),
                n if n % 2 == 0 => Value::Blob(bytes),
                _ => Value::Text(bytes),
            });
        }
        body = end;
        i += 1;
    }
    // Columns added by ALTER TABLE after a row was written are absent from it: NULL.
    Ok(Value::Null)
}

fn serial_len(serial: u64) -> Option<usize> {
    Some(match serial {
        0 | 8 | 9 => 0,
        1 => 1,
        2 => 2,
        3 => 3,
        4 => 4,
        5 => 6,
        6 | 7 => 8,
        10 | 11 => return None,
        n => usize::try_from((n - 12) / 2).ok()?,
    })
}

fn signed_be(bytes: &[u8]) -> i64 {
    let mut value: i64 = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        -1
    } else {
        0
    };
    for &b in bytes {
        value = (value << 8) | i64::from(b);
    }
    value
}

/// An SQLite varint at `at`: its value and length, `None` if it runs off the slice.
pub fn varint(bytes: &[u8], at: usize) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for i in 0..9 {
        let b = *bytes.get(at + i)?;
        if i == 8 {
            return Some(((value << 8) | u64::from(b), 9));
        }
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

fn read_at<R: Read + Seek>(reader: &mut R, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
    reader.seek(SeekFrom::Start(offset))?;
    reader.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            Error::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "file ends within the {} bytes at offset {offset}",
                    buf.len()
                ),
            ))
        } else {
            Error::Io(e)
        }
    })
}

/// Callers pass offsets inside fixed-size buffers they sized themselves.
fn be16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

/// Callers pass offsets inside fixed-size buffers they sized themselves.
fn be32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn be32_checked(bytes: &[u8], at: usize, page: u32) -> Result<u32, Error> {
    match bytes.get(at..at + 4) {
        Some(b) => Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(corrupt(
            page,
            format!("pointer at offset {at} is outside the page"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn sqlite(path: &std::path::Path) -> rusqlite::Connection {
        rusqlite::Connection::open(path).unwrap()
    }

    fn open_bytes(bytes: Vec<u8>) -> Result<Database<Cursor<Vec<u8>>>, Error> {
        let len = bytes.len() as u64;
        Database::open(Cursor::new(bytes), len, None)
    }

    fn rows(db: &mut Database<Cursor<Vec<u8>>>, table: &str) -> Vec<(i64, Vec<u8>)> {
        let root = db.table_root(table).unwrap();
        let mut rows = Vec::new();
        db.scan(root, |rowid, record| {
            let Value::Blob(blob) = column(record, 1)? else {
                panic!("column 1 is not a blob");
            };
            rows.push((rowid, blob.to_vec()));
            Ok(())
        })
        .unwrap();
        rows
    }

    /// A table of blobs of many sizes (0 bytes to several overflow pages) in a database with
    /// the given page size, written by real SQLite.
    fn blob_database(page_size: u32, rows: usize) -> (Vec<u8>, Vec<(i64, Vec<u8>)>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let conn = sqlite(&path);
        conn.execute_batch(&format!("PRAGMA page_size={page_size};"))
            .unwrap();
        conn.execute_batch(
            "CREATE TABLE other (x); INSERT INTO other VALUES (1);
             CREATE TABLE 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);
             CREATE INDEX other_x ON other (x);",
        )
        .unwrap();
        let mut expected = Vec::new();
        let tx = conn.unchecked_transaction().unwrap();
        for i in 0..rows {
            let len = (i * 7919) % (page_size as usize * 5);
            let blob: Vec<u8> = (0..len).map(|j| (i + j) as u8).collect();
            tx.execute("INSERT INTO Packages (blob) VALUES (?1)", [&blob])
                .unwrap();
            expected.push(((i + 1) as i64, blob));
        }
        // Holes in the rowids and a freed page or two.
        tx.execute("DELETE FROM Packages WHERE hnum % 5 = 3", [])
            .unwrap();
        tx.commit().unwrap();
        expected.retain(|(rowid, _)| rowid % 5 != 3);
        drop(conn);
        (std::fs::read(&path).unwrap(), expected)
    }

    #[test]
    fn scans_match_sqlite_for_every_page_size() {
        for page_size in [512, 1024, 4096, 65536] {
            let (bytes, expected) = blob_database(page_size, 300);
            let mut db = open_bytes(bytes).unwrap();
            assert_eq!(db.page_size(), page_size as usize);
            assert_eq!(rows(&mut db, "packages"), expected, "page size {page_size}");
        }
    }

    #[test]
    fn a_missing_table_is_named() {
        let (bytes, _) = blob_database(1024, 1);
        let mut db = open_bytes(bytes).unwrap();
        assert_eq!(
            db.table_root("Nope").unwrap_err().to_string(),
            "no table named Nope"
        );
    }

    #[test]
    fn committed_wal_frames_are_read_and_uncommitted_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let conn = sqlite(&path);
        conn.execute_batch(
            "PRAGMA page_size=1024; PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;
             CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB);
             INSERT INTO Packages (blob) VALUES (x'01');
             PRAGMA wal_checkpoint(TRUNCATE);
             INSERT INTO Packages (blob) VALUES (x'02');
             INSERT INTO Packages (blob) VALUES (zeroblob(5000));",
        )
        .unwrap();
        // Copy while the connection is open: the log still holds the last two commits.
        let main = std::fs::read(&path).unwrap();
        let wal = std::fs::read(dir.path().join("t.sqlite-wal")).unwrap();
        drop(conn);
        assert!(!wal.is_empty());
        let open = |wal: Option<Vec<u8>>| {
            let main_len = main.len() as u64;
            let wal = wal.map(|w| {
                let len = w.len() as u64;
                (Cursor::new(w), len)
            });
            Database::open(Cursor::new(main.clone()), main_len, wal).unwrap()
        };
        let blobs = |db: &mut Database<Cursor<Vec<u8>>>| -> Vec<usize> {
            rows(db, "Packages").iter().map(|(_, b)| b.len()).collect()
        };
        assert_eq!(blobs(&mut open(None)), [1]);
        assert_eq!(blobs(&mut open(Some(wal.clone()))), [1, 1, 5000]);
        // A log cut inside its last frame loses the last commit only.
        let cut = wal.len() - 100;
        assert_eq!(blobs(&mut open(Some(wal[..cut].to_vec()))), [1, 1]);
        // A damaged frame ends the log there.
        let mut damaged = wal.clone();
        damaged[32 + 24 + 10] ^= 0xff;
        assert_eq!(blobs(&mut open(Some(damaged))), [1]);
    }

    #[test]
    fn corrupt_and_truncated_files_are_errors_not_panics() {
        let (bytes, _) = blob_database(512, 40);
        for len in (0..bytes.len()).step_by(97) {
            let Ok(mut db) = open_bytes(bytes[..len].to_vec()) else {
                continue;
            };
            if let Ok(root) = db.table_root("Packages") {
                let _ = db.scan(root, |_, record| column(record, 1).map(|_| ()));
            }
        }
        // Flip bytes one at a time across the first pages: no panic, no endless loop.
        for at in (0..bytes.len().min(8192)).step_by(3) {
            let mut broken = bytes.clone();
            broken[at] ^= 0x5a;
            if let Ok(mut db) = open_bytes(broken)
                && let Ok(root) = db.table_root("Packages")
            {
                let _ = db.scan(root, |_, record| column(record, 1).map(|_| ()));
            }
        }
    }

    #[test]
    fn a_page_loop_is_detected() {
        let (mut bytes, _) = blob_database(512, 60);
        let mut db = open_bytes(bytes.clone()).unwrap();
        let root = db.table_root("Packages").unwrap() as usize;
        // Point the root's right-most child at the root itself.
        let at = (root - 1) * 512;
        assert_eq!(bytes[at], 0x05, "the table needs an interior root");
        bytes[at + 8..at + 12].copy_from_slice(&(root as u32).to_be_bytes());
        let mut db = open_bytes(bytes).unwrap();
        let error = db.scan(root as u32, |_, _| Ok(())).unwrap_err().to_string();
        assert!(error.contains("reached twice"), "{error}");
    }

    #[test]
    fn headers_are_checked() {
        assert!(matches!(
            open_bytes(vec![0; 10]),
            Err(Error::NotADatabase(_))
        ));
        assert!(matches!(
            open_bytes(vec![0; 4096]),
            Err(Error::NotADatabase(_))
        ));
        let (mut bytes, _) = blob_database(1024, 1);
        bytes[16..18].copy_from_slice(&1000u16.to_be_bytes());
        assert_eq!(
            open_bytes(bytes).unwrap_err().to_string(),
            "corrupt database: page 1: invalid page size 1000"
        );
    }

    #[test]
    fn an_absurd_page_count_in_the_header_is_clamped_to_the_file() {
        let (mut bytes, expected) = blob_database(1024, 20);
        // A huge in-header size with a matching version-valid-for number.
        bytes[28..32].copy_from_slice(&u32::MAX.to_be_bytes());
        let counter = [bytes[24], bytes[25], bytes[26], bytes[27]];
        bytes[92..96].copy_from_slice(&counter);
        let pages = bytes.len() / 1024;
        let mut db = open_bytes(bytes).unwrap();
        assert_eq!(db.page_count() as usize, pages);
        assert_eq!(rows(&mut db, "Packages"), expected);
    }

    #[test]
    fn varints_and_records_decode() {
        assert_eq!(varint(&[0x7f], 0), Some((127, 1)));
        assert_eq!(varint(&[0x81, 0x00], 0), Some((128, 2)));
        assert_eq!(varint(&[0xff; 9], 0), Some((u64::MAX, 9)));
        assert_eq!(varint(&[0x81], 0), None);
        // header: size 4, types NULL, int8, text(2); body: -1, "hi"
        let record = [4, 0, 1, 17, 0xff, b'h', b'i'];
        assert_eq!(column(&record, 0).unwrap(), Value::Null);
        assert_eq!(column(&record, 1).unwrap(), Value::Integer(-1));
        assert_eq!(column(&record, 2).unwrap(), Value::Text(b"hi"));
        assert_eq!(column(&record, 3).unwrap(), Value::Null);
        assert!(column(&record[..6], 2).is_err());
        assert!(column(&[9, 0], 0).is_err());
    }
}
