//! Part 2: 1,000 targets in one interval. Every target (a distinct loopback address and port
//! on one of a few snmpd processes) is polled once, as the collector's poller does it when all
//! of them fall due together: a semaphore of `max_in_flight` permits, a permit taken before each
//! target's task is spawned on a multi-thread runtime, `poll_device` then `device_poll` (rates
//! against that target's previous sample) in the task. Left out, as in part 1: opening the
//! target's sealed credentials and storing the poll.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use serde::Serialize;
use steward_collector::snmp::SnmpConfig;
use steward_collector::snmp::mib::rates;
use steward_collector::snmp::poller::{device_poll, poll_device, status_of};
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::daemons::{self, Daemon};
use crate::procfs::{self, Sample};
use crate::stats::{Latency, median_f64, median_u64};

/// Each target's last sample, for rates, kept across rounds as the poller keeps it.
pub type Previous = Arc<Mutex<HashMap<usize, rates::Sample>>>;

/// One round: every target polled once.
#[derive(Debug, Clone, Serialize)]
pub struct Round {
    pub targets: usize,
    pub ok: usize,
    pub failed: usize,
    /// Failed polls by the status the poller would record (`unreachable`, `error`, ...).
    pub failures: BTreeMap<String, usize>,
    pub first_error: Option<String>,
    pub wall_s: f64,
    pub varbinds: u64,
    pub requests: u64,
    /// This process (the poller) by schedstat of its live threads, and by ticks.
    pub poller_cpu_ms: f64,
    pub poller_cpu_ms_ticks: f64,
    /// Every snmpd together, by schedstat.
    pub snmpd_cpu_ms: f64,
    /// Each poll's wall time from its start (permit held) to its end, in µs.
    pub poll_us: Latency,
}

impl Round {
    pub fn poller_cores(&self) -> f64 {
        per_wall(self.poller_cpu_ms, self.wall_s)
    }

    pub fn snmpd_cores(&self) -> f64 {
        per_wall(self.snmpd_cpu_ms, self.wall_s)
    }

    pub fn poller_cpu_ms_per_1k_varbinds(&self) -> f64 {
        if self.varbinds == 0 {
            f64::NAN
        } else {
            self.poller_cpu_ms * 1000.0 / self.varbinds as f64
        }
    }
}

fn per_wall(cpu_ms: f64, wall_s: f64) -> f64 {
    if wall_s > 0.0 {
        cpu_ms / 1000.0 / wall_s
    } else {
        f64::NAN
    }
}

/// Medians over rounds (failures summed, so one failure in any round shows).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub rounds: usize,
    pub targets: usize,
    pub failed_total: usize,
    pub failures: BTreeMap<String, usize>,
    pub first_error: Option<String>,
    pub wall_s: f64,
    pub wall_s_max: f64,
    pub varbinds_per_round: u64,
    pub requests_per_round: u64,
    pub poller_cpu_ms: f64,
    pub poller_cpu_ms_ticks: f64,
    pub poller_cores: f64,
    pub poller_cpu_ms_per_1k_varbinds: f64,
    pub snmpd_cpu_ms: f64,
    pub snmpd_cores: f64,
    pub poll_ms_p50: f64,
    pub poll_ms_p90: f64,
    pub poll_ms_p99: f64,
    pub poll_ms_max: f64,
}

impl Summary {
    pub fn of(rounds: &[Round]) -> Option<Summary> {
        let first = rounds.first()?;
        let x = |f: fn(&Round) -> f64| median_f64(rounds.iter().map(f).collect());
        let us = |f: fn(&Latency) -> u32| {
            median_f64(rounds.iter().map(|r| f64::from(f(&r.poll_us))).collect()) / 1000.0
        };
        let mut failures = BTreeMap::new();
        for round in rounds {
            for (status, count) in &round.failures {
                *failures.entry(status.clone()).or_insert(0) += count;
            }
        }
        Some(Summary {
            rounds: rounds.len(),
            targets: first.targets,
            failed_total: rounds.iter().map(|r| r.failed).sum(),
            failures,
            first_error: rounds.iter().find_map(|r| r.first_error.clone()),
            wall_s: x(|r| r.wall_s),
            wall_s_max: rounds.iter().map(|r| r.wall_s).fold(0.0, f64::max),
            varbinds_per_round: median_u64(rounds.iter().map(|r| r.varbinds).collect()),
            requests_per_round: median_u64(rounds.iter().map(|r| r.requests).collect()),
            poller_cpu_ms: x(|r| r.poller_cpu_ms),
            poller_cpu_ms_ticks: x(|r| r.poller_cpu_ms_ticks),
            poller_cores: x(Round::poller_cores),
            poller_cpu_ms_per_1k_varbinds: x(Round::poller_cpu_ms_per_1k_varbinds),
            snmpd_cpu_ms: x(|r| r.snmpd_cpu_ms),
            snmpd_cores: x(Round::snmpd_cores),
            poll_ms_p50: us(|l| l.p50),
            poll_ms_p90: us(|l| l.p90),
            poll_ms_p99: us(|l| l.p99),
            poll_ms_max: us(|l| l.max),
        })
    }
}

/// What one task reports: its wall time and either (varbinds, requests) or (status, error).
type Outcome = (u32, Result<(usize, usize), (&'static str, String)>);

/// Polls every target once; see the module documentation.
pub fn round(
    runtime: &Runtime,
    targets: &[SocketAddr],
    config: &Arc<SnmpConfig>,
    previous: &Previous,
    daemons: &mut [Daemon],
    ticks_per_second: u64,
) -> Result<Round> {
    let me = std::process::id();
    let snmpd_before = sample_all(daemons)?;
    let before = procfs::sample_pid(me)?;
    let clock = Instant::now();
    let outcomes = runtime.block_on(poll_all(targets, config, previous))?;
    let wall_s = clock.elapsed().as_secs_f64();
    let after = procfs::sample_pid(me)?;
    let snmpd_after = sample_all(daemons)?;

    let mut round = Round {
        targets: targets.len(),
        ok: 0,
        failed: 0,
        failures: BTreeMap::new(),
        first_error: None,
        wall_s,
        varbinds: 0,
        requests: 0,
        poller_cpu_ms: after.cpu_ns.saturating_sub(before.cpu_ns) as f64 / 1e6,
        poller_cpu_ms_ticks: after.cpu_ticks.saturating_sub(before.cpu_ticks) as f64 * 1000.0
            / ticks_per_second.max(1) as f64,
        snmpd_cpu_ms: snmpd_after.saturating_sub(snmpd_before) as f64 / 1e6,
        poll_us: Latency::default(),
    };
    let mut durations = Vec::with_capacity(outcomes.len());
    for (micros, outcome) in outcomes {
        durations.push(micros);
        match outcome {
            Ok((varbinds, requests)) => {
                round.ok += 1;
                round.varbinds += varbinds as u64;
                round.requests += requests as u64;
            }
            Err((status, error)) => {
                round.failed += 1;
                *round.failures.entry(status.to_string()).or_insert(0) += 1;
                round.first_error.get_or_insert(error);
            }
        }
    }
    round.poll_us = Latency::of(&mut durations);
    Ok(round)
}

async fn poll_all(
    targets: &[SocketAddr],
    config: &Arc<SnmpConfig>,
    previous: &Previous,
) -> Result<Vec<Outcome>> {
    let slots = Arc::new(Semaphore::new(config.max_in_flight));
    let mut tasks = JoinSet::new();
    for (index, addr) in targets.iter().copied().enumerate() {
        let permit = slots
            .clone()
            .acquire_owned()
            .await
            .context("the semaphore closed")?;
        let (config, previous) = (config.clone(), previous.clone());
        tasks.spawn(async move {
            let started = Instant::now();
            let outcome = match poll_device(addr, daemons::credentials(), &config).await {
                Ok(polled) => {
                    let last = previous.lock().ok().and_then(|mut m| m.remove(&index));
                    let (poll, sample) = device_poll(&polled, last.as_ref());
                    std::hint::black_box(poll);
                    if let Ok(mut map) = previous.lock() {
                        map.insert(index, sample);
                    }
                    Ok((polled.varbinds, polled.requests))
                }
                Err(error) => Err((status_of(&error), format!("{addr}: {error}"))),
            };
            drop(permit);
            let micros = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
            (micros, outcome)
        });
    }
    let mut outcomes = Vec::with_capacity(targets.len());
    while let Some(joined) = tasks.join_next().await {
        outcomes.push(joined.map_err(|e| anyhow!("a poll task failed: {e}"))?);
    }
    Ok(outcomes)
}

/// Nanoseconds on CPU of every daemon together.
fn sample_all(daemons: &mut [Daemon]) -> Result<u64> {
    daemons
        .iter_mut()
        .map(|d| d.sample().map(|s: Sample| s.cpu_ns))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(wall_s: f64, failed: usize, p50_us: u32) -> Round {
        Round {
            targets: 1000,
            ok: 1000 - failed,
            failed,
            failures: if failed > 0 {
                BTreeMap::from([("unreachable".to_string(), failed)])
            } else {
                BTreeMap::new()
            },
            first_error: (failed > 0).then(|| "127.0.1.1:1: no answer".to_string()),
            wall_s,
            varbinds: 265_000,
            requests: 31_000,
            poller_cpu_ms: 2000.0,
            poller_cpu_ms_ticks: 2010.0,
            snmpd_cpu_ms: 6000.0,
            poll_us: Latency {
                p50: p50_us,
                p90: p50_us * 2,
                p99: p50_us * 3,
                max: p50_us * 4,
            },
        }
    }

    #[test]
    fn a_round_gives_cores_busy_and_cpu_per_thousand_varbinds() {
        let r = round(4.0, 0, 1000);
        assert!((r.poller_cores() - 0.5).abs() < 1e-12);
        assert!((r.snmpd_cores() - 1.5).abs() < 1e-12);
        assert!((r.poller_cpu_ms_per_1k_varbinds() - 2000.0 / 265.0).abs() < 1e-12);
    }

    #[test]
    fn the_summary_takes_medians_but_sums_failures() {
        let rounds = [
            round(4.0, 0, 1000),
            round(6.0, 2, 3000),
            round(5.0, 0, 2000),
        ];
        let s = Summary::of(&rounds).unwrap();
        assert_eq!(s.wall_s, 5.0);
        assert_eq!(s.wall_s_max, 6.0);
        assert_eq!(s.failed_total, 2);
        assert_eq!(s.failures.get("unreachable"), Some(&2));
        assert!(s.first_error.is_some());
        assert_eq!(s.poll_ms_p50, 2.0);
        assert_eq!(s.poll_ms_max, 8.0);
        assert!(Summary::of(&[]).is_none());
    }
}
