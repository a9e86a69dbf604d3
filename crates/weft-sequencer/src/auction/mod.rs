//! The builder auction's consensus side (docs/builders.md): a block may
//! carry builders' signed bids right after its commitments item; each bid's
//! bundles lead their rollups' batches, and its amount is paid from the
//! builder's balance into the reward pool.
//!
//! - [`rules`]: the checks every validator re-applies to a bid in a block,
//!   from chain state alone (signature, chain, height and parent, reserve,
//!   funds), deterministic.
//! - [`fetch`]: the proposer side: winners fetched from relays as soon as a
//!   height commits, under a deadline, so PrepareProposal never waits on
//!   the network.
//!
//! Bids are allowed only when genesis has an `auction` section; without one
//! this component writes nothing, so such a chain hashes exactly as before.

pub mod fetch;
pub mod rules;

#[cfg(test)]
mod tests;

use weft_core::{AuctionParams, Hash};

use crate::{
    component::{Component, ComponentParams, Genesis, ParamsRead, ParamsWrite},
    storage::{decode_stored, encode_stored, StateRead, StateWrite, StorageError},
};

/// Storage keys owned by the auction.
pub mod keys {
    /// The auction parameters.
    pub const PARAMS: &str = "auction/params";
    /// The hash of the last finalized block: the parent every bid in the
    /// next block must name.
    pub const PARENT_HASH: &str = "auction/parent_hash";
}

impl ComponentParams for AuctionParams {
    const KEY: &'static str = keys::PARAMS;
    const VERSION: u8 = 1;
}

/// The auction component.
pub struct Auction;

impl Component for Auction {
    fn name(&self) -> &'static str {
        "auction"
    }

    fn init_chain(
        &self,
        state: &mut dyn StateWrite,
        genesis: &Genesis<'_>,
    ) -> Result<(), StorageError> {
        if let Some(params) = &genesis.app_state.auction {
            params
                .check()
                .map_err(|e| StorageError::Corrupt(format!("genesis auction section: {e}")))?;
            state.put_component_params(params);
        }
        Ok(())
    }
}

/// The auction parameters when bids are allowed on this chain.
pub fn enabled<S: StateRead + ?Sized>(state: &S) -> Result<Option<AuctionParams>, StorageError> {
    Ok(state
        .optional_component_params::<AuctionParams>()?
        .filter(|p| p.enabled))
}

/// Records the hash of the block being finalized, which the next block's
/// bids must name as their parent. CometBFT gives the app a block's hash
/// only in ProcessProposal and FinalizeBlock, never the parent's in
/// PrepareProposal, so the chain keeps it. Written only on a chain with an
/// auction section.
pub fn record_block_hash(state: &mut dyn StateWrite, hash: Hash) -> Result<(), StorageError> {
    if state
        .optional_component_params::<AuctionParams>()?
        .is_none()
    {
        return Ok(());
    }
    state.put_raw(keys::PARENT_HASH.into(), encode_stored(&hash));
    Ok(())
}

/// The hash of the last finalized block, if one was recorded.
pub fn parent_hash<S: StateRead + ?Sized>(state: &S) -> Result<Option<Hash>, StorageError> {
    state
        .get_raw(keys::PARENT_HASH)?
        .map(|b| decode_stored(keys::PARENT_HASH, &b))
        .transpose()
}
