//! `steward-collector snmp ...`: SNMP targets through the admin API. Secrets can come from
//! flags, from environment variables (so they stay out of `ps`), or from files.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;

use super::admin::AdminClient;
use super::{Connection, UsageError};
use crate::server::snmp_admin::{DiscoverAnswer, PollAnswer};
use crate::snmp::client::{AuthProto, Credentials, PrivProto, Privacy, Secret};
use crate::store::SnmpTargetRow;

#[derive(Debug, Subcommand)]
pub enum SnmpCommand {
    /// Poll a device at its interval: `snmp add HOST[:PORT] --version 2c --community C`, or
    /// `--version 3 --user U --auth sha --auth-pass P [--priv aes --priv-pass P] [--context C]`.
    Add {
        target: String,
        #[command(flatten)]
        credentials: CredentialArgs,
        /// Seconds between polls (default: `[snmp] interval_secs`).
        #[arg(long)]
        interval: Option<u32>,
        /// Update the target if it exists.
        #[arg(long)]
        replace: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// The targets and how their last poll went (never their secrets).
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Stop polling a device (its CI and history stay).
    Remove {
        target: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Poll a device once and print what it found. A target's result is stored; another
    /// device needs its credentials and is only shown.
    Poll {
        target: String,
        #[command(flatten)]
        credentials: CredentialArgs,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Sweep an address range and add what answers as targets.
    Discover {
        /// `10.1.2.0/24`, `2001:db8::/120` or one address.
        cidr: String,
        #[arg(long, default_value_t = 161)]
        port: u16,
        #[command(flatten)]
        credentials: CredentialArgs,
        #[arg(long)]
        interval: Option<u32>,
        /// Only list what answers.
        #[arg(long)]
        no_add: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
}

#[derive(Debug, Clone, Args)]
pub struct CredentialArgs {
    /// 1, 2c or 3.
    #[arg(long = "version")]
    pub snmp_version: Option<String>,
    #[arg(long, env = "STEWARD_SNMP_COMMUNITY", hide_env_values = true)]
    pub community: Option<String>,
    /// Read the community from this file.
    #[arg(long)]
    pub community_file: Option<PathBuf>,
    /// SNMPv3 user.
    #[arg(long)]
    pub user: Option<String>,
    /// md5, sha, sha224, sha256, sha384 or sha512.
    #[arg(long)]
    pub auth: Option<String>,
    #[arg(long, env = "STEWARD_SNMP_AUTH_PASS", hide_env_values = true)]
    pub auth_pass: Option<String>,
    #[arg(long)]
    pub auth_pass_file: Option<PathBuf>,
    /// des, aes (aes128), aes192, aes256, aes192c or aes256c.
    #[arg(long = "priv")]
    pub privacy: Option<String>,
    #[arg(long, env = "STEWARD_SNMP_PRIV_PASS", hide_env_values = true)]
    pub priv_pass: Option<String>,
    #[arg(long)]
    pub priv_pass_file: Option<PathBuf>,
    /// SNMPv3 context name.
    #[arg(long, default_value = "")]
    pub context: String,
}

fn secret(value: &Option<String>, file: &Option<PathBuf>, what: &str) -> Result<Option<Secret>> {
    match (value, file) {
        (Some(v), _) => Ok(Some(Secret::new(v.clone()))),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the {what} from {}", path.display()))?;
            Ok(Some(Secret::new(text.trim_end_matches(['\n', '\r']))))
        }
        (None, None) => Ok(None),
    }
}

/// Parses a name as the TOML config spells it (the same aliases are accepted).
fn parse_name<T: serde::de::DeserializeOwned>(name: &str, what: &str, choices: &str) -> Result<T> {
    serde_json::from_value(json!(name))
        .map_err(|_| UsageError(format!("unknown {what} {name:?}; one of {choices}")).into())
}

impl CredentialArgs {
    /// The credentials the flags describe, or `None` when no `--version` was given.
    pub fn credentials(&self) -> Result<Option<Credentials>> {
        let Some(version) = &self.snmp_version else {
            return Ok(None);
        };
        let community = || -> Result<Secret> {
            secret(&self.community, &self.community_file, "community")?.ok_or_else(|| {
                UsageError(
                    "--community (or --community-file, or STEWARD_SNMP_COMMUNITY) is required"
                        .into(),
                )
                .into()
            })
        };
        let credentials = match version.trim_start_matches(['v', 'V']) {
            "1" => Credentials::V1 {
                community: community()?,
            },
            "2c" | "2" => Credentials::V2c {
                community: community()?,
            },
            "3" => {
                let user = self
                    .user
                    .clone()
                    .ok_or_else(|| UsageError("--version 3 needs --user".into()))?;
                let auth: AuthProto = parse_name(
                    self.auth.as_deref().unwrap_or("sha"),
                    "--auth protocol",
                    "md5, sha, sha224, sha256, sha384, sha512",
                )?;
                let auth_pass = secret(&self.auth_pass, &self.auth_pass_file, "auth password")?
                    .ok_or_else(|| UsageError("--version 3 needs --auth-pass (or --auth-pass-file, or STEWARD_SNMP_AUTH_PASS)".into()))?;
                let privacy = match &self.privacy {
                    None => None,
                    Some(name) => Some(Privacy {
                        proto: parse_name::<PrivProto>(
                            name,
                            "--priv protocol",
                            "des, aes, aes192, aes256, aes192c, aes256c",
                        )?,
                        pass: secret(&self.priv_pass, &self.priv_pass_file, "privacy password")?
                            .ok_or_else(|| UsageError("--priv needs --priv-pass (or --priv-pass-file, or STEWARD_SNMP_PRIV_PASS)".into()))?,
                    }),
                };
                Credentials::V3 {
                    user,
                    auth,
                    auth_pass,
                    privacy,
                    context: self.context.clone(),
                }
            }
            other => {
                return Err(
                    UsageError(format!("unknown --version {other:?}; one of 1, 2c, 3")).into(),
                );
            }
        };
        credentials
            .validate()
            .map_err(|e| UsageError(e.to_string()))?;
        Ok(Some(credentials))
    }
}

/// Splits `HOST[:PORT]` (`[v6]:PORT` for IPv6 with a port).
pub fn split_target(target: &str) -> Result<(String, u16)> {
    let bad = || {
        UsageError(format!(
            "invalid target {target:?}: HOST, HOST:PORT or [IPv6]:PORT"
        ))
    };
    if let Some(rest) = target.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None if after.is_empty() => 161,
            None => return Err(bad().into()),
        };
        return Ok((host.to_string(), port));
    }
    match target.matches(':').count() {
        0 => Ok((target.to_string(), 161)),
        1 => {
            let (host, port) = target.split_once(':').ok_or_else(bad)?;
            Ok((host.to_string(), port.parse().map_err(|_| bad())?))
        }
        // A bare IPv6 address.
        _ => Ok((target.to_string(), 161)),
    }
}

pub async fn run(command: SnmpCommand) -> Result<()> {
    match command {
        SnmpCommand::Add {
            target,
            credentials,
            interval,
            replace,
            connection,
        } => {
            let (host, port) = split_target(&target)?;
            let credentials = credentials.credentials()?.ok_or_else(|| {
                UsageError("snmp add needs --version (and --community, or the v3 options)".into())
            })?;
            let client = AdminClient::connect(&connection)?;
            let answer: serde_json::Value = client
                .post(
                    "/snmp/targets",
                    &json!({ "host": host, "port": port, "credentials": credentials,
                             "interval_secs": interval, "replace": replace }),
                )
                .await?;
            steward_agent::outln!("added SNMP target {host}:{port} (id {})", answer["id"]);
            Ok(())
        }
        SnmpCommand::List { json, connection } => {
            let client = AdminClient::connect(&connection)?;
            let rows: Vec<SnmpTargetRow> = client.get("/snmp/targets").await?;
            if json {
                steward_agent::outln!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            steward_agent::outln!(
                "{:<28} {:<4} {:<10} {:>8} {:<12} {:<20} {:<22} DETAIL",
                "TARGET",
                "VER",
                "USER",
                "INTERVAL",
                "STATUS",
                "CI",
                "LAST OK"
            );
            for t in rows {
                steward_agent::outln!(
                    "{:<28} {:<4} {:<10} {:>7}s {:<12} {:<20} {:<22} {}",
                    format!("{}:{}", t.host, t.port),
                    t.version,
                    if t.user.is_empty() { "-" } else { &t.user },
                    t.interval_secs,
                    t.status,
                    t.ci_name.as_deref().unwrap_or("-"),
                    crate::format_ms(t.last_ok_at),
                    t.status_detail
                );
            }
            Ok(())
        }
        SnmpCommand::Remove { target, connection } => {
            let (host, port) = split_target(&target)?;
            let client = AdminClient::connect(&connection)?;
            let _: serde_json::Value = client
                .post(
                    "/snmp/targets/remove",
                    &json!({ "host": host, "port": port }),
                )
                .await?;
            steward_agent::outln!("removed SNMP target {host}:{port}");
            Ok(())
        }
        SnmpCommand::Poll {
            target,
            credentials,
            json,
            connection,
        } => {
            let (host, port) = split_target(&target)?;
            let credentials = credentials.credentials()?;
            let client = AdminClient::connect(&connection)?;
            let answer: PollAnswer = client
                .post(
                    "/snmp/poll",
                    &json!({ "host": host, "port": port, "credentials": credentials }),
                )
                .await?;
            if json {
                steward_agent::outln!("{}", serde_json::to_string_pretty(&answer)?);
            } else {
                steward_agent::out!("{}", render_poll(&answer));
            }
            Ok(())
        }
        SnmpCommand::Discover {
            cidr,
            port,
            credentials,
            interval,
            no_add,
            json,
            connection,
        } => {
            let credentials = credentials.credentials()?.ok_or_else(|| {
                UsageError(
                    "snmp discover needs --version (and --community, or the v3 options)".into(),
                )
            })?;
            let client = AdminClient::connect(&connection)?;
            let answer: DiscoverAnswer = client
                .post(
                    "/snmp/discover",
                    &json!({ "cidr": cidr, "port": port, "credentials": credentials,
                             "interval_secs": interval, "add": !no_add }),
                )
                .await?;
            if json {
                steward_agent::outln!("{}", serde_json::to_string_pretty(&answer)?);
                return Ok(());
            }
            steward_agent::outln!(
                "probed {} addresses in {} ms; {} answered",
                answer.probed,
                answer.wall_ms,
                answer.answered.len()
            );
            for d in &answer.answered {
                steward_agent::outln!(
                    "{:<24} {:<20} {:<6} {}",
                    format!("{}:{}", d.host, d.port),
                    d.sys_name,
                    if d.added { "added" } else { "-" },
                    d.sys_descr.lines().next().unwrap_or("")
                );
            }
            Ok(())
        }
    }
}

fn render_poll(answer: &PollAnswer) -> String {
    let d = &answer.device;
    let attr = |key: &str| {
        d.attributes
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or("-")
            .to_string()
    };
    let mut out = format!(
        "{}:{}: {} varbinds in {} requests, {} ms{}\n",
        answer.host,
        answer.port,
        answer.varbinds,
        answer.requests,
        answer.wall_ms,
        match answer.ci_id {
            Some(ci) if answer.stored => format!("; stored as CI {ci}"),
            _ => "; not a target, not stored".into(),
        }
    );
    out.push_str(&format!(
        "name:      {}\n",
        if d.sys_name.is_empty() {
            "-"
        } else {
            &d.sys_name
        }
    ));
    out.push_str(&format!(
        "vendor:    {}\n",
        if d.vendor.is_empty() { "-" } else { &d.vendor }
    ));
    out.push_str(&format!(
        "model:     {}\n",
        if d.model.is_empty() { "-" } else { &d.model }
    ));
    out.push_str(&format!(
        "serial:    {}\n",
        if d.serial.is_empty() { "-" } else { &d.serial }
    ));
    out.push_str(&format!("firmware:  {}\n", attr("firmware")));
    out.push_str(&format!("location:  {}\n", attr("location")));
    out.push_str(&format!(
        "descr:     {}\n",
        attr("sys_descr").lines().next().unwrap_or("-")
    ));
    if let Some(uptime) = d.attributes.get("uptime_secs").and_then(|v| v.as_u64()) {
        out.push_str(&format!(
            "uptime:    {}\n",
            humantime::format_duration(std::time::Duration::from_secs(uptime))
        ));
    }
    if let Some(cpu) = d.metrics.get("cpu_pct").and_then(|v| v.as_f64()) {
        out.push_str(&format!("cpu:       {cpu:.1} %\n"));
    }
    let interfaces = d.metrics["interfaces"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    out.push_str(&format!("interfaces ({}):\n", interfaces.len()));
    for i in &interfaces {
        out.push_str(&format!(
            "  {:<4} {:<20} admin {:<6} oper {:<6}\n",
            i["index"],
            i["name"].as_str().unwrap_or("-"),
            i["admin_status"].as_str().unwrap_or("-"),
            i["oper_status"].as_str().unwrap_or("-"),
        ));
    }
    if let Some(storage) = d.metrics["storage"].as_array().filter(|s| !s.is_empty()) {
        out.push_str(&format!("storage ({}):\n", storage.len()));
        for s in storage {
            out.push_str(&format!(
                "  {:<30} {:>6} used\n",
                s["descr"].as_str().unwrap_or("-"),
                s["used_pct"]
                    .as_f64()
                    .map_or("-".into(), |p| format!("{p:.1} %"))
            ));
        }
    }
    for n in &d.neighbours {
        out.push_str(&format!(
            "neighbour ({}): {} -> {} {}\n",
            n.via, n.local_port, n.remote_name, n.remote_port
        ));
    }
    if !d.fdb.is_empty() {
        out.push_str(&format!("forwarding entries: {}\n", d.fdb.len()));
    }
    for p in &answer.problems {
        out.push_str(&format!("problem: {p}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn targets_split_into_host_and_port() {
        assert_eq!(split_target("r1").unwrap(), ("r1".into(), 161));
        assert_eq!(
            split_target("10.0.0.1:1161").unwrap(),
            ("10.0.0.1".into(), 1161)
        );
        assert_eq!(split_target("[::1]:1161").unwrap(), ("::1".into(), 1161));
        assert_eq!(split_target("fe80::1").unwrap(), ("fe80::1".into(), 161));
        assert!(split_target("r1:http").is_err());
    }

    fn args() -> CredentialArgs {
        CredentialArgs {
            snmp_version: None,
            community: None,
            community_file: None,
            user: None,
            auth: None,
            auth_pass: None,
            auth_pass_file: None,
            privacy: None,
            priv_pass: None,
            priv_pass_file: None,
            context: String::new(),
        }
    }

    #[test]
    fn credential_flags_become_credentials_or_a_clear_error() {
        assert!(args().credentials().unwrap().is_none());
        let mut v2 = args();
        v2.snmp_version = Some("2c".into());
        assert!(
            v2.credentials()
                .unwrap_err()
                .to_string()
                .contains("--community")
        );
        v2.community = Some("public".into());
        assert!(matches!(
            v2.credentials().unwrap(),
            Some(Credentials::V2c { .. })
        ));
        let mut v3 = args();
        v3.snmp_version = Some("3".into());
        v3.user = Some("monitor".into());
        v3.auth = Some("sha256".into());
        v3.auth_pass = Some("auth-pass-1".into());
        v3.privacy = Some("aes256".into());
        assert!(
            v3.credentials()
                .unwrap_err()
                .to_string()
                .contains("--priv-pass")
        );
        v3.priv_pass = Some("priv-pass-2".into());
        let creds = v3.credentials().unwrap().unwrap();
        assert!(matches!(
            creds,
            Credentials::V3 {
                auth: AuthProto::Sha256,
                ..
            }
        ));
        v3.auth = Some("sha3".into());
        assert!(
            v3.credentials()
                .unwrap_err()
                .to_string()
                .contains("unknown --auth protocol")
        );
        v3.auth = Some("sha".into());
        v3.auth_pass = Some("short".into());
        assert!(
            v3.credentials()
                .unwrap_err()
                .to_string()
                .contains("shorter than 8")
        );
    }
}
