//! The benchmark scenarios: network size, payload size and how many rollup
//! payloads each transaction batches, named like `1v-200b-batched`.

use serde::Serialize;
use weft_core::{transaction::MAX_ACTIONS, ChainParams};

use crate::{BenchError, Result};

/// Smallest payload: room for the id every payload starts with.
pub const MIN_PAYLOAD_BYTES: usize = crate::workload::PAYLOAD_ID_LEN;

/// One benchmark scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    /// `<validators>v-<payload>-<single|batched>`.
    pub name: String,
    /// Validators in the network (all on loopback).
    pub validators: usize,
    /// Bytes of each rollup payload.
    pub payload_bytes: usize,
    /// `SubmitRollupData` actions per transaction.
    pub payloads_per_tx: usize,
    /// Rollups the payloads are spread over, round robin.
    pub rollups: usize,
    /// Where the saturation search starts, in transactions per second.
    pub start_rate: f64,
}

/// The payload sizes the catalog covers, with their names.
const PAYLOADS: [(&str, usize); 2] = [("200b", 200), ("10k", 10 * 1024)];

impl Scenario {
    /// Every scenario of the issue: 1 and 4 validators, 200-byte and
    /// 10 KiB payloads, one payload per transaction and batched.
    pub fn catalog() -> Vec<Scenario> {
        let mut all = Vec::new();
        for validators in [1, 4] {
            for (label, payload_bytes) in PAYLOADS {
                for batched in [false, true] {
                    let payloads_per_tx = if batched {
                        batch_size(payload_bytes, &ChainParams::default())
                    } else {
                        1
                    };
                    let name = format!(
                        "{validators}v-{label}-{}",
                        if batched { "batched" } else { "single" }
                    );
                    all.push(Scenario {
                        name,
                        validators,
                        payload_bytes,
                        payloads_per_tx,
                        rollups: 4,
                        start_rate: start_rate(validators, payload_bytes * payloads_per_tx),
                    });
                }
            }
        }
        all
    }

    /// The catalog scenario called `name`.
    pub fn named(name: &str) -> Result<Scenario> {
        Self::catalog()
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| {
                let names: Vec<String> = Self::catalog().into_iter().map(|s| s.name).collect();
                BenchError::Invalid(format!("no scenario `{name}`; known: {}", names.join(", ")))
            })
    }

    /// Refuses what a network would refuse: payloads too small to carry
    /// their id, too many actions, more rollup data per transaction than
    /// the chain allows.
    pub fn validate(&self, params: &ChainParams) -> Result<()> {
        let fail = |m: String| Err(BenchError::Invalid(format!("{}: {m}", self.name)));
        if self.validators == 0 {
            return fail("at least one validator".into());
        }
        if self.payload_bytes < MIN_PAYLOAD_BYTES {
            return fail(format!("payloads need at least {MIN_PAYLOAD_BYTES} bytes"));
        }
        if self.payloads_per_tx == 0 || self.payloads_per_tx > MAX_ACTIONS {
            return fail(format!("1 to {MAX_ACTIONS} payloads per transaction"));
        }
        if (self.payload_bytes * self.payloads_per_tx) as u64
            > u64::from(params.max_rollup_data_per_tx)
        {
            return fail(format!(
                "{} × {} bytes exceed max_rollup_data_per_tx ({})",
                self.payloads_per_tx, self.payload_bytes, params.max_rollup_data_per_tx
            ));
        }
        if self.rollups == 0 {
            return fail("at least one rollup".into());
        }
        if !(self.start_rate.is_finite() && self.start_rate > 0.0) {
            return fail("the start rate must be positive".into());
        }
        Ok(())
    }
}

/// Payloads per batched transaction: as many as one transaction may carry
/// (64 actions) within the chain's rollup data limit per transaction.
pub fn batch_size(payload_bytes: usize, params: &ChainParams) -> usize {
    let by_data = params.max_rollup_data_per_tx as usize / payload_bytes.max(1);
    by_data.clamp(1, MAX_ACTIONS)
}

/// A first rate for the search, a little under what this machine was seen
/// to sustain (the search doubles from there): about 2.5 MB/s of rollup
/// data on one validator and 0.8 MB/s on four (every node checks every
/// transaction), at most 2,000 and 500 transactions per second.
fn start_rate(validators: usize, bytes_per_tx: usize) -> f64 {
    let (budget, cap) = if validators > 1 {
        (800_000.0, 500.0)
    } else {
        (2_500_000.0, 2_000.0)
    };
    (budget / bytes_per_tx as f64).clamp(2.0, cap).round()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_covers_every_combination_once() {
        let all = Scenario::catalog();
        assert_eq!(all.len(), 8);
        let names: std::collections::BTreeSet<_> = all.iter().map(|s| s.name.clone()).collect();
        assert_eq!(names.len(), 8);
        let s = Scenario::named("1v-200b-batched").unwrap();
        assert_eq!(
            (s.validators, s.payload_bytes, s.payloads_per_tx),
            (1, 200, 64)
        );
        let s = Scenario::named("4v-10k-batched").unwrap();
        // 25 × 10 KiB fit the default 256 KiB per transaction; 26 do not.
        assert_eq!(
            (s.validators, s.payload_bytes, s.payloads_per_tx),
            (4, 10240, 25)
        );
        let s = Scenario::named("4v-10k-single").unwrap();
        assert_eq!(s.payloads_per_tx, 1);
        for s in &all {
            s.validate(&ChainParams::default()).unwrap();
        }
        assert!(Scenario::named("2v-200b-single").is_err());
    }

    #[test]
    fn batch_size_respects_actions_and_the_data_limit() {
        let params = ChainParams::default();
        assert_eq!(batch_size(200, &params), 64);
        assert_eq!(batch_size(10 * 1024, &params), 25);
        assert_eq!(batch_size(1 << 20, &params), 1);
    }

    #[test]
    fn impossible_scenarios_are_refused() {
        let params = ChainParams::default();
        let ok = Scenario::named("1v-200b-single").unwrap();
        for bad in [
            Scenario {
                payload_bytes: 8,
                ..ok.clone()
            },
            Scenario {
                payloads_per_tx: 65,
                ..ok.clone()
            },
            Scenario {
                payload_bytes: 10 * 1024,
                payloads_per_tx: 26,
                ..ok.clone()
            },
            Scenario {
                validators: 0,
                ..ok.clone()
            },
            Scenario {
                start_rate: 0.0,
                ..ok.clone()
            },
        ] {
            assert!(bad.validate(&params).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn start_rates_follow_a_byte_budget_within_caps() {
        assert_eq!(start_rate(1, 200), 2_000.0);
        assert_eq!(start_rate(4, 200), 500.0);
        assert_eq!(start_rate(1, 12_800), 195.0);
        assert_eq!(start_rate(4, 12_800), 63.0);
        assert_eq!(start_rate(1, 10_240 * 25), 10.0);
        assert_eq!(start_rate(4, 1 << 20), 2.0);
    }
}
