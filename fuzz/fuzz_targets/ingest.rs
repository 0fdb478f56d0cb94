//! The pure part of the ingest handler, `decode_report`: decode, size checks, the rules
//! engine's view, and the payload re-encoded for history.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steward_collector::server::ingest::decode_report;

fuzz_target!(|data: &[u8]| {
    let _ = decode_report(data, true);
});
