//! Backup and the checks `restore` makes. These work on database files, on connections of their
//! own, not through a running [`Store`](super::Store): a backup only reads, so it runs beside a
//! serving collector, and a restore runs only when none serves the directory.
//!
//! A backup is `VACUUM INTO`: one read transaction copies a consistent snapshot into a new,
//! compact file. In WAL mode readers never block the writer, so ingest goes on while it runs
//! (the WAL grows until the snapshot is released; see `writer` for how the log restart backs
//! off meanwhile). The online backup API was the other choice, but it starts over whenever
//! another connection writes, so under steady ingest it would not finish.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::schema::SCHEMA_VERSION;

/// What a database holds, as a backup or restore reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DatabaseSummary {
    pub path: PathBuf,
    pub size_bytes: u64,
    pub schema_version: i64,
    pub cis: i64,
    pub agents: i64,
    pub reports: i64,
    pub events: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Not SQLite, or SQLite without Steward's tables.
    #[error("{} is not a Steward database: {reason}", path.display())]
    NotSteward { path: PathBuf, reason: String },
    #[error(
        "{} has schema version {found}, newer than this collector knows ({known}); use a newer steward-collector",
        path.display()
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("{} is damaged (PRAGMA integrity_check): {problems}", path.display())]
    Corrupt { path: PathBuf, problems: String },
    #[error("{}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl BackupError {
    /// A wrong file was given (exit 2), as opposed to a failure on the way (exit 1).
    pub fn is_wrong_file(&self) -> bool {
        matches!(
            self,
            BackupError::NotSteward { .. } | BackupError::TooNew { .. }
        )
    }
}

fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> BackupError + '_ {
    move |source| {
        use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
        match source.sqlite_error_code() {
            Some(NotADatabase) => BackupError::NotSteward {
                path: path.to_path_buf(),
                reason: "not an SQLite database".into(),
            },
            Some(DatabaseCorrupt) => BackupError::Corrupt {
                path: path.to_path_buf(),
                problems: source.to_string(),
            },
            _ => BackupError::Sqlite {
                path: path.to_path_buf(),
                source,
            },
        }
    }
}

/// Opens an existing file (never creates one) for reading; read-write so that a WAL-mode file
/// can set up its shared memory, but nothing here writes to it.
fn open_existing(path: &Path) -> Result<Connection, BackupError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite(path))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(sqlite(path))?;
    Ok(conn)
}

/// Copies a consistent snapshot of the database at `db` into `target`, which must not exist or
/// be empty (the caller creates it empty, with the mode it wants).
pub fn vacuum_into(db: &Path, target: &Path) -> Result<(), BackupError> {
    let conn = open_existing(db)?;
    let target_text = target.to_str().ok_or_else(|| BackupError::Io {
        path: target.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the backup path is not valid UTF-8",
        ),
    })?;
    conn.execute("VACUUM INTO ?1", [target_text])
        .map_err(sqlite(db))?;
    Ok(())
}

/// Checks that `path` is a sound Steward database this build can serve (integrity check,
/// `schema_migrations`, a schema version not newer than this build's) and counts what it holds.
pub fn inspect(path: &Path) -> Result<DatabaseSummary, BackupError> {
    let size_bytes = std::fs::metadata(path)
        .map_err(|source| BackupError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let conn = open_existing(path)?;
    let not_steward = |reason: &str| BackupError::NotSteward {
        path: path.to_path_buf(),
        reason: reason.into(),
    };
    // The first read of the file: where a file that is not SQLite at all is found out.
    conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(sqlite(path))?;
    let problems = {
        let mut stmt = conn
            .prepare("PRAGMA integrity_check(20)")
            .map_err(sqlite(path))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(sqlite(path))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(sqlite(path))?
    };
    if problems != ["ok"] {
        return Err(BackupError::Corrupt {
            path: path.to_path_buf(),
            problems: problems.join("; "),
        });
    }
    let has_table = |name: &str| -> Result<bool, BackupError> {
        Ok(conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [name],
                |_| Ok(()),
            )
            .optional()
            .map_err(sqlite(path))?
            .is_some())
    };
    if !has_table("schema_migrations")? {
        return Err(not_steward("it has no schema_migrations table"));
    }
    for table in ["cis", "agents", "reports"] {
        if !has_table(table)? {
            return Err(not_steward(&format!("it has no {table} table")));
        }
    }
    let schema_version: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(sqlite(path))?;
    if schema_version > SCHEMA_VERSION {
        return Err(BackupError::TooNew {
            path: path.to_path_buf(),
            found: schema_version,
            known: SCHEMA_VERSION,
        });
    }
    let count = |table: &str| -> Result<i64, BackupError> {
        if !has_table(table)? {
            return Ok(0);
        }
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .map_err(sqlite(path))
    };
    Ok(DatabaseSummary {
        path: path.to_path_buf(),
        size_bytes,
        schema_version,
        cis: count("cis")?,
        agents: count("agents")?,
        reports: count("reports")?,
        events: count("events")?,
    })
}

/// Folds the WAL of a database no one else has open into its main file, so the file alone is
/// the whole database. Returns false when that could not be done (the caller then keeps the
/// WAL beside it).
pub fn fold_wal(db: &Path) -> bool {
    let Ok(conn) = open_existing(db) else {
        return false;
    };
    let done = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            r.get::<_, i64>(0)
        })
        .is_ok_and(|busy| busy == 0);
    // The last connection to close removes an empty WAL and the shared memory.
    done && conn.close().is_ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::Store;

    /// What the writer's restart back-off relies on: a long read (a backup's snapshot) makes a
    /// RESTART checkpoint answer "busy" after the busy timeout, not fail.
    #[test]
    fn a_long_read_makes_a_wal_restart_answer_busy_after_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.db");
        let writer = Connection::open(&path).unwrap();
        writer.pragma_update(None, "journal_mode", "WAL").unwrap();
        writer
            .execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")
            .unwrap();
        let reader = Connection::open(&path).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        writer.execute("INSERT INTO t VALUES (2)", []).unwrap();
        writer
            .busy_timeout(std::time::Duration::from_millis(100))
            .unwrap();
        let started = std::time::Instant::now();
        let busy: i64 = writer
            .query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get(0))
            .unwrap();
        assert_eq!(busy, 1);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        reader.execute_batch("COMMIT").unwrap();
        let busy: i64 = writer
            .query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get(0))
            .unwrap();
        assert_eq!(busy, 0);
    }

    #[test]
    fn a_backup_is_a_sound_copy_and_other_files_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("steward.db");
        let store = Store::open(&db, 8, 64).unwrap();
        let target = dir.path().join("copy.db");
        vacuum_into(&db, &target).unwrap();
        let summary = inspect(&target).unwrap();
        assert_eq!(summary.schema_version, SCHEMA_VERSION);
        assert_eq!((summary.cis, summary.agents, summary.reports), (0, 0, 0));
        store.close();

        let text = dir.path().join("notes.txt");
        std::fs::write(
            &text,
            "not a database at all, but long enough to have a header",
        )
        .unwrap();
        let error = inspect(&text).unwrap_err();
        assert!(error.is_wrong_file(), "{error}");
        assert!(error.to_string().contains("notes.txt"), "{error}");

        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x INTEGER)")
            .unwrap();
        let error = inspect(&other).unwrap_err();
        assert!(error.to_string().contains("schema_migrations"), "{error}");
    }
}
