//! The collector's HTTPS service: one listener, rustls with optional client certificates.
//!
//! - `/v1/enroll/ca`, `/v1/enroll` — enrollment; authenticated by the enrollment token.
//! - `/v1/reports` — agent ingest; requires a client certificate issued by this collector's CA.
//! - `/admin/v1/...` — the admin API; requires the admin token.
//!
//! A client certificate from another CA fails the TLS handshake. One without a certificate may
//! connect (enrollment needs that) but every agent endpoint answers it 401 before reading a body.

mod admin;
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
    /// SHA-256 of the admin token; compared by hash so timing reveals nothing of the token.
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
}

pub fn load(data_dir: &Path, config: Config) -> Result<Loaded> {
    steward_agent::install_crypto_provider();
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

/// Serves on `listener` until `shutdown` resolves, then lets in-flight requests finish (up to
/// ten seconds) and waits for queued writes to commit.
pub async fn serve(
    listener: tokio::net::TcpListener,
    loaded: Loaded,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let state = loaded.state.clone();
    sync_config_targets(&state).await?;
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
        Some(tokio::spawn(dispatcher.run()))
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
    let max_connections = state.config.ingest.max_connections;
    let result = tls::accept_loop(
        listener,
        loaded.tls,
        router(state.clone()),
        max_connections,
        shutdown,
    )
    .await;
    pruner.abort();
    indexer.abort();
    poller.abort();
    if let Some(reloader) = reloader {
        reloader.abort();
    }
    if let Some(events) = state.events.get() {
        events.flush().await;
    }
    if let Some(task) = engine_task {
        task.abort();
    }
    // Rows mid-delivery stay pending; the next start delivers them (a create marked sent is
    // searched for first, so none is made twice).
    if let Some(dispatcher) = dispatcher {
        dispatcher.abort();
    }
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || store.close())
        .await
        .ok();
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
