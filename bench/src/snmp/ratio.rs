//! Part 1: CPU per 1,000 varbinds of Steward's poller and of prometheus-snmp-exporter, polling
//! the same snmpd the same number of times, one after the other.
//!
//! * **Steward** runs in this process on a current-thread tokio runtime, so every poll (socket,
//!   requests, walks, decoding, and the `device_poll` mapping to what would be stored, with
//!   rates against the previous poll) runs on this thread; its CPU is this thread's schedstat
//!   (ns). The whole process's CPU is read too, as a check that no other thread did work.
//! * **The exporter** is scraped over HTTP by this thread, one scrape at a time; its CPU is its
//!   process's (every live thread's schedstat, and utime+stime ticks as a cross-check), which
//!   includes its HTTP server and the exposition text, since that is how it is used.
//!
//! snmpd's CPU is read over each phase as well: the two pollers asked for the same work if
//! snmpd spent about the same per poll. It is not counted for either poller.

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use steward_collector::snmp::SnmpConfig;
use steward_collector::snmp::mib::rates;
use steward_collector::snmp::poller::{device_poll, poll_device};
use tokio::runtime::Runtime;

use super::daemons::{self, Daemon};
use super::exporter::Exporter;
use crate::procfs;
use crate::stats::median_f64;

/// Polls of each kind before the first measured run (sockets, caches, the Go runtime).
pub const WARMUP_POLLS: u32 = 20;

/// One poller's totals over one phase of `polls` polls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Phase {
    pub polls: u32,
    pub varbinds: u64,
    /// Steward: requests its walks sent; exporter: `snmp_scrape_packets_sent`.
    pub requests: u64,
    pub wall_ms: f64,
    /// The poller's CPU by schedstat (ns clock): Steward's poll thread, the exporter's process.
    pub cpu_ms: f64,
    /// The poller's whole process by utime+stime ticks (10 ms steps), a cross-check.
    pub process_cpu_ms_ticks: f64,
    /// The poller's whole process by schedstat of its live threads.
    pub process_cpu_ms: f64,
    /// snmpd's CPU over the phase (schedstat), not charged to the poller.
    pub snmpd_cpu_ms: f64,
}

/// The per-poll and per-1,000-varbind figures of a phase (or medians of them over runs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Figures {
    pub varbinds_per_poll: f64,
    pub requests_per_poll: f64,
    pub cpu_ms_per_1k_varbinds: f64,
    pub cpu_ms_per_poll: f64,
    pub wall_ms_per_poll: f64,
    pub process_cpu_ms_per_1k_varbinds: f64,
    pub process_cpu_ms_per_1k_varbinds_ticks: f64,
    pub snmpd_cpu_ms_per_poll: f64,
}

impl Figures {
    pub fn of(phase: &Phase) -> Figures {
        let polls = f64::from(phase.polls.max(1));
        let per_1k = |ms: f64| {
            if phase.varbinds == 0 {
                f64::NAN
            } else {
                ms * 1000.0 / phase.varbinds as f64
            }
        };
        Figures {
            varbinds_per_poll: phase.varbinds as f64 / polls,
            requests_per_poll: phase.requests as f64 / polls,
            cpu_ms_per_1k_varbinds: per_1k(phase.cpu_ms),
            cpu_ms_per_poll: phase.cpu_ms / polls,
            wall_ms_per_poll: phase.wall_ms / polls,
            process_cpu_ms_per_1k_varbinds: per_1k(phase.process_cpu_ms),
            process_cpu_ms_per_1k_varbinds_ticks: per_1k(phase.process_cpu_ms_ticks),
            snmpd_cpu_ms_per_poll: phase.snmpd_cpu_ms / polls,
        }
    }

    /// The median of each figure over runs.
    pub fn median(runs: &[Figures]) -> Figures {
        let m = |f: fn(&Figures) -> f64| median_f64(runs.iter().map(f).collect());
        Figures {
            varbinds_per_poll: m(|f| f.varbinds_per_poll),
            requests_per_poll: m(|f| f.requests_per_poll),
            cpu_ms_per_1k_varbinds: m(|f| f.cpu_ms_per_1k_varbinds),
            cpu_ms_per_poll: m(|f| f.cpu_ms_per_poll),
            wall_ms_per_poll: m(|f| f.wall_ms_per_poll),
            process_cpu_ms_per_1k_varbinds: m(|f| f.process_cpu_ms_per_1k_varbinds),
            process_cpu_ms_per_1k_varbinds_ticks: m(|f| f.process_cpu_ms_per_1k_varbinds_ticks),
            snmpd_cpu_ms_per_poll: m(|f| f.snmpd_cpu_ms_per_poll),
        }
    }
}

/// Steward's CPU per 1,000 varbinds over the exporter's: the budget is ≤ 0.2.
pub fn ratio(steward: &Figures, exporter: &Figures) -> f64 {
    if exporter.cpu_ms_per_1k_varbinds > 0.0 {
        steward.cpu_ms_per_1k_varbinds / exporter.cpu_ms_per_1k_varbinds
    } else {
        f64::NAN
    }
}

/// One run: both pollers, `polls` polls each; the order alternates between runs.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub steward: Phase,
    pub exporter: Phase,
    pub steward_first: bool,
}

/// What is polled and by whom.
pub struct Setup<'a> {
    pub runtime: &'a Runtime,
    pub snmpd: &'a mut Daemon,
    pub target: SocketAddr,
    pub config: &'a SnmpConfig,
    pub exporter: &'a mut Exporter,
    pub ticks_per_second: u64,
}

/// Polls `WARMUP_POLLS` times with each poller; fails if either cannot poll.
pub fn warm_up(setup: &mut Setup<'_>) -> Result<()> {
    let steward = steward_phase(setup, WARMUP_POLLS).context("Steward's warm-up polls")?;
    let exporter = exporter_phase(setup, WARMUP_POLLS).context("the exporter's warm-up scrapes")?;
    eprintln!(
        "warm-up: Steward {} varbinds and {} requests per poll; exporter {} varbinds and {} packets per scrape",
        steward.varbinds / u64::from(WARMUP_POLLS),
        steward.requests / u64::from(WARMUP_POLLS),
        exporter.varbinds / u64::from(WARMUP_POLLS),
        exporter.requests / u64::from(WARMUP_POLLS),
    );
    Ok(())
}

pub fn measure_run(setup: &mut Setup<'_>, polls: u32, steward_first: bool) -> Result<Run> {
    let (steward, exporter) = if steward_first {
        let s = steward_phase(setup, polls)?;
        (s, exporter_phase(setup, polls)?)
    } else {
        let e = exporter_phase(setup, polls)?;
        (steward_phase(setup, polls)?, e)
    };
    Ok(Run {
        steward,
        exporter,
        steward_first,
    })
}

/// `polls` polls of the target by Steward's `poll_device` + `device_poll`, on this thread.
fn steward_phase(setup: &mut Setup<'_>, polls: u32) -> Result<Phase> {
    let me = std::process::id();
    let snmpd_before = setup.snmpd.sample()?;
    let process_before = procfs::sample_pid(me)?;
    let thread_before = procfs::this_thread_cpu_ns()?;
    let clock = Instant::now();
    let (varbinds, requests) = setup.runtime.block_on(async {
        let mut previous: Option<rates::Sample> = None;
        let (mut varbinds, mut requests) = (0u64, 0u64);
        for _ in 0..polls {
            let polled = poll_device(setup.target, daemons::credentials(), setup.config)
                .await
                .with_context(|| format!("polling {}", setup.target))?;
            let (poll, sample) = device_poll(&polled, previous.as_ref());
            std::hint::black_box(poll);
            previous = Some(sample);
            varbinds += polled.varbinds as u64;
            requests += polled.requests as u64;
        }
        anyhow::Ok((varbinds, requests))
    })?;
    let wall_ms = clock.elapsed().as_secs_f64() * 1000.0;
    let thread_after = procfs::this_thread_cpu_ns()?;
    let process_after = procfs::sample_pid(me)?;
    let snmpd_after = setup.snmpd.sample()?;
    Ok(Phase {
        polls,
        varbinds,
        requests,
        wall_ms,
        cpu_ms: ns_ms(thread_after.saturating_sub(thread_before)),
        process_cpu_ms_ticks: ticks_ms(
            process_after
                .cpu_ticks
                .saturating_sub(process_before.cpu_ticks),
            setup.ticks_per_second,
        ),
        process_cpu_ms: ns_ms(process_after.cpu_ns.saturating_sub(process_before.cpu_ns)),
        snmpd_cpu_ms: ns_ms(snmpd_after.cpu_ns.saturating_sub(snmpd_before.cpu_ns)),
    })
}

/// `polls` scrapes of the target through the exporter, one at a time.
fn exporter_phase(setup: &mut Setup<'_>, polls: u32) -> Result<Phase> {
    setup.exporter.proc.ensure_running()?;
    let pid = setup.exporter.proc.pid();
    let snmpd_before = setup.snmpd.sample()?;
    let before = procfs::sample_pid(pid)?;
    let clock = Instant::now();
    let (mut varbinds, mut requests, mut retried) = (0u64, 0u64, 0u64);
    for _ in 0..polls {
        let scrape = setup
            .exporter
            .scrape(setup.target)
            .with_context(|| format!("scraping {} through the exporter", setup.target))?;
        varbinds += scrape.varbinds;
        requests += scrape.packets_sent;
        retried += scrape.packets_retried;
    }
    let wall_ms = clock.elapsed().as_secs_f64() * 1000.0;
    let after = procfs::sample_pid(pid)?;
    let snmpd_after = setup.snmpd.sample()?;
    if retried > 0 {
        eprintln!("  the exporter retried {retried} packets");
    }
    if varbinds == 0 {
        bail!("the exporter's scrapes returned no varbinds");
    }
    let cpu_ms = ns_ms(after.cpu_ns.saturating_sub(before.cpu_ns));
    Ok(Phase {
        polls,
        varbinds,
        requests,
        wall_ms,
        cpu_ms,
        process_cpu_ms_ticks: ticks_ms(
            after.cpu_ticks.saturating_sub(before.cpu_ticks),
            setup.ticks_per_second,
        ),
        process_cpu_ms: cpu_ms,
        snmpd_cpu_ms: ns_ms(snmpd_after.cpu_ns.saturating_sub(snmpd_before.cpu_ns)),
    })
}

fn ns_ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn ticks_ms(ticks: u64, per_second: u64) -> f64 {
    ticks as f64 * 1000.0 / per_second.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(varbinds: u64, cpu_ms: f64) -> Phase {
        Phase {
            polls: 100,
            varbinds,
            requests: 3100,
            wall_ms: 250.0,
            cpu_ms,
            process_cpu_ms_ticks: cpu_ms + 10.0,
            process_cpu_ms: cpu_ms + 1.0,
            snmpd_cpu_ms: 180.0,
        }
    }

    #[test]
    fn figures_per_poll_and_per_thousand_varbinds() {
        let f = Figures::of(&phase(26_500, 53.0));
        assert_eq!(f.varbinds_per_poll, 265.0);
        assert_eq!(f.requests_per_poll, 31.0);
        assert!((f.cpu_ms_per_1k_varbinds - 2.0).abs() < 1e-12);
        assert!((f.cpu_ms_per_poll - 0.53).abs() < 1e-12);
        assert!((f.wall_ms_per_poll - 2.5).abs() < 1e-12);
        assert!((f.process_cpu_ms_per_1k_varbinds_ticks - 63.0 / 26.5).abs() < 1e-12);
        assert!((f.snmpd_cpu_ms_per_poll - 1.8).abs() < 1e-12);
        assert!(Figures::of(&phase(0, 1.0)).cpu_ms_per_1k_varbinds.is_nan());
    }

    #[test]
    fn medians_are_taken_figure_by_figure_and_the_ratio_is_steward_over_exporter() {
        let runs = [
            Figures::of(&phase(26_500, 53.0)),
            Figures::of(&phase(26_500, 26.5)),
            Figures::of(&phase(26_500, 265.0)),
        ];
        let median = Figures::median(&runs);
        assert!((median.cpu_ms_per_1k_varbinds - 2.0).abs() < 1e-12);
        let exporter = Figures::of(&phase(26_500, 530.0));
        assert!((ratio(&median, &exporter) - 0.1).abs() < 1e-12);
        assert!(ratio(&median, &Figures::default()).is_nan());
    }
}
