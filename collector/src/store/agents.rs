//! Enrollment tokens and agents.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

/// An agent as the admin API lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentRow {
    pub id: String,
    pub hostname: String,
    pub machine_id: String,
    pub cert_serial: String,
    pub enrolled_at: i64,
    pub revoked_at: Option<i64>,
    /// When its last report was stored.
    pub last_seen_at: Option<i64>,
    /// The highest sequence number received from it.
    pub last_seq: Option<i64>,
    /// Reports stored from it since enrollment (duplicates not counted).
    pub reports_received: i64,
    /// Its spool as it reported it with its last report.
    pub spool: super::SpoolStats,
    /// When its current certificate expires, and when it last renewed it.
    pub cert_expires_at: Option<i64>,
    pub cert_renewed_at: Option<i64>,
    pub ci_id: Option<i64>,
}

/// A token as created (the token text itself is returned once and never stored).
#[derive(Debug, Clone, Serialize)]
pub struct TokenRow {
    pub expires_at: i64,
    pub uses: u32,
}

/// What an enrollment records about the new agent.
#[derive(Debug, Clone)]
pub struct NewAgent {
    pub id: String,
    pub hostname: String,
    pub machine_id: String,
}

/// Why an enrollment token was refused. Each says what is wrong with the token without
/// revealing whether other tokens exist.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("enrollment token is not valid")]
    UnknownToken,
    #[error("enrollment token has expired")]
    Expired,
    #[error("enrollment token has already been used")]
    UsedUp,
    #[error("cannot issue the agent certificate: {0}")]
    Signing(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a certificate renewal was refused.
#[derive(Debug, thiserror::Error)]
pub enum RenewError {
    #[error("agent {0} is not enrolled with this collector")]
    UnknownAgent(String),
    #[error("agent {0} has been revoked; it must be enrolled again with a new token")]
    Revoked(String),
    #[error("agent {0}'s certificate has been replaced by a renewal and cannot renew")]
    Superseded(String),
    #[error("cannot issue the agent certificate: {0}")]
    Signing(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    pub async fn create_enroll_token(
        &self,
        token_hash: String,
        expires_at: i64,
        uses: u32,
    ) -> Result<(), StoreError> {
        self.inner
            .writer
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO enroll_tokens (hash, created_at, expires_at, uses_total, uses_left) VALUES (?1, ?2, ?3, ?4, ?4)",
                    params![token_hash, crate::now_ms(), expires_at, uses],
                )?;
                Ok(())
            })
            .await
    }

    /// Spends one use of the token and records the agent, atomically; `sign` issues the
    /// certificate (returning its PEM, serial and expiry) only once the token is known to be
    /// good.
    pub async fn enroll_agent<S>(
        &self,
        token_hash: String,
        agent: NewAgent,
        sign: S,
    ) -> Result<(String, i64), EnrollError>
    where
        S: FnOnce(&str) -> Result<(String, String, i64), String> + Send + 'static,
    {
        self.inner
            .writer
            .write(move |conn| enroll_in_tx(conn, &token_hash, &agent, sign))
            .await
    }

    pub async fn list_agents(&self) -> Result<Vec<AgentRow>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT a.id, a.hostname, a.machine_id, a.cert_serial, a.enrolled_at, a.revoked_at,
                        a.last_seen_at, a.last_seq, a.ci_id, a.reports_received, a.spool_backlog,
                        a.spool_bytes, a.spool_oldest_at, a.spool_dropped, a.cert_expires_at,
                        a.cert_renewed_at
                 FROM agents a ORDER BY a.hostname, a.id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(AgentRow {
                    id: r.get(0)?,
                    hostname: r.get(1)?,
                    machine_id: r.get(2)?,
                    cert_serial: r.get(3)?,
                    enrolled_at: r.get(4)?,
                    revoked_at: r.get(5)?,
                    last_seen_at: r.get(6)?,
                    last_seq: r.get(7)?,
                    ci_id: r.get(8)?,
                    reports_received: r.get(9)?,
                    spool: super::SpoolStats {
                        backlog: r.get(10)?,
                        bytes: r.get(11)?,
                        oldest_at: r.get(12)?,
                        dropped: r.get(13)?,
                    },
                    cert_expires_at: r.get(14)?,
                    cert_renewed_at: r.get(15)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Renews an agent's certificate: `sign` issues it (returning PEM, serial and expiry) only
    /// for a known agent that is not revoked, and the new serial and expiry are recorded in
    /// the same transaction.
    ///
    /// Only the agent's current certificate, or the one it replaced until the new one is first
    /// used, may renew (`presented`, its serial); the presented one becomes the "previous".
    pub async fn renew_agent<S>(
        &self,
        id: String,
        presented: String,
        sign: S,
    ) -> Result<(String, i64), RenewError>
    where
        S: FnOnce() -> Result<(String, String, i64), String> + Send + 'static,
    {
        self.inner
            .writer
            .write(move |conn| {
                type Facts = (Option<i64>, String, Option<String>);
                let facts: Option<Facts> = conn
                    .query_row(
                        "SELECT revoked_at, cert_serial, prev_cert_serial FROM agents WHERE id = ?1",
                        [&id],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()
                    .map_err(StoreError::from)?;
                let (current, previous) = match facts {
                    None => return Err(RenewError::UnknownAgent(id)),
                    Some((Some(_), ..)) => return Err(RenewError::Revoked(id)),
                    Some((None, current, previous)) => (current, previous),
                };
                let known = crate::pki::same_serial(&presented, &current)
                    || previous
                        .as_deref()
                        .is_some_and(|p| crate::pki::same_serial(&presented, p));
                if !known {
                    return Err(RenewError::Superseded(id));
                }
                let (cert_pem, serial, expires_at) = sign().map_err(RenewError::Signing)?;
                conn.execute(
                    "UPDATE agents SET cert_serial = ?2, prev_cert_serial = ?3, cert_expires_at = ?4,
                            cert_renewed_at = ?5
                     WHERE id = ?1",
                    params![id, serial, presented, expires_at, crate::now_ms()],
                )
                .map_err(StoreError::from)?;
                Ok((cert_pem, expires_at))
            })
            .await
    }

    /// Revokes an agent: its reports are refused from then on. Returns false if no such agent.
    pub async fn revoke_agent(&self, id: String) -> Result<bool, StoreError> {
        self.inner
            .writer
            .write(move |conn| {
                let changed = conn.execute(
                    "UPDATE agents SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
                    params![id, crate::now_ms()],
                )?;
                Ok(changed > 0)
            })
            .await
    }
}

fn enroll_in_tx<S>(
    conn: &Connection,
    token_hash: &str,
    agent: &NewAgent,
    sign: S,
) -> Result<(String, i64), EnrollError>
where
    S: FnOnce(&str) -> Result<(String, String, i64), String>,
{
    let token: Option<(i64, i64)> = conn
        .query_row(
            "SELECT expires_at, uses_left FROM enroll_tokens WHERE hash = ?1",
            [token_hash],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(StoreError::from)?;
    let (expires_at, uses_left) = token.ok_or(EnrollError::UnknownToken)?;
    if expires_at <= crate::now_ms() {
        return Err(EnrollError::Expired);
    }
    if uses_left <= 0 {
        return Err(EnrollError::UsedUp);
    }
    let (cert_pem, serial, expires_at) = sign(&agent.id).map_err(EnrollError::Signing)?;
    conn.execute(
        "UPDATE enroll_tokens SET uses_left = uses_left - 1 WHERE hash = ?1",
        [token_hash],
    )
    .map_err(StoreError::from)?;
    conn.execute(
        "INSERT INTO agents (id, hostname, machine_id, cert_serial, enrolled_at, cert_expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            agent.id,
            agent.hostname,
            agent.machine_id,
            serial,
            crate::now_ms(),
            expires_at
        ],
    )
    .map_err(StoreError::from)?;
    Ok((cert_pem, expires_at))
}
