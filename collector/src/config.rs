//! `collector.toml`, in the data directory. Unknown keys are an error naming the key and line.

use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub const CONFIG_FILE: &str = "collector.toml";
pub const DATABASE_FILE: &str = "steward.db";
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTPS listener binds: agents, enrollment and the admin API.
    pub listen: SocketAddr,
    /// Extra DNS names or IP addresses agents use to reach this collector; they go into the
    /// server certificate at `init`.
    #[serde(default)]
    pub server_names: Vec<String>,
    /// Log level: error, warn, info, debug or trace.
    #[serde(default = "default_log_level")]
    pub log_level: String,
    #[serde(default)]
    pub ingest: IngestConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub identification: crate::cmdb::identify::IdentifyConfig,
    #[serde(default)]
    pub snmp: crate::snmp::SnmpConfig,
    #[serde(default)]
    pub rules: RulesConfig,
    /// `[tickets]`: how tickets are delivered (retries, correlation key prefix, ...).
    #[serde(default)]
    pub tickets: crate::tickets::TicketsConfig,
    /// `[[connectors]]`: the service desks escalated events go to.
    #[serde(default)]
    pub connectors: Vec<crate::tickets::ConnectorConfig>,
    /// `[[routes]]`: which connector (and queue) takes which events; none: every connector
    /// takes every escalated event.
    #[serde(default)]
    pub routes: Vec<crate::tickets::RouteConfig>,
    /// `[agents]`: agent certificates.
    #[serde(default)]
    pub agents: AgentsConfig,
}

/// `[agents]`: how long an agent certificate is good for. Agents renew theirs (with a new key)
/// once two thirds of that have passed; a revoked agent cannot.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentsConfig {
    /// A duration such as "397d", "90d" or "12h"; between 1 minute and 10 years.
    pub cert_validity: String,
}

impl Default for AgentsConfig {
    fn default() -> Self {
        AgentsConfig {
            cert_validity: "397d".into(),
        }
    }
}

impl AgentsConfig {
    /// The validity as a duration (checked by [`Config::parse`]).
    pub fn cert_validity(&self) -> Result<std::time::Duration, String> {
        let validity = humantime::parse_duration(&self.cert_validity).map_err(|error| {
            format!(
                "agents.cert_validity: {:?} is not a duration such as \"397d\": {error}",
                self.cert_validity
            )
        })?;
        if validity < std::time::Duration::from_secs(60)
            || validity > std::time::Duration::from_secs(10 * 366 * 86_400)
        {
            return Err(format!(
                "agents.cert_validity: {:?} is outside 1 minute to 10 years",
                self.cert_validity
            ));
        }
        Ok(validity)
    }
}

/// `[rules]`: threshold rules laid over the shipped defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Evaluate rules and record events (on by default; off only to measure their cost).
    pub enabled: bool,
    /// A rules file (TOML, `[[rule]]` entries); a rule named like a default replaces it.
    /// Re-read on SIGHUP and `steward-collector rules reload`.
    pub file: Option<std::path::PathBuf>,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            enabled: true,
            file: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Largest report body accepted, in bytes; larger ones get 413.
    pub max_report_bytes: usize,
    /// Most TLS connections served at once; further ones wait in the accept queue.
    pub max_connections: usize,
    /// Most report bytes held in memory at once (bodies being read or waiting to be stored);
    /// past it reports get 503 with Retry-After, so overload cannot exhaust memory.
    pub max_inflight_bytes: usize,
    /// Seconds a request body may take to arrive; a client that stops sending mid-body gets
    /// 408 and loses its connection slot.
    pub body_timeout_secs: u32,
    /// Seconds a client has to send a request's headers, counted from when the server starts
    /// waiting for them; a client that trickles them (slowloris) loses its connection.
    pub header_timeout_secs: u32,
    /// Seconds a client has to finish the TLS handshake; slower ones lose their connection.
    pub handshake_timeout_secs: u32,
    /// Seconds one agent request (`/v1/...`: a report or an enrollment) may take from its
    /// headers to its answer, the body and the handling included; a slower one is answered 503
    /// with Retry-After (the agent sends it again; a report stored meanwhile is acknowledged as
    /// a duplicate) and its connection slot is freed. Admin requests are not bounded by it.
    pub request_timeout_secs: u32,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_report_bytes: 1024 * 1024,
            max_connections: 10_000,
            max_inflight_bytes: 64 * 1024 * 1024,
            body_timeout_secs: 30,
            header_timeout_secs: 30,
            handshake_timeout_secs: 10,
            request_timeout_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Days of metrics history kept; older reports are pruned.
    pub retention_days: u32,
    /// Most writes committed in one transaction by the writer.
    pub batch_max: usize,
    /// Most writes waiting for the writer; past it reports get 503 with Retry-After instead of
    /// queueing without bound (which would only raise every acknowledgement's latency).
    pub queue_max: usize,
    /// Days of CI change history kept.
    pub history_retention_days: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            history_retention_days: 365,
            retention_days: 7,
            batch_max: 1024,
            queue_max: 2048,
        }
    }
}

fn default_log_level() -> String {
    "info".into()
}

/// The same error the agent uses: it names the file, and for bad content the line and key.
pub use steward_agent::config::ConfigError;

impl Config {
    pub fn new(listen: SocketAddr) -> Config {
        Config {
            listen,
            server_names: Vec::new(),
            log_level: default_log_level(),
            ingest: IngestConfig::default(),
            store: StoreConfig::default(),
            identification: Default::default(),
            snmp: Default::default(),
            rules: Default::default(),
            tickets: Default::default(),
            connectors: Vec::new(),
            routes: Vec::new(),
            agents: AgentsConfig::default(),
        }
    }

    pub fn load(data_dir: &Path) -> Result<Config, ConfigError> {
        let path = data_dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        Config::parse(&text).map_err(|message| ConfigError::Invalid { path, message })
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config =
            toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
        if !["error", "warn", "info", "debug", "trace"].contains(&config.log_level.as_str()) {
            return Err(format!(
                "log_level: {:?} is not one of error, warn, info, debug, trace",
                config.log_level
            ));
        }
        config.snmp.validate()?;
        config.agents.cert_validity()?;
        crate::tickets::config::validate(&config.connectors, &config.routes)?;
        if config.tickets.max_attempts == 0 || config.tickets.retry_initial_ms == 0 {
            return Err(
                "tickets.max_attempts and tickets.retry_initial_ms must be positive".into(),
            );
        }
        if config.store.retention_days == 0 {
            return Err("store.retention_days: must be at least 1".into());
        }
        let ingest = &config.ingest;
        let zero = [
            ("store.batch_max", config.store.batch_max == 0),
            ("store.queue_max", config.store.queue_max == 0),
            ("ingest.max_connections", ingest.max_connections == 0),
            ("ingest.body_timeout_secs", ingest.body_timeout_secs == 0),
            (
                "ingest.header_timeout_secs",
                ingest.header_timeout_secs == 0,
            ),
            (
                "ingest.handshake_timeout_secs",
                ingest.handshake_timeout_secs == 0,
            ),
            (
                "ingest.request_timeout_secs",
                ingest.request_timeout_secs == 0,
            ),
        ];
        if let Some((key, _)) = zero.iter().find(|(_, is_zero)| *is_zero) {
            return Err(format!("{key}: must be at least 1"));
        }
        if config.ingest.max_report_bytes < 1024
            || config.ingest.max_inflight_bytes < config.ingest.max_report_bytes
        {
            return Err("ingest.max_report_bytes must be at least 1024, and ingest.max_inflight_bytes at least max_report_bytes".into());
        }
        Ok(config)
    }

    /// The text `init` writes: every key, with a comment saying what it does.
    pub fn to_commented_toml(&self) -> String {
        let names = self
            .server_names
            .iter()
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            r#"# Steward collector configuration. Unknown keys are an error.

# Address the HTTPS listener binds: agents, enrollment and the admin API.
listen = "{listen}"
# Extra DNS names or IP addresses agents use to reach this collector (server certificate).
server_names = [{names}]
# error, warn, info, debug or trace.
log_level = "{log_level}"

[ingest]
# Largest report body accepted, in bytes; larger ones get 413.
max_report_bytes = {max_report_bytes}
# Most TLS connections served at once.
max_connections = {max_connections}
# Most report bytes held in memory at once; past it reports get 503 with Retry-After.
max_inflight_bytes = {max_inflight_bytes}
# Seconds a request body may take to arrive; slower ones get 408.
body_timeout_secs = {body_timeout_secs}
# Seconds a client has to send a request's headers (the defence against slowloris clients).
header_timeout_secs = {header_timeout_secs}
# Seconds a client has to finish the TLS handshake.
handshake_timeout_secs = {handshake_timeout_secs}
# Seconds an agent request (report, enrollment) may take from headers to answer, body and
# handling included; slower ones get 503 with Retry-After and their connection is freed.
request_timeout_secs = {request_timeout_secs}

[store]
# Days of metrics history kept.
retention_days = {retention_days}
# Most writes committed in one transaction.
batch_max = {batch_max}
# Most writes waiting to be committed; past it reports get 503 with Retry-After.
queue_max = {queue_max}

[agents]
# How long an agent certificate is good for ("397d", "90d", "12h"). Agents renew theirs, with a
# new key, once two thirds of it have passed; a revoked agent cannot renew.
cert_validity = "{cert_validity}"

# Tickets: escalated events go to the service desks listed as [[connectors]] (type =
# request_tracker, servicenow, jira_service_management, glpi, zammad, pagerduty or webhook),
# narrowed by [[routes]]; delivery settings in [tickets]. Every key: packaging/collector.toml.
"#,
            listen = self.listen,
            log_level = self.log_level,
            max_report_bytes = self.ingest.max_report_bytes,
            max_connections = self.ingest.max_connections,
            max_inflight_bytes = self.ingest.max_inflight_bytes,
            body_timeout_secs = self.ingest.body_timeout_secs,
            header_timeout_secs = self.ingest.header_timeout_secs,
            handshake_timeout_secs = self.ingest.handshake_timeout_secs,
            request_timeout_secs = self.ingest.request_timeout_secs,
            queue_max = self.store.queue_max,
            retention_days = self.store.retention_days,
            batch_max = self.store.batch_max,
            cert_validity = self.agents.cert_validity,
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn agent_certificate_validity_is_a_bounded_duration() {
        let parse = |value: &str| {
            Config::parse(&format!(
                "listen = \"127.0.0.1:1\"\n[agents]\ncert_validity = \"{value}\"\n"
            ))
        };
        assert_eq!(
            parse("90d").unwrap().agents.cert_validity().unwrap(),
            std::time::Duration::from_secs(90 * 86_400)
        );
        let error = parse("soon").unwrap_err();
        assert!(error.contains("agents.cert_validity"), "{error}");
        let error = parse("5s").unwrap_err();
        assert!(error.contains("outside 1 minute to 10 years"), "{error}");
    }

    #[test]
    fn the_written_config_reads_back() {
        let mut config = Config::new("127.0.0.1:8443".parse().unwrap());
        config.server_names = vec!["collector.example.org".into()];
        let back = Config::parse(&config.to_commented_toml()).unwrap();
        assert_eq!(back.listen, config.listen);
        assert_eq!(back.server_names, config.server_names);
        assert_eq!(back.store.retention_days, 7);
    }

    #[test]
    fn the_shipped_example_parses() {
        let config = Config::parse(include_str!("../../packaging/collector.toml")).unwrap();
        assert_eq!(config.snmp.targets.len(), 2);
        assert_eq!(
            config.snmp.targets[1].credentials.version(),
            crate::snmp::SnmpVersion::V3
        );
        assert!(config.rules.enabled);
        // Every connector kind and a route for several of them.
        let kinds: Vec<&str> = config
            .connectors
            .iter()
            .map(|c| c.kind.type_name())
            .collect();
        assert_eq!(
            kinds,
            [
                "request_tracker",
                "servicenow",
                "jira_service_management",
                "glpi",
                "zammad",
                "pagerduty",
                "webhook"
            ]
        );
        assert_eq!(config.routes.len(), 4);
        assert_eq!(config.tickets.max_attempts, 20);
        // The example rules file parses with the defaults it is laid over.
        let rules = crate::rules::RuleSet::with_defaults()
            .overlay(
                crate::rules::RuleSet::parse(
                    include_str!("../../packaging/rules.toml"),
                    "packaging/rules.toml",
                )
                .unwrap(),
            )
            .unwrap();
        assert!(rules.get("uplink-busy").is_some());
        // Secrets never reach Debug output (logs, panics).
        assert!(!format!("{config:?}").contains("change-me-auth"));
    }

    #[test]
    fn bad_snmp_settings_are_named() {
        let base = "listen = \"127.0.0.1:1\"\n";
        let short = format!(
            "{base}[snmp]\n[[snmp.targets]]\nhost = \"r1\"\ncredentials = {{ version = \"v3\", user = \"u\", auth = \"sha\", auth_pass = \"short\" }}\n"
        );
        let error = Config::parse(&short).unwrap_err();
        assert!(
            error.contains("snmp.targets[0] (r1)") && error.contains("auth_pass"),
            "{error}"
        );
        let error = Config::parse(&format!("{base}[snmp]\ninterval_secs = 1\n")).unwrap_err();
        assert!(error.contains("snmp.interval_secs"), "{error}");
        let error = Config::parse(&format!(
            "{base}[snmp]\n[[snmp.targets]]\nhost = \"r1\"\ncredentials = {{ version = \"v9\", community = \"c\" }}\n"
        ))
        .unwrap_err();
        assert!(error.contains("v9"), "{error}");
    }

    #[test]
    fn zero_limits_are_refused_naming_the_key() {
        let base = "listen = \"127.0.0.1:1\"\n";
        for key in [
            "ingest.max_connections",
            "ingest.body_timeout_secs",
            "ingest.header_timeout_secs",
            "ingest.handshake_timeout_secs",
            "ingest.request_timeout_secs",
            "store.batch_max",
            "store.queue_max",
        ] {
            let (table, name) = key.split_once('.').unwrap();
            let error = Config::parse(&format!("{base}[{table}]\n{name} = 0\n")).unwrap_err();
            assert!(
                error.contains(key) && error.contains("at least 1"),
                "{key}: {error}"
            );
        }
    }

    #[test]
    fn the_limits_default_and_read_back() {
        let config = Config::parse("listen = \"127.0.0.1:1\"\n").unwrap();
        assert_eq!(config.ingest.header_timeout_secs, 30);
        assert_eq!(config.ingest.handshake_timeout_secs, 10);
        assert_eq!(config.ingest.request_timeout_secs, 60);
        let mut config = Config::new("127.0.0.1:8443".parse().unwrap());
        config.ingest.header_timeout_secs = 2;
        config.ingest.handshake_timeout_secs = 3;
        config.ingest.request_timeout_secs = 4;
        config.ingest.max_connections = 5;
        let text = config.to_commented_toml();
        let back = Config::parse(&text).unwrap();
        assert_eq!(
            (
                back.ingest.header_timeout_secs,
                back.ingest.handshake_timeout_secs,
                back.ingest.request_timeout_secs,
                back.ingest.max_connections
            ),
            (2, 3, 4, 5),
            "{text}"
        );
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let error =
            Config::parse("listen = \"127.0.0.1:1\"\n[store]\nretention = 3\n").unwrap_err();
        assert!(
            error.contains("line 3") && error.contains("retention"),
            "{error}"
        );
    }

    #[test]
    fn bad_listen_address_is_named() {
        let error = Config::parse("listen = \"nowhere\"\n").unwrap_err();
        assert!(
            error.contains("listen") || error.contains("line 1"),
            "{error}"
        );
    }

    /// The Debian package's conffile /etc/steward/collector.toml is what `init` would write.
    #[test]
    fn the_packaged_default_config_is_what_init_writes() {
        let packaged = include_str!("../../packaging/etc/collector.toml");
        let generated = Config::new("0.0.0.0:8443".parse().unwrap()).to_commented_toml();
        assert_eq!(
            packaged, generated,
            "regenerate packaging/etc/collector.toml from Config::to_commented_toml"
        );
        let parsed = Config::parse(packaged).unwrap();
        assert_eq!(parsed.listen, "0.0.0.0:8443".parse().unwrap());
    }
}
