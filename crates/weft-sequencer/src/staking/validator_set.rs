//! The active validator set: which approved candidates validate, with what
//! voting power (stake-proportional, capped per validator), and the
//! validator updates that move CometBFT from one set to the next.
//!
//! Pure functions over integers: no state, no floats, no hash-map order,
//! so every node computes the same set from the same stakes.

use std::collections::BTreeMap;

use weft_core::{Address, Amount};

use super::state::ActiveValidator;

/// CometBFT's largest total voting power (`MaxTotalVotingPower` =
/// `int64 max / 8`); a set above it halts the chain.
pub const MAX_TOTAL_POWER: u64 = (i64::MAX / 8) as u64;

/// Basis points in one whole.
const BPS: u128 = 10_000;

/// An eligible candidate: approved, with enough self-bond and a stake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Its consensus key.
    pub consensus_key: [u8; 32],
    /// Its operator.
    pub operator: Address,
    /// Its bonded stake.
    pub stake: Amount,
}

/// The active set for these candidates, sorted by consensus key.
///
/// 1. Candidates with stake are ranked by stake, highest first (ties by
///    operator address, so the order is total), and the first
///    `max_validators` are kept.
/// 2. Stake becomes power by one common divisor, the smallest that keeps
///    the total within [`MAX_TOTAL_POWER`]; anyone whose power rounds to
///    0 is left out (CometBFT refuses power 0).
/// 3. The cap: no power may exceed `cap_bps` / 10000 of the total. The
///    largest powers are clipped, all to one level `c`, the largest with
///    `c × 10000 ≤ cap_bps × total` given everyone else's power; clipping
///    raises everyone else's share, so the level is found by clipping one
///    more validator at a time until the next one fits under it. The
///    excess is not handed to anyone as power: it disappears, which
///    spreads its share over the others in proportion to their power
///    (that is the redistribution) without pushing anyone over the cap.
/// 4. If the cap cannot hold (fewer than 10000 / `cap_bps` validators:
///    three validators cannot each hold at most 30 %), every validator
///    gets the same power, the smallest possible largest share (1/n).
///    The minimum power of the set is used, so the total only shrinks.
pub fn active_set(
    mut candidates: Vec<Candidate>,
    max_validators: u32,
    cap_bps: u16,
) -> Vec<ActiveValidator> {
    candidates.retain(|c| c.stake > 0);
    candidates.sort_by(|a, b| b.stake.cmp(&a.stake).then(a.operator.cmp(&b.operator)));
    candidates.truncate(usize::try_from(max_validators).unwrap_or(usize::MAX));

    // A total of stakes past u128 cannot happen (supply fits u128), but a
    // shift keeps this total even then, the same on every node.
    let mut shift = 0u32;
    let total = loop {
        match candidates
            .iter()
            .try_fold(0u128, |acc, c| acc.checked_add(c.stake >> shift))
        {
            Some(t) => break t,
            None => shift += 1,
        }
    };
    let divisor = total.div_ceil(u128::from(MAX_TOTAL_POWER)).max(1);
    let mut ranked: Vec<(Candidate, u64)> = candidates
        .into_iter()
        .filter_map(|c| {
            // ≤ total / divisor ≤ MAX_TOTAL_POWER, so it fits a u64.
            let power = u64::try_from((c.stake >> shift) / divisor).ok()?;
            (power > 0).then_some((c, power))
        })
        .collect();

    cap_powers(&mut ranked, cap_bps);

    let mut set: Vec<ActiveValidator> = ranked
        .into_iter()
        .map(|(c, power)| ActiveValidator {
            consensus_key: c.consensus_key,
            operator: c.operator,
            power,
        })
        .collect();
    set.sort_by_key(|v| v.consensus_key);
    set
}

/// Applies the cap to powers sorted highest first (see [`active_set`]).
fn cap_powers(ranked: &mut [(Candidate, u64)], cap_bps: u16) {
    let n = ranked.len();
    if n == 0 {
        return;
    }
    let cap = u128::from(cap_bps.clamp(1, 10_000));
    if u128::try_from(n).unwrap_or(u128::MAX).saturating_mul(cap) < BPS {
        // Infeasible: equal power for all.
        let min = ranked[n - 1].1;
        ranked.iter_mut().for_each(|(_, p)| *p = min);
        return;
    }
    // `rest` = total power of validators not clipped (index ≥ k).
    let mut rest: u128 = ranked.iter().map(|(_, p)| u128::from(*p)).sum();
    for k in 0..n {
        // With k validators clipped to level c and `rest` unclipped:
        // c × 10000 ≤ cap × (k × c + rest)  ⟺  c ≤ cap × rest / (10000 − k × cap).
        // Feasibility guarantees the loop ends before the denominator
        // reaches 0 (at k = n − 1 the level is at least the last power).
        let Some(denominator) = BPS.checked_sub(cap * k as u128).filter(|d| *d > 0) else {
            break;
        };
        let level = cap * rest / denominator;
        let next = u128::from(ranked[k].1);
        if next <= level {
            // Everyone from k on fits under the level: clip 0..k to it.
            let level = u64::try_from(level).unwrap_or(u64::MAX);
            ranked[..k]
                .iter_mut()
                .for_each(|(_, p)| *p = (*p).min(level));
            return;
        }
        rest -= next;
    }
    // Unreachable when feasible (shown above); equal power is still safe.
    let min = ranked[n - 1].1;
    ranked.iter_mut().for_each(|(_, p)| *p = min);
}

/// The validator updates that take CometBFT from `prev` to `next` (both
/// sorted by consensus key), in key order: each key at most once, power 0
/// only for a key that is in `prev`, a positive power only where it
/// changes. An empty `next` yields no update at all: a chain must never be
/// left without validators, so the caller keeps `prev`.
pub fn updates(prev: &[ActiveValidator], next: &[ActiveValidator]) -> Vec<([u8; 32], u64)> {
    if next.is_empty() {
        return Vec::new();
    }
    let mut changes: BTreeMap<[u8; 32], u64> = BTreeMap::new();
    let next_by_key: BTreeMap<[u8; 32], u64> =
        next.iter().map(|v| (v.consensus_key, v.power)).collect();
    let prev_by_key: BTreeMap<[u8; 32], u64> =
        prev.iter().map(|v| (v.consensus_key, v.power)).collect();
    for (key, _) in prev_by_key
        .iter()
        .filter(|(k, _)| !next_by_key.contains_key(*k))
    {
        changes.insert(*key, 0);
    }
    for (key, power) in &next_by_key {
        if *power > 0 && prev_by_key.get(key) != Some(power) {
            changes.insert(*key, *power);
        }
    }
    changes.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cand(i: u8, stake: Amount) -> Candidate {
        Candidate {
            consensus_key: [i; 32],
            operator: Address([i; 20]),
            stake,
        }
    }

    fn powers(set: &[ActiveValidator]) -> Vec<(u8, u64)> {
        set.iter().map(|v| (v.consensus_key[0], v.power)).collect()
    }

    #[test]
    fn power_follows_stake_below_the_cap() {
        let set = active_set(
            vec![cand(1, 10), cand(2, 20), cand(3, 30), cand(4, 40)],
            10,
            10_000,
        );
        assert_eq!(powers(&set), vec![(1, 10), (2, 20), (3, 30), (4, 40)]);
    }

    #[test]
    fn the_cap_clips_the_largest_and_holds() {
        // Shares 70/10/10/10 with a 40 % cap: 70 clips to 20 (20/50 = 40 %).
        let set = active_set(
            vec![cand(1, 70), cand(2, 10), cand(3, 10), cand(4, 10)],
            10,
            4_000,
        );
        assert_eq!(powers(&set), vec![(1, 20), (2, 10), (3, 10), (4, 10)]);
        // Clipping one pushes the next over: 50/40/5/5 at 40 %, both clip.
        let set = active_set(
            vec![cand(1, 50), cand(2, 40), cand(3, 5), cand(4, 5)],
            10,
            4_000,
        );
        // c ≤ 0.4 × 10 / (1 − 0.8) = 20: 20/50 = 40 % each.
        assert_eq!(powers(&set), vec![(1, 20), (2, 20), (3, 5), (4, 5)]);
    }

    #[test]
    fn an_infeasible_cap_gives_equal_power() {
        let set = active_set(vec![cand(1, 70), cand(2, 20), cand(3, 10)], 10, 3_000);
        assert_eq!(powers(&set), vec![(1, 10), (2, 10), (3, 10)]);
    }

    #[test]
    fn selection_keeps_the_top_by_stake_with_ties_by_operator() {
        let set = active_set(
            vec![cand(3, 5), cand(1, 5), cand(2, 9), cand(4, 0)],
            2,
            10_000,
        );
        assert_eq!(powers(&set), vec![(1, 5), (2, 9)]);
        assert!(active_set(vec![cand(1, 0)], 5, 10_000).is_empty());
    }

    #[test]
    fn huge_stakes_scale_into_cometbft_total() {
        let set = active_set(vec![cand(1, u128::MAX), cand(2, u128::MAX / 2)], 10, 10_000);
        let total: u64 = set.iter().map(|v| v.power).sum();
        assert!(total <= MAX_TOTAL_POWER, "{total}");
        assert!(set[0].power > set[1].power);
    }

    #[test]
    fn updates_are_real_diffs() {
        let v = |i: u8, power: u64| ActiveValidator {
            consensus_key: [i; 32],
            operator: Address([i; 20]),
            power,
        };
        let prev = vec![v(1, 10), v(2, 10), v(3, 10)];
        let next = vec![v(2, 10), v(3, 12), v(4, 1)];
        assert_eq!(
            updates(&prev, &next),
            vec![([1; 32], 0), ([3; 32], 12), ([4; 32], 1)]
        );
        assert!(updates(&prev, &prev).is_empty());
        assert!(updates(&prev, &[]).is_empty(), "never empty the set");
    }

    fn stakes() -> impl Strategy<Value = Vec<Amount>> {
        prop::collection::vec(
            prop_oneof![
                0u128..1_000,
                0u128..(1u128 << 70),
                Just(u128::MAX / 3),
                1u128..3,
            ],
            0..40,
        )
    }

    proptest! {
        #[test]
        fn the_cap_and_cometbft_limits_hold(
            stakes in stakes(),
            max_validators in 1u32..50,
            cap_bps in 1u16..=10_000,
        ) {
            let candidates: Vec<Candidate> = stakes
                .iter()
                .enumerate()
                .map(|(i, s)| cand(i as u8, *s))
                .collect();
            let set = active_set(candidates.clone(), max_validators, cap_bps);
            let eligible = stakes.iter().filter(|s| **s > 0).count();
            prop_assert!(set.len() <= max_validators as usize);
            prop_assert_eq!(set.is_empty(), eligible == 0, "someone with stake always makes it");
            prop_assert!(set.windows(2).all(|w| w[0].consensus_key < w[1].consensus_key));
            prop_assert!(set.iter().all(|v| v.power > 0));
            let total: u128 = set.iter().map(|v| u128::from(v.power)).sum();
            prop_assert!(total <= u128::from(MAX_TOTAL_POWER));
            let feasible = (set.len() as u128) * u128::from(cap_bps) >= 10_000;
            for v in &set {
                if feasible {
                    prop_assert!(
                        u128::from(v.power) * 10_000 <= u128::from(cap_bps) * total,
                        "{} of {} breaks a cap of {} bps", v.power, total, cap_bps
                    );
                } else {
                    prop_assert_eq!(v.power, set[0].power);
                }
            }
            // More stake never means less power.
            let stake_of = |v: &ActiveValidator| stakes[v.consensus_key[0] as usize];
            for a in &set {
                for b in &set {
                    if stake_of(a) > stake_of(b) {
                        prop_assert!(a.power >= b.power);
                    }
                }
            }
            // Nobody left out has more stake than anyone selected.
            if let Some(min_in) = set.iter().map(stake_of).min() {
                for (i, s) in stakes.iter().enumerate() {
                    if set.iter().all(|v| usize::from(v.consensus_key[0]) != i) {
                        prop_assert!(*s <= min_in);
                    }
                }
            }
        }

        #[test]
        fn updates_never_remove_unknown_keys_add_zero_or_empty_the_set(
            prev in prop::collection::btree_map(0u8..12, 1u64..5, 0..8),
            next in prop::collection::btree_map(0u8..12, 1u64..5, 0..8),
        ) {
            let set = |m: &BTreeMap<u8, u64>| -> Vec<ActiveValidator> {
                m.iter().map(|(k, p)| ActiveValidator {
                    consensus_key: [*k; 32],
                    operator: Address([*k; 20]),
                    power: *p,
                }).collect()
            };
            let (prev_set, next_set) = (set(&prev), set(&next));
            let ups = updates(&prev_set, &next_set);
            let keys: Vec<_> = ups.iter().map(|(k, _)| *k).collect();
            let mut dedup = keys.clone();
            dedup.dedup();
            prop_assert_eq!(&keys, &dedup, "deduplicated");
            prop_assert!(keys.windows(2).all(|w| w[0] < w[1]));
            let mut applied: BTreeMap<u8, u64> = prev.clone();
            for (k, p) in &ups {
                if *p == 0 {
                    prop_assert!(prev.contains_key(&k[0]), "removes only a known key");
                    applied.remove(&k[0]);
                } else {
                    prop_assert_ne!(prev.get(&k[0]), Some(p), "only real changes");
                    applied.insert(k[0], *p);
                }
            }
            if next.is_empty() {
                prop_assert!(ups.is_empty());
            } else {
                prop_assert_eq!(&applied, &next, "CometBFT ends at the new set");
                prop_assert!(!applied.is_empty());
            }
        }
    }
}
