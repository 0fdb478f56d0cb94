//! Per-second interface rates from two polls' counters.
//!
//! SNMP counters only ever count up and the rate is the difference over time, but a
//! difference can lie: a 32-bit counter wraps, a device reboots and starts from zero, an
//! operator clears counters, a line card is swapped. Each of those read naively is a spike of
//! terabits per second that would page someone. The rule here is *never a spike*: when a
//! delta cannot be trusted there is no rate for that sample, and the current sample becomes
//! the new baseline (the caller keeps it as `prev` for next time either way).
//!
//! Decisions, in order:
//! 1. No time passed on the poller's monotonic clock → no rates.
//! 2. sysUpTime went back (not by its 497-day wrap), or advanced clearly less than the
//!    poll interval → the agent restarted in between → no rates.
//! 3. An interface new since the last poll, or whose ifCounterDiscontinuityTime changed
//!    (module swapped, counters cleared on some platforms) → no rates for it.
//! 4. Per counter: a width change (HC column appeared/vanished) → no rate. Forward → the
//!    difference. Backwards: a 64-bit counter never wraps in practice (at 100 Gb/s it takes
//!    46 years), so it was reset → no rate. A 32-bit counter may have wrapped: the
//!    wrap-corrected delta is accepted only if the interface could have carried it, i.e.
//!    delta ≤ line rate × elapsed × [`WRAP_SLACK`]; otherwise (or when the speed is unknown,
//!    so plausibility cannot be judged) it is taken as a reset. Several wraps within one
//!    interval (a 32-bit octet counter at 10 Gb/s wraps every 3.4 s) are undetectable, which
//!    is why [`super::interfaces`] prefers the HC counters.
//! 5. An octet rate above what the interface can physically carry (bytes > speed/8 ×
//!    elapsed × [`CAPACITY_SLACK`]) is dropped and reported as a problem: it means one of the
//!    rules above was fooled, and the operator should know.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::DeviceData;
use super::interfaces::InterfaceCounters;
use super::table::{Counter, CounterWidth};

/// Slack on "could the link have carried this wrap-corrected delta?". Counters are sampled by
/// the device on its own schedule (many switches refresh them from hardware every few
/// seconds) and our interval is measured between poll starts, so the device's interval can
/// be longer than ours by a few seconds; at short poll intervals that is tens of percent.
/// Too tight would turn real wraps into silent resets (lost samples); too loose would accept
/// a reset as a wrap, which [`CAPACITY_SLACK`] then still catches and reports.
pub const WRAP_SLACK: f64 = 1.5;

/// Slack on "is this rate physically possible?": the same timing jitter, kept tighter because
/// what exceeds it is reported as a problem.
pub const CAPACITY_SLACK: f64 = 1.1;

/// Smallest Ethernet frame, in bytes: bounds how many packets (or errors, discards) a link can
/// carry per second, for judging wraps of packet counters. Without preamble and gap, so the
/// bound is generous.
const MIN_FRAME_BYTES: f64 = 64.0;

/// sysUpTime is 32-bit hundredths of a second: it wraps every 497.1 days.
const TICKS_WRAP: f64 = 4_294_967_296.0;

/// How far sysUpTime may lag the poller's clock before we call it a restart: the time from
/// poll start to the sysUpTime read varies with round trips and retries.
const UPTIME_SLACK_SECS: f64 = 15.0;
const UPTIME_SLACK_FRACTION: f64 = 0.1;

/// What one poll contributes to rate computation.
#[derive(Clone, Debug)]
pub struct Sample {
    /// When the poll started, on the poller's monotonic clock.
    pub at: Instant,
    pub sys_uptime_ticks: Option<u32>,
    pub interfaces: BTreeMap<u32, InterfaceSample>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct InterfaceSample {
    pub name: String,
    pub speed_bps: Option<u64>,
    pub counters: InterfaceCounters,
    pub counter_discontinuity_ticks: Option<u32>,
}

impl Sample {
    pub fn new(at: Instant, data: &DeviceData) -> Sample {
        Sample {
            at,
            sys_uptime_ticks: data.system.as_ref().and_then(|s| s.uptime_ticks),
            interfaces: data
                .interfaces
                .iter()
                .map(|i| {
                    (
                        i.index,
                        InterfaceSample {
                            name: i.name.clone(),
                            speed_bps: i.speed_bps,
                            counters: i.counters,
                            counter_discontinuity_ticks: i.counter_discontinuity_ticks,
                        },
                    )
                })
                .collect(),
        }
    }
}

/// Why there are no rates for a device or an interface this time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Rebaseline {
    /// The poller's clock did not advance between the samples.
    NoElapsedTime,
    /// sysUpTime says the agent restarted between the samples.
    DeviceRestarted,
    /// The interface was not in the previous sample.
    NewInterface,
    /// ifCounterDiscontinuityTime changed.
    CounterDiscontinuity,
}

/// The rates of one device between two samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// The interval the rates are over, in seconds.
    pub elapsed_secs: f64,
    /// Set when the whole device re-baselines; `interfaces` is then empty.
    pub rebaselined: Option<Rebaseline>,
    pub interfaces: Vec<InterfaceRates>,
    /// Rates dropped as physically impossible, each naming the interface and counter.
    pub problems: Vec<String>,
}

/// Per-second rates of one interface. A `None` rate means "no trustworthy value this time".
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InterfaceRates {
    pub if_index: u32,
    /// Set when the interface re-baselines; every rate is then `None`.
    pub rebaselined: Option<Rebaseline>,
    pub in_bits_per_sec: Option<f64>,
    pub out_bits_per_sec: Option<f64>,
    /// Of the interface speed; `None` when the speed is unknown.
    pub in_utilisation_pct: Option<f64>,
    pub out_utilisation_pct: Option<f64>,
    pub in_unicast_pkts_per_sec: Option<f64>,
    pub in_multicast_pkts_per_sec: Option<f64>,
    pub in_broadcast_pkts_per_sec: Option<f64>,
    pub out_unicast_pkts_per_sec: Option<f64>,
    pub out_multicast_pkts_per_sec: Option<f64>,
    pub out_broadcast_pkts_per_sec: Option<f64>,
    /// Unicast + multicast + broadcast, when all three have a rate.
    pub in_pkts_per_sec: Option<f64>,
    pub out_pkts_per_sec: Option<f64>,
    pub in_errors_per_sec: Option<f64>,
    pub out_errors_per_sec: Option<f64>,
    pub in_discards_per_sec: Option<f64>,
    pub out_discards_per_sec: Option<f64>,
}

/// Computes the rates from `prev` to `cur` (see the module docs for the rules).
pub fn compute(prev: &Sample, cur: &Sample) -> Rates {
    let clock_secs = cur
        .at
        .checked_duration_since(prev.at)
        .map_or(0.0, |d| d.as_secs_f64());
    let none = |elapsed_secs: f64, why: Rebaseline| Rates {
        elapsed_secs,
        rebaselined: Some(why),
        interfaces: Vec::new(),
        problems: Vec::new(),
    };
    if clock_secs <= 0.0 {
        return none(clock_secs, Rebaseline::NoElapsedTime);
    }
    let elapsed = match uptime_advance(prev.sys_uptime_ticks, cur.sys_uptime_ticks, clock_secs) {
        Uptime::Restarted => return none(clock_secs, Rebaseline::DeviceRestarted),
        // The agent saw more time pass than we did: the poller was paused (CLOCK_MONOTONIC
        // stops during suspend) and the counters covered the longer interval. Dividing by
        // ours would overstate the rate; the device's interval cannot.
        Uptime::Advanced(device) if device > clock_secs + slack(clock_secs) => device,
        Uptime::Advanced(_) | Uptime::Unknown => clock_secs,
    };
    let mut problems = Vec::new();
    let interfaces = cur
        .interfaces
        .iter()
        .map(|(&if_index, now)| match prev.interfaces.get(&if_index) {
            None => InterfaceRates {
                if_index,
                rebaselined: Some(Rebaseline::NewInterface),
                ..InterfaceRates::default()
            },
            Some(before)
                if before.counter_discontinuity_ticks != now.counter_discontinuity_ticks =>
            {
                InterfaceRates {
                    if_index,
                    rebaselined: Some(Rebaseline::CounterDiscontinuity),
                    ..InterfaceRates::default()
                }
            }
            Some(before) => interface_rates(if_index, before, now, elapsed, &mut problems),
        })
        .collect();
    Rates {
        elapsed_secs: elapsed,
        rebaselined: None,
        interfaces,
        problems,
    }
}

enum Uptime {
    Unknown,
    Restarted,
    /// Seconds the agent's uptime advanced.
    Advanced(f64),
}

fn slack(clock_secs: f64) -> f64 {
    UPTIME_SLACK_SECS.max(clock_secs * UPTIME_SLACK_FRACTION)
}

/// How far sysUpTime moved, telling its 497-day wrap from a restart. A restart shows as
/// going back, or — when the agent was up only briefly before the previous poll — as
/// advancing clearly less than the interval.
fn uptime_advance(prev: Option<u32>, cur: Option<u32>, clock_secs: f64) -> Uptime {
    let (Some(prev), Some(cur)) = (prev, cur) else {
        return Uptime::Unknown;
    };
    let slack = slack(clock_secs);
    let advanced = if cur >= prev {
        f64::from(cur - prev) / 100.0
    } else {
        let wrapped = (TICKS_WRAP - f64::from(prev) + f64::from(cur)) / 100.0;
        if (wrapped - clock_secs).abs() > slack {
            return Uptime::Restarted;
        }
        wrapped
    };
    if advanced + slack < clock_secs {
        Uptime::Restarted
    } else {
        Uptime::Advanced(advanced)
    }
}

fn interface_rates(
    if_index: u32,
    before: &InterfaceSample,
    now: &InterfaceSample,
    elapsed: f64,
    problems: &mut Vec<String>,
) -> InterfaceRates {
    // A renegotiated link: judge against the faster of the two speeds.
    let speed = match (before.speed_bps, now.speed_bps) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
    .filter(|&s| s > 0)
    .map(|s| s as f64);
    let bytes_per_sec = speed.map(|s| s / 8.0);
    let frames_per_sec = bytes_per_sec.map(|b| b / MIN_FRAME_BYTES);
    let (b, n) = (&before.counters, &now.counters);
    let rate = |prev: Option<Counter>, cur: Option<Counter>, max_per_sec: Option<f64>| {
        delta(prev?, cur?, max_per_sec.map(|m| m * elapsed * WRAP_SLACK))
            .map(|d| d as f64 / elapsed)
    };
    let mut octets = |prev: Option<Counter>, cur: Option<Counter>, direction: &str| {
        let per_sec = rate(prev, cur, bytes_per_sec)?;
        if let Some(max) = bytes_per_sec
            && per_sec > max * CAPACITY_SLACK
        {
            problems.push(format!(
                "ifIndex {if_index} ({}): {direction} octets rose {:.0} bytes in {elapsed:.1} s, \
                 more than its {} b/s can carry; rate dropped",
                now.name,
                per_sec * elapsed,
                speed.unwrap_or_default(),
            ));
            return None;
        }
        Some(per_sec)
    };
    let in_bytes = octets(b.in_octets, n.in_octets, "in");
    let out_bytes = octets(b.out_octets, n.out_octets, "out");
    let pkts = |prev, cur| rate(prev, cur, frames_per_sec);
    let in_unicast = pkts(b.in_unicast_pkts, n.in_unicast_pkts);
    let in_multicast = pkts(b.in_multicast_pkts, n.in_multicast_pkts);
    let in_broadcast = pkts(b.in_broadcast_pkts, n.in_broadcast_pkts);
    let out_unicast = pkts(b.out_unicast_pkts, n.out_unicast_pkts);
    let out_multicast = pkts(b.out_multicast_pkts, n.out_multicast_pkts);
    let out_broadcast = pkts(b.out_broadcast_pkts, n.out_broadcast_pkts);
    let utilisation = |bytes: Option<f64>| Some(bytes? * 8.0 / speed? * 100.0);
    InterfaceRates {
        if_index,
        rebaselined: None,
        in_bits_per_sec: in_bytes.map(|b| b * 8.0),
        out_bits_per_sec: out_bytes.map(|b| b * 8.0),
        in_utilisation_pct: utilisation(in_bytes),
        out_utilisation_pct: utilisation(out_bytes),
        in_unicast_pkts_per_sec: in_unicast,
        in_multicast_pkts_per_sec: in_multicast,
        in_broadcast_pkts_per_sec: in_broadcast,
        out_unicast_pkts_per_sec: out_unicast,
        out_multicast_pkts_per_sec: out_multicast,
        out_broadcast_pkts_per_sec: out_broadcast,
        in_pkts_per_sec: sum3(in_unicast, in_multicast, in_broadcast),
        out_pkts_per_sec: sum3(out_unicast, out_multicast, out_broadcast),
        in_errors_per_sec: pkts(b.in_errors, n.in_errors),
        out_errors_per_sec: pkts(b.out_errors, n.out_errors),
        in_discards_per_sec: pkts(b.in_discards, n.in_discards),
        out_discards_per_sec: pkts(b.out_discards, n.out_discards),
    }
}

fn sum3(a: Option<f64>, b: Option<f64>, c: Option<f64>) -> Option<f64> {
    Some(a? + b? + c?)
}

/// The increase of a counter, or `None` when it cannot be trusted (rule 4 of the module
/// docs). `max_plausible` is how much the interface could have counted in the interval,
/// with slack; `None` when the speed is unknown.
fn delta(prev: Counter, cur: Counter, max_plausible: Option<f64>) -> Option<u64> {
    if prev.bits != cur.bits {
        return None;
    }
    if cur.value >= prev.value {
        return Some(cur.value - prev.value);
    }
    match cur.bits {
        CounterWidth::Bits64 => None,
        CounterWidth::Bits32 => {
            let wrapped = (1u64 << 32)
                .checked_sub(prev.value)?
                .checked_add(cur.value)?;
            let max = max_plausible?;
            (wrapped as f64 <= max).then_some(wrapped)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const GBIT: u64 = 1_000_000_000;

    fn c64(value: u64) -> Option<Counter> {
        Some(Counter {
            value,
            bits: CounterWidth::Bits64,
        })
    }

    fn c32(value: u64) -> Option<Counter> {
        Some(Counter {
            value,
            bits: CounterWidth::Bits32,
        })
    }

    fn iface(speed_bps: Option<u64>, in_octets: Option<Counter>) -> InterfaceSample {
        InterfaceSample {
            name: "Gi0/1".to_string(),
            speed_bps,
            counters: InterfaceCounters {
                in_octets,
                ..InterfaceCounters::default()
            },
            counter_discontinuity_ticks: Some(0),
        }
    }

    /// Two samples `secs` apart with matching sysUpTime, for interface 1.
    fn pair(secs: u64, before: InterfaceSample, now: InterfaceSample) -> (Sample, Sample) {
        let t0 = Instant::now();
        let prev = Sample {
            at: t0,
            sys_uptime_ticks: Some(100_000),
            interfaces: BTreeMap::from([(1, before)]),
        };
        let cur = Sample {
            at: t0 + Duration::from_secs(secs),
            sys_uptime_ticks: u32::try_from(100_000 + secs * 100).ok(),
            interfaces: BTreeMap::from([(1, now)]),
        };
        (prev, cur)
    }

    fn only(rates: &Rates) -> &InterfaceRates {
        assert_eq!(rates.interfaces.len(), 1, "{rates:?}");
        &rates.interfaces[0]
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-6 * b.abs().max(1.0))
    }

    #[test]
    fn a_64_bit_delta_gives_bits_per_second_and_utilisation() {
        // 750 MB in 60 s = 100 Mb/s on a 1 Gb/s link.
        let (p, c) = pair(
            60,
            iface(Some(GBIT), c64(1_000)),
            iface(Some(GBIT), c64(750_001_000)),
        );
        let r = compute(&p, &c);
        let i = only(&r);
        assert!(close(i.in_bits_per_sec, 100_000_000.0), "{i:?}");
        assert!(close(i.in_utilisation_pct, 10.0), "{i:?}");
        assert_eq!(i.out_bits_per_sec, None, "no out counter, no rate");
        assert!(r.problems.is_empty());
    }

    #[test]
    fn a_plausible_32_bit_wrap_is_a_wrap() {
        // From 2^32 - 1000 to 9000: 10,000 bytes, on a link that could carry far more.
        let (p, c) = pair(
            10,
            iface(Some(GBIT), c32(4_294_966_296)),
            iface(Some(GBIT), c32(9_000)),
        );
        let i = compute(&p, &c).interfaces[0].clone();
        assert!(close(i.in_bits_per_sec, 8_000.0), "{i:?}");
    }

    #[test]
    fn an_implausible_32_bit_wrap_is_a_reset() {
        // Back from 3e9 to 10: the wrap would be ~1.29 GB in 10 s, over 10x what 100 Mb/s
        // can carry, so the counter was reset.
        let (p, c) = pair(
            10,
            iface(Some(100_000_000), c32(3_000_000_000)),
            iface(Some(100_000_000), c32(10)),
        );
        let r = compute(&p, &c);
        assert_eq!(only(&r).in_bits_per_sec, None);
        assert!(r.problems.is_empty(), "a reset is not a problem: {r:?}");
    }

    #[test]
    fn a_32_bit_counter_going_back_without_a_known_speed_is_a_reset() {
        let (p, c) = pair(10, iface(None, c32(4_294_966_296)), iface(None, c32(9_000)));
        assert_eq!(only(&compute(&p, &c)).in_bits_per_sec, None);
    }

    #[test]
    fn a_64_bit_counter_going_back_is_a_reset() {
        let (p, c) = pair(
            60,
            iface(Some(GBIT), c64(5_000_000)),
            iface(Some(GBIT), c64(10)),
        );
        let r = compute(&p, &c);
        assert_eq!(only(&r).in_bits_per_sec, None);
        assert!(r.problems.is_empty());
    }

    #[test]
    fn a_width_change_rebaselines_the_counter() {
        let (p, c) = pair(
            60,
            iface(Some(GBIT), c32(1_000)),
            iface(Some(GBIT), c64(2_000)),
        );
        assert_eq!(only(&compute(&p, &c)).in_bits_per_sec, None);
    }

    #[test]
    fn sysuptime_going_back_means_a_reboot_and_no_rates() {
        let (p, mut c) = pair(
            60,
            iface(Some(GBIT), c64(1_000)),
            iface(Some(GBIT), c64(2_000)),
        );
        c.sys_uptime_ticks = Some(3_000);
        let r = compute(&p, &c);
        assert_eq!(r.rebaselined, Some(Rebaseline::DeviceRestarted));
        assert!(r.interfaces.is_empty());
    }

    #[test]
    fn sysuptime_advancing_too_little_means_a_reboot_in_between() {
        // 300 s passed, the agent's uptime advanced 100 s: it restarted after the last poll.
        let (mut p, mut c) = pair(
            300,
            iface(Some(GBIT), c64(1_000)),
            iface(Some(GBIT), c64(2_000)),
        );
        p.sys_uptime_ticks = Some(5_000);
        c.sys_uptime_ticks = Some(15_000);
        assert_eq!(
            compute(&p, &c).rebaselined,
            Some(Rebaseline::DeviceRestarted)
        );
    }

    #[test]
    fn sysuptime_wrapping_after_497_days_is_not_a_reboot() {
        let (mut p, mut c) = pair(
            60,
            iface(Some(GBIT), c64(1_000)),
            iface(Some(GBIT), c64(2_000)),
        );
        p.sys_uptime_ticks = Some(u32::MAX - 2_999);
        c.sys_uptime_ticks = Some(3_000);
        let r = compute(&p, &c);
        assert_eq!(r.rebaselined, None);
        assert!(close(only(&r).in_bits_per_sec, 1_000.0 * 8.0 / 60.0));
    }

    #[test]
    fn a_paused_poller_divides_by_the_devices_longer_interval() {
        // Our clock says 60 s, the agent says 600 s passed (the collector was suspended).
        let (p, mut c) = pair(
            60,
            iface(Some(GBIT), c64(0)),
            iface(Some(GBIT), c64(6_000_000)),
        );
        c.sys_uptime_ticks = Some(100_000 + 60_000);
        let r = compute(&p, &c);
        assert!(close(Some(r.elapsed_secs), 600.0), "{r:?}");
        assert!(close(only(&r).in_bits_per_sec, 80_000.0));
    }

    #[test]
    fn without_sysuptime_rates_still_flow() {
        let (mut p, mut c) = pair(60, iface(Some(GBIT), c64(0)), iface(Some(GBIT), c64(600)));
        p.sys_uptime_ticks = None;
        c.sys_uptime_ticks = None;
        assert!(close(only(&compute(&p, &c)).in_bits_per_sec, 80.0));
    }

    #[test]
    fn a_changed_counter_discontinuity_time_rebaselines_the_interface() {
        let mut now = iface(Some(GBIT), c64(2_000));
        now.counter_discontinuity_ticks = Some(123_456);
        let (p, c) = pair(60, iface(Some(GBIT), c64(1_000)), now);
        let i = only(&compute(&p, &c)).clone();
        assert_eq!(i.rebaselined, Some(Rebaseline::CounterDiscontinuity));
        assert_eq!(i.in_bits_per_sec, None);
    }

    #[test]
    fn no_elapsed_time_means_no_rates() {
        let (p, mut c) = pair(
            60,
            iface(Some(GBIT), c64(1_000)),
            iface(Some(GBIT), c64(2_000)),
        );
        c.at = p.at;
        assert_eq!(compute(&p, &c).rebaselined, Some(Rebaseline::NoElapsedTime));
        // Samples handed over in the wrong order: time went backwards.
        let (p, c) = pair(
            60,
            iface(Some(GBIT), c64(1_000)),
            iface(Some(GBIT), c64(2_000)),
        );
        assert_eq!(compute(&c, &p).rebaselined, Some(Rebaseline::NoElapsedTime));
    }

    #[test]
    fn a_rate_above_the_link_speed_is_dropped_and_reported() {
        // 10 GB in 60 s on a 1 Gb/s link (max 7.5 GB).
        let (p, c) = pair(
            60,
            iface(Some(GBIT), c64(0)),
            iface(Some(GBIT), c64(10_000_000_000)),
        );
        let r = compute(&p, &c);
        assert_eq!(only(&r).in_bits_per_sec, None);
        assert_eq!(r.problems.len(), 1, "{r:?}");
        assert!(
            r.problems[0].starts_with("ifIndex 1 (Gi0/1): in octets"),
            "{r:?}"
        );
    }

    #[test]
    fn a_rate_slightly_above_the_speed_is_kept_as_timing_jitter() {
        // 105% of line rate.
        let (p, c) = pair(
            100,
            iface(Some(GBIT), c64(0)),
            iface(Some(GBIT), c64(13_125_000_000)),
        );
        let r = compute(&p, &c);
        assert!(close(only(&r).in_utilisation_pct, 105.0), "{r:?}");
        assert!(r.problems.is_empty());
    }

    #[test]
    fn a_new_interface_has_no_rates_yet() {
        let (p, mut c) = pair(60, iface(Some(GBIT), c64(0)), iface(Some(GBIT), c64(10)));
        c.interfaces.insert(7, iface(Some(GBIT), c64(10)));
        let r = compute(&p, &c);
        assert_eq!(r.interfaces.len(), 2);
        assert_eq!(r.interfaces[1].if_index, 7);
        assert_eq!(r.interfaces[1].rebaselined, Some(Rebaseline::NewInterface));
    }

    #[test]
    fn packet_error_and_discard_rates() {
        let counters = |n: u64| InterfaceCounters {
            in_unicast_pkts: c64(100 * n),
            in_multicast_pkts: c64(10 * n),
            in_broadcast_pkts: c64(n),
            out_unicast_pkts: c64(50 * n),
            in_errors: c32(2 * n),
            out_discards: c32(3 * n),
            ..InterfaceCounters::default()
        };
        let mut before = iface(Some(GBIT), None);
        before.counters = counters(1);
        let mut now = iface(Some(GBIT), None);
        now.counters = counters(11);
        let (p, c) = pair(10, before, now);
        let i = only(&compute(&p, &c)).clone();
        assert!(close(i.in_unicast_pkts_per_sec, 100.0));
        assert!(close(i.in_pkts_per_sec, 111.0));
        assert!(close(i.out_unicast_pkts_per_sec, 50.0));
        assert_eq!(
            i.out_pkts_per_sec, None,
            "multicast and broadcast out missing"
        );
        assert!(close(i.in_errors_per_sec, 2.0));
        assert!(close(i.out_discards_per_sec, 3.0));
        assert_eq!(i.out_errors_per_sec, None);
    }

    #[test]
    fn delta_rules() {
        let w32 = |v| c32(v).unwrap();
        let w64 = |v| c64(v).unwrap();
        assert_eq!(delta(w64(5), w64(9), None), Some(4));
        assert_eq!(delta(w64(9), w64(5), Some(1e12)), None);
        assert_eq!(delta(w32(u64::from(u32::MAX)), w32(0), Some(1.0)), Some(1));
        assert_eq!(delta(w32(u64::from(u32::MAX)), w32(5), Some(1.0)), None);
        assert_eq!(delta(w32(5), w64(9), Some(1e12)), None);
    }
}
