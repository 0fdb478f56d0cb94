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
use crate::store::{
    IngestOutcome, IngestRejection, InventoryRecord, ReportContent, ReportRecord, SpoolStats,
};

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
    let (mut record, observed) =
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
    record.spool = spool_stats(&headers).map_err(ApiError::BadRequest)?;
    record.cert_serial = peer.cert_serial.clone();
    // A report delivered late from the agent's spool is history: it is stored, but the rules
    // engine judges the present, so old samples do not raise (or clear) events now.
    let observed = match observed {
        Observed::Metrics(_, interval) if !is_current(record.collected_at, interval) => {
            Observed::Nothing
        }
        Observed::Software(_) if !is_current(record.collected_at, 0) => Observed::Nothing,
        current => current,
    };
    let outcome = state
        .store
        .ingest(record)
        .await
        .map_err(|rejection| match rejection {
            IngestRejection::UnknownAgent(_)
            | IngestRejection::Revoked(_)
            | IngestRejection::Superseded(_) => ApiError::Forbidden(rejection.to_string()),
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

/// Reports made longer ago than this (delivered from an agent's spool after an outage) are
/// stored but not fed to the rules engine.
const CURRENT_FOR_MS: i64 = 120_000;

fn is_current(collected_at: i64, interval_secs: u32) -> bool {
    crate::now_ms() - collected_at <= CURRENT_FOR_MS.max(3_000 * i64::from(interval_secs))
}

/// The spool figures an agent sends in headers (`x-steward-spool-*`), if it sent them. A
/// header that is there but not a non-negative number is refused, naming it.
fn spool_stats(headers: &HeaderMap) -> Result<Option<SpoolStats>, String> {
    let number = |name: &str| -> Result<Option<i64>, String> {
        match headers.get(name) {
            None => Ok(None),
            Some(value) => value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|v| *v >= 0)
                .map(Some)
                .ok_or_else(|| format!("header {name} must be a non-negative integer")),
        }
    };
    let backlog = number(steward_shared::SPOOL_BACKLOG_HEADER)?;
    let bytes = number(steward_shared::SPOOL_BYTES_HEADER)?;
    let oldest_at = number(steward_shared::SPOOL_OLDEST_HEADER)?;
    let dropped = number(steward_shared::SPOOL_DROPPED_HEADER)?;
    if backlog.is_none() && bytes.is_none() && oldest_at.is_none() && dropped.is_none() {
        return Ok(None);
    }
    Ok(Some(SpoolStats {
        backlog: backlog.unwrap_or(0),
        bytes: bytes.unwrap_or(0),
        oldest_at,
        dropped: dropped.unwrap_or(0),
    }))
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
            check_metrics(&report.metrics)?;
            let body = postcard::to_stdvec(&report)
                .map_err(|error| format!("cannot re-encode the report: {error}"))?;
            Ok(ReportRecord {
                agent_id,
                seq,
                version: 1,
                collected_at: report.metrics.collected_at_ms,
                host: report.host,
                content: ReportContent::Metrics(body),
                spool: None,
                cert_serial: None,
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
                spool: None,
                cert_serial: None,
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
        ("virtual guests", inventory.guests.len(), MAX_HARDWARE_ITEMS),
    ];
    check_counts("inventory", &counts)
}

/// Most instances of each kind one metrics report may hold: each becomes a series in the rules
/// engine, so a broken or hostile agent cannot make it track millions.
const MAX_METRIC_INSTANCES: usize = 4_096;

fn check_metrics(metrics: &v1::Metrics) -> Result<(), String> {
    check_counts(
        "metrics report",
        &[
            (
                "filesystems",
                metrics.filesystems.len(),
                MAX_METRIC_INSTANCES,
            ),
            ("disks", metrics.disks.len(), MAX_METRIC_INSTANCES),
            (
                "network interfaces",
                metrics.networks.len(),
                MAX_METRIC_INSTANCES,
            ),
            (
                "CPU cores",
                metrics.cpu.per_core_pct.len(),
                MAX_METRIC_INSTANCES,
            ),
        ],
    )
}

fn check_counts(report: &str, counts: &[(&str, usize, usize)]) -> Result<(), String> {
    for &(what, count, max) in counts {
        if count > max {
            return Err(format!(
                "{report} has {count} {what}; at most {max} are accepted"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn encoded(payload: v1::Payload) -> Vec<u8> {
        steward_shared::encode_v1(&v1::Envelope {
            agent_id: "a-1".into(),
            seq: 1,
            sent_at_ms: 0,
            payload,
        })
        .unwrap()
    }

    #[test]
    fn absurd_instance_counts_are_refused_naming_what_and_the_limit() {
        let mut report = v1::MetricsReport {
            host: v1::HostIdentity::default(),
            metrics: v1::Metrics::default(),
        };
        report.metrics.filesystems = vec![v1::Filesystem::default(); MAX_METRIC_INSTANCES + 1];
        let error = decode_report(&encoded(v1::Payload::Metrics(report)), true).unwrap_err();
        assert_eq!(
            error,
            "metrics report has 4097 filesystems; at most 4096 are accepted"
        );
        let inventory = v1::Inventory {
            guests: vec![v1::VirtualGuest::default(); MAX_HARDWARE_ITEMS + 1],
            ..Default::default()
        };
        let report = v1::InventoryReport {
            host: v1::HostIdentity::default(),
            collected_at_ms: 0,
            content_hash: String::new(),
            content: Some(inventory),
        };
        let error = decode_report(&encoded(v1::Payload::Inventory(report)), true).unwrap_err();
        assert!(error.contains("4097 virtual guests"), "{error}");
    }

    #[test]
    fn spool_headers_are_optional_and_a_bad_one_is_named() {
        let mut headers = HeaderMap::new();
        assert_eq!(spool_stats(&headers), Ok(None));
        headers.insert(steward_shared::SPOOL_BACKLOG_HEADER, HeaderValue::from(12));
        headers.insert(steward_shared::SPOOL_DROPPED_HEADER, HeaderValue::from(3));
        assert_eq!(
            spool_stats(&headers),
            Ok(Some(SpoolStats {
                backlog: 12,
                bytes: 0,
                oldest_at: None,
                dropped: 3
            }))
        );
        headers.insert(
            steward_shared::SPOOL_OLDEST_HEADER,
            HeaderValue::from_static("-5"),
        );
        let error = spool_stats(&headers).unwrap_err();
        assert!(error.contains("x-steward-spool-oldest-ms"), "{error}");
    }

    #[test]
    fn reports_made_long_ago_are_not_current() {
        let now = crate::now_ms();
        assert!(is_current(now - 1_000, 10));
        assert!(!is_current(now - 600_000, 10));
        // An agent reporting every 5 minutes: three intervals.
        assert!(is_current(now - 600_000, 300));
    }
}
