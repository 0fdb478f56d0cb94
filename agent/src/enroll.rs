//! Enrollment: pin the collector CA by its fingerprint, then trade a one-time token and a
//! certificate signing request for this agent's own certificate. The private key never leaves
//! the host, and the token is only ever sent over TLS verified against the pinned CA.

use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};

use crate::state::{Enrolled, Identity, StateDir};
use crate::transport::{ErrorBody, describe};

/// What the agent sends to `POST /v1/enroll`.
#[derive(Debug, Serialize, Deserialize)]
pub struct EnrollRequest {
    pub token: String,
    pub csr_pem: String,
    pub hostname: String,
    pub machine_id: String,
}

/// What the collector answers.
#[derive(Debug, Serialize, Deserialize)]
pub struct EnrollResponse {
    pub agent_id: String,
    pub certificate_pem: String,
}

/// Enrolls this agent with the collector at `collector_url` and stores its identity in `state`.
pub async fn enroll(
    collector_url: &str,
    token: &str,
    ca_fingerprint: &str,
    state: &StateDir,
    host: &steward_shared::v1::HostIdentity,
) -> Result<Identity> {
    crate::install_crypto_provider();
    let pinned = crate::normalize_fingerprint(ca_fingerprint).with_context(|| {
        format!("--ca-fingerprint: expected sha256:<64 hex digits>, got {ca_fingerprint:?}")
    })?;
    let base = collector_url.trim_end_matches('/').to_string();
    if !base.starts_with("https://") {
        bail!("--collector: {collector_url:?} must be an https:// URL");
    }

    // The CA certificate is public; it is fetched without verification and then trusted only
    // if its hash is the fingerprint the administrator gave us.
    let bootstrap = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the HTTPS client")?;
    let ca_pem = bootstrap
        .get(format!("{base}/v1/enroll/ca"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|error| {
            anyhow::anyhow!(
                "cannot fetch the collector CA from {base}: {}",
                describe(&error)
            )
        })?
        .text()
        .await
        .context("cannot read the collector CA")?;
    let ca_der = CertificateDer::from_pem_slice(ca_pem.as_bytes())
        .context("the collector sent an invalid CA certificate")?;
    let presented = crate::fingerprint(&ca_der);
    if presented != pinned {
        bail!(
            "collector CA fingerprint mismatch: expected {pinned}, the collector presented {presented}; refusing to enroll"
        );
    }

    let key = rcgen::KeyPair::generate().context("cannot generate the agent key")?;
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, host.hostname.clone());
    let csr = params
        .serialize_request(&key)
        .context("cannot create the certificate request")?;
    let csr_pem = csr.pem().context("cannot encode the certificate request")?;

    let client = crate::transport::pinned_client(ca_pem.as_bytes(), Duration::from_secs(30))?;
    let request = EnrollRequest {
        token: token.trim().to_string(),
        csr_pem,
        hostname: host.hostname.clone(),
        machine_id: host.machine_id.clone(),
    };
    let response = client
        .post(format!("{base}/v1/enroll"))
        .json(&request)
        .send()
        .await
        .map_err(|error| {
            anyhow::anyhow!("enrollment request to {base} failed: {}", describe(&error))
        })?;
    let status = response.status();
    if !status.is_success() {
        let reason = response
            .json::<ErrorBody>()
            .await
            .map(|b| b.error)
            .unwrap_or_else(|_| status.to_string());
        bail!("the collector refused enrollment ({status}): {reason}");
    }
    let answer: EnrollResponse = response
        .json()
        .await
        .context("invalid enrollment response")?;
    let identity = Identity {
        agent_id: answer.agent_id,
        collector_url: base,
        ca_fingerprint: pinned,
        enrolled_at_ms: crate::metrics::unix_ms(SystemTime::now()),
    };
    state.save(&Enrolled {
        identity: identity.clone(),
        key_pem: key.serialize_pem(),
        cert_pem: answer.certificate_pem,
        ca_pem,
    })?;
    Ok(identity)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::normalize_fingerprint;

    #[test]
    fn fingerprints_are_normalised() {
        let hex = "AB".repeat(32);
        let want = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            normalize_fingerprint(&format!("sha256:{hex}")).unwrap(),
            want
        );
        assert_eq!(normalize_fingerprint(&hex).unwrap(), want);
        let colons: Vec<String> = (0..32).map(|_| "AB".to_string()).collect();
        assert_eq!(normalize_fingerprint(&colons.join(":")).unwrap(), want);
        assert_eq!(normalize_fingerprint("sha256:1234"), None);
        assert_eq!(normalize_fingerprint(&"zz".repeat(32)), None);
    }
}
