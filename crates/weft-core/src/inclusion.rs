//! Inclusion lists: what each validator saw waiting in its mempool,
//! carried in its CometBFT vote extension, and the block item through which
//! the next proposer proves what the validators listed.
//!
//! Two wire objects:
//! - [`InclusionList`]: the bytes of one validator's vote extension;
//! - [`ListedCommit`]: a block item (right after the commitments item)
//!   carrying the vote extensions of the previous height with CometBFT's
//!   signatures over them, so every node can check what was listed without
//!   trusting the proposer.
//!
//! A validator's extension signature is over CometBFT's canonical
//! vote-extension sign bytes ([`vote_extension_sign_bytes`]); this module
//! reproduces them exactly so light verifiers need no protobuf library.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{
    encoding::{decode_strict, encode, DecodeError},
    hash::{sha256, Hash},
    transaction::MAX_TX_BYTES,
};

/// Bytes that open an inclusion list (a vote extension).
pub const INCLUSION_LIST_MAGIC: [u8; 4] = *b"WFTL";
/// Bytes that open a listed-commit block item.
pub const LISTED_COMMIT_MAGIC: [u8; 4] = *b"WFTX";
/// The layout version this code writes and accepts, for both objects.
pub const INCLUSION_VERSION: u8 = 1;
/// The hard bound on one inclusion list's encoding, whatever the
/// parameters say: a vote extension travels in every precommit.
pub const MAX_INCLUSION_LIST_BYTES: usize = 1024 * 1024;
/// The hard bound on a listed-commit item: it must fit a block.
pub const MAX_LISTED_COMMIT_BYTES: usize = 4 * 1024 * 1024;
/// Most validators one listed commit may name (CometBFT's own bound on
/// votes in a commit).
pub const MAX_LISTED_VOTES: usize = 10_000;

/// One validator's inclusion list: full signed transactions, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct InclusionList {
    /// Layout version (1).
    pub version: u8,
    /// Transactions' wire bytes. Not checked here: a listed transaction
    /// that does not decode or execute is simply excused.
    pub txs: Vec<Vec<u8>>,
}

impl InclusionList {
    /// A version-1 list.
    pub fn new(txs: Vec<Vec<u8>>) -> Self {
        InclusionList {
            version: INCLUSION_VERSION,
            txs,
        }
    }

    /// The extension's bytes: magic ‖ borsh.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = INCLUSION_LIST_MAGIC.to_vec();
        out.extend_from_slice(&encode(self));
        out
    }

    /// Decodes an extension, refusing other magic or versions, anything
    /// over `limit` bytes, and empty or oversized transactions.
    pub fn decode(bytes: &[u8], limit: usize) -> Result<Self, DecodeError> {
        let limit = limit.min(MAX_INCLUSION_LIST_BYTES);
        if bytes.len() > limit {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                limit,
            });
        }
        let body = bytes
            .strip_prefix(&INCLUSION_LIST_MAGIC[..])
            .ok_or_else(|| DecodeError::Invalid("not an inclusion list (bad magic)".into()))?;
        let list: InclusionList = decode_strict(body, limit)?;
        if list.version != INCLUSION_VERSION {
            return Err(DecodeError::Invalid(format!(
                "inclusion list version {} unsupported",
                list.version
            )));
        }
        if let Some(i) = list
            .txs
            .iter()
            .position(|t| t.is_empty() || t.len() > MAX_TX_BYTES)
        {
            return Err(DecodeError::Invalid(format!(
                "listed transaction {i} is empty or larger than {MAX_TX_BYTES} bytes"
            )));
        }
        Ok(list)
    }

    /// The encoded size of a list holding transactions of these sizes,
    /// without building it (for packing a list under a byte bound).
    pub fn encoded_len(tx_lens: impl IntoIterator<Item = usize>) -> usize {
        // magic, version, u32 count, then u32 length + bytes per tx.
        tx_lens
            .into_iter()
            .fold(INCLUSION_LIST_MAGIC.len() + 1 + 4, |n, l| n + 4 + l)
    }
}

/// One validator's vote extension with CometBFT's signature over it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ListedVote {
    /// The validator's CometBFT address (first 20 bytes of SHA-256 of its
    /// ed25519 key).
    #[serde(with = "hex_20")]
    pub validator: [u8; 20],
    /// The extension's bytes, verbatim (the signature covers them).
    #[serde(with = "crate::transaction::base64_bytes")]
    pub extension: Vec<u8>,
    /// The ed25519 signature over [`vote_extension_sign_bytes`].
    #[serde(with = "crate::transaction::base64_bytes")]
    pub signature: Vec<u8>,
}

/// The vote extensions of one height, as carried in the next block.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct ListedCommit {
    /// Layout version (1).
    pub version: u8,
    /// The height whose precommits carried the extensions (the block's
    /// height minus one).
    pub height: u64,
    /// The round that height was decided in.
    pub round: u32,
    /// Extensions, by validator address strictly ascending (so none
    /// appears twice).
    pub votes: Vec<ListedVote>,
}

impl ListedCommit {
    /// The item's bytes: magic ‖ borsh.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = LISTED_COMMIT_MAGIC.to_vec();
        out.extend_from_slice(&encode(self));
        out
    }

    /// Whether `bytes` claim to be a listed-commit item (by their magic);
    /// such bytes never decode as a transaction.
    pub fn is_item(bytes: &[u8]) -> bool {
        bytes.starts_with(&LISTED_COMMIT_MAGIC)
    }

    /// Decodes an item, refusing other magic or versions, unsorted or
    /// duplicate validators, and more votes than a commit can hold.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let body = bytes
            .strip_prefix(&LISTED_COMMIT_MAGIC[..])
            .ok_or_else(|| DecodeError::Invalid("not a listed-commit item (bad magic)".into()))?;
        let c: ListedCommit = decode_strict(body, MAX_LISTED_COMMIT_BYTES)?;
        if c.version != INCLUSION_VERSION {
            return Err(DecodeError::Invalid(format!(
                "listed-commit version {} unsupported",
                c.version
            )));
        }
        if c.votes.len() > MAX_LISTED_VOTES {
            return Err(DecodeError::Invalid(format!(
                "{} votes, more than a commit holds ({MAX_LISTED_VOTES})",
                c.votes.len()
            )));
        }
        if c.votes.windows(2).any(|w| w[0].validator >= w[1].validator) {
            return Err(DecodeError::Invalid(
                "votes must be sorted by validator address, each once".into(),
            ));
        }
        Ok(c)
    }
}

/// CometBFT v0.38's sign bytes of a vote extension: the protobuf
/// `CanonicalVoteExtension { extension = 1; sfixed64 height = 2; sfixed64
/// round = 3; string chain_id = 4 }`, length-delimited (a varint length
/// first), with proto3's rule that default values are not written.
pub fn vote_extension_sign_bytes(
    chain_id: &str,
    height: u64,
    round: u32,
    extension: &[u8],
) -> Vec<u8> {
    let mut msg = Vec::with_capacity(extension.len() + chain_id.len() + 32);
    if !extension.is_empty() {
        msg.push(0x0a); // field 1, length-delimited
        put_varint(&mut msg, extension.len() as u64);
        msg.extend_from_slice(extension);
    }
    if height != 0 {
        msg.push(0x11); // field 2, 64-bit
        msg.extend_from_slice(&height.to_le_bytes());
    }
    if round != 0 {
        msg.push(0x19); // field 3, 64-bit
        msg.extend_from_slice(&u64::from(round).to_le_bytes());
    }
    if !chain_id.is_empty() {
        msg.push(0x22); // field 4, length-delimited
        put_varint(&mut msg, chain_id.len() as u64);
        msg.extend_from_slice(chain_id.as_bytes());
    }
    let mut out = Vec::with_capacity(msg.len() + 5);
    put_varint(&mut out, msg.len() as u64);
    out.extend_from_slice(&msg);
    out
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A CometBFT validator address from its ed25519 public key.
pub fn validator_address(pubkey: &[u8; 32]) -> [u8; 20] {
    let h: Hash = sha256(pubkey);
    let mut a = [0u8; 20];
    a.copy_from_slice(&h.0[..20]);
    a
}

mod hex_20 {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 20], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode_upper(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 20], D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(&s)
            .map_err(D::Error::custom)?
            .try_into()
            .map_err(|_| D::Error::custom("a validator address is 20 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_round_trips_and_refuses_what_it_must() {
        let list = InclusionList::new(vec![vec![1, 2, 3], vec![4]]);
        let bytes = list.encode();
        assert_eq!(bytes.len(), InclusionList::encoded_len([3, 1]));
        assert_eq!(InclusionList::decode(&bytes, 1024), Ok(list));
        assert!(matches!(
            InclusionList::decode(&bytes, bytes.len() - 1),
            Err(DecodeError::TooLarge { .. })
        ));
        assert!(InclusionList::decode(b"garbage", 1024).is_err());
        let empty_tx = InclusionList::new(vec![vec![]]).encode();
        assert!(matches!(
            InclusionList::decode(&empty_tx, 1024),
            Err(DecodeError::Invalid(_))
        ));
        let mut v2 = InclusionList::new(vec![]);
        v2.version = 2;
        assert!(InclusionList::decode(&v2.encode(), 1024).is_err());
    }

    #[test]
    fn a_listed_commit_must_be_sorted_by_validator() {
        let vote = |a: u8| ListedVote {
            validator: [a; 20],
            extension: vec![a],
            signature: vec![0; 64],
        };
        let mut c = ListedCommit {
            version: INCLUSION_VERSION,
            height: 7,
            round: 0,
            votes: vec![vote(1), vote(2)],
        };
        assert_eq!(ListedCommit::decode(&c.encode()), Ok(c.clone()));
        assert!(ListedCommit::is_item(&c.encode()));
        c.votes = vec![vote(2), vote(1)];
        assert!(ListedCommit::decode(&c.encode()).is_err());
        c.votes = vec![vote(1), vote(1)];
        assert!(ListedCommit::decode(&c.encode()).is_err());
    }

    #[test]
    fn sign_bytes_follow_proto3_rules() {
        // Defaults are omitted: an empty extension at height 0, round 0,
        // empty chain id is an empty message, prefixed by its length 0.
        assert_eq!(vote_extension_sign_bytes("", 0, 0, b""), vec![0]);
        let b = vote_extension_sign_bytes("c", 1, 0, b"x");
        // len, [0a 01 'x'], [11 01 00..], [22 01 'c']
        assert_eq!(
            b,
            vec![15, 0x0a, 1, b'x', 0x11, 1, 0, 0, 0, 0, 0, 0, 0, 0x22, 1, b'c']
        );
    }
}
