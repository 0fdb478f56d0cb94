//! The single writer: a thread owning the read-write connection. It takes every queued write,
//! runs each in its own savepoint inside one transaction, commits once, and only then answers
//! each caller. Batching makes `synchronous=FULL` affordable: one fsync for many reports.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::StoreError;

/// Work to do inside the batch transaction. It returns whether it succeeded (a failure rolls
/// back its savepoint only) and what to tell its caller once the commit outcome is known.
type Job = Box<dyn FnOnce(&Connection) -> (bool, Reply) + Send>;
type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;

/// How long a WAL restart waits for readers to move to the newest snapshot: the checkpointer's
/// copies take milliseconds; a backup's read can take minutes, and ingest must not wait on it.
const RESTART_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);
/// How long restarts pause after one was blocked.
const RESTART_PAUSE: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a write that must not be refused (enrollment, admin) waits for room in a full queue.
const FULL_QUEUE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug)]
pub(super) struct WriterHandle {
    /// Bounded: under overload, ingest is refused with 503 and Retry-After instead of queueing
    /// without limit.
    sender: Mutex<Option<mpsc::SyncSender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl WriterHandle {
    pub(super) fn start(
        conn: Connection,
        batch_max: usize,
        queue_max: usize,
        restart_wal: Arc<AtomicBool>,
    ) -> Result<WriterHandle, StoreError> {
        let (sender, receiver) = mpsc::sync_channel::<Job>(queue_max.max(1));
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(conn, receiver, batch_max.max(1), restart_wal))
            .map_err(|error| {
                StoreError::Task(format!("cannot start the writer thread: {error}"))
            })?;
        Ok(WriterHandle {
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues `f` and waits for its result, which the caller sees only after the commit. An
    /// `Err` from `f` rolls back everything `f` wrote. When the queue is full this waits (up to
    /// ten seconds) for room: for writes that must not be refused.
    pub(super) async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        self.submit(f, false).await
    }

    /// Like [`write`](Self::write), but a full queue fails at once with
    /// [`StoreError::Overloaded`]: for ingest, whose senders retry later.
    pub(super) async fn try_write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        self.submit(f, true).await
    }

    async fn submit<T, E, F>(&self, f: F, refuse_when_full: bool) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T, E>>();
        let mut job: Job = Box::new(move |conn| {
            let result = f(conn);
            let ok = result.is_ok();
            let reply: Reply = Box::new(move |commit| {
                let outcome = match commit {
                    Ok(()) => result,
                    Err(message) => Err(E::from(StoreError::Task(format!(
                        "commit failed: {message}"
                    )))),
                };
                let _ = tx.send(outcome);
            });
            (ok, reply)
        });
        let sender = self
            .sender
            .lock()
            .ok()
            .and_then(|s| s.clone())
            .ok_or(StoreError::WriterGone)?;
        let deadline = tokio::time::Instant::now() + FULL_QUEUE_PATIENCE;
        loop {
            match sender.try_send(job) {
                Ok(()) => break,
                Err(mpsc::TrySendError::Disconnected(_)) => {
                    return Err(StoreError::WriterGone.into());
                }
                Err(mpsc::TrySendError::Full(returned)) => {
                    if refuse_when_full || tokio::time::Instant::now() >= deadline {
                        return Err(StoreError::Overloaded.into());
                    }
                    job = returned;
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
            }
        }
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Stops taking writes, lets the queued ones commit, and joins the thread.
    pub(super) fn shutdown(&self) {
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

fn run(
    mut conn: Connection,
    receiver: mpsc::Receiver<Job>,
    batch_max: usize,
    restart_wal: Arc<AtomicBool>,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(batch_max);
    // After a restart was blocked by a long read (a backup's snapshot), none is tried before
    // this: each try makes the writer wait, and the reader will not be gone any sooner.
    let mut restart_paused_until: Option<std::time::Instant> = None;
    while let Ok(first) = receiver.recv() {
        if restart_wal.swap(false, Ordering::Relaxed)
            && restart_paused_until.is_none_or(|until| std::time::Instant::now() >= until)
        {
            // The checkpointer has copied most of a long WAL; finishing the copy here, between
            // batches, lets the log start over instead of growing while writes never pause.
            let started = std::time::Instant::now();
            let _ = conn.busy_timeout(RESTART_PATIENCE);
            match conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            }) {
                Ok((0, pages)) => tracing::debug!(
                    pages,
                    ms = started.elapsed().as_secs_f64() * 1e3,
                    "WAL restarted"
                ),
                Ok((_, pages)) => {
                    tracing::debug!(pages, "WAL restart blocked by a long read; paused");
                    restart_paused_until = Some(std::time::Instant::now() + RESTART_PAUSE);
                }
                Err(error) => tracing::warn!(%error, "WAL restart checkpoint failed"),
            }
            let _ = conn.busy_timeout(super::BUSY_TIMEOUT);
        }
        batch.push(first);
        while batch.len() < batch_max {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (replies, outcome) = commit_batch(&mut conn, &mut batch);
        for reply in replies {
            reply(outcome.clone());
        }
    }
    tracing::debug!("store writer stopped");
}

/// Runs a statement from the connection's cache: savepoints are per job, so parsing them each
/// time would be a measurable share of the writer's work.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn commit_batch(conn: &mut Connection, batch: &mut Vec<Job>) -> (Vec<Reply>, Result<(), String>) {
    let mut replies = Vec::with_capacity(batch.len());
    let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(error) => {
            tracing::error!(%error, "cannot begin a write transaction");
            // Dropping the jobs drops their reply channels: each caller sees the write fail.
            batch.clear();
            return (Vec::new(), Err(error.to_string()));
        }
    };
    if batch.len() == 1 {
        // A job alone needs no savepoint: its failure rolls back the whole transaction. Inside a
        // savepoint SQLite copies every changed page to a sub-journal, which was 37 % of the
        // writer's time for a first 800-package inventory (steward-bench cmdb).
        if let Some(job) = batch.pop() {
            let (ok, reply) = job(&tx);
            let outcome = if ok {
                tx.commit().map_err(|error| {
                    tracing::error!(%error, "write transaction failed to commit");
                    error.to_string()
                })
            } else {
                // The job's own error reaches its caller through its reply.
                if let Err(error) = tx.rollback() {
                    tracing::error!(%error, "cannot roll back a failed write");
                }
                Ok(())
            };
            replies.push(reply);
            return (replies, outcome);
        }
    }
    for job in batch.drain(..) {
        let savepoint_ok = run_cached(&tx, "SAVEPOINT job").is_ok();
        let (ok, reply) = job(&tx);
        let end = if ok && savepoint_ok {
            run_cached(&tx, "RELEASE job")
        } else {
            run_cached(&tx, "ROLLBACK TO job").and_then(|()| run_cached(&tx, "RELEASE job"))
        };
        if let Err(error) = end {
            tracing::error!(%error, "savepoint handling failed");
        }
        replies.push(reply);
    }
    match tx.commit() {
        Ok(()) => (replies, Ok(())),
        Err(error) => {
            tracing::error!(%error, "write transaction failed to commit");
            (replies, Err(error.to_string()))
        }
    }
}
