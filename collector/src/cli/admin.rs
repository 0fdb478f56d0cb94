//! Admin commands: a small HTTPS client for the admin API, and how each answer is printed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Connection, UsageError};
use crate::config::{ADMIN_TOKEN_FILE, Config};
use crate::inventory::assets::ImportOutcome;
use crate::pki::CA_CERT;
use crate::store::{
    AgentRow, CiDetail, CiFilter, CiRow, CmdbImport, ConflictRow, HistoryEntry, Impacted,
    ServiceDetail, SoftwareHit, WarrantyRow, asset_fields,
};

/// A client for one collector's admin API.
#[derive(Debug, Clone)]
pub struct AdminClient {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl AdminClient {
    /// Resolves `--data-dir` or `--url/--token/--ca-cert` (or the default data directory).
    pub fn connect(connection: &Connection) -> Result<AdminClient> {
        steward_agent::install_crypto_provider();
        match (&connection.url, &connection.data_dir) {
            (Some(url), _) => {
                let token = connection.token.clone().ok_or_else(|| {
                    UsageError("--url needs --token (or STEWARD_ADMIN_TOKEN)".into())
                })?;
                let ca = connection.ca_cert.clone().ok_or_else(|| {
                    UsageError("--url needs --ca-cert, the collector's CA certificate".into())
                })?;
                AdminClient::new(url, &token, &ca)
            }
            (None, data_dir) => {
                let dir = data_dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(super::DEFAULT_DATA_DIR));
                AdminClient::for_data_dir(&dir)
            }
        }
    }

    pub fn for_data_dir(dir: &Path) -> Result<AdminClient> {
        let config = Config::load(dir)?;
        let token_path = dir.join(ADMIN_TOKEN_FILE);
        let token = std::fs::read_to_string(&token_path)
            .with_context(|| format!("cannot read {}", token_path.display()))?;
        let mut address = config.listen;
        if address.ip().is_unspecified() {
            address.set_ip(if address.is_ipv4() {
                [127, 0, 0, 1].into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        AdminClient::new(
            &format!("https://{address}"),
            token.trim(),
            &dir.join(CA_CERT),
        )
    }

    pub fn new(url: &str, token: &str, ca_path: &Path) -> Result<AdminClient> {
        let ca_pem =
            std::fs::read(ca_path).with_context(|| format!("cannot read {}", ca_path.display()))?;
        let client = steward_agent::transport::pinned_client(&ca_pem, Duration::from_secs(30))
            .with_context(|| format!("with the CA certificate {}", ca_path.display()))?;
        Ok(AdminClient {
            client,
            base: format!("{}/admin/v1", url.trim_end_matches('/')),
            token: token.to_string(),
        })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: &Value) -> Result<T> {
        self.send(self.client.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    /// Posts a raw body (an import file).
    pub async fn post_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<T> {
        self.send(
            self.client
                .post(format!("{}{path}", self.base))
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body),
        )
        .await
    }

    async fn send<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|error| {
                anyhow::anyhow!(
                    "cannot reach the collector at {}: {}",
                    self.base,
                    steward_agent::transport::describe(&error)
                )
            })?;
        let status = response.status();
        if !status.is_success() {
            let reason = response
                .json::<steward_agent::transport::ErrorBody>()
                .await
                .map(|body| body.error)
                .unwrap_or_else(|_| status.to_string());
            bail!("the collector answered {status}: {reason}");
        }
        response
            .json::<T>()
            .await
            .context("invalid answer from the collector")
    }
}

pub async fn create_token(connection: &Connection, ttl: Duration, uses: u32) -> Result<()> {
    let client = AdminClient::connect(connection)?;
    let created: Value = client
        .post(
            "/enroll-tokens",
            &serde_json::json!({ "ttl_secs": ttl.as_secs().max(1), "uses": uses }),
        )
        .await?;
    let token = created["token"]
        .as_str()
        .context("the collector's answer has no token")?;
    steward_agent::outln!("{token}");
    Ok(())
}

pub async fn list_agents(connection: &Connection, json: bool) -> Result<()> {
    let agents: Vec<AgentRow> = AdminClient::connect(connection)?.get("/agents").await?;
    if json {
        steward_agent::outln!("{}", serde_json::to_string_pretty(&agents)?);
        return Ok(());
    }
    steward_agent::outln!(
        "{:<20} {:<24} {:<8} {:<22} {:<22} {:>9} {:>7} {:>7}  {:<20}",
        "AGENT",
        "HOSTNAME",
        "STATE",
        "ENROLLED",
        "LAST SEEN",
        "REPORTS",
        "SPOOLED",
        "DROPPED",
        "CERT EXPIRES"
    );
    for a in agents {
        let state = if a.revoked_at.is_some() {
            "revoked"
        } else {
            "active"
        };
        steward_agent::outln!(
            "{:<20} {:<24} {:<8} {:<22} {:<22} {:>9} {:>7} {:>7}  {:<20}",
            a.id,
            a.hostname,
            state,
            crate::format_ms(Some(a.enrolled_at)),
            crate::format_ms(a.last_seen_at),
            a.reports_received,
            a.spool.backlog,
            a.spool.dropped,
            crate::format_ms(a.cert_expires_at)
        );
    }
    Ok(())
}

pub async fn revoke_agent(connection: &Connection, id: &str) -> Result<()> {
    let _: Value = AdminClient::connect(connection)?
        .post(&format!("/agents/{id}/revoke"), &Value::Null)
        .await?;
    steward_agent::outln!("revoked {id}");
    Ok(())
}

pub async fn list_cis(connection: &Connection, filter: &CiFilter, json: bool) -> Result<()> {
    let mut query = Vec::new();
    for (key, value) in [
        ("class", &filter.class),
        ("tag", &filter.tag),
        ("service", &filter.service),
        ("name", &filter.name),
    ] {
        if let Some(value) = value {
            query.push(format!("{key}={}", encode_path(value)));
        }
    }
    let path = if query.is_empty() {
        "/cis".to_string()
    } else {
        format!("/cis?{}", query.join("&"))
    };
    let cis: Vec<CiRow> = AdminClient::connect(connection)?.get(&path).await?;
    if json {
        steward_agent::outln!("{}", serde_json::to_string_pretty(&cis)?);
        return Ok(());
    }
    steward_agent::outln!(
        "{:<6} {:<24} {:<15} {:<28} {:<22}",
        "ID",
        "NAME",
        "CLASS",
        "OS",
        "LAST SEEN"
    );
    for ci in cis {
        steward_agent::outln!(
            "{:<6} {:<24} {:<15} {:<28} {:<22}",
            ci.id,
            ci.name,
            ci.class,
            format!("{} {}", ci.os_name, ci.os_version),
            crate::format_ms(Some(ci.last_seen_at))
        );
    }
    Ok(())
}

pub async fn show_ci(connection: &Connection, key: &str, json: bool) -> Result<()> {
    let client = AdminClient::connect(connection)?;
    let detail: CiDetail = client.get(&format!("/cis/{}", encode_path(key))).await?;
    if json {
        steward_agent::outln!("{}", serde_json::to_string_pretty(&detail)?);
    } else {
        steward_agent::out!("{}", render_ci(&detail, true));
    }
    Ok(())
}

/// A human view of one CI: identity, then the latest metrics.
/// A human view of one CI. `all_software` lists every package; otherwise the count per source.
pub fn render_ci(detail: &CiDetail, all_software: bool) -> String {
    let ci = &detail.ci;
    let mut out = format!(
        "CI {}  {}  ({})\n  fqdn        {}\n  os          {} {}  kernel {}  {}\n  machine-id  {}\n  agents      {}\n  first seen  {}\n  last seen   {}\n  reports     {}\n",
        ci.id,
        ci.name,
        ci.class,
        ci.fqdn,
        ci.os_name,
        ci.os_version,
        ci.kernel,
        ci.arch,
        ci.machine_id,
        detail.agents.join(", "),
        crate::format_ms(Some(ci.first_seen_at)),
        crate::format_ms(Some(ci.last_seen_at)),
        detail.reports_stored,
    );
    render_structure(detail, &mut out);
    if let Some(metrics) = detail.metrics.clone()
        && let Ok(metrics) = serde_json::from_value::<steward_shared::v1::Metrics>(metrics)
    {
        let report = steward_shared::v1::MetricsReport {
            host: Default::default(),
            metrics,
        };
        out.push_str(&format!(
            "latest metrics ({})\n",
            crate::format_ms(ci.latest_at)
        ));
        for line in steward_agent::run::human_summary(&report).lines().skip(2) {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
    }
    render_inventory(detail, all_software, &mut out);
    out
}

/// Tags, class attributes and relationships, for the human view of a CI.
fn render_structure(detail: &CiDetail, out: &mut String) {
    use std::fmt::Write as _;
    if !detail.tags.is_empty() {
        let _ = writeln!(out, "tags        {}", detail.tags.join(", "));
    }
    if let Some(attributes) = detail.attributes.as_object().filter(|a| !a.is_empty()) {
        let pairs: Vec<String> = attributes
            .iter()
            // Lists (a device's interfaces and hardware) get sections of their own below.
            .filter(|(_, v)| !v.is_array())
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect();
        let _ = writeln!(out, "attributes  {}", pairs.join("  "));
    }
    if let Some(interfaces) = detail.attributes["interfaces"].as_array() {
        let _ = writeln!(out, "interfaces ({})", interfaces.len());
        for i in interfaces {
            let speed = i["speed_bps"]
                .as_u64()
                .map_or("-".to_string(), |b| format!("{} Mb/s", b / 1_000_000));
            let _ = writeln!(
                out,
                "  {:<4} {:<24} {:<14} {:<12} {}",
                i["index"],
                i["name"].as_str().unwrap_or("-"),
                i["type"].as_str().unwrap_or("-"),
                speed,
                i["mac"].as_str().unwrap_or("")
            );
        }
    }
    if let Some(entities) = detail.attributes["entities"].as_array() {
        let _ = writeln!(out, "hardware ({})", entities.len());
        for e in entities {
            let _ = writeln!(
                out,
                "  {:<32} {:<20} {}",
                e["name"].as_str().unwrap_or("-"),
                e["model"].as_str().unwrap_or("-"),
                e["serial"].as_str().unwrap_or("-")
            );
        }
    }
    if !detail.links.is_empty() {
        out.push_str("links\n");
        for l in &detail.links {
            let _ = writeln!(
                out,
                "  {} {} -> {} {}  ({})",
                l.from_name, l.from_port, l.to_name, l.to_port, l.via
            );
        }
    }
    if !detail.relations.is_empty() {
        out.push_str("relationships\n");
        for r in &detail.relations {
            let _ = writeln!(
                out,
                "  {} {} {}  ({})",
                r.from_name, r.kind, r.to_name, r.source
            );
        }
    }
}

/// Appends the inventory, asset data and history to a CI's human view.
fn render_inventory(detail: &CiDetail, all_software: bool, out: &mut String) {
    use std::fmt::Write as _;
    if let Some(asset) = &detail.asset {
        out.push_str("asset\n");
        for (name, value) in asset_fields(asset) {
            if !value.is_empty() {
                let _ = writeln!(out, "  {:<17} {value}", name.replace('_', " "));
            }
        }
    }
    if let Some(inv) = &detail.inventory {
        let _ = writeln!(
            out,
            "inventory of {} (confirmed {})",
            crate::format_ms(Some(inv.collected_at)),
            crate::format_ms(Some(inv.confirmed_at))
        );
        // The same view as `steward-agent inventory` on the host.
        for line in steward_agent::inventory::human_summary(&inv.inventory).lines() {
            let _ = writeln!(out, "  {line}");
        }
        let software = &inv.inventory.software;
        let _ = writeln!(out, "software ({} packages)", software.len());
        if !all_software {
            let mut by_source: std::collections::BTreeMap<&str, usize> = Default::default();
            for package in software {
                *by_source.entry(package.source.as_str()).or_default() += 1;
            }
            for (source, count) in by_source {
                let _ = writeln!(out, "  {source:<12} {count}");
            }
        }
        for package in software.iter().filter(|_| all_software) {
            let _ = writeln!(
                out,
                "  {:<40} {:<32} {:<8} {}",
                package.name, package.version, package.arch, package.source
            );
        }
    }
    if !detail.history.is_empty() {
        out.push_str("history (newest first)\n");
        for entry in &detail.history {
            let _ = writeln!(
                out,
                "  {}  {}",
                crate::format_ms(Some(entry.at)),
                entry.summary
            );
        }
    }
}

fn or_dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

pub async fn find_software(
    connection: &Connection,
    name: &str,
    version_below: Option<&str>,
    json: bool,
) -> Result<()> {
    let mut path = format!("/software?name={}", encode_path(name));
    if let Some(below) = version_below {
        path.push_str(&format!("&version_below={}", encode_path(below)));
    }
    let hits: Vec<SoftwareHit> = AdminClient::connect(connection)?.get(&path).await?;
    if json {
        steward_agent::outln!("{}", serde_json::to_string_pretty(&hits)?);
        return Ok(());
    }
    steward_agent::outln!(
        "{:<6} {:<28} {:<32} {:<10} SOURCE",
        "CI",
        "NAME",
        "VERSION",
        "ARCH"
    );
    for hit in &hits {
        steward_agent::outln!(
            "{:<6} {:<28} {:<32} {:<10} {}",
            hit.ci_id,
            hit.ci_name,
            hit.version,
            hit.arch,
            hit.source
        );
    }
    eprintln!("{} host(s)", hits.len());
    Ok(())
}

pub async fn import_assets(
    connection: &Connection,
    file: &Path,
    skip_bad_rows: bool,
    json: bool,
) -> Result<()> {
    let data = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = format!(
        "/assets/import?file={}&skip_bad_rows={skip_bad_rows}",
        encode_path(&name)
    );
    let outcome: ImportOutcome = AdminClient::connect(connection)?
        .post_bytes(&path, "text/csv", data)
        .await?;
    if json {
        steward_agent::outln!("{}", serde_json::to_string_pretty(&outcome)?);
        return Ok(());
    }
    steward_agent::outln!(
        "{} row(s) matched a CI, {} changed something; {} unmatched; {} skipped",
        outcome.matched,
        outcome.updated,
        outcome.unmatched.len(),
        outcome.errors.len()
    );
    for row in &outcome.unmatched {
        steward_agent::outln!(
            "  unmatched line {}: serial {:?} asset tag {:?}: {}",
            row.line,
            row.serial,
            row.asset_tag,
            row.reason
        );
    }
    for error in &outcome.errors {
        steward_agent::outln!("  skipped {error}");
    }
    if !outcome.ignored_columns.is_empty() {
        steward_agent::outln!("  ignored columns: {}", outcome.ignored_columns.join(", "));
    }
    Ok(())
}

pub async fn list_warranty(
    connection: &Connection,
    within_days: Option<u64>,
    expired: bool,
    json: bool,
) -> Result<()> {
    let mut path = format!("/warranty?expired={expired}");
    if let Some(days) = within_days {
        path.push_str(&format!("&within_days={}", days.min(u64::from(u32::MAX))));
    }
    let rows: Vec<WarrantyRow> = AdminClient::connect(connection)?.get(&path).await?;
    if json {
        steward_agent::outln!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let today = crate::today();
    steward_agent::outln!(
        "{:<6} {:<24} {:<32} {:<16} {:<12} STATUS",
        "CI",
        "NAME",
        "HARDWARE",
        "SERIAL",
        "ENDS"
    );
    for row in &rows {
        let status = match time::Date::parse(
            &row.warranty_end,
            time::macros::format_description!("[year]-[month]-[day]"),
        ) {
            Ok(end) => {
                let days = (end - today).whole_days();
                if days < 0 {
                    format!("expired {} d ago", -days)
                } else {
                    format!("{days} d left")
                }
            }
            Err(_) => "-".into(),
        };
        steward_agent::outln!(
            "{:<6} {:<24} {:<32} {:<16} {:<12} {}",
            row.ci_id,
            row.ci_name,
            format!("{} {}", row.vendor, row.product),
            or_dash(&row.serial),
            row.warranty_end,
            status
        );
    }
    Ok(())
}

pub async fn list_conflicts(connection: &Connection, all: bool, json: bool) -> Result<()> {
    let rows: Vec<ConflictRow> = AdminClient::connect(connection)?
        .get(&format!("/conflicts?all={all}"))
        .await?;
    if json {
        steward_agent::outln!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    steward_agent::outln!(
        "{:<5} {:<22} {:<20} {:<24} {:<12} REASON",
        "ID",
        "RAISED",
        "AGENT",
        "ITS CI",
        "CANDIDATES"
    );
    for row in &rows {
        let state = match &row.resolution {
            Some(resolution) => format!(" [resolved: {resolution}]"),
            None => String::new(),
        };
        steward_agent::outln!(
            "{:<5} {:<22} {:<20} {:<24} {:<12} {}{state}",
            row.id,
            crate::format_ms(Some(row.created_at)),
            row.agent_id,
            format!("{} ({})", row.ci_name, row.ci_id),
            format!("{:?}", row.candidates),
            row.reason
        );
    }
    if rows.is_empty() {
        eprintln!("no open conflicts");
    }
    Ok(())
}

pub async fn resolve_conflict(
    connection: &Connection,
    id: i64,
    merge: bool,
    into: Option<i64>,
) -> Result<()> {
    let body = if merge {
        serde_json::json!({ "action": "merge", "into": into })
    } else {
        serde_json::json!({ "action": "split" })
    };
    let answer: Value = AdminClient::connect(connection)?
        .post(&format!("/conflicts/{id}/resolve"), &body)
        .await?;
    steward_agent::outln!(
        "conflict {id}: {}",
        answer["outcome"].as_str().unwrap_or("resolved")
    );
    Ok(())
}

pub async fn ci_history(
    connection: &Connection,
    key: &str,
    since: Option<Duration>,
    json: bool,
) -> Result<()> {
    let mut path = format!("/cis/{}/history", encode_path(key));
    if let Some(since) = since {
        let since_ms = crate::now_ms() - i64::try_from(since.as_millis()).unwrap_or(i64::MAX);
        path.push_str(&format!("?since_ms={since_ms}"));
    }
    let entries: Vec<HistoryEntry> = AdminClient::connect(connection)?.get(&path).await?;
    if json {
        steward_agent::outln!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    steward_agent::outln!("{:<22} {:<7} {:<15} CHANGE", "WHEN", "SOURCE", "KIND");
    for entry in &entries {
        steward_agent::outln!(
            "{:<22} {:<7} {:<15} {}",
            crate::format_ms(Some(entry.at)),
            entry.source,
            entry.kind,
            entry.summary
        );
    }
    Ok(())
}

pub async fn relate(
    connection: &Connection,
    from: &str,
    kind: &str,
    to: &str,
    remove: bool,
) -> Result<()> {
    let answer: Value = AdminClient::connect(connection)?
        .post(
            "/relations",
            &serde_json::json!({ "from": from, "type": kind, "to": to, "remove": remove }),
        )
        .await?;
    let changed = answer["changed"].as_bool().unwrap_or(false);
    match (remove, changed) {
        (false, true) => steward_agent::outln!("{from} {kind} {to}"),
        (false, false) => steward_agent::outln!("{from} {kind} {to} (already recorded)"),
        (true, true) => steward_agent::outln!("removed: {from} {kind} {to}"),
        (true, false) => steward_agent::outln!("no such relationship: {from} {kind} {to}"),
    }
    Ok(())
}

pub async fn tag(connection: &Connection, key: &str, tag: &str, remove: bool) -> Result<()> {
    let _: Value = AdminClient::connect(connection)?
        .post(
            &format!("/cis/{}/tags", encode_path(key)),
            &serde_json::json!({ "tag": tag, "remove": remove }),
        )
        .await?;
    steward_agent::outln!(
        "{} tag {tag} on {key}",
        if remove { "removed" } else { "set" }
    );
    Ok(())
}

pub async fn impact(connection: &Connection, key: &str, json: bool) -> Result<()> {
    let affected: Vec<Impacted> = AdminClient::connect(connection)?
        .get(&format!("/cis/{}/impact", encode_path(key)))
        .await?;
    if json {
        steward_agent::outln!("{}", serde_json::to_string_pretty(&affected)?);
        return Ok(());
    }
    if affected.is_empty() {
        steward_agent::outln!("nothing depends on {key}");
        return Ok(());
    }
    steward_agent::outln!("an outage of {key} affects:");
    for ci in &affected {
        steward_agent::outln!(
            "  {}{} ({}, {} via {})",
            "  ".repeat(ci.depth.saturating_sub(1) as usize),
            ci.name,
            ci.class,
            ci.id,
            ci.via
        );
    }
    let services: Vec<&str> = affected
        .iter()
        .filter(|c| c.class == "service")
        .map(|c| c.name.as_str())
        .collect();
    if !services.is_empty() {
        steward_agent::outln!("services affected: {}", services.join(", "));
    }
    Ok(())
}

pub async fn export(connection: &Connection, format: &str) -> Result<()> {
    let client = AdminClient::connect(connection)?;
    let cis: Vec<CiRow> = client.get("/cis").await?;
    let mut structure: CmdbImport = client.get("/export").await?;
    if format == "json" {
        structure.cis = cis;
        steward_agent::outln!("{}", serde_json::to_string_pretty(&structure)?);
        return Ok(());
    }
    let mut services: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for service in &structure.services {
        for ci in &service.cis {
            services.entry(ci.as_str()).or_default().push(&service.name);
        }
    }
    let mut writer = csv::Writer::from_writer(std::io::stdout().lock());
    writer.write_record([
        "id",
        "name",
        "class",
        "fqdn",
        "os",
        "os_version",
        "kernel",
        "arch",
        "machine_id",
        "vendor",
        "product",
        "serial",
        "first_seen",
        "last_seen",
        "services",
    ])?;
    for ci in &cis {
        writer.write_record([
            ci.id.to_string(),
            ci.name.clone(),
            ci.class.clone(),
            ci.fqdn.clone(),
            ci.os_name.clone(),
            ci.os_version.clone(),
            ci.kernel.clone(),
            ci.arch.clone(),
            ci.machine_id.clone(),
            ci.vendor.clone(),
            ci.product.clone(),
            ci.serial.clone(),
            crate::format_ms(Some(ci.first_seen_at)),
            crate::format_ms(Some(ci.last_seen_at)),
            services
                .get(ci.name.as_str())
                .map(|s| s.join(";"))
                .unwrap_or_default(),
        ])?;
    }
    writer.flush()?;
    Ok(())
}

pub async fn import_structure(connection: &Connection, file: &Path) -> Result<()> {
    let data = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let answer: Value = AdminClient::connect(connection)?
        .post_bytes("/import", "application/json", data)
        .await?;
    steward_agent::outln!(
        "{} service(s) created, {} relationship(s) added",
        answer["services_created"],
        answer["relations_added"]
    );
    Ok(())
}

pub async fn create_service(connection: &Connection, name: &str, description: &str) -> Result<()> {
    let answer: Value = AdminClient::connect(connection)?
        .post(
            "/services",
            &serde_json::json!({ "name": name, "description": description }),
        )
        .await?;
    steward_agent::outln!("service {name} created (CI {})", answer["id"]);
    Ok(())
}

pub async fn add_to_service(connection: &Connection, name: &str, cis: &[String]) -> Result<()> {
    let answer: Value = AdminClient::connect(connection)?
        .post(
            &format!("/services/{}/members", encode_path(name)),
            &serde_json::json!({ "cis": cis }),
        )
        .await?;
    steward_agent::outln!("{} CI(s) added to {name}", answer["added"]);
    Ok(())
}

pub async fn show_service(connection: &Connection, name: &str, json: bool) -> Result<()> {
    let service: ServiceDetail = AdminClient::connect(connection)?
        .get(&format!("/services/{}", encode_path(name)))
        .await?;
    if json {
        steward_agent::outln!("{}", serde_json::to_string_pretty(&service)?);
        return Ok(());
    }
    steward_agent::outln!("service {} (CI {})", service.name, service.id);
    if !service.description.is_empty() {
        steward_agent::outln!("  {}", service.description);
    }
    steward_agent::outln!("depends on {} CI(s):", service.members.len());
    for ci in &service.members {
        steward_agent::outln!(
            "  {:<6} {:<24} {:<15} last seen {}",
            ci.id,
            ci.name,
            ci.class,
            crate::format_ms(Some(ci.last_seen_at))
        );
    }
    Ok(())
}

/// Percent-encodes a path segment (CI names may hold anything).
pub(crate) fn encode_path(segment: &str) -> String {
    crate::percent_encode(segment)
}
