//! Where the sequencer's time goes: the ABCI handlers' duration histograms
//! from each node's `GET /metrics` (Prometheus text), read before and after
//! a step; the difference of `_sum` and `_count` is the time spent and the
//! calls made during the step.

use std::collections::BTreeMap;

use serde::Serialize;

/// The handlers, as `(label, metric, label filter)`.
pub const HANDLERS: [(&str, &str, &str); 6] = [
    ("CheckTx (new)", "weft_check_tx_seconds", "kind=\"new\""),
    (
        "CheckTx (recheck)",
        "weft_check_tx_seconds",
        "kind=\"recheck\"",
    ),
    ("PrepareProposal", "weft_prepare_proposal_seconds", ""),
    ("ProcessProposal", "weft_process_proposal_seconds", ""),
    ("FinalizeBlock", "weft_finalize_block_seconds", ""),
    ("Commit", "weft_commit_seconds", ""),
];

/// `(sum, count)` of each handler in one scrape.
pub type Scrape = BTreeMap<&'static str, (f64, f64)>;

/// Reads the handlers' `_sum` and `_count` from Prometheus text.
pub fn parse(text: &str) -> Scrape {
    let mut out = Scrape::new();
    for (label, metric, filter) in HANDLERS {
        let value = |suffix: &str| -> Option<f64> {
            let name = format!("{metric}{suffix}");
            text.lines().find_map(|line| {
                let rest = line.strip_prefix(&name)?;
                let (labels, value) = match rest.strip_prefix('{') {
                    Some(r) => {
                        let end = r.find('}')?;
                        (&r[..end], &r[end + 1..])
                    }
                    None if rest.starts_with(' ') => ("", rest),
                    None => return None,
                };
                if !filter.is_empty() && !labels.split(',').any(|l| l == filter) {
                    return None;
                }
                value.split_whitespace().next()?.parse().ok()
            })
        };
        if let (Some(sum), Some(count)) = (value("_sum"), value("_count")) {
            out.insert(label, (sum, count));
        }
    }
    out
}

/// One handler's share of a step, summed over every node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HandlerUsage {
    /// e.g. `CheckTx (new)`.
    pub handler: String,
    /// Calls during the step.
    pub calls: u64,
    /// Seconds spent in it.
    pub seconds: f64,
    /// Mean per call, microseconds.
    pub mean_us: f64,
    /// Cores it kept busy on average (seconds / wall seconds).
    pub cores: f64,
}

/// Per-handler usage between scrapes `before` and `after` of the same
/// nodes (summed over nodes) over `wall_seconds`.
pub fn usage(before: &[Scrape], after: &[Scrape], wall_seconds: f64) -> Vec<HandlerUsage> {
    HANDLERS
        .iter()
        .filter_map(|(label, _, _)| {
            let mut seconds = 0.0;
            let mut calls = 0.0;
            let mut seen = false;
            for (b, a) in before.iter().zip(after) {
                if let Some((sum, count)) = a.get(label) {
                    let (sum0, count0) = b.get(label).copied().unwrap_or((0.0, 0.0));
                    seconds += (sum - sum0).max(0.0);
                    calls += (count - count0).max(0.0);
                    seen = true;
                }
            }
            seen.then(|| HandlerUsage {
                handler: (*label).into(),
                calls: calls as u64,
                seconds,
                mean_us: if calls > 0.0 {
                    seconds / calls * 1e6
                } else {
                    0.0
                },
                cores: if wall_seconds > 0.0 {
                    seconds / wall_seconds
                } else {
                    0.0
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# TYPE weft_check_tx_seconds histogram
weft_check_tx_seconds_bucket{kind="new",le="0.0001"} 90
weft_check_tx_seconds_sum{kind="new"} 0.5
weft_check_tx_seconds_count{kind="new"} 100
weft_check_tx_seconds_sum{kind="recheck"} 0.01
weft_check_tx_seconds_count{kind="recheck"} 50
weft_prepare_proposal_seconds_sum 0.2
weft_prepare_proposal_seconds_count 4
weft_prepare_proposal_seconds_summary_sum 99
weft_commit_seconds_sum 0.4
weft_commit_seconds_count 4
"#;

    #[test]
    fn sums_and_counts_by_handler_and_label() {
        let s = parse(TEXT);
        assert_eq!(s["CheckTx (new)"], (0.5, 100.0));
        assert_eq!(s["CheckTx (recheck)"], (0.01, 50.0));
        assert_eq!(s["PrepareProposal"], (0.2, 4.0));
        assert_eq!(s["Commit"], (0.4, 4.0));
        assert!(!s.contains_key("FinalizeBlock"));
        assert!(parse("").is_empty());
    }

    #[test]
    fn usage_is_the_difference_summed_over_nodes() {
        let before = vec![parse(TEXT), Scrape::new()];
        let mut later = parse(TEXT);
        later.insert("CheckTx (new)", (1.5, 1100.0));
        let mut other = Scrape::new();
        other.insert("CheckTx (new)", (1.0, 1000.0));
        let u = usage(&before, &[later, other], 4.0);
        let new = u.iter().find(|h| h.handler == "CheckTx (new)").unwrap();
        assert_eq!(new.calls, 2000);
        assert!((new.seconds - 2.0).abs() < 1e-9);
        assert!((new.mean_us - 1000.0).abs() < 1e-6);
        assert!((new.cores - 0.5).abs() < 1e-9);
        let commit = u.iter().find(|h| h.handler == "Commit").unwrap();
        assert_eq!((commit.calls, commit.seconds), (0, 0.0));
        assert!(u.iter().all(|h| h.handler != "FinalizeBlock"));
    }
}
