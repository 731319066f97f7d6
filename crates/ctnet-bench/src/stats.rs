//! Percentiles of measured durations.

use std::time::Duration;

/// The `p`-th percentile (0 < p ≤ 100) by the nearest-rank method: the smallest sample
/// with at least p% of the samples at or below it. No interpolation, so every figure
/// printed is a time that was really measured.
pub fn percentile(samples: &[Duration], p: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// p50 and p99 of a set of samples.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Median.
    pub p50: Duration,
    /// 99th percentile (the maximum when there are fewer than 100 samples).
    pub p99: Duration,
}

impl Summary {
    /// Summarises samples; None when there are none.
    pub fn of(samples: &[Duration]) -> Option<Summary> {
        Some(Summary {
            p50: percentile(samples, 50.0)?,
            p99: percentile(samples, 99.0)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|m| Duration::from_millis(*m)).collect()
    }

    #[test]
    fn nearest_rank() {
        let s = ms(&[5, 1, 4, 2, 3]);
        assert_eq!(percentile(&s, 50.0), Some(Duration::from_millis(3)));
        assert_eq!(percentile(&s, 99.0), Some(Duration::from_millis(5)));
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(
            percentile(&ms(&hundred), 99.0),
            Some(Duration::from_millis(99))
        );
        assert_eq!(percentile(&[], 50.0), None);
    }
}
