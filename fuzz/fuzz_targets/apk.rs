//! apk's `lib/apk/db/installed` parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steward_agent::inventory::software::apk;

fuzz_target!(|data: &[u8]| {
    let _ = apk::parse(data);
});
