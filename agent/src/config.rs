//! The agent's TOML configuration (`/etc/steward/agent.toml` by default; on Windows
//! `%ProgramData%\Steward\agent.toml`). Unknown keys are an error naming the key, so a typo never
//! silently falls back to a default.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where the agent looks for its config when `--config` is not given. On Windows this is the
/// fallback of [`default_config_path`], which follows %ProgramData%.
#[cfg(not(windows))]
pub const DEFAULT_CONFIG_PATH: &str = "/etc/steward/agent.toml";
#[cfg(windows)]
pub const DEFAULT_CONFIG_PATH: &str = r"C:\ProgramData\Steward\agent.toml";
/// Where the agent keeps its key, certificate, pinned CA and sequence counter by default (on
/// Windows the fallback of [`default_state_dir`]).
#[cfg(not(windows))]
pub const DEFAULT_STATE_DIR: &str = "/var/lib/steward-agent";
#[cfg(windows)]
pub const DEFAULT_STATE_DIR: &str = r"C:\ProgramData\Steward\state";

/// The config path used when `--config` is not given: [`DEFAULT_CONFIG_PATH`], on Windows under
/// %ProgramData%.
#[cfg(not(windows))]
pub fn default_config_path() -> PathBuf {
    PathBuf::from(DEFAULT_CONFIG_PATH)
}
#[cfg(windows)]
pub fn default_config_path() -> PathBuf {
    windows_data_file("agent.toml")
}

/// The default state directory: [`DEFAULT_STATE_DIR`], on Windows under %ProgramData%.
#[cfg(not(windows))]
pub fn default_state_dir() -> PathBuf {
    PathBuf::from(DEFAULT_STATE_DIR)
}
#[cfg(windows)]
pub fn default_state_dir() -> PathBuf {
    windows_data_file("state")
}

/// The default asset file: [`DEFAULT_ASSET_FILE`], on Windows under %ProgramData%.
#[cfg(not(windows))]
pub fn default_asset_file() -> PathBuf {
    PathBuf::from(DEFAULT_ASSET_FILE)
}
#[cfg(windows)]
pub fn default_asset_file() -> PathBuf {
    windows_data_file("asset.toml")
}

/// `%ProgramData%\Steward\NAME`: the agent's files on Windows (config, state, asset file, log).
#[cfg(windows)]
pub fn windows_data_file(name: &str) -> PathBuf {
    windows_path(
        std::env::var_os("ProgramData"),
        r"C:\ProgramData",
        &format!(r"Steward\{name}"),
    )
}

/// `BASE\REL` for a Windows base directory taken from the environment (%ProgramData%,
/// %ProgramFiles%), or `FALLBACK\REL` when the variable is unset, empty or not an absolute
/// Windows path (`X:\...` or `\\server\...`). Built as text, so it is the same on every platform.
#[cfg(any(windows, test))]
pub(crate) fn windows_path(base: Option<std::ffi::OsString>, fallback: &str, rel: &str) -> PathBuf {
    let base = base
        .and_then(|base| base.into_string().ok())
        .filter(|base| {
            let bytes = base.as_bytes();
            let drive = bytes.len() >= 3
                && bytes[0].is_ascii_alphabetic()
                && bytes[1] == b':'
                && matches!(bytes[2], b'\\' | b'/');
            drive || base.starts_with(r"\\")
        })
        .unwrap_or_else(|| fallback.to_string());
    PathBuf::from(format!(r"{}\{rel}", base.trim_end_matches(['\\', '/'])))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Seconds between metrics reports.
    pub interval_secs: u32,
    /// Directory holding the agent's identity (key, certificate, pinned collector CA) and state.
    pub state_dir: PathBuf,
    /// Directory under which inventory and identity files are read (`/etc/os-release`,
    /// `/etc/machine-id`, ...). `/` on a real host; a fixture tree in tests.
    pub root: PathBuf,
    /// Log level: `error`, `warn`, `info`, `debug` or `trace`.
    pub log_level: LogLevel,
    /// Seconds to wait for the collector to answer one report before counting it as failed.
    pub request_timeout_secs: u32,
    pub metrics: MetricsConfig,
    pub inventory: InventoryConfig,
    pub spool: SpoolConfig,
}

/// The on-disk spool of reports the collector did not acknowledge, and how the agent retries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    /// Most bytes the spool holds; past it the oldest metrics reports are dropped first.
    pub max_mib: u32,
    /// Metrics reports older than this are dropped (full inventories are kept).
    pub max_age_days: u32,
    /// Most spooled reports delivered in one interval after the collector is back.
    pub drain_batch: u32,
    /// Longest wait between attempts while the collector is unreachable (exponential backoff
    /// with jitter from one interval up to this; a `Retry-After` from the collector is honoured).
    pub max_backoff_secs: u32,
    /// The first report waits a random 0..this many seconds, so a fleet restarting together
    /// (after a power cut, a package upgrade) does not report at the same instant. Default: the
    /// interval.
    pub start_jitter_secs: Option<u32>,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            max_mib: 64,
            max_age_days: 7,
            drain_batch: 500,
            max_backoff_secs: 300,
            start_jitter_secs: None,
        }
    }
}

impl SpoolConfig {
    pub fn limits(&self) -> crate::spool::Limits {
        crate::spool::Limits {
            max_bytes: u64::from(self.max_mib) * 1024 * 1024,
            max_age_ms: i64::from(self.max_age_days) * 86_400_000,
        }
    }
}

/// Hardware, software and asset inventory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InventoryConfig {
    /// Send inventory at all.
    pub enabled: bool,
    /// Seconds between inventories (also taken at agent start). Unchanged inventories are sent
    /// as a small marker, not in full.
    pub interval_secs: u32,
    /// The host's asset file (asset tag, owner, location, warranty, ...), read under `root`.
    /// Missing is fine.
    pub asset_file: PathBuf,
}

/// Where the host's asset file is by default (on Windows the fallback of
/// [`default_asset_file`]).
#[cfg(not(windows))]
pub const DEFAULT_ASSET_FILE: &str = "/etc/steward/asset.toml";
#[cfg(windows)]
pub const DEFAULT_ASSET_FILE: &str = r"C:\ProgramData\Steward\asset.toml";

impl Default for InventoryConfig {
    fn default() -> Self {
        InventoryConfig {
            enabled: true,
            interval_secs: 6 * 3600,
            asset_file: default_asset_file(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            interval_secs: 10,
            state_dir: default_state_dir(),
            root: PathBuf::from("/"),
            log_level: LogLevel::Info,
            request_timeout_secs: 30,
            metrics: MetricsConfig::default(),
            inventory: InventoryConfig::default(),
            spool: SpoolConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl From<LogLevel> for tracing::Level {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::Error => tracing::Level::ERROR,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Trace => tracing::Level::TRACE,
        }
    }
}

/// Which filesystems, block devices and interfaces are reported. Patterns are globs with `*`
/// and `?`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Filesystem types never reported (pseudo and virtual filesystems). Replaces the default
    /// list when set.
    pub exclude_fs_types: Vec<String>,
    /// Mount points never reported.
    pub exclude_mounts: Vec<String>,
    /// Block devices whose I/O is not reported.
    pub exclude_disks: Vec<String>,
    /// Network interfaces not reported.
    pub exclude_interfaces: Vec<String>,
    /// Seconds a `statvfs` on a network filesystem (NFS, CIFS, ...) may take before the mount is
    /// skipped for that cycle, so a hung server cannot stall the agent.
    pub network_fs_timeout_secs: u32,
}

/// Pseudo filesystems: kernel interfaces, memory-backed or layered views, never a disk to watch.
pub const DEFAULT_EXCLUDED_FS_TYPES: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fusectl",
    "fuse.lxcfs",
    "fuse.gvfsd-fuse",
    "fuse.portal",
    "hugetlbfs",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
    "nfsd",
    "iso9660",
];

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            exclude_fs_types: DEFAULT_EXCLUDED_FS_TYPES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            exclude_mounts: vec![
                "/proc/*".into(),
                "/sys/*".into(),
                "/dev/*".into(),
                "/run/credentials/*".into(),
                "/snap/*".into(),
                "/var/lib/docker/*".into(),
                "/var/lib/containers/*".into(),
                "/var/lib/kubelet/*".into(),
            ],
            exclude_disks: vec![
                "loop*".into(),
                "ram*".into(),
                "zram*".into(),
                "sr*".into(),
                "fd*".into(),
            ],
            exclude_interfaces: vec!["lo".into(), "veth*".into()],
            network_fs_timeout_secs: 2,
        }
    }
}

/// A config file that could not be used. The message names the file and, for syntax and key
/// errors, the line and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Config {
    /// Loads the config. A missing file is an error only when the path was given explicitly;
    /// an agent with no `/etc/steward/agent.toml` runs on defaults.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let (path, explicit) = match path {
            Some(path) => (path.to_path_buf(), true),
            None => (default_config_path(), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && !explicit => {
                return Ok(Config::default());
            }
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        Config::parse(&text).map_err(|message| ConfigError::Invalid { path, message })
    }

    /// Parses config text; the error is toml's message, which carries line, column and key.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config =
            toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
        if config.interval_secs == 0 {
            return Err("interval_secs: must be at least 1".into());
        }
        if config.request_timeout_secs == 0 {
            return Err("request_timeout_secs: must be at least 1".into());
        }
        if config.inventory.interval_secs < 60 {
            return Err("inventory.interval_secs: must be at least 60".into());
        }
        let spool = &config.spool;
        for (key, value) in [
            ("spool.max_mib", spool.max_mib),
            ("spool.max_age_days", spool.max_age_days),
            ("spool.drain_batch", spool.drain_batch),
            ("spool.max_backoff_secs", spool.max_backoff_secs),
        ] {
            if value == 0 {
                return Err(format!("{key}: must be at least 1"));
            }
        }
        Ok(config)
    }
}

/// Matches `name` against a glob with `*` (any run) and `?` (one character).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// True if any pattern matches.
pub fn matches_any(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| glob_match(p, name))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_shipped_example_parses_with_the_real_parser() {
        let text = include_str!("../../packaging/agent.toml");
        let config = Config::parse(text).unwrap();
        assert_eq!(config.interval_secs, 10);
        assert_eq!(
            config.metrics.exclude_fs_types,
            MetricsConfig::default().exclude_fs_types
        );
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_key_and_line() {
        let error =
            Config::parse("interval_secs = 5\n\n[metrics]\nexclude_fstypes = []\n").unwrap_err();
        assert!(error.contains("line 4"), "{error}");
        assert!(error.contains("exclude_fstypes"), "{error}");
    }

    #[test]
    fn a_wrong_type_names_the_key() {
        let error = Config::parse("interval_secs = \"ten\"\n").unwrap_err();
        assert!(
            error.contains("interval_secs") && error.contains("line 1"),
            "{error}"
        );
    }

    #[test]
    fn zero_interval_is_rejected() {
        assert!(
            Config::parse("interval_secs = 0\n")
                .unwrap_err()
                .contains("interval_secs")
        );
    }

    #[test]
    fn missing_default_file_means_defaults_but_missing_explicit_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        let error = Config::load(Some(&missing)).unwrap_err().to_string();
        assert!(error.contains("nope.toml"), "{error}");
    }

    #[test]
    fn windows_paths_follow_the_environment_or_fall_back() {
        let path = |base: Option<&str>| {
            windows_path(
                base.map(Into::into),
                r"C:\ProgramData",
                r"Steward\agent.toml",
            )
        };
        assert_eq!(
            path(None),
            PathBuf::from(r"C:\ProgramData\Steward\agent.toml")
        );
        assert_eq!(
            path(Some(r"D:\Data")),
            PathBuf::from(r"D:\Data\Steward\agent.toml")
        );
        assert_eq!(
            path(Some(r"D:\Data\")),
            PathBuf::from(r"D:\Data\Steward\agent.toml")
        );
        assert_eq!(path(Some(r"D:\")), PathBuf::from(r"D:\Steward\agent.toml"));
        assert_eq!(
            path(Some(r"\\server\share")),
            PathBuf::from(r"\\server\share\Steward\agent.toml")
        );
        // Unset, empty or relative: never a path relative to the working directory.
        for base in ["", "Data", r"\Data", "C:"] {
            assert_eq!(path(Some(base)), path(None), "{base:?}");
        }
        #[cfg(not(windows))]
        {
            assert_eq!(
                default_config_path(),
                PathBuf::from("/etc/steward/agent.toml")
            );
            assert_eq!(default_state_dir(), PathBuf::from("/var/lib/steward-agent"));
            assert_eq!(
                default_asset_file(),
                PathBuf::from("/etc/steward/asset.toml")
            );
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match("veth*", "veth12ab"));
        assert!(glob_match("lo", "lo"));
        assert!(!glob_match("lo", "lo0"));
        assert!(glob_match(
            "/var/lib/docker/*",
            "/var/lib/docker/overlay2/x/merged"
        ));
        assert!(glob_match("sd?", "sda"));
        assert!(!glob_match("sd?", "sda1"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
    }
}
