//! Certificate renewal: an agent replaces its certificate (and key) before it expires, once
//! two thirds of its life have passed, authenticated by the certificate it still has. A revoked
//! agent is refused and must be enrolled again with a new token.

use std::time::SystemTime;

use anyhow::{Context, Result};

use crate::state::{Identity, StateDir};
use crate::transport::{SendError, Transport};

/// Whether the certificate is due for renewal at `now_ms`. An agent enrolled before renewal
/// existed does not know its certificate's dates: it renews once to learn them.
pub fn due(identity: &Identity, now_ms: i64) -> bool {
    match (identity.cert_issued_ms, identity.cert_not_after_ms) {
        (Some(issued), Some(not_after)) => now_ms >= issued + (not_after - issued) / 3 * 2,
        _ => true,
    }
}

/// Renews: a new key, a CSR for it, the collector's certificate; both stored in the state
/// directory (see [`StateDir::save_renewal`]). Returns the new identity.
pub async fn renew(state: &StateDir, transport: &Transport) -> Result<Identity, RenewFailure> {
    let key = rcgen::KeyPair::generate()
        .context("cannot generate a new agent key")
        .map_err(RenewFailure::Local)?;
    let csr_pem = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .and_then(|csr| csr.pem())
        .context("cannot create the certificate request")
        .map_err(RenewFailure::Local)?;
    let answer = transport
        .renew(csr_pem)
        .await
        .map_err(RenewFailure::Collector)?;
    let issued = crate::metrics::unix_ms(SystemTime::now());
    state
        .save_renewal(
            &key.serialize_pem(),
            &answer.certificate_pem,
            issued,
            answer.not_after_ms,
        )
        .map_err(RenewFailure::Local)
}

#[derive(Debug, thiserror::Error)]
pub enum RenewFailure {
    #[error("{0}")]
    Collector(SendError),
    #[error("{0:#}")]
    Local(anyhow::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(issued: Option<i64>, not_after: Option<i64>) -> Identity {
        Identity {
            agent_id: "a-1".into(),
            collector_url: "https://127.0.0.1:1".into(),
            ca_fingerprint: String::new(),
            enrolled_at_ms: 0,
            cert_issued_ms: issued,
            cert_not_after_ms: not_after,
        }
    }

    #[test]
    fn renewal_is_due_after_two_thirds_of_the_life_or_when_the_dates_are_unknown() {
        let day = 86_400_000;
        let cert = identity(Some(0), Some(300 * day));
        assert!(!due(&cert, 0));
        assert!(!due(&cert, 199 * day));
        assert!(due(&cert, 200 * day));
        assert!(due(&cert, 400 * day), "expired: still try");
        assert!(due(&identity(None, None), 0));
    }
}
