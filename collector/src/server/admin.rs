//! The admin API under `/admin/v1`, behind the admin token (`Authorization: Bearer ...`).

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::store::{AgentRow, CiDetail, CiRow};

/// Bounds for `enroll-token create`.
const MAX_TOKEN_TTL_SECS: u64 = 365 * 86_400;
const MAX_TOKEN_USES: u32 = 100_000;

pub fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/enroll-tokens", post(create_token))
        .route("/agents", get(list_agents))
        .route("/agents/{id}/revoke", post(revoke_agent))
        .route("/cis", get(list_cis))
        .route("/cis/{key}", get(show_ci))
        // Outermost last: the token is checked before any body is read.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            super::small_body,
        ))
        .route_layer(middleware::from_fn_with_state(state, require_admin))
}

async fn require_admin(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        None => Err(ApiError::Unauthorized(
            "admin token required (Authorization: Bearer <token>)".into(),
        )),
        Some(token) if crate::sha256_hex(token.as_bytes()) == state.admin_token_hash => {
            Ok(next.run(request).await)
        }
        Some(_) => Err(ApiError::Unauthorized("admin token is not valid".into())),
    }
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

async fn list_cis(State(state): State<Arc<AppState>>) -> Result<Json<Vec<CiRow>>, ApiError> {
    Ok(Json(state.store.list_cis().await?))
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
