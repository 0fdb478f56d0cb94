//! The collector's HTTPS service: one listener, rustls with optional client certificates.
//!
//! - `/v1/enroll/ca`, `/v1/enroll` — enrollment; authenticated by the enrollment token.
//! - `/v1/reports` — agent ingest; requires a client certificate issued by this collector's CA.
//! - `/admin/v1/...` — the admin API; requires the admin token.
//!
//! A client certificate from another CA fails the TLS handshake. One without a certificate may
//! connect (enrollment needs that) but every agent endpoint answers it 401 before reading a body.

mod admin;
pub mod admin_tokens;
mod enroll;
mod error;
pub mod events_admin;
pub mod ingest;
pub mod snmp_admin;
pub mod tickets_admin;
mod tls;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::config::{ADMIN_TOKEN_FILE, Config, DATABASE_FILE};
use crate::pki::Ca;
use crate::store::Store;

pub use error::ApiError;
pub use tls::PeerIdentity;

/// Shared by every handler.
#[derive(Debug)]
pub struct AppState {
    pub store: Store,
    pub ca: Ca,
    /// SHA-256 of the token in `admin.token`, registered as the admin token `local` at start
    /// (see `admin_tokens`; every admin token is checked there, by hash, in constant time).
    pub admin_token_hash: String,
    /// KiB of report bodies in memory right now, bounded by `ingest.max_inflight_bytes`.
    pub inflight_kib: Arc<tokio::sync::Semaphore>,
    pub config: Config,
    /// Seals credentials kept in the database (SNMP targets); its key is outside it.
    pub secrets: Arc<crate::secrets::SecretBox>,
    /// Wakes the SNMP poller when an admin adds or removes a target.
    pub snmp_changed: Arc<tokio::sync::Notify>,
    /// The poller's previous samples (rates for `snmp poll` of a known target too).
    pub snmp_state: Arc<crate::snmp::poller::PollerState>,
    /// The rules engine and event recorder, started by `serve`.
    pub events: std::sync::OnceLock<Arc<crate::events::EventService>>,
}

/// How often history older than the retention is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// How often queued CIs are merged into the software name index (see
/// `store::software_index`): rarely enough that hosts enrolling together share a merge, often
/// enough that the queue, which lookups by name also read, stays short.
const INDEX_SOFTWARE_EVERY: Duration = Duration::from_secs(15);

/// Everything `serve` needs, loaded from a data directory.
#[derive(Debug)]
pub struct Loaded {
    pub state: Arc<AppState>,
    pub tls: Arc<rustls::ServerConfig>,
    /// `DIR/collector.lock`, held until `serve` has closed the store (`restore` waits on it).
    pub lock: crate::lock::DataDirLock,
}

pub fn load(data_dir: &Path, config: Config) -> Result<Loaded> {
    steward_agent::install_crypto_provider();
    if !crate::init::is_initialised(data_dir) {
        anyhow::bail!(
            "{} is not initialised: run `steward-collector init --data-dir {}` first",
            data_dir.display(),
            data_dir.display()
        );
    }
    // Before the database is opened (and perhaps migrated): one collector per directory.
    let lock = crate::lock::DataDirLock::acquire(data_dir)?;
    let ca = Ca::load(data_dir)?;
    let tls = tls::server_config(data_dir, &ca)?;
    let token_path = data_dir.join(ADMIN_TOKEN_FILE);
    let admin_token = std::fs::read_to_string(&token_path)
        .with_context(|| format!("cannot read {}", token_path.display()))?;
    let store = Store::open_with(
        &data_dir.join(DATABASE_FILE),
        config.store.batch_max,
        config.store.queue_max,
        config.identification.clone(),
    )?;
    let inflight = tokio::sync::Semaphore::new(config.ingest.max_inflight_bytes.div_ceil(1024));
    let secrets = crate::secrets::SecretBox::load_or_create(data_dir)?;
    let state = Arc::new(AppState {
        store,
        ca,
        admin_token_hash: crate::sha256_hex(admin_token.trim().as_bytes()),
        inflight_kib: Arc::new(inflight),
        config,
        secrets: Arc::new(secrets),
        snmp_changed: Arc::new(tokio::sync::Notify::new()),
        snmp_state: Arc::default(),
        events: std::sync::OnceLock::new(),
    });
    Ok(Loaded {
        state,
        tls: Arc::new(tls),
        lock,
    })
}

/// Largest body accepted by enrollment and the admin API.
const SMALL_BODY_MAX: usize = 64 * 1024;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(
            "/v1/reports",
            post(ingest::report).layer(middleware::map_response(ingest::protocol_header)),
        )
        .route("/v1/enroll/ca", get(enroll::ca))
        .route(
            "/v1/enroll",
            post(enroll::enroll).layer(middleware::from_fn_with_state(state.clone(), small_body)),
        )
        .route(
            "/v1/renew",
            post(enroll::renew).layer(middleware::from_fn_with_state(state.clone(), small_body)),
        )
        .nest("/admin/v1", admin::router(state.clone()))
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .with_state(state)
}

/// Reads a whole request body, bounded in size and in time (`ingest.body_timeout_secs`), so a
/// client that stops sending mid-body cannot hold a connection slot forever.
pub async fn read_body(state: &AppState, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    // A declared length past the limit is refused before waiting for any of the body.
    let declared = axum::body::HttpBody::size_hint(&body).lower();
    if declared > u64::try_from(limit).unwrap_or(u64::MAX) {
        return Err(ApiError::TooLarge { limit });
    }
    let seconds = u64::from(state.config.ingest.body_timeout_secs);
    let collect = Limited::new(body, limit).collect();
    match tokio::time::timeout(Duration::from_secs(seconds), collect).await {
        Err(_) => Err(ApiError::BodyTimeout { seconds }),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<LengthLimitError>() => Err(ApiError::TooLarge { limit }),
        Ok(Err(error)) => Err(ApiError::BadRequest(format!(
            "cannot read the request body: {error}"
        ))),
    }
}

/// Buffers a small body (enrollment, admin) under the size and time bounds before the handler
/// sees it.
async fn small_body(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let bytes = read_body(&state, body, SMALL_BODY_MAX).await?;
    Ok(next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await)
}

/// How long ticket deliveries in flight at shutdown may take to finish.
const DISPATCHER_DRAIN: Duration = Duration::from_secs(10);
/// After the requests in flight (up to 10 s, see `tls`): how long the rest of the drain (rules
/// engine, ticket deliveries, queued writes) may take before the collector exits anyway.
const DRAIN_BOUND: Duration = Duration::from_secs(20);

/// Serves on `listener` until `shutdown` resolves, then drains: stops accepting, lets requests
/// in flight finish (up to ten seconds), ticket deliveries in flight finish (up to ten seconds,
/// at the same time), the rules engine record what it was given, and queued writes commit; all
/// of it bounded (see `DRAIN_BOUND`), naming what was left if the bound is hit. Nothing
/// acknowledged is lost either way: a caller is answered only after its write commits.
pub async fn serve(
    listener: tokio::net::TcpListener,
    loaded: Loaded,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    // Held until the store is closed, whatever happens below: the close below takes it along,
    // so a drain cut short at its bound still holds it while the writer may commit.
    let lock = loaded.lock;
    let (stopping, stopped) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        tracing::info!("shutting down");
        let _ = stopping.send(true);
    };
    let state = loaded.state.clone();
    sync_config_targets(&state).await?;
    admin_tokens::register_local(&state).await?;
    let rules_file = state.config.rules.file.clone();
    let routes = Arc::new(crate::tickets::route::Routes::new(
        &state.config.connectors,
        &state.config.routes,
    ));
    let dispatcher = if state.config.connectors.is_empty() {
        None
    } else {
        let dispatcher = crate::tickets::dispatcher::Dispatcher::new(
            state.store.clone(),
            state.config.tickets.clone(),
            &state.config.connectors,
        )?;
        tracing::info!(
            connectors = state.config.connectors.len(),
            "ticket dispatcher started"
        );
        let mut stopped = stopped.clone();
        let stop = async move {
            // An error means the sender is gone: the accept loop ended, so stop too.
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        Some(tokio::spawn(dispatcher.run_until(stop, DISPATCHER_DRAIN)))
    };
    let mut engine_task = None;
    let mut reloader = None;
    if state.config.rules.enabled {
        let rules = crate::events::load_rules(rules_file.as_deref())?;
        let (events, task) = crate::events::EventService::start(
            state.store.clone(),
            rules,
            rules_file,
            Arc::new(crate::rules::SystemClock),
            routes,
        )
        .await?;
        let _ = state.events.set(events.clone());
        reloader = Some(tokio::spawn(reload_on_sighup(events)));
        engine_task = Some(task);
    } else {
        tracing::warn!("rules are disabled ([rules] enabled = false): no events are raised");
    }
    let poller = tokio::spawn(crate::snmp::poller::run(
        state.store.clone(),
        state.secrets.clone(),
        state.config.snmp.clone(),
        state.config.identification.clone(),
        state.snmp_changed.clone(),
        state.snmp_state.clone(),
        state.events.get().cloned(),
    ));
    let prune_state = state.clone();
    let pruner = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(PRUNE_EVERY);
        loop {
            ticker.tick().await;
            let retention_ms = i64::from(prune_state.config.store.retention_days) * 86_400_000;
            match prune_state
                .store
                .prune_reports(crate::now_ms() - retention_ms)
                .await
            {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "pruned reports past retention"),
                Err(error) => tracing::warn!(%error, "pruning reports failed"),
            }
            match prune_state
                .store
                .prune_device_samples(crate::now_ms() - retention_ms)
                .await
            {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "pruned device samples past retention"),
                Err(error) => tracing::warn!(%error, "pruning device samples failed"),
            }
            match prune_state
                .store
                .prune_outbox(crate::now_ms() - retention_ms)
                .await
            {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "pruned delivered ticket operations"),
                Err(error) => tracing::warn!(%error, "pruning the ticket outbox failed"),
            }
            let history_ms =
                i64::from(prune_state.config.store.history_retention_days) * 86_400_000;
            match prune_state
                .store
                .prune_history(crate::now_ms() - history_ms)
                .await
            {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "pruned CI history past retention"),
                Err(error) => tracing::warn!(%error, "pruning CI history failed"),
            }
        }
    });
    let index_state = state.clone();
    let indexer = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(INDEX_SOFTWARE_EVERY);
        loop {
            ticker.tick().await;
            match index_state.store.index_software().await {
                Ok(0) => {}
                Ok(merged) => tracing::debug!(merged, "CIs merged into the software name index"),
                Err(error) => tracing::warn!(%error, "merging the software name index failed"),
            }
        }
    });
    let limits = tls::ConnectionLimits::from_config(&state.config.ingest);
    let result = tls::accept_loop(
        listener,
        loaded.tls,
        router(state.clone()),
        limits,
        shutdown,
    )
    .await;
    drop(stopped);
    pruner.abort();
    indexer.abort();
    poller.abort();
    if let Some(reloader) = reloader {
        reloader.abort();
    }
    let deadline = tokio::time::Instant::now() + DRAIN_BOUND;
    if let Some(events) = state.events.get()
        && tokio::time::timeout_at(deadline, events.flush())
            .await
            .is_err()
    {
        tracing::warn!("the rules engine had not recorded everything it was given at the bound");
    }
    if let Some(task) = engine_task {
        task.abort();
    }
    // The dispatcher stops claiming rows at the signal and bounds its own drain; rows it had
    // to stop stay pending, and the next start delivers them (a create marked sent is searched
    // for first, so none is made twice).
    if let Some(mut dispatcher) = dispatcher
        && tokio::time::timeout_at(deadline, &mut dispatcher)
            .await
            .is_err()
    {
        tracing::warn!("the ticket dispatcher had not stopped at the bound");
        dispatcher.abort();
    }
    let store = state.store.clone();
    let close = move || {
        store.close();
        drop(lock);
    };
    if tokio::time::timeout_at(deadline, tokio::task::spawn_blocking(close))
        .await
        .is_err()
    {
        // The writer answers a caller only after its commit, so what it had not committed
        // was never acknowledged; SQLite rolls an unfinished transaction back.
        tracing::warn!(
            bound_secs = DRAIN_BOUND.as_secs(),
            "queued writes had not committed at the shutdown bound; exiting without them"
        );
        return result;
    }
    tracing::info!("stopped");
    result
}

/// Makes the stored targets of origin `config` match `[[snmp.targets]]`: each is added or
/// updated (credentials sealed), and those no longer in the file are removed.
async fn sync_config_targets(state: &AppState) -> Result<()> {
    let wanted = &state.config.snmp.targets;
    for target in wanted {
        let sealed = crate::snmp::poller::seal_credentials(
            &state.secrets,
            &target.host,
            target.port,
            &target.credentials,
        )?;
        let added = state
            .store
            .add_snmp_target(
                crate::store::NewSnmpTarget {
                    host: target.host.clone(),
                    port: target.port,
                    version: target.credentials.version().to_string(),
                    user: target.credentials.user().to_string(),
                    sealed,
                    interval_secs: target
                        .interval_secs
                        .unwrap_or(state.config.snmp.interval_secs),
                    origin: "config".into(),
                },
                true,
            )
            .await?;
        if let Err(refused) = added {
            anyhow::bail!("snmp target {}:{}: {refused}", target.host, target.port);
        }
    }
    for stored in state.store.list_snmp_targets().await? {
        let in_file = wanted
            .iter()
            .any(|t| t.host == stored.host && t.port == stored.port);
        if stored.origin == "config" && !in_file {
            state
                .store
                .remove_snmp_target(stored.host.clone(), stored.port)
                .await?;
            tracing::info!(
                host = stored.host,
                port = stored.port,
                "SNMP target no longer in the config: removed"
            );
        }
    }
    Ok(())
}

/// Re-reads the rules file on SIGHUP; a file with errors is refused and the running rules stay.
async fn reload_on_sighup(events: Arc<crate::events::EventService>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hangup.recv().await.is_some() {
            match events.reload_file().await {
                Ok(count) => tracing::info!(rules = count, "rules reloaded (SIGHUP)"),
                Err(error) => tracing::error!(%error, "rules not reloaded; the running rules stay"),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = events;
        std::future::pending::<()>().await;
    }
}
