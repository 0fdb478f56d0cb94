//! `steward-collector admin-token create|list|revoke` through the admin API.

use std::time::Duration;

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use super::admin::AdminClient;
use super::{Connection, UsageError};
use crate::server::admin_tokens::{CreatedAdminToken, RevokedAdminToken};
use crate::store::{AdminToken, check_admin_token_name};

#[derive(Debug, Subcommand)]
pub enum AdminTokenCommand {
    /// Create a named admin token; prints the token alone (it is shown this once).
    Create {
        /// 1 to 64 letters, digits, '.', '_' or '-'.
        name: String,
        /// How long it stays valid, e.g. 90d, 12h (default: until revoked).
        #[arg(long)]
        expires: Option<humantime::Duration>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Admin tokens: name, created, expires, revoked, last used (never the token).
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Revoke an admin token: refused from the next request on.
    Revoke {
        name: String,
        #[command(flatten)]
        connection: Connection,
    },
}

pub async fn admin_token(command: AdminTokenCommand) -> Result<()> {
    match command {
        AdminTokenCommand::Create {
            name,
            expires,
            connection,
        } => {
            check_admin_token_name(&name).map_err(UsageError)?;
            let expires_secs = expires.map(|d| Duration::from(d).as_secs().max(1));
            let client = AdminClient::connect(&connection)?;
            let created: CreatedAdminToken = client
                .post(
                    "/admin-tokens",
                    &json!({ "name": name, "expires_secs": expires_secs }),
                )
                .await?;
            steward_agent::outln!("{}", created.token);
            Ok(())
        }
        AdminTokenCommand::List { json, connection } => {
            let tokens: Vec<AdminToken> = AdminClient::connect(&connection)?
                .get("/admin-tokens")
                .await?;
            if json {
                steward_agent::outln!("{}", serde_json::to_string_pretty(&tokens)?);
                return Ok(());
            }
            let now = crate::now_ms();
            steward_agent::outln!(
                "{:<24} {:<8} {:<22} {:<22} {:<22} LAST USED",
                "NAME",
                "STATE",
                "CREATED",
                "EXPIRES",
                "REVOKED"
            );
            for t in &tokens {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else if t.is_expired(now) {
                    "expired"
                } else {
                    "active"
                };
                steward_agent::outln!(
                    "{:<24} {:<8} {:<22} {:<22} {:<22} {}",
                    t.name,
                    state,
                    crate::format_ms(Some(t.created_at)),
                    crate::format_ms(t.expires_at),
                    crate::format_ms(t.revoked_at),
                    crate::format_ms(t.last_used_at)
                );
            }
            Ok(())
        }
        AdminTokenCommand::Revoke { name, connection } => {
            let revoked: RevokedAdminToken = AdminClient::connect(&connection)?
                .post(
                    &format!("/admin-tokens/{}/revoke", crate::percent_encode(&name)),
                    &serde_json::Value::Null,
                )
                .await?;
            steward_agent::outln!("revoked admin token {}", revoked.info.name);
            if revoked.own {
                eprintln!(
                    "note: this command used that token; it no longer works for anything else"
                );
            }
            Ok(())
        }
    }
}
