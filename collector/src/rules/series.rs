//! The recent samples of one (CI, instance, metric), kept only when a rule aggregates over a
//! window or computes a rate, and the aggregations themselves.
//!
//! Memory is bounded twice: by time (samples older than the longest window any rule on the
//! metric uses are dropped, keeping one just before the window so a rate covers all of it)
//! and by count ([`MAX_SERIES_SAMPLES`]; a window holding more samples than that is covered
//! only by its newest ones).

use std::collections::VecDeque;

use super::config::{Aggregation, Rule};

/// The most samples kept per series: a 10-minute window of 10-second samples is 60, and a
/// day-long window at 15-minute polls is 96.
pub const MAX_SERIES_SAMPLES: usize = 120;

/// What the rules on one metric need kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryNeed {
    /// The longest window, in milliseconds.
    pub window_ms: i64,
    /// Samples kept whatever their age: 2 when a rule computes a rate without a window (the
    /// rate between the last two samples), else 1.
    pub min_samples: usize,
}

impl HistoryNeed {
    /// What `rules` need, `None` when every one compares the newest sample alone.
    pub fn of<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> Option<HistoryNeed> {
        let mut need: Option<HistoryNeed> = None;
        for rule in rules {
            if rule.aggregation == Aggregation::Last {
                continue;
            }
            let this = HistoryNeed {
                window_ms: window_ms(rule),
                min_samples: if rule.aggregation == Aggregation::Rate {
                    2
                } else {
                    1
                },
            };
            need = Some(match need {
                None => this,
                Some(have) => HistoryNeed {
                    window_ms: have.window_ms.max(this.window_ms),
                    min_samples: have.min_samples.max(this.min_samples),
                },
            });
        }
        need
    }
}

fn window_ms(rule: &Rule) -> i64 {
    i64::try_from(rule.window_secs)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000)
}

/// The samples of one series, oldest first.
#[derive(Debug, Clone, Default)]
pub struct Series {
    samples: VecDeque<(i64, f64)>,
}

impl Series {
    pub fn push(&mut self, at_ms: i64, value: f64, need: HistoryNeed) {
        self.samples.push_back((at_ms, value));
        while self.samples.len() > MAX_SERIES_SAMPLES {
            self.samples.pop_front();
        }
        let cutoff = at_ms - need.window_ms;
        // Keep one sample at or before the cutoff: the start of the first interval in the window.
        while self.samples.len() > need.min_samples
            && self.samples.get(1).is_some_and(|&(at, _)| at <= cutoff)
        {
            self.samples.pop_front();
        }
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// When the newest sample arrived.
    pub fn newest_ms(&self) -> Option<i64> {
        self.samples.back().map(|&(at, _)| at)
    }

    /// The value `rule` compares at `now_ms`; `None` when there is not enough data (a rate
    /// needs two samples over a positive time without a reset in between).
    pub fn aggregate(&self, rule: &Rule, now_ms: i64) -> Option<f64> {
        let cutoff = now_ms - window_ms(rule);
        let in_window = || {
            self.samples
                .iter()
                .filter(move |&&(at, _)| at > cutoff)
                .map(|&(_, v)| v)
        };
        match rule.aggregation {
            Aggregation::Last => self.samples.back().map(|&(_, v)| v),
            Aggregation::Min => in_window().reduce(f64::min),
            Aggregation::Max => in_window().reduce(f64::max),
            Aggregation::Avg => {
                let (sum, count) = in_window().fold((0.0, 0u32), |(sum, n), v| (sum + v, n + 1));
                (count > 0).then(|| sum / f64::from(count))
            }
            Aggregation::Rate => {
                // Without a window, the last interval; with one, every interval ending in it.
                let last_pair = self.samples.len().saturating_sub(2);
                let whole_window = rule.window_secs > 0;
                let pairs = self
                    .samples
                    .iter()
                    .zip(self.samples.iter().skip(1))
                    .enumerate()
                    .filter(|&(index, (_, &(at, _)))| {
                        if whole_window {
                            at > cutoff
                        } else {
                            index >= last_pair
                        }
                    })
                    .map(|(_, pair)| pair);
                let (mut increase, mut elapsed_ms) = (0.0, 0i64);
                for (&(at_a, a), &(at_b, b)) in pairs {
                    // A decrease is a counter reset (the device restarted); the interval
                    // across it says nothing about the rate, so it is left out entirely.
                    if b >= a && at_b > at_a {
                        increase += b - a;
                        elapsed_ms += at_b - at_a;
                    }
                }
                (elapsed_ms > 0).then(|| increase * 1000.0 / elapsed_ms as f64)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::RuleSet;

    fn rule(aggregation: &str, window_secs: u64, metric: &str) -> Rule {
        let window = if window_secs > 0 {
            format!("window_secs = {window_secs}")
        } else {
            String::new()
        };
        let text = format!(
            "[[rule]]\nname = \"r\"\nmetric = \"{metric}\"\naggregation = \"{aggregation}\"\n{window}\nop = \">=\"\nwarning = 1\n"
        );
        RuleSet::parse(&text, "t.toml").unwrap().rules()[0].clone()
    }

    fn series(rule: &Rule, samples: &[(i64, f64)]) -> Series {
        let need = HistoryNeed::of([rule]).unwrap();
        let mut series = Series::default();
        for &(at, v) in samples {
            series.push(at, v, need);
        }
        series
    }

    #[test]
    fn avg_min_max_cover_only_the_window() {
        let avg = rule("avg", 60, "cpu.usage_pct");
        let samples = [(0, 100.0), (30_000, 10.0), (60_000, 20.0), (90_000, 30.0)];
        let s = series(&avg, &samples);
        // At 90 s the window is (30 s, 90 s]: 20 and 30.
        assert_eq!(s.aggregate(&avg, 90_000), Some(25.0));
        assert_eq!(
            s.aggregate(&rule("min", 60, "cpu.usage_pct"), 90_000),
            Some(20.0)
        );
        assert_eq!(
            s.aggregate(&rule("max", 60, "cpu.usage_pct"), 90_000),
            Some(30.0)
        );
    }

    #[test]
    fn series_keeps_one_sample_before_the_window_and_no_more() {
        let avg = rule("avg", 60, "cpu.usage_pct");
        let samples: Vec<_> = (0..20).map(|i| (i * 10_000, 1.0)).collect();
        let s = series(&avg, &samples);
        // Newest at 190 s, window (130 s, 190 s]: 6 samples plus the one at 130 s.
        assert_eq!(s.len(), 7);
    }

    #[test]
    fn series_is_bounded_in_count() {
        let avg = rule("avg", 86_400, "cpu.usage_pct");
        let samples: Vec<_> = (0..1000).map(|i| (i * 1000, 1.0)).collect();
        assert_eq!(series(&avg, &samples).len(), MAX_SERIES_SAMPLES);
    }

    #[test]
    fn rate_is_per_second_increase_over_the_window() {
        let rate = rule("rate", 60, "interface.errors_total");
        let s = series(
            &rate,
            &[
                (0, 100.0),
                (30_000, 130.0),
                (60_000, 160.0),
                (90_000, 220.0),
            ],
        );
        // Window (30 s, 90 s]: pairs ending at 60 s and 90 s: +90 over 60 s.
        assert_eq!(s.aggregate(&rate, 90_000), Some(1.5));
    }

    #[test]
    fn rate_without_window_uses_the_last_two_samples() {
        let rate = rule("rate", 0, "interface.errors_total");
        let s = series(&rate, &[(0, 0.0), (10_000, 1000.0), (20_000, 1010.0)]);
        assert_eq!(s.len(), 2);
        assert_eq!(s.aggregate(&rate, 20_000), Some(1.0));
    }

    #[test]
    fn rate_skips_a_counter_reset() {
        let rate = rule("rate", 300, "interface.errors_total");
        // Device restarted between 20 s and 30 s: 500 -> 4.
        let s = series(
            &rate,
            &[
                (0, 480.0),
                (10_000, 490.0),
                (20_000, 500.0),
                (30_000, 4.0),
                (40_000, 14.0),
            ],
        );
        // Intervals kept: +10, +10, +10 over 30 s.
        assert_eq!(s.aggregate(&rate, 40_000), Some(1.0));
    }

    #[test]
    fn rate_needs_two_samples() {
        let rate = rule("rate", 0, "interface.errors_total");
        assert_eq!(series(&rate, &[(0, 5.0)]).aggregate(&rate, 0), None);
        let reset_only = series(&rate, &[(0, 5.0), (10_000, 1.0)]);
        assert_eq!(reset_only.aggregate(&rate, 10_000), None);
    }

    #[test]
    fn last_rules_need_no_history() {
        let last = rule("last", 0, "cpu.usage_pct");
        assert_eq!(HistoryNeed::of([&last]), None);
        let avg = rule("avg", 60, "cpu.usage_pct");
        let rate = rule("rate", 0, "interface.errors_total");
        assert_eq!(
            HistoryNeed::of([&last, &avg, &rate]),
            Some(HistoryNeed {
                window_ms: 60_000,
                min_samples: 2
            })
        );
    }
}
