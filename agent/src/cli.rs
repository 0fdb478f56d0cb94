//! The `steward-agent` command line, defined here (not in `main.rs`) so packaging can render
//! its man pages and shell completions from the same definition.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "steward-agent",
    version,
    about = "Reports this host's metrics to a Steward collector"
)]
pub struct Cli {
    /// Config file (default /etc/steward/agent.toml; missing is fine unless given explicitly).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enroll with a collector: pin its CA and obtain this agent's certificate.
    Enroll {
        /// Collector base URL, e.g. https://collector.example.org:8443
        #[arg(long)]
        collector: String,
        /// Enrollment token from `steward-collector enroll-token create`.
        #[arg(long)]
        token: String,
        /// The collector CA fingerprint printed by `steward-collector init` (sha256:<hex>).
        #[arg(long)]
        ca_fingerprint: String,
        /// State directory (default from the config, else /var/lib/steward-agent).
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Report metrics to the collector every interval.
    Run {
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Seconds between reports (overrides the config).
        #[arg(long)]
        interval: Option<u32>,
        /// Read inventory and identity files under this directory instead of /.
        #[arg(long)]
        root: Option<PathBuf>,
        /// Send one report and exit: 0 if the collector acknowledged it, 1 if not.
        #[arg(long)]
        once: bool,
        /// Run under the Windows service control manager (how the installed service starts).
        #[arg(long, hide = true)]
        windows_service: bool,
    },
    /// Print what would be sent, without sending: metrics and (unless disabled) inventory.
    Collect {
        /// One JSON object with top-level `host`, `metrics` and `inventory`.
        #[arg(long)]
        json: bool,
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// Take this host's inventory (hardware, software, asset file) and print it, without
    /// sending.
    Inventory {
        /// One JSON object: `hardware`, `software`, `asset`, `sources`.
        #[arg(long)]
        json: bool,
        /// Postcard bytes on stdout (how the running agent takes inventory in a child process).
        #[arg(long, hide = true, conflicts_with = "json")]
        postcard: bool,
        #[arg(long)]
        root: Option<PathBuf>,
        /// The host's asset file (default from the config, else /etc/steward/asset.toml).
        #[arg(long)]
        asset_file: Option<PathBuf>,
    },
    /// Show whether this agent is enrolled, with which collector, and what waits in its spool
    /// (backlog, oldest entry, reports dropped).
    Status {
        #[arg(long)]
        state_dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Install the agent as a system service (systemd, OpenRC, launchd or a Windows service),
    /// enabled at boot and started once enrolled. Safe to run again: it upgrades the installed
    /// binary and unit and never overwrites a config changed locally. Needs root/Administrator.
    Install {
        #[command(flatten)]
        target: ServiceTarget,
        /// Write the files and enable the service, but do not start (or restart) it now.
        #[arg(long)]
        no_start: bool,
    },
    /// Stop and remove the system service. The config, the state directory (identity and
    /// spool) and the service user stay unless `--purge` is given.
    Uninstall {
        #[command(flatten)]
        target: ServiceTarget,
        /// Also delete the config and the state directory (this agent's identity and spool).
        #[arg(long)]
        purge: bool,
    },
}

/// Where `install` and `uninstall` act.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceTarget {
    /// Service manager to install for (default: the one running this host).
    #[arg(long, value_enum)]
    pub init: Option<crate::service::InitSystem>,
    /// Act on an operating-system image mounted at this directory instead of the running host:
    /// files are written under it, the service is enabled offline and nothing is started.
    #[arg(long, value_name = "DIR")]
    pub image: Option<PathBuf>,
}
