//! Staking: validator candidates, delegations, unbonding, and the active
//! validator set with its voting power, recomputed once per epoch.
//!
//! Staking is on only when genesis has a `staking` section. Without one
//! the component writes nothing, refuses staking actions and emits no
//! validator update, so such a chain runs (and hashes) exactly as before.
//!
//! Who may validate is governance's decision: a candidate is approved if
//! genesis listed it or a passed proposal admitted it (the governance
//! component sets `Validator::approved` through [`state::StakingWrite`]).
//! How much an approved validator weighs is its bonded stake, capped by
//! `max_power_share_bps`.

pub mod accountability;
pub mod actions;
pub mod decentralisation;
pub mod query;
pub mod rewards;
pub mod shares;
pub mod state;
pub mod validator_set;

#[cfg(test)]
mod tests;

use weft_core::{Address, GenesisStaking, StakingParams};

use crate::{
    accounts::actions::debit,
    component::{
        BlockContext, BlockSummary, Component, ComponentParams, EndBlock, Event, EventValue,
        Genesis, ParamsRead, ParamsWrite,
    },
    error::{ExecError, StorageError},
    storage::{StateRead, StateWrite},
};
use state::{StakingRead, StakingWrite, Validator};
use validator_set::Candidate;

/// Where the staking parameters live.
pub const PARAMS_KEY: &str = "staking/params";

impl ComponentParams for StakingParams {
    const KEY: &'static str = PARAMS_KEY;
    // 2: the accountability, downtime and commission parameters.
    const VERSION: u8 = 2;
}

/// The staking component.
pub struct Staking;

impl Component for Staking {
    fn name(&self) -> &'static str {
        "staking"
    }

    fn init_chain(
        &self,
        state: &mut dyn StateWrite,
        genesis: &Genesis<'_>,
    ) -> Result<(), StorageError> {
        match &genesis.app_state.staking {
            None => Ok(()),
            Some(staking) => init_staking(state, staking, genesis),
        }
    }

    /// The active set computed at genesis (the one stored as the
    /// previous set the first epoch diffs against); empty without staking.
    fn genesis_validators(
        &self,
        state: &dyn StateRead,
    ) -> Result<Vec<([u8; 32], u64)>, StorageError> {
        if state.get_raw(PARAMS_KEY)?.is_none() {
            return Ok(Vec::new());
        }
        Ok(state
            .active_set()?
            .iter()
            .map(|v| (v.consensus_key, v.power))
            .collect())
    }

    fn end_block(
        &self,
        state: &mut dyn StateWrite,
        ctx: &BlockContext,
        _block: &BlockSummary,
        out: &mut EndBlock,
    ) -> Result<(), StorageError> {
        // Off on a chain whose genesis did not switch it on.
        let Some(params) = state.optional_component_params::<StakingParams>()? else {
            return Ok(());
        };
        // Evidence first, so stake about to be released at this height is
        // still slashable.
        let mut removed = accountability::handle_evidence(state, &params, ctx, out)?;
        removed.extend(accountability::handle_downtime(state, &params, ctx, out)?);
        let released = actions::release_unbonded(state, ctx.height)?;
        actions::expire_redelegations(state, ctx.height)?;
        if released > 0 {
            out.events.push(
                Event::new("staking.unbonding_released")
                    .stored("height", EventValue::U64(ctx.height))
                    .stored("amount", EventValue::Amount(released)),
            );
        }
        // `epoch_blocks` is positive (genesis checks it); a 0 would never
        // match a positive height rather than divide by zero.
        if ctx.height.is_multiple_of(params.epoch_blocks) {
            // The set that validated the epoch earns its fees.
            let validated = state.active_set()?;
            let paid = rewards::distribute(state, &validated)?;
            if paid.pool > 0 {
                out.events.push(
                    Event::new("staking.rewards")
                        .stored("height", EventValue::U64(ctx.height))
                        .stored("pool", EventValue::Amount(paid.pool))
                        .stored("commission", EventValue::Amount(paid.commission))
                        .stored("delegators", EventValue::Amount(paid.delegators)),
                );
            }
            end_epoch(state, &params, ctx.height, out)?;
        } else if !removed.is_empty() {
            remove_from_set(state, &params, &removed, ctx.height, out)?;
        }
        Ok(())
    }
}

/// Takes jailed or tombstoned validators out of the active set in this
/// block's updates, without waiting for the epoch: the others keep their
/// powers, re-capped so nobody's share passes `max_power_share_bps` now
/// that the total is smaller. If that would leave no validator, the set
/// stays as it is (CometBFT cannot run without one) and an event says so;
/// the next epoch drops them if anyone else is eligible.
fn remove_from_set(
    state: &mut dyn StateWrite,
    params: &StakingParams,
    removed: &[Address],
    height: u64,
    out: &mut EndBlock,
) -> Result<(), StorageError> {
    let prev = state.active_set()?;
    let mut remaining: Vec<Candidate> = Vec::new();
    for v in &prev {
        // Members jailed earlier but kept (so the set would not empty)
        // leave too, now that someone else can stay.
        let jailed = removed.contains(&v.operator)
            || state
                .validator(&v.operator)?
                .is_some_and(|record| record.is_jailed());
        if !jailed {
            remaining.push(Candidate {
                consensus_key: v.consensus_key,
                operator: v.operator,
                stake: u128::from(v.power),
            });
        }
    }
    if remaining.len() == prev.len() {
        return Ok(());
    }
    if remaining.is_empty() {
        out.events.push(
            Event::new("staking.jailed_kept_in_set")
                .stored("height", EventValue::U64(height))
                .stored("validators", EventValue::U64(prev.len() as u64)),
        );
        return Ok(());
    }
    // Powers are within CometBFT's total already, so they stay as they are
    // unless the cap clips them.
    let next = validator_set::active_set(remaining, u32::MAX, params.max_power_share_bps);
    out.validator_updates
        .extend(validator_set::updates(&prev, &next));
    state.replace_active_set(&prev, &next, joins_cometbft_at(height));
    Ok(())
}

/// Writes genesis validators with their self-bonds (debited from their
/// operators' genesis balances) and the initial active set.
fn init_staking(
    state: &mut dyn StateWrite,
    staking: &GenesisStaking,
    genesis: &Genesis<'_>,
) -> Result<(), StorageError> {
    // `GenesisAppState::from_json` already checked this; checking again
    // keeps a hand-built genesis from writing a half-valid state.
    staking
        .check(&genesis.app_state.accounts)
        .map_err(|e| StorageError::Corrupt(format!("genesis staking section: {e}")))?;
    state.put_component_params(&staking.params);
    for v in &staking.validators {
        debit(state, &v.operator, v.self_bond).map_err(|e| match e {
            ExecError::Storage(s) => s,
            ExecError::Rejected(r) => {
                StorageError::Corrupt(format!("genesis self-bond of {}: {r}", v.operator))
            }
        })?;
        // The first delegation: one share per token.
        state.put_validator(&Validator {
            approved: true,
            bonded: v.self_bond,
            shares: v.self_bond,
            ..Validator::new(
                v.operator,
                v.consensus_key,
                v.name.clone(),
                v.website.clone(),
                v.commission_bps,
            )
        })?;
        state.put_consensus_key_owner(&v.consensus_key, &v.operator);
        state.put_cometbft_address(&state::cometbft_address(&v.consensus_key), &v.operator);
        state.put_delegation(
            &v.operator,
            &v.operator,
            &state::Delegation {
                shares: v.self_bond,
                ..state::Delegation::default()
            },
        );
    }
    // The set CometBFT must start with: InitChain returns it (through
    // `genesis_validators`), replacing genesis.json's validators, and the
    // first epoch's updates are diffs against it (see docs/governance.md).
    let set = compute_active_set(state, &staking.params)?;
    if set.is_empty() {
        // `check` requires a validator with a positive self-bond, and
        // someone with stake always makes the set; never start a chain
        // whose staking has no validator.
        return Err(StorageError::Corrupt(
            "genesis staking section gives an empty active set".into(),
        ));
    }
    // CometBFT's first block is height 1, signed by this set.
    state.replace_active_set(&[], &set, 1);
    Ok(())
}

/// The first height a validator added in block `height`'s updates signs:
/// CometBFT applies a block's validator updates two heights later.
fn joins_cometbft_at(height: u64) -> u64 {
    height.saturating_add(2)
}

/// The active set the current stakes give, by consensus key.
pub fn compute_active_set<S: StateRead + ?Sized>(
    state: &S,
    params: &StakingParams,
) -> Result<Vec<state::ActiveValidator>, StorageError> {
    let mut candidates = Vec::new();
    for operator in state.approved_operators()? {
        let v = state
            .validator(&operator)?
            .ok_or_else(|| StorageError::Corrupt(state::approved_key(&operator)))?;
        if !v.approved || v.bonded == 0 || v.is_jailed() {
            continue;
        }
        if state.delegation(&v.operator, &v.operator)? < params.min_self_bond {
            continue;
        }
        candidates.push(Candidate {
            consensus_key: v.consensus_key,
            operator: v.operator,
            stake: v.bonded,
        });
    }
    Ok(validator_set::active_set(
        candidates,
        params.max_validators,
        params.max_power_share_bps,
    ))
}

/// The epoch transition: recompute the active set and hand CometBFT the
/// difference. If no candidate qualifies, the previous set stays (a chain
/// without validators cannot make another block).
fn end_epoch(
    state: &mut dyn StateWrite,
    params: &StakingParams,
    height: u64,
    out: &mut EndBlock,
) -> Result<(), StorageError> {
    let prev = state.active_set()?;
    let next = compute_active_set(&*state, params)?;
    if next.is_empty() {
        out.events.push(
            Event::new("staking.epoch")
                .stored("height", EventValue::U64(height))
                .stored("kept_previous_set", EventValue::U64(1)),
        );
        return Ok(());
    }
    let updates = validator_set::updates(&prev, &next);
    out.events.push(
        Event::new("staking.epoch")
            .stored("height", EventValue::U64(height))
            .stored("validators", EventValue::U64(next.len() as u64))
            .stored("updates", EventValue::U64(updates.len() as u64)),
    );
    out.validator_updates.extend(updates);
    if prev != next {
        state.replace_active_set(&prev, &next, joins_cometbft_at(height));
    }
    Ok(())
}
