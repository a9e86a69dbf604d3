//! Open-loop pacing: transaction `i` of a step at rate `r` is due `i / r`
//! seconds after the step starts, whatever happened to the ones before
//! it. Each node's due transactions go out as JSON-RPC batches that span
//! a few milliseconds, so the generator stays cheap at high rates.

use std::time::Duration;

/// Longest a transaction may be sent ahead of its due time, to share a
/// request with the ones after it.
pub const MAX_BATCH_SPAN: Duration = Duration::from_millis(5);
/// Most requests in one JSON-RPC batch (CometBFT's `max_request_batch_size`).
pub const MAX_BATCH_ITEMS: usize = 10;
/// Most bytes in one request body, under CometBFT's `max_body_bytes` (1 MB).
pub const MAX_BATCH_BODY: usize = 900_000;

/// When transaction `i` is due, counted from the step's start.
pub fn due(i: usize, rate: f64) -> Duration {
    if rate <= 0.0 || !rate.is_finite() {
        return Duration::ZERO;
    }
    Duration::from_secs_f64(i as f64 / rate)
}

/// How many transactions a step of `duration` at `rate` offers.
pub fn tx_count(rate: f64, duration: Duration) -> usize {
    if rate <= 0.0 || !rate.is_finite() {
        return 0;
    }
    (rate * duration.as_secs_f64()).round().max(1.0) as usize
}

/// One request to one node: the transactions it carries, sent when the
/// first of them is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// When to send, from the step's start.
    pub due: Duration,
    /// Indexes of the transactions, in due order.
    pub txs: Vec<u32>,
}

/// Limits of a batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// Most transactions.
    pub max_items: usize,
    /// Most bytes of JSON.
    pub max_body: usize,
    /// Longest span between the first and last due time.
    pub max_span: Duration,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_items: MAX_BATCH_ITEMS,
            max_body: MAX_BATCH_BODY,
            max_span: MAX_BATCH_SPAN,
        }
    }
}

/// Groups one node's transactions, given in due order as `(index, due,
/// request bytes)`, into batches within `limits`. Every transaction lands in
/// exactly one batch, in order; one too big for `max_body` goes alone.
pub fn plan_batches(txs: &[(u32, Duration, usize)], limits: BatchLimits) -> Vec<Batch> {
    let mut batches: Vec<Batch> = Vec::new();
    let mut body = 0usize;
    for &(index, at, bytes) in txs {
        // `[`, `]` and one comma per item.
        let cost = bytes + 1;
        let fits = batches.last().is_some_and(|b| {
            b.txs.len() < limits.max_items
                && body + cost <= limits.max_body
                && at.saturating_sub(b.due) <= limits.max_span
        });
        match batches.last_mut() {
            Some(b) if fits => {
                b.txs.push(index);
                body += cost;
            }
            _ => {
                batches.push(Batch {
                    due: at,
                    txs: vec![index],
                });
                body = cost + 1;
            }
        }
    }
    batches
}

/// The JSON-RPC batch body for `requests`.
pub fn batch_body<'a>(requests: impl IntoIterator<Item = &'a str>) -> String {
    let mut body = String::from("[");
    for (i, r) in requests.into_iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(r);
    }
    body.push(']');
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_are_evenly_spaced_at_the_rate() {
        assert_eq!(due(0, 100.0), Duration::ZERO);
        assert_eq!(due(1, 100.0), Duration::from_millis(10));
        assert_eq!(due(250, 100.0), Duration::from_millis(2500));
        assert_eq!(due(5, 0.0), Duration::ZERO);
        assert_eq!(tx_count(100.0, Duration::from_secs(8)), 800);
        assert_eq!(tx_count(0.1, Duration::from_secs(1)), 1);
        assert_eq!(tx_count(0.0, Duration::from_secs(1)), 0);
    }

    fn txs(rate: f64, n: u32, bytes: usize) -> Vec<(u32, Duration, usize)> {
        (0..n).map(|i| (i, due(i as usize, rate), bytes)).collect()
    }

    #[test]
    fn a_slow_rate_sends_one_transaction_per_request_on_time() {
        let b = plan_batches(&txs(10.0, 5, 400), BatchLimits::default());
        assert_eq!(b.len(), 5);
        for (i, batch) in b.iter().enumerate() {
            assert_eq!(batch.txs, vec![i as u32]);
            assert_eq!(batch.due, due(i, 10.0));
        }
    }

    #[test]
    fn a_fast_rate_fills_batches_up_to_the_item_limit() {
        // 10,000 tx/s: 50 due within each 5 ms, so batches are full.
        let b = plan_batches(&txs(10_000.0, 95, 400), BatchLimits::default());
        assert_eq!(b.len(), 10);
        assert!(b[..9].iter().all(|b| b.txs.len() == 10));
        assert_eq!(b[9].txs.len(), 5);
        let flat: Vec<u32> = b.iter().flat_map(|b| b.txs.clone()).collect();
        assert_eq!(flat, (0..95).collect::<Vec<_>>());
        for batch in &b {
            let first = due(batch.txs[0] as usize, 10_000.0);
            assert_eq!(batch.due, first, "sent when its first tx is due");
            let last = due(*batch.txs.last().unwrap() as usize, 10_000.0);
            assert!(last - first <= MAX_BATCH_SPAN);
        }
    }

    #[test]
    fn the_span_and_body_limits_split_batches() {
        // 1,000 tx/s: 1 ms apart, at most 6 within 5 ms.
        let b = plan_batches(&txs(1_000.0, 12, 400), BatchLimits::default());
        assert_eq!(
            b.iter().map(|b| b.txs.len()).collect::<Vec<_>>(),
            vec![6, 6]
        );
        // 350 KB requests: two fit under 900 KB, three do not.
        let b = plan_batches(&txs(10_000.0, 5, 350_000), BatchLimits::default());
        assert_eq!(
            b.iter().map(|b| b.txs.len()).collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
        // A request bigger than the limit still goes, alone.
        let b = plan_batches(&txs(10_000.0, 2, 2_000_000), BatchLimits::default());
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn batch_bodies_are_json_arrays() {
        assert_eq!(batch_body(["{\"a\":1}"]), "[{\"a\":1}]");
        let body = batch_body(["{\"a\":1}", "{\"b\":2}"]);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
    }
}
