//! `[tickets]`, `[[connectors]]` and `[[routes]]` in `collector.toml`. The names are stable:
//! operators' configs keep working. `ConnectorKind` is the table of connectors: each variant's
//! settings are defined in the connector's own file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use super::{glpi, jira, pagerduty, request_tracker, servicenow, webhook, zammad};

/// `[tickets]`: how the dispatcher delivers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TicketsConfig {
    /// First retry delay in milliseconds; each failure doubles it (with jitter).
    pub retry_initial_ms: u64,
    /// Longest delay between two tries, in seconds.
    pub retry_max_secs: u64,
    /// Tries before an item moves to the dead letter (`tickets list --failed`).
    pub max_attempts: u32,
    /// Prefix of the correlation key each ticket carries (`PREFIX-EVENTID-OPENEDMS`); give each
    /// collector sharing one service desk its own.
    pub correlation_prefix: String,
    /// Hours of CI history (e.g. "package X upgraded") quoted in a ticket's body.
    pub history_hours: u32,
}

impl Default for TicketsConfig {
    fn default() -> Self {
        TicketsConfig {
            retry_initial_ms: 1000,
            retry_max_secs: 300,
            max_attempts: 20,
            correlation_prefix: "steward".into(),
            history_hours: 24,
        }
    }
}

/// What a re-fire of a resolved event does within `reopen_within_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnRefire {
    /// Reopen the previous ticket with a note.
    #[default]
    Reopen,
    /// Open a new ticket.
    New,
}

/// One `[[connectors]]` entry: the settings every connector has, and its kind's own.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectorConfig {
    /// Referenced by routes; also names the connector in `tickets list`.
    pub name: String,
    /// Base URL of the system's API (PagerDuty: `https://events.pagerduty.com`).
    pub url: String,
    /// Credentials, read from files (never written into this file).
    pub auth: Auth,
    /// Seconds one HTTP call may take before it counts as failed (and maybe applied).
    pub timeout_secs: u64,
    /// Most calls in flight to this system at once.
    pub max_in_flight: usize,
    /// A re-fire within `reopen_within_secs` of the resolve: `reopen` (default) or `new`.
    pub on_refire: OnRefire,
    pub reopen_within_secs: u64,
    /// Ticket title template (`{summary}`, `{ci}`, `{rule}`, `{severity}`, ... see README).
    pub summary_template: Option<String>,
    /// Ticket body template; by default the event and the CI's context.
    pub body_template: Option<String>,
    pub kind: ConnectorKind,
}

/// The table of connectors: `type = "..."` in `[[connectors]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConnectorKind {
    Servicenow(servicenow::Config),
    JiraServiceManagement(jira::Config),
    Glpi(glpi::Config),
    RequestTracker(request_tracker::Config),
    Zammad(zammad::Config),
    Pagerduty(pagerduty::Config),
    Webhook(webhook::Config),
}

impl ConnectorKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            ConnectorKind::Servicenow(_) => "servicenow",
            ConnectorKind::JiraServiceManagement(_) => "jira_service_management",
            ConnectorKind::Glpi(_) => "glpi",
            ConnectorKind::RequestTracker(_) => "request_tracker",
            ConnectorKind::Zammad(_) => "zammad",
            ConnectorKind::Pagerduty(_) => "pagerduty",
            ConnectorKind::Webhook(_) => "webhook",
        }
    }
}

/// The keys every connector has; the rest of the entry belongs to its kind.
const COMMON_KEYS: &[&str] = &[
    "name",
    "url",
    "auth",
    "timeout_secs",
    "max_in_flight",
    "on_refire",
    "reopen_within_secs",
    "summary_template",
    "body_template",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Common {
    name: String,
    url: String,
    #[serde(default)]
    auth: Auth,
    #[serde(default = "default_timeout")]
    timeout_secs: u64,
    #[serde(default = "default_in_flight")]
    max_in_flight: usize,
    #[serde(default)]
    on_refire: OnRefire,
    #[serde(default = "default_reopen_within")]
    reopen_within_secs: u64,
    summary_template: Option<String>,
    body_template: Option<String>,
}

fn default_timeout() -> u64 {
    10
}
fn default_in_flight() -> usize {
    4
}
fn default_reopen_within() -> u64 {
    86_400
}

impl<'de> Deserialize<'de> for ConnectorConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(deserializer)?;
        let name = table
            .get("name")
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_string();
        let mut common = toml::Table::new();
        for key in COMMON_KEYS {
            if let Some(value) = table.remove(*key) {
                common.insert((*key).to_string(), value);
            }
        }
        let common: Common = toml::Value::Table(common)
            .try_into()
            .map_err(|e| D::Error::custom(format!("connector {name:?}: {e}")))?;
        if !table.contains_key("type") {
            return Err(D::Error::custom(format!(
                "connector {name:?}: missing `type` (servicenow, jira_service_management, glpi, request_tracker, zammad, pagerduty or webhook)"
            )));
        }
        let kind: ConnectorKind = toml::Value::Table(table)
            .try_into()
            .map_err(|e| D::Error::custom(format!("connector {name:?}: {e}")))?;
        Ok(ConnectorConfig {
            name: common.name,
            url: common.url,
            auth: common.auth,
            timeout_secs: common.timeout_secs,
            max_in_flight: common.max_in_flight,
            on_refire: common.on_refire,
            reopen_within_secs: common.reopen_within_secs,
            summary_template: common.summary_template,
            body_template: common.body_template,
            kind,
        })
    }
}

/// `auth = { user = "...", password_file = "..." }` (HTTP Basic), `{ token_file = "..." }`
/// (the system's token scheme), and for GLPI optionally `app_token_file`. Secrets stay in
/// their files; only the paths are in the config.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    pub user: Option<String>,
    pub password_file: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
    /// GLPI's `App-Token`, if the API client requires one.
    pub app_token_file: Option<PathBuf>,
}

/// Credentials as read from their files.
#[derive(Debug, Clone)]
pub enum Credentials {
    None,
    Basic { user: String, password: Secret },
    Token(Secret),
}

impl Auth {
    /// Reads the secret files. Refuses half-given credentials.
    pub fn load(&self) -> Result<Credentials, String> {
        match (&self.user, &self.password_file, &self.token_file) {
            (Some(user), Some(file), None) => Ok(Credentials::Basic {
                user: user.clone(),
                password: Secret::from_file(file)?,
            }),
            (None, None, Some(file)) => Ok(Credentials::Token(Secret::from_file(file)?)),
            (None, None, None) => Ok(Credentials::None),
            (_, _, Some(_)) => {
                Err("auth: give user + password_file or token_file, not both".into())
            }
            (Some(_), None, None) => Err("auth: user needs password_file".into()),
            (None, Some(_), None) => Err("auth: password_file needs user".into()),
        }
    }

    pub fn app_token(&self) -> Result<Option<Secret>, String> {
        self.app_token_file
            .as_deref()
            .map(Secret::from_file)
            .transpose()
    }
}

/// A secret read from a file: its `Debug` and `Serialize` show nothing of it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The file's content, trimmed; an empty file is an error.
    pub fn from_file(path: &Path) -> Result<Secret, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let value = text.trim();
        if value.is_empty() {
            return Err(format!("{} is empty", path.display()));
        }
        Ok(Secret(value.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("..")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Secret(String::deserialize(d)?))
    }
}

/// One `[[routes]]` entry. An escalated event goes, for each connector, to the first route
/// naming that connector whose every given condition matches; with no routes at all, every
/// event goes to every connector (to its default queue).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteConfig {
    /// The connector this route sends to (its `name`).
    pub connector: String,
    /// Queue, group, assignment group or service desk to use instead of the connector's.
    pub queue: Option<String>,
    /// Severities that match (`warning`, `critical`); empty: any.
    pub severity: Vec<String>,
    /// Rule names (globs, e.g. `fs-*`); empty: any.
    pub rules: Vec<String>,
    /// CI classes (`server`, `network_device`, ...); empty: any.
    pub classes: Vec<String>,
    /// Services the CI belongs to (directly or through its dependencies); empty: any.
    pub services: Vec<String>,
    /// CI tags, e.g. the support group's (`team-network`); empty: any.
    pub tags: Vec<String>,
    /// The CI's owner from the CMDB asset data (globs); empty: any.
    pub owners: Vec<String>,
}

/// Checks the connectors and routes together: unique names, routes naming connectors that
/// exist, valid severities, globs and URLs. Errors name the entry.
pub fn validate(connectors: &[ConnectorConfig], routes: &[RouteConfig]) -> Result<(), String> {
    let mut names = std::collections::HashSet::new();
    for (i, c) in connectors.iter().enumerate() {
        let at = format!("connectors[{i}] ({})", c.name);
        if c.name.is_empty() {
            return Err(format!("connectors[{i}]: name must not be empty"));
        }
        if !names.insert(c.name.as_str()) {
            return Err(format!("{at}: the name is used twice"));
        }
        match reqwest::Url::parse(&c.url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            Ok(url) => return Err(format!("{at}: url: scheme {} is not http(s)", url.scheme())),
            Err(e) => return Err(format!("{at}: url: {e}")),
        }
        if c.timeout_secs == 0 || c.max_in_flight == 0 {
            return Err(format!(
                "{at}: timeout_secs and max_in_flight must be positive"
            ));
        }
        for template in [&c.summary_template, &c.body_template]
            .into_iter()
            .flatten()
        {
            super::render::check_template(template).map_err(|e| format!("{at}: {e}"))?;
        }
    }
    for (i, r) in routes.iter().enumerate() {
        let at = format!("routes[{i}]");
        if !names.contains(r.connector.as_str()) {
            return Err(format!(
                "{at}: connector {:?} is not a [[connectors]] name",
                r.connector
            ));
        }
        if let Some(bad) = r
            .severity
            .iter()
            .find(|s| !matches!(s.as_str(), "warning" | "critical"))
        {
            return Err(format!("{at}: severity {bad:?} is not warning or critical"));
        }
        for glob in r.rules.iter().chain(&r.owners) {
            crate::rules::Glob::parse(glob).map_err(|e| format!("{at}: {glob:?}: {e}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::config::Config;

    fn parse(extra: &str) -> Result<Config, String> {
        Config::parse(&format!("listen = \"127.0.0.1:1\"\n{extra}"))
    }

    const RT: &str = "[[connectors]]\nname = \"rt\"\ntype = \"request_tracker\"\nurl = \"http://127.0.0.1:18080\"\nauth = { user = \"root\", password_file = \"/x\" }\n";

    #[test]
    fn a_connector_entry_reads_its_common_and_own_keys() {
        let config = parse(RT).unwrap();
        let rt = &config.connectors[0];
        assert_eq!(
            (rt.name.as_str(), rt.timeout_secs, rt.max_in_flight),
            ("rt", 10, 4)
        );
        match &rt.kind {
            super::ConnectorKind::RequestTracker(c) => {
                assert_eq!(
                    (c.queue.as_str(), c.correlation_field.as_str()),
                    ("General", "Correlation Key")
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mistakes_in_connectors_and_routes_are_named() {
        let cases = [
            (RT.replace("request_tracker", "remedy"), "unknown variant `remedy`"),
            (RT.replace("queue", "x").replace("url =", "queeu = \"Q\"\nurl ="), "unknown field `queeu`"),
            (RT.replace("type = \"request_tracker\"\n", ""), "missing `type`"),
            (RT.replace("http://127.0.0.1:18080", "ftp://x"), "scheme ftp"),
            (format!("{RT}{RT}"), "the name is used twice"),
            (format!("{RT}summary_template = \"{{nope}}\"\n"), "unknown placeholder {nope}"),
            (format!("{RT}[[routes]]\nconnector = \"jira\"\n"), "connector \"jira\" is not a [[connectors]] name"),
            (format!("{RT}[[routes]]\nconnector = \"rt\"\nseverity = [\"major\"]\n"), "severity \"major\""),
            (format!("{RT}[[routes]]\nconnector = \"rt\"\nqueue = \"Q\"\nclass = [\"server\"]\n"), "unknown field `class`"),
            ("[tickets]\nmax_attempts = 0\n".to_string(), "max_attempts"),
            ("[[connectors]]\nname = \"j\"\ntype = \"jira_service_management\"\nurl = \"https://x\"\n".to_string(), "service_desk_id"),
        ];
        for (text, expected) in cases {
            let error = parse(&text).unwrap_err();
            assert!(
                error.contains(expected),
                "{expected:?} not in {error:?} for\n{text}"
            );
        }
        // Half-given credentials are refused when the connector is built.
        let auth = super::Auth {
            user: Some("root".into()),
            ..super::Auth::default()
        };
        assert!(
            auth.load()
                .unwrap_err()
                .contains("user needs password_file")
        );
    }

    #[test]
    fn secrets_never_show_in_debug_or_serialized_output() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pass");
        std::fs::write(&file, "hunter2-very-secret\n").unwrap();
        let secret = super::Secret::from_file(&file).unwrap();
        assert_eq!(secret.expose(), "hunter2-very-secret");
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert!(!serde_json::to_string(&secret).unwrap().contains("hunter2"));
        let auth = super::Auth {
            user: Some("root".into()),
            password_file: Some(file),
            ..super::Auth::default()
        };
        let credentials = auth.load().unwrap();
        assert!(!format!("{credentials:?}").contains("hunter2"));
        std::fs::write(dir.path().join("empty"), "\n").unwrap();
        assert!(
            super::Secret::from_file(&dir.path().join("empty"))
                .unwrap_err()
                .contains("is empty")
        );
    }
}
