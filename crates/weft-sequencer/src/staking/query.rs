//! Staking queries over any state view (a committed snapshot or a block's
//! overlay): validators with stake, power, share, commission and
//! approval, and an account's delegations. Plain functions; the HTTP API
//! and CLI wrap them.

use std::collections::BTreeMap;

use serde::Serialize;
use weft_core::{Address, Amount};

use weft_core::StakingParams;

use super::{accountability, shares, state::StakingRead};
use crate::{
    chain::ChainRead,
    component::ParamsRead,
    storage::{StateRead, StorageError},
};

/// A validator as the API and CLI show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidatorView {
    /// Its operator's account.
    pub operator: Address,
    /// Its consensus key (hex).
    pub consensus_key: String,
    /// Display name.
    pub name: String,
    /// Website.
    pub website: String,
    /// Commission in basis points.
    pub commission_bps: u16,
    /// Whether it is in the approved set.
    pub approved: bool,
    /// Total bonded to it (decimal string).
    #[serde(with = "weft_core::genesis::amount_string")]
    pub stake: Amount,
    /// Its voting power in the active set (0 = not active).
    pub power: u64,
    /// Its share of the active set's power, in basis points (rounded
    /// down).
    pub share_bps: u64,
    /// Whether it is jailed or tombstoned (kept out of the active set).
    pub jailed: bool,
    /// The height from which its operator may `Unjail` it, while jailed
    /// for downtime.
    pub jailed_until: Option<u64>,
    /// Tombstoned for double-signing: never active again.
    pub tombstoned: bool,
    /// Heights it missed in the downtime window ending at the current
    /// height.
    pub missed_blocks: u64,
    /// Its uptime in basis points (rounded down): the share of the heights
    /// it was expected to sign that it did not miss, over the downtime
    /// window or, for a member that joined the active set less than a
    /// window ago, over the heights since it joined (10000 before its
    /// first one is judged). For a validator outside the active set, over
    /// the whole window.
    pub uptime_bps: u64,
    /// Commission earned and not yet claimed by its operator (decimal
    /// string).
    #[serde(with = "weft_core::genesis::amount_string")]
    pub accumulated_commission: Amount,
    /// The relay's key for it (hex), once its operator set one.
    pub relay_key: Option<String>,
}

/// Every validator, and the active set's total power.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidatorsView {
    /// Validators by stake, highest first (ties by operator).
    pub validators: Vec<ValidatorView>,
    /// Total voting power of the active set.
    pub total_power: u64,
}

/// A delegation as the API and CLI show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DelegationView {
    /// The validator's operator.
    pub validator: Address,
    /// Amount bonded (decimal string): what its shares are worth now.
    #[serde(with = "weft_core::genesis::amount_string")]
    pub amount: Amount,
    /// Its shares of the validator's stake (decimal string).
    #[serde(with = "weft_core::genesis::amount_string")]
    pub shares: u128,
    /// Rewards `ClaimRewards` would pay for this delegation now (decimal
    /// string).
    #[serde(with = "weft_core::genesis::amount_string")]
    pub claimable_rewards: Amount,
}

/// Every validator with its power and share of the active set.
pub fn validators<S: StateRead + ?Sized>(state: &S) -> Result<ValidatorsView, StorageError> {
    let window = state
        .optional_component_params::<StakingParams>()?
        .map_or(1, |p| p.downtime_window_blocks.max(1));
    let height = state.height()?;
    let active = state.active_set()?;
    let total_power: u64 = active.iter().map(|v| v.power).fold(0, u64::saturating_add);
    let power_of: BTreeMap<Address, u64> = active.iter().map(|v| (v.operator, v.power)).collect();
    let mut validators: Vec<ValidatorView> = Vec::new();
    for v in state.validators()? {
        let power = power_of.get(&v.operator).copied().unwrap_or(0);
        let missed =
            accountability::missed_in_window(&state.missed_blocks(&v.operator)?, height, window);
        validators.push(ValidatorView {
            operator: v.operator,
            consensus_key: hex::encode(v.consensus_key),
            jailed: v.is_jailed(),
            jailed_until: v.jailed_until,
            tombstoned: v.tombstoned,
            missed_blocks: missed,
            uptime_bps: uptime_bps(
                missed,
                observed(state.active_since(&v.operator)?, height, window),
            ),
            accumulated_commission: v.commission,
            relay_key: v.relay_key.map(hex::encode),
            name: v.name,
            website: v.website,
            commission_bps: v.commission_bps,
            approved: v.approved,
            stake: v.bonded,
            power,
            share_bps: share_bps(power, total_power),
        });
    }
    validators.sort_by(|a, b| b.stake.cmp(&a.stake).then(a.operator.cmp(&b.operator)));
    Ok(ValidatorsView {
        validators,
        total_power,
    })
}

/// How many heights of the window ending at `height` a validator was
/// judged on: those since it joined the active set (`since`, the first
/// height it was expected to sign; at block `h` the commit of `h - 1` is
/// judged, so `height - since` heights by now), at most the window. A
/// validator outside the set (no `since`) is shown over the whole window.
fn observed(since: Option<u64>, height: u64, window: u64) -> u64 {
    since.map_or(window, |since| height.saturating_sub(since).min(window))
}

/// The share of `observed` heights not missed, in basis points; 10000
/// when none was judged yet. Misses older than the current stint in the
/// set (still in the window) never make it negative.
fn uptime_bps(missed: u64, observed: u64) -> u64 {
    if observed == 0 {
        return 10_000;
    }
    observed.saturating_sub(missed) * 10_000 / observed
}

/// One validator by operator, if registered.
pub fn validator<S: StateRead + ?Sized>(
    state: &S,
    operator: &Address,
) -> Result<Option<ValidatorView>, StorageError> {
    // One validator needs the set's total power anyway; the set is small.
    Ok(validators(state)?
        .validators
        .into_iter()
        .find(|v| v.operator == *operator))
}

/// Every delegation of `delegator`, by validator.
pub fn delegations<S: StateRead + ?Sized>(
    state: &S,
    delegator: &Address,
) -> Result<Vec<DelegationView>, StorageError> {
    let mut out = Vec::new();
    for (validator, d) in state.delegation_records_of(delegator)? {
        let v = state
            .validator(&validator)?
            .ok_or_else(|| StorageError::Corrupt(super::state::validator_key(&validator)))?;
        out.push(DelegationView {
            validator,
            amount: shares::tokens_of(d.shares, &v),
            shares: d.shares,
            claimable_rewards: d.rewards.saturating_add(shares::pending_rewards(&d, &v)),
        });
    }
    Ok(out)
}

/// What an account could claim with `ClaimRewards`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RewardsView {
    /// From its delegations (decimal string).
    #[serde(with = "weft_core::genesis::amount_string")]
    pub delegations: Amount,
    /// Its validator's commission, if it operates one (decimal string).
    #[serde(with = "weft_core::genesis::amount_string")]
    pub commission: Amount,
    /// The two together (decimal string).
    #[serde(with = "weft_core::genesis::amount_string")]
    pub total: Amount,
}

/// An account's claimable rewards.
pub fn rewards<S: StateRead + ?Sized>(
    state: &S,
    account: &Address,
) -> Result<RewardsView, StorageError> {
    let total = super::rewards::claimable(state, account)?;
    let commission = state.validator(account)?.map_or(0, |v| v.commission);
    Ok(RewardsView {
        delegations: total.saturating_sub(commission),
        commission,
        total,
    })
}

/// Stake on its way back to an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnbondingView {
    /// The validator the stake left.
    pub validator: Address,
    /// Amount returned (decimal string).
    #[serde(with = "weft_core::genesis::amount_string")]
    pub amount: Amount,
    /// The height at whose end it returns to the balance.
    pub completion_height: u64,
}

/// Every unbonding entry of `delegator`, soonest first.
pub fn unbonding<S: StateRead + ?Sized>(
    state: &S,
    delegator: &Address,
) -> Result<Vec<UnbondingView>, StorageError> {
    Ok(state
        .unbonding_of(delegator)?
        .into_iter()
        .map(|(completion_height, e)| UnbondingView {
            validator: e.validator,
            amount: e.amount,
            completion_height,
        })
        .collect())
}

fn share_bps(power: u64, total: u64) -> u64 {
    if total == 0 {
        return 0;
    }
    let share = u128::from(power) * 10_000 / u128::from(total);
    u64::try_from(share).unwrap_or(10_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        staking::state::{ActiveValidator, Delegation, StakingWrite, Validator},
        storage::{delta::EmptyState, StateDelta},
    };

    #[test]
    fn validators_show_stake_power_share_and_approval() {
        let mut s = StateDelta::new(EmptyState);
        let (a, b, c) = (Address([1; 20]), Address([2; 20]), Address([3; 20]));
        for (op, bonded, approved) in [(a, 300, true), (b, 100, true), (c, 900, false)] {
            s.put_validator(&Validator {
                approved,
                bonded,
                shares: bonded,
                ..Validator::new(
                    op,
                    [op.0[0]; 32],
                    format!("v{}", op.0[0]),
                    String::new(),
                    100,
                )
            })
            .unwrap();
        }
        s.put_active_set(&[
            ActiveValidator {
                consensus_key: [1; 32],
                operator: a,
                power: 3,
            },
            ActiveValidator {
                consensus_key: [2; 32],
                operator: b,
                power: 1,
            },
        ]);
        let d = |shares| Delegation {
            shares,
            ..Delegation::default()
        };
        s.put_delegation(&b, &a, &d(40));
        s.put_delegation(&b, &b, &d(60));
        s.put_delegation(&a, &a, &d(260));

        let view = validators(&s).unwrap();
        assert_eq!(view.total_power, 4);
        let rows: Vec<(Address, Amount, u64, u64, bool)> = view
            .validators
            .iter()
            .map(|v| (v.operator, v.stake, v.power, v.share_bps, v.approved))
            .collect();
        assert_eq!(
            rows,
            vec![
                (c, 900, 0, 0, false),
                (a, 300, 3, 7_500, true),
                (b, 100, 1, 2_500, true),
            ]
        );
        assert_eq!(validator(&s, &b).unwrap().unwrap().share_bps, 2_500);
        assert_eq!(validator(&s, &Address([9; 20])).unwrap(), None);
        assert_eq!(
            delegations(&s, &b).unwrap(),
            vec![
                DelegationView {
                    validator: a,
                    amount: 40,
                    shares: 40,
                    claimable_rewards: 0,
                },
                DelegationView {
                    validator: b,
                    amount: 60,
                    shares: 60,
                    claimable_rewards: 0,
                },
            ]
        );
        assert!(delegations(&s, &c).unwrap().is_empty());
        // The JSON the API will serve: amounts as strings.
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["validators"][1]["stake"], "300");
    }
}
