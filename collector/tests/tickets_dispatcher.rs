//! The dispatcher end to end inside one process: a real SQLite store, event changes queuing
//! outbox rows, and deliveries to a real HTTP webhook receiver that checks every signature
//! (and can fail, rate-limit or stall on purpose); a stand-in connector where a ticketing
//! system must lose a create's answer on cue. Through the binaries and a real Request Tracker
//! these paths are tested again in `tests/tests/tickets.rs`.
#![allow(clippy::unwrap_used)]

mod contract;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use contract::{Fault, Seen, Shared};
use steward_collector::store::{EventChange, Store};
use steward_collector::tickets::dispatcher::Dispatcher;
use steward_collector::tickets::route::Destination;
use steward_collector::tickets::{
    BoxFuture, Connector, ConnectorConfig, ConnectorError, Ticket, TicketRef, TicketsConfig, Update,
};

const SECRET: &str = "s3cret-webhook-key";

struct Setup {
    _dir: tempfile::TempDir,
    store: Store,
    ci: i64,
    secret_file: std::path::PathBuf,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("steward.db"), 64, 4096).unwrap();
    let ci = store
        .create_service("web-01".into(), String::new())
        .await
        .unwrap();
    let secret_file = dir.path().join("webhook.secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    Setup {
        _dir: dir,
        store,
        ci,
        secret_file,
    }
}

fn settings() -> TicketsConfig {
    TicketsConfig {
        retry_initial_ms: 50,
        retry_max_secs: 1,
        max_attempts: 5,
        ..TicketsConfig::default()
    }
}

fn webhook_config(name: &str, url: &str, secret: &std::path::Path, extra: &str) -> ConnectorConfig {
    toml::from_str(&format!(
        "name = \"{name}\"\ntype = \"webhook\"\nurl = \"{url}/hook\"\nsecret_file = \"{}\"\ntimeout_secs = 2\n{extra}",
        secret.display()
    ))
    .unwrap()
}

/// A receiver that checks each call's signature and timestamp, as a real one must.
async fn receiver() -> contract::ContractServer<()> {
    contract::start(|seen: &Seen, _: &Shared<()>| {
        let header = |name: &str| {
            seen.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let Ok(timestamp) = header("x-steward-timestamp").parse::<i64>() else {
            return contract::error(400, serde_json::json!({"message": "no timestamp"}));
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        if (now - timestamp).abs() > 300 {
            return contract::error(401, serde_json::json!({"message": "stale timestamp"}));
        }
        let expected =
            steward_collector::tickets::webhook::signature(SECRET.as_bytes(), timestamp, &seen.raw);
        if header("x-steward-signature") != expected
            || seen.method != "POST"
            || seen.path != "/hook"
        {
            return contract::error(401, serde_json::json!({"message": "bad signature"}));
        }
        contract::json(200, serde_json::json!({"ok": true}))
    })
    .await
}

fn change(ci: i64, state: &str, severity: &str, escalate: Option<Vec<Destination>>) -> EventChange {
    EventChange {
        rule: "filesystem-used".into(),
        ci_id: ci,
        instance: "/var".into(),
        to_state: state.into(),
        severity: severity.into(),
        value: Some(96.0),
        threshold: Some(95.0),
        at: steward_collector::now_ms(),
        summary: "web-01: /var 96 % used".into(),
        description: "Filesystem /var on web-01 is 96 % used.".into(),
        silenced_by: None,
        symptom_of_ci: None,
        note: String::new(),
        escalate,
    }
}

fn to(connector: &str) -> Option<Vec<Destination>> {
    Some(vec![Destination {
        connector: connector.into(),
        queue: String::new(),
    }])
}

/// The correlation key the dispatcher gives an event's ticket.
async fn key(store: &Store, event: i64) -> String {
    let (row, _) = store.event(event).await.unwrap().unwrap();
    steward_collector::tickets::dispatcher::correlation_key("steward", event, row.first_seen_at)
}

/// Waits (at most 10 s) until the event's ticket on `connector` is known.
async fn ticket_known(store: &Store, event: i64, connector: &str) {
    for _ in 0..400 {
        if store
            .ticket_link(event, connector.into())
            .await
            .unwrap()
            .is_some()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("event {event}'s ticket never became known");
}

/// Polls until `check` holds (bounded: 20 s).
async fn until<F: Fn() -> bool>(what: &str, check: F) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ops(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .filter(|s| s.status == 200)
        .map(|s| s.body["op"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalated_event_reaches_the_webhook_signed_and_its_changes_follow_in_order() {
    let s = setup().await;
    let server = receiver().await;
    let config = webhook_config("hook", &server.url, &s.secret_file, "");
    let dispatcher = Dispatcher::new(s.store.clone(), settings(), &[config]).unwrap();
    let task = tokio::spawn(dispatcher.run());
    let started = Instant::now();
    let event = fire(&s.store, change(s.ci, "firing", "warning", to("hook"))).await;
    until("the open", || !server.shared.seen().is_empty()).await;
    eprintln!(
        "open delivered {:?} after the event fired",
        started.elapsed()
    );
    s.store
        .apply_event_changes(vec![change(s.ci, "firing", "critical", None)])
        .await
        .unwrap();
    s.store.ack_event(event, "alice".into()).await.unwrap();
    s.store
        .apply_event_changes(vec![change(s.ci, "flapping", "critical", None)])
        .await
        .unwrap();
    s.store
        .apply_event_changes(vec![change(s.ci, "resolved", "critical", None)])
        .await
        .unwrap();
    until("four more", || server.shared.seen().len() >= 5).await;
    let seen = server.shared.seen();
    assert_eq!(
        ops(&seen),
        ["open", "comment", "acknowledge", "comment", "resolve"],
        "in order, each once"
    );
    let open = &seen[0].body;
    assert_eq!(open["correlation_key"], key(&s.store, event).await);
    assert_eq!(open["ci"]["name"], "web-01");
    assert!(
        open["body"]
            .as_str()
            .unwrap()
            .contains("Configuration item")
    );
    let notes: Vec<&str> = seen
        .iter()
        .map(|s| s.body["note"].as_str().unwrap())
        .collect();
    assert!(notes[1].contains("warning -> critical"), "{notes:?}");
    assert!(notes[2].contains("alice"), "{notes:?}");
    assert!(notes[3].starts_with("Flapping"), "{notes:?}");
    assert!(notes[4].starts_with("Resolved"), "{notes:?}");
    let event_key = key(&s.store, event).await;
    assert!(
        seen.iter()
            .skip(1)
            .all(|s| s.body["ticket_id"] == event_key)
    );
    // Everything done; the ticket is known and resolved.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let rows = s.store.list_outbox(false, 100).await.unwrap();
    assert!(rows.iter().all(|r| r.state == "done"), "{rows:?}");
    let link = s
        .store
        .ticket_link(event, "hook".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link.status, "resolved");
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_honouring_retry_after_then_dead_lettered_and_retried_by_hand() {
    let s = setup().await;
    let server = receiver().await;
    let config = webhook_config("hook", &server.url, &s.secret_file, "");
    let task = tokio::spawn(
        Dispatcher::new(s.store.clone(), settings(), &[config])
            .unwrap()
            .run(),
    );
    // Two 500s, then a 429 asking for 1 s: delivered once, no earlier than that second.
    server.shared.inject(None, Fault::Status(500));
    server.shared.inject(None, Fault::Status(503));
    server.shared.inject(
        None,
        Fault::TooMany {
            retry_after_secs: 1,
        },
    );
    s.store
        .apply_event_changes(vec![change(s.ci, "firing", "warning", to("hook"))])
        .await
        .unwrap();
    until("the 429", || server.shared.seen().len() >= 3).await;
    let limited_at = Instant::now();
    until("the delivery", || server.shared.seen().len() >= 4).await;
    assert!(
        limited_at.elapsed() >= Duration::from_millis(900),
        "Retry-After honoured: retried after {:?}",
        limited_at.elapsed()
    );
    let seen = server.shared.seen();
    assert_eq!(
        seen.iter().map(|s| s.status).collect::<Vec<_>>(),
        [500, 503, 429, 200]
    );
    // A receiver that keeps failing: max_attempts (5) tries, then the dead letter.
    for _ in 0..5 {
        server.shared.inject(None, Fault::Status(500));
    }
    s.store
        .apply_event_changes(vec![change(s.ci, "resolved", "warning", None)])
        .await
        .unwrap();
    let store = s.store.clone();
    let mut failed = Vec::new();
    for _ in 0..400 {
        failed = store.list_outbox(true, 10).await.unwrap();
        if !failed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(failed.len(), 1, "moved to the dead letter");
    assert_eq!(failed[0].op, "resolve");
    assert_eq!(failed[0].attempts, 5);
    assert!(
        failed[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("gave up after 5 tries")
    );
    assert!(
        failed[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("HTTP 500")
    );
    assert_eq!(server.shared.seen().len(), 9);
    // The admin retries it: delivered.
    assert_eq!(store.retry_outbox(Some(failed[0].id)).await.unwrap(), 1);
    until("the retried resolve", || server.shared.seen().len() >= 10).await;
    assert_eq!(ops(&server.shared.seen()), ["open", "resolve"]);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refire_within_the_window_reopens_the_ticket_or_opens_a_new_one_by_configuration() {
    let s = setup().await;
    let server = receiver().await;
    let reopen = webhook_config("reopen", &server.url, &s.secret_file, "");
    let fresh = webhook_config("fresh", &server.url, &s.secret_file, "on_refire = \"new\"");
    let task = tokio::spawn(
        Dispatcher::new(s.store.clone(), settings(), &[reopen, fresh])
            .unwrap()
            .run(),
    );
    let both = || {
        Some(vec![
            Destination {
                connector: "reopen".into(),
                queue: String::new(),
            },
            Destination {
                connector: "fresh".into(),
                queue: String::new(),
            },
        ])
    };
    let first = fire(&s.store, change(s.ci, "firing", "warning", both())).await;
    s.store
        .apply_event_changes(vec![change(s.ci, "resolved", "warning", None)])
        .await
        .unwrap();
    until("open and resolve twice", || server.shared.seen().len() >= 4).await;
    let second = fire(&s.store, change(s.ci, "firing", "warning", both())).await;
    assert_ne!(first, second, "a new event");
    until("the re-fire", || server.shared.seen().len() >= 6).await;
    // The answers are recorded after the receiver has seen the requests.
    ticket_known(&s.store, second, "reopen").await;
    ticket_known(&s.store, second, "fresh").await;
    let seen = server.shared.seen();
    let last_two: Vec<(String, String)> = seen[4..]
        .iter()
        .map(|s| {
            (
                s.body["op"].as_str().unwrap().into(),
                s.body["correlation_key"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        last_two.contains(&("reopen".into(), key(&s.store, first).await)),
        "{last_two:?}"
    );
    assert!(
        last_two.contains(&("open".into(), key(&s.store, second).await)),
        "{last_two:?}"
    );
    let reopened = s
        .store
        .ticket_link(second, "reopen".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        reopened.external_id,
        key(&s.store, first).await,
        "the same ticket"
    );
    let new = s
        .store
        .ticket_link(second, "fresh".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(new.external_id, key(&s.store, second).await);
    task.abort();
}

/// A ticketing system in memory that is not idempotent: it creates whatever it is sent.
/// `lose_next_answer` makes it apply the next create and then fail as if the answer was lost;
/// `stall` holds creates until released (a collector killed mid-call).
#[derive(Debug, Default)]
struct System {
    tickets: Mutex<Vec<(String, String)>>,
    lose_next_answer: Mutex<bool>,
    stall: tokio::sync::Notify,
    stalling: Mutex<bool>,
    finds: Mutex<u32>,
    /// Reopens refused (the old ticket was closed for good), and those asked for.
    refuse_reopen: Mutex<bool>,
    reopens: Mutex<u32>,
}

#[derive(Debug)]
struct Desk(Arc<System>);

impl Connector for Desk {
    fn kind(&self) -> &'static str {
        "desk"
    }

    fn find<'a>(
        &'a self,
        ticket: &'a Ticket,
    ) -> BoxFuture<'a, Result<Option<TicketRef>, ConnectorError>> {
        Box::pin(async move {
            *self.0.finds.lock().unwrap() += 1;
            Ok(self
                .0
                .tickets
                .lock()
                .unwrap()
                .iter()
                .position(|(key, _)| *key == ticket.correlation_key)
                .map(|n| TicketRef {
                    id: (n + 1).to_string(),
                    display: format!("#{}", n + 1),
                }))
        })
    }

    fn create<'a>(
        &'a self,
        ticket: &'a Ticket,
    ) -> BoxFuture<'a, Result<TicketRef, ConnectorError>> {
        Box::pin(async move {
            // Made before the flag is read: `notify_waiters` reaches a `Notified` from its
            // creation on, so a release between the check and the wait is not missed.
            let released = self.0.stall.notified();
            if *self.0.stalling.lock().unwrap() {
                released.await;
            }
            let n = {
                let mut tickets = self.0.tickets.lock().unwrap();
                tickets.push((ticket.correlation_key.clone(), ticket.summary.clone()));
                tickets.len()
            };
            if std::mem::take(&mut *self.0.lose_next_answer.lock().unwrap()) {
                return Err(ConnectorError::Retryable {
                    message: "create: timed out".into(),
                    retry_after: None,
                    maybe_applied: true,
                });
            }
            Ok(TicketRef {
                id: n.to_string(),
                display: format!("#{n}"),
            })
        })
    }

    fn update<'a>(
        &'a self,
        _: &'a TicketRef,
        _: &'a Ticket,
        update: Update,
        _: &'a str,
    ) -> BoxFuture<'a, Result<(), ConnectorError>> {
        Box::pin(async move {
            if update == Update::Reopen {
                *self.0.reopens.lock().unwrap() += 1;
                if *self.0.refuse_reopen.lock().unwrap() {
                    return Err(ConnectorError::rejected("HTTP 400: the ticket is closed"));
                }
            }
            Ok(())
        })
    }
}

fn desk_config(on_refire: &str) -> ConnectorConfig {
    // Any kind will do for the common settings; the connector itself is the stand-in.
    toml::from_str(&format!(
        "name = \"desk\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9\"\nsecret_file = \"/nonexistent\"\non_refire = \"{on_refire}\"\n"
    ))
    .unwrap()
}

/// A dispatcher whose one connector, "desk", is the stand-in for `system`.
fn desk_dispatcher(store: &Store, system: &Arc<System>, on_refire: &str) -> Dispatcher {
    Dispatcher::with_connectors(
        store.clone(),
        settings(),
        vec![(
            desk_config(on_refire),
            Box::new(Desk(system.clone())) as Box<dyn Connector>,
        )],
    )
}

/// Fires `change` and returns its event's id.
async fn fire(store: &Store, change: EventChange) -> i64 {
    store.apply_event_changes(vec![change]).await.unwrap()[0].unwrap()
}

/// The correlation keys of the tickets `system` holds, in creation order.
fn ticket_keys(system: &System) -> Vec<String> {
    system
        .tickets
        .lock()
        .unwrap()
        .iter()
        .map(|t| t.0.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_was_lost_is_found_not_repeated_also_after_a_restart() {
    let s = setup().await;
    let system = Arc::new(System::default());
    let start = |system: &Arc<System>| tokio::spawn(desk_dispatcher(&s.store, system, "new").run());
    // The answer is lost: the retry searches, finds, and does not create again.
    *system.lose_next_answer.lock().unwrap() = true;
    let task = start(&system);
    let first = fire(&s.store, change(s.ci, "firing", "warning", to("desk"))).await;
    let store = s.store.clone();
    ticket_known(&store, first, "desk").await;
    assert_eq!(system.tickets.lock().unwrap().len(), 1, "created once");
    assert_eq!(
        *system.finds.lock().unwrap(),
        1,
        "searched before the second try"
    );
    assert_eq!(
        store
            .ticket_link(first, "desk".into())
            .await
            .unwrap()
            .unwrap()
            .display,
        "#1"
    );
    // The collector stops while a create is in the system's hands; it lands anyway. After the
    // restart the row is still pending and marked sent: found, not created twice.
    *system.stalling.lock().unwrap() = true;
    s.store
        .apply_event_changes(vec![change(s.ci, "resolved", "warning", None)])
        .await
        .unwrap();
    let second = fire(&s.store, change(s.ci, "firing", "critical", to("desk"))).await;
    // The resolve goes first (order per key), then the new event's create stalls.
    create_in_flight(&store, second).await;
    task.abort();
    let _ = task.await;
    *system.stalling.lock().unwrap() = false;
    system.stall.notify_waiters();
    // What the stalled call would have done on the real system: the ticket exists.
    let second_key = key(&s.store, second).await;
    system
        .tickets
        .lock()
        .unwrap()
        .push((second_key, "landed".into()));
    let finds_before = *system.finds.lock().unwrap();
    let task = start(&system);
    ticket_known(&store, second, "desk").await;
    let keys = ticket_keys(&system);
    assert_eq!(
        keys,
        [key(&s.store, first).await, key(&s.store, second).await],
        "no duplicate"
    );
    assert_eq!(*system.finds.lock().unwrap(), finds_before + 1);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_reopen_opens_a_new_ticket_instead_of_blocking_the_event() {
    let s = setup().await;
    let system = Arc::new(System::default());
    let task = tokio::spawn(desk_dispatcher(&s.store, &system, "reopen").run());
    let store = s.store.clone();
    let first = fire(&store, change(s.ci, "firing", "warning", to("desk"))).await;
    store
        .apply_event_changes(vec![change(s.ci, "resolved", "warning", None)])
        .await
        .unwrap();
    // The old ticket was closed for good in the desk: its reopen is refused.
    *system.refuse_reopen.lock().unwrap() = true;
    let second = fire(&store, change(s.ci, "firing", "warning", to("desk"))).await;
    ticket_known(&store, second, "desk").await;
    assert_eq!(*system.reopens.lock().unwrap(), 1, "a reopen was tried");
    let keys = ticket_keys(&system);
    assert_eq!(keys, [key(&store, first).await, key(&store, second).await]);
    assert!(
        store.list_outbox(true, 10).await.unwrap().is_empty(),
        "nothing dead"
    );
    task.abort();
}

/// Waits (at most 10 s) until the create of `event` is in the desk's hands (marked sent).
async fn create_in_flight(store: &Store, event: i64) {
    for _ in 0..400 {
        let sent = store
            .list_outbox(false, 10)
            .await
            .unwrap()
            .into_iter()
            .any(|r| r.event_id == event && r.attempts == 1);
        if sent {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("event {event}'s create never left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_shutdown_a_delivery_in_flight_finishes_within_the_bound_or_stays_pending() {
    let s = setup().await;
    let system = Arc::new(System::default());
    let start = |drain: Duration| {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(desk_dispatcher(&s.store, &system, "new").run_until(
            async {
                let _ = stopped.await;
            },
            drain,
        ));
        (stop, task)
    };
    let store = s.store.clone();

    // Stopped while a create is in the desk's hands: it is waited for, and recorded.
    *system.stalling.lock().unwrap() = true;
    let (stop, task) = start(Duration::from_secs(10));
    let first = fire(&store, change(s.ci, "firing", "warning", to("desk"))).await;
    create_in_flight(&store, first).await;
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!task.is_finished(), "the delivery in flight is waited for");
    *system.stalling.lock().unwrap() = false;
    system.stall.notify_waiters();
    assert_eq!(task.await.unwrap(), 0, "nothing was cut short");
    assert!(
        store
            .ticket_link(first, "desk".into())
            .await
            .unwrap()
            .is_some(),
        "its ticket is recorded before the dispatcher returns"
    );

    // One that outlasts the bound is stopped and stays pending for the next start.
    store
        .apply_event_changes(vec![change(s.ci, "resolved", "warning", None)])
        .await
        .unwrap();
    *system.stalling.lock().unwrap() = true;
    let (stop, task) = start(Duration::from_millis(300));
    let second = fire(&store, change(s.ci, "firing", "critical", to("desk"))).await;
    create_in_flight(&store, second).await;
    let stopped_at = Instant::now();
    stop.send(()).unwrap();
    assert_eq!(task.await.unwrap(), 1, "one delivery cut short");
    // It waited for the delivery up to the 300 ms bound, and not much longer (wide: a loaded
    // machine).
    let took = stopped_at.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(9),
        "stopped after {took:?}, want about the 300 ms bound"
    );
    let row = store
        .list_outbox(false, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.event_id == second)
        .unwrap();
    assert_eq!(row.state, "pending");
    *system.stalling.lock().unwrap() = false;
    system.stall.notify_waiters();
}
