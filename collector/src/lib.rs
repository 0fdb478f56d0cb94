//! The Steward collector. Data flows through the folders in order:
//! [`server`] (TLS listener; ingest, enrollment and admin endpoints) → [`store`] (the CMDB and
//! history in SQLite; the only module that talks SQL). [`pki`] is the collector's CA, [`config`]
//! its `collector.toml`, [`init`] creates a data directory, [`cli`] is the admin command line.

pub mod cli;
pub mod cmdb;
pub mod config;
pub mod events;
pub mod init;
pub mod inventory;
pub mod lock;
pub mod pki;
pub mod rules;
pub mod secrets;
pub mod server;
pub mod snmp;
pub mod store;
pub mod tickets;

/// Random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| anyhow::anyhow!("the operating system's random number generator failed"))?;
    Ok(bytes)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    steward_agent::metrics::unix_ms(std::time::SystemTime::now())
}

/// Hex SHA-256, for storing secrets (tokens) by hash only.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// Percent-encodes a URL path segment or query value (RFC 3986 unreserved characters kept).
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Formats epoch milliseconds as RFC 3339 UTC (seconds precision), or `-` for none.
pub fn format_ms(ms: Option<i64>) -> String {
    match ms.and_then(|ms| u64::try_from(ms).ok()) {
        Some(ms) => humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
        )
        .to_string(),
        None => "-".into(),
    }
}

/// Today's date (UTC).
pub fn today() -> time::Date {
    time::OffsetDateTime::from_unix_timestamp(now_ms() / 1000)
        .map(|t| t.date())
        .unwrap_or(time::Date::MIN)
}
