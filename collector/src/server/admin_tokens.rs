//! Who may use the admin API: named admin tokens (`/admin/v1/admin-tokens`), the middleware that
//! checks them on every admin request, and the registration of `admin.token` as `local`.
//!
//! The presented token is hashed and compared in constant time with every stored hash (see
//! `store::admin_tokens`), read from the database on each request: a revocation takes effect
//! on the very next request, without a cache to invalidate.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Path, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::store::{AdminToken, AdminTokenError, LocalToken, check_admin_token_name};

/// Longest lifetime `admin-token create --expires` accepts.
const MAX_EXPIRES_SECS: u64 = 10 * 365 * 86_400;
/// `last_used_at` is written at most this often per token.
const TOUCH_EVERY_MS: i64 = 60_000;

/// The admin token a request came with, by name (for logs, and "you revoked yourself").
#[derive(Debug, Clone)]
pub struct AdminCaller {
    pub name: String,
}

/// Checks the bearer token before anything else runs (no body is read before), then logs the
/// action with the token's name. The token itself is never logged.
pub(super) async fn require_admin(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::Unauthorized("admin token required (Authorization: Bearer <token>)".into())
        })?;
    let caller = authenticate(&state, presented).await?;
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    request.extensions_mut().insert(caller.clone());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    if method == Method::GET {
        tracing::debug!(token = caller.name, %method, path, status, "admin request");
    } else {
        tracing::info!(token = caller.name, %method, path, status, "admin action");
    }
    Ok(response)
}

async fn authenticate(state: &AppState, presented: &str) -> Result<AdminCaller, ApiError> {
    let hash = crate::sha256_hex(presented.as_bytes());
    let token = state
        .store
        .find_admin_token(hash)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("admin token is not valid".into()))?;
    let now = crate::now_ms();
    if let Some(at) = token.revoked_at {
        return Err(ApiError::Unauthorized(format!(
            "admin token {:?} was revoked at {}",
            token.name,
            crate::format_ms(Some(at))
        )));
    }
    if token.is_expired(now) {
        return Err(ApiError::Unauthorized(format!(
            "admin token {:?} expired at {}",
            token.name,
            crate::format_ms(token.expires_at)
        )));
    }
    if token
        .last_used_at
        .is_none_or(|at| now - at >= TOUCH_EVERY_MS)
    {
        // Off the request's path; a lost update only makes "last used" a minute older.
        let store = state.store.clone();
        let name = token.name.clone();
        tokio::spawn(async move {
            if let Err(error) = store.touch_admin_token(name, now).await {
                tracing::debug!(%error, "cannot record an admin token's use");
            }
        });
    }
    Ok(AdminCaller { name: token.name })
}

/// Registers the token in `admin.token` as `local` (existing data directories keep working),
/// and says so when that token can no longer be used.
pub(super) async fn register_local(state: &AppState) -> anyhow::Result<()> {
    match state
        .store
        .register_local_admin_token(state.admin_token_hash.clone())
        .await?
    {
        LocalToken::Registered => {
            tracing::info!("the token in admin.token is registered as the admin token `local`");
        }
        LocalToken::Replaced => tracing::warn!(
            "admin.token holds a new token: the admin token `local` now stands for it"
        ),
        LocalToken::Known(token) if token.revoked_at.is_some() => tracing::warn!(
            name = token.name,
            "the token in admin.token is revoked: admin commands through --data-dir are refused"
        ),
        LocalToken::Known(_) => {}
    }
    Ok(())
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CreateAdminToken {
    pub name: String,
    /// Seconds until it expires; none: it does not expire.
    pub expires_secs: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CreatedAdminToken {
    /// The token's text: returned this once, stored only as a hash.
    pub token: String,
    #[serde(flatten)]
    pub info: AdminToken,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RevokedAdminToken {
    #[serde(flatten)]
    pub info: AdminToken,
    /// The request revoking it came with this very token.
    pub own: bool,
}

pub(super) async fn create(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<AdminCaller>,
    Json(request): Json<CreateAdminToken>,
) -> Result<Json<CreatedAdminToken>, ApiError> {
    check_admin_token_name(&request.name).map_err(ApiError::BadRequest)?;
    let expires_at = match request.expires_secs {
        None => None,
        Some(secs) if secs == 0 || secs > MAX_EXPIRES_SECS => {
            return Err(ApiError::BadRequest(format!(
                "expires must be between 1 second and {} days",
                MAX_EXPIRES_SECS / 86_400
            )));
        }
        Some(secs) => Some(crate::now_ms() + i64::try_from(secs * 1000).unwrap_or(i64::MAX)),
    };
    let token = format!(
        "adm_{}",
        hex::encode(crate::random_bytes::<32>().map_err(|e| ApiError::Unavailable(e.to_string()))?)
    );
    let info = state
        .store
        .create_admin_token(
            request.name.clone(),
            crate::sha256_hex(token.as_bytes()),
            expires_at,
        )
        .await
        .map_err(|error| match error {
            AdminTokenError::Duplicate(_) => ApiError::Conflict(error.to_string()),
            AdminTokenError::Store(error) => error.into(),
        })?;
    tracing::info!(
        name = info.name,
        expires_at,
        by = caller.name,
        "admin token created"
    );
    Ok(Json(CreatedAdminToken { token, info }))
}

pub(super) async fn list(
    State(state): State<Arc<AppState>>,
) -> Result<Json<Vec<AdminToken>>, ApiError> {
    Ok(Json(state.store.list_admin_tokens().await?))
}

pub(super) async fn revoke(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<AdminCaller>,
    Path(name): Path<String>,
) -> Result<Json<RevokedAdminToken>, ApiError> {
    let info = state
        .store
        .revoke_admin_token(name.clone())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no admin token named {name:?}")))?;
    let own = info.name == caller.name;
    if own {
        tracing::warn!(
            name = info.name,
            "admin token revoked with itself: it no longer works"
        );
    } else {
        tracing::info!(name = info.name, by = caller.name, "admin token revoked");
    }
    Ok(Json(RevokedAdminToken { info, own }))
}
