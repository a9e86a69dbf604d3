//! How concentrated the active set's voting power is: the figures the API
//! shows next to the validators and the sequencer exports as Prometheus
//! gauges, computed from the stored active set only (integer arithmetic).

use serde::Serialize;

use super::state::StakingRead;
use crate::storage::{StateRead, StorageError};

/// The active set at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SetSummary {
    /// Validators in the active set (each with positive power).
    pub active: u32,
    /// Their total voting power.
    pub total_power: u64,
    /// The fewest validators whose power together exceeds a third of the
    /// total: the smallest group that can halt the chain (CometBFT needs
    /// more than two thirds to commit). 0 for an empty set.
    pub nakamoto_coefficient: u32,
}

/// The fewest of `powers` whose sum exceeds a third of their total
/// (largest first); 0 if the total is 0.
pub fn nakamoto_coefficient(powers: &[u64]) -> u32 {
    let total: u128 = powers.iter().map(|p| u128::from(*p)).sum();
    if total == 0 {
        return 0;
    }
    let mut sorted = powers.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let mut sum: u128 = 0;
    let mut count: u32 = 0;
    for p in sorted {
        sum += u128::from(p);
        count = count.saturating_add(1);
        // sum > total / 3, exactly.
        if sum * 3 > total {
            break;
        }
    }
    count
}

/// The stored active set's summary.
pub fn summary<S: StateRead + ?Sized>(state: &S) -> Result<SetSummary, StorageError> {
    let powers: Vec<u64> = state.active_set()?.iter().map(|v| v.power).collect();
    Ok(SetSummary {
        active: u32::try_from(powers.len()).unwrap_or(u32::MAX),
        total_power: powers.iter().fold(0, |t, p| t.saturating_add(*p)),
        nakamoto_coefficient: nakamoto_coefficient(&powers),
    })
}

/// Sets the `weft_validators_*` gauges from a committed state. A chain
/// without staking reports an empty set.
pub fn report_metrics<S: StateRead + ?Sized>(state: &S) -> Result<(), StorageError> {
    let s = summary(state)?;
    metrics::gauge!("weft_validators_active").set(f64::from(s.active));
    // Gauges are f64: exact up to 2^53, far above any realistic total.
    metrics::gauge!("weft_validators_total_power").set(s.total_power as f64);
    metrics::gauge!("weft_validators_nakamoto_coefficient").set(f64::from(s.nakamoto_coefficient));
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::{
        staking::state::{ActiveValidator, StakingWrite},
        storage::{delta::EmptyState, StateDelta},
    };
    use weft_core::Address;

    #[test]
    fn fewest_validators_over_a_third() {
        assert_eq!(nakamoto_coefficient(&[]), 0);
        assert_eq!(nakamoto_coefficient(&[0, 0]), 0);
        assert_eq!(nakamoto_coefficient(&[5]), 1);
        // Four equal: one is 1/4, two are 1/2 > 1/3.
        assert_eq!(nakamoto_coefficient(&[10, 10, 10, 10]), 2);
        // Exactly a third is not more than a third.
        assert_eq!(nakamoto_coefficient(&[1, 1, 1]), 2);
        assert_eq!(nakamoto_coefficient(&[34, 33, 33]), 1);
        assert_eq!(nakamoto_coefficient(&[33, 34, 33]), 1);
        // Order of the input does not matter; the largest count first.
        assert_eq!(nakamoto_coefficient(&[1, 1, 1, 1, 1, 1, 1, 7]), 1);
        assert_eq!(nakamoto_coefficient(&[u64::MAX, u64::MAX, u64::MAX]), 2);
    }

    proptest! {
        /// The count is minimal: the top `n` exceed a third, the top
        /// `n - 1` do not.
        #[test]
        fn coefficient_is_the_minimal_count(powers in prop::collection::vec(0u64..1_000, 0..40)) {
            let n = nakamoto_coefficient(&powers) as usize;
            let total: u128 = powers.iter().map(|p| u128::from(*p)).sum();
            let mut sorted = powers.clone();
            sorted.sort_unstable_by(|a, b| b.cmp(a));
            let top = |k: usize| -> u128 { sorted[..k].iter().map(|p| u128::from(*p)).sum() };
            if total == 0 {
                prop_assert_eq!(n, 0);
            } else {
                prop_assert!(top(n) * 3 > total);
                prop_assert!(top(n - 1) * 3 <= total);
            }
        }
    }

    #[test]
    fn gauges_carry_the_summary() {
        let mut s = StateDelta::new(EmptyState);
        s.put_active_set(
            &[40, 30, 20, 10]
                .iter()
                .enumerate()
                .map(|(i, p)| ActiveValidator {
                    consensus_key: [i as u8; 32],
                    operator: Address([i as u8; 20]),
                    power: *p,
                })
                .collect::<Vec<_>>(),
        );
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || report_metrics(&s).unwrap());
        let text = handle.render();
        for line in [
            "weft_validators_active 4",
            "weft_validators_total_power 100",
            "weft_validators_nakamoto_coefficient 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
        }
    }

    #[test]
    fn summary_reads_the_stored_active_set() {
        let mut s = StateDelta::new(EmptyState);
        assert_eq!(
            summary(&s).unwrap(),
            SetSummary {
                active: 0,
                total_power: 0,
                nakamoto_coefficient: 0
            }
        );
        s.put_active_set(
            &[50, 30, 20]
                .iter()
                .enumerate()
                .map(|(i, p)| ActiveValidator {
                    consensus_key: [i as u8; 32],
                    operator: Address([i as u8; 20]),
                    power: *p,
                })
                .collect::<Vec<_>>(),
        );
        assert_eq!(
            summary(&s).unwrap(),
            SetSummary {
                active: 3,
                total_power: 100,
                nakamoto_coefficient: 1
            }
        );
    }
}
