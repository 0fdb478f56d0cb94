//! The agent's own SQLite reader over an rpmdb.sqlite (and its write-ahead log), driven as
//! `rpm.rs` drives it: open, find `Packages`, scan, read each row's header blob.
//!
//! Input: a flag byte; with its low bit clear the rest is the database file, with it set the
//! next four bytes (little endian, modulo the remaining length) say where the database ends and
//! the WAL begins.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use steward_agent::inventory::software::rpm::package_from_header;
use steward_agent::inventory::software::sqlite_read::{self, Database, Value};

fuzz_target!(|data: &[u8]| {
    let Some((&flag, rest)) = data.split_first() else {
        return;
    };
    let (main, wal) = if flag & 1 == 0 {
        (rest, None)
    } else {
        if rest.len() < 4 {
            return;
        }
        let (split, rest) = rest.split_at(4);
        let split = u32::from_le_bytes([split[0], split[1], split[2], split[3]]) as usize;
        let at = split % (rest.len() + 1);
        let (main, wal) = rest.split_at(at);
        (main, Some(wal))
    };
    let wal = wal.map(|w| (Cursor::new(w), w.len() as u64));
    let Ok(mut db) = Database::open(Cursor::new(main), main.len() as u64, wal) else {
        return;
    };
    let _ = db.page_size();
    let _ = db.page_count();
    let Ok(table) = db.table_root("Packages") else {
        return;
    };
    let _ = db.scan(table, |_rowid, record| {
        for index in 0..3 {
            if let Ok(Value::Blob(blob)) = sqlite_read::column(record, index) {
                let _ = package_from_header(blob);
            }
        }
        Ok(())
    });
});
