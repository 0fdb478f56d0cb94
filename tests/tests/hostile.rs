//! Hostile input through the real binaries. Each case is refused clearly (a status and a
//! message naming the problem, or a failed TLS handshake), the collector keeps serving (a good
//! report is acknowledged afterwards), and nothing stored earlier is lost (the reports table is
//! counted before and after). Every wait is bounded; everything runs on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use steward_e2e::{Collector, agent_once, enroll, stderr};
use steward_shared::v1;
use support::{
    RawTls, agent_client, anonymous_client, collector_with_agent, enrolled_agents, envelope,
    foreign_identity, inventory_envelope_at, metrics_envelope, post, raw_tls, read_until_closed,
    reports_url, send_report, stored, stored_reports, tls_connector,
};
use tokio::io::AsyncWriteExt;

/// Sends raw bytes on a fresh TLS connection (with the agent certificate of `state`, if given)
/// and returns everything the collector answers before it closes (bounded to 15 s).
async fn exchange(collector: &Collector, state: Option<&std::path::Path>, bytes: &[u8]) -> String {
    let mut tls = raw_tls(&tls_connector(collector, state), collector.port).await;
    // The collector may answer and close before reading everything: a failed write is fine.
    let _ = tls.write_all(bytes).await;
    let _ = tls.flush().await;
    let (answer, closed) = read_until_closed(&mut tls, Duration::from_secs(15)).await;
    assert!(closed, "the collector kept the connection open: {answer}");
    answer
}

fn report_head(extra: &str) -> Vec<u8> {
    format!(
        "POST /v1/reports HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-type: {}\r\n{extra}\r\n",
        steward_shared::REPORT_CONTENT_TYPE
    )
    .into_bytes()
}

/// The collector still runs, and a good report from a good agent is stored after everything.
async fn still_serves(collector: &mut Collector, client: &reqwest::Client, agent: &str, seq: u64) {
    assert!(
        collector.is_running(),
        "the collector died: {}",
        collector.log()
    );
    let before = stored_reports(collector);
    let (status, text) = post(client, collector, envelope(agent, seq)).await;
    assert_eq!(status, 200, "a good report after the hostile ones: {text}");
    assert!(text.contains("\"stored\""), "{text}");
    assert_eq!(stored_reports(collector), before + 1);
}

/// A collector (with `replacements` made in its config) and one enrolled agent whose first
/// report is stored: its state directory, client and id.
async fn serving_agent(
    replacements: &[(&str, &str)],
) -> (Collector, std::path::PathBuf, reqwest::Client, String) {
    let (mut collector, state, client, agent) = collector_with_agent(replacements);
    still_serves(&mut collector, &client, &agent, 1).await;
    (collector, state, client, agent)
}

fn inventory_envelope(agent_id: &str, seq: u64, inventory: v1::Inventory) -> Vec<u8> {
    inventory_envelope_at(agent_id, seq, 1_795_000_000_000, "handmade", inventory)
}

fn package(name: &str) -> v1::SoftwarePackage {
    v1::SoftwarePackage {
        name: name.into(),
        version: "1.0".into(),
        source: "dpkg".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn oversized_reports_are_refused_however_their_length_is_given() {
    let (mut collector, state, client, agent) =
        serving_agent(&[("max_report_bytes = 1048576", "max_report_bytes = 8192")]).await;
    let before = stored_reports(&collector);
    let limit_text = "larger than the limit of 8192 bytes";

    // Declared: a Content-Length over the limit is refused before the body is read, whether the
    // body is there or not.
    let (status, text) = post(&client, &collector, vec![1u8; 16 * 1024]).await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains(limit_text), "{text}");
    let answer = exchange(
        &collector,
        Some(&state),
        &[
            report_head("content-length: 1000000000000\r\n"),
            b"x".to_vec(),
        ]
        .concat(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(limit_text), "{answer}");
    // A length no integer holds is a malformed request.
    let answer = exchange(
        &collector,
        Some(&state),
        &report_head("content-length: 99999999999999999999999999\r\n"),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    // Undeclared (chunked): counted as it arrives, refused once past the limit.
    let mut chunked = report_head("transfer-encoding: chunked\r\n");
    for _ in 0..16 {
        chunked.extend_from_slice(b"400\r\n");
        chunked.extend_from_slice(&[7u8; 1024]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let answer = exchange(&collector, Some(&state), &chunked).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(limit_text), "{answer}");
    // One chunk that claims to be enormous, then the bytes to go past the limit.
    let mut huge_chunk = report_head("transfer-encoding: chunked\r\n");
    huge_chunk.extend_from_slice(b"ffffffffff\r\n");
    huge_chunk.extend_from_slice(&[7u8; 12 * 1024]);
    let answer = exchange(&collector, Some(&state), &huge_chunk).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // Declared shorter than sent: the body is the declared prefix (a truncated report) and the
    // rest is no request at all.
    let good = envelope(&agent, 2);
    let answer = exchange(
        &collector,
        Some(&state),
        &[
            report_head(&format!("content-length: {}\r\n", good.len() - 5)),
            good.clone(),
            b"GARBAGE\r\n\r\n".to_vec(),
        ]
        .concat(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("truncated"), "{answer}");

    assert_eq!(
        stored_reports(&collector),
        before,
        "a refused body was stored"
    );
    still_serves(&mut collector, &client, &agent, 3).await;
}

#[tokio::test]
async fn every_truncation_of_a_report_and_every_unknown_version_is_refused() {
    let (mut collector, _, client, agent) = serving_agent(&[]).await;
    let before = stored_reports(&collector);

    // Every prefix of a small report.
    let metrics = envelope(&agent, 2);
    for cut in 0..metrics.len() {
        let (status, text) = post(&client, &collector, metrics[..cut].to_vec()).await;
        assert_eq!(status, 400, "prefix of {cut} bytes: {text}");
        assert!(text.starts_with("{\"error\":"), "prefix of {cut}: {text}");
        let want = if cut == 0 { "empty" } else { "truncated" };
        assert!(text.contains(want), "prefix of {cut} bytes: {text}");
    }
    // A sample of the prefixes of an inventory report (every 37th byte and the last 40).
    let inventory = v1::Inventory {
        software: (0..200).map(|i| package(&format!("pkg-{i}"))).collect(),
        hardware: v1::Hardware {
            disks: vec![v1::DiskInfo::default(); 3],
            ..Default::default()
        },
        ..Default::default()
    };
    let full = inventory_envelope(&agent, 3, inventory);
    let cuts = (0..full.len())
        .step_by(37)
        .chain(full.len().saturating_sub(40)..full.len());
    for cut in cuts {
        let (status, text) = post(&client, &collector, full[..cut].to_vec()).await;
        assert_eq!(status, 400, "inventory prefix of {cut} bytes: {text}");
    }
    assert_eq!(
        stored_reports(&collector),
        before,
        "a truncated report was stored"
    );
    let (status, text) = post(&client, &collector, full).await;
    assert_eq!((status, text.contains("\"stored\"")), (200, true), "{text}");
    let (status, text) = post(&client, &collector, metrics.clone()).await;
    assert_eq!((status, text.contains("\"stored\"")), (200, true), "{text}");

    // An unknown version prefix names the versions this collector decodes.
    for version in [0u8, 2, 9, 0x7f, 0xff] {
        let body = [vec![version], metrics[1..].to_vec()].concat();
        let response = send_report(&client, &reports_url(&collector), body)
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "version {version}");
        assert_eq!(
            response.headers()[steward_shared::PROTOCOL_MAX_HEADER],
            "1",
            "version {version}"
        );
        let text = response.text().await.unwrap();
        // The prefix is a varint: a byte from 0x80 up starts a longer number.
        let named = if version < 0x80 {
            format!("unsupported protocol version {version}:")
        } else {
            "unsupported protocol version".into()
        };
        assert!(
            text.contains(&named) && text.contains("decodes versions [1]"),
            "version {version}: {text}"
        );
    }
    assert_eq!(stored_reports(&collector), before + 2);
    still_serves(&mut collector, &client, &agent, 4).await;
}

#[tokio::test]
async fn deeply_nested_json_and_absurd_item_counts_are_refused() {
    // Room for an inventory with more items than accepted: the count check, not the size
    // limit, must refuse it.
    let (mut collector, _, client, agent) =
        serving_agent(&[("max_report_bytes = 1048576", "max_report_bytes = 16777216")]).await;
    let before = stored_reports(&collector);
    let anonymous = anonymous_client(&collector);
    let admin_token = std::fs::read_to_string(collector.data_dir().join("admin.token")).unwrap();
    let admin_token = admin_token.trim();

    // JSON nests: deep nesting in a field the endpoint does not know. The parser skips it
    // without recursing (or stops at its recursion limit); then the request is refused for what
    // it lacks or has in excess. 100,000 levels are refused on their length first.
    let nested =
        |depth: usize| format!("{{\"nested\": {}{}}}", "[".repeat(depth), "]".repeat(depth));
    let endpoints = [
        ("/v1/enroll", None, true),
        ("/admin/v1/enroll-tokens", Some(admin_token), true),
        ("/admin/v1/relations", Some(admin_token), true),
        ("/admin/v1/import", Some(admin_token), false),
    ];
    for (path, token, small) in endpoints {
        for depth in [100_000, 30_000] {
            let body = nested(depth);
            if small && body.len() > 64 * 1024 {
                // Refused on its declared length. Only its start is sent: the collector closes
                // without reading the rest, and a client still writing would see a reset
                // instead of the answer.
                let auth = token
                    .map(|t| format!("authorization: Bearer {t}\r\n"))
                    .unwrap_or_default();
                let head = format!(
                    "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{auth}\r\n",
                    body.len()
                );
                let answer = exchange(
                    &collector,
                    None,
                    &[head.as_bytes(), &body.as_bytes()[..4096]].concat(),
                )
                .await;
                assert!(
                    answer.starts_with("HTTP/1.1 413"),
                    "{path} with depth {depth}: {answer}"
                );
                assert!(
                    answer.contains("larger than the limit of 65536 bytes"),
                    "{path}: {answer}"
                );
                continue;
            }
            let mut request = anonymous
                .post(format!("{}{path}", collector.url()))
                .header("content-type", "application/json")
                .body(body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            assert!(
                matches!(status, 400 | 422),
                "{path} with depth {depth}: {status} {text}"
            );
            assert!(
                [
                    "recursion limit exceeded",
                    "missing field",
                    "unknown field `nested`"
                ]
                .iter()
                .any(|problem| text.contains(problem)),
                "{path} with depth {depth} names no problem: {status} {text}"
            );
        }
    }
    // Enrollment and the admin API still work.
    let second = collector.enroll_agent("second");
    assert_eq!(enrolled_agents(&collector), 2);

    // Postcard cannot nest, but it can count: absurd counts are refused by the inventory
    // checks, and a count the body cannot hold is a truncated body, not an allocation.
    let cases: Vec<(&str, v1::Inventory, &str)> = vec![
        (
            "packages",
            v1::Inventory {
                software: vec![package(""); 100_001],
                ..Default::default()
            },
            "inventory has 100001 software packages; at most 100000 are accepted",
        ),
        (
            "disks",
            v1::Inventory {
                hardware: v1::Hardware {
                    disks: vec![v1::DiskInfo::default(); 4097],
                    ..Default::default()
                },
                ..Default::default()
            },
            "inventory has 4097 disks; at most 4096 are accepted",
        ),
        (
            "sources",
            v1::Inventory {
                sources: vec![v1::SourceStatus::default(); 257],
                ..Default::default()
            },
            "inventory has 257 sources; at most 256 are accepted",
        ),
    ];
    for (name, inventory, want) in cases {
        let (status, text) = post(
            &client,
            &collector,
            inventory_envelope(&agent, 9, inventory),
        )
        .await;
        assert_eq!(status, 400, "{name}: {text}");
        assert!(text.contains(want), "{name}: {text}");
    }
    // One package named MARKER: the byte before its name's length is the package count.
    let marker = "MARKER-PACKAGE-NAME";
    let one = inventory_envelope(
        &agent,
        9,
        v1::Inventory {
            software: vec![package(marker)],
            ..Default::default()
        },
    );
    let at = one
        .windows(marker.len())
        .position(|w| w == marker.as_bytes())
        .unwrap();
    assert_eq!((one[at - 2], one[at - 1]), (1, marker.len() as u8));
    // 2^31 packages (a five-byte varint) in a body that holds one.
    let claimed = [
        &one[..at - 2],
        &[0x80, 0x80, 0x80, 0x80, 0x08],
        &one[at - 1..],
    ]
    .concat();
    let started = Instant::now();
    let (status, text) = post(&client, &collector, claimed).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("truncated"), "{text}");
    // Refused from the bytes at hand, not after reading or allocating 2^31 of anything (the
    // bound is wide for a loaded machine).
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );

    assert_eq!(
        stored_reports(&collector),
        before,
        "a refused report was stored"
    );
    still_serves(&mut collector, &client, &agent, 2).await;
    assert!(agent_once(&second).status.success());
}

#[tokio::test]
async fn replayed_reports_are_duplicates_or_forbidden() {
    let mut collector = Collector::start();
    let first = collector.enroll_agent("first");
    let second = collector.enroll_agent("second");
    let (client_a, agent_a) = agent_client(&first);
    let (client_b, agent_b) = agent_client(&second);

    let captured = metrics_envelope(&agent_a, 7, 1_795_000_000_007);
    let (status, text) = post(&client_a, &collector, captured.clone()).await;
    assert_eq!((status, text.contains("\"stored\"")), (200, true), "{text}");
    let before = stored_reports(&collector);

    // The same agent sends the same sequence number again, as is or with other content: it is
    // acknowledged as a duplicate and the first stays the one stored.
    let (status, text) = post(&client_a, &collector, captured.clone()).await;
    assert_eq!(
        (status, text.contains("\"duplicate\"")),
        (200, true),
        "{text}"
    );
    let altered = metrics_envelope(&agent_a, 7, 1_795_000_999_999);
    let (status, text) = post(&client_a, &collector, altered).await;
    assert_eq!(
        (status, text.contains("\"duplicate\"")),
        (200, true),
        "{text}"
    );
    assert_eq!(stored(&collector, &agent_a, 7), 1);
    let collected: i64 = support::database(&collector)
        .query_row(
            "SELECT r.collected_at FROM reports r JOIN agents a ON a.num = r.agent
             WHERE a.id = ?1 AND r.seq = 7",
            [&agent_a],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        collected, 1_795_000_000_007,
        "a replay replaced the stored report"
    );

    // Another agent replays the captured report under its own certificate.
    let (status, text) = post(&client_b, &collector, captured).await;
    assert_eq!(status, 403, "{text}");
    assert!(
        text.contains(&format!(
            "report claims to be from agent {agent_a} but the client certificate is agent {agent_b}"
        )),
        "{text}"
    );
    assert_eq!(stored(&collector, &agent_b, 7), 0);
    assert_eq!(stored_reports(&collector), before);
    still_serves(&mut collector, &client_a, &agent_a, 8).await;
    still_serves(&mut collector, &client_b, &agent_b, 8).await;
}

#[tokio::test]
async fn a_certificate_from_another_ca_with_a_real_agents_name_fails_the_handshake() {
    let (mut collector, _, client, agent) = serving_agent(&[]).await;
    let before = stored_reports(&collector);
    let ca = std::fs::read(collector.data_dir().join("ca.crt")).unwrap();
    for self_signed in [false, true] {
        let forged = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
            .identity(foreign_identity(&agent, self_signed))
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let result = forged
            .post(reports_url(&collector))
            .header("content-type", steward_shared::REPORT_CONTENT_TYPE)
            .body(envelope(&agent, 2))
            .send()
            .await;
        let error = result.expect_err("a foreign certificate must fail at TLS");
        assert!(
            !error.is_timeout() && error.status().is_none(),
            "self-signed {self_signed}: not a handshake failure: {error:?}"
        );
    }
    assert_eq!(stored(&collector, &agent, 2), 0);
    assert_eq!(stored_reports(&collector), before);
    still_serves(&mut collector, &client, &agent, 3).await;
}

#[test]
fn racing_enrollments_use_a_token_no_more_than_it_allows() {
    let collector = Collector::start();
    for (uses, racers) in [(1usize, 6usize), (3, 6)] {
        let uses_text = uses.to_string();
        let token = collector.token(&["--uses", &uses_text]);
        let outcomes: Vec<std::process::Output> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..racers)
                .map(|i| {
                    let state = collector.dir.path().join(format!("race-{uses}-{i}"));
                    let (url, token, fingerprint) = (
                        collector.url(),
                        token.clone(),
                        collector.fingerprint.clone(),
                    );
                    scope.spawn(move || enroll(&url, &token, &fingerprint, &state))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let enrolled = outcomes.iter().filter(|o| o.status.success()).count();
        assert_eq!(enrolled, uses, "a {uses}-use token raced by {racers}");
        for refused in outcomes.iter().filter(|o| !o.status.success()) {
            assert!(
                stderr(refused).contains("403") && stderr(refused).contains("already been used"),
                "{}",
                stderr(refused)
            );
        }
    }
    assert_eq!(enrolled_agents(&collector), 4);
}

/// A slowloris client: TLS done, then the request head one byte every `pace`. Returns after
/// how long the collector closed the connection (None: still open after `limit`).
async fn slowloris(mut tls: RawTls, pace: Duration, limit: Duration) -> Option<Duration> {
    use tokio::io::AsyncReadExt;
    let started = Instant::now();
    let head = b"POST /v1/reports HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/x-steward-report\r\nx-padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut buf = [0u8; 1024];
    for byte in head.iter().cycle() {
        if started.elapsed() > limit {
            return None;
        }
        if tls.write_all(&[*byte]).await.is_err() || tls.flush().await.is_err() {
            return Some(started.elapsed());
        }
        // Anything read (an answer, the end, an error) means the collector gave up on us.
        if let Ok(read) = tokio::time::timeout(pace, tls.read(&mut buf)).await {
            let _ = read;
            return Some(started.elapsed());
        }
    }
    None
}

/// `count` slowloris clients (one byte every 500 ms, giving up after `limit`), each on a TLS
/// connection of its own, handshake done.
async fn lorises(
    connector: &tokio_rustls::TlsConnector,
    port: u16,
    count: usize,
    limit: Duration,
) -> Vec<tokio::task::JoinHandle<Option<Duration>>> {
    let mut lorises = Vec::new();
    for _ in 0..count {
        let tls = raw_tls(connector, port).await;
        lorises.push(tokio::spawn(slowloris(
            tls,
            Duration::from_millis(500),
            limit,
        )));
    }
    lorises
}

/// How long `what` took to be closed (`closed`, None: never) is within `bounds`.
fn assert_closed_within(
    closed: Option<Duration>,
    what: &str,
    bounds: std::ops::Range<Duration>,
    want: &str,
) {
    let closed = closed.unwrap_or_else(|| panic!("{what} was never closed"));
    assert!(
        bounds.contains(&closed),
        "{what}: closed after {closed:?}, want about {want}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slowloris_connections_are_closed_at_the_header_timeout_while_agents_get_through() {
    // Bounds below are wide (a loaded 2-core CI machine runs this beside other work); the
    // header timeout is long enough that a slow report still lands while the lorises hang.
    let (mut collector, state, client, agent) = serving_agent(&[
        ("header_timeout_secs = 30", "header_timeout_secs = 5"),
        ("handshake_timeout_secs = 10", "handshake_timeout_secs = 2"),
    ])
    .await;
    let connector = tls_connector(&collector, None);

    let started = Instant::now();
    let lorises = lorises(&connector, collector.port, 20, Duration::from_secs(30)).await;
    // A connection that never starts TLS, and one that finishes it and sends nothing.
    let silent_tcp = tokio::spawn({
        let port = collector.port;
        async move {
            use tokio::io::AsyncReadExt;
            let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            let opened = Instant::now();
            let mut buf = [0u8; 16];
            let read = tokio::time::timeout(Duration::from_secs(30), tcp.read(&mut buf)).await;
            read.is_ok().then(|| opened.elapsed())
        }
    });
    let silent_tls = {
        let mut tls = raw_tls(&connector, collector.port).await;
        tokio::spawn(async move {
            let opened = Instant::now();
            let (_, closed) = read_until_closed(&mut tls, Duration::from_secs(30)).await;
            closed.then(|| opened.elapsed())
        })
    };

    // While they hang, a real agent's report gets through: it does not wait for them to be
    // closed at the header timeout.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = Instant::now();
    let (status, text) = post(&client, &collector, envelope(&agent, 2)).await;
    assert_eq!((status, text.contains("\"stored\"")), (200, true), "{text}");
    assert!(
        lorises.iter().all(|l| !l.is_finished()),
        "the report waited {:?}, until the slowloris clients were closed",
        sent.elapsed()
    );
    let state_for_agent = state.clone();
    let out = tokio::task::spawn_blocking(move || agent_once(&state_for_agent))
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    for loris in lorises {
        assert_closed_within(
            loris.await.unwrap(),
            "a slowloris connection",
            Duration::from_secs(4)..Duration::from_secs(15),
            "the 5 s header timeout",
        );
    }
    assert_closed_within(
        silent_tcp.await.unwrap(),
        "a silent TCP connection (no handshake)",
        Duration::from_millis(1500)..Duration::from_secs(12),
        "2 s",
    );
    assert_closed_within(
        silent_tls.await.unwrap(),
        "a silent TLS connection (no request)",
        Duration::from_secs(4)..Duration::from_secs(15),
        "5 s",
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    still_serves(&mut collector, &client, &agent, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn past_max_connections_clients_wait_and_are_served_when_a_slot_frees() {
    let (mut collector, state, client, agent) = serving_agent(&[
        ("header_timeout_secs = 30", "header_timeout_secs = 3"),
        ("max_connections = 10000", "max_connections = 4"),
    ])
    .await;
    // The keep-alive connection of that report holds a slot; a fresh client does not share it.
    drop(client);
    let (client, _) = agent_client(&state);
    // Let the collector notice the dropped connection.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let connector = tls_connector(&collector, None);
    // Before the first slot is taken: no slot frees earlier than the header timeout after this.
    let filling = Instant::now();
    let lorises = lorises(&connector, collector.port, 4, Duration::from_secs(15)).await;
    // A fifth connection is not accepted: its handshake is not answered while the slots are
    // taken.
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", collector.port))
        .await
        .unwrap();
    let waiting =
        tokio::time::timeout(Duration::from_millis(1000), connector.connect(name, tcp)).await;
    assert!(
        waiting.is_err(),
        "a connection past max_connections was served at once"
    );
    drop(waiting);

    // A real report waits for a slot and is served once the slowloris clients are dropped.
    let (status, text) = post(&client, &collector, envelope(&agent, 2)).await;
    let waited = filling.elapsed();
    assert_eq!((status, text.contains("\"stored\"")), (200, true), "{text}");
    assert!(
        waited >= Duration::from_millis(2500) && waited < Duration::from_secs(30),
        "served after {waited:?}: want after the 3 s header timeout frees the slots"
    );
    for loris in lorises {
        assert!(
            loris.await.unwrap().is_some(),
            "a slowloris connection was never closed"
        );
    }
    still_serves(&mut collector, &client, &agent, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trickling_body_and_a_stalled_handler_are_cut_off_and_free_their_connection() {
    let (mut collector, state, client, agent) = serving_agent(&[
        ("body_timeout_secs = 30", "body_timeout_secs = 2"),
        ("request_timeout_secs = 60", "request_timeout_secs = 4"),
    ])
    .await;

    // A body that keeps coming, one byte at a time, never finishing: 408 at the body timeout.
    let mut tls = raw_tls(&tls_connector(&collector, Some(&state)), collector.port).await;
    tls.write_all(&report_head("content-length: 100000\r\n"))
        .await
        .unwrap();
    let started = Instant::now();
    let trickle = async {
        for _ in 0..100 {
            if tls.write_all(b"x").await.is_err() || tls.flush().await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            if started.elapsed() > Duration::from_secs(1) {
                break;
            }
        }
    };
    trickle.await;
    let (answer, closed) = read_until_closed(&mut tls, Duration::from_secs(20)).await;
    assert!(closed, "the trickling connection was kept open: {answer}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within 2 s"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(18),
        "{:?}",
        started.elapsed()
    );

    // A handler that cannot finish: the test holds the database's write lock, so the report's
    // write waits. The agent gets 503 with Retry-After at the request timeout.
    let lock = rusqlite::Connection::open(collector.data_dir().join("steward.db")).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = Instant::now();
    let response = send_report(&client, &reports_url(&collector), envelope(&agent, 2))
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.headers()[steward_shared::PROTOCOL_MAX_HEADER], "1");
    let text = response.text().await.unwrap();
    assert!(text.contains("not answered within 4 s"), "{text}");
    assert!(
        took >= Duration::from_millis(3500) && took < Duration::from_secs(14),
        "answered after {took:?}"
    );
    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);
    // The resend is stored once: it was either still queued (a duplicate now) or not written.
    let (status, text) = post(&client, &collector, envelope(&agent, 2)).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains("\"stored\"") || text.contains("\"duplicate\""),
        "{text}"
    );
    assert_eq!(stored(&collector, &agent, 2), 1);
    still_serves(&mut collector, &client, &agent, 3).await;
}
