//! How long payments take to reach the CRM, summarised: nearest-rank percentiles, so every
//! figure is a measured value. The report and the dashboard both read it this way.

use serde::Serialize;

/// A summary of durations in ms (payment → CRM).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: Option<i64>,
    pub p95_ms: Option<i64>,
    pub p99_ms: Option<i64>,
    pub max_ms: Option<i64>,
}

impl Latency {
    /// The summary of `ms`, in any order.
    pub fn of(mut ms: Vec<i64>) -> Self {
        ms.sort_unstable();
        Self {
            count: ms.len() as u64,
            p50_ms: percentile(&ms, 50),
            p95_ms: percentile(&ms, 95),
            p99_ms: percentile(&ms, 99),
            max_ms: ms.last().copied(),
        }
    }
}

/// The nearest-rank percentile of sorted values: the smallest value with at least `p`% of
/// the values at or below it.
pub fn percentile(sorted: &[i64], p: u32) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len() as u64;
    // ceil(p/100 × n), at least 1.
    let rank = (u64::from(p) * n).div_ceil(100).max(1);
    let index = usize::try_from(rank - 1).unwrap_or(usize::MAX);
    sorted.get(index.min(sorted.len() - 1)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_are_measured_values() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 95), Some(95));
        assert_eq!(percentile(&v, 99), Some(99));
        assert_eq!(percentile(&[7], 99), Some(7));
        assert_eq!(percentile(&[7], 95), Some(7));
        assert_eq!(percentile(&[1, 2, 3], 50), Some(2));
        assert_eq!(percentile(&[1, 2, 3, 4], 50), Some(2));
        assert_eq!(percentile(&[1, 2, 3, 4], 51), Some(3));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn a_summary_sorts_its_values() {
        let l = Latency::of(vec![900, 300]);
        assert_eq!(
            l,
            Latency {
                count: 2,
                p50_ms: Some(300),
                p95_ms: Some(900),
                p99_ms: Some(900),
                max_ms: Some(900)
            }
        );
    }
}
