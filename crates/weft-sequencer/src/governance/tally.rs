//! Counting votes: each voter weighs what it has bonded to approved
//! validators; a delegator who did not vote is counted with its
//! validator operator's vote (Cosmos inheritance). Integer arithmetic
//! only; every iteration is an ordered prefix read or a `BTreeMap`.

use std::collections::BTreeMap;

use weft_core::{Address, Amount, GovernanceParams, VoteOption};

use super::state::{GovernanceRead, ProposalStatus, Tally};
use crate::{
    staking::state::StakingRead,
    storage::{StateRead, StorageError},
};

/// The tally of proposal `id` over the current stakes.
///
/// Only stake bonded to approved validators votes: the approved set is
/// bounded by governance, while anyone may register a candidate and bond
/// to it. For each vote, the voter's delegations to approved validators
/// count for its option and are deducted from those validators; then each
/// validator whose operator voted adds what is left of its bonded stake
/// (the stake of delegators who did not vote) to its operator's option.
pub fn tally<S: StateRead + ?Sized>(state: &S, id: u64) -> Result<Tally, StorageError> {
    // operator -> (bonded, deducted by delegators who voted themselves)
    let mut validators: BTreeMap<Address, (Amount, Amount)> = BTreeMap::new();
    let mut tally = Tally::default();
    for operator in state.approved_operators()? {
        let v = state
            .validator(&operator)?
            .ok_or_else(|| StorageError::Corrupt(format!("approved {operator} has no record")))?;
        tally.total_bonded = tally.total_bonded.saturating_add(v.bonded);
        validators.insert(operator, (v.bonded, 0));
    }
    let votes: BTreeMap<Address, VoteOption> = state.votes(id)?.into_iter().collect();
    for (voter, option) in &votes {
        for (validator, amount) in state.delegations_of(voter)? {
            if let Some((_, deducted)) = validators.get_mut(&validator) {
                *deducted = deducted.saturating_add(amount);
                add(&mut tally, *option, amount);
            }
        }
    }
    for (operator, (bonded, deducted)) in &validators {
        if let Some(option) = votes.get(operator) {
            add(&mut tally, *option, bonded.saturating_sub(*deducted));
        }
    }
    Ok(tally)
}

fn add(tally: &mut Tally, option: VoteOption, amount: Amount) {
    let slot = match option {
        VoteOption::Yes => &mut tally.yes,
        VoteOption::No => &mut tally.no,
        VoteOption::Abstain => &mut tally.abstain,
        VoteOption::NoWithVeto => &mut tally.no_with_veto,
    };
    *slot = slot.saturating_add(amount);
}

/// Whether `part >= whole * bps / 10000`, exactly, without overflow for
/// any `u128` amounts (`bps` at most 10000).
pub fn at_least_bps(part: Amount, whole: Amount, bps: u16) -> bool {
    let bps = Amount::from(bps.min(10_000));
    // whole * bps / 10000 = q * bps + r * bps / 10000, q * bps <= whole.
    let (q, r) = (whole / 10_000, whole % 10_000);
    let need = (q * bps).saturating_add((r * bps).div_ceil(10_000));
    part >= need
}

/// The outcome a final tally gives, in this order: too little stake
/// voted (no quorum); vetoed; passed; rejected. A proposal on which every
/// voter abstained is rejected (there is no yes to weigh).
pub fn outcome(t: &Tally, params: &GovernanceParams) -> ProposalStatus {
    let voted = t.voted();
    if t.total_bonded == 0 || voted == 0 || !at_least_bps(voted, t.total_bonded, params.quorum_bps)
    {
        return ProposalStatus::NoQuorum;
    }
    if at_least_bps(t.no_with_veto, voted, params.veto_threshold_bps) {
        return ProposalStatus::Vetoed;
    }
    let deciding = voted.saturating_sub(t.abstain);
    if deciding > 0 && at_least_bps(t.yes, deciding, params.pass_threshold_bps) {
        return ProposalStatus::Passed;
    }
    ProposalStatus::Rejected
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn at_least_bps_is_exact(part in any::<u128>(), whole in any::<u128>(), bps in 0u16..=10_000) {
            // Exact reference in 256 bits: (hi, lo) products compared.
            let lhs = widen(part, 10_000);
            let rhs = widen(whole, u128::from(bps));
            prop_assert_eq!(at_least_bps(part, whole, bps), lhs >= rhs);
        }
    }

    /// `a * b` as (high, low) 128-bit halves; `b` fits 64 bits.
    fn widen(a: u128, b: u128) -> (u128, u128) {
        let (a_hi, a_lo) = (a >> 64, a & u128::from(u64::MAX));
        let lo = a_lo * b;
        let mid = a_hi * b;
        let (low, carry) = lo.overflowing_add(mid << 64);
        ((mid >> 64) + u128::from(carry), low)
    }

    #[test]
    fn outcomes() {
        let p = GovernanceParams {
            voting_period_blocks: 1,
            min_deposit: 1,
            quorum_bps: 4_000,
            pass_threshold_bps: 5_000,
            veto_threshold_bps: 3_340,
        };
        let t = |yes, no, abstain, no_with_veto| Tally {
            yes,
            no,
            abstain,
            no_with_veto,
            total_bonded: 100,
        };
        assert_eq!(outcome(&t(39, 0, 0, 0), &p), ProposalStatus::NoQuorum);
        assert_eq!(outcome(&t(40, 0, 0, 0), &p), ProposalStatus::Passed);
        assert_eq!(outcome(&t(20, 20, 0, 0), &p), ProposalStatus::Passed);
        assert_eq!(outcome(&t(19, 21, 0, 0), &p), ProposalStatus::Rejected);
        assert_eq!(outcome(&t(0, 0, 50, 0), &p), ProposalStatus::Rejected);
        assert_eq!(outcome(&t(10, 0, 40, 0), &p), ProposalStatus::Passed);
        assert_eq!(outcome(&t(60, 0, 0, 30), &p), ProposalStatus::Passed);
        assert_eq!(outcome(&t(59, 0, 0, 31), &p), ProposalStatus::Vetoed);
        let mut none = t(0, 0, 0, 0);
        none.total_bonded = 0;
        assert_eq!(outcome(&none, &p), ProposalStatus::NoQuorum);
    }
}
