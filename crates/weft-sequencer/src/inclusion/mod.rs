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
//! Lists are on only when genesis has an `inclusion` section with
//! `enabled` and CometBFT's vote extensions are on; otherwise this
//! component writes nothing, so such a chain hashes exactly as before.

pub mod list;
pub mod rule;
pub mod state;

#[cfg(test)]
mod tests;

use weft_core::InclusionParams;

use crate::{
    component::{
        BlockContext, BlockSummary, Component, ComponentParams, EndBlock, Genesis, ParamsRead,
        ParamsWrite,
    },
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
/// CometBFT's consensus limits and its first validators. Written only on a
/// chain with an `inclusion` section.
pub fn record_genesis(
    state: &mut dyn StateWrite,
    limits: ConsensusLimits,
    validator_keys: &[[u8; 32]],
) -> Result<(), StorageError> {
    if state
        .optional_component_params::<InclusionParams>()?
        .is_none()
    {
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
    Ok(extended.then_some(params))
}
