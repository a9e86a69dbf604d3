//! Where each executed transaction landed: tx hash → (height, index, code),
//! with a per-height list so entries older than the retention window are
//! pruned in the same atomic commit.

use borsh::{BorshDeserialize, BorshSerialize};
use redb::ReadTransaction;
use weft_core::Hash;

use redb::TableDefinition;

use crate::{
    component::{Component, FinalizedBlock},
    storage::{decode_stored, encode_stored, read_table, IndexWrite, StorageError},
};

/// Tx hash → location.
pub(crate) const TXS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("txs");
/// Height → the hashes located at it, so old locations can be pruned.
pub(crate) const TXS_BY_HEIGHT: TableDefinition<u64, &[u8]> = TableDefinition::new("txs_by_height");

/// The transaction index as a component: every finalized block's tx
/// locations, and the pruning of those older than the retention window,
/// in the block's own atomic commit.
pub struct TxIndex {
    /// How many heights of locations are kept.
    pub retention_blocks: u64,
}

impl Component for TxIndex {
    fn name(&self) -> &'static str {
        "tx_index"
    }

    fn create_tables(&self, txn: &redb::WriteTransaction) -> Result<(), StorageError> {
        txn.open_table(TXS)?;
        txn.open_table(TXS_BY_HEIGHT)?;
        Ok(())
    }

    fn index_block(&self, block: &FinalizedBlock<'_>, out: &mut Vec<Box<dyn IndexWrite + Send>>) {
        out.push(Box::new(TxLocations {
            height: block.height,
            entries: block
                .tx_results
                .iter()
                .map(|(index, hash, code)| {
                    (
                        *hash,
                        TxLocation {
                            height: block.height,
                            index: *index,
                            code: *code,
                            listed: block.listed.and_then(|l| {
                                l.txs.iter().find(|t| t.hash == *hash).map(|t| Listing {
                                    height: l.height,
                                    power: t.power,
                                    total_power: l.total_power,
                                })
                            }),
                        },
                    )
                })
                .collect(),
        }));
        if let Some(old) = block.height.checked_sub(self.retention_blocks) {
            out.push(Box::new(TxIndexPrune { height: old }));
        }
    }
}

/// Where an executed transaction landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, serde::Serialize)]
pub struct TxLocation {
    /// Block height.
    pub height: u64,
    /// Position in the block's tx list (0 is the commitments item).
    pub index: u32,
    /// Its result code.
    pub code: u32,
    /// Whether validators' inclusion lists named it for this block.
    pub listed: Option<Listing>,
}

/// How a transaction came to be owed by its block: the validators whose
/// vote extensions at `height` listed it, by power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, serde::Serialize)]
pub struct Listing {
    /// The height whose precommits carried the lists (the block's minus one).
    pub height: u64,
    /// Voting power of the validators whose lists named it.
    pub power: u64,
    /// Total voting power at that height.
    pub total_power: u64,
}

/// Index rows for one block.
pub struct TxLocations {
    /// The block's height.
    pub height: u64,
    /// Each transaction's hash and location.
    pub entries: Vec<(Hash, TxLocation)>,
}

impl IndexWrite for TxLocations {
    fn write(&self, txn: &redb::WriteTransaction) -> Result<(), StorageError> {
        let mut t = txn.open_table(TXS)?;
        for (hash, loc) in &self.entries {
            t.insert(hash.0.as_slice(), encode_stored(loc).as_slice())?;
        }
        let hashes: Vec<Hash> = self.entries.iter().map(|(h, _)| *h).collect();
        let mut by_height = txn.open_table(TXS_BY_HEIGHT)?;
        by_height.insert(self.height, encode_stored(&hashes).as_slice())?;
        Ok(())
    }
}

/// Forgets the locations of the transactions of one old height.
pub struct TxIndexPrune {
    /// The height to forget.
    pub height: u64,
}

impl IndexWrite for TxIndexPrune {
    fn write(&self, txn: &redb::WriteTransaction) -> Result<(), StorageError> {
        let mut by_height = txn.open_table(TXS_BY_HEIGHT)?;
        let Some(old) = by_height.remove(self.height)? else {
            return Ok(());
        };
        let hashes: Vec<Hash> =
            decode_stored(&format!("txs_by_height/{}", self.height), old.value())?;
        drop(old);
        let mut t = txn.open_table(TXS)?;
        for h in hashes {
            t.remove(h.0.as_slice())?;
        }
        Ok(())
    }
}

/// Looks up where a transaction landed.
pub fn tx_location(txn: &ReadTransaction, hash: &Hash) -> Result<Option<TxLocation>, StorageError> {
    let Some(t) = read_table(txn, TXS)? else {
        return Ok(None);
    };
    let v = t.get(hash.0.as_slice())?;
    v.map(|v| decode_stored(&format!("txs/{hash}"), v.value()))
        .transpose()
}
