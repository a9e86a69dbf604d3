//! The block index: for every committed height, the block's tx hashes, its
//! commitments and each rollup's batch root; and each rollup's batch items.
//! Not authenticated by the app hash (the header's `data_hash` covers it),
//! but written in the same atomic commit as the state of that height.

use borsh::{BorshDeserialize, BorshSerialize};
use redb::ReadTransaction;
use weft_core::{BlockCommitments, Hash, RollupId};

use redb::TableDefinition;

use crate::storage::{decode_stored, encode_stored, read_table, IndexWrite, StorageError};

/// Block records by height.
pub(crate) const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
/// Each rollup's items by `batch_key` (rollup id ‖ height).
pub(crate) const BATCHES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("batches");

/// What is kept of each committed block.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct BlockRecord {
    /// Height.
    pub height: u64,
    /// SHA-256 of every CometBFT tx in order, item 0 = commitments.
    pub tx_hashes: Vec<Hash>,
    /// The commitments the block carried.
    pub commitments: BlockCommitments,
    /// Every rollup with data and its batch root, in id order.
    pub batch_roots: Vec<(RollupId, Hash)>,
}

/// `rollup_id ‖ height (big-endian)`: a rollup's batches sort by height.
pub fn batch_key(rollup_id: &RollupId, height: u64) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(&rollup_id.0);
    k[32..].copy_from_slice(&height.to_be_bytes());
    k
}

/// The index rows for one block.
pub struct BlockIndex {
    /// The block record.
    pub record: BlockRecord,
    /// Each rollup's items, in id order.
    pub batches: Vec<(RollupId, Vec<Vec<u8>>)>,
}

impl IndexWrite for BlockIndex {
    fn write(&self, txn: &redb::WriteTransaction) -> Result<(), StorageError> {
        let mut blocks = txn.open_table(BLOCKS)?;
        blocks.insert(self.record.height, encode_stored(&self.record).as_slice())?;
        let mut batches = txn.open_table(BATCHES)?;
        for (id, items) in &self.batches {
            batches.insert(
                batch_key(id, self.record.height).as_slice(),
                encode_stored(items).as_slice(),
            )?;
        }
        Ok(())
    }
}

/// Reads a block record.
pub fn block_record(
    txn: &ReadTransaction,
    height: u64,
) -> Result<Option<BlockRecord>, StorageError> {
    let Some(blocks) = read_table(txn, BLOCKS)? else {
        return Ok(None);
    };
    let value = blocks.get(height)?;
    value
        .map(|v| decode_stored(&format!("blocks/{height}"), v.value()))
        .transpose()
}

/// Reads a rollup's items at a height (empty when it had none).
pub fn batch_items(
    txn: &ReadTransaction,
    rollup_id: &RollupId,
    height: u64,
) -> Result<Vec<Vec<u8>>, StorageError> {
    let Some(batches) = read_table(txn, BATCHES)? else {
        return Ok(Vec::new());
    };
    let value = batches.get(batch_key(rollup_id, height).as_slice())?;
    value
        .map(|v| decode_stored(&format!("batches/{rollup_id}/{height}"), v.value()))
        .transpose()
        .map(Option::unwrap_or_default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_are_pinned() {
        let id = RollupId::from_name("alpha");
        insta::assert_snapshot!(hex::encode(batch_key(&id, 258)));
    }
}
