//! dpkg's `status` file parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steward_agent::inventory::software::dpkg;

fuzz_target!(|data: &[u8]| {
    let _ = dpkg::parse(data).map(|parsed| format!("{parsed:?}"));
});
