//! Rollups: submission of opaque rollup data (sized and priced here, never
//! executed), the block's per-rollup batches, and the per-height index of
//! each rollup's batch that the batch API and proofs read.

pub mod actions;
pub mod query;
pub mod state;

use crate::{
    component::{Component, ComponentParams, FinalizedBlock, Genesis, ParamsWrite},
    error::StorageError,
    storage::{IndexWrite, StateWrite},
};
use state::{BlockIndex, BlockRecord, BATCHES, BLOCKS};

/// Parameters owned by rollups (defined in `weft_core`: a
/// `ChangeRollupParams` proposal carries them).
pub use weft_core::RollupParams;

impl ComponentParams for RollupParams {
    const KEY: &'static str = "rollups/params";
    const VERSION: u8 = 1;
}

/// The rollups component.
pub struct Rollups;

impl Component for Rollups {
    fn name(&self) -> &'static str {
        "rollups"
    }

    fn create_tables(&self, txn: &redb::WriteTransaction) -> Result<(), StorageError> {
        txn.open_table(BLOCKS)?;
        txn.open_table(BATCHES)?;
        Ok(())
    }

    fn init_chain(
        &self,
        state: &mut dyn StateWrite,
        genesis: &Genesis<'_>,
    ) -> Result<(), StorageError> {
        state.put_component_params(&genesis.app_state.params.rollups());
        Ok(())
    }

    fn index_block(&self, block: &FinalizedBlock<'_>, out: &mut Vec<Box<dyn IndexWrite + Send>>) {
        out.push(Box::new(BlockIndex {
            record: BlockRecord {
                height: block.height,
                tx_hashes: block.tx_hashes.to_vec(),
                commitments: block.commitments,
                batch_roots: weft_core::block::batch_roots(block.batches),
            },
            batches: block
                .batches
                .iter()
                .map(|(id, items)| (*id, items.clone()))
                .collect(),
        }));
    }
}
