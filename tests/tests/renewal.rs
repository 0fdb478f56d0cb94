//! Agent certificates expire and are renewed by the agent before they do, with a new key; a
//! revoked agent cannot renew. Certificates are made to last one minute here.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use steward_e2e::{Collector, bin};
use support::{agent_client, agent_id, anonymous_client, wait_until};

fn agent_row(collector: &Collector, agent_id: &str) -> serde_json::Value {
    collector
        .admin_json(&["agents", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == agent_id)
        .unwrap()
        .clone()
}

#[test]
fn a_running_agent_renews_its_certificate_before_it_expires_and_keeps_reporting() {
    let mut collector = Collector::start();
    collector.reconfigure(&[("cert_validity = \"397d\"", "cert_validity = \"1m\"")]);
    let state = collector.enroll_agent("agent");
    let agent_id = agent_id(&state);
    let enrolled = agent_row(&collector, &agent_id);
    let expires = enrolled["cert_expires_at"].as_i64().unwrap();
    let now = steward_collector::now_ms();
    assert!(
        (expires - (now + 60_000)).abs() < 10_000,
        "expires {expires}, now {now}"
    );
    assert!(enrolled["cert_renewed_at"].is_null());
    let old_cert = std::fs::read_to_string(state.join("agent.crt")).unwrap();
    let old_key = std::fs::read_to_string(state.join("agent.key")).unwrap();

    let config = collector.dir.path().join("agent.toml");
    std::fs::write(&config, "[spool]\nstart_jitter_secs = 0\n").unwrap();
    let log = std::fs::File::create(collector.dir.path().join("agent.log")).unwrap();
    let mut agent = Command::new(bin("steward-agent"))
        .arg("--config")
        .arg(&config)
        .args(["run", "--interval", "1", "--state-dir"])
        .arg(&state)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();

    // Two thirds of a minute in, the agent renews; then it keeps reporting past the moment
    // the first certificate expired.
    let mut renewed = serde_json::Value::Null;
    wait_until(
        "the agent renewing its certificate",
        Duration::from_secs(90),
        || {
            renewed = agent_row(&collector, &agent_id);
            renewed["cert_renewed_at"].is_i64()
        },
    );
    let renewed_at = renewed["cert_renewed_at"].as_i64().unwrap();
    assert!(
        renewed_at < expires,
        "renewed at {renewed_at}, after the expiry {expires}"
    );
    assert!(renewed["cert_expires_at"].as_i64().unwrap() > expires);
    assert_ne!(renewed["cert_serial"], enrolled["cert_serial"]);
    while steward_collector::now_ms() < expires + 3_000 {
        std::thread::sleep(Duration::from_millis(500));
    }
    let before = agent_row(&collector, &agent_id)["reports_received"]
        .as_i64()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while agent_row(&collector, &agent_id)["reports_received"]
        .as_i64()
        .unwrap()
        < before + 2
    {
        assert!(
            Instant::now() < deadline,
            "no reports after the old certificate expired: {}",
            std::fs::read_to_string(collector.dir.path().join("agent.log")).unwrap()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    agent.kill().unwrap();
    agent.wait().unwrap();

    // A new key with the new certificate; nothing left half-swapped.
    assert_ne!(
        std::fs::read_to_string(state.join("agent.crt")).unwrap(),
        old_cert
    );
    assert_ne!(
        std::fs::read_to_string(state.join("agent.key")).unwrap(),
        old_key
    );
    assert!(!state.join("renewed.key").exists() && !state.join("renewed.crt").exists());
    let status: serde_json::Value = serde_json::from_slice(
        &steward_e2e::run(
            Command::new(bin("steward-agent"))
                .args(["status", "--json", "--state-dir"])
                .arg(&state),
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(
        status["identity"]["cert_not_after_ms"],
        renewed["cert_expires_at"]
    );
    let log = std::fs::read_to_string(collector.dir.path().join("agent.log")).unwrap();
    assert!(log.contains("agent certificate renewed"), "{log}");
}

#[tokio::test]
async fn a_revoked_agent_cannot_renew_and_renewal_needs_a_certificate() {
    let collector = Collector::start();
    let state = collector.enroll_agent("agent");
    let (client, agent_id) = agent_client(&state);
    let key = rcgen::KeyPair::generate().unwrap();
    let csr_pem = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    let renew = |client: reqwest::Client, csr: String| {
        let url = format!("{}/v1/renew", collector.url());
        async move {
            let response = client
                .post(url)
                .json(&serde_json::json!({ "csr_pem": csr }))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };

    // Garbage CSR: refused naming it.
    let (status, body) = renew(client.clone(), "not a csr".into()).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("certificate signing request"), "{body}");
    // Without a client certificate: nobody to renew.
    let (status, body) = renew(anonymous_client(&collector), csr_pem.clone()).await;
    assert_eq!(status, 401, "{body}");
    // A good renewal, then revocation: the next renewal is refused.
    let (status, body) = renew(client.clone(), csr_pem.clone()).await;
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        answer["certificate_pem"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    // The replaced certificate still works until the new one is used (the agent may not have
    // stored it yet); from the new one's first report on, the old one is refused.
    let (status, body) = support::post(&client, &collector, support::envelope(&agent_id, 1)).await;
    assert_eq!(status, 200, "{body}");
    let mut identity = answer["certificate_pem"]
        .as_str()
        .unwrap()
        .as_bytes()
        .to_vec();
    identity.extend(key.serialize_pem().as_bytes());
    let ca = std::fs::read(state.join("collector-ca.crt")).unwrap();
    let renewed = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .identity(reqwest::Identity::from_pem(&identity).unwrap())
        .build()
        .unwrap();
    let (status, body) = support::post(&renewed, &collector, support::envelope(&agent_id, 2)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = support::post(&client, &collector, support::envelope(&agent_id, 3)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("replaced by a renewal"), "{body}");
    let (status, body) = renew(client, csr_pem.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("replaced by a renewal"), "{body}");

    let out = collector.admin(&["agents", "revoke", &agent_id]);
    assert!(out.status.success());
    let (status, body) = renew(renewed, csr_pem).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("revoked"), "{body}");
}
