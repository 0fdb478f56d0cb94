//! pacman's `local/<package>/desc` parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steward_agent::inventory::software::pacman;

fuzz_target!(|data: &[u8]| {
    let _ = pacman::parse_desc(data);
});
