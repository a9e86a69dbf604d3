//! The block layout and what a conductor verifies.
//!
//! Item 0 of every block's CometBFT tx list is the block's
//! [`BlockCommitments`]; the rest are signed transactions. A rollup's batch
//! is the rollup data of the block's transactions for that rollup, in block
//! order. The commitments item sits in CometBFT's `data_hash`, so a proof
//! chain runs: signed header → `data_hash` → commitments → rollup batch.

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{
    encoding::{decode_strict, encode, DecodeError},
    hash::{sha256, sha256_parts, Hash},
    merkle::{self, Proof, ProofError},
    rollup::RollupId,
    transaction::base64_list,
};

/// Bytes that open a commitments item, so it can never pass for a tx.
pub const COMMITMENTS_MAGIC: [u8; 4] = *b"WFTC";
/// The layout version this code writes and accepts.
pub const COMMITMENTS_VERSION: u8 = 1;
/// Encoded size of a commitments item.
pub const COMMITMENTS_ITEM_LEN: usize = 4 + 1 + 32 + 32;

/// The per-block commitments: item 0 of the block.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct BlockCommitments {
    /// Layout version (1).
    pub version: u8,
    /// Merkle root over the sorted ids of rollups with data in the block.
    pub rollup_ids_root: Hash,
    /// Merkle root over `H(rollup_id ‖ batch root)`, sorted by id.
    pub rollup_txs_root: Hash,
}

impl BlockCommitments {
    /// Commitments for a block whose batches are `batches` (empty batches
    /// must not be present).
    pub fn compute(batches: &BTreeMap<RollupId, Vec<Vec<u8>>>) -> Self {
        Self::from_roots(&batch_roots(batches))
    }

    /// Commitments from each rollup's batch root, sorted by id.
    pub fn from_roots(roots: &[(RollupId, Hash)]) -> Self {
        let ids: Vec<Hash> = roots
            .iter()
            .map(|(id, _)| merkle::leaf_hash(&id.0))
            .collect();
        let txs: Vec<Hash> = roots
            .iter()
            .map(|(id, root)| rollup_txs_leaf(id, root))
            .collect();
        BlockCommitments {
            version: COMMITMENTS_VERSION,
            rollup_ids_root: merkle::root_from_leaf_hashes(&ids),
            rollup_txs_root: merkle::root_from_leaf_hashes(&txs),
        }
    }

    /// The item's bytes: magic ‖ borsh.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = COMMITMENTS_MAGIC.to_vec();
        out.extend_from_slice(&encode(self));
        out
    }

    /// Decodes an item, refusing other magic, versions or lengths.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let body = bytes
            .strip_prefix(&COMMITMENTS_MAGIC[..])
            .ok_or_else(|| DecodeError::Invalid("not a commitments item (bad magic)".into()))?;
        let c: BlockCommitments = decode_strict(body, COMMITMENTS_ITEM_LEN - 4)?;
        if c.version != COMMITMENTS_VERSION {
            return Err(DecodeError::Invalid(format!(
                "commitments version {} unsupported",
                c.version
            )));
        }
        Ok(c)
    }
}

/// The leaf hash of one rollup in `rollup_txs_root`: the RFC 6962 leaf over
/// `H(rollup_id ‖ batch_root)`.
pub fn rollup_txs_leaf(rollup_id: &RollupId, batch_root: &Hash) -> Hash {
    merkle::leaf_hash(&sha256_parts(&[&rollup_id.0, &batch_root.0]).0)
}

/// Each rollup's batch root, in id order.
pub fn batch_roots(batches: &BTreeMap<RollupId, Vec<Vec<u8>>>) -> Vec<(RollupId, Hash)> {
    batches
        .iter()
        .map(|(id, items)| (*id, merkle::root(items)))
        .collect()
}

/// One rollup's share of a block.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct RollupBatch {
    /// Whose batch.
    pub rollup_id: RollupId,
    /// Rollup data items in block order.
    #[serde(with = "base64_list")]
    pub items: Vec<Vec<u8>>,
}

impl RollupBatch {
    /// Merkle root over the items.
    pub fn root(&self) -> Hash {
        merkle::root(&self.items)
    }
}

/// Proof that the batch is in the rollup-txs tree, at the same index as the
/// rollup's id in the ids tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchInclusion {
    /// The id's leaf in `rollup_ids_root`.
    pub ids_proof: Proof,
    /// The batch leaf in `rollup_txs_root`.
    pub txs_proof: Proof,
}

/// A neighbour of an absent rollup id in the sorted ids tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Neighbour {
    /// The present id.
    pub rollup_id: RollupId,
    /// Its proof in `rollup_ids_root`.
    pub proof: Proof,
}

/// Proof that a rollup has no data in a block: the ids tree is empty, or
/// the two adjacent present ids bracket it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollupAbsence {
    /// Number of rollups with data in the block.
    pub total: u64,
    /// The greatest present id below the absent one.
    pub left: Option<Neighbour>,
    /// The least present id above the absent one.
    pub right: Option<Neighbour>,
}

/// A rollup's batch at one height with everything needed to check it
/// against the block's `data_hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollupBatchProof {
    /// Block height.
    pub height: u64,
    /// Whose batch.
    pub rollup_id: RollupId,
    /// The batch's items in order (empty when the rollup had no data).
    #[serde(with = "base64_list")]
    pub items: Vec<Vec<u8>>,
    /// The block's commitments item.
    pub commitments: BlockCommitments,
    /// Item 0's inclusion in `data_hash` (leaf = H(item bytes)).
    pub commitments_proof: Proof,
    /// Present when `items` is non-empty.
    pub inclusion: Option<BatchInclusion>,
    /// Present when `items` is empty.
    pub absence: Option<RollupAbsence>,
}

/// Why a batch proof was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BatchProofError {
    /// The commitments item is not item 0 of the block, or not under `data_hash`.
    #[error("commitments are not in the block's data_hash: {0}")]
    Commitments(ProofError),
    /// The batch does not match `rollup_txs_root` / `rollup_ids_root`.
    #[error("batch is not committed in the block: {0}")]
    Batch(ProofError),
    /// Structural problems: missing parts, indices that disagree.
    #[error("malformed batch proof: {0}")]
    Malformed(&'static str),
}

impl RollupBatchProof {
    /// Verifies the whole chain from `data_hash` (taken from a header the
    /// caller has already verified) down to this rollup's batch.
    pub fn verify(&self, data_hash: &Hash, rollup_id: &RollupId) -> Result<(), BatchProofError> {
        use BatchProofError::*;
        if &self.rollup_id != rollup_id {
            return Err(Malformed("proof is for another rollup"));
        }
        if self.commitments_proof.index != 0 {
            return Err(Malformed("commitments must be item 0"));
        }
        let item_leaf = merkle::leaf_hash(&sha256(&self.commitments.encode()).0);
        self.commitments_proof
            .verify(data_hash, &item_leaf)
            .map_err(Commitments)?;

        let c = &self.commitments;
        let id_leaf = merkle::leaf_hash(&rollup_id.0);
        match (&self.inclusion, &self.absence, self.items.is_empty()) {
            (Some(inc), None, false) => {
                if inc.ids_proof.index != inc.txs_proof.index
                    || inc.ids_proof.total != inc.txs_proof.total
                {
                    return Err(Malformed("id and batch proofs disagree on position"));
                }
                inc.ids_proof
                    .verify(&c.rollup_ids_root, &id_leaf)
                    .map_err(Batch)?;
                let batch_root = merkle::root(&self.items);
                inc.txs_proof
                    .verify(&c.rollup_txs_root, &rollup_txs_leaf(rollup_id, &batch_root))
                    .map_err(Batch)
            }
            (None, Some(abs), true) => abs.verify(&c.rollup_ids_root, rollup_id),
            _ => Err(Malformed(
                "need inclusion for a non-empty batch, absence for an empty one",
            )),
        }
    }
}

impl RollupAbsence {
    fn verify(&self, ids_root: &Hash, id: &RollupId) -> Result<(), BatchProofError> {
        use BatchProofError::*;
        let check = |n: &Neighbour| -> Result<u64, BatchProofError> {
            if n.proof.total != self.total {
                return Err(Malformed("neighbour proof over a different tree size"));
            }
            n.proof
                .verify(ids_root, &merkle::leaf_hash(&n.rollup_id.0))
                .map_err(Batch)?;
            Ok(n.proof.index)
        };
        match (&self.left, &self.right) {
            (None, None) if self.total == 0 => {
                if *ids_root == merkle::empty_root() {
                    Ok(())
                } else {
                    Err(Batch(ProofError::RootMismatch))
                }
            }
            (Some(l), Some(r)) => {
                let (li, ri) = (check(l)?, check(r)?);
                // Checked although `li < total` after `check`: these numbers
                // come from the server, and no reasoning about them should
                // depend on a proof having verified first.
                if !(l.rollup_id < *id && *id < r.rollup_id) || li.checked_add(1) != Some(ri) {
                    return Err(Malformed("neighbours do not bracket the rollup"));
                }
                Ok(())
            }
            (None, Some(r)) => {
                if check(r)? != 0 || *id >= r.rollup_id {
                    return Err(Malformed("right neighbour is not the first id"));
                }
                Ok(())
            }
            (Some(l), None) => {
                if check(l)?.checked_add(1) != Some(self.total) || *id <= l.rollup_id {
                    return Err(Malformed("left neighbour is not the last id"));
                }
                Ok(())
            }
            (None, None) => Err(Malformed("absence needs neighbours in a non-empty block")),
        }
    }
}

/// Builds the proof for `rollup_id` at `height` from a block's stored parts:
/// the hashes of all its CometBFT txs (item 0 = commitments), every
/// rollup's batch root in id order, and this rollup's items (empty when
/// absent). This is what the sequencer serves. `None` when the parts are
/// inconsistent (no txs, or items for an absent rollup).
pub fn prove_batch(
    height: u64,
    rollup_id: RollupId,
    tx_hashes: &[Hash],
    roots: &[(RollupId, Hash)],
    items: Vec<Vec<u8>>,
    commitments: BlockCommitments,
) -> Option<RollupBatchProof> {
    if tx_hashes.is_empty() {
        return None;
    }
    let data_leaves: Vec<Hash> = tx_hashes.iter().map(|h| merkle::leaf_hash(&h.0)).collect();
    let commitments_proof = Proof::for_leaf(&data_leaves, 0);
    let ids: Vec<RollupId> = roots.iter().map(|(id, _)| *id).collect();
    let id_leaves: Vec<Hash> = ids.iter().map(|id| merkle::leaf_hash(&id.0)).collect();
    let (items, inclusion, absence) = match ids.binary_search(&rollup_id) {
        Ok(i) => {
            let tx_leaves: Vec<Hash> = roots
                .iter()
                .map(|(id, root)| rollup_txs_leaf(id, root))
                .collect();
            let inc = BatchInclusion {
                ids_proof: Proof::for_leaf(&id_leaves, i),
                txs_proof: Proof::for_leaf(&tx_leaves, i),
            };
            (items, Some(inc), None)
        }
        Err(_) if !items.is_empty() => return None,
        Err(i) => {
            let neighbour = |j: usize| Neighbour {
                rollup_id: ids[j],
                proof: Proof::for_leaf(&id_leaves, j),
            };
            let abs = RollupAbsence {
                total: ids.len() as u64,
                left: i.checked_sub(1).map(neighbour),
                right: (i < ids.len()).then(|| neighbour(i)),
            };
            (Vec::new(), None, Some(abs))
        }
    };
    Some(RollupBatchProof {
        height,
        rollup_id,
        items,
        commitments,
        commitments_proof,
        inclusion,
        absence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn block(
        rollups: &[(&str, &[&[u8]])],
    ) -> (
        BTreeMap<RollupId, Vec<Vec<u8>>>,
        BlockCommitments,
        Vec<Hash>,
    ) {
        let mut batches = BTreeMap::new();
        for (name, items) in rollups {
            batches.insert(
                RollupId::from_name(name),
                items.iter().map(|i| i.to_vec()).collect(),
            );
        }
        let c = BlockCommitments::compute(&batches);
        let mut hashes = vec![sha256(&c.encode())];
        hashes.extend((0..5u8).map(|i| sha256(&[i])));
        (batches, c, hashes)
    }

    fn prove(
        h: u64,
        id: RollupId,
        hashes: &[Hash],
        batches: &BTreeMap<RollupId, Vec<Vec<u8>>>,
        c: BlockCommitments,
    ) -> RollupBatchProof {
        let items = batches.get(&id).cloned().unwrap_or_default();
        prove_batch(h, id, hashes, &batch_roots(batches), items, c).unwrap()
    }

    fn data_hash(hashes: &[Hash]) -> Hash {
        merkle::root_from_leaf_hashes(
            &hashes
                .iter()
                .map(|h| merkle::leaf_hash(&h.0))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn commitments_item_is_pinned_and_strict() {
        let (_, c, _) = block(&[("alpha", &[b"a1", b"a2"]), ("beta", &[b"b1"])]);
        let bytes = c.encode();
        assert_eq!(bytes.len(), COMMITMENTS_ITEM_LEN);
        insta::assert_snapshot!(hex::encode(&bytes));
        assert_eq!(BlockCommitments::decode(&bytes).unwrap(), c);
        let mut long = bytes.clone();
        long.push(0);
        assert!(BlockCommitments::decode(&long).is_err());
        let mut v2 = bytes.clone();
        v2[4] = 2;
        assert!(BlockCommitments::decode(&v2).is_err());
        assert!(BlockCommitments::decode(&bytes[1..]).is_err());
    }

    #[test]
    fn present_and_absent_batches_verify_and_tampering_fails() {
        let names = ["alpha", "beta", "gamma", "delta"];
        let (batches, c, hashes) = block(&[
            ("alpha", &[b"a1", b"a2"]),
            ("beta", &[b"b1"]),
            ("gamma", &[b"g1", b"g2", b"g3"]),
        ]);
        let dh = data_hash(&hashes);
        for name in names.iter().chain(["x", "y", "zz", "0"].iter()) {
            let id = RollupId::from_name(name);
            let p = prove(9, id, &hashes, &batches, c);
            p.verify(&dh, &id).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(p.items.is_empty(), !batches.contains_key(&id));
            if !p.items.is_empty() {
                let mut t = p.clone();
                t.items[0].push(1);
                assert!(t.verify(&dh, &id).is_err(), "altered item");
                let mut t = p.clone();
                t.items.pop();
                if !t.items.is_empty() {
                    assert!(t.verify(&dh, &id).is_err(), "dropped item");
                }
                let mut t = p.clone();
                if t.items.len() > 1 {
                    t.items.swap(0, 1);
                    assert!(t.verify(&dh, &id).is_err(), "reordered");
                }
                let mut t = p.clone();
                t.items.clear();
                assert!(t.verify(&dh, &id).is_err(), "emptied");
            }
            assert!(p.verify(&sha256(b"other"), &id).is_err(), "wrong data hash");
        }
        // Another rollup's batch presented as ours.
        let a = RollupId::from_name("alpha");
        let b = RollupId::from_name("beta");
        let mut p = prove(9, b, &hashes, &batches, c);
        p.rollup_id = a;
        assert!(p.verify(&dh, &a).is_err());
    }

    // The conductor's entry point with the numbers a hostile server picks:
    // every one must come back as an error, quickly, with no panic.
    #[test]
    fn hostile_totals_and_indices_are_errors() {
        let (batches, c, hashes) = block(&[("alpha", &[b"a"]), ("gamma", &[b"g"])]);
        let dh = data_hash(&hashes);
        let huge = [u64::MAX, (1 << 63) + 1, 1 << 63];

        let alpha = RollupId::from_name("alpha");
        let honest = prove(2, alpha, &hashes, &batches, c);
        for total in huge {
            let mut p = honest.clone();
            p.commitments_proof.total = total;
            p.commitments_proof.aunts.truncate(1);
            assert!(p.verify(&dh, &alpha).is_err(), "commitments total {total}");
            let mut p = honest.clone();
            let inc = p.inclusion.as_mut().unwrap();
            for proof in [&mut inc.ids_proof, &mut inc.txs_proof] {
                proof.total = total;
                proof.index = total - 1;
            }
            assert!(p.verify(&dh, &alpha).is_err(), "inclusion total {total}");
        }

        let absent = RollupId::from_name("x");
        let honest = prove(2, absent, &hashes, &batches, c);
        for total in huge {
            let mut p = honest.clone();
            let abs = p.absence.as_mut().unwrap();
            abs.total = total;
            for n in [abs.left.as_mut(), abs.right.as_mut()]
                .into_iter()
                .flatten()
            {
                n.proof.total = total;
                n.proof.index = total - 1;
            }
            assert!(p.verify(&dh, &absent).is_err(), "absence total {total}");
        }
    }

    #[test]
    fn empty_block_proves_absence() {
        let (batches, c, hashes) = block(&[]);
        let id = RollupId::from_name("alpha");
        let p = prove(3, id, &hashes, &batches, c);
        p.verify(&data_hash(&hashes), &id).unwrap();
    }

    #[test]
    fn absence_cannot_be_claimed_for_a_present_rollup() {
        let (batches, c, hashes) =
            block(&[("alpha", &[b"a"]), ("beta", &[b"b"]), ("gamma", &[b"g"])]);
        let dh = data_hash(&hashes);
        let present = RollupId::from_name("beta");
        // Build absence-style proofs from every pair of neighbours: none may verify.
        let ids: Vec<RollupId> = batches.keys().copied().collect();
        let leaves: Vec<Hash> = ids.iter().map(|i| merkle::leaf_hash(&i.0)).collect();
        let base = prove(1, present, &hashes, &batches, c);
        for l in 0..ids.len() {
            for r in 0..ids.len() {
                let mut p = base.clone();
                p.items.clear();
                p.inclusion = None;
                p.absence = Some(RollupAbsence {
                    total: ids.len() as u64,
                    left: Some(Neighbour {
                        rollup_id: ids[l],
                        proof: Proof::for_leaf(&leaves, l),
                    }),
                    right: Some(Neighbour {
                        rollup_id: ids[r],
                        proof: Proof::for_leaf(&leaves, r),
                    }),
                });
                assert!(p.verify(&dh, &present).is_err());
            }
        }
    }

    /// Every proof inside a batch proof, so a mutation can pick one.
    fn proofs_mut(p: &mut RollupBatchProof) -> Vec<&mut Proof> {
        let mut all = vec![&mut p.commitments_proof];
        if let Some(inc) = p.inclusion.as_mut() {
            all.push(&mut inc.ids_proof);
            all.push(&mut inc.txs_proof);
        }
        if let Some(abs) = p.absence.as_mut() {
            for n in [abs.left.as_mut(), abs.right.as_mut()]
                .into_iter()
                .flatten()
            {
                all.push(&mut n.proof);
            }
        }
        all
    }

    fn hostile_u64() -> impl Strategy<Value = u64> {
        prop_oneof![
            any::<u64>(),
            0u64..8,
            (1u64 << 63) - 2..=(1u64 << 63) + 2,
            u64::MAX - 4..=u64::MAX,
        ]
    }

    proptest! {
        // Whatever numbers and aunt lists a server puts in a batch proof,
        // verification returns without panicking, and if it accepts, the
        // batch it accepts is the honest one: the numbers alone can never
        // make other items (or no items) pass for the rollup's batch.
        #[test]
        fn hostile_numbers_never_panic_and_never_change_the_accepted_batch(
            name in prop::sample::select(vec!["alpha", "beta", "gamma", "absent", "zzz", "0"]),
            mutations in proptest::collection::vec(
                (any::<prop::sample::Index>(), 0u8..5, hostile_u64()),
                1..6,
            ),
            tamper_items in any::<bool>(),
        ) {
            let (batches, c, hashes) =
                block(&[("alpha", &[b"a1", b"a2"]), ("beta", &[b"b1"]), ("gamma", &[b"g1"])]);
            let dh = data_hash(&hashes);
            let id = RollupId::from_name(name);
            let honest = prove(4, id, &hashes, &batches, c);
            let mut p = honest.clone();
            for (which, field, value) in &mutations {
                let mut proofs = proofs_mut(&mut p);
                let n = proofs.len();
                let proof = &mut proofs[which.index(n)];
                match field {
                    0 => proof.index = *value,
                    1 => proof.total = *value,
                    2 => proof.aunts.truncate((*value % 70) as usize),
                    3 => proof.aunts.resize((*value % 70) as usize, Hash([7; 32])),
                    _ => {
                        if let Some(abs) = p.absence.as_mut() {
                            abs.total = *value;
                        }
                    }
                }
            }
            if tamper_items {
                if p.items.is_empty() {
                    p.items.push(b"injected".to_vec());
                } else {
                    p.items[0].push(0);
                }
            }
            if p.verify(&dh, &id).is_ok() {
                prop_assert_eq!(&p.items, &honest.items);
            }
        }
    }
}
