//! Named admin tokens, stored by SHA-256 only; revocable, optionally expiring. The token `init`
//! writes to `admin.token` is registered as `local` when the collector starts.

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

/// An admin token as listed: never its text or its hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AdminToken {
    pub name: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl AdminToken {
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now_ms)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminTokenError {
    #[error("an admin token named {0:?} already exists (revoked ones keep their name)")]
    Duplicate(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What registering `admin.token` at start found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalToken {
    /// Already known, under this name (revoked tokens stay revoked).
    Known(AdminToken),
    /// New: recorded as `local`.
    Registered,
    /// `admin.token` holds a new token: `local` now stands for it.
    Replaced,
}

/// Whether `name` may name an admin token: 1 to 64 of `A-Z a-z 0-9 . _ -`.
pub fn check_admin_token_name(name: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > 64 || !name.chars().all(allowed) {
        return Err(format!(
            "admin token name {name:?} is not valid: use 1 to 64 letters, digits, '.', '_' or '-'"
        ));
    }
    Ok(())
}

/// Compares two byte strings in time that depends only on their lengths, not on where they
/// differ: for comparing secrets (or their hashes).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the optimiser from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

const COLUMNS: &str = "name, created_at, expires_at, revoked_at, last_used_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AdminToken> {
    Ok(AdminToken {
        name: r.get(0)?,
        created_at: r.get(1)?,
        expires_at: r.get(2)?,
        revoked_at: r.get(3)?,
        last_used_at: r.get(4)?,
    })
}

impl Store {
    /// Makes the token whose hash is `hash` (the one in `admin.token`) known as `local`.
    pub async fn register_local_admin_token(&self, hash: String) -> Result<LocalToken, StoreError> {
        self.inner
            .writer
            .write(move |conn| {
                let known = conn
                    .query_row(
                        &format!("SELECT {COLUMNS} FROM admin_tokens WHERE hash = ?1"),
                        [&hash],
                        row,
                    )
                    .optional()?;
                if let Some(known) = known {
                    return Ok(LocalToken::Known(known));
                }
                let now = crate::now_ms();
                let replaced = conn.execute(
                    "UPDATE admin_tokens SET hash = ?1, created_at = ?2, expires_at = NULL,
                            revoked_at = NULL, last_used_at = NULL
                     WHERE name = 'local'",
                    params![hash, now],
                )?;
                if replaced > 0 {
                    return Ok(LocalToken::Replaced);
                }
                conn.execute(
                    "INSERT INTO admin_tokens (name, hash, created_at) VALUES ('local', ?1, ?2)",
                    params![hash, now],
                )?;
                Ok(LocalToken::Registered)
            })
            .await
    }

    pub async fn create_admin_token(
        &self,
        name: String,
        hash: String,
        expires_at: Option<i64>,
    ) -> Result<AdminToken, AdminTokenError> {
        self.inner
            .writer
            .write(move |conn| {
                let taken = conn
                    .query_row("SELECT 1 FROM admin_tokens WHERE name = ?1", [&name], |_| {
                        Ok(())
                    })
                    .optional()
                    .map_err(StoreError::from)?;
                if taken.is_some() {
                    return Err(AdminTokenError::Duplicate(name));
                }
                let created_at = crate::now_ms();
                conn.execute(
                    "INSERT INTO admin_tokens (name, hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                    params![name, hash, created_at, expires_at],
                )
                .map_err(StoreError::from)?;
                Ok(AdminToken {
                    name,
                    created_at,
                    expires_at,
                    revoked_at: None,
                    last_used_at: None,
                })
            })
            .await
    }

    pub async fn list_admin_tokens(&self) -> Result<Vec<AdminToken>, StoreError> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare(&format!("SELECT {COLUMNS} FROM admin_tokens ORDER BY name"))?;
            let rows = stmt.query_map([], row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Revokes a token (from the next request on); `None` when no token has that name. A token
    /// revoked earlier keeps its first revocation time.
    pub async fn revoke_admin_token(&self, name: String) -> Result<Option<AdminToken>, StoreError> {
        self.inner
            .writer
            .write(move |conn| {
                conn.execute(
                    "UPDATE admin_tokens SET revoked_at = COALESCE(revoked_at, ?2) WHERE name = ?1",
                    params![name, crate::now_ms()],
                )?;
                Ok(conn
                    .query_row(
                        &format!("SELECT {COLUMNS} FROM admin_tokens WHERE name = ?1"),
                        [&name],
                        row,
                    )
                    .optional()?)
            })
            .await
    }

    /// The token whose hash is `hash`, revoked and expired ones included (the caller says why
    /// it refuses them). Every stored hash is compared in constant time, with no early exit and
    /// no index lookup keyed by the presented value: the few admin tokens are all read.
    pub async fn find_admin_token(&self, hash: String) -> Result<Option<AdminToken>, StoreError> {
        self.read(move |conn| {
            let mut stmt =
                conn.prepare_cached(&format!("SELECT {COLUMNS}, hash FROM admin_tokens"))?;
            let mut rows = stmt.query([])?;
            let mut found = None;
            while let Some(r) = rows.next()? {
                let stored: String = r.get(5)?;
                let token = row(r)?;
                if constant_time_eq(stored.as_bytes(), hash.as_bytes()) {
                    found = Some(token);
                }
            }
            Ok(found)
        })
        .await
    }

    /// Records a use, unless one was recorded within the last minute (cheap: at most one
    /// write per token per minute).
    pub async fn touch_admin_token(&self, name: String, now_ms: i64) -> Result<(), StoreError> {
        self.inner
            .writer
            .write(move |conn| {
                conn.execute(
                    "UPDATE admin_tokens SET last_used_at = ?2
                     WHERE name = ?1 AND (last_used_at IS NULL OR last_used_at <= ?2 - 60000)",
                    params![name, now_ms],
                )?;
                Ok(())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("test.db"), 64, 4096).unwrap();
        (dir, store)
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"xbc"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"abcd", b"abc"));
        let hash = crate::sha256_hex(b"token");
        assert!(constant_time_eq(
            hash.as_bytes(),
            crate::sha256_hex(b"token").as_bytes()
        ));
        assert!(!constant_time_eq(
            hash.as_bytes(),
            crate::sha256_hex(b"tokeN").as_bytes()
        ));
    }

    #[test]
    fn names_are_checked() {
        for good in ["ops", "ci-runner.2", "A_b", &"x".repeat(64)] {
            assert!(check_admin_token_name(good).is_ok(), "{good}");
        }
        for bad in ["", "has space", "slash/", "ü", &"x".repeat(65)] {
            assert!(check_admin_token_name(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn tokens_are_found_by_hash_and_revocation_sticks() {
        let (_dir, store) = open();
        let (ops, ci) = (crate::sha256_hex(b"ops"), crate::sha256_hex(b"ci"));
        store
            .create_admin_token("ops".into(), ops.clone(), None)
            .await
            .unwrap();
        store
            .create_admin_token("ci".into(), ci.clone(), Some(1))
            .await
            .unwrap();
        let duplicate = store
            .create_admin_token("ops".into(), crate::sha256_hex(b"other"), None)
            .await;
        assert!(matches!(duplicate, Err(AdminTokenError::Duplicate(_))));

        let found = store.find_admin_token(ops.clone()).await.unwrap().unwrap();
        assert_eq!(found.name, "ops");
        assert!(!found.is_expired(crate::now_ms()));
        let found = store.find_admin_token(ci.clone()).await.unwrap().unwrap();
        assert_eq!(found.name, "ci");
        assert!(found.is_expired(crate::now_ms()));
        assert!(
            store
                .find_admin_token(crate::sha256_hex(b"nobody"))
                .await
                .unwrap()
                .is_none()
        );

        let revoked = store
            .revoke_admin_token("ops".into())
            .await
            .unwrap()
            .unwrap();
        let first = revoked.revoked_at.unwrap();
        let again = store
            .revoke_admin_token("ops".into())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.revoked_at, Some(first));
        assert!(
            store
                .find_admin_token(ops)
                .await
                .unwrap()
                .unwrap()
                .revoked_at
                .is_some()
        );
        assert!(
            store
                .revoke_admin_token("nobody".into())
                .await
                .unwrap()
                .is_none()
        );

        store
            .touch_admin_token("ci".into(), 1_000_000)
            .await
            .unwrap();
        store
            .touch_admin_token("ci".into(), 1_030_000)
            .await
            .unwrap();
        let listed = store.list_admin_tokens().await.unwrap();
        assert_eq!(
            listed.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["ci", "ops"]
        );
        assert_eq!(listed[0].last_used_at, Some(1_000_000), "once a minute");
    }

    #[tokio::test]
    async fn the_local_token_is_registered_once_and_follows_admin_token() {
        let (_dir, store) = open();
        let first = crate::sha256_hex(b"adm_first");
        assert_eq!(
            store
                .register_local_admin_token(first.clone())
                .await
                .unwrap(),
            LocalToken::Registered
        );
        store.revoke_admin_token("local".into()).await.unwrap();
        let LocalToken::Known(known) = store.register_local_admin_token(first).await.unwrap()
        else {
            panic!("the same token must be found again");
        };
        assert!(
            known.revoked_at.is_some(),
            "a restart does not undo a revocation"
        );
        let second = crate::sha256_hex(b"adm_second");
        assert_eq!(
            store
                .register_local_admin_token(second.clone())
                .await
                .unwrap(),
            LocalToken::Replaced
        );
        let local = store.find_admin_token(second).await.unwrap().unwrap();
        assert_eq!((local.name.as_str(), local.revoked_at), ("local", None));
    }
}
