//! The chain's total supply, by where it is held: what genesis funded,
//! which no transaction, block or epoch may change (nothing mints; slashing
//! and vetoes burn, and what they burn is counted). Read by
//! `GET /v1/supply` so operators and the fault suite can check
//! conservation on a live chain, not only in property tests.

use serde::Serialize;
use weft_core::Amount;

use crate::{
    accounts::state::{is_account_key, Account, ACCOUNTS_PREFIX},
    chain::ChainRead,
    fees,
    governance::state::GovernanceRead,
    staking::state::{StakingRead, UnbondingEntry, UNBONDING_PREFIX},
    storage::{decode_stored, StateRead, StorageError},
};

/// Every unit of the native asset, by holder. Decimal strings in JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Supply {
    /// The committed height this is at.
    pub height: u64,
    /// Account balances.
    #[serde(with = "weft_core::genesis::amount_string")]
    pub balances: Amount,
    /// Fees (and bid payments) collected, not yet paid out.
    #[serde(with = "weft_core::genesis::amount_string")]
    pub fee_pool: Amount,
    /// Bonded to validators.
    #[serde(with = "weft_core::genesis::amount_string")]
    pub bonded: Amount,
    /// Unbonding, not yet returned.
    #[serde(with = "weft_core::genesis::amount_string")]
    pub unbonding: Amount,
    /// Rewards paid out, not yet claimed.
    #[serde(with = "weft_core::genesis::amount_string")]
    pub reward_reserve: Amount,
    /// Proposal deposits in escrow.
    #[serde(with = "weft_core::genesis::amount_string")]
    pub governance_escrow: Amount,
    /// Burned by slashing and by vetoes.
    #[serde(with = "weft_core::genesis::amount_string")]
    pub burned: Amount,
    /// The sum of the above: constant over the chain's life.
    #[serde(with = "weft_core::genesis::amount_string")]
    pub total: Amount,
}

/// The supply in `state`. Scans every account: for queries, never for the
/// consensus path.
pub fn supply<S: StateRead + ?Sized>(state: &S) -> Result<Supply, StorageError> {
    let mut balances: Amount = 0;
    for (key, value) in state.prefix_raw(ACCOUNTS_PREFIX)? {
        // `accounts/params` shares the prefix.
        if !is_account_key(&key) {
            continue;
        }
        let account: Account = decode_stored(&key, &value)?;
        balances = balances.saturating_add(account.balance);
    }
    let bonded = state
        .validators()?
        .iter()
        .fold(0, |sum: Amount, v| sum.saturating_add(v.bonded));
    let mut unbonding: Amount = 0;
    for (key, value) in state.prefix_raw(UNBONDING_PREFIX)? {
        let entry: UnbondingEntry = decode_stored(&key, &value)?;
        unbonding = unbonding.saturating_add(entry.amount);
    }
    let mut s = Supply {
        height: state.height()?,
        balances,
        fee_pool: fees::pool(state)?,
        bonded,
        unbonding,
        reward_reserve: state.reward_reserve()?,
        governance_escrow: state.escrowed()?,
        burned: state.slashed_burned()?.saturating_add(state.burned()?),
        total: 0,
    };
    s.total = [
        s.balances,
        s.fee_pool,
        s.bonded,
        s.unbonding,
        s.reward_reserve,
        s.governance_escrow,
        s.burned,
    ]
    .iter()
    .fold(0, |sum: Amount, a| sum.saturating_add(*a));
    Ok(s)
}

#[cfg(test)]
mod tests {
    use weft_core::SigningKey;

    use super::*;
    use crate::{
        accounts::state::AccountsWrite,
        storage::{delta::EmptyState, StateDelta, StateWrite},
    };

    #[test]
    fn every_holder_is_counted_once() {
        let mut s = StateDelta::new(EmptyState);
        for (seed, balance) in [("a", 700u128), ("b", 300)] {
            let address = SigningKey::from_seed(seed).address();
            s.put_account(&address, Account { balance, nonce: 1 });
        }
        fees::add_to_pool(&mut s as &mut dyn StateWrite, 50).unwrap();
        // Another record under the accounts prefix is not an account.
        s.put_raw("accounts/params".into(), vec![1, 2, 3]);
        let supply = supply(&s).unwrap();
        assert_eq!(
            (
                supply.balances,
                supply.fee_pool,
                supply.bonded,
                supply.burned
            ),
            (1000, 50, 0, 0)
        );
        assert_eq!(supply.total, 1050);
        let json = serde_json::to_value(supply).unwrap();
        assert_eq!(json["total"], "1050", "amounts are decimal strings");
    }
}
