//! The top-of-batch auction of one height: a pure function from the bids
//! held to the winning set. Greedy by amount among non-conflicting bids,
//! ties to the earliest arrival, never past the byte cap.

use weft_core::{Amount, RollupId};

/// What the auction needs to know of one bid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// What the builder pays.
    pub amount: Amount,
    /// Arrival order at the relay (lower is earlier); unique per bid.
    pub arrival: u64,
    /// The rollups the bid's bundles lead; a bid is taken whole or not at
    /// all, so it conflicts with any other bid on one of these.
    pub rollups: &'a [RollupId],
    /// Rollup data bytes the bid adds to the block.
    pub data_bytes: u64,
}

/// The order bids are considered in: higher amount first, then earlier
/// arrival.
pub fn rank(a: &Candidate<'_>, b: &Candidate<'_>) -> std::cmp::Ordering {
    b.amount
        .cmp(&a.amount)
        .then_with(|| a.arrival.cmp(&b.arrival))
}

/// The indexes (into `candidates`) of the winning bids, in rank order:
/// each bid in rank order wins unless it shares a rollup with a bid that
/// already won or would push the winners' data past `byte_cap`. Bids of
/// amount 0 never win.
pub fn select_winners(candidates: &[Candidate<'_>], byte_cap: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| rank(&candidates[a], &candidates[b]));
    let mut taken_rollups = std::collections::BTreeSet::new();
    let mut bytes: u64 = 0;
    let mut winners = Vec::new();
    for i in order {
        let c = &candidates[i];
        if c.amount == 0 || c.rollups.iter().any(|r| taken_rollups.contains(r)) {
            continue;
        }
        let Some(total) = bytes.checked_add(c.data_bytes).filter(|t| *t <= byte_cap) else {
            continue;
        };
        bytes = total;
        taken_rollups.extend(c.rollups.iter().copied());
        winners.push(i);
    }
    winners
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r(n: u8) -> RollupId {
        RollupId([n; 32])
    }

    fn c(amount: Amount, arrival: u64, rollups: &[RollupId], data_bytes: u64) -> Candidate<'_> {
        Candidate {
            amount,
            arrival,
            rollups,
            data_bytes,
        }
    }

    #[test]
    fn the_higher_bid_on_a_rollup_wins() {
        let a = [r(1)];
        let bids = [c(10, 0, &a, 1), c(20, 1, &a, 1)];
        assert_eq!(select_winners(&bids, 100), vec![1]);
    }

    #[test]
    fn ties_go_to_the_earliest_arrival() {
        let a = [r(1)];
        let bids = [c(10, 5, &a, 1), c(10, 2, &a, 1), c(10, 9, &a, 1)];
        assert_eq!(select_winners(&bids, 100), vec![1]);
    }

    #[test]
    fn a_multi_rollup_bid_blocks_both_rollups_or_loses_to_either() {
        let a = [r(1)];
        let b = [r(2)];
        let ab = [r(1), r(2)];
        // The two-rollup bid ranks first: it takes both rollups.
        let bids = [c(5, 0, &a, 1), c(50, 1, &ab, 1), c(7, 2, &b, 1)];
        assert_eq!(select_winners(&bids, 100), vec![1]);
        // It ranks below a single-rollup bid: it loses, the others win.
        let bids = [c(60, 0, &a, 1), c(50, 1, &ab, 1), c(7, 2, &b, 1)];
        assert_eq!(select_winners(&bids, 100), vec![0, 2]);
    }

    #[test]
    fn the_cap_skips_a_bid_that_does_not_fit_but_takes_smaller_later_ones() {
        let (a, b, d) = ([r(1)], [r(2)], [r(3)]);
        let bids = [c(30, 0, &a, 60), c(20, 1, &b, 60), c(10, 2, &d, 40)];
        assert_eq!(select_winners(&bids, 100), vec![0, 2]);
        assert_eq!(select_winners(&bids, 10), Vec::<usize>::new());
    }

    #[test]
    fn zero_amounts_never_win() {
        let a = [r(1)];
        assert!(select_winners(&[c(0, 0, &a, 1)], 100).is_empty());
    }

    fn arb_bids() -> impl Strategy<Value = Vec<(u128, Vec<u8>, u64)>> {
        proptest::collection::vec(
            (
                0u128..50,
                proptest::collection::btree_set(0u8..8, 1..4)
                    .prop_map(|s| s.into_iter().collect::<Vec<_>>()),
                0u64..400,
            ),
            0..40,
        )
    }

    proptest! {
        #[test]
        fn winners_never_conflict_respect_the_cap_and_follow_the_greedy_order(
            raw in arb_bids(),
            cap in 0u64..2000,
        ) {
            let rollups: Vec<Vec<RollupId>> =
                raw.iter().map(|(_, rs, _)| rs.iter().map(|n| r(*n)).collect()).collect();
            let bids: Vec<Candidate<'_>> = raw
                .iter()
                .enumerate()
                .map(|(i, (amount, _, bytes))| c(*amount, i as u64, &rollups[i], *bytes))
                .collect();
            let winners = select_winners(&bids, cap);

            // No two winners share a rollup.
            let mut seen = std::collections::BTreeSet::new();
            for &w in &winners {
                for rid in bids[w].rollups {
                    prop_assert!(seen.insert(*rid), "two winners on one rollup");
                }
            }
            // The cap holds.
            let total: u64 = winners.iter().map(|&w| bids[w].data_bytes).sum();
            prop_assert!(total <= cap);
            // Winners come in rank order.
            for pair in winners.windows(2) {
                prop_assert!(rank(&bids[pair[0]], &bids[pair[1]]).is_lt());
            }
            // Every loser with a positive amount was blocked by a winner
            // ranked before it, or did not fit beside the winners ranked
            // before it.
            for (i, loser) in bids.iter().enumerate() {
                if winners.contains(&i) || loser.amount == 0 {
                    continue;
                }
                let before: Vec<usize> = winners
                    .iter()
                    .copied()
                    .filter(|&w| rank(&bids[w], loser).is_lt())
                    .collect();
                let conflicts = before
                    .iter()
                    .any(|&w| bids[w].rollups.iter().any(|x| loser.rollups.contains(x)));
                let bytes_before: u64 = before.iter().map(|&w| bids[w].data_bytes).sum();
                prop_assert!(
                    conflicts || bytes_before + loser.data_bytes > cap,
                    "bid {} lost without a reason", i
                );
            }
        }
    }
}
