//! The staking actions: `RegisterValidator`, `Delegate`, `Undelegate`,
//! `Redelegate`. Every amount moves with checked arithmetic through the
//! accounts' debit/credit, so balances + bonded + unbonding is conserved.

use weft_core::{
    transaction::{check_validator_description, is_valid_consensus_key},
    Address, Amount, StakingParams, TxCode,
};

use super::state::{StakingRead, StakingWrite, UnbondingEntry, Validator};
use crate::{
    accounts::actions::{credit, debit},
    chain::ChainRead,
    component::{ActionEffects, ActionHandler, Event, EventValue, ParamsRead, TxContext},
    error::{ExecError, Rejection, StorageError},
    storage::{StateRead, StateWrite},
};

/// The staking parameters, or a refusal on a chain whose genesis has no
/// staking section (staking is off there: nothing may be bonded to a set
/// CometBFT was never told about).
pub(crate) fn enabled_params<S: StateRead + ?Sized>(state: &S) -> Result<StakingParams, ExecError> {
    state
        .optional_component_params::<StakingParams>()?
        .ok_or_else(|| {
            Rejection::new(
                TxCode::InvalidTransaction,
                "staking is not enabled on this chain (its genesis has no staking section)",
            )
            .into()
        })
}

fn existing_validator<S: StateRead + ?Sized>(
    state: &S,
    operator: &Address,
) -> Result<Validator, ExecError> {
    state.validator(operator)?.ok_or_else(|| {
        Rejection::new(
            TxCode::UnknownValidator,
            format!("no validator is registered by operator {operator}"),
        )
        .into()
    })
}

fn zero_amount(what: &str) -> Result<(), Rejection> {
    Err(Rejection::new(
        TxCode::InvalidTransaction,
        format!("{what} of zero"),
    ))
}

/// Adds `amount` to `delegator`'s delegation to `validator` and to the
/// validator's total.
fn bond(
    state: &mut dyn StateWrite,
    delegator: &Address,
    validator: &mut Validator,
    amount: Amount,
) -> Result<(), ExecError> {
    let overflow = || Rejection::new(TxCode::InvalidTransaction, "bonded stake would overflow");
    let held = state.delegation(delegator, &validator.operator)?;
    let held = held.checked_add(amount).ok_or_else(overflow)?;
    validator.bonded = validator.bonded.checked_add(amount).ok_or_else(overflow)?;
    state.put_delegation(delegator, &validator.operator, held);
    state.put_validator(validator)?;
    Ok(())
}

/// Takes `amount` off `delegator`'s delegation to `validator` and off the
/// validator's total.
fn unbond(
    state: &mut dyn StateWrite,
    delegator: &Address,
    validator: &mut Validator,
    amount: Amount,
) -> Result<(), ExecError> {
    let held = state.delegation(delegator, &validator.operator)?;
    let left = held.checked_sub(amount).ok_or_else(|| {
        Rejection::new(
            TxCode::InsufficientStake,
            format!(
                "{delegator} has {held} bonded to {} but moves {amount}",
                validator.operator
            ),
        )
    })?;
    // A validator's total is the sum of its delegations; less than one of
    // them means the state is corrupt, which is the node's fault.
    validator.bonded = validator.bonded.checked_sub(amount).ok_or_else(|| {
        StorageError::Corrupt(format!(
            "validator {} has less bonded than its delegations",
            validator.operator
        ))
    })?;
    state.put_delegation(delegator, &validator.operator, left);
    state.put_validator(validator)?;
    Ok(())
}

fn check_held<S: StateRead + ?Sized>(
    state: &S,
    delegator: &Address,
    validator: &Address,
    amount: Amount,
) -> Result<(), ExecError> {
    let held = state.delegation(delegator, validator)?;
    if held < amount {
        return Err(Rejection::new(
            TxCode::InsufficientStake,
            format!("{delegator} has {held} bonded to {validator} but moves {amount}"),
        )
        .into());
    }
    Ok(())
}

/// `Action::RegisterValidator`: the signer becomes the operator of a new,
/// not yet approved candidate with no stake.
#[derive(Debug, Clone, Copy)]
pub struct RegisterValidator<'a> {
    /// CometBFT's key for it.
    pub consensus_key: &'a [u8; 32],
    /// Display name.
    pub name: &'a str,
    /// Website.
    pub website: &'a str,
    /// Commission in basis points.
    pub commission_bps: u16,
}

impl ActionHandler for RegisterValidator<'_> {
    fn check_stateless(&self) -> Result<(), Rejection> {
        if !is_valid_consensus_key(self.consensus_key) {
            return Err(Rejection::new(
                TxCode::InvalidTransaction,
                "consensus key is not a valid ed25519 key",
            ));
        }
        check_validator_description(self.name, self.website, self.commission_bps)
            .map_err(|e| Rejection::new(TxCode::InvalidTransaction, e))
    }

    fn check_stateful(&self, state: &dyn StateRead, tx: &TxContext) -> Result<(), ExecError> {
        enabled_params(state)?;
        if state.validator(&tx.signer)?.is_some() {
            return Err(Rejection::new(
                TxCode::ValidatorExists,
                format!("{} already operates a validator", tx.signer),
            )
            .into());
        }
        if let Some(owner) = state.consensus_key_owner(self.consensus_key)? {
            return Err(Rejection::new(
                TxCode::ValidatorExists,
                format!("the consensus key is already used by validator {owner}"),
            )
            .into());
        }
        Ok(())
    }

    fn execute(
        &self,
        state: &mut dyn StateWrite,
        tx: &TxContext,
        effects: &mut ActionEffects,
    ) -> Result<(), ExecError> {
        state.put_validator(&Validator {
            operator: tx.signer,
            consensus_key: *self.consensus_key,
            name: self.name.to_string(),
            website: self.website.to_string(),
            commission_bps: self.commission_bps,
            // Approval is governance's decision, never the candidate's.
            approved: false,
            bonded: 0,
        })?;
        state.put_consensus_key_owner(self.consensus_key, &tx.signer);
        effects.events.push(
            Event::new("staking.register_validator")
                .indexed("operator", EventValue::Address(tx.signer))
                .stored(
                    "commission_bps",
                    EventValue::U64(self.commission_bps.into()),
                ),
        );
        Ok(())
    }
}

/// `Action::Delegate`: bonds the signer's funds to a validator.
#[derive(Debug, Clone, Copy)]
pub struct Delegate<'a> {
    /// The validator's operator.
    pub validator: &'a Address,
    /// Amount to bond.
    pub amount: Amount,
}

impl ActionHandler for Delegate<'_> {
    fn check_stateless(&self) -> Result<(), Rejection> {
        if self.amount == 0 {
            return zero_amount("delegation");
        }
        Ok(())
    }

    fn spend(&self) -> Amount {
        self.amount
    }

    fn check_stateful(&self, state: &dyn StateRead, _tx: &TxContext) -> Result<(), ExecError> {
        enabled_params(state)?;
        existing_validator(state, self.validator)?;
        Ok(())
    }

    fn execute(
        &self,
        state: &mut dyn StateWrite,
        tx: &TxContext,
        effects: &mut ActionEffects,
    ) -> Result<(), ExecError> {
        let mut validator = existing_validator(&*state, self.validator)?;
        debit(state, &tx.signer, self.amount)?;
        bond(state, &tx.signer, &mut validator, self.amount)?;
        effects.events.push(
            Event::new("staking.delegate")
                .indexed("delegator", EventValue::Address(tx.signer))
                .indexed("validator", EventValue::Address(*self.validator))
                .stored("amount", EventValue::Amount(self.amount)),
        );
        Ok(())
    }
}

/// `Action::Undelegate`: starts unbonding; the funds return to the signer
/// at the end of block `height + unbonding_blocks`.
#[derive(Debug, Clone, Copy)]
pub struct Undelegate<'a> {
    /// The validator's operator.
    pub validator: &'a Address,
    /// Amount to unbond.
    pub amount: Amount,
}

impl ActionHandler for Undelegate<'_> {
    fn check_stateless(&self) -> Result<(), Rejection> {
        if self.amount == 0 {
            return zero_amount("undelegation");
        }
        Ok(())
    }

    fn check_stateful(&self, state: &dyn StateRead, tx: &TxContext) -> Result<(), ExecError> {
        enabled_params(state)?;
        existing_validator(state, self.validator)?;
        check_held(state, &tx.signer, self.validator, self.amount)
    }

    fn execute(
        &self,
        state: &mut dyn StateWrite,
        tx: &TxContext,
        effects: &mut ActionEffects,
    ) -> Result<(), ExecError> {
        let params = enabled_params(&*state)?;
        let mut validator = existing_validator(&*state, self.validator)?;
        unbond(state, &tx.signer, &mut validator, self.amount)?;
        // The chain component records the block's height before any
        // transaction runs.
        let completes = state
            .height()?
            .checked_add(params.unbonding_blocks)
            .ok_or_else(|| {
                Rejection::new(TxCode::InvalidTransaction, "unbonding height overflows")
            })?;
        let pending = state
            .unbonding_entry(completes, &tx.signer, self.validator)?
            .map_or(0, |e| e.amount);
        let amount = pending.checked_add(self.amount).ok_or_else(|| {
            Rejection::new(
                TxCode::InvalidTransaction,
                "unbonding amount would overflow",
            )
        })?;
        state.put_unbonding_entry(
            completes,
            &UnbondingEntry {
                delegator: tx.signer,
                validator: *self.validator,
                amount,
            },
        );
        effects.events.push(
            Event::new("staking.undelegate")
                .indexed("delegator", EventValue::Address(tx.signer))
                .indexed("validator", EventValue::Address(*self.validator))
                .stored("amount", EventValue::Amount(self.amount))
                .stored("completion_height", EventValue::U64(completes)),
        );
        Ok(())
    }
}

/// `Action::Redelegate`: moves bonded stake between validators at once.
#[derive(Debug, Clone, Copy)]
pub struct Redelegate<'a> {
    /// The validator the stake leaves.
    pub from: &'a Address,
    /// The validator the stake joins.
    pub to: &'a Address,
    /// Amount to move.
    pub amount: Amount,
}

impl ActionHandler for Redelegate<'_> {
    fn check_stateless(&self) -> Result<(), Rejection> {
        if self.amount == 0 {
            return zero_amount("redelegation");
        }
        if self.from == self.to {
            return Err(Rejection::new(
                TxCode::InvalidTransaction,
                "redelegation to the validator it leaves",
            ));
        }
        Ok(())
    }

    fn check_stateful(&self, state: &dyn StateRead, tx: &TxContext) -> Result<(), ExecError> {
        enabled_params(state)?;
        existing_validator(state, self.from)?;
        existing_validator(state, self.to)?;
        check_held(state, &tx.signer, self.from, self.amount)
    }

    fn execute(
        &self,
        state: &mut dyn StateWrite,
        tx: &TxContext,
        effects: &mut ActionEffects,
    ) -> Result<(), ExecError> {
        let mut from = existing_validator(&*state, self.from)?;
        unbond(state, &tx.signer, &mut from, self.amount)?;
        // Read after the first write: `to` differs from `from`, but a
        // fresh read keeps this correct even if that rule ever changes.
        let mut to = existing_validator(&*state, self.to)?;
        bond(state, &tx.signer, &mut to, self.amount)?;
        effects.events.push(
            Event::new("staking.redelegate")
                .indexed("delegator", EventValue::Address(tx.signer))
                .indexed("from", EventValue::Address(*self.from))
                .indexed("to", EventValue::Address(*self.to))
                .stored("amount", EventValue::Amount(self.amount)),
        );
        Ok(())
    }
}

/// Releases the entries completing at `height` to their delegators.
/// Returns how much was released.
pub(crate) fn release_unbonded(
    state: &mut dyn StateWrite,
    height: u64,
) -> Result<Amount, StorageError> {
    let mut released: Amount = 0;
    for (key, entry) in state.unbonding_at(height)? {
        // Supply fits a u128 (genesis checks it) and is conserved, so a
        // balance cannot overflow here; if it did, the state is not what
        // this code wrote, and the node must stop rather than drop funds.
        credit(state, &entry.delegator, entry.amount).map_err(|e| match e {
            ExecError::Storage(s) => s,
            ExecError::Rejected(r) => StorageError::Corrupt(format!("releasing {key}: {r}")),
        })?;
        state.delete_unbonding_entry(height, &entry);
        released = released.saturating_add(entry.amount);
    }
    Ok(released)
}
