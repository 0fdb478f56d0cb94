//! The shipped default rules live in `defaults.toml` (embedded as
//! [`super::config::DEFAULTS_TOML`], loaded by [`super::RuleSet::with_defaults`]). This file
//! holds their tests: each default fires on a value that should alarm and clears on one that
//! should not.

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::rules::{
        CiFacts, Engine, EventState, ManualClock, Metric, RuleSet, Sample, Severity, Transition,
    };

    const START_MS: i64 = 1_700_000_000_000;

    fn engine() -> (Engine, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(START_MS));
        (Engine::new(RuleSet::with_defaults(), clock.clone()), clock)
    }

    fn ci(class: &str) -> CiFacts {
        CiFacts {
            id: 7,
            name: "web-1".into(),
            class: class.into(),
            tags: vec![],
            services: vec![],
        }
    }

    fn observe(engine: &mut Engine, metric: Metric, instance: &str, value: f64) -> Vec<Transition> {
        engine.observe(&ci("server"), &[Sample::new(metric, instance, value)])
    }

    fn only(transitions: &[Transition], rule: &str) -> Transition {
        let matching: Vec<_> = transitions.iter().filter(|t| t.rule == rule).collect();
        assert_eq!(matching.len(), 1, "{rule}: {transitions:#?}");
        matching[0].clone()
    }

    /// Fires at `bad` with `severity` right away, clears at `good`.
    fn fires_and_clears(
        rule: &str,
        metric: Metric,
        instance: &str,
        bad: f64,
        severity: Severity,
        good: f64,
    ) {
        let (mut engine, clock) = engine();
        assert!(
            observe(&mut engine, metric, instance, good).is_empty(),
            "{rule} quiet at {good}"
        );
        clock.advance_secs(60);
        let fired = only(&observe(&mut engine, metric, instance, bad), rule);
        assert_eq!(
            (fired.from, fired.to, fired.severity),
            (None, EventState::Firing, severity),
            "{rule}"
        );
        assert_eq!(fired.instance, instance);
        assert!(fired.summary.contains("web-1"), "{}", fired.summary);
        assert!(!fired.summary.contains('{'), "{}", fired.summary);
        clock.advance_secs(60);
        let cleared = only(&observe(&mut engine, metric, instance, good), rule);
        assert_eq!(
            (cleared.from, cleared.to),
            (Some(EventState::Firing), EventState::Resolved),
            "{rule}"
        );
        assert_eq!(engine.open().count(), 0);
    }

    #[test]
    fn the_defaults_parse_and_are_all_enabled() {
        let defaults = RuleSet::with_defaults();
        let names: Vec<_> = defaults.rules().iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "agent-silent",
                "filesystem-full",
                "memory-low",
                "cpu-high",
                "snmp-unreachable",
                "interface-down",
                "interface-utilisation",
                "interface-errors",
                "warranty-expiring",
                "warranty-expired",
                "software-denied",
            ]
        );
        assert!(defaults.rules().iter().all(|r| r.enabled));
    }

    #[test]
    fn agent_silent_fires_at_three_intervals_and_clears_when_it_reports() {
        fires_and_clears(
            "agent-silent",
            Metric::AgentSilentIntervals,
            "",
            3.2,
            Severity::Warning,
            0.1,
        );
    }

    #[test]
    fn filesystem_full_warns_at_90_is_critical_at_95_and_clears_below_88() {
        fires_and_clears(
            "filesystem-full",
            Metric::FilesystemUsedPct,
            "/var",
            91.0,
            Severity::Warning,
            50.0,
        );
        fires_and_clears(
            "filesystem-full",
            Metric::FilesystemUsedPct,
            "/",
            97.0,
            Severity::Critical,
            50.0,
        );
        let (mut engine, clock) = engine();
        observe(&mut engine, Metric::FilesystemUsedPct, "/var", 92.0);
        clock.advance_secs(60);
        assert!(
            observe(&mut engine, Metric::FilesystemUsedPct, "/var", 89.0).is_empty(),
            "hysteresis"
        );
        clock.advance_secs(60);
        assert_eq!(
            observe(&mut engine, Metric::FilesystemUsedPct, "/var", 87.0)[0].to,
            EventState::Resolved
        );
    }

    #[test]
    fn memory_low_fires_below_5_percent_available() {
        fires_and_clears(
            "memory-low",
            Metric::MemoryAvailablePct,
            "",
            3.0,
            Severity::Critical,
            40.0,
        );
    }

    #[test]
    fn cpu_high_fires_only_after_10_minutes_at_95() {
        let (mut engine, clock) = engine();
        let pending = only(
            &observe(&mut engine, Metric::CpuUsagePct, "", 99.0),
            "cpu-high",
        );
        assert_eq!(pending.to, EventState::Pending);
        clock.advance_secs(599);
        assert!(observe(&mut engine, Metric::CpuUsagePct, "", 98.0).is_empty());
        clock.advance_secs(1);
        let fired = only(
            &observe(&mut engine, Metric::CpuUsagePct, "", 97.0),
            "cpu-high",
        );
        assert_eq!(
            (fired.from, fired.to),
            (Some(EventState::Pending), EventState::Firing)
        );
        clock.advance_secs(60);
        let cleared = only(
            &observe(&mut engine, Metric::CpuUsagePct, "", 20.0),
            "cpu-high",
        );
        assert_eq!(cleared.to, EventState::Resolved);
    }

    #[test]
    fn snmp_unreachable_is_critical() {
        fires_and_clears(
            "snmp-unreachable",
            Metric::SnmpUnreachable,
            "",
            1.0,
            Severity::Critical,
            0.0,
        );
    }

    #[test]
    fn interface_down_fires_per_interface() {
        fires_and_clears(
            "interface-down",
            Metric::InterfaceDown,
            "Gi1/0/1",
            1.0,
            Severity::Warning,
            0.0,
        );
    }

    #[test]
    fn interface_utilisation_fires_at_90_percent() {
        fires_and_clears(
            "interface-utilisation",
            Metric::InterfaceUtilPct,
            "eth0",
            93.0,
            Severity::Warning,
            40.0,
        );
    }

    #[test]
    fn interface_errors_fire_after_5_minutes_and_escalate_at_10_per_second() {
        let (mut engine, clock) = engine();
        let m = Metric::InterfaceErrorsPerSec;
        assert_eq!(
            only(&observe(&mut engine, m, "eth0", 2.0), "interface-errors").to,
            EventState::Pending
        );
        clock.advance_secs(300);
        let fired = only(&engine.tick(), "interface-errors");
        assert_eq!(
            (fired.to, fired.severity),
            (EventState::Firing, Severity::Warning)
        );
        clock.advance_secs(60);
        let escalated = only(&observe(&mut engine, m, "eth0", 25.0), "interface-errors");
        assert_eq!(
            (
                escalated.to,
                escalated.severity,
                escalated.previous_severity
            ),
            (
                EventState::Firing,
                Severity::Critical,
                Some(Severity::Warning)
            )
        );
        clock.advance_secs(60);
        assert_eq!(
            only(&observe(&mut engine, m, "eth0", 0.0), "interface-errors").to,
            EventState::Resolved
        );
    }

    #[test]
    fn warranty_warns_at_90_days_is_critical_at_30() {
        fires_and_clears(
            "warranty-expiring",
            Metric::WarrantyDaysLeft,
            "",
            60.0,
            Severity::Warning,
            400.0,
        );
        fires_and_clears(
            "warranty-expiring",
            Metric::WarrantyDaysLeft,
            "",
            12.0,
            Severity::Critical,
            400.0,
        );
    }

    #[test]
    fn warranty_expired_fires_at_zero_days_and_clears_on_renewal() {
        fires_and_clears(
            "warranty-expired",
            Metric::WarrantyDaysLeft,
            "",
            -3.0,
            Severity::Critical,
            365.0,
        );
    }

    #[test]
    fn software_deny_list_fires_for_a_listed_package_only() {
        fires_and_clears(
            "software-denied",
            Metric::SoftwareInstalled,
            "qbittorrent-nox",
            1.0,
            Severity::Warning,
            0.0,
        );
        let (mut engine, _) = engine();
        assert!(
            observe(
                &mut engine,
                Metric::SoftwareInstalled,
                "openssh-server",
                1.0
            )
            .is_empty()
        );
    }

    #[test]
    fn a_removed_denied_package_resolves_through_observe_complete() {
        let (mut engine, clock) = engine();
        let packages = |names: &[&str]| -> Vec<Sample> {
            names
                .iter()
                .map(|n| Sample::new(Metric::SoftwareInstalled, *n, 1.0))
                .collect()
        };
        let fired = engine.observe_complete(&ci("server"), &packages(&["bash", "telnetd"]));
        assert_eq!(only(&fired, "software-denied").instance, "telnetd");
        clock.advance_secs(3600);
        let removed = engine.observe_complete(&ci("server"), &packages(&["bash"]));
        let resolved = only(&removed, "software-denied");
        assert_eq!(
            (resolved.to, resolved.cause),
            (EventState::Resolved, crate::rules::Cause::InstanceGone)
        );
    }

    #[test]
    fn a_user_file_overrides_and_disables_defaults() {
        let user = RuleSet::parse(
            r#"
[[rule]]
name = "filesystem-full"
metric = "filesystem.used_pct"
op = ">="
warning = 80

[[rule]]
name = "warranty-expired"
enabled = false
"#,
            "rules.toml",
        )
        .unwrap();
        let rules = RuleSet::with_defaults().overlay(user).unwrap();
        assert_eq!(rules.get("filesystem-full").unwrap().warning, Some(80.0));
        assert_eq!(rules.get("filesystem-full").unwrap().critical, None);
        assert!(!rules.get("warranty-expired").unwrap().enabled);
        assert_eq!(rules.len(), RuleSet::with_defaults().len());
        let clock = Arc::new(ManualClock::new(START_MS));
        let mut engine = Engine::new(rules, clock);
        let fired = observe(&mut engine, Metric::WarrantyDaysLeft, "", -1.0);
        assert_eq!(fired.len(), 1, "only warranty-expiring: {fired:#?}");
        assert_eq!(fired[0].rule, "warranty-expiring");
    }

    #[test]
    fn disabling_an_unknown_default_is_an_error_naming_the_line() {
        let user = RuleSet::parse(
            "[[rule]]\nname = \"disk-full\"\nenabled = false\n",
            "rules.toml",
        )
        .unwrap();
        let error = RuleSet::with_defaults()
            .overlay(user)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("rules.toml line 2: rule \"disk-full\": "),
            "{error}"
        );
        assert!(
            error.contains("filesystem-full"),
            "lists the defaults: {error}"
        );
    }
}
