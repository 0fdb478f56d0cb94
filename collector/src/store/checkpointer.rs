//! WAL checkpoints on their own thread and connection. A PASSIVE checkpoint copies committed
//! pages from the WAL into the database without blocking the writer, so the writer's commits
//! stay short (one WAL append and fsync) while the other core does the copying.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{StoreError, open_connection};

/// How often the WAL is checkpointed. Often, so that when the writer restarts the log (see
/// `RESTART_PAGES`) little is left to copy while it waits: the restart's pause is the tail the
/// checkpointer has not copied yet.
const EVERY: Duration = Duration::from_millis(100);
/// WAL pages past which the writer is asked to restart the log (see `writer`): under constant
/// writes a PASSIVE checkpoint never catches up with the end of the log, so the log would
/// otherwise grow without bound.
const RESTART_PAGES: i64 = 8 * 1024;

/// The running checkpointer; dropping `stop` (in [`Checkpointer::stop`]) ends it.
#[derive(Debug)]
pub(super) struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Ends the thread after a last checkpoint.
    pub(super) fn stop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub(super) fn start(path: &Path, restart_wal: Arc<AtomicBool>) -> Result<Checkpointer, StoreError> {
    let conn = open_connection(path, false)?;
    let path: PathBuf = path.to_path_buf();
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("store-checkpoint".into())
        .spawn(move || {
            loop {
                let last = matches!(
                    stopped.recv_timeout(EVERY),
                    Err(mpsc::RecvTimeoutError::Disconnected)
                );
                if last {
                    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
                    return;
                }
                match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                    Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                }) {
                    Ok((log, _)) if log > RESTART_PAGES => {
                        restart_wal.store(true, Ordering::Relaxed)
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(%error, path = %path.display(), "WAL checkpoint failed")
                    }
                }
            }
        })
        .map_err(|error| {
            StoreError::Task(format!("cannot start the checkpoint thread: {error}"))
        })?;
    Ok(Checkpointer {
        stop: Some(stop),
        thread: Some(thread),
    })
}
