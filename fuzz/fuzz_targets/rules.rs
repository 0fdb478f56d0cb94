//! The rules file parser, and laying a parsed file over the shipped defaults as the collector
//! and `rules check` do.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steward_collector::rules::RuleSet;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(user) = RuleSet::parse(text, "fuzz.toml") else {
        return;
    };
    let _ = RuleSet::with_defaults().overlay(user);
});
