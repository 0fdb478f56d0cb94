//! `steward-collector events|silence|rules ...` through the admin API (`rules check` runs
//! locally: it needs no collector).

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use super::admin::AdminClient;
use super::{Connection, UsageError};
use crate::server::events_admin::EventDetail;
use crate::store::{EventRow, SilenceRow};

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Events, most recent first.
    List {
        /// firing, pending, flapping or resolved.
        #[arg(long)]
        state: Option<String>,
        /// Only this CI's (name or id).
        #[arg(long)]
        ci: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// One event with its transitions.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Acknowledge an event (someone is on it).
    Ack {
        id: i64,
        #[command(flatten)]
        connection: Connection,
    },
    /// Resolve an event by hand; if the problem persists a new event opens.
    Resolve {
        id: i64,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        connection: Connection,
    },
}

#[derive(Debug, Subcommand)]
pub enum SilenceCommand {
    /// Silence a CI, a service or a selector for a while (`--duration 2h`), or every week or
    /// day in a maintenance window (`--every "sunday 02:00-04:00"`). Events inside are
    /// recorded but not escalated; still firing when it ends, they escalate then.
    Add {
        #[arg(long)]
        ci: Option<String>,
        #[arg(long)]
        service: Option<String>,
        /// `class=server,tag=prod,service=shop,name=web*,instance=/var*`.
        #[arg(long)]
        selector: Option<String>,
        #[arg(long)]
        duration: Option<humantime::Duration>,
        /// A recurring window, e.g. "sunday 02:00-04:00", "daily 01:00-01:30".
        #[arg(long)]
        every: Option<String>,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Active silences and windows (`--all`: removed ones too).
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    Remove {
        id: i64,
        #[command(flatten)]
        connection: Connection,
    },
}

/// `--every "sunday 02:00-04:00"` reads as "every sunday 02:00-04:00"; "daily ..." and
/// "every ..." are taken as written.
fn recurrence_text(every: &str) -> String {
    let lower = every.trim().to_ascii_lowercase();
    if lower.starts_with("daily") || lower.starts_with("every") {
        every.trim().to_string()
    } else {
        format!("every {}", every.trim())
    }
}

fn render_event_line(e: &EventRow) -> String {
    format!(
        "{:<6} {:<9} {:<8} {:<22} {:<24} {:<16} {}{}",
        e.id,
        e.state,
        e.severity,
        e.rule,
        e.ci_name,
        if e.instance.is_empty() {
            "-"
        } else {
            &e.instance
        },
        e.summary,
        match (&e.silenced_by, e.acknowledged_at) {
            (Some(why), _) => format!("  [not escalated: {why}]"),
            (None, Some(_)) => "  [acknowledged]".into(),
            _ => String::new(),
        }
    )
}

pub async fn events(command: EventsCommand) -> Result<()> {
    match command {
        EventsCommand::List {
            state,
            ci,
            json,
            connection,
        } => {
            let client = AdminClient::connect(&connection)?;
            let mut query = Vec::new();
            if let Some(state) = &state {
                query.push(format!("state={}", super::admin::encode_path(state)));
            }
            if let Some(ci) = &ci {
                query.push(format!("ci={}", super::admin::encode_path(ci)));
            }
            let rows: Vec<EventRow> = client.get(&format!("/events?{}", query.join("&"))).await?;
            if json {
                steward_agent::outln!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            steward_agent::outln!(
                "{:<6} {:<9} {:<8} {:<22} {:<24} {:<16} SUMMARY",
                "ID",
                "STATE",
                "SEVERITY",
                "RULE",
                "CI",
                "INSTANCE"
            );
            for e in &rows {
                steward_agent::outln!("{}", render_event_line(e));
            }
            Ok(())
        }
        EventsCommand::Show {
            id,
            json,
            connection,
        } => {
            let client = AdminClient::connect(&connection)?;
            let detail: EventDetail = client.get(&format!("/events/{id}")).await?;
            if json {
                steward_agent::outln!("{}", serde_json::to_string_pretty(&detail)?);
                return Ok(());
            }
            let e = &detail.event;
            steward_agent::outln!("event {}: {} on {} {}", e.id, e.rule, e.ci_name, e.instance);
            steward_agent::outln!("state       {} ({})", e.state, e.severity);
            steward_agent::outln!("summary     {}", e.summary);
            if !e.description.is_empty() {
                steward_agent::outln!("description {}", e.description);
            }
            steward_agent::outln!(
                "seen        {} .. {} ({} times firing)",
                crate::format_ms(Some(e.first_seen_at)),
                crate::format_ms(Some(e.last_seen_at)),
                e.count
            );
            if let Some(by) = &e.acknowledged_by {
                steward_agent::outln!(
                    "acknowledged by {by} at {}",
                    crate::format_ms(e.acknowledged_at)
                );
            }
            if let Some(why) = &e.silenced_by {
                steward_agent::outln!("not escalated: {why}");
            }
            if let Some(root) = e.symptom_of {
                steward_agent::outln!("symptom of event {root}");
            }
            steward_agent::outln!("transitions");
            for t in &detail.transitions {
                steward_agent::outln!(
                    "  {}  {} -> {} ({}){}{}",
                    crate::format_ms(Some(t.at)),
                    t.from_state.as_deref().unwrap_or("-"),
                    t.to_state,
                    t.severity,
                    t.value.map_or(String::new(), |v| format!("  value {v:.2}")),
                    if t.note.is_empty() {
                        String::new()
                    } else {
                        format!("  {}", t.note)
                    }
                );
            }
            Ok(())
        }
        EventsCommand::Ack { id, connection } => {
            let client = AdminClient::connect(&connection)?;
            let _: EventRow = client
                .post(&format!("/events/{id}/ack"), &json!({}))
                .await?;
            steward_agent::outln!("event {id} acknowledged");
            Ok(())
        }
        EventsCommand::Resolve {
            id,
            reason,
            connection,
        } => {
            let client = AdminClient::connect(&connection)?;
            let _: serde_json::Value = client
                .post(
                    &format!("/events/{id}/resolve"),
                    &json!({ "reason": reason }),
                )
                .await?;
            steward_agent::outln!("event {id} resolved");
            Ok(())
        }
    }
}

pub async fn silence(command: SilenceCommand) -> Result<()> {
    match command {
        SilenceCommand::Add {
            ci,
            service,
            selector,
            duration,
            every,
            reason,
            connection,
        } => {
            let client = AdminClient::connect(&connection)?;
            let answer: serde_json::Value = client
                .post(
                    "/silences",
                    &json!({
                        "ci": ci, "service": service, "selector": selector,
                        "duration_secs": duration.map(|d| std::time::Duration::from(d).as_secs()),
                        "recurrence": every.map(|e| recurrence_text(&e)), "reason": reason,
                    }),
                )
                .await?;
            steward_agent::outln!("silence {} added", answer["id"]);
            Ok(())
        }
        SilenceCommand::List {
            all,
            json,
            connection,
        } => {
            let client = AdminClient::connect(&connection)?;
            let rows: Vec<SilenceRow> = client
                .get(if all {
                    "/silences?all=true"
                } else {
                    "/silences"
                })
                .await?;
            if json {
                steward_agent::outln!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            steward_agent::outln!(
                "{:<5} {:<8} {:<30} {:<44} REASON",
                "ID",
                "KIND",
                "MATCHES",
                "WHEN"
            );
            for s in &rows {
                let when = if s.recurrence.is_empty() {
                    format!(
                        "{} .. {}",
                        crate::format_ms(s.starts_at),
                        crate::format_ms(s.ends_at)
                    )
                } else {
                    format!("every {}", s.recurrence)
                };
                steward_agent::outln!(
                    "{:<5} {:<8} {:<30} {:<44} {}{}",
                    s.id,
                    s.kind,
                    s.matcher.to_string(),
                    when,
                    s.reason,
                    if s.removed_at.is_some() {
                        " (removed)"
                    } else {
                        ""
                    }
                );
            }
            Ok(())
        }
        SilenceCommand::Remove { id, connection } => {
            let client = AdminClient::connect(&connection)?;
            let _: serde_json::Value = client
                .post(&format!("/silences/{id}/remove"), &json!({}))
                .await?;
            steward_agent::outln!("silence {id} removed");
            Ok(())
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// The rules the collector runs: the shipped defaults with the rules file laid over them.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Check a rules file (with the defaults it is laid over) without a collector; errors name
    /// the line and field.
    Check { file: std::path::PathBuf },
    /// Make the running collector re-read its rules file (as SIGHUP does).
    Reload {
        #[command(flatten)]
        connection: Connection,
    },
}

pub async fn rules(command: RulesCommand) -> Result<()> {
    match command {
        RulesCommand::List { json, connection } => {
            let client = AdminClient::connect(&connection)?;
            let rules: Vec<crate::events::RuleSummary> = client.get("/rules").await?;
            if json {
                steward_agent::outln!("{}", serde_json::to_string_pretty(&rules)?);
                return Ok(());
            }
            steward_agent::outln!(
                "{:<28} {:<26} {:<3} {:>8} {:>8} {:>6}  {:<30} ORIGIN",
                "RULE",
                "METRIC",
                "OP",
                "WARNING",
                "CRITICAL",
                "FOR",
                "SELECTOR"
            );
            let num = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v}"));
            for r in &rules {
                steward_agent::outln!(
                    "{:<28} {:<26} {:<3} {:>8} {:>8} {:>5}s  {:<30} {}{}",
                    r.name,
                    r.metric,
                    r.op,
                    num(r.warning),
                    num(r.critical),
                    r.for_secs,
                    if r.selector.is_empty() {
                        "-"
                    } else {
                        &r.selector
                    },
                    r.origin,
                    if r.enabled { "" } else { " (disabled)" }
                );
            }
            Ok(())
        }
        RulesCommand::Check { file } => match crate::rules::RuleSet::load_with_defaults(&file) {
            Ok(rules) => {
                steward_agent::outln!(
                    "{}: ok, {} rules with the defaults",
                    file.display(),
                    rules.len()
                );
                Ok(())
            }
            Err(error) => Err(UsageError(error.to_string()).into()),
        },
        RulesCommand::Reload { connection } => {
            let client = AdminClient::connect(&connection)?;
            let answer: serde_json::Value = client.post("/rules/reload", &json!({})).await?;
            steward_agent::outln!("rules reloaded: {} rules", answer["rules"]);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reads_naturally() {
        assert_eq!(
            recurrence_text("sunday 02:00-04:00"),
            "every sunday 02:00-04:00"
        );
        assert_eq!(recurrence_text("daily 01:00-01:30"), "daily 01:00-01:30");
        assert_eq!(
            recurrence_text("every month on day 1 03:00-05:00"),
            "every month on day 1 03:00-05:00"
        );
    }
}
