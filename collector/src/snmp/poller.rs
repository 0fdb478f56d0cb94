//! The SNMP poller: polls every target at its interval, concurrently with a bound on devices in
//! flight, turns what the MIB modules decode into a [`DevicePoll`] (CI facts, metrics with
//! rates from the previous poll) and stores it. A failing device gets one status change (and
//! one log line) when it starts failing, not one per poll.

use std::collections::{BTreeSet, HashMap};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::client::{Credentials, SnmpError};
use super::config::SnmpConfig;
use super::mib::{self, DeviceData, rates};
use super::session::{SessionOptions, SnmpSession};
use super::walk::{WalkOptions, walk};
use crate::cmdb::identify::physical_mac;
use crate::store::{DevicePoll, PolledNeighbour, SnmpTargetRow, Store};

/// What one poll found, before storing.
#[derive(Debug, Clone)]
pub struct Polled {
    pub data: DeviceData,
    /// Varbinds received over all walks.
    pub varbinds: usize,
    /// Requests sent.
    pub requests: usize,
    /// Subtrees the device does not have (empty walks), by module name; not an error.
    pub walks_incomplete: Vec<String>,
    pub at: Instant,
    pub at_ms: i64,
}

/// Resolves `host:port` (names through the system resolver) to one address.
pub fn resolve(host: &str, port: u16) -> Result<SocketAddr, SnmpError> {
    let text = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    text.to_socket_addrs()
        .map_err(|e| SnmpError::Config {
            detail: format!("cannot resolve {host}: {e}"),
        })?
        .next()
        .ok_or_else(|| SnmpError::Config {
            detail: format!("{host} has no address"),
        })
}

pub fn session_options(config: &SnmpConfig) -> SessionOptions {
    SessionOptions {
        timeout: Duration::from_millis(config.timeout_ms),
        retries: config.retries,
    }
}

pub fn walk_options(config: &SnmpConfig) -> WalkOptions {
    WalkOptions {
        max_repetitions: config.max_repetitions,
        // MIB module roots are tables and groups, never scalar instances.
        get_root_if_empty: false,
        ..WalkOptions::default()
    }
}

/// Polls one device: walks every MIB module's subtrees and decodes them. The system group is
/// walked first, so a device that does not answer fails after one timeout, not one per subtree.
/// A walk that stops early (limits, a loop) is reported in the problems, never silently short.
pub async fn poll_device(
    addr: SocketAddr,
    credentials: Credentials,
    config: &SnmpConfig,
) -> Result<Polled, SnmpError> {
    let mut session = SnmpSession::new(addr, credentials, session_options(config))?;
    let opts = walk_options(config);
    let mut varbinds = Vec::new();
    let mut requests = 0;
    let mut incomplete = Vec::new();
    let at = Instant::now();
    let at_ms = crate::now_ms();
    for root in mib::all_roots() {
        let walked = walk(&mut session, &root, &opts).await?;
        requests += walked.requests;
        if !walked.is_complete() {
            incomplete.push(format!("walk of {root} stopped early: {}", walked.end));
        }
        varbinds.extend(walked.varbinds);
    }
    varbinds.sort_by(|a, b| a.oid.cmp(&b.oid));
    varbinds.dedup_by(|a, b| a.oid == b.oid);
    let mut data = mib::decode_device(&varbinds);
    data.problems.extend(incomplete.iter().cloned());
    Ok(Polled {
        data,
        varbinds: varbinds.len(),
        requests,
        walks_incomplete: incomplete,
        at,
        at_ms,
    })
}

/// The status a failed poll leaves on its target. No answer and a refused port (ICMP
/// unreachable) are both `unreachable`: to an operator the device is not there either way; the
/// detail says which.
pub fn status_of(error: &SnmpError) -> &'static str {
    match error {
        SnmpError::Timeout { .. } | SnmpError::Io { .. } => "unreachable",
        SnmpError::AuthFailure { .. } => "auth_failed",
        SnmpError::Config { .. } => "config_error",
        _ => "error",
    }
}

/// Builds what the store keeps from a poll, with rates against `previous` (the same device's
/// last sample, if any).
pub fn device_poll(
    polled: &Polled,
    previous: Option<&rates::Sample>,
) -> (DevicePoll, rates::Sample) {
    let data = &polled.data;
    let sample = rates::Sample::new(polled.at, data);
    let computed = previous.map(|prev| rates::compute(prev, &sample));
    let system = data.system.clone().unwrap_or_default();
    let chassis = data.chassis();
    let text = |v: Option<&String>| v.cloned().unwrap_or_default();
    let mut attributes = serde_json::Map::new();
    let mut put = |key: &str, value: serde_json::Value| {
        if !value.is_null() && value != json!("") {
            attributes.insert(key.into(), value);
        }
    };
    put("sys_descr", json!(system.descr));
    put("sys_object_id", json!(system.object_id));
    put("location", json!(system.location));
    put("contact", json!(system.contact));
    put("uptime_secs", json!(system.uptime_secs));
    if let Some(c) = chassis {
        put("hardware_rev", json!(c.hardware_rev));
        put("firmware", json!(c.firmware_rev));
        put("software", json!(c.software_rev));
    }
    let interfaces: Vec<serde_json::Value> = data
        .interfaces
        .iter()
        .map(|i| {
            json!({
                "index": i.index, "name": i.name, "alias": i.alias, "type": i.if_type_name,
                "speed_bps": i.speed_bps, "mac": i.mac,
            })
        })
        .collect();
    if !interfaces.is_empty() {
        put("interfaces", json!(interfaces));
    }
    let entities: Vec<serde_json::Value> = data
        .entities
        .iter()
        .filter(|e| e.serial.as_deref().is_some_and(|s| !s.is_empty()) || e.model_name.is_some())
        .map(|e| {
            json!({
                "name": e.name.clone().or_else(|| e.descr.clone()).unwrap_or_default(),
                "class": e.class, "model": e.model_name, "serial": e.serial,
                "hardware_rev": e.hardware_rev, "firmware_rev": e.firmware_rev,
                "software_rev": e.software_rev, "fru": e.is_fru,
            })
        })
        .collect();
    if !entities.is_empty() {
        put("entities", json!(entities));
    }
    let macs: BTreeSet<String> = data
        .interfaces
        .iter()
        .filter_map(|i| i.mac.as_deref().and_then(physical_mac))
        .collect();
    let neighbours = data
        .neighbours
        .iter()
        .map(|n| {
            let chassis_mac = match n.remote_chassis_id_type.as_deref() {
                Some("macAddress") => n.remote_chassis_id.clone().unwrap_or_default(),
                _ => String::new(),
            };
            PolledNeighbour {
                via: match n.protocol {
                    mib::NeighbourProtocol::Lldp => "lldp".into(),
                    mib::NeighbourProtocol::Cdp => "cdp".into(),
                },
                local_port: n.local_port.clone().unwrap_or_default(),
                remote_name: n.remote_name.clone().unwrap_or_default(),
                remote_mac: chassis_mac,
                remote_port: n.remote_port.clone().unwrap_or_default(),
                remote_mgmt_addr: n.remote_mgmt_addr.clone().unwrap_or_default(),
                remote_description: n
                    .remote_platform
                    .clone()
                    .or_else(|| n.remote_descr.clone())
                    .unwrap_or_default(),
            }
        })
        .collect();
    let fdb = data
        .fdb
        .iter()
        .filter(|e| e.is_host_location())
        .map(|e| {
            let port = e
                .port_name
                .clone()
                .unwrap_or_else(|| format!("bridge port {}", e.bridge_port));
            (e.mac.clone(), port)
        })
        .collect();
    let by_index: HashMap<u32, &rates::InterfaceRates> = computed
        .iter()
        .flat_map(|r| r.interfaces.iter())
        .map(|r| (r.if_index, r))
        .collect();
    let interface_metrics: Vec<serde_json::Value> = data
        .interfaces
        .iter()
        .map(|i| {
            let r = by_index.get(&i.index);
            json!({
                "index": i.index, "name": i.name,
                "admin_status": i.admin_status, "oper_status": i.oper_status,
                "in_bps": r.and_then(|r| r.in_bits_per_sec),
                "out_bps": r.and_then(|r| r.out_bits_per_sec),
                "in_util_pct": r.and_then(|r| r.in_utilisation_pct),
                "out_util_pct": r.and_then(|r| r.out_utilisation_pct),
                "in_errors_ps": r.and_then(|r| r.in_errors_per_sec),
                "out_errors_ps": r.and_then(|r| r.out_errors_per_sec),
                "in_discards_ps": r.and_then(|r| r.in_discards_per_sec),
                "out_discards_ps": r.and_then(|r| r.out_discards_per_sec),
                "rebaselined": r.and_then(|r| r.rebaselined),
            })
        })
        .collect();
    let metrics = json!({
        "uptime_secs": system.uptime_secs,
        "cpu_pct": data.processors.average_pct,
        "cpus": data.processors.cpus,
        "storage": data.storage,
        "interfaces": interface_metrics,
        "rates_over_secs": computed.as_ref().map(|r| r.elapsed_secs),
        "rebaselined": computed.as_ref().and_then(|r| r.rebaselined),
        "problems": data.problems.iter().chain(computed.iter().flat_map(|r| r.problems.iter())).collect::<Vec<_>>(),
        "varbinds": polled.varbinds,
    });
    let poll = DevicePoll {
        at: polled.at_ms,
        sys_name: text(system.name.as_ref()),
        vendor: chassis
            .and_then(|c| c.mfg_name.clone())
            .filter(|m| !m.is_empty())
            .or(system.vendor.clone())
            .unwrap_or_default(),
        model: chassis
            .and_then(|c| c.model_name.clone())
            .unwrap_or_default(),
        serial: chassis.and_then(|c| c.serial.clone()).unwrap_or_default(),
        attributes,
        macs,
        neighbours,
        fdb,
        metrics,
    };
    (poll, sample)
}

/// Opens a target's sealed credentials.
pub fn credentials_of(
    secrets: &crate::secrets::SecretBox,
    target: &SnmpTargetRow,
) -> anyhow::Result<Credentials> {
    let plain = secrets.open(
        &SnmpTargetRow::seal_context(&target.host, target.port),
        &target.sealed,
    )?;
    Ok(serde_json::from_slice(&plain)?)
}

/// Seals credentials for a target.
pub fn seal_credentials(
    secrets: &crate::secrets::SecretBox,
    host: &str,
    port: u16,
    credentials: &Credentials,
) -> anyhow::Result<Vec<u8>> {
    let plain = serde_json::to_vec(credentials)?;
    secrets.seal(&SnmpTargetRow::seal_context(host, port), &plain)
}

/// The running poller's shared state: the previous sample of each target, for rates.
#[derive(Debug, Default)]
pub struct PollerState {
    previous: Mutex<HashMap<i64, rates::Sample>>,
}

impl PollerState {
    fn take(&self, id: i64) -> Option<rates::Sample> {
        self.previous.lock().ok()?.remove(&id)
    }

    /// Drops the samples of targets no longer listed (removed ones).
    fn retain(&self, listed: &std::collections::HashSet<i64>) {
        if let Ok(mut map) = self.previous.lock() {
            map.retain(|id, _| listed.contains(id));
        }
    }

    fn put(&self, id: i64, sample: rates::Sample) {
        if let Ok(mut map) = self.previous.lock() {
            map.insert(id, sample);
        }
    }
}

/// Polls one stored target and stores the outcome. Returns the CI on success.
pub async fn poll_and_store(
    store: &Store,
    secrets: &crate::secrets::SecretBox,
    config: &SnmpConfig,
    identification: &crate::cmdb::identify::IdentifyConfig,
    state: &PollerState,
    target: &SnmpTargetRow,
    events: Option<&crate::events::EventService>,
) -> Result<(i64, Polled), SnmpError> {
    let result = async {
        let credentials = credentials_of(secrets, target).map_err(|e| SnmpError::Config {
            detail: e.to_string(),
        })?;
        let addr = resolve(&target.host, target.port)?;
        // A device already known to be unreachable gets one attempt, not 1 + retries: many
        // dead devices must not hold the in-flight slots the live ones need (with the
        // defaults, 2 s a poll instead of 6 s).
        if target.status == "unreachable" {
            let once = SnmpConfig {
                retries: 0,
                ..config.clone()
            };
            poll_device(addr, credentials, &once).await
        } else {
            poll_device(addr, credentials, config).await
        }
    }
    .await;
    let at = crate::now_ms();
    match result {
        Ok(polled) => {
            let previous = state.take(target.id);
            let (poll, sample) = device_poll(&polled, previous.as_ref());
            state.put(target.id, sample);
            let metrics = poll.metrics.clone();
            let ci = store
                .record_device_poll(target.id, poll, identification.clone())
                .await
                .map_err(|e| SnmpError::Io {
                    detail: format!("storing the poll failed: {e}"),
                })?;
            if let Some(events) = events {
                events.device(ci, &metrics);
            }
            if target.status != "ok" {
                tracing::info!(target = %format!("{}:{}", target.host, target.port), ci, "SNMP target answers");
            }
            Ok((ci, polled))
        }
        Err(error) => {
            let status = status_of(&error);
            // A device that does not answer, or refuses our credentials, is one event
            // ("snmp-unreachable"; its description covers both); the status says which.
            if let (Some(events), Some(ci), "unreachable" | "auth_failed") =
                (events, target.ci_id, status)
            {
                events.unreachable(ci);
            }
            match store
                .set_snmp_status(target.id, status.into(), error.to_string(), at)
                .await
            {
                Ok(true) => tracing::warn!(
                    target = %format!("{}:{}", target.host, target.port),
                    status,
                    %error,
                    "SNMP target failing (logged once until it changes)"
                ),
                Ok(false) => {}
                Err(store_error) => tracing::warn!(%store_error, "cannot record SNMP status"),
            }
            Err(error)
        }
    }
}

/// A target's poll in flight: its slot and its mark, released when dropped.
struct InFlight {
    set: Arc<Mutex<BTreeSet<i64>>>,
    id: i64,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut set) = self.set.lock() {
            set.remove(&self.id);
        }
    }
}

/// Runs the poller until the task is aborted: every target at its interval, at most
/// `max_in_flight` at once. The target list is re-read every few seconds and whenever
/// `changed` is notified (an admin added or removed one).
pub async fn run(
    store: Store,
    secrets: Arc<crate::secrets::SecretBox>,
    config: SnmpConfig,
    identification: crate::cmdb::identify::IdentifyConfig,
    changed: Arc<tokio::sync::Notify>,
    state: Arc<PollerState>,
    events: Option<Arc<crate::events::EventService>>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(config.max_in_flight));
    let config = Arc::new(config);
    let identification = Arc::new(identification);
    // Next due time per target id; targets in flight are not started again.
    let mut due: HashMap<i64, Instant> = HashMap::new();
    let in_flight: Arc<Mutex<BTreeSet<i64>>> = Arc::default();
    loop {
        let targets = match store.list_snmp_targets().await {
            Ok(t) => t,
            Err(error) => {
                tracing::warn!(%error, "cannot read SNMP targets");
                Vec::new()
            }
        };
        let now = Instant::now();
        let listed: std::collections::HashSet<i64> = targets.iter().map(|t| t.id).collect();
        due.retain(|id, _| listed.contains(id));
        state.retain(&listed);
        for target in targets {
            let next = due.entry(target.id).or_insert_with(|| {
                // Spread first polls over the interval so a restart does not burst; each target
                // keeps its phase after that.
                let spread = (target.id.unsigned_abs() * 7919)
                    % u64::from(target.interval_secs.max(1) * 1000);
                now + Duration::from_millis(spread)
            });
            let busy = in_flight
                .lock()
                .map(|s| s.contains(&target.id))
                .unwrap_or(true);
            if *next > now || busy {
                continue;
            }
            *next = now + Duration::from_secs(u64::from(target.interval_secs.max(1)));
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            if let Ok(mut set) = in_flight.lock() {
                set.insert(target.id);
            }
            let (store, secrets, config, identification, state, in_flight, events) = (
                store.clone(),
                secrets.clone(),
                config.clone(),
                identification.clone(),
                state.clone(),
                in_flight.clone(),
                events.clone(),
            );
            tokio::spawn(async move {
                // Released on every exit, a panic included, so the target is polled again.
                let _done = InFlight {
                    set: in_flight,
                    id: target.id,
                    _permit: permit,
                };
                let _ = poll_and_store(
                    &store,
                    &secrets,
                    &config,
                    &identification,
                    &state,
                    &target,
                    events.as_deref(),
                )
                .await;
            });
        }
        let next_due = due.values().min().copied();
        let sleep = next_due
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_secs(5))
            .clamp(Duration::from_millis(50), Duration::from_secs(5));
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            () = changed.notified() => {}
        }
    }
}
