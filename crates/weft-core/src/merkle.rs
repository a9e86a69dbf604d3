//! RFC 6962 merkle trees exactly as CometBFT builds them ("simple merkle"):
//! leaf = H(0x00 ‖ item), inner = H(0x01 ‖ left ‖ right), split at the
//! largest power of two below the count, empty tree = H(""). One verifier
//! therefore checks both CometBFT's `data_hash` and Weft's own roots.

use serde::{Deserialize, Serialize};

use crate::hash::{sha256, sha256_parts, Hash};

/// Upper bound on proof depth: 2^64 leaves.
const MAX_AUNTS: usize = 64;

/// The hash of a leaf holding `item`.
pub fn leaf_hash(item: &[u8]) -> Hash {
    sha256_parts(&[&[0u8], item])
}

/// The hash of an inner node.
pub fn inner_hash(left: &Hash, right: &Hash) -> Hash {
    sha256_parts(&[&[1u8], &left.0, &right.0])
}

/// The root of the empty tree.
pub fn empty_root() -> Hash {
    sha256(b"")
}

/// Largest power of two strictly less than `n` (n >= 2).
fn split_point(n: usize) -> usize {
    debug_assert!(n >= 2);
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// The root over already-hashed leaves.
pub fn root_from_leaf_hashes(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split_point(n);
            inner_hash(
                &root_from_leaf_hashes(&leaves[..k]),
                &root_from_leaf_hashes(&leaves[k..]),
            )
        }
    }
}

/// The root over raw items.
pub fn root<T: AsRef<[u8]>>(items: &[T]) -> Hash {
    let leaves: Vec<Hash> = items.iter().map(|i| leaf_hash(i.as_ref())).collect();
    root_from_leaf_hashes(&leaves)
}

/// An inclusion proof for one leaf, in CometBFT's shape (index, total, aunts
/// from the leaf upwards).
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    borsh::BorshSerialize,
    borsh::BorshDeserialize,
)]
pub struct Proof {
    /// Position of the leaf.
    pub index: u64,
    /// Number of leaves in the tree.
    pub total: u64,
    /// Sibling hashes, from the leaf's sibling up to the root's child.
    pub aunts: Vec<Hash>,
}

/// Why a proof did not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofError {
    /// Index out of range, or the aunt count does not fit the tree shape.
    #[error("malformed proof: {0}")]
    Malformed(&'static str),
    /// The recomputed root differs from the expected one.
    #[error("proof does not lead to the expected root")]
    RootMismatch,
}

impl Proof {
    /// Proofs for every leaf of the tree over `leaves`.
    pub fn all(leaves: &[Hash]) -> Vec<Proof> {
        (0..leaves.len())
            .map(|i| Self::for_leaf(leaves, i))
            .collect()
    }

    /// The proof for leaf `index` (must be in range).
    pub fn for_leaf(leaves: &[Hash], index: usize) -> Proof {
        assert!(index < leaves.len(), "leaf index out of range");
        let mut aunts = Vec::new();
        collect_aunts(leaves, index, &mut aunts);
        Proof {
            index: index as u64,
            total: leaves.len() as u64,
            aunts,
        }
    }

    /// The root this proof yields for `leaf`, or why it cannot.
    pub fn compute_root(&self, leaf: &Hash) -> Result<Hash, ProofError> {
        if self.total == 0 || self.index >= self.total {
            return Err(ProofError::Malformed("index out of range"));
        }
        if self.aunts.len() > MAX_AUNTS {
            return Err(ProofError::Malformed("too many aunts"));
        }
        hash_from_aunts(self.index, self.total, *leaf, &self.aunts)
            .ok_or(ProofError::Malformed("aunt count does not match the tree"))
    }

    /// Checks that `leaf` sits at `self.index` under `root`.
    pub fn verify(&self, root: &Hash, leaf: &Hash) -> Result<(), ProofError> {
        if &self.compute_root(leaf)? == root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        }
    }
}

// Aunts are gathered bottom-up: recurse first, then push this level's sibling.
fn collect_aunts(leaves: &[Hash], index: usize, aunts: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = split_point(leaves.len());
    if index < k {
        collect_aunts(&leaves[..k], index, aunts);
        aunts.push(root_from_leaf_hashes(&leaves[k..]));
    } else {
        collect_aunts(&leaves[k..], index - k, aunts);
        aunts.push(root_from_leaf_hashes(&leaves[..k]));
    }
}

// CometBFT's computeHashFromAunts, without recursion depth beyond 64.
fn hash_from_aunts(index: u64, total: u64, leaf: Hash, aunts: &[Hash]) -> Option<Hash> {
    if total == 1 {
        return aunts.is_empty().then_some(leaf);
    }
    let (last, rest) = aunts.split_last()?;
    let k = split_point(usize::try_from(total).ok()?) as u64;
    if index < k {
        let left = hash_from_aunts(index, k, leaf, rest)?;
        Some(inner_hash(&left, last))
    } else {
        let right = hash_from_aunts(index - k, total - k, leaf, rest)?;
        Some(inner_hash(last, &right))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_roots() {
        assert_eq!(root::<&[u8]>(&[]), sha256(b""));
        assert_eq!(root(&[b"a"]), leaf_hash(b"a"));
        let three = root(&[b"a", b"b", b"c"]);
        let expect = inner_hash(
            &inner_hash(&leaf_hash(b"a"), &leaf_hash(b"b")),
            &leaf_hash(b"c"),
        );
        assert_eq!(three, expect);
        // Pinned against CometBFT's crypto/merkle test vector shape:
        // HashFromByteSlices([][]byte{{1,2,3},{4,5,6}}).
        let v = root(&[[1u8, 2, 3], [4, 5, 6]]);
        assert_eq!(
            v,
            inner_hash(&leaf_hash(&[1, 2, 3]), &leaf_hash(&[4, 5, 6]))
        );
    }

    #[test]
    fn malformed_proofs_are_errors_not_panics() {
        let leaf = leaf_hash(b"x");
        let p = Proof {
            index: 5,
            total: 3,
            aunts: vec![],
        };
        assert!(p.compute_root(&leaf).is_err());
        let p = Proof {
            index: 0,
            total: u64::MAX,
            aunts: vec![Hash::default(); 65],
        };
        assert!(p.compute_root(&leaf).is_err());
        let p = Proof {
            index: 0,
            total: 4,
            aunts: vec![Hash::default()],
        };
        assert!(p.compute_root(&leaf).is_err());
        let p = Proof {
            index: 0,
            total: 0,
            aunts: vec![],
        };
        assert!(p.compute_root(&leaf).is_err());
    }

    proptest! {
        #[test]
        fn every_proof_verifies_and_no_other_leaf_does(n in 1usize..70, pick in 0usize..70) {
            let items: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; 1 + i % 5]).collect();
            let leaves: Vec<Hash> = items.iter().map(|i| leaf_hash(i)).collect();
            let r = root_from_leaf_hashes(&leaves);
            let i = pick % n;
            let proof = Proof::for_leaf(&leaves, i);
            prop_assert!(proof.verify(&r, &leaves[i]).is_ok());
            prop_assert!(proof.verify(&r, &leaf_hash(b"not in the tree")).is_err());
            if n > 1 {
                let mut wrong = proof.clone();
                wrong.index = ((i + 1) % n) as u64;
                prop_assert!(wrong.verify(&r, &leaves[i]).is_err());
            }
        }
    }
}
