//! SIGTERM drains: reports in flight when it arrives are either acknowledged and stored, or not
//! acknowledged (never acknowledged and lost); the collector exits 0 within its bound and
//! leaves a sound database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use steward_e2e::Collector;
use support::{agent_client, envelope, raw_tls, reports_url, send_report, tls_connector};

/// Sends one report; its ack status ("stored", "duplicate") if it was acknowledged.
async fn send(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Option<String> {
    let response = send_report(client, url, body).await.ok()?;
    if response.status().as_u16() != 200 {
        return None;
    }
    let ack: serde_json::Value = response.json().await.ok()?;
    Some(ack["status"].as_str()?.to_string())
}

/// Sends one report over a connection of its own (through `connector`, holding the agent's
/// certificate), by hand: the head and half the body, then (once `go` fires) the rest. Its ack
/// status, if acknowledged.
async fn report_in_two_halves(
    connector: tokio_rustls::TlsConnector,
    port: u16,
    body: Vec<u8>,
    half_sent: tokio::sync::oneshot::Sender<()>,
    go: tokio::sync::oneshot::Receiver<()>,
) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut tls = raw_tls(&connector, port).await;
    let head = format!(
        "POST /v1/reports HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: {}\r\ncontent-length: {}\r\n\r\n",
        steward_shared::REPORT_CONTENT_TYPE,
        body.len()
    );
    let half = body.len() / 2;
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(&body[..half]).await.unwrap();
    tls.flush().await.unwrap();
    half_sent.send(()).unwrap();
    go.await.unwrap();
    tls.write_all(&body[half..]).await.ok()?;
    tls.flush().await.ok()?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // Until the server closes (it does after answering, as it is shutting down).
    while let Ok(n @ 1..) = tls.read(&mut buf).await {
        answer.extend_from_slice(&buf[..n]);
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    if !answer.starts_with("HTTP/1.1 200") {
        return None;
    }
    let (_, json) = answer.split_once("\r\n\r\n")?;
    let ack: serde_json::Value = serde_json::from_str(json.trim()).ok()?;
    Some(ack["status"].as_str()?.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_with_reports_in_flight_loses_nothing_acknowledged_and_exits_0() {
    let mut collector = Collector::start();
    let state = collector.enroll_agent("agent");
    let (client, agent_id) = agent_client(&state);
    let url = reports_url(&collector);

    // Senders that keep 16 reports in flight until the collector stops answering.
    let acks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut senders = Vec::new();
    for sender in 0..16u64 {
        let (client, url, agent_id, acks) =
            (client.clone(), url.clone(), agent_id.clone(), acks.clone());
        senders.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for n in 1.. {
                let seq = sender * 1_000_000 + n;
                match send(&client, &url, envelope(&agent_id, seq)).await {
                    Some(status) => {
                        assert_eq!(status, "stored", "seq {seq}");
                        acked.push(seq);
                        acks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    None => return (acked, seq),
                }
            }
            unreachable!()
        }));
    }
    // And one whose body is still arriving when the signal comes.
    let (half_sent, half_sent_rx) = tokio::sync::oneshot::channel();
    let (go, go_rx) = tokio::sync::oneshot::channel();
    let straddling = tokio::spawn({
        let (connector, port, body) = (
            tls_connector(&collector, Some(&state)),
            collector.port,
            envelope(&agent_id, 99_000_000),
        );
        async move { report_in_two_halves(connector, port, body, half_sent, go_rx).await }
    });
    half_sent_rx.await.unwrap();
    // Enough acknowledged to know the load runs (bounded: a slow machine gets 30 s).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let acked = acks.load(std::sync::atomic::Ordering::Relaxed);
        if acked >= 100 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {acked} of 100 reports acknowledged within 30 s before the SIGTERM: {}",
            collector.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    collector.sigterm();
    tokio::time::sleep(Duration::from_millis(200)).await;
    go.send(()).unwrap();
    let (status, took) = tokio::task::block_in_place(|| collector.wait_exit());
    assert!(status.success(), "{status:?}: {}", collector.log());
    assert!(took < Duration::from_secs(30), "took {took:?}");

    let mut acked = Vec::new();
    let mut unacked = Vec::new();
    for sender in senders {
        let (mut done, refused) = sender.await.unwrap();
        acked.append(&mut done);
        unacked.push(refused);
    }
    // The request in flight was let finish: acknowledged (and so it must be stored).
    assert_eq!(
        straddling.await.unwrap().as_deref(),
        Some("stored"),
        "{}",
        collector.log()
    );
    acked.push(99_000_000);
    eprintln!(
        "{} acknowledged, {} not; exited {took:?} after the straddling body was complete",
        acked.len(),
        unacked.len()
    );
    let log = collector.log();
    assert!(
        log.contains("shutting down") && log.contains("stopped"),
        "{log}"
    );

    // A sound database, holding every acknowledged report: sent again, each is a duplicate.
    steward_collector::store::backup::inspect(&collector.data_dir().join("steward.db")).unwrap();
    tokio::task::block_in_place(|| collector.serve());
    let (client, _) = agent_client(&state);
    for seq in &acked {
        assert_eq!(
            send(&client, &url, envelope(&agent_id, *seq))
                .await
                .as_deref(),
            Some("duplicate"),
            "acknowledged report {seq} was lost"
        );
    }
}
