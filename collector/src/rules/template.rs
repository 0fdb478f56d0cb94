//! Summary and description templates: text with `{ci}`, `{value}`, `{threshold}`,
//! `{instance}`, `{rule}`, `{severity}` and `{metric}` placeholders; `{{` and `}}` are literal
//! braces. Parsed when rules load, so an unknown placeholder is an error in `rules check`,
//! not a literal `{hostname}` in a ticket.

use std::fmt::Write as _;

/// A placeholder a template may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    Ci,
    Value,
    Threshold,
    Instance,
    Rule,
    Severity,
    Metric,
}

/// Every placeholder with its name, for parsing and for error messages.
pub const PLACEHOLDERS: &[(&str, Placeholder)] = &[
    ("ci", Placeholder::Ci),
    ("value", Placeholder::Value),
    ("threshold", Placeholder::Threshold),
    ("instance", Placeholder::Instance),
    ("rule", Placeholder::Rule),
    ("severity", Placeholder::Severity),
    ("metric", Placeholder::Metric),
];

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Field(Placeholder),
}

/// A parsed template. The default is the empty template.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Template {
    text: String,
    parts: Vec<Part>,
}

/// The values a template is rendered with.
#[derive(Debug, Clone, Copy)]
pub struct TemplateValues<'a> {
    pub ci: &'a str,
    pub value: f64,
    pub threshold: f64,
    pub instance: &'a str,
    pub rule: &'a str,
    pub severity: &'a str,
    pub metric: &'a str,
}

impl Template {
    /// Parses a template; the error says what is wrong, for the rule loader to prefix with
    /// file, line and field.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|&(_, c)| c) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|&(_, c)| c) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let rest = &text[at + 1..];
                    let Some(end) = rest.find('}') else {
                        return Err(format!(
                            "unclosed `{{` at character {}; write `{{{{` for a literal brace",
                            at + 1
                        ));
                    };
                    let name = &rest[..end];
                    let Some(&(_, placeholder)) = PLACEHOLDERS.iter().find(|(n, _)| *n == name)
                    else {
                        return Err(format!(
                            "unknown placeholder {{{name}}}; known: {}",
                            PLACEHOLDERS
                                .iter()
                                .map(|(n, _)| format!("{{{n}}}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    };
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Field(placeholder));
                    // Skip the name and the closing brace.
                    for _ in 0..name.chars().count() + 1 {
                        chars.next();
                    }
                }
                '}' => {
                    return Err(format!(
                        "unmatched `}}` at character {}; write `}}}}` for a literal brace",
                        at + 1
                    ));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template {
            text: text.to_string(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn render(&self, values: &TemplateValues<'_>) -> String {
        let mut out = String::with_capacity(self.text.len() + 32);
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field(Placeholder::Ci) => out.push_str(values.ci),
                Part::Field(Placeholder::Value) => push_number(&mut out, values.value),
                Part::Field(Placeholder::Threshold) => push_number(&mut out, values.threshold),
                Part::Field(Placeholder::Instance) => out.push_str(values.instance),
                Part::Field(Placeholder::Rule) => out.push_str(values.rule),
                Part::Field(Placeholder::Severity) => out.push_str(values.severity),
                Part::Field(Placeholder::Metric) => out.push_str(values.metric),
            }
        }
        out
    }
}

/// Formats a value for people: whole numbers without decimals, others with at most two,
/// trailing zeros dropped (`95`, `93.46`, `0.5`).
pub fn format_number(value: f64) -> String {
    let mut out = String::new();
    push_number(&mut out, value);
    out
}

fn push_number(out: &mut String, value: f64) {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        let _ = write!(out, "{value:.0}");
        return;
    }
    let start = out.len();
    let _ = write!(out, "{value:.2}");
    if out[start..].contains('.') {
        while out.ends_with('0') {
            out.pop();
        }
        if out.ends_with('.') {
            out.pop();
        }
    }
    if &out[start..] == "-0" {
        out.replace_range(start.., "0");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> TemplateValues<'static> {
        TemplateValues {
            ci: "web-1",
            value: 96.456,
            threshold: 95.0,
            instance: "/var",
            rule: "filesystem-full",
            severity: "critical",
            metric: "filesystem.used_pct",
        }
    }

    #[test]
    fn every_placeholder_renders() {
        let template = Template::parse(
            "{rule} {severity}: {metric} {instance} on {ci} is {value} (>= {threshold})",
        )
        .unwrap();
        assert_eq!(
            template.render(&values()),
            "filesystem-full critical: filesystem.used_pct /var on web-1 is 96.46 (>= 95)"
        );
    }

    #[test]
    fn doubled_braces_are_literal() {
        let template = Template::parse("{{ci}} is {ci} }}").unwrap();
        assert_eq!(template.render(&values()), "{ci} is web-1 }");
    }

    #[test]
    fn unknown_placeholder_is_named_with_the_known_ones() {
        let error = Template::parse("host {hostname}").unwrap_err();
        assert!(error.contains("{hostname}"), "{error}");
        assert!(error.contains("{ci}"), "{error}");
    }

    #[test]
    fn unbalanced_braces_are_errors() {
        assert!(Template::parse("{ci").unwrap_err().contains("unclosed"));
        assert!(Template::parse("ci}").unwrap_err().contains("unmatched"));
    }

    #[test]
    fn placeholders_next_to_multibyte_text() {
        let template = Template::parse("é{ci}ü{value}").unwrap();
        assert_eq!(template.render(&values()), "éweb-1ü96.46");
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(format_number(95.0), "95");
        assert_eq!(format_number(0.5), "0.5");
        assert_eq!(format_number(93.456), "93.46");
        assert_eq!(format_number(-3.0), "-3");
        assert_eq!(format_number(-0.001), "0");
        assert_eq!(format_number(1.999), "2");
    }
}
