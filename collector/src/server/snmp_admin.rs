//! The admin API's SNMP endpoints: targets (add, list, remove), a one-shot poll, and discovery
//! of a range. Credentials arrive over the admin API's TLS, are sealed before they are stored,
//! and are never returned.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::snmp::client::{Credentials, SnmpClient};
use crate::snmp::poller;
use crate::snmp::session::{SessionOptions, SnmpSession};
use crate::snmp::types::{Oid, Value};
use crate::store::{DevicePoll, NewSnmpTarget, SnmpTargetRow};

#[derive(Debug, Serialize, Deserialize)]
pub struct AddTarget {
    pub host: String,
    pub port: u16,
    pub credentials: Credentials,
    #[serde(default)]
    pub interval_secs: Option<u32>,
    #[serde(default)]
    pub replace: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TargetKey {
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PollRequest {
    pub host: String,
    pub port: u16,
    /// For a device that is not a target; a target's stored credentials are used otherwise.
    #[serde(default)]
    pub credentials: Option<Credentials>,
}

/// What `snmp poll` shows.
#[derive(Debug, Serialize, Deserialize)]
pub struct PollAnswer {
    pub host: String,
    pub port: u16,
    /// Whether the result was stored (the device is a target).
    pub stored: bool,
    pub ci_id: Option<i64>,
    pub varbinds: usize,
    pub requests: usize,
    pub wall_ms: u64,
    pub device: DevicePoll,
    pub problems: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DiscoverRequest {
    /// `10.0.0.0/24`, `2001:db8::/120`, or one address.
    pub cidr: String,
    pub port: u16,
    pub credentials: Credentials,
    #[serde(default)]
    pub interval_secs: Option<u32>,
    /// Add what answers as targets (else only report it).
    #[serde(default = "yes")]
    pub add: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Discovered {
    pub host: String,
    pub port: u16,
    pub sys_name: String,
    pub sys_descr: String,
    /// Added now (false if it was a target already or `add` was off).
    pub added: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DiscoverAnswer {
    pub probed: usize,
    pub answered: Vec<Discovered>,
    pub wall_ms: u64,
}

pub async fn list_targets(
    State(state): State<Arc<AppState>>,
) -> Result<Json<Vec<SnmpTargetRow>>, ApiError> {
    Ok(Json(state.store.list_snmp_targets().await?))
}

fn check_host(host: &str) -> Result<(), ApiError> {
    if host.is_empty()
        || host.len() > 253
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:_".contains(c))
    {
        return Err(ApiError::BadRequest(format!(
            "invalid host {host:?}: a name or an IP address"
        )));
    }
    Ok(())
}

async fn add(
    state: &AppState,
    host: &str,
    port: u16,
    credentials: &Credentials,
    interval_secs: Option<u32>,
    origin: &str,
    replace: bool,
) -> Result<Result<i64, String>, ApiError> {
    check_host(host)?;
    credentials
        .validate()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let interval_secs = interval_secs.unwrap_or(state.config.snmp.interval_secs);
    if interval_secs < 5 {
        return Err(ApiError::BadRequest(
            "the interval must be at least 5 s".into(),
        ));
    }
    let sealed = poller::seal_credentials(&state.secrets, host, port, credentials)
        .map_err(|e| ApiError::Unavailable(format!("cannot seal the credentials: {e}")))?;
    let added = state
        .store
        .add_snmp_target(
            NewSnmpTarget {
                host: host.into(),
                port,
                version: credentials.version().to_string(),
                user: credentials.user().into(),
                sealed,
                interval_secs,
                origin: origin.into(),
            },
            replace,
        )
        .await?;
    state.snmp_changed.notify_one();
    Ok(added)
}

pub async fn add_target(
    State(state): State<Arc<AppState>>,
    Json(request): Json<AddTarget>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = add(
        &state,
        &request.host,
        request.port,
        &request.credentials,
        request.interval_secs,
        "admin",
        request.replace,
    )
    .await?
    .map_err(ApiError::Conflict)?;
    Ok(Json(serde_json::json!({ "id": id })))
}

pub async fn remove_target(
    State(state): State<Arc<AppState>>,
    Json(request): Json<TargetKey>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if !state
        .store
        .remove_snmp_target(request.host.clone(), request.port)
        .await?
    {
        return Err(ApiError::NotFound(format!(
            "no SNMP target {}:{}",
            request.host, request.port
        )));
    }
    state.snmp_changed.notify_one();
    Ok(Json(serde_json::json!({ "removed": true })))
}

pub async fn poll(
    State(state): State<Arc<AppState>>,
    Json(request): Json<PollRequest>,
) -> Result<Json<PollAnswer>, ApiError> {
    check_host(&request.host)?;
    let started = std::time::Instant::now();
    let target = state
        .store
        .list_snmp_targets()
        .await?
        .into_iter()
        .find(|t| t.host == request.host && t.port == request.port);
    let config = &state.config.snmp;
    let snmp_error = |e: crate::snmp::SnmpError| {
        ApiError::Unprocessable(format!(
            "polling {}:{} failed: {e}",
            request.host, request.port
        ))
    };
    let (polled, ci_id, stored) = match (&target, &request.credentials) {
        (Some(target), None) => {
            let (ci, polled) = poller::poll_and_store(
                &state.store,
                &state.secrets,
                config,
                &state.config.identification,
                &state.snmp_state,
                target,
                state.events.get().map(|e| e.as_ref()),
            )
            .await
            .map_err(snmp_error)?;
            (polled, Some(ci), true)
        }
        (_, Some(credentials)) => {
            let addr = poller::resolve(&request.host, request.port).map_err(snmp_error)?;
            let polled = poller::poll_device(addr, credentials.clone(), config)
                .await
                .map_err(snmp_error)?;
            (polled, None, false)
        }
        (None, None) => {
            return Err(ApiError::BadRequest(format!(
                "{}:{} is not an SNMP target: give its credentials (--version and --community, or the v3 options)",
                request.host, request.port
            )));
        }
    };
    let (device, _) = poller::device_poll(&polled, None);
    Ok(Json(PollAnswer {
        host: request.host,
        port: request.port,
        stored,
        ci_id,
        varbinds: polled.varbinds,
        requests: polled.requests,
        wall_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        problems: polled.data.problems.clone(),
        device,
    }))
}

/// Parses `ADDR/PREFIX` (or one address) into its addresses, skipping the network and
/// broadcast addresses of IPv4 ranges larger than /31. At most `max` addresses.
pub fn expand_cidr(cidr: &str, max: u32) -> Result<Vec<IpAddr>, String> {
    let (addr, prefix) = match cidr.split_once('/') {
        Some((a, p)) => (
            a,
            Some(
                p.parse::<u32>()
                    .map_err(|_| format!("invalid prefix length in {cidr:?}"))?,
            ),
        ),
        None => (cidr, None),
    };
    let addr: IpAddr = addr
        .trim()
        .parse()
        .map_err(|_| format!("invalid address in {cidr:?}"))?;
    let bits = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.unwrap_or(bits);
    if prefix > bits {
        return Err(format!("prefix /{prefix} is longer than {bits} bits"));
    }
    let host_bits = bits - prefix;
    if host_bits >= 32 || (1u64 << host_bits) > u64::from(max) {
        return Err(format!(
            "{cidr} has more than {max} addresses (snmp.discover_max_addresses); sweep smaller ranges"
        ));
    }
    let count = 1u128 << host_bits;
    let base: u128 = match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    } & !(count - 1);
    let skip_edges = addr.is_ipv4() && host_bits >= 2;
    let mut out = Vec::new();
    for i in 0..count {
        if skip_edges && (i == 0 || i == count - 1) {
            continue;
        }
        let n = base + i;
        out.push(match addr {
            IpAddr::V4(_) => IpAddr::from(
                u32::try_from(n)
                    .map_err(|_| "address overflow".to_string())?
                    .to_be_bytes(),
            ),
            IpAddr::V6(_) => IpAddr::from(n.to_be_bytes()),
        });
    }
    Ok(out)
}

/// sysName.0 and sysDescr.0.
fn probe_oids() -> Vec<Oid> {
    vec![
        Oid(vec![1, 3, 6, 1, 2, 1, 1, 5, 0]),
        Oid(vec![1, 3, 6, 1, 2, 1, 1, 1, 0]),
    ]
}

async fn probe(
    addr: SocketAddr,
    credentials: Credentials,
    timeout: Duration,
) -> Option<(String, String)> {
    let mut session = SnmpSession::new(
        addr,
        credentials,
        SessionOptions {
            timeout,
            retries: 0,
        },
    )
    .ok()?;
    let oids = probe_oids();
    let answer = session.get(&oids).await.ok()?;
    let text = |i: usize| {
        answer
            .get(i)
            .and_then(|vb| match &vb.value {
                Value::OctetString(_) => vb.value.as_text(),
                _ => None,
            })
            .unwrap_or_default()
    };
    Some((text(0), text(1)))
}

pub async fn discover(
    State(state): State<Arc<AppState>>,
    Json(request): Json<DiscoverRequest>,
) -> Result<Json<DiscoverAnswer>, ApiError> {
    let config = &state.config.snmp;
    request
        .credentials
        .validate()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let addresses =
        expand_cidr(&request.cidr, config.discover_max_addresses).map_err(ApiError::BadRequest)?;
    let started = std::time::Instant::now();
    // One attempt of at most a second each: a sweep is about who answers, not about waiting
    // for slow devices (the poller is patient with targets).
    let timeout = Duration::from_millis(config.timeout_ms.min(1000));
    let slots = Arc::new(tokio::sync::Semaphore::new(config.discover_concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for ip in &addresses {
        let addr = SocketAddr::new(*ip, request.port);
        let credentials = request.credentials.clone();
        let slots = slots.clone();
        tasks.spawn(async move {
            let _permit = slots.acquire_owned().await.ok()?;
            probe(addr, credentials, timeout)
                .await
                .map(|(name, descr)| (addr, name, descr))
        });
    }
    let mut found = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok(Some(hit)) = joined {
            found.push(hit);
        }
    }
    found.sort_by_key(|(addr, _, _)| *addr);
    let mut answered = Vec::new();
    for (addr, sys_name, sys_descr) in found {
        let host = addr.ip().to_string();
        let added = if request.add {
            add(
                &state,
                &host,
                request.port,
                &request.credentials,
                request.interval_secs,
                "discover",
                false,
            )
            .await?
            .is_ok()
        } else {
            false
        };
        answered.push(Discovered {
            host,
            port: request.port,
            sys_name,
            sys_descr,
            added,
        });
    }
    Ok(Json(DiscoverAnswer {
        probed: addresses.len(),
        answered,
        wall_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ranges_expand_within_their_bound() {
        let hosts = expand_cidr("127.0.0.0/29", 1024).unwrap();
        assert_eq!(hosts.len(), 6);
        assert_eq!(hosts[0].to_string(), "127.0.0.1");
        assert_eq!(hosts[5].to_string(), "127.0.0.6");
        assert_eq!(expand_cidr("127.0.0.9/31", 1024).unwrap().len(), 2);
        assert_eq!(expand_cidr("127.0.0.9", 1024).unwrap().len(), 1);
        assert_eq!(expand_cidr("::1", 1024).unwrap()[0].to_string(), "::1");
        assert_eq!(expand_cidr("2001:db8::/126", 1024).unwrap().len(), 4);
        assert!(
            expand_cidr("10.0.0.0/8", 1024)
                .unwrap_err()
                .contains("more than 1024")
        );
        assert!(expand_cidr("10.0.0.0/33", 1024).is_err());
        assert!(expand_cidr("banana/24", 1024).is_err());
        assert!(expand_cidr("::/0", 1024).is_err());
    }
}
