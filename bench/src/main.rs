//! `steward-bench`: benchmarks of Steward on this machine. Each benchmark is a subcommand.
//! Exit codes: 0 ok, 1 failure (clap exits 2 on usage errors).

mod agent;
mod cmdb;
mod ingest;
mod inventory;
mod peers;
mod procfs;
mod rules;
mod snmp;
mod soak;
mod stats;
mod tickets;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "steward-bench",
    version,
    about = "Steward benchmarks, measured on this machine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The release agent's memory, CPU per metrics cycle and binary size, beside
    /// prometheus-node-exporter and zabbix_agentd run one after another.
    Agent(agent::AgentArgs),
    /// The collector's ingest rate and acknowledgement latency under N simulated agents
    /// (in-process, each with its own mutual-TLS connection), saturated and then paced.
    Ingest(ingest::IngestArgs),
    /// One full inventory of this machine by the release agent, beside fusioninventory-agent:
    /// CPU, peak RSS, and whether both found the same packages.
    Inventory(inventory::InventoryArgs),
    /// The CMDB's costs against the real store: collector CPU to identify a report and store an
    /// inventory (first, changed, unchanged) among N other CIs, and `ci list` over many CIs.
    Cmdb(cmdb::CmdbArgs),
    /// The rules engine's evaluation cost per incoming report: 1,000 rules over 10,000 CIs.
    Rules(rules::RulesArgs),
    /// The collector's SNMP poller against real snmpd agents on loopback: CPU per 1,000
    /// varbinds beside prometheus-snmp-exporter polling the same snmpd, and 1,000 targets
    /// polled in one interval.
    Snmp(snmp::SnmpArgs),
    /// The ticket path: latency from an event firing to its ticket request reaching a local
    /// webhook, and the operations per second the dispatcher sustains.
    Tickets(tickets::TicketsArgs),
    /// A bounded soak: a real collector at a fixed rate from N simulated agents plus one real
    /// agent, sampling their memory, CPU and the database every 10 s; reports RSS drift.
    Soak(soak::SoakArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Agent(args) => agent::run(args),
        Command::Ingest(args) => ingest::run(args),
        Command::Inventory(args) => inventory::run(args),
        Command::Cmdb(args) => cmdb::run(args),
        Command::Rules(args) => rules::run(args),
        Command::Snmp(args) => snmp::run(args),
        Command::Tickets(args) => tickets::run(args),
        Command::Soak(args) => soak::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
