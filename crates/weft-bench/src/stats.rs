//! Percentiles and summaries. A transaction that was never seen included
//! counts as an infinitely late one: it sits above every percentile it
//! reaches, so a p99 exists only if 99 % of transactions made it.

use serde::Serialize;

/// Nearest-rank percentile `q` (0 < q ≤ 1) of `sorted` ascending values
/// plus `missing` values above all of them; `None` when the rank falls on a
/// missing value or there is nothing.
pub fn percentile(sorted: &[f64], missing: usize, q: f64) -> Option<f64> {
    let total = sorted.len() + missing;
    if total == 0 || !(q > 0.0 && q <= 1.0) {
        return None;
    }
    let rank = (q * total as f64).ceil() as usize;
    sorted.get(rank.max(1) - 1).copied()
}

/// Latencies of a set of transactions, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Transactions measured (seen and missing).
    pub count: usize,
    /// Never seen by the end of the step: above every percentile.
    pub missing: usize,
    /// Median; `null` if more than half are missing.
    pub p50_ms: Option<f64>,
    /// 90th percentile.
    pub p90_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// Slowest seen.
    pub max_ms: Option<f64>,
    /// Mean of those seen.
    pub mean_ms: Option<f64>,
}

impl LatencySummary {
    /// Summarizes latencies in seconds; `None` entries are missing.
    pub fn from_seconds(latencies: impl IntoIterator<Item = Option<f64>>) -> Self {
        let mut seen = Vec::new();
        let mut missing = 0;
        for l in latencies {
            match l {
                Some(s) if s.is_finite() => seen.push(s.max(0.0) * 1000.0),
                _ => missing += 1,
            }
        }
        seen.sort_by(f64::total_cmp);
        let mean = (!seen.is_empty()).then(|| seen.iter().sum::<f64>() / seen.len() as f64);
        LatencySummary {
            count: seen.len() + missing,
            missing,
            p50_ms: percentile(&seen, missing, 0.50),
            p90_ms: percentile(&seen, missing, 0.90),
            p99_ms: percentile(&seen, missing, 0.99),
            max_ms: seen.last().copied(),
            mean_ms: mean,
        }
    }
}

/// Mean of `values`; `None` when empty.
pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Median of `values`; `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    percentile(&v, 0, 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0, 0.5), Some(50.0));
        assert_eq!(percentile(&v, 0, 0.9), Some(90.0));
        assert_eq!(percentile(&v, 0, 0.99), Some(99.0));
        assert_eq!(percentile(&v, 0, 1.0), Some(100.0));
        assert_eq!(percentile(&[7.0], 0, 0.01), Some(7.0));
        assert_eq!(percentile(&[], 0, 0.5), None);
        assert_eq!(percentile(&v, 0, 0.0), None);
    }

    #[test]
    fn missing_values_sit_above_every_percentile() {
        let v: Vec<f64> = (1..=99).map(f64::from).collect();
        // 99 seen + 1 missing: p99 is the 99th value, p100 is missing.
        assert_eq!(percentile(&v, 1, 0.99), Some(99.0));
        assert_eq!(percentile(&v, 1, 1.0), None);
        // 98 seen + 2 missing: the p99 rank lands on a missing one.
        assert_eq!(percentile(&v[..98], 2, 0.99), None);
        assert_eq!(percentile(&[], 3, 0.5), None);
    }

    #[test]
    fn summaries_in_milliseconds() {
        let s = LatencySummary::from_seconds(
            (1..=100).map(|i| Some(f64::from(i) / 1000.0)).chain([None]),
        );
        assert_eq!(s.count, 101);
        assert_eq!(s.missing, 1);
        assert_eq!(s.p50_ms, Some(51.0));
        assert_eq!(s.p99_ms, Some(100.0));
        assert_eq!(s.max_ms, Some(100.0));
        assert!((s.mean_ms.unwrap() - 50.5).abs() < 1e-9);
        let empty = LatencySummary::from_seconds([]);
        assert_eq!((empty.count, empty.p50_ms, empty.mean_ms), (0, None, None));
        let lost = LatencySummary::from_seconds([None, None, Some(f64::NAN)]);
        assert_eq!((lost.missing, lost.p50_ms), (3, None));
    }

    #[test]
    fn mean_and_median() {
        assert_eq!(mean(&[1.0, 2.0, 6.0]), Some(3.0));
        assert_eq!(median(&[6.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(mean(&[]), None);
        assert_eq!(median(&[]), None);
    }
}
