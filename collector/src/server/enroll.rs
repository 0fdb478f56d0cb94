//! Enrollment: `GET /v1/enroll/ca` hands out the CA certificate (agents check it against the
//! fingerprint they were given); `POST /v1/enroll` trades a token and a CSR for a certificate;
//! `POST /v1/renew` trades an enrolled agent's valid certificate and a new CSR for a new one.

use std::sync::Arc;

use axum::Json;
use axum::extract::Extension;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use steward_agent::enroll::{EnrollRequest, EnrollResponse, RenewRequest, RenewResponse};

use super::{ApiError, AppState, PeerIdentity};
use crate::store::{EnrollError, NewAgent, RenewError};

/// Longest hostname or machine-id accepted at enrollment.
const MAX_FIELD: usize = 255;

pub async fn ca(State(state): State<Arc<AppState>>) -> String {
    state.ca.cert_pem.clone()
}

pub async fn enroll(
    State(state): State<Arc<AppState>>,
    request: Result<Json<EnrollRequest>, JsonRejection>,
) -> Result<Json<EnrollResponse>, ApiError> {
    let Json(request) = request.map_err(|rejection| {
        ApiError::BadRequest(format!(
            "invalid enrollment request: {}",
            rejection.body_text()
        ))
    })?;
    if request.hostname.len() > MAX_FIELD || request.machine_id.len() > MAX_FIELD {
        return Err(ApiError::BadRequest(format!(
            "hostname and machine_id must be at most {MAX_FIELD} bytes"
        )));
    }
    crate::pki::check_csr(&request.csr_pem).map_err(|error| {
        ApiError::BadRequest(format!("invalid certificate signing request: {error}"))
    })?;
    let agent_id = format!(
        "a-{}",
        hex::encode(crate::random_bytes::<8>().map_err(|e| ApiError::Unavailable(e.to_string()))?)
    );
    let agent = NewAgent {
        id: agent_id.clone(),
        hostname: request.hostname.clone(),
        machine_id: request.machine_id.clone(),
    };
    let validity = state
        .config
        .agents
        .cert_validity()
        .map_err(ApiError::Unavailable)?;
    let signer = state.clone();
    let csr = request.csr_pem.clone();
    let token_hash = crate::sha256_hex(request.token.trim().as_bytes());
    let result = state
        .store
        .enroll_agent(token_hash, agent, move |id| {
            signer
                .ca
                .sign_agent_csr(&csr, id, validity)
                .map(|signed| (signed.cert_pem, signed.serial, signed.not_after_ms))
                .map_err(|e| e.to_string())
        })
        .await;
    match result {
        Ok((certificate_pem, not_after_ms)) => {
            tracing::info!(agent_id, hostname = request.hostname, "agent enrolled");
            Ok(Json(EnrollResponse {
                agent_id,
                certificate_pem,
                not_after_ms: Some(not_after_ms),
            }))
        }
        Err(error) => {
            tracing::warn!(hostname = request.hostname, %error, "enrollment refused");
            Err(match error {
                EnrollError::UnknownToken => ApiError::Unauthorized(error.to_string()),
                EnrollError::Expired | EnrollError::UsedUp => {
                    ApiError::Forbidden(error.to_string())
                }
                EnrollError::Signing(_) => ApiError::BadRequest(error.to_string()),
                EnrollError::Store(store) => ApiError::from(store),
            })
        }
    }
}

/// `POST /v1/renew`: an enrolled, unrevoked agent, authenticated by its current certificate,
/// gets a new certificate for the new key in its CSR.
pub async fn renew(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<PeerIdentity>,
    request: Result<Json<RenewRequest>, JsonRejection>,
) -> Result<Json<RenewResponse>, ApiError> {
    let (Some(agent_id), Some(serial)) = (peer.agent_id, peer.cert_serial) else {
        return Err(ApiError::Unauthorized(
            "renewal requires the agent's current client certificate".into(),
        ));
    };
    let Json(request) = request.map_err(|rejection| {
        ApiError::BadRequest(format!(
            "invalid renewal request: {}",
            rejection.body_text()
        ))
    })?;
    crate::pki::check_csr(&request.csr_pem).map_err(|error| {
        ApiError::BadRequest(format!("invalid certificate signing request: {error}"))
    })?;
    let validity = state
        .config
        .agents
        .cert_validity()
        .map_err(ApiError::Unavailable)?;
    let signer = state.clone();
    let id = agent_id.clone();
    let result = state
        .store
        .renew_agent(agent_id.clone(), serial, move || {
            signer
                .ca
                .sign_agent_csr(&request.csr_pem, &id, validity)
                .map(|signed| (signed.cert_pem, signed.serial, signed.not_after_ms))
                .map_err(|e| e.to_string())
        })
        .await;
    match result {
        Ok((certificate_pem, not_after_ms)) => {
            tracing::info!(
                agent_id,
                expires = crate::format_ms(Some(not_after_ms)),
                "agent certificate renewed"
            );
            Ok(Json(RenewResponse {
                certificate_pem,
                not_after_ms,
            }))
        }
        Err(error) => {
            tracing::warn!(agent_id, %error, "certificate renewal refused");
            Err(match error {
                RenewError::UnknownAgent(_)
                | RenewError::Revoked(_)
                | RenewError::Superseded(_) => ApiError::Forbidden(error.to_string()),
                RenewError::Signing(_) => ApiError::BadRequest(error.to_string()),
                RenewError::Store(store) => ApiError::from(store),
            })
        }
    }
}
