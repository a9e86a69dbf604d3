//! Inclusion lists: censorship resistance carried in CometBFT's vote
//! extensions (docs/censorship-resistance.md).
//!
//! - **ExtendVote**: each validator lists what waited in its mempool for
//!   `inclusion_delay_blocks` ([`list::inclusion_list`]).
//! - **VerifyVoteExtension** refuses only what is malformed or over the
//!   bound, never on the node's own mempool ([`list::verify_extension`]).
//! - **PrepareProposal** of height H+1 carries the extensions of height H
//!   with their signatures in a [`weft_core::inclusion::ListedCommit`]
//!   item and appends listed transactions after its own choice.
//! - **ProcessProposal** checks the item's signatures and power against
//!   the validators of height H and refuses a proposal that leaves out a
//!   listed transaction it cannot excuse ([`rule`]).
//!
//! Lists are on only when the chain has inclusion parameters with
//! `enabled` (from genesis's `inclusion` section or a passed
//! `EnableInclusionLists` proposal, [`enable`]) and CometBFT's vote
//! extensions are on; otherwise this component writes nothing, so such a
//! chain hashes exactly as before.

pub mod list;
pub mod rule;
pub mod state;

#[cfg(test)]
mod tests;

use weft_core::{ConsensusParams, InclusionParams};

use crate::{
    component::{
        BlockContext, BlockSummary, Component, ComponentParams, ConsensusParamsUpdate, EndBlock,
        Genesis, ParamsRead, ParamsWrite,
    },
    staking::state::StakingRead,
    storage::{StateRead, StateWrite, StorageError},
};
use state::{ConsensusLimits, InclusionRead, InclusionWrite};

impl ComponentParams for InclusionParams {
    const KEY: &'static str = state::PARAMS_KEY;
    const VERSION: u8 = 1;
}

/// The inclusion-list component.
pub struct Inclusion;

impl Component for Inclusion {
    fn name(&self) -> &'static str {
        "inclusion"
    }

    fn init_chain(
        &self,
        state: &mut dyn StateWrite,
        genesis: &Genesis<'_>,
    ) -> Result<(), StorageError> {
        if let Some(params) = &genesis.app_state.inclusion {
            params
                .check()
                .map_err(|e| StorageError::Corrupt(format!("genesis inclusion section: {e}")))?;
            state.put_component_params(params);
        }
        Ok(())
    }

    /// Records the key of every validator CometBFT is told about, so the
    /// extensions of any later height can be checked by address. Runs
    /// after staking in the component order, so it sees its updates.
    fn end_block(
        &self,
        state: &mut dyn StateWrite,
        _ctx: &BlockContext,
        _block: &BlockSummary,
        out: &mut EndBlock,
    ) -> Result<(), StorageError> {
        if state
            .optional_component_params::<InclusionParams>()?
            .is_none()
        {
            return Ok(());
        }
        for (key, power) in &out.validator_updates {
            if *power > 0 {
                state.record_validator_key(key)?;
            }
        }
        Ok(())
    }
}

/// What InitChain tells the app that the component hooks do not see:
/// CometBFT's consensus limits and its first validators. The limits are
/// written on a chain with an `inclusion` section, or whose genesis turns
/// vote extensions on (so an `EnableInclusionLists` proposal, which must
/// not send CometBFT an enable height once extensions are on, is refused
/// there); the keys only on a chain with an `inclusion` section.
pub fn record_genesis(
    state: &mut dyn StateWrite,
    limits: ConsensusLimits,
    validator_keys: &[[u8; 32]],
) -> Result<(), StorageError> {
    if state
        .optional_component_params::<InclusionParams>()?
        .is_none()
    {
        if limits.vote_extensions_enable_height > 0 {
            state.put_consensus_limits(&limits);
        }
        return Ok(());
    }
    state.put_consensus_limits(&limits);
    for key in validator_keys {
        state.record_validator_key(key)?;
    }
    Ok(())
}

/// Whether the block at `height` must carry the listed extensions of
/// `height - 1`: lists are enabled and CometBFT extended that height's
/// votes (it does from `vote_extensions_enable_height` on).
pub fn required<S: StateRead + ?Sized>(
    state: &S,
    height: u64,
) -> Result<Option<InclusionParams>, StorageError> {
    let Some(params) = state.optional_component_params::<InclusionParams>()? else {
        return Ok(None);
    };
    if !params.enabled {
        return Ok(None);
    }
    let limits = state.consensus_limits()?;
    let previous = height.saturating_sub(1);
    let extended = limits.vote_extensions_enable_height > 0
        && previous >= limits.vote_extensions_enable_height;
    if !extended {
        return Ok(None);
    }
    // The votes this block carries kept to the bound of their own height:
    // after a proposal lowered it, the block right after still carries
    // lists up to the old one (refusing them would leave no valid proposal
    // for that height).
    let mut params = params;
    if let Some(bound) = state.previous_list_bound(height)? {
        params.max_inclusion_list_bytes = params.max_inclusion_list_bytes.max(bound);
    }
    Ok(Some(params))
}

/// Blocks between the block that passes an `EnableInclusionLists`
/// proposal and the first height whose votes CometBFT extends. CometBFT
/// takes any height after the current one; two leave a block in which
/// the keys recorded here (the active set after this block's updates)
/// are exactly the set that signs the first extended votes, since
/// updates sent at height H take effect at H + 2.
pub const VOTE_EXTENSIONS_ACTIVATION_DELAY: u64 = 2;

/// Whether CometBFT's vote extensions are on or scheduled on this chain
/// (then an `EnableInclusionLists` proposal has nothing to do, and sending
/// CometBFT another enable height would stop the chain).
pub fn vote_extensions_scheduled<S: StateRead + ?Sized>(state: &S) -> Result<bool, StorageError> {
    Ok(state.consensus_limits()?.vote_extensions_enable_height > 0)
}

/// Whether a `ChangeInclusionParams` proposal can apply: the chain has
/// inclusion parameters (so the keys of every validator since are
/// recorded) and vote extensions are on or scheduled. A chain whose
/// genesis turned vote extensions on without an `inclusion` section has
/// neither the keys nor a way to get them here, so it cannot.
pub fn can_change_params<S: StateRead + ?Sized>(state: &S) -> Result<bool, StorageError> {
    Ok(state
        .optional_component_params::<InclusionParams>()?
        .is_some()
        && vote_extensions_scheduled(state)?)
}

/// Executes a passed `EnableInclusionLists` proposal at the end of block
/// `height`: asks CometBFT to extend votes from `height +
/// VOTE_EXTENSIONS_ACTIVATION_DELAY` (restating `consensus`), records the
/// same limits and the keys of the validators that will sign those
/// votes, and writes the inclusion parameters, so [`required`] switches
/// on at the first height whose previous height was extended. Does
/// nothing (`no_effect`) if vote extensions are already on or scheduled
/// (another proposal got there first) or if the parameters no longer
/// pass their checks: a block never fails for a proposal, and CometBFT is
/// never sent an update it would refuse.
pub fn enable(
    state: &mut dyn StateWrite,
    height: u64,
    params: &InclusionParams,
    consensus: &ConsensusParams,
    out: &mut EndBlock,
) -> Result<&'static str, StorageError> {
    if vote_extensions_scheduled(&*state)?
        || out.consensus_params.is_some()
        || !params.enabled
        || params.check().is_err()
        || consensus.check().is_err()
    {
        return Ok("no_effect");
    }
    let Some(enable_height) = height.checked_add(VOTE_EXTENSIONS_ACTIVATION_DELAY) else {
        return Ok("no_effect");
    };
    state.put_consensus_limits(&ConsensusLimits {
        block_max_bytes: consensus.block_max_bytes,
        evidence_max_bytes: consensus.evidence_max_bytes,
        vote_extensions_enable_height: enable_height,
    });
    // The set CometBFT will have at `enable_height` is the stored active
    // set after this block's updates (staking runs before governance);
    // later updates are recorded by `end_block` as they are sent.
    for v in state.active_set()? {
        state.record_validator_key(&v.consensus_key)?;
    }
    for (key, power) in &out.validator_updates {
        if *power > 0 {
            state.record_validator_key(key)?;
        }
    }
    state.put_component_params(params);
    out.consensus_params = Some(ConsensusParamsUpdate {
        consensus: consensus.clone(),
        vote_extensions_enable_height: enable_height,
    });
    Ok("applied")
}

/// Executes a passed `ChangeInclusionParams` proposal at the end of block
/// `height`: the new parameters apply from the next block. `no_effect` if
/// the chain has no inclusion parameters or vote extensions are not on or
/// scheduled (the proposal was refused then; the state cannot move back)
/// or the parameters fail their check.
pub fn change_params(
    state: &mut dyn StateWrite,
    height: u64,
    params: &InclusionParams,
) -> Result<&'static str, StorageError> {
    if !can_change_params(&*state)? || params.check().is_err() {
        return Ok("no_effect");
    }
    let current = state.component_params::<InclusionParams>()?;
    state.put_previous_list_bound(height, current.max_inclusion_list_bytes);
    state.put_component_params(params);
    Ok("applied")
}
