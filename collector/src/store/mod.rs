//! The CMDB and metrics history in SQLite (WAL, `synchronous=FULL`). The only module that talks
//! SQL.
//!
//! *Invariant*: every write goes through the one [`writer`] thread, which batches concurrent
//! writes into one transaction and answers each caller only after the commit; so an
//! acknowledged report is on disk. Reads use a small pool of read-only connections (WAL lets
//! them run beside the writer) on tokio's blocking threads, never holding a connection across
//! an `.await`.

mod admin_tokens;
mod agents;
pub mod backup;
mod checkpointer;
mod cis;
mod events;
mod identify;
mod inventory;
mod relations;
mod schema;
mod snmp;
mod software_index;
mod tickets;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};

use crate::cmdb::identify::IdentifyConfig;
pub use events::{EventChange, EventFilter, EventRow, SilenceRow, TransitionRow};

pub use admin_tokens::{
    AdminToken, AdminTokenError, LocalToken, check_admin_token_name, constant_time_eq,
};
pub use agents::{AgentRow, EnrollError, NewAgent, RenewError, TokenRow};
pub use cis::{
    CiDetail, CiRow, IngestOutcome, IngestRejection, ReportContent, ReportRecord, SpoolStats,
};
pub use identify::{ConflictRow, Resolution, ResolveError};
pub use inventory::{
    CiInventory, HistoryEntry, InventoryRecord, SoftwareHit, WarrantyRow, asset_fields,
};
pub use relations::{
    CiFilter, CmdbError, CmdbImport, Impacted, RELATION_KINDS, Relation, RelationSpec,
    ServiceDetail, ServiceSpec, known_class,
};
pub use schema::SCHEMA_VERSION;
pub use snmp::{CiLink, DevicePoll, NewSnmpTarget, PolledNeighbour, SnmpTargetRow};
pub use tickets::{
    Delivery, OP_ACKNOWLEDGE, OP_COMMENT, OP_OPEN, OP_RESOLVE, OutboxItem, OutboxRow, TicketLink,
    event_key,
};

/// Read connections kept open for reuse.
const READ_POOL_MAX: usize = 4;
/// How long a connection waits for a lock another holds.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the database writer has stopped")]
    WriterGone,
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "database {path} has schema version {found}, newer than this collector knows ({known}); upgrade the collector"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("database task failed: {0}")]
    Task(String),
    /// The write queue is full: the collector is taking more than the disk can commit.
    #[error("the collector is overloaded; retry later")]
    Overloaded,
}

/// A handle to the store; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    writer: writer::WriterHandle,
    checkpointer: Mutex<checkpointer::Checkpointer>,
    readers: Mutex<Vec<Connection>>,
    identification: Arc<IdentifyConfig>,
    /// Notified after outbox rows are committed (wakes the ticket dispatcher).
    outbox: Arc<tokio::sync::Notify>,
}

impl Store {
    /// Opens (creating and migrating if needed) the database and starts the writer thread.
    /// `queue_max` bounds the writes waiting for the writer; past it ingest is refused.
    pub fn open(path: &Path, batch_max: usize, queue_max: usize) -> Result<Store, StoreError> {
        Store::open_with(path, batch_max, queue_max, IdentifyConfig::default())
    }

    /// [`Store::open`] with the identification rules from `collector.toml`.
    pub fn open_with(
        path: &Path,
        batch_max: usize,
        queue_max: usize,
        identification: IdentifyConfig,
    ) -> Result<Store, StoreError> {
        let mut conn = open_connection(path, false)?;
        schema::migrate(&mut conn, path)?;
        // Checkpoints run on their own thread (see `checkpointer`), not inside the writer's
        // commits, so the writer never stalls copying the WAL into the database.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // When the log restarts, its file is cut back to this size rather than kept at its peak.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        let restart_wal = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = writer::WriterHandle::start(conn, batch_max, queue_max, restart_wal.clone())?;
        let checkpointer = Mutex::new(checkpointer::start(path, restart_wal)?);
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer,
                checkpointer,
                readers: Mutex::new(Vec::new()),
                identification: Arc::new(identification),
                outbox: Arc::new(tokio::sync::Notify::new()),
            }),
        })
    }

    /// Runs a read on a pooled read-only connection, off the async threads.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner
                .readers
                .lock()
                .map(|mut pool| pool.pop())
                .unwrap_or(None);
            let conn = match pooled {
                Some(conn) => conn,
                None => open_connection(&inner.path, true)?,
            };
            let result = f(&conn);
            if let Ok(mut pool) = inner.readers.lock()
                && pool.len() < READ_POOL_MAX
            {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|error| StoreError::Task(error.to_string()))?
    }

    /// Waits for every queued write to commit, then stops the writer.
    pub fn close(&self) {
        self.inner.writer.shutdown();
        if let Ok(mut checkpointer) = self.inner.checkpointer.lock() {
            checkpointer.stop();
        }
    }
}

fn open_connection(path: &Path, read_only: bool) -> Result<Connection, StoreError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let open = || -> Result<Connection, rusqlite::Error> {
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        if !read_only {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        // FULL: a commit survives power loss, which is what an acknowledgement promises.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(conn)
    };
    open().map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod inventory_tests;

#[cfg(test)]
mod snmp_tests;

#[cfg(test)]
mod events_tests;

#[cfg(test)]
mod tickets_tests;
