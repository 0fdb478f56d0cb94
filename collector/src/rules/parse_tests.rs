//! Rule file parsing and validation: what is accepted, and that every refusal names the
//! file, line, rule and field.

use super::config::{RuleSet, RulesError};
use super::{Aggregation, Metric, Op};

fn errors(text: &str) -> Vec<String> {
    match RuleSet::parse(text, "rules.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(RulesError::Invalid(problems)) => problems.iter().map(ToString::to_string).collect(),
        Err(other) => panic!("{other}"),
    }
}

fn one_error(text: &str) -> String {
    let all = errors(text);
    assert_eq!(all.len(), 1, "{all:#?}");
    all[0].clone()
}

/// A `[[rule]]` named "fs" on line 2, with `lines` from line 3 on.
fn rule(lines: &[&str]) -> String {
    format!("[[rule]]\nname = \"fs\"\n{}\n", lines.join("\n"))
}

const METRIC: &str = "metric = \"filesystem.used_pct\"";
const OP: &str = "op = \">=\"";

#[test]
fn a_full_rule_parses_into_typed_values() {
    let text = r#"
[[rule]]
name = "fs-full-prod"
description = "{instance} on {ci} is {value}% full"
summary = "Filesystem {instance} full on {ci}"
metric = "filesystem.used_pct"
selector = { class = ["server", "virtual_machine"], tags = ["prod"], service = "web-shop", name = "web*", instance = "/var*" }
aggregation = "avg"
window_secs = 300
op = ">="
warning = 85
critical = 95.5
for_secs = 120
recovery = 80
clear_for_secs = 60
flap_transitions = 3
flap_window_secs = 900
enabled = true
"#;
    let set = RuleSet::parse(text, "rules.toml").unwrap();
    let rule = &set.rules()[0];
    assert_eq!(rule.name, "fs-full-prod");
    assert_eq!(rule.metric, Metric::FilesystemUsedPct);
    assert_eq!(rule.selector.classes, ["server", "virtual_machine"]);
    assert_eq!(rule.selector.tags, ["prod"]);
    assert_eq!(rule.selector.services, ["web-shop"]);
    assert_eq!(rule.selector.name.as_ref().unwrap().as_str(), "web*");
    assert_eq!(rule.selector.instance.as_ref().unwrap().as_str(), "/var*");
    assert_eq!(
        (rule.aggregation, rule.window_secs),
        (Aggregation::Avg, 300)
    );
    assert_eq!(rule.op, Op::Ge);
    assert_eq!(
        (rule.warning, rule.critical, rule.recovery),
        (Some(85.0), Some(95.5), 80.0)
    );
    assert_eq!((rule.for_secs, rule.clear_for_secs), (120, 60));
    assert_eq!((rule.flap_transitions, rule.flap_window_secs), (3, 900));
    assert!(rule.enabled);
    assert_eq!(rule.origin.line, 3);
    assert_eq!(rule.summary.as_str(), "Filesystem {instance} full on {ci}");
}

#[test]
fn defaults_fill_what_is_left_out() {
    let set = RuleSet::parse(&rule(&[METRIC, OP, "warning = 90"]), "rules.toml").unwrap();
    let rule = &set.rules()[0];
    assert_eq!((rule.aggregation, rule.window_secs), (Aggregation::Last, 0));
    assert_eq!((rule.for_secs, rule.clear_for_secs), (0, 0));
    assert_eq!(
        rule.recovery, 90.0,
        "recovery defaults to the lowest threshold"
    );
    assert_eq!((rule.flap_transitions, rule.flap_window_secs), (5, 600));
    assert!(rule.enabled);
    assert!(rule.selector.is_empty());
}

#[test]
fn recovery_defaults_to_warning_when_both_thresholds_are_given() {
    let set = RuleSet::parse(
        &rule(&[
            "metric = \"warranty.days_left\"",
            "op = \"<=\"",
            "warning = 90",
            "critical = 30",
        ]),
        "rules.toml",
    )
    .unwrap();
    assert_eq!(set.rules()[0].recovery, 90.0);
}

#[test]
fn critical_not_beyond_warning_names_line_rule_and_op() {
    assert_eq!(
        one_error(&rule(&[METRIC, OP, "warning = 95", "critical = 90"])),
        "rules.toml line 6: rule \"fs\": critical (90) must be beyond warning (95) for op \">=\" (higher is worse)"
    );
    let downward = one_error(&rule(&[
        "metric = \"warranty.days_left\"",
        "op = \"<=\"",
        "warning = 30",
        "critical = 90",
    ]));
    assert!(downward.contains("(lower is worse)"), "{downward}");
    let equal = one_error(&rule(&[METRIC, OP, "warning = 90", "critical = 90"]));
    assert!(equal.contains("must be beyond"), "{equal}");
}

#[test]
fn recovery_on_the_bad_side_is_refused() {
    let error = one_error(&rule(&[METRIC, OP, "warning = 90", "recovery = 92"]));
    assert!(
        error.starts_with(
            "rules.toml line 6: rule \"fs\": recovery (92) must not be beyond warning (90)"
        ),
        "{error}"
    );
    // On the threshold itself is allowed: no hysteresis.
    RuleSet::parse(
        &rule(&[METRIC, OP, "warning = 90", "recovery = 90"]),
        "rules.toml",
    )
    .unwrap();
}

#[test]
fn unknown_metric_is_named_with_the_known_ones() {
    let error = one_error(&rule(&["metric = \"disk.used_pct\"", OP, "warning = 1"]));
    assert!(
        error.starts_with(
            "rules.toml line 3: rule \"fs\": metric: unknown metric \"disk.used_pct\""
        ),
        "{error}"
    );
    assert!(
        error.contains("filesystem.used_pct") && error.contains("software.installed"),
        "{error}"
    );
}

#[test]
fn missing_metric_op_and_thresholds_are_each_reported() {
    let all = errors("[[rule]]\nname = \"x\"\n");
    assert_eq!(all.len(), 3, "{all:#?}");
    assert!(all[0].contains("metric: missing"), "{all:#?}");
    assert!(all[1].contains("op: missing"), "{all:#?}");
    assert!(all[2].contains("at least one threshold"), "{all:#?}");
}

#[test]
fn problems_in_several_rules_are_all_reported() {
    let text = format!(
        "{}\n{}",
        rule(&[METRIC, OP, "warning = 120"]),
        rule(&[METRIC, "op = \"=>\"", "warning = 1"])
    );
    let all = errors(&text);
    assert_eq!(all.len(), 3, "{all:#?}");
    assert!(
        all[0].contains("line 5") && all[0].contains("outside the values"),
        "{all:#?}"
    );
    assert!(
        all[1].contains("line 8")
            && all[1].contains("duplicate rule name (first defined at line 2)"),
        "sorted by line: {all:#?}"
    );
    assert!(all[2].contains("op: \"=>\" is not one of"), "{all:#?}");
}

#[test]
fn duplicate_names_name_both_lines() {
    let text = format!(
        "{}\n{}",
        rule(&[METRIC, OP, "warning = 90"]),
        rule(&[METRIC, OP, "warning = 80"])
    );
    assert_eq!(
        one_error(&text),
        "rules.toml line 8: rule \"fs\": name: duplicate rule name (first defined at line 2)"
    );
}

#[test]
fn negative_and_huge_durations_are_refused() {
    assert!(
        one_error(&rule(&[METRIC, OP, "warning = 90", "for_secs = -5"]))
            .contains("for_secs: must not be negative (-5)")
    );
    assert!(
        one_error(&rule(&[METRIC, OP, "warning = 90", "clear_for_secs = -1"]))
            .contains("clear_for_secs")
    );
    assert!(
        one_error(&rule(&[
            METRIC,
            OP,
            "warning = 90",
            "flap_window_secs = -1"
        ]))
        .contains("flap_window_secs")
    );
    let huge = one_error(&rule(&[
        METRIC,
        OP,
        "aggregation = \"avg\"",
        "window_secs = 999999",
        "warning = 90",
    ]));
    assert!(
        huge.contains("window_secs: 999999 is more than the most allowed, 86400"),
        "{huge}"
    );
}

#[test]
fn rate_only_on_counters_and_counters_only_with_rate() {
    let gauge = one_error(&rule(&[
        METRIC,
        OP,
        "aggregation = \"rate\"",
        "warning = 90",
    ]));
    assert!(
        gauge.contains("\"rate\" applies only to counters, and filesystem.used_pct is a gauge"),
        "{gauge}"
    );
    let counter = one_error(&rule(&[
        "metric = \"interface.errors_total\"",
        OP,
        "warning = 1",
    ]));
    assert!(counter.contains("use aggregation = \"rate\""), "{counter}");
    RuleSet::parse(
        &rule(&[
            "metric = \"interface.errors_total\"",
            "aggregation = \"rate\"",
            "window_secs = 300",
            OP,
            "warning = 1",
        ]),
        "rules.toml",
    )
    .unwrap();
}

#[test]
fn windows_must_fit_the_aggregation() {
    assert!(
        one_error(&rule(&[METRIC, OP, "window_secs = 60", "warning = 90"]))
            .contains("no effect with aggregation \"last\"")
    );
    assert!(
        one_error(&rule(&[
            METRIC,
            OP,
            "aggregation = \"max\"",
            "warning = 90"
        ]))
        .contains("needs a window")
    );
    assert!(
        one_error(&rule(&[
            METRIC,
            OP,
            "aggregation = \"median\"",
            "warning = 90"
        ]))
        .contains("\"median\" is not one of")
    );
}

#[test]
fn thresholds_outside_a_bounded_metric_are_refused() {
    let error = one_error(&rule(&["metric = \"snmp.unreachable\"", OP, "warning = 2"]));
    assert!(
        error.contains("warning: 2 is outside the values snmp.unreachable takes (0 to 1)"),
        "{error}"
    );
}

#[test]
fn non_finite_thresholds_are_refused() {
    assert!(one_error(&rule(&[METRIC, OP, "warning = nan"])).contains("finite"));
    assert!(
        one_error(&rule(&[
            "metric = \"warranty.days_left\"",
            OP,
            "warning = inf"
        ]))
        .contains("finite")
    );
}

#[test]
fn unknown_placeholder_names_the_field() {
    let error = one_error(&rule(&[
        METRIC,
        OP,
        "warning = 90",
        "summary = \"{hostname} full\"",
    ]));
    assert!(
        error
            .starts_with("rules.toml line 6: rule \"fs\": summary: unknown placeholder {hostname}"),
        "{error}"
    );
}

#[test]
fn instance_selector_on_a_per_ci_metric_is_refused() {
    let error = one_error(&rule(&[
        "metric = \"cpu.usage_pct\"",
        "selector = { instance = \"x\" }",
        OP,
        "warning = 90",
    ]));
    assert!(
        error.contains("selector.instance: cpu.usage_pct has one value per CI"),
        "{error}"
    );
}

#[test]
fn bad_selector_globs_and_empty_names_are_refused() {
    assert!(
        one_error(&rule(&[
            METRIC,
            "selector = { name = \"a||b\" }",
            OP,
            "warning = 90"
        ]))
        .contains("selector.name")
    );
    assert!(
        one_error(&rule(&[
            METRIC,
            "selector = { tags = [\"\"] }",
            OP,
            "warning = 90"
        ]))
        .contains("selector.tags")
    );
}

#[test]
fn unknown_fields_are_named_with_their_line() {
    let error = one_error(&rule(&[METRIC, OP, "warnin = 90"]));
    assert!(
        error.starts_with("rules.toml line 5: rule \"fs\": unknown field `warnin`"),
        "{error}"
    );
    let selector = one_error(&rule(&[
        METRIC,
        "selector = { clas = \"server\" }",
        OP,
        "warning = 90",
    ]));
    assert!(
        selector.contains("line 4") && selector.contains("`clas`"),
        "{selector}"
    );
    let top = one_error("[[rules]]\nname = \"x\"\n");
    assert!(
        top.starts_with("rules.toml line 1: unknown field `rules`"),
        "{top}"
    );
}

#[test]
fn wrong_types_name_the_field() {
    let error = one_error(&rule(&[METRIC, OP, "warning = \"ninety\""]));
    assert_eq!(
        error,
        "rules.toml line 5: rule \"fs\": warning: invalid type: string \"ninety\", expected f64"
    );
}

#[test]
fn toml_syntax_errors_name_the_line() {
    let error = one_error("[[rule]]\nname = \"fs\"\nop = >=\n");
    assert!(error.starts_with("rules.toml line 3: "), "{error}");
}

#[test]
fn names_are_restricted_to_a_safe_alphabet() {
    assert!(
        one_error(&format!(
            "[[rule]]\nname = \"fs full\"\n{METRIC}\n{OP}\nwarning = 90\n"
        ))
        .contains("letters, digits")
    );
}

#[test]
fn a_name_with_enabled_false_alone_is_a_disable_entry() {
    let set = RuleSet::parse(
        "[[rule]]\nname = \"cpu-high\"\nenabled = false\ndescription = \"too noisy here\"\n",
        "rules.toml",
    )
    .unwrap();
    assert!(set.is_empty());
    assert_eq!(set.disables()[0].name, "cpu-high");
    assert_eq!(set.disables()[0].origin.line, 2);
}

#[test]
fn a_disabled_full_rule_is_kept_but_disabled() {
    let set = RuleSet::parse(
        &rule(&[METRIC, OP, "warning = 90", "enabled = false"]),
        "rules.toml",
    )
    .unwrap();
    assert!(!set.rules()[0].enabled);
}

#[test]
fn flap_detection_can_be_switched_off_but_needs_a_window_when_on() {
    let off = RuleSet::parse(
        &rule(&[METRIC, OP, "warning = 90", "flap_transitions = 0"]),
        "rules.toml",
    )
    .unwrap();
    assert_eq!(off.rules()[0].flap_transitions, 0);
    assert!(
        one_error(&rule(&[METRIC, OP, "warning = 90", "flap_window_secs = 0"]))
            .contains("flap_window_secs: must be more than 0")
    );
}

#[test]
fn an_empty_file_is_an_empty_rule_set() {
    assert!(
        RuleSet::parse("# nothing yet\n", "rules.toml")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn load_names_a_missing_file() {
    let error = RuleSet::load(std::path::Path::new("/nonexistent/rules.toml")).unwrap_err();
    assert!(matches!(error, RulesError::Read { .. }));
    assert!(
        error.to_string().contains("/nonexistent/rules.toml"),
        "{error}"
    );
}

#[test]
fn load_with_defaults_reads_a_real_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.toml");
    std::fs::write(&path, rule(&[METRIC, OP, "warning = 70"])).unwrap();
    let set = RuleSet::load_with_defaults(&path).unwrap();
    assert_eq!(set.len(), RuleSet::with_defaults().len() + 1);
    assert_eq!(
        set.rules().last().unwrap().origin.file,
        path.display().to_string()
    );
}

#[test]
fn problems_without_a_field_line_point_at_the_rule() {
    let all = errors("# rules\n\n[[rule]]\nname = \"x\"\ndescription = \"d\"\n");
    assert!(
        all.iter()
            .all(|e| e.starts_with("rules.toml line 3: rule \"x\": ")),
        "{all:#?}"
    );
}

#[test]
fn the_documented_example_in_config_rs_parses() {
    let source = include_str!("config.rs");
    let example: String = source
        .lines()
        .skip_while(|line| !line.starts_with("//! ```toml"))
        .skip(1)
        .take_while(|line| !line.starts_with("//! ```"))
        .map(|line| format!("{}\n", line.trim_start_matches("//!").trim_start()))
        .collect();
    assert!(example.contains("[[rule]]"), "{example}");
    let set = RuleSet::parse(&example, "config.rs").unwrap();
    assert_eq!(set.rules()[0].name, "fs-full-prod");
}
