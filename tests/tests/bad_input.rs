//! Bad input is refused with an error naming the problem, the collector keeps serving, and
//! nothing already accepted is lost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use steward_e2e::{Collector, agent_once, enroll, stderr};
use support::{
    agent_client, anonymous_client, collector_with_agent, enrolled_agents, envelope,
    foreign_identity, post, raw_tls, read_until_closed, reports_url, send_report, tls_connector,
};

#[tokio::test]
async fn malformed_reports_are_refused_and_the_collector_keeps_serving() {
    let mut collector = Collector::start();
    let state = collector.enroll_agent("agent");
    assert!(agent_once(&state).status.success());
    // A small body limit, so the oversized body fits in the socket buffers and the client reads
    // the 413 instead of a broken pipe when the collector closes early. (Set after the agent's
    // first run: its full inventory is larger than this.)
    collector.reconfigure(&[("max_report_bytes = 1048576", "max_report_bytes = 8192")]);
    let (client, agent_id) = agent_client(&state);

    let good = envelope(&agent_id, 1_000_000);
    let (status, body) = post(&client, &collector, good.clone()).await;
    assert_eq!((status, body.contains("stored")), (200, true), "{body}");
    let (status, body) = post(&client, &collector, good.clone()).await;
    assert_eq!(
        (status, body.contains("duplicate")),
        (200, true),
        "a replayed report must be acknowledged, not stored twice: {body}"
    );

    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "garbage",
            b"\xff\xfe\xfd not postcard".to_vec(),
            400,
            "protocol",
        ),
        (
            "truncated",
            good[..good.len() / 2].to_vec(),
            400,
            "truncated",
        ),
        (
            "trailing bytes",
            [good.clone(), vec![0, 1, 2]].concat(),
            400,
            "3 trailing bytes",
        ),
        (
            "unknown version",
            [vec![9u8], good[1..].to_vec()].concat(),
            400,
            "unsupported protocol version 9",
        ),
        ("empty", Vec::new(), 400, "empty"),
        (
            "too large",
            vec![1u8; 16 * 1024],
            413,
            "larger than the limit of 8192 bytes",
        ),
        (
            "someone else's id",
            envelope("a-0000000000000000", 5),
            403,
            "client certificate is agent",
        ),
    ];
    for (name, body, want_status, want_text) in cases {
        let (status, text) = post(&client, &collector, body).await;
        assert_eq!(status, want_status, "{name}: {text}");
        assert!(text.contains(want_text), "{name}: {text}");
        assert!(
            text.starts_with("{\"error\":"),
            "{name}: errors are JSON: {text}"
        );
    }
    let response = client
        .post(reports_url(&collector))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 415);

    assert!(
        collector.is_running(),
        "the collector died: {}",
        collector.log()
    );
    assert!(
        agent_once(&state).status.success(),
        "the collector no longer accepts good reports"
    );
    let cis = collector.admin_json(&["ci", "list", "--json"]);
    let stored: u64 = cis
        .as_array()
        .unwrap()
        .iter()
        .map(|ci| {
            collector.admin_json(&["ci", "show", &ci["id"].to_string(), "--json"])["reports_stored"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(
        stored, 3,
        "two agent reports plus one hand-made one, nothing lost and nothing doubled"
    );
}

#[tokio::test]
async fn reports_without_the_agent_certificate_are_refused() {
    let collector = Collector::start();
    let state = collector.enroll_agent("agent");
    let (_, agent_id) = agent_client(&state);

    // No client certificate: the port also serves enrollment, so TLS admits it, but the ingest
    // endpoint refuses before reading the body.
    let (status, text) = post(
        &anonymous_client(&collector),
        &collector,
        envelope(&agent_id, 1),
    )
    .await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("client certificate"), "{text}");

    // A certificate from another CA fails the TLS handshake itself.
    let identity = foreign_identity(&agent_id, false);
    let ca = std::fs::read(collector.data_dir().join("ca.crt")).unwrap();
    let forged = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .identity(identity)
        .build()
        .unwrap();
    let result = forged
        .post(reports_url(&collector))
        .body(envelope(&agent_id, 1))
        .send()
        .await;
    assert!(
        result.is_err(),
        "a foreign client certificate must fail at TLS, got {:?}",
        result.map(|r| r.status())
    );
}

#[tokio::test]
async fn a_revoked_agent_is_refused() {
    let collector = Collector::start();
    let state = collector.enroll_agent("agent");
    let other = collector.enroll_agent("other");
    assert!(agent_once(&state).status.success());
    let (client, agent_id) = agent_client(&state);
    // A connection opened before the revocation: its next request is refused too.
    let (status, text) = post(&client, &collector, envelope(&agent_id, 1_000_000)).await;
    assert_eq!(status, 200, "{text}");
    let out = collector.admin(&["agents", "revoke", &agent_id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (status, text) = post(&client, &collector, envelope(&agent_id, 1_000_001)).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("revoked"), "{text}");
    let out = agent_once(&state);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("revoked"), "{}", stderr(&out));
    // Other agents keep working.
    let (other_client, other_id) = agent_client(&other);
    let (status, text) = post(&other_client, &collector, envelope(&other_id, 1_000_000)).await;
    assert_eq!((status, text.contains("stored")), (200, true), "{text}");
    assert!(agent_once(&other).status.success());
}

#[test]
fn enrollment_tokens_are_checked() {
    let collector = Collector::start();
    let dir = collector.dir.path();
    let token = collector.token(&[]);
    assert!(
        enroll(
            &collector.url(),
            &token,
            &collector.fingerprint,
            &dir.join("a1")
        )
        .status
        .success()
    );

    let out = enroll(
        &collector.url(),
        &token,
        &collector.fingerprint,
        &dir.join("a2"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("403") && stderr(&out).contains("already been used"),
        "{}",
        stderr(&out)
    );

    let short = collector.token(&["--ttl", "1s"]);
    std::thread::sleep(Duration::from_millis(1500));
    let out = enroll(
        &collector.url(),
        &short,
        &collector.fingerprint,
        &dir.join("a3"),
    );
    assert!(
        stderr(&out).contains("403") && stderr(&out).contains("expired"),
        "{}",
        stderr(&out)
    );

    let out = enroll(
        &collector.url(),
        "stw_not-a-token",
        &collector.fingerprint,
        &dir.join("a4"),
    );
    assert!(
        stderr(&out).contains("401") && stderr(&out).contains("not valid"),
        "{}",
        stderr(&out)
    );

    let many = collector.token(&["--uses", "2"]);
    assert!(
        enroll(
            &collector.url(),
            &many,
            &collector.fingerprint,
            &dir.join("a5")
        )
        .status
        .success()
    );
    assert!(
        enroll(
            &collector.url(),
            &many,
            &collector.fingerprint,
            &dir.join("a6")
        )
        .status
        .success()
    );
    let out = enroll(
        &collector.url(),
        &many,
        &collector.fingerprint,
        &dir.join("a7"),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "a 2-use token used a third time"
    );
    assert!(
        stderr(&out).contains("403") && stderr(&out).contains("already been used"),
        "{}",
        stderr(&out)
    );

    let wrong_fp = format!("sha256:{}", "0".repeat(64));
    let fresh = collector.token(&[]);
    let out = enroll(&collector.url(), &fresh, &wrong_fp, &dir.join("a8"));
    assert!(
        stderr(&out).contains("fingerprint mismatch"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.join("a8/agent.json").exists());
    // The token was never sent to an unverified collector, so it is still good.
    assert!(
        enroll(
            &collector.url(),
            &fresh,
            &collector.fingerprint,
            &dir.join("a8")
        )
        .status
        .success()
    );

    assert_eq!(enrolled_agents(&collector), 4);
}

#[tokio::test]
async fn the_admin_api_requires_the_admin_token() {
    let collector = Collector::start();
    let client = anonymous_client(&collector);
    let response = client
        .get(format!("{}/admin/v1/cis", collector.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("admin token required")
    );
    let response = client
        .get(format!("{}/admin/v1/cis", collector.url()))
        .bearer_auth("adm_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let response = client
        .post(format!("{}/admin/v1/enroll-tokens", collector.url()))
        .json(&serde_json::json!({"ttl_secs": 60, "uses": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        401,
        "creating tokens without the admin token must fail"
    );

    let out = steward_e2e::run(
        std::process::Command::new(steward_e2e::bin("steward-collector"))
            .args([
                "ci",
                "list",
                "--url",
                &collector.url(),
                "--token",
                "adm_wrong",
                "--ca-cert",
            ])
            .arg(collector.data_dir().join("ca.crt")),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
}

#[test]
fn bad_config_files_exit_2_naming_file_line_and_key() {
    let mut collector = Collector::start();
    collector.kill();
    let config = collector.data_dir().join("collector.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("retention_days", "retention_dayz")).unwrap();
    let out = collector.admin(&["serve"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("collector.toml") && err.contains("line") && err.contains("retention_dayz"),
        "{err}"
    );

    let agent_config = collector.dir.path().join("agent.toml");
    std::fs::write(&agent_config, "interval_secs = 10\nintervall = 5\n").unwrap();
    let out = steward_e2e::run(
        std::process::Command::new(steward_e2e::bin("steward-agent"))
            .arg("--config")
            .arg(&agent_config)
            .args(["collect", "--json"]),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("agent.toml") && err.contains("line 2") && err.contains("intervall"),
        "{err}"
    );

    let out = steward_e2e::run(
        std::process::Command::new(steward_e2e::bin("steward-agent")).args([
            "run",
            "--interval",
            "0",
        ]),
    );
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_gets_503_with_retry_after_and_loses_nothing_acknowledged() {
    // Room for one small report in memory at a time: concurrent senders must be turned away.
    let (mut collector, _state, client, agent_id) = collector_with_agent(&[
        ("max_report_bytes = 1048576", "max_report_bytes = 1024"),
        ("max_inflight_bytes = 67108864", "max_inflight_bytes = 1024"),
    ]);

    let mut tasks = Vec::new();
    for seq in 1..=60u64 {
        let client = client.clone();
        let url = reports_url(&collector);
        let body = envelope(&agent_id, seq);
        tasks.push(tokio::spawn(async move {
            let response = send_report(&client, &url, body).await.unwrap();
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (
                response.status().as_u16(),
                retry_after,
                response.text().await.unwrap(),
            )
        }));
    }
    let (mut stored, mut refused) = (0u64, 0u64);
    for task in tasks {
        let (status, retry_after, text) = task.await.unwrap();
        match status {
            200 => stored += 1,
            503 => {
                refused += 1;
                assert_eq!(retry_after.as_deref(), Some("1"), "{text}");
                assert!(text.contains("overloaded"), "{text}");
            }
            other => panic!("unexpected {other}: {text}"),
        }
    }
    assert!(
        refused > 0,
        "60 concurrent reports with room for one must be refused in part"
    );
    assert!(collector.is_running());
    let cis = collector.admin_json(&["ci", "list", "--json"]);
    let id = cis[0]["id"].to_string();
    assert_eq!(
        collector.admin_json(&["ci", "show", &id, "--json"])["reports_stored"],
        stored
    );
}

#[tokio::test]
async fn regression_a_body_that_stops_arriving_gets_408_and_frees_the_connection() {
    // A client that sent headers and then stalled mid-body used to hold its connection slot
    // forever.
    use tokio::io::AsyncWriteExt;
    let mut collector = Collector::start();
    collector.reconfigure(&[("body_timeout_secs = 30", "body_timeout_secs = 1")]);

    let mut tls = raw_tls(&tls_connector(&collector, None), collector.port).await;
    tls.write_all(b"POST /v1/enroll HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"tok")
        .await
        .unwrap();
    let (text, closed) = read_until_closed(&mut tls, Duration::from_secs(10)).await;
    assert!(closed, "the collector kept the stalled connection open");
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("did not arrive within 1 s"), "{text}");
}

#[tokio::test]
async fn regression_every_report_answer_carries_the_protocol_version_header() {
    // Errors (an unknown version above all) lacked the header that lets a newer agent fall back.
    let collector = Collector::start();
    let state = collector.enroll_agent("agent");
    let (client, _) = agent_client(&state);
    let response = send_report(&client, &reports_url(&collector), vec![2u8, 0, 0])
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(
        response
            .headers()
            .get(steward_shared::PROTOCOL_MAX_HEADER)
            .unwrap(),
        "1"
    );
}
