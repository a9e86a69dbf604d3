//! Batch queries: a rollup's batch at a height with the proofs that tie it
//! to the block's `data_hash`.

use weft_core::{block::prove_batch, RollupBatchProof, RollupId};

use super::state::{batch_items, block_record};
use crate::storage::{Storage, StorageError};

/// The rollup's batch at `height` with proofs; `None` if the height is not
/// committed yet.
pub fn batch(
    storage: &Storage,
    rollup_id: &RollupId,
    height: u64,
) -> Result<Option<RollupBatchProof>, StorageError> {
    let txn = storage.read()?;
    let Some(record) = block_record(&txn, height)? else {
        return Ok(None);
    };
    let items = batch_items(&txn, rollup_id, height)?;
    prove_batch(
        height,
        *rollup_id,
        &record.tx_hashes,
        &record.batch_roots,
        items,
        record.commitments,
    )
    .map(Some)
    .ok_or_else(|| StorageError::Corrupt(format!("block index at height {height}")))
}
