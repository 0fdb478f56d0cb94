//! `POST /v1/reports`: decode, check the sender, store, acknowledge after the commit.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::IntoResponse;
use serde::Serialize;
use steward_shared::{Envelope, v1};

use super::{ApiError, AppState, PeerIdentity};
use crate::store::{IngestOutcome, IngestRejection, InventoryRecord, ReportContent, ReportRecord};

#[derive(Debug, Serialize)]
pub struct Ack {
    pub seq: u64,
    pub status: &'static str,
    /// Asks the agent for its full inventory: it sent an "unchanged" marker for content this
    /// collector does not have (a new collector, a restored database).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub send_full_inventory: bool,
}

pub async fn report(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<PeerIdentity>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let Some(agent_id) = peer.agent_id else {
        return Err(ApiError::Unauthorized(
            "reports require the agent's client certificate".into(),
        ));
    };
    if let Some(content_type) = headers.get(header::CONTENT_TYPE)
        && content_type.as_bytes() != steward_shared::REPORT_CONTENT_TYPE.as_bytes()
    {
        return Err(ApiError::UnsupportedMediaType(format!(
            "content type must be {}",
            steward_shared::REPORT_CONTENT_TYPE
        )));
    }
    let limit = state.config.ingest.max_report_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(ApiError::TooLarge { limit });
    }
    // Reserve room for the body before reading it, and hold it until the report is stored: the
    // bytes in memory stay bounded however many agents send at once.
    let kib = u32::try_from(declared.unwrap_or(limit).div_ceil(1024).max(1)).unwrap_or(u32::MAX);
    let _reserved = state
        .inflight_kib
        .clone()
        .try_acquire_many_owned(kib)
        .map_err(|_| ApiError::Overloaded {
            retry_after_secs: 1,
        })?;
    let bytes = super::read_body(&state, body, limit).await?;
    // Every decode error, an unknown protocol version included, is the client's: 400 with the
    // reason, which the agent logs once.
    let (record, observed) =
        decode_report(&bytes, state.events.get().is_some()).map_err(|error| {
            tracing::warn!(agent_id, remote = ?peer.remote, %error, bytes = bytes.len(), "rejected a report");
            ApiError::BadRequest(error)
        })?;
    if record.agent_id != agent_id {
        return Err(ApiError::Forbidden(format!(
            "report claims to be from agent {} but the client certificate is agent {agent_id}",
            record.agent_id
        )));
    }
    let seq = record.seq;
    let outcome = state
        .store
        .ingest(record)
        .await
        .map_err(|rejection| match rejection {
            IngestRejection::UnknownAgent(_) | IngestRejection::Revoked(_) => {
                ApiError::Forbidden(rejection.to_string())
            }
            IngestRejection::Store(error) => ApiError::from(error),
        })?;
    let (status, send_full_inventory) = match outcome {
        IngestOutcome::Stored {
            inventory_wanted,
            ci_id,
        } => {
            if let Some(events) = state.events.get() {
                match observed {
                    Observed::Metrics(samples, interval) => {
                        events.metrics(ci_id, samples, interval);
                    }
                    Observed::Software(names) => events.software(ci_id, names),
                    Observed::Nothing => {}
                }
            }
            ("stored", inventory_wanted)
        }
        IngestOutcome::Duplicate => ("duplicate", false),
    };
    Ok(Json(Ack {
        seq,
        status,
        send_full_inventory,
    }))
}

/// Every `/v1/reports` answer, errors included, says which protocol version this collector
/// speaks at most, so a newer agent can fall back (see shared/PROTOCOL.md).
pub async fn protocol_header(mut response: axum::response::Response) -> axum::response::Response {
    response.headers_mut().insert(
        steward_shared::PROTOCOL_MAX_HEADER,
        HeaderValue::from(steward_shared::PROTOCOL_VERSION_MAX),
    );
    response
}

/// What the rules engine observes of one report.
#[derive(Debug)]
pub enum Observed {
    Metrics(Vec<crate::rules::Sample>, u32),
    Software(Vec<String>),
    Nothing,
}

fn observed(envelope: &Envelope) -> Observed {
    match envelope {
        Envelope::V1(v1::Envelope {
            payload: v1::Payload::Metrics(report),
            ..
        }) => Observed::Metrics(
            crate::events::observe::from_metrics(&report.metrics),
            report.metrics.interval_secs,
        ),
        Envelope::V1(v1::Envelope {
            payload: v1::Payload::Inventory(report),
            ..
        }) => match &report.content {
            Some(inventory) => {
                Observed::Software(inventory.software.iter().map(|p| p.name.clone()).collect())
            }
            None => Observed::Nothing,
        },
    }
}

/// Decodes a report body into what the store keeps and (with `observe`, when the rules engine
/// runs) what the rules engine will see, checking its sizes. Pure: no I/O, so the fuzz target
/// `ingest` drives exactly what the handler runs before the store.
pub fn decode_report(bytes: &[u8], observe: bool) -> Result<(ReportRecord, Observed), String> {
    let envelope = steward_shared::decode(bytes).map_err(|error| error.to_string())?;
    // Taken before the payload moves into the record (and only when the engine runs: with
    // `[rules] enabled = false` ingest does none of this work).
    let observed = if observe {
        observed(&envelope)
    } else {
        Observed::Nothing
    };
    Ok((record(envelope)?, observed))
}

/// Turns a decoded envelope into what the store keeps: identity for the CI, the payload
/// re-encoded on its own for history.
fn record(envelope: Envelope) -> Result<ReportRecord, String> {
    match envelope {
        Envelope::V1(v1::Envelope {
            agent_id,
            seq,
            payload: v1::Payload::Metrics(report),
            ..
        }) => {
            let body = postcard::to_stdvec(&report)
                .map_err(|error| format!("cannot re-encode the report: {error}"))?;
            Ok(ReportRecord {
                agent_id,
                seq,
                version: 1,
                collected_at: report.metrics.collected_at_ms,
                host: report.host,
                content: ReportContent::Metrics(body),
            })
        }
        Envelope::V1(v1::Envelope {
            agent_id,
            seq,
            payload: v1::Payload::Inventory(report),
            ..
        }) => {
            if let Some(inventory) = &report.content {
                check_inventory(inventory)?;
            }
            Ok(ReportRecord {
                agent_id,
                seq,
                version: 1,
                collected_at: report.collected_at_ms,
                host: report.host,
                content: ReportContent::Inventory(InventoryRecord {
                    content_hash: report.content_hash,
                    inventory: report.content.map(Box::new),
                }),
            })
        }
    }
}

/// Most records of each kind one inventory may hold: far above any real host, low enough that
/// a broken or hostile agent cannot make the collector store millions of rows for one CI.
const MAX_PACKAGES: usize = 100_000;
const MAX_HARDWARE_ITEMS: usize = 4_096;
const MAX_SOURCES: usize = 256;

fn check_inventory(inventory: &v1::Inventory) -> Result<(), String> {
    let hardware = &inventory.hardware;
    let counts = [
        ("software packages", inventory.software.len(), MAX_PACKAGES),
        ("sources", inventory.sources.len(), MAX_SOURCES),
        ("disks", hardware.disks.len(), MAX_HARDWARE_ITEMS),
        (
            "network interfaces",
            hardware.nics.len(),
            MAX_HARDWARE_ITEMS,
        ),
        (
            "memory modules",
            hardware.memory.dimms.len(),
            MAX_HARDWARE_ITEMS,
        ),
    ];
    for (what, count, max) in counts {
        if count > max {
            return Err(format!(
                "inventory has {count} {what}; at most {max} are accepted"
            ));
        }
    }
    Ok(())
}
