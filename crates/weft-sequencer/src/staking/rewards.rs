//! Rewards: at each epoch boundary the fee pool is paid to the active set
//! by voting power, each validator's commission to its operator and the
//! rest to its delegators through the validator's reward-per-share
//! accumulator (no write per delegator). Paid amounts move from the fee
//! pool to the reward reserve; `ClaimRewards` moves them from the reserve
//! to balances. Rounding dust stays in the fee pool, so supply is
//! conserved exactly.

use weft_core::{Address, Amount};

use super::{
    shares::{self, REWARD_SCALE},
    state::{ActiveValidator, StakingRead, StakingWrite},
};
use crate::{
    accounts::actions::{credit, debit},
    error::{ExecError, StorageError},
    fees,
    storage::{StateRead, StateWrite},
};

/// Pays `amount` from `payer`'s balance into the pool the next epoch
/// distributes to validators and delegators (the fee pool). The one call
/// for anything else that funds rewards (the builder relay's bids).
pub fn pay_into_reward_pool(
    state: &mut dyn StateWrite,
    payer: &Address,
    amount: Amount,
) -> Result<(), ExecError> {
    debit(state, payer, amount)?;
    fees::add_to_pool(state, amount)?;
    Ok(())
}

/// What one epoch's distribution paid.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Distribution {
    /// The fee pool before.
    pub pool: Amount,
    /// Commission credited to operators.
    pub commission: Amount,
    /// Credited to delegators through the accumulators.
    pub delegators: Amount,
}

/// Pays the fee pool to `active` (the set that validated the epoch) by
/// power. Jailed members (kept only when removing them would have emptied
/// the set) earn nothing. For each validator: its share of the pool,
/// rounded down; its commission, rounded down; the rest raises its reward
/// per share by `⌊rest × 10^18 / shares⌋`, which pays its delegators
/// `⌈increase × shares / 10^18⌉` ≤ rest in total. What rounding leaves
/// stays in the fee pool for the next epoch.
pub fn distribute(
    state: &mut dyn StateWrite,
    active: &[ActiveValidator],
) -> Result<Distribution, StorageError> {
    let pool = fees::pool(state)?;
    let mut out = Distribution {
        pool,
        ..Distribution::default()
    };
    let total_power: u128 = active.iter().map(|v| u128::from(v.power)).sum();
    if pool == 0 || total_power == 0 {
        return Ok(out);
    }
    for member in active {
        let mut v = state
            .validator(&member.operator)?
            .ok_or_else(|| StorageError::Corrupt(super::state::validator_key(&member.operator)))?;
        if v.is_jailed() {
            continue;
        }
        // power ≤ total_power, so the share ≤ pool.
        let share = shares::mul_div(pool, u128::from(member.power), total_power).unwrap_or(0);
        let commission = shares::bps_of(share, v.commission_bps);
        let rest = share - commission;
        let mut to_delegators = 0;
        if v.shares > 0 && rest > 0 {
            let increase = shares::mul_div(rest, REWARD_SCALE, v.shares).unwrap_or(0);
            if let Some(next) = v.reward_per_share.checked_add(increase) {
                // ≤ rest: increase × shares ≤ rest × 10^18.
                to_delegators = shares::mul_div_ceil(increase, v.shares, REWARD_SCALE)
                    .unwrap_or(rest)
                    .min(rest);
                v.reward_per_share = next;
            }
        }
        let commission = match v.commission.checked_add(commission) {
            Some(c) => {
                v.commission = c;
                commission
            }
            None => 0,
        };
        if commission == 0 && to_delegators == 0 {
            continue;
        }
        state.put_validator(&v)?;
        out.commission += commission; // the sum of shares is ≤ pool
        out.delegators += to_delegators;
    }
    let paid = out.commission + out.delegators;
    fees::take_from_pool(state, paid)?;
    let reserve = state.reward_reserve()?.checked_add(paid).ok_or_else(|| {
        StorageError::Corrupt(format!("{} overflows", super::state::REWARD_RESERVE))
    })?;
    state.put_reward_reserve(reserve);
    Ok(out)
}

/// What `account` could claim now: every delegation's settled and pending
/// rewards, plus its validator's commission if it operates one.
pub fn claimable<S: StateRead + ?Sized>(
    state: &S,
    account: &Address,
) -> Result<Amount, StorageError> {
    let mut total: Amount = 0;
    for (validator, d) in state.delegation_records_of(account)? {
        let v = state
            .validator(&validator)?
            .ok_or_else(|| StorageError::Corrupt(super::state::validator_key(&validator)))?;
        total = total
            .saturating_add(d.rewards)
            .saturating_add(shares::pending_rewards(&d, &v));
    }
    if let Some(v) = state.validator(account)? {
        total = total.saturating_add(v.commission);
    }
    Ok(total)
}

/// Pays `account` everything [`claimable`] counts, out of the reward
/// reserve; returns the amount.
pub fn claim(state: &mut dyn StateWrite, account: &Address) -> Result<Amount, ExecError> {
    let corrupt = |m: String| ExecError::Storage(StorageError::Corrupt(m));
    let mut total: Amount = 0;
    for (validator, mut d) in state.delegation_records_of(account)? {
        let v = state
            .validator(&validator)?
            .ok_or_else(|| corrupt(super::state::validator_key(&validator)))?;
        shares::settle(&mut d, &v).ok_or_else(|| corrupt("rewards overflow".into()))?;
        total = total
            .checked_add(d.rewards)
            .ok_or_else(|| corrupt("rewards overflow".into()))?;
        d.rewards = 0;
        state.put_delegation(account, &validator, &d);
    }
    if let Some(mut v) = state.validator(account)? {
        if v.commission > 0 {
            total = total
                .checked_add(v.commission)
                .ok_or_else(|| corrupt("rewards overflow".into()))?;
            v.commission = 0;
            state.put_validator(&v)?;
        }
    }
    // The reserve covers every claim (see `distribute`); less is a state
    // this code did not write.
    let reserve = state.reward_reserve()?.checked_sub(total).ok_or_else(|| {
        corrupt(format!(
            "{} holds less than the {total} claimed",
            super::state::REWARD_RESERVE
        ))
    })?;
    state.put_reward_reserve(reserve);
    credit(state, account, total)?;
    Ok(total)
}
