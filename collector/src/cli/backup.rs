//! `steward-collector backup FILE` and `restore FILE`: local commands on a data directory (not
//! through the admin API). A backup runs beside a serving collector; a restore refuses to run
//! while one serves the directory (both take `DIR/collector.lock`, see `crate::lock`).
//!
//! Neither writes a file in place: each writes a temporary name, checks what it wrote
//! (`PRAGMA integrity_check`), and then moves it where it belongs in one step.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use serde_json::json;

use super::UsageError;
use crate::config::{ADMIN_TOKEN_FILE, DATABASE_FILE};
use crate::pki::CA_KEY;
use crate::secrets::SECRETS_KEY_FILE;
use crate::store::SCHEMA_VERSION;
use crate::store::backup::{self, BackupError, DatabaseSummary};

/// Files of the data directory a backup of the database does not hold.
fn not_in_backup() -> [(&'static str, &'static str); 3] {
    [
        (
            SECRETS_KEY_FILE,
            "seals the credentials stored in the database (SNMP); without it they cannot be opened",
        ),
        (CA_KEY, "the CA agents pinned and hold certificates from"),
        (ADMIN_TOKEN_FILE, "the local admin token"),
    ]
}

pub fn backup(data_dir: &Path, file: &Path, json: bool) -> Result<()> {
    let db = data_dir.join(DATABASE_FILE);
    if !db.is_file() {
        return Err(UsageError(format!(
            "no database at {}: is {} a collector data directory? (--data-dir)",
            db.display(),
            data_dir.display()
        ))
        .into());
    }
    refuse_existing(file)?;
    let parent = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(UsageError(format!(
            "cannot write {}: {} is not a directory",
            file.display(),
            parent.display()
        ))
        .into());
    }
    let name = file
        .file_name()
        .ok_or_else(|| UsageError(format!("{} names no file", file.display())))?;
    let partial = parent.join(format!(
        ".{}.partial-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = write_backup(&db, &partial).and_then(|summary| {
        publish_no_clobber(&partial, file)?;
        Ok(summary)
    });
    remove_db_files(&partial);
    let mut summary = written?;
    sync_dir(&parent);
    summary.path = file.to_path_buf();
    if json {
        let missing: Vec<_> = not_in_backup()
            .iter()
            .map(|(f, _)| data_dir.join(f))
            .collect();
        steward_agent::outln!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "backup": summary,
                "integrity_check": "ok",
                "not_included": missing,
            }))?
        );
        return Ok(());
    }
    steward_agent::outln!("backup written to {}", file.display());
    print_summary(&summary);
    steward_agent::outln!("  integrity       ok");
    steward_agent::outln!(
        "not in the backup; keep copies of these with the data directory's other files:"
    );
    for (f, why) in not_in_backup() {
        steward_agent::outln!("  {:<40} {why}", data_dir.join(f).display().to_string());
    }
    Ok(())
}

/// Snapshot into `partial` (created empty, mode 0600), on disk, then checked.
fn write_backup(db: &Path, partial: &Path) -> Result<DatabaseSummary> {
    create_private(partial)?;
    backup::vacuum_into(db, partial).context("backup failed")?;
    File::open(partial)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot flush {}", partial.display()))?;
    backup::inspect(partial).context("the backup did not check out; nothing was written")
}

pub fn restore(data_dir: &Path, file: &Path, json: bool) -> Result<()> {
    if !file.is_file() {
        return Err(UsageError(format!("{} is not a file", file.display())).into());
    }
    // Only the main file is copied: changes still in a write-ahead log beside it would be
    // left behind. (An empty log holds nothing.)
    let wal = suffixed(file, "-wal");
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        return Err(UsageError(format!(
            "refusing to restore {}: {} is beside it, so the file is not a self-contained \
             backup (its latest changes are in that write-ahead log); checkpoint it first \
             (`sqlite3 {} 'PRAGMA wal_checkpoint(TRUNCATE)'`) or take a backup with \
             `steward-collector backup`; nothing was changed",
            file.display(),
            wal.display(),
            file.display()
        ))
        .into());
    }
    if !data_dir.is_dir() {
        return Err(UsageError(format!(
            "{} is not a directory (--data-dir; `init` creates one)",
            data_dir.display()
        ))
        .into());
    }
    let _lock = crate::lock::DataDirLock::acquire(data_dir)
        .context("refusing to restore under a running collector")?;
    let db = data_dir.join(DATABASE_FILE);
    let incoming = data_dir.join(format!("{DATABASE_FILE}.restoring"));
    remove_db_files(&incoming);
    let checked = copy_private(file, &incoming).and_then(|()| {
        backup::inspect(&incoming).map_err(|error| refusal(error, file, &incoming, &db))
    });
    let summary = match checked {
        Ok(summary) => summary,
        Err(error) => {
            remove_db_files(&incoming);
            return Err(error);
        }
    };
    let kept = if db.exists() {
        Some(keep_current(&db)?)
    } else {
        None
    };
    std::fs::rename(&incoming, &db)
        .with_context(|| format!("cannot move {} to {}", incoming.display(), db.display()))?;
    sync_dir(data_dir);
    let summary = DatabaseSummary {
        path: db.clone(),
        ..summary
    };
    if json {
        steward_agent::outln!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "restored_from": file,
                "database": summary,
                "previous": kept,
                "migrates_to": SCHEMA_VERSION,
            }))?
        );
        return Ok(());
    }
    steward_agent::outln!("restored {} into {}", file.display(), db.display());
    print_summary(&summary);
    if let Some(kept) = &kept {
        steward_agent::outln!("the previous database is kept as {}", kept.display());
    }
    if summary.schema_version < SCHEMA_VERSION {
        steward_agent::outln!(
            "the next `serve` migrates it from schema version {} to {SCHEMA_VERSION}",
            summary.schema_version
        );
    }
    steward_agent::outln!(
        "it needs this directory's {} and {} to be those of the collector it was backed up from",
        SECRETS_KEY_FILE,
        CA_KEY
    );
    Ok(())
}

/// Why a file given to `restore` is refused: a wrong file is a usage error (exit 2), a damaged
/// one a failure (exit 1). Either way the current database is untouched.
fn refusal(error: BackupError, file: &Path, incoming: &Path, db: &Path) -> anyhow::Error {
    // The check ran on the copy; name the file the admin gave.
    let text = error
        .to_string()
        .replace(&incoming.display().to_string(), &file.display().to_string());
    let text = format!("refusing to restore: {text}; {} is untouched", db.display());
    if error.is_wrong_file() {
        UsageError(text).into()
    } else {
        anyhow!(text)
    }
}

/// Keeps the current database as `steward.db.before-restore-<UTC time>`: its WAL folded in
/// first (or, if that fails, moved beside it), so the kept file is the whole database. The
/// current file stays in place until the restored one replaces it in one rename.
fn keep_current(db: &Path) -> Result<PathBuf> {
    let folded = backup::fold_wal(db);
    let now = time::OffsetDateTime::now_utc();
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let base = format!("{DATABASE_FILE}.before-restore-{stamp}");
    let dir = db.parent().unwrap_or(Path::new("."));
    let mut kept = dir.join(&base);
    let mut n = 1;
    loop {
        match std::fs::hard_link(db, &kept) {
            Ok(()) => break,
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => {
                kept = dir.join(format!("{base}-{n}"));
                n += 1;
            }
            Err(_) if !kept.exists() => {
                // No hard links here: a copy does as well.
                std::fs::copy(db, &kept).with_context(|| {
                    format!("cannot keep {} as {}", db.display(), kept.display())
                })?;
                break;
            }
            Err(error) => {
                return Err(error).with_context(|| {
                    format!("cannot keep {} as {}", db.display(), kept.display())
                });
            }
        }
    }
    let wal = suffixed(db, "-wal");
    if !folded && wal.exists() {
        let kept_wal = suffixed(&kept, "-wal");
        std::fs::rename(&wal, &kept_wal)
            .with_context(|| format!("cannot move {} to {}", wal.display(), kept_wal.display()))?;
    }
    // Stale logs of the old database must not be applied to the restored one.
    for stale in [wal, suffixed(db, "-shm")] {
        match std::fs::remove_file(&stale) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(error).with_context(|| format!("cannot remove {}", stale.display()));
            }
        }
    }
    Ok(kept)
}

fn print_summary(summary: &DatabaseSummary) {
    steward_agent::outln!(
        "  size            {:.1} MiB ({} bytes)",
        summary.size_bytes as f64 / (1024.0 * 1024.0),
        summary.size_bytes
    );
    steward_agent::outln!("  schema version  {}", summary.schema_version);
    steward_agent::outln!("  CIs             {}", summary.cis);
    steward_agent::outln!("  agents          {}", summary.agents);
    steward_agent::outln!("  reports         {}", summary.reports);
    steward_agent::outln!("  events          {}", summary.events);
}

fn refuse_existing(file: &Path) -> Result<()> {
    if std::fs::symlink_metadata(file).is_ok() {
        return Err(UsageError(format!(
            "{} exists; refusing to overwrite it (give a new file name)",
            file.display()
        ))
        .into());
    }
    Ok(())
}

/// Moves `from` to `to` unless `to` exists (a hard link fails rather than replace; where there
/// are no hard links, a check and a rename).
fn publish_no_clobber(from: &Path, to: &Path) -> Result<()> {
    match std::fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => refuse_existing(to),
        Err(_) => {
            refuse_existing(to)?;
            std::fs::rename(from, to)
                .with_context(|| format!("cannot move {} to {}", from.display(), to.display()))
        }
    }
}

fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

fn create_private(path: &Path) -> Result<File> {
    private_options()
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

fn copy_private(from: &Path, to: &Path) -> Result<()> {
    let mut source = File::open(from).with_context(|| format!("cannot read {}", from.display()))?;
    let mut target = create_private(to)?;
    std::io::copy(&mut source, &mut target)
        .and_then(|_| target.sync_all())
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Removes a database file and whatever SQLite keeps beside it, if there.
fn remove_db_files(path: &Path) {
    for file in [
        path.to_path_buf(),
        suffixed(path, "-wal"),
        suffixed(path, "-shm"),
        suffixed(path, "-journal"),
    ] {
        let _ = std::fs::remove_file(file);
    }
}

/// Makes a rename in `dir` durable (best effort; not possible on every platform).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}
