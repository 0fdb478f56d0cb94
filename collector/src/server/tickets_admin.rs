//! The admin API's ticket outbox: list (all, or the dead letter) and retry.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::store::OutboxRow;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct TicketQuery {
    /// Only the dead letter.
    #[serde(default)]
    pub failed: bool,
    pub limit: Option<i64>,
}

pub async fn list_tickets(
    State(state): State<Arc<AppState>>,
    Query(query): Query<TicketQuery>,
) -> Result<Json<Vec<OutboxRow>>, ApiError> {
    let limit = query.limit.unwrap_or(1000).clamp(1, 100_000);
    Ok(Json(state.store.list_outbox(query.failed, limit).await?))
}

/// `{"id": N}` for one row, `{"all": true}` for the whole dead letter.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RetryRequest {
    pub id: Option<i64>,
    #[serde(default)]
    pub all: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RetryAnswer {
    pub retried: usize,
}

pub async fn retry_tickets(
    State(state): State<Arc<AppState>>,
    Json(request): Json<RetryRequest>,
) -> Result<Json<RetryAnswer>, ApiError> {
    let id = match (request.id, request.all) {
        (Some(id), false) => Some(id),
        (None, true) => None,
        _ => {
            return Err(ApiError::BadRequest(
                "give an outbox id or all, not both".into(),
            ));
        }
    };
    let retried = state.store.retry_outbox(id).await?;
    if let (Some(id), 0) = (id, retried) {
        return Err(ApiError::NotFound(format!(
            "no failed ticket delivery {id} (see `tickets list --failed`)"
        )));
    }
    Ok(Json(RetryAnswer { retried }))
}
