//! The data directory's lock: `serve` holds an exclusive lock on `DIR/collector.lock` for as
//! long as it runs, and `restore` takes the same lock, so a database is never replaced under a
//! running collector and two collectors never serve one directory. The lock is an advisory
//! `flock` (std's `File::try_lock`); the kernel drops it when the process ends, however it
//! ends, so a killed collector leaves no stale lock behind.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// The lock file in the data directory. Its content is informational (the holder's pid).
pub const LOCK_FILE: &str = "collector.lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "a collector is serving {dir} ({lock} is locked{holder}); stop it first",
        dir = dir.display(),
        lock = lock.display()
    )]
    Held {
        dir: PathBuf,
        lock: PathBuf,
        holder: String,
    },
    #[error("cannot lock {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Held while this value lives.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the lock without waiting; [`LockError::Held`] when another process has it.
    pub fn acquire(data_dir: &Path) -> Result<DataDirLock, LockError> {
        let path = data_dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let pid = std::fs::read_to_string(&path).unwrap_or_default();
                let pid = pid.trim();
                return Err(LockError::Held {
                    dir: data_dir.to_path_buf(),
                    lock: path.clone(),
                    holder: if pid.is_empty() {
                        String::new()
                    } else {
                        format!(" by process {pid}")
                    },
                });
            }
            Err(std::fs::TryLockError::Error(error)) => return Err(io(error)),
        }
        // Who holds it, for the message above; the lock itself is what counts.
        file.set_len(0).map_err(io)?;
        std::io::Write::write_all(&mut &file, format!("{}\n", std::process::id()).as_bytes())
            .map_err(io)?;
        Ok(DataDirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        // flock locks belong to the open file description: a second open in this process
        // conflicts just as another process would.
        let refused = DataDirLock::acquire(dir.path()).unwrap_err();
        assert!(matches!(refused, LockError::Held { .. }), "{refused}");
        assert!(refused.to_string().contains("collector.lock"), "{refused}");
        assert!(
            refused
                .to_string()
                .contains(&format!("process {}", std::process::id())),
            "{refused}"
        );
        drop(first);
        DataDirLock::acquire(dir.path()).unwrap();
    }
}
