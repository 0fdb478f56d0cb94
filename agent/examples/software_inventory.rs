//! Measures the software inventory on this machine: CPU time of `software::collect` (first run
//! and the median of ten more) and the process's peak RSS before and after.
//!
//! `cargo run --release -p steward-agent --example software_inventory [-- ROOT]`

use std::path::PathBuf;

use steward_agent::inventory::software;

/// CPU time of the calling thread in nanoseconds (`/proc/thread-self/schedstat`, Linux).
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// `VmHWM` (peak resident set) of this process in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "/".to_string()));
    let rss_before = peak_rss_kib();
    let start = thread_cpu_ns();
    let (packages, statuses) = software::collect(&root);
    let first = thread_cpu_ns().zip(start).map(|(end, start)| end - start);
    let rss_after = peak_rss_kib();
    let mut runs = Vec::new();
    let mut walls = Vec::new();
    for _ in 0..10 {
        let wall = std::time::Instant::now();
        let start = thread_cpu_ns();
        std::hint::black_box(software::collect(&root));
        if let Some((end, start)) = thread_cpu_ns().zip(start) {
            runs.push(end - start);
        }
        walls.push(wall.elapsed().as_nanos() as u64);
    }
    runs.sort_unstable();
    walls.sort_unstable();
    for status in &statuses {
        println!(
            "{:<16} items {:>5}  error {:?}  warnings {}",
            status.source,
            status.items,
            status.error,
            status.warnings.len()
        );
    }
    println!("packages: {}", packages.len());
    let ms = |ns: u64| ns as f64 / 1e6;
    if let Some(first) = first {
        println!("cpu first run: {:.2} ms", ms(first));
    }
    if let Some(median) = runs.get(runs.len() / 2) {
        println!("cpu median of {}: {:.2} ms", runs.len(), ms(*median));
    }
    println!("wall median of 10: {:.2} ms", ms(walls[walls.len() / 2]));
    println!(
        "peak rss: {} KiB before, {} KiB after the first run",
        rss_before.map_or("?".into(), |k| k.to_string()),
        rss_after.map_or("?".into(), |k| k.to_string())
    );
}
