//! What a ticket says: the event (rule, value, threshold, since when) and the CI from the CMDB
//! (class, serial, location, owner, services affected, warranty, recent changes), rendered
//! through a connector's templates or the defaults. Placeholders are `{name}`; `{{` and `}}`
//! are literal braces; an unknown name is a config error.

use serde::{Deserialize, Serialize};

use super::{Severity, Ticket};

/// Everything a ticket can say, read from the store when the item is sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TicketContext {
    pub event_id: i64,
    pub rule: String,
    pub instance: String,
    pub state: String,
    pub severity: String,
    pub summary: String,
    pub description: String,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    /// When the event opened (ms).
    pub first_seen_at: i64,
    pub ci_id: i64,
    pub ci_name: String,
    pub ci_class: String,
    pub serial: String,
    pub vendor: String,
    pub model: String,
    pub asset_tag: String,
    pub location: String,
    pub owner: String,
    pub warranty_end: String,
    pub services: Vec<String>,
    pub tags: Vec<String>,
    /// Recent CI history: (at ms, source kind, summary), newest first.
    pub changes: Vec<(i64, String, String)>,
}

/// Placeholder names a template may use.
pub const PLACEHOLDERS: &[&str] = &[
    "summary",
    "description",
    "rule",
    "instance",
    "severity",
    "state",
    "value",
    "threshold",
    "since",
    "event_id",
    "correlation_key",
    "ci",
    "class",
    "serial",
    "vendor",
    "model",
    "asset_tag",
    "location",
    "owner",
    "services",
    "warranty",
    "changes",
];

pub const DEFAULT_SUMMARY: &str = "[{severity}] {summary}";

pub const DEFAULT_BODY: &str = "{description}

Event
  Rule:      {rule}
  Instance:  {instance}
  Severity:  {severity}
  State:     {state}
  Value:     {value} (threshold {threshold})
  Since:     {since}
  Key:       {correlation_key} (event {event_id})

Configuration item
  Name:      {ci}
  Class:     {class}
  Serial:    {serial}
  Model:     {vendor} {model}
  Asset tag: {asset_tag}
  Location:  {location}
  Owner:     {owner}
  Services:  {services}
  Warranty:  {warranty}

Recent changes
{changes}";

/// Checks a template: balanced braces and known placeholder names.
pub fn check_template(template: &str) -> Result<(), String> {
    expand(template, |_| Some(String::new())).map(|_| ())
}

fn expand(template: &str, value: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() * 2);
    let mut rest = template;
    while let Some(at) = rest.find(['{', '}']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("{{") {
            out.push('{');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            out.push('}');
            rest = after;
        } else if tail.starts_with('}') {
            return Err("template: a lone `}` (write `}}` for a brace)".into());
        } else {
            let Some(end) = tail.find('}') else {
                return Err("template: `{` without its `}`".into());
            };
            let name = &tail[1..end];
            if !PLACEHOLDERS.contains(&name) {
                return Err(format!(
                    "template: unknown placeholder {{{name}}} (known: {})",
                    PLACEHOLDERS.join(", ")
                ));
            }
            out.push_str(&value(name).unwrap_or_default());
            rest = &tail[end + 1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn or_dash(text: &str) -> String {
    if text.trim().is_empty() {
        "-".into()
    } else {
        text.to_string()
    }
}

fn number(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), crate::rules::template::format_number)
}

/// "2027-01-31 (expired)", "2027-01-31 (23 days left)", or "-".
pub fn warranty(end: &str, today: time::Date) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    match time::Date::parse(end, format) {
        Ok(date) => {
            let days = (date - today).whole_days();
            if days < 0 {
                format!("{end} (expired {} days ago)", -days)
            } else {
                format!("{end} ({days} days left)")
            }
        }
        Err(_) => or_dash(end),
    }
}

impl TicketContext {
    fn value(&self, name: &str, correlation_key: &str, today: time::Date) -> Option<String> {
        Some(match name {
            "summary" => self.summary.clone(),
            "description" => self.description.clone(),
            "rule" => self.rule.clone(),
            "instance" => or_dash(&self.instance),
            "severity" => self.severity.clone(),
            "state" => self.state.clone(),
            "value" => number(self.value),
            "threshold" => number(self.threshold),
            "since" => crate::format_ms(Some(self.first_seen_at)),
            "event_id" => self.event_id.to_string(),
            "correlation_key" => correlation_key.to_string(),
            "ci" => self.ci_name.clone(),
            "class" => or_dash(&self.ci_class),
            "serial" => or_dash(&self.serial),
            "vendor" => self.vendor.clone(),
            "model" => or_dash(&self.model),
            "asset_tag" => or_dash(&self.asset_tag),
            "location" => or_dash(&self.location),
            "owner" => or_dash(&self.owner),
            "services" => or_dash(&self.services.join(", ")),
            "warranty" => warranty(&self.warranty_end, today),
            "changes" => {
                if self.changes.is_empty() {
                    "  none recorded".into()
                } else {
                    self.changes
                        .iter()
                        .map(|(at, kind, summary)| {
                            let ago = (self.first_seen_at - at).max(0) / 60_000;
                            format!(
                                "  {} ({ago} min before the event, {kind}): {summary}",
                                crate::format_ms(Some(*at))
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                }
            }
            _ => return None,
        })
    }

    /// The ticket for this event through the connector's templates (or the defaults).
    pub fn render(
        &self,
        summary_template: Option<&str>,
        body_template: Option<&str>,
        correlation_key: &str,
        queue: &str,
        today: time::Date,
    ) -> Ticket {
        let fill = |template: &str, fallback: &str| {
            expand(template, |n| self.value(n, correlation_key, today))
                .or_else(|_| expand(fallback, |n| self.value(n, correlation_key, today)))
                .unwrap_or_default()
        };
        let summary = fill(summary_template.unwrap_or(DEFAULT_SUMMARY), DEFAULT_SUMMARY);
        let body = fill(body_template.unwrap_or(DEFAULT_BODY), DEFAULT_BODY);
        Ticket {
            correlation_key: correlation_key.to_string(),
            event_id: self.event_id,
            rule: self.rule.clone(),
            instance: self.instance.clone(),
            state: self.state.clone(),
            severity: Severity::from_name(&self.severity),
            summary: summary
                .lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(250)
                .collect(),
            body,
            queue: queue.to_string(),
            ci_name: self.ci_name.clone(),
            ci_class: self.ci_class.clone(),
            ci_serial: self.serial.clone(),
            details: serde_json::json!({
                "event_id": self.event_id,
                "rule": self.rule,
                "instance": self.instance,
                "state": self.state,
                "severity": self.severity,
                "value": self.value,
                "threshold": self.threshold,
                "since": crate::format_ms(Some(self.first_seen_at)),
                "ci": {
                    "name": self.ci_name,
                    "class": self.ci_class,
                    "serial": self.serial,
                    "vendor": self.vendor,
                    "model": self.model,
                    "asset_tag": self.asset_tag,
                    "location": self.location,
                    "owner": self.owner,
                    "services": self.services,
                    "warranty_end": self.warranty_end,
                },
                "recent_changes": self.changes.iter().map(|(at, kind, summary)| serde_json::json!({
                    "at": crate::format_ms(Some(*at)), "source": kind, "summary": summary
                })).collect::<Vec<_>>(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn context() -> TicketContext {
        TicketContext {
            event_id: 42,
            rule: "filesystem-full".into(),
            instance: "/var".into(),
            state: "firing".into(),
            severity: "critical".into(),
            summary: "web-01: /var 96% full".into(),
            description: "Filesystem /var on web-01 is 96% full (threshold 95%).".into(),
            value: Some(96.0),
            threshold: Some(95.0),
            first_seen_at: 1_800_000_000_000,
            ci_id: 7,
            ci_name: "web-01".into(),
            ci_class: "server".into(),
            serial: "CZ1234".into(),
            vendor: "HPE".into(),
            model: "ProLiant DL360".into(),
            location: "DC1 rack 4".into(),
            owner: "web team".into(),
            warranty_end: "2027-01-31".into(),
            services: vec!["webshop".into()],
            changes: vec![(
                1_800_000_000_000 - 40 * 60_000,
                "software".into(),
                "nginx upgraded 1.22 -> 1.24".into(),
            )],
            ..TicketContext::default()
        }
    }

    #[test]
    fn the_default_body_carries_the_event_and_the_ci() {
        let today = time::macros::date!(2027 - 01 - 08);
        let t = context().render(None, None, "steward-42", "Ops", today);
        assert_eq!(t.summary, "[critical] web-01: /var 96% full");
        for needle in [
            "filesystem-full",
            "96 (threshold 95)",
            "CZ1234",
            "HPE ProLiant DL360",
            "DC1 rack 4",
            "web team",
            "webshop",
            "2027-01-31 (23 days left)",
            "40 min before the event, software): nginx upgraded 1.22 -> 1.24",
            "steward-42",
        ] {
            assert!(
                t.body.contains(needle),
                "{needle:?} missing from:\n{}",
                t.body
            );
        }
        assert_eq!(t.queue, "Ops");
        assert_eq!(t.details["ci"]["serial"], "CZ1234");
    }

    #[test]
    fn templates_are_checked_and_used() {
        assert!(check_template("{ci} on {{fire}}").is_ok());
        let error = check_template("{nope}").unwrap_err();
        assert!(error.contains("unknown placeholder {nope}"), "{error}");
        assert!(check_template("{ci").is_err());
        assert!(check_template("a } b").is_err());
        let today = time::macros::date!(2027 - 03 - 01);
        let t = context().render(
            Some("{ci}: {rule} {{x}}"),
            Some("{warranty}"),
            "k",
            "",
            today,
        );
        assert_eq!(t.summary, "web-01: filesystem-full {x}");
        assert_eq!(t.body, "2027-01-31 (expired 29 days ago)");
    }
}
