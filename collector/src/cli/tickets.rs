//! `steward-collector tickets list|retry` through the admin API.

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use super::Connection;
use super::admin::AdminClient;
use crate::server::tickets_admin::RetryAnswer;
use crate::store::OutboxRow;

#[derive(Debug, Subcommand)]
pub enum TicketsCommand {
    /// Ticket operations, newest first: open, comment, acknowledge, resolve, with their state
    /// (pending, done, dead), tries, last error and the ticket in the service desk.
    List {
        /// Only the dead letter: operations that kept failing or were refused.
        #[arg(long)]
        failed: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Send failed operations again: one by its id, or `--all`.
    Retry {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<i64>,
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        connection: Connection,
    },
}

pub async fn tickets(command: TicketsCommand) -> Result<()> {
    match command {
        TicketsCommand::List {
            failed,
            json,
            connection,
        } => {
            let client = AdminClient::connect(&connection)?;
            let rows: Vec<OutboxRow> = client.get(&format!("/tickets?failed={failed}")).await?;
            if json {
                steward_agent::outln!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            steward_agent::outln!(
                "{:<6} {:<6} {:<12} {:<12} {:<8} {:<5} {:<14} {:<20} {:<20} ERROR",
                "ID",
                "EVENT",
                "CONNECTOR",
                "OP",
                "STATE",
                "TRIES",
                "TICKET",
                "CI",
                "RULE"
            );
            for r in &rows {
                steward_agent::outln!(
                    "{:<6} {:<6} {:<12} {:<12} {:<8} {:<5} {:<14} {:<20} {:<20} {}",
                    r.id,
                    r.event_id,
                    r.connector,
                    r.op,
                    r.state,
                    r.attempts,
                    r.ticket.as_deref().unwrap_or("-"),
                    r.ci_name,
                    r.rule,
                    r.last_error.as_deref().unwrap_or("")
                );
            }
            Ok(())
        }
        TicketsCommand::Retry {
            id,
            all,
            connection,
        } => {
            let client = AdminClient::connect(&connection)?;
            let answer: RetryAnswer = client
                .post("/tickets/retry", &json!({"id": id, "all": all}))
                .await?;
            steward_agent::outln!("{} operation(s) queued again", answer.retried);
            Ok(())
        }
    }
}
