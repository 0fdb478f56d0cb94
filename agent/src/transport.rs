//! HTTPS to the collector with rustls (ring): the collector CA pinned at enrollment is the only
//! trust root, and the agent authenticates with its own client certificate.

use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::state::Enrolled;

/// How the collector acknowledged a report.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Ack {
    pub seq: u64,
    /// `stored`, or `duplicate` when this (agent, seq) was already stored.
    pub status: String,
    /// The collector does not have the inventory an "unchanged" marker referred to: send the
    /// full inventory.
    #[serde(default)]
    pub send_full_inventory: bool,
}

/// Why a report was not acknowledged. The caller decides what to retry by the variant.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// Network trouble or a collector error (5xx): the same report may be sent again.
    #[error("collector unreachable or failing: {0}")]
    Retryable(String),
    /// The collector refused this report (4xx); sending it again would fail the same way.
    #[error("collector rejected the report ({status}): {message}")]
    Rejected { status: u16, message: String },
}

/// The JSON error body every collector endpoint answers with.
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

#[derive(Debug, Clone)]
pub struct Transport {
    client: reqwest::Client,
    reports_url: String,
    renew_url: String,
}

impl Transport {
    pub fn new(enrolled: &Enrolled, timeout: Duration) -> Result<Transport> {
        crate::install_crypto_provider();
        let ca = reqwest::Certificate::from_pem(enrolled.ca_pem.as_bytes())
            .context("invalid pinned collector CA")?;
        let mut identity_pem = enrolled.cert_pem.clone().into_bytes();
        identity_pem.extend_from_slice(enrolled.key_pem.as_bytes());
        let identity = reqwest::Identity::from_pem(&identity_pem)
            .context("invalid agent key or certificate")?;
        let client = reqwest::Client::builder()
            .tls_certs_only([ca])
            .identity(identity)
            .https_only(true)
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(1)
            .user_agent(concat!("steward-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTPS client")?;
        let base = enrolled.identity.collector_url.trim_end_matches('/');
        Ok(Transport {
            client,
            reports_url: format!("{base}/v1/reports"),
            renew_url: format!("{base}/v1/renew"),
        })
    }

    /// Sends one encoded report and waits for the acknowledgement, which the collector gives only
    /// once the report is durably stored.
    pub async fn send(&self, body: Vec<u8>) -> Result<Ack, SendError> {
        self.send_report(body, None)
            .await
            .map_err(|failed| failed.error)
    }

    /// [`send`](Self::send) with the spool's figures in headers (so the collector can show an
    /// agent's backlog and drops), and the collector's `Retry-After` on a refusal.
    pub async fn send_report(
        &self,
        body: Vec<u8>,
        spool: Option<crate::spool::Stats>,
    ) -> Result<Ack, Failed> {
        let mut request = self
            .client
            .post(&self.reports_url)
            .header(
                reqwest::header::CONTENT_TYPE,
                steward_shared::REPORT_CONTENT_TYPE,
            )
            .body(body);
        if let Some(stats) = spool {
            request = request
                .header(steward_shared::SPOOL_BACKLOG_HEADER, stats.backlog)
                .header(steward_shared::SPOOL_BYTES_HEADER, stats.bytes)
                .header(steward_shared::SPOOL_DROPPED_HEADER, stats.dropped);
            if let Some(oldest) = stats.oldest_ms {
                request = request.header(steward_shared::SPOOL_OLDEST_HEADER, oldest);
            }
        }
        let response = request.send().await.map_err(|error| Failed {
            error: SendError::Retryable(describe(&error)),
            retry_after: None,
        })?;
        let status = response.status();
        if status.is_success() {
            return response.json::<Ack>().await.map_err(|error| Failed {
                error: SendError::Retryable(describe(&error)),
                retry_after: None,
            });
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|secs| Duration::from_secs(secs.min(3600)));
        let error = refusal(response).await;
        Err(Failed { error, retry_after })
    }

    /// Asks for a new certificate for the key in `csr_pem`, authenticated by the current one.
    pub async fn renew(&self, csr_pem: String) -> Result<crate::enroll::RenewResponse, SendError> {
        let response = self
            .client
            .post(&self.renew_url)
            .json(&crate::enroll::RenewRequest { csr_pem })
            .send()
            .await
            .map_err(|error| SendError::Retryable(describe(&error)))?;
        if response.status().is_success() {
            return response
                .json()
                .await
                .map_err(|error| SendError::Retryable(describe(&error)));
        }
        Err(refusal(response).await)
    }
}

/// A collector's refusal, with the reason from its JSON error body: 5xx, 429 and 408 may be
/// tried again, any other status would fail the same way.
async fn refusal(response: reqwest::Response) -> SendError {
    let status = response.status();
    let message = match response.json::<ErrorBody>().await {
        Ok(body) => body.error,
        Err(_) => status
            .canonical_reason()
            .unwrap_or("no reason given")
            .to_string(),
    };
    if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        SendError::Retryable(format!("{status}: {message}"))
    } else {
        SendError::Rejected {
            status: status.as_u16(),
            message,
        }
    }
}

impl SendError {
    /// A refusal of this report's content (malformed, too large, unprocessable), which no
    /// retry can fix. Other refusals (401, 403, 404: the agent's standing or the endpoint) say
    /// nothing against the report, which is kept.
    pub fn refuses_the_report(&self) -> bool {
        matches!(
            self,
            SendError::Rejected {
                status: 400 | 413 | 415 | 422,
                ..
            }
        )
    }
}

/// A report not acknowledged, and how long the collector asked the agent to wait.
#[derive(Debug)]
pub struct Failed {
    pub error: SendError,
    pub retry_after: Option<Duration>,
}

/// An HTTPS client that trusts only the given CA (PEM), with no client certificate: for
/// enrollment and for admin calls.
pub fn pinned_client(ca_pem: &[u8], timeout: Duration) -> Result<reqwest::Client> {
    crate::install_crypto_provider();
    let ca = reqwest::Certificate::from_pem(ca_pem).context("invalid CA certificate")?;
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .https_only(true)
        .timeout(timeout)
        .build()
        .context("cannot build the HTTPS client")
}

/// reqwest's errors hide the cause (TLS alert, refused connection) in their source chain.
pub fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
