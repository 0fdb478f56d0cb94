//! `agent.toml`, and the exclusion globs it carries matched against a name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steward_agent::config::{Config, glob_match};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Glob matching on its own: the first line is the pattern, the rest the name.
    if let Some((pattern, name)) = text.split_once('\n') {
        let _ = glob_match(pattern, name);
    }
    let _ = Config::parse(text).map(|config| format!("{config:?}"));
});
