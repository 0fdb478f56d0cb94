//! rpm: one header blob (what each row of rpmdb.sqlite holds) → a package, and the text output
//! of `rpm -qa --queryformat` that the Berkeley DB and NDB backends fall back on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steward_agent::inventory::software::rpm;

fuzz_target!(|data: &[u8]| {
    let _ = rpm::package_from_header(data);
    let _ = rpm::parse_query_output(data);
});
