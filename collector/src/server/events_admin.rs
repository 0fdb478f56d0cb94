//! The admin API's events and silences: list, show (with transitions), acknowledge, resolve;
//! silences and maintenance windows.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::store::{EventFilter, EventRow, SilenceRow, TransitionRow};

#[derive(Debug, Serialize, Deserialize)]
pub struct EventDetail {
    #[serde(flatten)]
    pub event: EventRow,
    pub transitions: Vec<TransitionRow>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct EventQuery {
    pub state: Option<String>,
    pub ci: Option<String>,
    pub limit: Option<i64>,
}

const STATES: &[&str] = &["pending", "firing", "flapping", "resolved"];

pub async fn list_events(
    State(state): State<Arc<AppState>>,
    Query(query): Query<EventQuery>,
) -> Result<Json<Vec<EventRow>>, ApiError> {
    if let Some(s) = &query.state
        && !STATES.contains(&s.as_str())
    {
        return Err(ApiError::BadRequest(format!(
            "unknown state {s:?}; one of {}",
            STATES.join(", ")
        )));
    }
    let limit = query.limit.unwrap_or(1000).clamp(1, 100_000);
    Ok(Json(
        state
            .store
            .list_events(EventFilter {
                state: query.state,
                ci: query.ci,
                limit: Some(limit),
            })
            .await?,
    ))
}

pub async fn show_event(
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
) -> Result<Json<EventDetail>, ApiError> {
    let (event, transitions) = state
        .store
        .event(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no event {id}")))?;
    Ok(Json(EventDetail { event, transitions }))
}

pub async fn ack_event(
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
) -> Result<Json<EventRow>, ApiError> {
    let event = state
        .store
        .ack_event(id, "admin".into())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no event {id}")))?;
    Ok(Json(event))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ResolveRequest {
    pub reason: String,
}

pub async fn resolve_event(
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
    Json(request): Json<ResolveRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if request.reason.trim().is_empty() {
        return Err(ApiError::BadRequest("a reason is required".into()));
    }
    let before = state
        .store
        .resolve_event(id, request.reason, "admin".into())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no event {id}")))?;
    if before.state == "resolved" {
        return Err(ApiError::Conflict(format!(
            "event {id} is already resolved"
        )));
    }
    if let Some(events) = state.events.get() {
        events.forget(&before).await;
    }
    Ok(Json(serde_json::json!({ "resolved": id })))
}

/// `silence add`: exactly one of `ci`, `service`, `selector`; a one-off silence has
/// `duration_secs` (from now) and a maintenance window has `recurrence`.
#[derive(Debug, Serialize, Deserialize)]
pub struct AddSilence {
    #[serde(default)]
    pub ci: Option<String>,
    #[serde(default)]
    pub service: Option<String>,
    /// `class=server,tag=prod,instance=/var*` (see `rules::Selector::parse`).
    #[serde(default)]
    pub selector: Option<String>,
    #[serde(default)]
    pub duration_secs: Option<u64>,
    #[serde(default)]
    pub recurrence: Option<String>,
    pub reason: String,
}

/// The longest one-off silence: a forgotten silence must not hide problems for ever.
const MAX_SILENCE_SECS: u64 = 90 * 86_400;

pub async fn add_silence(
    State(state): State<Arc<AppState>>,
    Json(request): Json<AddSilence>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let matcher = match (&request.ci, &request.service, &request.selector) {
        (Some(ci), None, None) => serde_json::json!({ "ci": ci }),
        (None, Some(service), None) => serde_json::json!({ "service": service }),
        (None, None, Some(selector)) => {
            let parsed = crate::rules::Selector::parse(selector).map_err(ApiError::BadRequest)?;
            serde_json::json!({ "selector": parsed.to_string() })
        }
        _ => {
            return Err(ApiError::BadRequest(
                "give exactly one of --ci, --service or --selector".into(),
            ));
        }
    };
    if request.reason.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "a reason is required (--reason)".into(),
        ));
    }
    let now = crate::now_ms();
    let (kind, starts_at, ends_at, recurrence) = match (request.duration_secs, &request.recurrence)
    {
        (Some(secs), None) => {
            if secs == 0 || secs > MAX_SILENCE_SECS {
                return Err(ApiError::BadRequest(format!(
                    "the duration must be between 1 s and {} days",
                    MAX_SILENCE_SECS / 86_400
                )));
            }
            let ms = i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
            (
                "silence",
                Some(now),
                Some(now.saturating_add(ms)),
                String::new(),
            )
        }
        (None, Some(_)) if request.selector.is_some() => {
            return Err(ApiError::BadRequest(
                "a maintenance window applies to a CI or a service (--ci, --service), not a selector"
                    .into(),
            ));
        }
        (None, Some(recurrence)) => {
            crate::events::check_recurrence(recurrence).map_err(ApiError::BadRequest)?;
            ("window", None, None, recurrence.clone())
        }
        _ => {
            return Err(ApiError::BadRequest(
                "give either --duration (a silence from now) or --every (a recurring maintenance window)"
                    .into(),
            ));
        }
    };
    let id = state
        .store
        .add_silence(SilenceRow {
            id: 0,
            kind: kind.into(),
            matcher,
            starts_at,
            ends_at,
            recurrence,
            reason: request.reason,
            created_by: "admin".into(),
            created_at: now,
            removed_at: None,
        })
        .await?;
    if let Some(events) = state.events.get() {
        events.silences_changed().await;
    }
    Ok(Json(serde_json::json!({ "id": id })))
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SilenceQuery {
    #[serde(default)]
    pub all: bool,
}

pub async fn list_silences(
    State(state): State<Arc<AppState>>,
    Query(query): Query<SilenceQuery>,
) -> Result<Json<Vec<SilenceRow>>, ApiError> {
    Ok(Json(state.store.list_silences(query.all).await?))
}

pub async fn remove_silence(
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if !state.store.remove_silence(id).await? {
        return Err(ApiError::NotFound(format!("no active silence {id}")));
    }
    if let Some(events) = state.events.get() {
        events.silences_changed().await;
    }
    Ok(Json(serde_json::json!({ "removed": id })))
}

pub async fn list_rules(
    State(state): State<Arc<AppState>>,
) -> Result<Json<Vec<crate::events::RuleSummary>>, ApiError> {
    let events = state
        .events
        .get()
        .ok_or_else(|| ApiError::Unavailable("the rules engine is not running".into()))?;
    Ok(Json(events.rules()))
}

pub async fn reload_rules(
    State(state): State<Arc<AppState>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let events = state
        .events
        .get()
        .ok_or_else(|| ApiError::Unavailable("the rules engine is not running".into()))?;
    let count = events.reload_file().await.map_err(|e| {
        ApiError::Unprocessable(format!("rules not reloaded, the running rules stay: {e:#}"))
    })?;
    Ok(Json(serde_json::json!({ "rules": count })))
}
