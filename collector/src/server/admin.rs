//! The admin API under `/admin/v1`, behind the admin token (`Authorization: Bearer ...`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::middleware;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::inventory::assets::{self, AssetImport, ImportOutcome};
use crate::store::{
    AgentRow, CiDetail, CiFilter, CiRow, CmdbError, CmdbImport, ConflictRow, HistoryEntry,
    Impacted, Resolution, ResolveError, ServiceDetail, SoftwareHit, WarrantyRow, known_class,
};

/// Bounds for `enroll-token create`.
const MAX_TOKEN_TTL_SECS: u64 = 365 * 86_400;
const MAX_TOKEN_USES: u32 = 100_000;

/// Largest asset import accepted (a CSV of a few hundred thousand rows).
const IMPORT_BODY_MAX: usize = 32 * 1024 * 1024;

pub fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let small = Router::new()
        .route("/enroll-tokens", post(create_token))
        .route(
            "/admin-tokens",
            get(super::admin_tokens::list).post(super::admin_tokens::create),
        )
        .route(
            "/admin-tokens/{name}/revoke",
            post(super::admin_tokens::revoke),
        )
        .route("/agents", get(list_agents))
        .route("/agents/{id}/revoke", post(revoke_agent))
        .route("/cis", get(list_cis))
        .route("/cis/{key}", get(show_ci))
        .route("/software", get(find_software))
        .route("/warranty", get(list_warranty))
        .route("/conflicts", get(list_conflicts))
        .route("/cis/{key}/history", get(ci_history))
        .route("/cis/{key}/impact", get(ci_impact))
        .route("/cis/{key}/tags", post(ci_tag))
        .route("/relations", post(relate))
        .route("/services", post(create_service))
        .route("/services/{name}", get(show_service))
        .route("/services/{name}/members", post(add_service_members))
        .route("/export", get(export_structure))
        .route("/conflicts/{id}/resolve", post(resolve_conflict))
        .route(
            "/snmp/targets",
            get(super::snmp_admin::list_targets).post(super::snmp_admin::add_target),
        )
        .route(
            "/snmp/targets/remove",
            post(super::snmp_admin::remove_target),
        )
        .route("/snmp/poll", post(super::snmp_admin::poll))
        .route("/events", get(super::events_admin::list_events))
        .route("/events/{id}", get(super::events_admin::show_event))
        .route("/events/{id}/ack", post(super::events_admin::ack_event))
        .route(
            "/events/{id}/resolve",
            post(super::events_admin::resolve_event),
        )
        .route(
            "/silences",
            get(super::events_admin::list_silences).post(super::events_admin::add_silence),
        )
        .route(
            "/silences/{id}/remove",
            post(super::events_admin::remove_silence),
        )
        .route("/tickets", get(super::tickets_admin::list_tickets))
        .route("/tickets/retry", post(super::tickets_admin::retry_tickets))
        .route("/rules", get(super::events_admin::list_rules))
        .route("/rules/reload", post(super::events_admin::reload_rules))
        .route("/snmp/discover", post(super::snmp_admin::discover))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            super::small_body,
        ));
    // The import reads its own, larger body (bounded in size and time the same way).
    let large = Router::new()
        .route("/assets/import", post(import_assets))
        .route("/import", post(import_structure));
    // Outermost last: the token is checked before any body is read.
    small
        .merge(large)
        .route_layer(middleware::from_fn_with_state(
            state,
            super::admin_tokens::require_admin,
        ))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CreateToken {
    pub ttl_secs: u64,
    pub uses: u32,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CreatedToken {
    pub token: String,
    pub expires_at: i64,
    pub uses: u32,
}

async fn create_token(
    State(state): State<Arc<AppState>>,
    Json(request): Json<CreateToken>,
) -> Result<Json<CreatedToken>, ApiError> {
    if request.ttl_secs == 0 || request.ttl_secs > MAX_TOKEN_TTL_SECS {
        return Err(ApiError::BadRequest(format!(
            "ttl must be between 1 second and {} days",
            MAX_TOKEN_TTL_SECS / 86_400
        )));
    }
    if request.uses == 0 || request.uses > MAX_TOKEN_USES {
        return Err(ApiError::BadRequest(format!(
            "uses must be between 1 and {MAX_TOKEN_USES}"
        )));
    }
    let token = format!(
        "stw_{}",
        hex::encode(crate::random_bytes::<32>().map_err(|e| ApiError::Unavailable(e.to_string()))?)
    );
    let expires_at = crate::now_ms() + i64::try_from(request.ttl_secs * 1000).unwrap_or(i64::MAX);
    state
        .store
        .create_enroll_token(
            crate::sha256_hex(token.as_bytes()),
            expires_at,
            request.uses,
        )
        .await?;
    tracing::info!(expires_at, uses = request.uses, "enrollment token created");
    Ok(Json(CreatedToken {
        token,
        expires_at,
        uses: request.uses,
    }))
}

async fn list_agents(State(state): State<Arc<AppState>>) -> Result<Json<Vec<AgentRow>>, ApiError> {
    Ok(Json(state.store.list_agents().await?))
}

async fn revoke_agent(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if state.store.revoke_agent(id.clone()).await? {
        tracing::info!(agent_id = id, "agent revoked");
        Ok(Json(serde_json::json!({ "revoked": id })))
    } else {
        Err(ApiError::NotFound(format!("no agent {id}")))
    }
}

async fn list_cis(
    State(state): State<Arc<AppState>>,
    Query(filter): Query<CiFilter>,
) -> Result<Json<Vec<CiRow>>, ApiError> {
    if let Some(class) = &filter.class
        && !known_class(class)
    {
        return Err(ApiError::BadRequest(format!(
            "unknown class {class:?}; one of {}",
            crate::cmdb::classes::ALL.join(", ")
        )));
    }
    Ok(Json(state.store.list_cis_filtered(filter).await?))
}

async fn show_ci(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
) -> Result<Json<CiDetail>, ApiError> {
    match state.store.find_ci(key.clone()).await? {
        Ok(Some(detail)) => Ok(Json(detail)),
        Ok(None) => Err(ApiError::NotFound(format!("no CI named or numbered {key}"))),
        Err(ids) => Err(ApiError::Conflict(format!(
            "{} CIs are named {key}: ids {ids:?}; show one by id",
            ids.len()
        ))),
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SoftwareQuery {
    pub name: String,
    pub version_below: Option<String>,
}

async fn find_software(
    State(state): State<Arc<AppState>>,
    Query(query): Query<SoftwareQuery>,
) -> Result<Json<Vec<SoftwareHit>>, ApiError> {
    if query.name.trim().is_empty() {
        return Err(ApiError::BadRequest("a package name is required".into()));
    }
    Ok(Json(
        state
            .store
            .find_software(query.name, query.version_below)
            .await?,
    ))
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct WarrantyQuery {
    /// Only warranties ending within this many days from today (expired ones included).
    pub within_days: Option<u32>,
    /// Only warranties that have already ended.
    #[serde(default)]
    pub expired: bool,
}

async fn list_warranty(
    State(state): State<Arc<AppState>>,
    Query(query): Query<WarrantyQuery>,
) -> Result<Json<Vec<WarrantyRow>>, ApiError> {
    let today = crate::today();
    let until = match (query.within_days, query.expired) {
        (Some(days), _) => Some(today.saturating_add(time::Duration::days(i64::from(days)))),
        (None, true) => today.previous_day(),
        (None, false) => None,
    };
    Ok(Json(
        state.store.warranties(until.map(|d| d.to_string())).await?,
    ))
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ImportQuery {
    /// The file's name, for the CI history.
    pub file: Option<String>,
    /// Import the good rows of a file that has bad ones (which are reported).
    #[serde(default)]
    pub skip_bad_rows: bool,
}

/// How many row errors an error answer lists.
const ERRORS_LISTED: usize = 50;

async fn import_assets(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ImportQuery>,
    body: Body,
) -> Result<Json<ImportOutcome>, ApiError> {
    let data = super::read_body(&state, body, IMPORT_BODY_MAX).await?;
    let (rows, errors, ignored_columns) = assets::parse(&data);
    if !errors.is_empty() && (!query.skip_bad_rows || rows.is_empty()) {
        let mut message = format!(
            "{} row(s) cannot be imported; nothing was imported{}:",
            errors.len(),
            if rows.is_empty() {
                ""
            } else {
                " (import the good rows with --skip-bad-rows)"
            }
        );
        for error in errors.iter().take(ERRORS_LISTED) {
            message.push_str(&format!("\n  {error}"));
        }
        if errors.len() > ERRORS_LISTED {
            message.push_str(&format!(
                "\n  ... and {} more",
                errors.len() - ERRORS_LISTED
            ));
        }
        return Err(ApiError::Unprocessable(message));
    }
    let file_name = query.file.unwrap_or_else(|| "(unnamed)".into());
    let mut outcome = state
        .store
        .import_assets(AssetImport {
            file_name: file_name.clone(),
            rows,
        })
        .await?;
    outcome.errors = errors;
    outcome.ignored_columns = ignored_columns;
    outcome.applied = true;
    tracing::info!(
        file = file_name,
        matched = outcome.matched,
        updated = outcome.updated,
        unmatched = outcome.unmatched.len(),
        skipped = outcome.errors.len(),
        "asset import"
    );
    Ok(Json(outcome))
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ConflictQuery {
    /// Resolved ones too.
    #[serde(default)]
    pub all: bool,
}

async fn list_conflicts(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ConflictQuery>,
) -> Result<Json<Vec<ConflictRow>>, ApiError> {
    Ok(Json(state.store.list_conflicts(query.all).await?))
}

async fn resolve_conflict(
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
    Json(resolution): Json<Resolution>,
) -> Result<Json<serde_json::Value>, ApiError> {
    match state.store.resolve_conflict(id, resolution).await {
        Ok(outcome) => {
            tracing::info!(conflict = id, outcome, "identification conflict resolved");
            Ok(Json(
                serde_json::json!({ "conflict": id, "outcome": outcome }),
            ))
        }
        Err(ResolveError::Unknown(_)) => Err(ApiError::NotFound(format!("no conflict {id}"))),
        Err(ResolveError::Store(error)) => Err(error.into()),
        Err(error) => Err(ApiError::Conflict(error.to_string())),
    }
}

impl From<CmdbError> for ApiError {
    fn from(error: CmdbError) -> Self {
        match error {
            CmdbError::Store(error) => error.into(),
            CmdbError::UnknownCi(_) | CmdbError::UnknownService(_) => {
                ApiError::NotFound(error.to_string())
            }
            CmdbError::AmbiguousCi { .. } | CmdbError::ServiceExists(_) => {
                ApiError::Conflict(error.to_string())
            }
            CmdbError::UnknownKind(_)
            | CmdbError::SelfRelation
            | CmdbError::BadName(_)
            | CmdbError::Import(_) => ApiError::BadRequest(error.to_string()),
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct HistoryQuery {
    /// Only entries at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
}

async fn ci_history(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<Vec<HistoryEntry>>, ApiError> {
    Ok(Json(state.store.history(key, query.since_ms).await?))
}

async fn ci_impact(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
) -> Result<Json<Vec<Impacted>>, ApiError> {
    Ok(Json(state.store.impact(key).await?))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TagRequest {
    pub tag: String,
    #[serde(default)]
    pub remove: bool,
}

async fn ci_tag(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
    Json(request): Json<TagRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let changed = state.store.tag(key, request.tag, request.remove).await?;
    Ok(Json(serde_json::json!({ "changed": changed })))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RelateRequest {
    pub from: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub to: String,
    #[serde(default)]
    pub remove: bool,
}

async fn relate(
    State(state): State<Arc<AppState>>,
    Json(request): Json<RelateRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let changed = if request.remove {
        state
            .store
            .unrelate(request.from, request.kind, request.to)
            .await?
    } else {
        state
            .store
            .relate(request.from, request.kind, request.to)
            .await?
    };
    Ok(Json(serde_json::json!({ "changed": changed })))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CreateService {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

async fn create_service(
    State(state): State<Arc<AppState>>,
    Json(request): Json<CreateService>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = state
        .store
        .create_service(request.name, request.description)
        .await?;
    Ok(Json(serde_json::json!({ "id": id })))
}

async fn show_service(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<ServiceDetail>, ApiError> {
    Ok(Json(state.store.service(name).await?))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Members {
    pub cis: Vec<String>,
}

async fn add_service_members(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Json(request): Json<Members>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let added = state.store.add_to_service(name, request.cis).await?;
    Ok(Json(serde_json::json!({ "added": added })))
}

async fn export_structure(
    State(state): State<Arc<AppState>>,
) -> Result<Json<CmdbImport>, ApiError> {
    Ok(Json(state.store.export_structure().await?))
}

async fn import_structure(
    State(state): State<Arc<AppState>>,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let data = super::read_body(&state, body, IMPORT_BODY_MAX).await?;
    let import: CmdbImport = serde_json::from_slice(&data)
        .map_err(|error| ApiError::BadRequest(format!("the import is not valid: {error}")))?;
    let (services, relations) = state.store.import_structure(import).await?;
    Ok(Json(
        serde_json::json!({ "services_created": services, "relations_added": relations }),
    ))
}
