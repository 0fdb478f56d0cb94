//! Inputs the fuzz targets in `fuzz/` found crashing, each fed to the function that crashed.
//! The inputs are under `collector/testdata/fuzz/` and in the target's corpus.

use steward_collector::rules::Metric;
use steward_collector::server::ingest::{Observed, decode_report};

/// Regression: a metrics report whose filesystem used + available bytes overflow u64 panicked
/// the rules engine's view of ingest (`attempt to add with overflow`; found by `ingest`).
#[test]
fn filesystem_bytes_that_overflow_u64_do_not_panic_ingest() {
    let body = include_bytes!("../testdata/fuzz/ingest-filesystem-bytes-overflow.bin");
    let Ok((_, Observed::Metrics(samples, _))) = decode_report(body, true) else {
        panic!("the report decodes as a metrics report");
    };
    let used: Vec<f64> = samples
        .iter()
        .filter(|s| s.metric == Metric::FilesystemUsedPct)
        .map(|s| s.value)
        .collect();
    assert!(!used.is_empty());
    assert!(used.iter().all(|v| (0.0..=100.0).contains(v)), "{used:?}");
}
