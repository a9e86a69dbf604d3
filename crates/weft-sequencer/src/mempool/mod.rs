//! Mempool admission (CheckTx and recheck), the cache of verified
//! signatures that keeps recheck and proposals cheap, and the index of
//! where each executed transaction landed.

use std::collections::{HashSet, VecDeque};

use borsh::{BorshDeserialize, BorshSerialize};
use redb::ReadTransaction;
use weft_core::Hash;

use crate::{
    storage::{decode_stored, encode_stored, IndexWrite, StateRead, StorageError, TXS},
    transaction::{check_decoded, check_stateful, CheckedTx, NonceRule, Rejection},
};

/// How far beyond an account's nonce a pending transaction may be.
pub const MAX_NONCE_AHEAD: u64 = 32;

/// Hashes of transactions whose signatures verified. A pure cache: a hit
/// skips re-verifying bytes that verified before, so outcomes never depend
/// on it. Bounded, oldest forgotten first.
pub struct SignatureCache {
    set: HashSet<Hash>,
    order: VecDeque<Hash>,
    capacity: usize,
}

impl SignatureCache {
    /// A cache holding at most `capacity` hashes.
    pub fn new(capacity: usize) -> Self {
        SignatureCache {
            set: HashSet::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    /// Stateless checks, verifying the signature unless these exact bytes
    /// verified before.
    pub fn check_stateless(
        &mut self,
        bytes: &[u8],
        chain_id: &str,
    ) -> Result<CheckedTx, Rejection> {
        let checked = check_decoded(bytes, chain_id)?;
        if !self.set.contains(&checked.hash) {
            checked
                .tx
                .verify_signature()
                .map_err(|e| Rejection::new(weft_core::TxCode::BadSignature, e.to_string()))?;
            self.insert(checked.hash);
        }
        Ok(checked)
    }

    fn insert(&mut self, hash: Hash) {
        if self.capacity == 0 || !self.set.insert(hash) {
            return;
        }
        self.order.push_back(hash);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }
}

/// CheckTx for a new transaction: every stateless check, then nonce window,
/// limits and affordability against committed state.
pub fn check_new<S: StateRead>(
    cache: &mut SignatureCache,
    state: &S,
    chain_id: &str,
    bytes: &[u8],
) -> Result<CheckedTx, Rejection> {
    let checked = cache.check_stateless(bytes, chain_id)?;
    check_stateful(
        state,
        &checked,
        NonceRule::Pending {
            max_ahead: MAX_NONCE_AHEAD,
        },
    )?;
    Ok(checked)
}

/// Recheck after a block: the signature verified on admission, so only
/// decoding and the stateful rules run again (pitfall: recheck is on the
/// block path).
pub fn recheck<S: StateRead>(
    state: &S,
    chain_id: &str,
    bytes: &[u8],
) -> Result<CheckedTx, Rejection> {
    let checked = check_decoded(bytes, chain_id)?;
    check_stateful(
        state,
        &checked,
        NonceRule::Pending {
            max_ahead: MAX_NONCE_AHEAD,
        },
    )?;
    Ok(checked)
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
}

/// Index rows: tx hash → location, for one block.
pub struct TxLocations(pub Vec<(Hash, TxLocation)>);

impl IndexWrite for TxLocations {
    fn write(&self, txn: &redb::WriteTransaction) -> Result<(), StorageError> {
        let mut t = txn.open_table(TXS)?;
        for (hash, loc) in &self.0 {
            t.insert(hash.0.as_slice(), encode_stored(loc).as_slice())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_is_bounded_and_forgets_oldest() {
        let mut c = SignatureCache::new(2);
        let h = |i: u8| Hash([i; 32]);
        c.insert(h(1));
        c.insert(h(2));
        c.insert(h(3));
        assert!(!c.set.contains(&h(1)));
        assert!(c.set.contains(&h(2)) && c.set.contains(&h(3)));
        assert_eq!(c.order.len(), 2);
    }
}
