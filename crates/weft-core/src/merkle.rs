//! RFC 6962 merkle trees exactly as CometBFT builds them ("simple merkle"):
//! leaf = H(0x00 ‖ item), inner = H(0x01 ‖ left ‖ right), split at the
//! largest power of two below the count, empty tree = H(""). One verifier
//! therefore checks both CometBFT's `data_hash` and Weft's own roots.

use serde::{Deserialize, Serialize};

use crate::hash::{sha256, sha256_parts, Hash};

/// Most aunts a proof may carry: one per level of a tree of up to 2^64
/// leaves, the most a `u64` count can describe.
pub const MAX_AUNTS: usize = 64;

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

/// Largest power of two strictly less than `n`, for `n >= 2` (0 below that,
/// where there is nothing to split).
///
/// Computed from the bit length of `n - 1` rather than by doubling a
/// counter: doubling overflows once `n` exceeds 2^63, and a proof's `total`
/// comes from whoever served it.
fn split_point(n: u64) -> u64 {
    if n < 2 {
        return 0;
    }
    // n - 1 >= 1, so leading_zeros <= 63 and the shift is in range.
    1 << (u64::BITS - 1 - (n - 1).leading_zeros())
}

/// [`split_point`] for in-memory slices, whose lengths always fit a `u64`.
fn split_index(n: usize) -> usize {
    // Lossless both ways: a slice length fits in u64 on every target Rust
    // supports, and the result is smaller than `n`.
    split_point(n as u64) as usize
}

/// The root over already-hashed leaves.
pub fn root_from_leaf_hashes(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split_index(n);
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
    ///
    /// Every field comes from whoever served the proof, so its shape is
    /// checked before any hashing: at most [`MAX_AUNTS`] aunts,
    /// `index < total`, and exactly as many aunts as the leaf at `index` of
    /// a tree of `total` leaves has. (The aunt count does not bound `total`:
    /// the last leaf of a tree of 2^63 + 1 leaves has a single aunt.)
    pub fn compute_root(&self, leaf: &Hash) -> Result<Hash, ProofError> {
        if self.total == 0 || self.index >= self.total {
            return Err(ProofError::Malformed("index out of range"));
        }
        if self.aunts.len() > MAX_AUNTS {
            return Err(ProofError::Malformed("too many aunts"));
        }
        if self.aunts.len() != leaf_depth(self.index, self.total) {
            return Err(ProofError::Malformed("aunt count does not match the tree"));
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
    let k = split_index(leaves.len());
    if index < k {
        collect_aunts(&leaves[..k], index, aunts);
        aunts.push(root_from_leaf_hashes(&leaves[k..]));
    } else {
        collect_aunts(&leaves[k..], index - k, aunts);
        aunts.push(root_from_leaf_hashes(&leaves[..k]));
    }
}

// How many aunts the leaf at `index` of a tree of `total` leaves has, for
// `index < total`. Each step at least halves `total` (both halves of a
// split are at most half of it, rounded up), so this loops at most 64 times
// for any u64, and `index < total` holds throughout.
fn leaf_depth(mut index: u64, mut total: u64) -> usize {
    let mut depth = 0;
    while total > 1 {
        let k = split_point(total);
        if index < k {
            total = k;
        } else {
            index -= k;
            total -= k;
        }
        depth += 1;
    }
    depth
}

// CometBFT's computeHashFromAunts. Each level consumes one aunt, so the
// recursion is at most MAX_AUNTS deep; callers have checked
// `index < total`, which every branch below preserves.
fn hash_from_aunts(index: u64, total: u64, leaf: Hash, aunts: &[Hash]) -> Option<Hash> {
    if total == 1 {
        return aunts.is_empty().then_some(leaf);
    }
    let (last, rest) = aunts.split_last()?;
    let k = split_point(total);
    if index < k {
        let left = hash_from_aunts(index, k, leaf, rest)?;
        Some(inner_hash(&left, last))
    } else {
        let right = hash_from_aunts(index.checked_sub(k)?, total.checked_sub(k)?, leaf, rest)?;
        Some(inner_hash(last, &right))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256_parts;
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

    // Published by independent RFC 6962 implementations, so they check the
    // hashing itself, not just self-consistency: transparency-dev/merkle's
    // rfc6962_test.go (leaf, node) and certificate-transparency's
    // merkle_tree_test.cc (kInputs, kSHA256Roots, kSHA256Paths; CT audit
    // paths are bottom-up, the order of CometBFT's aunts).
    #[test]
    fn matches_published_rfc6962_vectors() {
        let hex = |s: &str| Hash::from_hex(s).unwrap();
        assert_eq!(
            leaf_hash(b""),
            hex("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
        );
        assert_eq!(
            leaf_hash(b"L123456"),
            hex("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
        );
        assert_eq!(
            sha256_parts(&[&[1], b"N123", b"N456"]),
            hex("aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb")
        );

        let inputs: Vec<Vec<u8>> = [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|h| hex::decode(h).unwrap())
        .collect();
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        for (n, expect) in roots.iter().enumerate() {
            assert_eq!(root(&inputs[..=n]), hex(expect), "{} leaves", n + 1);
        }

        // (index, tree size, audit path)
        let paths: [(usize, usize, &[&str]); 4] = [
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                1,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (index, size, path) in paths {
            let leaves: Vec<Hash> = inputs[..size].iter().map(|i| leaf_hash(i)).collect();
            let proof = Proof::for_leaf(&leaves, index);
            let expect: Vec<Hash> = path.iter().map(|h| hex(h)).collect();
            assert_eq!(proof.aunts, expect, "leaf {index} of {size}");
            assert_eq!(proof.verify(&hex(roots[size - 1]), &leaves[index]), Ok(()));
        }
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

    /// The doubling loop this module used before: the reference the
    /// overflow-free version must agree with wherever that one was defined.
    fn split_point_by_doubling(n: u64) -> u64 {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    #[test]
    fn split_point_is_the_largest_power_of_two_below_n_up_to_u64_max() {
        for n in 2..=4096 {
            assert_eq!(split_point(n), split_point_by_doubling(n), "n = {n}");
        }
        assert_eq!(split_point(1 << 63), 1 << 62);
        assert_eq!(split_point((1 << 63) + 1), 1 << 63);
        assert_eq!(split_point(u64::MAX), 1 << 63);
        assert_eq!(split_point(0), 0);
        assert_eq!(split_point(1), 0);
    }

    // Regression: `total` above 2^63 with an aunt made the doubling loop
    // overflow (a panic in debug, an endless loop in release), so a
    // conductor fed such a proof hung. Each of these reached that loop.
    #[test]
    fn huge_totals_with_one_aunt_are_errors_not_panics() {
        let leaf = leaf_hash(b"x");
        let one_aunt = vec![Hash::default()];
        for (index, total) in [
            (0, u64::MAX),
            (u64::MAX - 2, u64::MAX),
            (0, (1 << 63) + 1),
            ((1 << 63) - 1, (1 << 63) + 1),
        ] {
            let p = Proof {
                index,
                total,
                aunts: one_aunt.clone(),
            };
            assert_eq!(
                p.compute_root(&leaf),
                Err(ProofError::Malformed("aunt count does not match the tree")),
                "index {index}, total {total}"
            );
            assert!(p.verify(&Hash::default(), &leaf).is_err());
        }
    }

    // A huge tree whose proof is well-formed with one aunt: the last leaf of
    // 2^63 + 1 leaves hangs alone under the root. It also used to overflow;
    // it must verify, so the shape check cannot be "total <= 2^aunts".
    #[test]
    fn the_last_leaf_of_a_huge_unbalanced_tree_has_one_aunt_and_verifies() {
        let leaf = leaf_hash(b"x");
        let aunt = sha256(b"root of the first 2^63 leaves");
        let p = Proof {
            index: 1 << 63,
            total: (1 << 63) + 1,
            aunts: vec![aunt],
        };
        assert_eq!(p.compute_root(&leaf), Ok(inner_hash(&aunt, &leaf)));
        let p = Proof {
            index: u64::MAX - 1,
            total: u64::MAX,
            aunts: vec![aunt],
        };
        assert!(p.compute_root(&leaf).is_err(), "that leaf is 63 deep");
    }

    #[test]
    fn leaf_depths_match_honest_proofs_and_extremes() {
        for n in 1..200usize {
            let leaves: Vec<Hash> = (0..n as u64).map(|i| leaf_hash(&i.to_le_bytes())).collect();
            for (i, p) in Proof::all(&leaves).iter().enumerate() {
                assert_eq!(leaf_depth(i as u64, n as u64), p.aunts.len(), "n {n} i {i}");
            }
        }
        assert_eq!(leaf_depth(0, u64::MAX), 64);
        assert_eq!(leaf_depth(u64::MAX - 1, u64::MAX), 63);
        assert_eq!(leaf_depth(0, 1 << 63), 63);
        assert_eq!(leaf_depth(1 << 63, (1 << 63) + 1), 1);
        assert_eq!(leaf_depth(0, (1 << 63) + 1), 64);
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

        // Whatever a server sends, verification returns (recursion is at
        // most 64 levels deep) and never panics. `total` is drawn mostly
        // from the ranges that used to overflow.
        #[test]
        fn arbitrary_proofs_never_panic(
            index in prop_oneof![any::<u64>(), (1u64 << 63)..=u64::MAX, 0u64..64],
            total in prop_oneof![any::<u64>(), (1u64 << 63)..=u64::MAX, 0u64..64],
            aunts in proptest::collection::vec(any::<[u8; 32]>().prop_map(Hash), 0..=MAX_AUNTS + 2),
            root in any::<[u8; 32]>().prop_map(Hash),
        ) {
            let proof = Proof { index, total, aunts };
            let leaf = leaf_hash(b"leaf");
            match proof.compute_root(&leaf) {
                Ok(computed) => {
                    // Only well-shaped proofs get this far.
                    prop_assert!(index < total);
                    prop_assert!(proof.aunts.len() <= MAX_AUNTS);
                    prop_assert_eq!(proof.verify(&computed, &leaf), Ok(()));
                }
                Err(_) => prop_assert!(proof.verify(&root, &leaf).is_err()),
            }
        }

        // In a perfect tree of 2^a leaves the path is the index's bits,
        // lowest first: an independent reference for huge totals that no
        // test could build in memory.
        #[test]
        fn perfect_trees_of_any_height_follow_the_index_bits(
            a in 0usize..64,
            index in any::<u64>(),
            aunts in proptest::collection::vec(any::<[u8; 32]>().prop_map(Hash), 64),
        ) {
            let total = 1u64 << a;
            let index = index % total;
            let aunts = aunts[..a].to_vec();
            let leaf = leaf_hash(b"leaf");
            let mut expect = leaf;
            for (level, aunt) in aunts.iter().enumerate() {
                expect = if index >> level & 1 == 0 {
                    inner_hash(&expect, aunt)
                } else {
                    inner_hash(aunt, &expect)
                };
            }
            let proof = Proof { index, total, aunts };
            prop_assert_eq!(proof.compute_root(&leaf), Ok(expect));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        // Honest proofs over random leaf counts verify: the up-front shape
        // check never refuses one. No leaf is deeper than ceil(log2 n), the
        // first leaf's depth; later ones can be much shallower.
        #[test]
        fn honest_proofs_over_random_leaf_counts_verify(
            n in 1usize..1500,
            picks in proptest::collection::vec(any::<prop::sample::Index>(), 1..6),
        ) {
            let leaves: Vec<Hash> = (0..n as u64).map(|i| leaf_hash(&i.to_le_bytes())).collect();
            let r = root_from_leaf_hashes(&leaves);
            let mut indices: Vec<usize> = picks.iter().map(|p| p.index(n)).collect();
            indices.extend([0, n - 1]);
            for i in indices {
                let proof = Proof::for_leaf(&leaves, i);
                prop_assert_eq!(proof.total, n as u64);
                let ceil_log2 = n.next_power_of_two().trailing_zeros() as usize;
                let depth = proof.aunts.len();
                prop_assert!(depth <= ceil_log2, "n {} i {} depth {}", n, i, depth);
                prop_assert!(i != 0 || depth == ceil_log2, "the first leaf is deepest");
                prop_assert_eq!(depth, leaf_depth(i as u64, n as u64));
                prop_assert_eq!(proof.verify(&r, &leaves[i]), Ok(()));
            }
        }
    }
}
