//! Where each executed transaction landed: tx hash → (height, index, code),
//! with a per-height list so entries older than the retention window are
//! pruned in the same atomic commit.

use borsh::{BorshDeserialize, BorshSerialize};
use redb::ReadTransaction;
use weft_core::Hash;

use crate::storage::{decode_stored, encode_stored, IndexWrite, StorageError, TXS, TXS_BY_HEIGHT};

/// Where an executed transaction landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, serde::Serialize)]
pub struct TxLocation {
    /// Block height.
    pub height: u64,
    /// Position in the block's tx list (0 is the commitments item).
    pub index: u32,
    /// Its result code.
    pub code: u32,
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
    let t = txn.open_table(TXS)?;
    let v = t.get(hash.0.as_slice())?;
    v.map(|v| decode_stored(&format!("txs/{hash}"), v.value()))
        .transpose()
}
