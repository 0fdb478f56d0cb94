//! Enrollment: `GET /v1/enroll/ca` hands out the CA certificate (agents check it against the
//! fingerprint they were given); `POST /v1/enroll` trades a token and a CSR for a certificate.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use steward_agent::enroll::{EnrollRequest, EnrollResponse};

use super::{ApiError, AppState};
use crate::store::{EnrollError, NewAgent};

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
    let signer = state.clone();
    let csr = request.csr_pem.clone();
    let token_hash = crate::sha256_hex(request.token.trim().as_bytes());
    let result = state
        .store
        .enroll_agent(token_hash, agent, move |id| {
            signer
                .ca
                .sign_agent_csr(&csr, id)
                .map(|signed| (signed.cert_pem, signed.serial))
                .map_err(|e| e.to_string())
        })
        .await;
    match result {
        Ok(certificate_pem) => {
            tracing::info!(agent_id, hostname = request.hostname, "agent enrolled");
            Ok(Json(EnrollResponse {
                agent_id,
                certificate_pem,
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
