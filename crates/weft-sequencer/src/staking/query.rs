//! Staking queries over any state view (a committed snapshot or a block's
//! overlay): validators with stake, power, share, commission and
//! approval, and an account's delegations. Plain functions; the HTTP API
//! and CLI wrap them.

use std::collections::BTreeMap;

use serde::Serialize;
use weft_core::{Address, Amount};

use super::state::StakingRead;
use crate::storage::{StateRead, StorageError};

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
    /// Amount bonded (decimal string).
    #[serde(with = "weft_core::genesis::amount_string")]
    pub amount: Amount,
}

/// Every validator with its power and share of the active set.
pub fn validators<S: StateRead + ?Sized>(state: &S) -> Result<ValidatorsView, StorageError> {
    let active = state.active_set()?;
    let total_power: u64 = active.iter().map(|v| v.power).fold(0, u64::saturating_add);
    let power_of: BTreeMap<Address, u64> = active.iter().map(|v| (v.operator, v.power)).collect();
    let mut validators: Vec<ValidatorView> = state
        .validators()?
        .into_iter()
        .map(|v| {
            let power = power_of.get(&v.operator).copied().unwrap_or(0);
            ValidatorView {
                operator: v.operator,
                consensus_key: hex::encode(v.consensus_key),
                name: v.name,
                website: v.website,
                commission_bps: v.commission_bps,
                approved: v.approved,
                stake: v.bonded,
                power,
                share_bps: share_bps(power, total_power),
            }
        })
        .collect();
    validators.sort_by(|a, b| b.stake.cmp(&a.stake).then(a.operator.cmp(&b.operator)));
    Ok(ValidatorsView {
        validators,
        total_power,
    })
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
    Ok(state
        .delegations_of(delegator)?
        .into_iter()
        .map(|(validator, amount)| DelegationView { validator, amount })
        .collect())
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
        staking::state::{ActiveValidator, StakingWrite, Validator},
        storage::{delta::EmptyState, StateDelta},
    };

    #[test]
    fn validators_show_stake_power_share_and_approval() {
        let mut s = StateDelta::new(EmptyState);
        let (a, b, c) = (Address([1; 20]), Address([2; 20]), Address([3; 20]));
        for (op, bonded, approved) in [(a, 300, true), (b, 100, true), (c, 900, false)] {
            s.put_validator(&Validator {
                operator: op,
                consensus_key: [op.0[0]; 32],
                name: format!("v{}", op.0[0]),
                website: String::new(),
                commission_bps: 100,
                approved,
                bonded,
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
        s.put_delegation(&b, &a, 40);
        s.put_delegation(&b, &b, 60);
        s.put_delegation(&a, &a, 260);

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
                    amount: 40
                },
                DelegationView {
                    validator: b,
                    amount: 60
                },
            ]
        );
        assert!(delegations(&s, &c).unwrap().is_empty());
        // The JSON the API will serve: amounts as strings.
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["validators"][1]["stake"], "300");
    }
}
