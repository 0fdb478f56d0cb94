//! The `steward-collector` command line: `init`, `serve`, `quickstart`, and the admin commands,
//! which reach a running collector through its admin API.

pub mod admin;
pub mod admin_tokens;
pub mod backup;
pub mod events;
pub mod quickstart;
pub mod snmp;
pub mod tickets;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Where the collector keeps its data when `--data-dir` is not given.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/steward-collector";

#[derive(Debug, Parser)]
#[command(
    name = "steward-collector",
    version,
    about = "Steward collector: CMDB, metrics and ITSM bridge"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a data directory: config, database, CA, server certificate, admin token.
    /// The last line printed is the CA fingerprint agents pin.
    Init {
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// Address to listen on (default 0.0.0.0:8443).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Extra DNS name or IP address agents use to reach this collector (repeatable).
        #[arg(long = "server-name")]
        server_names: Vec<String>,
    },
    /// Run the collector.
    Serve {
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// Listen here instead of the configured address.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Run a collector and a local agent on this machine with embedded defaults, and show what
    /// the agent reported.
    Quickstart {
        /// Data directory (default: ~/.local/share/steward/quickstart).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Exit after the first report instead of reporting every 10 s until Ctrl-C.
        #[arg(long)]
        once: bool,
    },
    /// Copy the database, consistent, while the collector runs (secrets.key, the CA key and
    /// admin.token are not in it: back those up with the data directory's files).
    Backup {
        /// Where to write the copy (must not exist).
        file: PathBuf,
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Replace the database with a backup (the collector must be stopped; the current database
    /// is kept as steward.db.before-restore-<time>).
    Restore {
        /// A file `backup` wrote.
        file: PathBuf,
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Named admin tokens for the admin API.
    AdminToken {
        #[command(subcommand)]
        command: admin_tokens::AdminTokenCommand,
    },
    /// Enrollment tokens.
    EnrollToken {
        #[command(subcommand)]
        command: EnrollTokenCommand,
    },
    /// Enrolled agents.
    Agents {
        #[command(subcommand)]
        command: AgentsCommand,
    },
    /// Configuration items.
    Ci {
        #[command(subcommand)]
        command: CiCommand,
    },
    /// Business services: CIs of class `service` that depend on other CIs.
    Service {
        #[command(subcommand)]
        command: ServiceCommand,
    },
    /// Events raised by the threshold rules.
    Events {
        #[command(subcommand)]
        command: events::EventsCommand,
    },
    /// Silences and recurring maintenance windows: events inside are recorded, not escalated.
    Silence {
        #[command(subcommand)]
        command: events::SilenceCommand,
    },
    /// Tickets in the service desk: what was sent, what waits, the dead letter.
    Tickets {
        #[command(subcommand)]
        command: tickets::TicketsCommand,
    },
    /// Threshold rules.
    Rules {
        #[command(subcommand)]
        command: events::RulesCommand,
    },
    /// SNMP-polled routers and switches.
    Snmp {
        #[command(subcommand)]
        command: snmp::SnmpCommand,
    },
    /// Warranty data of CIs (from host asset files and imports).
    Warranty {
        #[command(subcommand)]
        command: WarrantyCommand,
    },
}

/// How an admin command finds the collector: its data directory, or a URL and token.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// Data directory of a local collector (its config, CA and admin token are read from there).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Collector URL, e.g. https://collector.example.org:8443 (with --token and --ca-cert).
    #[arg(long, global = true)]
    pub url: Option<String>,
    /// Admin token (with --url).
    #[arg(
        long,
        global = true,
        env = "STEWARD_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// CA certificate to verify the collector with (with --url).
    #[arg(long, global = true)]
    pub ca_cert: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum EnrollTokenCommand {
    /// Create a token; prints the token alone.
    Create {
        /// How long the token stays valid, e.g. 30m, 24h, 7d.
        #[arg(long, default_value = "24h")]
        ttl: humantime::Duration,
        /// How many agents may enroll with it.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        #[command(flatten)]
        connection: Connection,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// List enrolled agents.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Revoke an agent: its reports are refused from now on.
    Revoke {
        id: String,
        #[command(flatten)]
        connection: Connection,
    },
}

#[derive(Debug, Subcommand)]
pub enum CiCommand {
    /// List configuration items, optionally filtered.
    List {
        /// Only this class: server, workstation, laptop, virtual_machine, iot_gateway,
        /// network_device, service.
        #[arg(long)]
        class: Option<String>,
        /// Only CIs with this tag.
        #[arg(long)]
        tag: Option<String>,
        /// Only CIs this business service depends on.
        #[arg(long)]
        service: Option<String>,
        /// Only names matching this glob (`*`, `?`).
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// A CI's change history, newest first: attributes, software, hardware, asset and warranty,
    /// relationships, identification; each with its time and source.
    History {
        name_or_id: String,
        /// Only changes within this long, e.g. 7d, 24h.
        #[arg(long)]
        since: Option<humantime::Duration>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Relate two CIs: A TYPE B, TYPE one of runs_on, installed_on, connected_to, depends_on,
    /// member_of.
    Relate {
        from: String,
        #[arg(value_name = "TYPE")]
        kind: String,
        to: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Remove a relationship A TYPE B.
    Unrelate {
        from: String,
        #[arg(value_name = "TYPE")]
        kind: String,
        to: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Tag a CI (or remove a tag with --remove).
    Tag {
        name_or_id: String,
        tag: String,
        #[arg(long)]
        remove: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// What an outage of this CI affects: the CIs and services that depend on it, runs on it or
    /// are installed on it, transitively.
    Impact {
        name_or_id: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Export all CIs with their key attributes (csv), or CIs, services and relationships (json).
    Export {
        #[arg(long, value_parser = ["csv", "json"], default_value = "json")]
        format: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Import services and relationships from a JSON file (the format `ci export --format json`
    /// writes); all or nothing, errors name the entry.
    Import {
        file: PathBuf,
        #[command(flatten)]
        connection: Connection,
    },
    /// Show one CI (by name or id): identity, latest metrics, hardware, software, asset and
    /// warranty data, recent changes.
    Show {
        name_or_id: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Which hosts run a package, optionally only those older than a version (compared the way
    /// the host's package manager orders versions).
    Software {
        /// Package name, exactly as the package manager reports it.
        name: String,
        /// Only hosts whose installed version is older than this.
        #[arg(long)]
        version_below: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Identification conflicts: list and resolve.
    Conflicts {
        #[command(subcommand)]
        command: ConflictsCommand,
    },
    /// Import asset and warranty data from a CSV file (a procurement or vendor export): rows are
    /// matched to CIs by serial, else by asset tag. Columns: serial, asset_tag, owner, location,
    /// cost_centre, purchase_date, warranty_end, supplier, support_contract (dates YYYY-MM-DD);
    /// other columns are ignored. A file with bad rows imports nothing unless --skip-bad-rows.
    ImportAssets {
        file: PathBuf,
        /// Import the good rows and report the bad ones.
        #[arg(long)]
        skip_bad_rows: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConflictsCommand {
    /// Identification conflicts waiting for an admin (a report that may be about an existing CI,
    /// but not safely enough to merge).
    List {
        /// Resolved ones too.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Resolve a conflict: --merge (the same machine: fold the agent's CI into the candidate) or
    /// --split (different machines: keep both, never ask again).
    Resolve {
        id: i64,
        #[arg(long, conflicts_with = "split", required_unless_present = "split")]
        merge: bool,
        #[arg(long)]
        split: bool,
        /// With --merge and several candidates: the CI to merge into.
        #[arg(long, requires = "merge")]
        into: Option<i64>,
        #[command(flatten)]
        connection: Connection,
    },
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Create a business service.
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Make the service depend on CIs (by name or id).
    Add {
        name: String,
        #[arg(required = true)]
        cis: Vec<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// The service and every CI it depends on.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
}

#[derive(Debug, Subcommand)]
pub enum WarrantyCommand {
    /// CIs with a warranty end date, soonest first.
    List {
        /// Only warranties ending within this long from today, e.g. 90d (expired ones included).
        #[arg(long)]
        expiring_within: Option<humantime::Duration>,
        /// Only warranties that have ended.
        #[arg(long)]
        expired: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
}

/// A usage or config mistake: exits 2 instead of 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
