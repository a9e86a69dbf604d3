//! The staking actions: `RegisterValidator`, `Delegate`, `Undelegate`,
//! `Redelegate`, `EditValidator`, `Unjail`, `ClaimRewards`. Every amount
//! moves with checked arithmetic through the accounts' debit/credit, so
//! balances + bonded + unbonding + rewards is conserved.

use weft_core::{
    transaction::{check_validator_description, is_valid_consensus_key},
    Address, Amount, StakingParams, TxCode,
};

use super::{
    shares,
    state::{
        cometbft_address, RedelegationEntry, StakingRead, StakingWrite, UnbondingEntry, Validator,
    },
};
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

/// The validator stake may join: registered and not tombstoned (stake
/// bonded to a validator that can never validate again would earn nothing
/// and stay slashable for nothing).
fn open_to_stake<S: StateRead + ?Sized>(
    state: &S,
    operator: &Address,
) -> Result<Validator, ExecError> {
    let v = existing_validator(state, operator)?;
    if v.tombstoned {
        return Err(Rejection::new(
            TxCode::ValidatorTombstoned,
            format!("validator {operator} is tombstoned for double-signing: it takes no stake"),
        )
        .into());
    }
    Ok(v)
}

fn zero_amount(what: &str) -> Result<(), Rejection> {
    Err(Rejection::new(
        TxCode::InvalidTransaction,
        format!("{what} of zero"),
    ))
}

/// Adds `amount` tokens to `delegator`'s delegation to `validator` as
/// shares at the validator's current rate, settling the delegation's
/// rewards first (its share count changes); the shares issued.
fn bond(
    state: &mut dyn StateWrite,
    delegator: &Address,
    validator: &mut Validator,
    amount: Amount,
) -> Result<u128, ExecError> {
    let overflow = || Rejection::new(TxCode::InvalidTransaction, "bonded stake would overflow");
    let shares = shares::shares_for_deposit(amount, validator).ok_or_else(|| {
        Rejection::new(
            TxCode::InvalidTransaction,
            format!(
                "{amount} buys no share of validator {} (its stake was slashed away, or the amount is below one share)",
                validator.operator
            ),
        )
    })?;
    let mut d = state.delegation_record(delegator, &validator.operator)?;
    shares::settle(&mut d, validator).ok_or_else(overflow)?;
    d.shares = d.shares.checked_add(shares).ok_or_else(overflow)?;
    validator.shares = validator.shares.checked_add(shares).ok_or_else(overflow)?;
    validator.bonded = validator.bonded.checked_add(amount).ok_or_else(overflow)?;
    state.put_delegation(delegator, &validator.operator, &d);
    state.put_validator(validator)?;
    Ok(shares)
}

/// Takes `amount` tokens off `delegator`'s delegation to `validator`
/// (the shares they are worth, rounded up), settling its rewards first.
fn unbond(
    state: &mut dyn StateWrite,
    delegator: &Address,
    validator: &mut Validator,
    amount: Amount,
) -> Result<(), ExecError> {
    let mut d = state.delegation_record(delegator, &validator.operator)?;
    let shares = shares::shares_for_withdrawal(amount, d.shares, validator).ok_or_else(|| {
        Rejection::new(
            TxCode::InsufficientStake,
            format!(
                "{delegator} has {} bonded to {} but moves {amount}",
                shares::tokens_of(d.shares, validator),
                validator.operator
            ),
        )
    })?;
    shares::settle(&mut d, validator)
        .ok_or_else(|| Rejection::new(TxCode::InvalidTransaction, "rewards would overflow"))?;
    // A validator's shares are the sum of its delegations' and its tokens
    // cover every share's worth; less means the state is corrupt, which
    // is the node's fault.
    let corrupt = || {
        StorageError::Corrupt(format!(
            "validator {} has less bonded than its delegations",
            validator.operator
        ))
    };
    d.shares -= shares; // shares ≤ d.shares by shares_for_withdrawal
    validator.shares = validator.shares.checked_sub(shares).ok_or_else(corrupt)?;
    validator.bonded = validator.bonded.checked_sub(amount).ok_or_else(corrupt)?;
    state.put_delegation(delegator, &validator.operator, &d);
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
        // Not approved: approval is governance's decision, never the
        // candidate's.
        state.put_validator(&Validator::new(
            tx.signer,
            *self.consensus_key,
            self.name.to_string(),
            self.website.to_string(),
            self.commission_bps,
        ))?;
        state.put_consensus_key_owner(self.consensus_key, &tx.signer);
        state.put_cometbft_address(&cometbft_address(self.consensus_key), &tx.signer);
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
        open_to_stake(state, self.validator)?;
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
        let started = state.height()?;
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
                started,
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
        open_to_stake(state, self.to)?;
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
        let shares = bond(state, &tx.signer, &mut to, self.amount)?;
        // Remembered for the unbonding period: evidence against `from` for
        // an offense up to now still slashes this stake where it went.
        let params = enabled_params(&*state)?;
        let created = state.height()?;
        let completes = created
            .checked_add(params.unbonding_blocks)
            .ok_or_else(|| {
                Rejection::new(TxCode::InvalidTransaction, "redelegation expiry overflows")
            })?;
        let overflow = || {
            Rejection::new(
                TxCode::InvalidTransaction,
                "redelegation entry would overflow",
            )
        };
        let entry = match state.redelegation_entry(completes, self.from, &tx.signer, self.to)? {
            Some(e) => RedelegationEntry {
                created,
                initial_balance: e
                    .initial_balance
                    .checked_add(self.amount)
                    .ok_or_else(overflow)?,
                shares: e.shares.checked_add(shares).ok_or_else(overflow)?,
                ..e
            },
            None => RedelegationEntry {
                delegator: tx.signer,
                source: *self.from,
                destination: *self.to,
                created,
                initial_balance: self.amount,
                shares,
            },
        };
        state.put_redelegation(completes, &entry);
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

/// The validator `operator` runs, or `unknown_validator`.
fn operated_by<S: StateRead + ?Sized>(
    state: &S,
    operator: &Address,
) -> Result<Validator, ExecError> {
    state.validator(operator)?.ok_or_else(|| {
        Rejection::new(
            TxCode::UnknownValidator,
            format!("{operator} operates no validator"),
        )
        .into()
    })
}

/// `Action::EditValidator`: the operator changes its validator's
/// description, commission (rate-limited) or relay key.
#[derive(Debug, Clone, Copy)]
pub struct EditValidator<'a> {
    /// New display name.
    pub name: Option<&'a str>,
    /// New website.
    pub website: Option<&'a str>,
    /// New commission in basis points.
    pub commission_bps: Option<u16>,
    /// New relay key.
    pub relay_key: Option<&'a [u8; 32]>,
}

impl ActionHandler for EditValidator<'_> {
    fn check_stateless(&self) -> Result<(), Rejection> {
        let invalid = |m: String| Rejection::new(TxCode::InvalidTransaction, m);
        if self.name.is_none()
            && self.website.is_none()
            && self.commission_bps.is_none()
            && self.relay_key.is_none()
        {
            return Err(invalid("an edit that changes nothing".into()));
        }
        // The `RegisterValidator` rules for whatever is given ("-" and ""
        // stand in for what is not).
        check_validator_description(
            self.name.unwrap_or("-"),
            self.website.unwrap_or(""),
            self.commission_bps.unwrap_or(0),
        )
        .map_err(invalid)?;
        if self.relay_key.is_some_and(|k| !is_valid_consensus_key(k)) {
            return Err(invalid("relay key is not a valid ed25519 key".into()));
        }
        Ok(())
    }

    fn check_stateful(&self, state: &dyn StateRead, tx: &TxContext) -> Result<(), ExecError> {
        let params = enabled_params(state)?;
        let v = operated_by(state, &tx.signer)?;
        let Some(next) = self.commission_bps.filter(|c| *c != v.commission_bps) else {
            return Ok(());
        };
        let refused = |m: String| Rejection::new(TxCode::CommissionChangeRefused, m).into();
        let epoch = state.height()? / params.epoch_blocks.max(1);
        if v.commission_changed_epoch == Some(epoch) {
            return Err(refused(format!(
                "the commission already changed in epoch {epoch}; one change per epoch"
            )));
        }
        if next.abs_diff(v.commission_bps) > params.max_commission_change_bps {
            return Err(refused(format!(
                "commission {} -> {next} bps moves more than max_commission_change_bps ({})",
                v.commission_bps, params.max_commission_change_bps
            )));
        }
        Ok(())
    }

    fn execute(
        &self,
        state: &mut dyn StateWrite,
        tx: &TxContext,
        effects: &mut ActionEffects,
    ) -> Result<(), ExecError> {
        let params = enabled_params(&*state)?;
        let mut v = operated_by(&*state, &tx.signer)?;
        if let Some(name) = self.name {
            v.name = name.to_string();
        }
        if let Some(website) = self.website {
            v.website = website.to_string();
        }
        if let Some(c) = self.commission_bps.filter(|c| *c != v.commission_bps) {
            v.commission_bps = c;
            v.commission_changed_epoch = Some(state.height()? / params.epoch_blocks.max(1));
        }
        if let Some(k) = self.relay_key {
            v.relay_key = Some(*k);
        }
        state.put_validator(&v)?;
        effects.events.push(
            Event::new("staking.edit_validator")
                .indexed("operator", EventValue::Address(tx.signer))
                .stored("commission_bps", EventValue::U64(v.commission_bps.into())),
        );
        Ok(())
    }
}

/// `Action::Unjail`: the operator returns its jailed validator to the
/// eligible candidates once the jail period is over; it rejoins the
/// active set at the next epoch. Never for a tombstoned validator.
#[derive(Debug, Clone, Copy)]
pub struct Unjail;

impl ActionHandler for Unjail {
    fn check_stateful(&self, state: &dyn StateRead, tx: &TxContext) -> Result<(), ExecError> {
        enabled_params(state)?;
        let v = operated_by(state, &tx.signer)?;
        if v.tombstoned {
            return Err(Rejection::new(
                TxCode::ValidatorTombstoned,
                format!("validator {} is tombstoned for double-signing", v.operator),
            )
            .into());
        }
        let Some(until) = v.jailed_until else {
            return Err(Rejection::new(
                TxCode::NotJailed,
                format!("validator {} is not jailed", v.operator),
            )
            .into());
        };
        let height = state.height()?;
        if height < until {
            return Err(Rejection::new(
                TxCode::ValidatorJailed,
                format!(
                    "validator {} is jailed until height {until} (now {height})",
                    v.operator
                ),
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
        let mut v = operated_by(&*state, &tx.signer)?;
        v.jailed_until = None;
        state.put_validator(&v)?;
        effects
            .events
            .push(Event::new("staking.unjail").indexed("operator", EventValue::Address(tx.signer)));
        Ok(())
    }
}

/// `Action::ClaimRewards`: pays the signer's settled and pending rewards
/// from every delegation, plus its validator's commission if it operates
/// one, out of the reward reserve to its balance.
#[derive(Debug, Clone, Copy)]
pub struct ClaimRewards;

impl ActionHandler for ClaimRewards {
    fn check_stateful(&self, state: &dyn StateRead, tx: &TxContext) -> Result<(), ExecError> {
        enabled_params(state)?;
        if super::rewards::claimable(state, &tx.signer)? == 0 {
            return Err(Rejection::new(
                TxCode::NothingToClaim,
                format!("{} has no rewards or commission to claim", tx.signer),
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
        let paid = super::rewards::claim(state, &tx.signer)?;
        effects.events.push(
            Event::new("staking.claim_rewards")
                .indexed("account", EventValue::Address(tx.signer))
                .stored("amount", EventValue::Amount(paid)),
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

/// Forgets the redelegation entries that expire at `height`: their stake
/// has been with its destination for `unbonding_blocks`, longer than
/// evidence against the source may take to arrive.
pub(crate) fn expire_redelegations(
    state: &mut dyn StateWrite,
    height: u64,
) -> Result<(), StorageError> {
    for entry in state.redelegations_expiring_at(height)? {
        state.delete_redelegation(height, &entry);
    }
    Ok(())
}
