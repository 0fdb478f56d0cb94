//! Small statistics helpers shared by the benchmarks: medians over runs and percentiles of
//! latency samples.

pub fn median_u64(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    match values.len() {
        0 => 0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2,
    }
}

pub fn median_i64(mut values: Vec<i64>) -> i64 {
    values.sort_unstable();
    match values.len() {
        0 => 0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2,
    }
}

pub fn median_f64(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The nearest-rank `p`-th percentile (0 < p <= 100) of an ascending slice: the smallest value
/// with at least p % of the samples at or below it. 0 for an empty slice.
pub fn percentile_sorted(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len();
    let rank = (p.clamp(0.0, 100.0) / 100.0 * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// p50, p90, p99 and max of latency samples, in the samples' unit. Sorts in place.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Latency {
    pub p50: u32,
    pub p90: u32,
    pub p99: u32,
    pub max: u32,
}

impl Latency {
    pub fn of(samples: &mut [u32]) -> Latency {
        samples.sort_unstable();
        Latency {
            p50: percentile_sorted(samples, 50.0),
            p90: percentile_sorted(samples, 90.0),
            p99: percentile_sorted(samples, 99.0),
            max: samples.last().copied().unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median_u64(vec![5, 1, 3]), 3);
        assert_eq!(median_u64(vec![4, 1, 3, 2]), 2);
        assert_eq!(median_u64(vec![]), 0);
        assert_eq!(median_f64(vec![0.3, 0.1, 0.2]), 0.2);
        assert_eq!(median_f64(vec![1.0, 2.0]), 1.5);
        assert_eq!(median_i64(vec![-4, 8, 0]), 0);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile_sorted(&sorted, 50.0), 50);
        assert_eq!(percentile_sorted(&sorted, 99.0), 99);
        assert_eq!(percentile_sorted(&sorted, 100.0), 100);
        assert_eq!(percentile_sorted(&sorted, 0.0), 1);
        assert_eq!(percentile_sorted(&[7], 99.0), 7);
        assert_eq!(percentile_sorted(&[], 50.0), 0);
        // Of 10 samples, p99 is the largest: nine samples are only 90 %.
        let ten: Vec<u32> = (1..=10).collect();
        assert_eq!(percentile_sorted(&ten, 99.0), 10);
        assert_eq!(percentile_sorted(&ten, 50.0), 5);
    }

    #[test]
    fn latency_sorts_and_summarises() {
        let mut samples = vec![900, 100, 300, 200, 50_000, 400, 500, 600, 700, 800];
        let latency = Latency::of(&mut samples);
        assert_eq!(
            latency,
            Latency {
                p50: 500,
                p90: 900,
                p99: 50_000,
                max: 50_000
            }
        );
        assert_eq!(Latency::of(&mut []), Latency::default());
    }
}
