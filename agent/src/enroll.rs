//! Enrollment: pin the collector CA by its fingerprint, then trade a one-time token and a
//! certificate signing request for this agent's own certificate. The private key never leaves
//! the host, and the token is only ever sent over TLS verified against the pinned CA.

use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
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
    /// When the certificate expires (Unix ms); collectors before renewal did not say.
    #[serde(default)]
    pub not_after_ms: Option<i64>,
}

/// What the agent sends to `POST /v1/renew`, authenticated by its current certificate.
#[derive(Debug, Serialize, Deserialize)]
pub struct RenewRequest {
    pub csr_pem: String,
}

/// The new certificate for the CSR's key.
#[derive(Debug, Serialize, Deserialize)]
pub struct RenewResponse {
    pub certificate_pem: String,
    pub not_after_ms: i64,
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
    let ca_pem = pinned_ca(&ca_pem, &pinned)?;

    // The key is written before the token is spent: a state directory that cannot be written
    // fails here, not after the collector has used up the token.
    let key = rcgen::KeyPair::generate().context("cannot generate the agent key")?;
    state.save_key(&key.serialize_pem())?;
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
    let now = crate::metrics::unix_ms(SystemTime::now());
    let identity = Identity {
        agent_id: answer.agent_id,
        collector_url: base,
        ca_fingerprint: pinned,
        enrolled_at_ms: now,
        cert_issued_ms: answer.not_after_ms.map(|_| now),
        cert_not_after_ms: answer.not_after_ms,
    };
    state.save(&Enrolled {
        identity: identity.clone(),
        key_pem: key.serialize_pem(),
        cert_pem: answer.certificate_pem,
        ca_pem,
    })?;
    Ok(identity)
}

/// Accepts the collector's CA only if the PEM holds exactly one certificate and that
/// certificate has the pinned fingerprint; returns it re-encoded, so nothing else that came
/// with it (an extra certificate an attacker appended) is ever trusted or stored.
pub fn pinned_ca(pem_text: &str, pinned: &str) -> Result<String> {
    let blocks =
        pem::parse_many(pem_text).context("the collector sent an invalid CA certificate")?;
    let [block] = blocks.as_slice() else {
        bail!(
            "the collector sent {} PEM blocks where its one CA certificate belongs; refusing to enroll",
            blocks.len()
        );
    };
    if block.tag() != "CERTIFICATE" {
        bail!(
            "the collector sent a {} where its CA certificate belongs; refusing to enroll",
            block.tag()
        );
    }
    let presented = crate::fingerprint(block.contents());
    if presented != pinned {
        bail!(
            "collector CA fingerprint mismatch: expected {pinned}, the collector presented {presented}; refusing to enroll"
        );
    }
    Ok(pem::encode(&pem::Pem::new(
        "CERTIFICATE",
        block.contents().to_vec(),
    )))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::normalize_fingerprint;

    fn ca(name: &str) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem()
    }

    fn fingerprint_of(pem_text: &str) -> String {
        crate::fingerprint(pem::parse(pem_text).unwrap().contents())
    }

    #[test]
    fn the_pinned_ca_is_accepted_alone() {
        let real = ca("real");
        let pinned = fingerprint_of(&real);
        let kept = super::pinned_ca(&real, &pinned).unwrap();
        assert_eq!(fingerprint_of(&kept), pinned);
    }

    #[test]
    fn regression_an_extra_certificate_after_the_pinned_ca_is_refused() {
        // An attacker appended their own CA after the real one, whose fingerprint matched:
        // the whole bundle used to be trusted, so the token went to the attacker.
        let real = ca("real");
        let pinned = fingerprint_of(&real);
        let bundle = format!("{real}{}", ca("attacker"));
        let error = super::pinned_ca(&bundle, &pinned).unwrap_err().to_string();
        assert!(error.contains("2 PEM blocks"), "{error}");
        let error = super::pinned_ca(&ca("other"), &pinned)
            .unwrap_err()
            .to_string();
        assert!(error.contains("fingerprint mismatch"), "{error}");
    }

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
