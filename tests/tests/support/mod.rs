//! Shared by the end-to-end suites: clients holding an agent's own certificate, hand-made
//! reports, raw TLS connections, read-only looks at the database, bounded polling.
#![allow(dead_code)] // reason: each test binary uses its own share of these helpers
#![allow(clippy::unwrap_used, clippy::expect_used)] // reason: test support code

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use steward_e2e::Collector;
use steward_shared::v1;

/// A client holding the agent's own certificate (from its state directory), and its agent id.
pub fn agent_client(state: &Path) -> (reqwest::Client, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let read = |f: &str| std::fs::read(state.join(f)).unwrap();
    let mut identity = read("agent.crt");
    identity.extend(read("agent.key"));
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&read("collector-ca.crt")).unwrap()])
        .identity(reqwest::Identity::from_pem(&identity).unwrap())
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    (client, agent_id(state))
}

pub fn agent_id(state: &Path) -> String {
    let id: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("agent.json")).unwrap()).unwrap();
    id["agent_id"].as_str().unwrap().to_string()
}

/// A client without a certificate that trusts the collector's CA.
pub fn anonymous_client(collector: &Collector) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = std::fs::read(collector.data_dir().join("ca.crt")).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

/// The host every hand-made report claims to come from.
fn handmade_host() -> v1::HostIdentity {
    v1::HostIdentity {
        hostname: "handmade".into(),
        machine_id: "feedfeedfeedfeedfeedfeedfeedfeed".into(),
        ..Default::default()
    }
}

fn encode(agent_id: &str, seq: u64, payload: v1::Payload) -> Vec<u8> {
    steward_shared::encode_v1(&v1::Envelope {
        agent_id: agent_id.into(),
        seq,
        sent_at_ms: 0,
        payload,
    })
    .unwrap()
}

/// A small metrics report; `collected` tells two reports with the same sequence number apart.
pub fn metrics_envelope(agent_id: &str, seq: u64, collected: i64) -> Vec<u8> {
    let report = v1::MetricsReport {
        host: handmade_host(),
        metrics: v1::Metrics {
            collected_at_ms: collected,
            ..Default::default()
        },
    };
    encode(agent_id, seq, v1::Payload::Metrics(report))
}

pub fn envelope(agent_id: &str, seq: u64) -> Vec<u8> {
    metrics_envelope(agent_id, seq, 1_795_000_000_000 + seq as i64)
}

/// A full inventory report of `inventory`, collected at `collected`, with `content_hash`.
pub fn inventory_envelope_at(
    agent_id: &str,
    seq: u64,
    collected: i64,
    content_hash: &str,
    inventory: v1::Inventory,
) -> Vec<u8> {
    let report = v1::InventoryReport {
        host: handmade_host(),
        collected_at_ms: collected,
        content_hash: content_hash.into(),
        content: Some(inventory),
    };
    encode(agent_id, seq, v1::Payload::Inventory(report))
}

/// The collector's report endpoint.
pub fn reports_url(collector: &Collector) -> String {
    format!("{}/v1/reports", collector.url())
}

/// Sends a report body to `url` (a collector's report endpoint); the answer or the error.
pub async fn send_report(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(url)
        .header("content-type", steward_shared::REPORT_CONTENT_TYPE)
        .body(body)
        .send()
        .await
}

/// Posts a report body; the status and the answer's text.
pub async fn post(client: &reqwest::Client, collector: &Collector, body: Vec<u8>) -> (u16, String) {
    let response = send_report(client, &reports_url(collector), body)
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// A collector started with `replacements` made in its config (if any), and one agent enrolled
/// (not yet run): its state directory, a client holding its certificate, and its id.
pub fn collector_with_agent(
    replacements: &[(&str, &str)],
) -> (Collector, std::path::PathBuf, reqwest::Client, String) {
    let mut collector = Collector::start();
    if !replacements.is_empty() {
        collector.reconfigure(replacements);
    }
    let state = collector.enroll_agent("agent");
    let (client, agent) = agent_client(&state);
    (collector, state, client, agent)
}

/// A client certificate for `common_name`, signed by a CA this collector never saw (or
/// self-signed).
pub fn foreign_identity(common_name: &str, self_signed: bool) -> reqwest::Identity {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = if self_signed {
        params.self_signed(&key).unwrap()
    } else {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "steward");
        let other_ca = rcgen::Issuer::new(ca_params, ca_key);
        params.signed_by(&key, &other_ca).unwrap()
    };
    reqwest::Identity::from_pem(format!("{}{}", cert.pem(), key.serialize_pem()).as_bytes())
        .unwrap()
}

/// How many agents the collector lists as enrolled.
pub fn enrolled_agents(collector: &Collector) -> usize {
    collector
        .admin_json(&["agents", "list", "--json"])
        .as_array()
        .unwrap()
        .len()
}

/// The collector's database opened read-only (beside a running collector, or after it died).
pub fn database(collector: &Collector) -> rusqlite::Connection {
    open_read_only(&collector.data_dir().join("steward.db"))
}

/// A database file (the collector's, a backup) opened read-only.
pub fn open_read_only(path: &Path) -> rusqlite::Connection {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn
}

/// Sequence numbers stored for `agent_id` in the collector's database, in order.
pub fn stored_seqs(collector: &Collector, agent_id: &str) -> Vec<i64> {
    seqs_in(&database(collector), agent_id)
}

/// Sequence numbers stored for `agent_id` in `db`, in order.
pub fn seqs_in(db: &rusqlite::Connection, agent_id: &str) -> Vec<i64> {
    let mut stmt = db
        .prepare(
            "SELECT r.seq FROM reports r JOIN agents a ON a.num = r.agent
             WHERE a.id = ?1 ORDER BY r.seq",
        )
        .unwrap();
    stmt.query_map([agent_id], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Polls `check` (every 200 ms) until it holds; fails naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting: {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Reports stored, all agents together.
pub fn stored_reports(collector: &Collector) -> i64 {
    database(collector)
        .query_row("SELECT COUNT(*) FROM reports", [], |r| r.get(0))
        .unwrap()
}

/// How many reports of `agent_id` with sequence number `seq` are stored (0 or 1).
pub fn stored(collector: &Collector, agent_id: &str, seq: u64) -> i64 {
    database(collector)
        .query_row(
            "SELECT COUNT(*) FROM reports r JOIN agents a ON a.num = r.agent
             WHERE a.id = ?1 AND r.seq = ?2",
            rusqlite::params![agent_id, seq as i64],
            |r| r.get(0),
        )
        .unwrap()
}

/// A rustls connector trusting the collector's CA, presenting the agent certificate of
/// `state` if given.
pub fn tls_connector(collector: &Collector, state: Option<&Path>) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(collector.data_dir().join("ca.crt")).unwrap();
    for cert in CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let config = match state {
        None => builder.with_no_client_auth(),
        Some(state) => {
            let chain = CertificateDer::pem_file_iter(state.join("agent.crt"))
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_file(state.join("agent.key")).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

pub type RawTls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A TLS connection to the collector, handshake done (bounded to 10 s).
pub async fn raw_tls(connector: &tokio_rustls::TlsConnector, port: u16) -> RawTls {
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        connector.connect(name, tcp).await.unwrap()
    })
    .await
    .expect("TLS handshake within 10 s")
}

/// Reads until the collector closes the connection (at most `limit`); what arrived, and
/// whether it closed in time.
pub async fn read_until_closed(tls: &mut RawTls, limit: Duration) -> (String, bool) {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&answer).into_owned(), closed)
}
