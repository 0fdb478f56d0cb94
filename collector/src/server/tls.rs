//! TLS termination with rustls and the accept loop. The verified client certificate's Common
//! Name (the agent id this CA issued) is attached to every request of the connection.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::pki::{Ca, SERVER_CERT, SERVER_KEY};

/// Who is on the other end of a connection: the agent id from a verified client certificate,
/// or nobody (enrollment and admin clients connect without one).
#[derive(Debug, Clone, Default)]
pub struct PeerIdentity {
    pub agent_id: Option<String>,
    /// That certificate's serial (hex): after a renewal only the newest (and, until the new
    /// one is first used, the one before it) is accepted.
    pub cert_serial: Option<String>,
    pub remote: Option<std::net::SocketAddr>,
}

/// The per-connection bounds from `[ingest]`, so one slow or stuck client cannot hold a
/// connection slot for long (see `crate::config::IngestConfig` for each).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    pub header_timeout: Duration,
    pub request_timeout: Duration,
}

impl ConnectionLimits {
    pub fn from_config(ingest: &crate::config::IngestConfig) -> ConnectionLimits {
        let secs = |s: u32| Duration::from_secs(u64::from(s));
        ConnectionLimits {
            max_connections: ingest.max_connections,
            handshake_timeout: secs(ingest.handshake_timeout_secs),
            header_timeout: secs(ingest.header_timeout_secs),
            request_timeout: secs(ingest.request_timeout_secs),
        }
    }
}

pub fn server_config(data_dir: &Path, ca: &Ca) -> Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(ca.cert_der.clone())
        .context("invalid CA certificate")?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .context("cannot build the client certificate verifier")?;
    let cert_path = data_dir.join(SERVER_CERT);
    let key_path = data_dir.join(SERVER_KEY);
    let chain = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read {}", cert_path.display()))?;
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .with_context(|| format!("cannot read {}", key_path.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .context("server certificate and key do not match")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

pub async fn accept_loop(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    let limit = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => permit.context("connection limiter closed")?,
            () = &mut shutdown => break,
        };
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let stream =
                match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        tracing::debug!(%remote, %error, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%remote, "TLS handshake timed out");
                        return;
                    }
                };
            let leaf = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first());
            let peer = PeerIdentity {
                agent_id: leaf.and_then(|leaf| crate::pki::common_name(leaf)),
                cert_serial: leaf.and_then(|leaf| crate::pki::serial_hex(leaf)),
                remote: Some(remote),
            };
            let request_timeout = limits.request_timeout;
            let service =
                tower::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(peer.clone());
                    let request = request.map(axum::body::Body::new);
                    bounded(router.clone(), request, request_timeout)
                });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%remote, %error, "connection ended with an error");
            }
        });
    }
    tracing::info!("stopped accepting connections; finishing requests in flight");
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still busy after 10 s and were closed");
    }
    Ok(())
}

/// Runs one request through the router; an agent request (`/v1/...`) that is not answered
/// within `timeout`, its body and handling included, is answered 503 with Retry-After. The
/// handler is dropped, so its connection slot and memory are freed (a report whose write was
/// already queued may still be stored; its resend is then acknowledged as a duplicate). Admin
/// requests are not bounded here: discovery sweeps and imports may rightly take long, and only
/// an admin-token holder can start them.
async fn bounded(
    router: Router,
    request: axum::extract::Request,
    timeout: Duration,
) -> Result<axum::response::Response, std::convert::Infallible> {
    use axum::response::IntoResponse;
    let path = request.uri().path();
    // Enrollment is left to finish: once its write is queued the token use is spent, and an
    // agent answered 503 then could not enroll again with that token (its body is bounded by
    // `body_timeout_secs` all the same). A renewal is safe to repeat.
    if !path.starts_with("/v1/") || path == "/v1/enroll" {
        return router.oneshot(request).await;
    }
    let report = path == "/v1/reports";
    let peer = request.extensions().get::<PeerIdentity>().cloned();
    match tokio::time::timeout(timeout, router.oneshot(request)).await {
        Ok(answer) => answer,
        Err(_) => {
            let (agent_id, remote) = peer.map(|p| (p.agent_id, p.remote)).unwrap_or_default();
            tracing::warn!(
                ?agent_id,
                ?remote,
                seconds = timeout.as_secs(),
                "an agent request was not answered in time; answered 503"
            );
            let response = super::ApiError::RequestTimeout {
                seconds: timeout.as_secs(),
            }
            .into_response();
            Ok(if report {
                super::ingest::protocol_header(response).await
            } else {
                response
            })
        }
    }
}
