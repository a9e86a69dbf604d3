//! Builder bids for the top of rollup batches, and the signed requests
//! validators and builders send to a relay. Everything a sequencer needs to
//! re-check a bid from chain state alone is inside the signed bid.

use std::collections::BTreeSet;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{
    encoding::{decode_strict, encode, DecodeError},
    hash::{sha256, Hash},
    keys::{Address, KeyError, PublicKey, Signature, SigningKey},
    rollup::RollupId,
    transaction::{SigningDomain, MAX_CHAIN_ID_LEN, MAX_TX_BYTES},
    Amount,
};

/// Largest encoded signed bid: a bid becomes one block item, so it obeys
/// the same limit as a transaction.
pub const MAX_BID_BYTES: usize = MAX_TX_BYTES;
/// Most rollups one bid may cover.
pub const MAX_BID_BUNDLES: usize = 16;
/// Most payloads in one bundle.
pub const MAX_BUNDLE_PAYLOADS: usize = 256;
/// Most rollup data bytes (sum of all payload lengths) in one bid: the
/// default `max_rollup_data_per_tx`, so a bid never carries more data than
/// one transaction may.
pub const MAX_BID_DATA_BYTES: usize = 256 * 1024;
/// Largest encoded signed relay request.
pub const MAX_RELAY_REQUEST_BYTES: usize = 256;
/// Bytes that open a bid block item (`"WFTB" ‖ borsh(SignedBid)`). Read
/// as a transaction they would announce a chain id of over a billion
/// bytes, so no transaction is mistaken for a bid.
pub const BID_ITEM_MAGIC: [u8; 4] = *b"WFTB";

/// One rollup's part of a bid: payloads that go first in that rollup's
/// batch, in this order.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Bundle {
    /// The rollup whose batch the bundle leads.
    pub rollup_id: RollupId,
    /// Opaque rollup payloads, in order.
    #[serde(with = "crate::transaction::base64_list")]
    pub payloads: Vec<Vec<u8>>,
}

impl Bundle {
    /// SHA-256 of `borsh(Bundle)`: what a relay shows of a bundle before
    /// the height is committed.
    pub fn hash(&self) -> Hash {
        sha256(&encode(self))
    }

    /// Sum of the payload lengths.
    pub fn data_bytes(&self) -> u64 {
        self.payloads.iter().map(|p| p.len() as u64).sum()
    }
}

/// The unsigned body of a bid: the builder offers `amount` for its bundles
/// to lead their rollups' batches in block `target_height` built on
/// `parent_hash`. All bundles are taken together or not at all.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Bid {
    /// The chain the bid is for.
    pub chain_id: String,
    /// The height of the block the bundles are for.
    pub target_height: u64,
    /// The block hash of height `target_height - 1`.
    pub parent_hash: Hash,
    /// One bundle per rollup, rollups distinct.
    pub bundles: Vec<Bundle>,
    /// What the builder pays if the bid is included; 0 cancels the
    /// builder's earlier bid at a relay.
    #[serde(with = "crate::genesis::amount_string")]
    pub amount: Amount,
    /// The builder's key; its address pays.
    #[serde(with = "public_key_hex")]
    pub builder: PublicKey,
}

/// A bid with the builder's signature: what goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedBid {
    /// The body.
    pub bid: Bid,
    /// By `bid.builder` over `SigningDomain::Bid.message(chain_id, borsh(bid))`.
    pub signature: Signature,
}

/// Why a bid fails its stateless checks.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BidError {
    /// The bytes do not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Signature or key problem.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The chain id is empty or longer than `MAX_CHAIN_ID_LEN`.
    #[error("chain id must be 1 to {MAX_CHAIN_ID_LEN} bytes")]
    ChainId,
    /// Height 0 has no parent.
    #[error("target height must be at least 1")]
    ZeroHeight,
    /// No bundle.
    #[error("a bid needs at least one bundle")]
    NoBundles,
    /// More bundles than `MAX_BID_BUNDLES`.
    #[error("{0} bundles, at most {MAX_BID_BUNDLES} allowed")]
    TooManyBundles(usize),
    /// Two bundles for one rollup.
    #[error("rollup {0} has more than one bundle in the bid")]
    DuplicateRollup(RollupId),
    /// A bundle without payloads, or with an empty payload.
    #[error("bundle {0} is empty or holds an empty payload")]
    EmptyBundle(usize),
    /// More payloads in a bundle than `MAX_BUNDLE_PAYLOADS`.
    #[error("bundle {bundle} has {count} payloads, at most {MAX_BUNDLE_PAYLOADS} allowed")]
    TooManyPayloads {
        /// Index of the bundle.
        bundle: usize,
        /// Its payload count.
        count: usize,
    },
    /// More rollup data than `MAX_BID_DATA_BYTES`.
    #[error("{0} bytes of rollup data, at most {MAX_BID_DATA_BYTES} allowed")]
    TooMuchData(u64),
}

impl Bid {
    /// Signs the bid with the builder's key (which must be `self.builder`'s
    /// secret half for the signature to verify).
    pub fn sign(self, key: &SigningKey) -> SignedBid {
        let message = SigningDomain::Bid.message(&self.chain_id, &encode(&self));
        SignedBid {
            signature: key.sign(&message),
            bid: self,
        }
    }

    /// Sum of the payload lengths of every bundle.
    pub fn data_bytes(&self) -> u64 {
        self.bundles.iter().map(Bundle::data_bytes).sum()
    }

    /// The rollups the bid covers, in bytewise order.
    pub fn rollups(&self) -> BTreeSet<RollupId> {
        self.bundles.iter().map(|b| b.rollup_id).collect()
    }

    /// The builder's address (it pays).
    pub fn builder_address(&self) -> Address {
        self.builder.address()
    }
}

impl SignedBid {
    /// Strictly decodes wire bytes (no trailing bytes, at most
    /// `MAX_BID_BYTES`).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode_strict(bytes, MAX_BID_BYTES)
    }

    /// Canonical wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// The bid id: SHA-256 of the wire bytes.
    pub fn hash(&self) -> Hash {
        sha256(&self.encode())
    }

    /// The block item carrying this bid: `BID_ITEM_MAGIC ‖ borsh(self)`.
    pub fn encode_item(&self) -> Vec<u8> {
        let mut out = BID_ITEM_MAGIC.to_vec();
        out.extend_from_slice(&self.encode());
        out
    }

    /// Whether `bytes` claim to be a bid item (by their magic).
    pub fn is_item(bytes: &[u8]) -> bool {
        bytes.starts_with(&BID_ITEM_MAGIC)
    }

    /// Strictly decodes a bid block item.
    pub fn decode_item(bytes: &[u8]) -> Result<Self, DecodeError> {
        let body = bytes
            .strip_prefix(&BID_ITEM_MAGIC[..])
            .ok_or_else(|| DecodeError::Invalid("not a bid item (bad magic)".into()))?;
        Self::decode(body)
    }

    /// Rules that need no state: chain id length, height, bundle count,
    /// distinct rollups, non-empty payloads, data size. Amount 0 passes
    /// (it is a cancellation at a relay; a block never carries one).
    pub fn check_structure(&self) -> Result<(), BidError> {
        let bid = &self.bid;
        if bid.chain_id.is_empty() || bid.chain_id.len() > MAX_CHAIN_ID_LEN {
            return Err(BidError::ChainId);
        }
        if bid.target_height == 0 {
            return Err(BidError::ZeroHeight);
        }
        if bid.bundles.is_empty() {
            return Err(BidError::NoBundles);
        }
        if bid.bundles.len() > MAX_BID_BUNDLES {
            return Err(BidError::TooManyBundles(bid.bundles.len()));
        }
        let mut seen = BTreeSet::new();
        for (i, bundle) in bid.bundles.iter().enumerate() {
            if !seen.insert(bundle.rollup_id) {
                return Err(BidError::DuplicateRollup(bundle.rollup_id));
            }
            if bundle.payloads.is_empty() || bundle.payloads.iter().any(Vec::is_empty) {
                return Err(BidError::EmptyBundle(i));
            }
            if bundle.payloads.len() > MAX_BUNDLE_PAYLOADS {
                return Err(BidError::TooManyPayloads {
                    bundle: i,
                    count: bundle.payloads.len(),
                });
            }
        }
        let data = bid.data_bytes();
        if data > MAX_BID_DATA_BYTES as u64 {
            return Err(BidError::TooMuchData(data));
        }
        Ok(())
    }

    /// Verifies the signature like [`SignedBid::verify_signature`], over
    /// the bytes the bid arrived as: `wire` must be the bytes this bid was
    /// strictly decoded from, whose prefix before the 64-byte signature is
    /// `borsh(bid)`. Saves re-encoding a bid of up to 1 MiB on a relay's
    /// hot path; bytes that are not this bid's wire fail (checked).
    pub fn verify_signature_of_wire(&self, wire: &[u8]) -> Result<(), KeyError> {
        let body = wire
            .len()
            .checked_sub(self.signature.0.len())
            .and_then(|n| wire.get(..n))
            .filter(|body| wire[body.len()..] == self.signature.0[..])
            .ok_or(KeyError::BadSignature)?;
        let message = SigningDomain::Bid.message(&self.bid.chain_id, body);
        self.bid.builder.verify(&message, &self.signature)
    }

    /// Verifies the builder's signature (strictly) over the
    /// domain-separated message.
    pub fn verify_signature(&self) -> Result<(), KeyError> {
        let message = SigningDomain::Bid.message(&self.bid.chain_id, &encode(&self.bid));
        self.bid.builder.verify(&message, &self.signature)
    }
}

/// What a signed relay request asks for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RelayRequestKind {
    /// A validator fetches the winning bids for `height`.
    FetchWinners,
    /// A builder cancels its bid for `height`.
    CancelBid,
}

/// A request to a relay, signed so the relay knows who asks: a validator
/// (by its operator address, signed with its registered relay key) or a
/// builder (by its own key).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct RelayRequest {
    /// The chain the request is about.
    pub chain_id: String,
    /// What is asked.
    pub kind: RelayRequestKind,
    /// The height it is about.
    pub height: u64,
    /// The requester's clock, in milliseconds since the Unix epoch: a relay
    /// refuses requests too far from its own clock, so a captured request
    /// stops working soon.
    pub timestamp_ms: u64,
    /// Who asks: the validator's operator address for `FetchWinners`, the
    /// builder's address for `CancelBid`.
    pub requester: Address,
    /// The key that signed: the validator's relay key, or the builder's key.
    pub key: PublicKey,
}

/// A relay request with its signature.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedRelayRequest {
    /// The body.
    pub request: RelayRequest,
    /// By `request.key` over
    /// `SigningDomain::RelayRequest.message(chain_id, borsh(request))`.
    pub signature: Signature,
}

impl RelayRequest {
    /// Signs the request.
    pub fn sign(self, key: &SigningKey) -> SignedRelayRequest {
        let message = SigningDomain::RelayRequest.message(&self.chain_id, &encode(&self));
        SignedRelayRequest {
            signature: key.sign(&message),
            request: self,
        }
    }
}

impl SignedRelayRequest {
    /// Strictly decodes wire bytes (at most `MAX_RELAY_REQUEST_BYTES`).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode_strict(bytes, MAX_RELAY_REQUEST_BYTES)
    }

    /// Canonical wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// SHA-256 of the wire bytes.
    pub fn hash(&self) -> Hash {
        sha256(&self.encode())
    }

    /// Verifies the signature (strictly) with `request.key`.
    pub fn verify_signature(&self) -> Result<(), KeyError> {
        let message =
            SigningDomain::RelayRequest.message(&self.request.chain_id, &encode(&self.request));
        self.request.key.verify(&message, &self.signature)
    }
}

/// serde helper: a public key as 64 lower-case hex digits.
pub mod public_key_hex {
    use serde::{Deserializer, Serializer};

    use crate::keys::PublicKey;

    /// Serialize as hex.
    pub fn serialize<S: Serializer>(v: &PublicKey, s: S) -> Result<S::Ok, S::Error> {
        crate::transaction::hex_32::serialize(&v.0, s)
    }

    /// Deserialize from hex.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PublicKey, D::Error> {
        crate::transaction::hex_32::deserialize(d).map(PublicKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(amount: Amount) -> SignedBid {
        let key = SigningKey::from_seed("builder");
        Bid {
            chain_id: "weft-test".into(),
            target_height: 8,
            parent_hash: sha256(b"block 7"),
            bundles: vec![
                Bundle {
                    rollup_id: RollupId::from_name("alpha"),
                    payloads: vec![b"first".to_vec(), b"second".to_vec()],
                },
                Bundle {
                    rollup_id: RollupId::from_name("beta"),
                    payloads: vec![vec![7]],
                },
            ],
            amount,
            builder: key.public_key(),
        }
        .sign(&key)
    }

    #[test]
    fn round_trip_structure_and_signature() {
        let bid = sample(5_000);
        let back = SignedBid::decode(&bid.encode()).unwrap();
        assert_eq!(back, bid);
        back.check_structure().unwrap();
        back.verify_signature().unwrap();
        assert_eq!(back.bid.data_bytes(), 12);
        assert_eq!(back.bid.rollups().len(), 2);
    }

    #[test]
    fn verifying_over_the_wire_bytes_agrees_with_verifying_the_bid() {
        let bid = sample(5_000);
        let wire = bid.encode();
        bid.verify_signature_of_wire(&wire).unwrap();
        let mut forged = bid.clone();
        forged.bid.amount += 1;
        // The forged bid's own wire fails; so does the honest wire under
        // the forged bid's signature field, and any truncation.
        assert!(forged.verify_signature_of_wire(&forged.encode()).is_err());
        assert!(bid.verify_signature_of_wire(&wire[..10]).is_err());
        assert!(bid.verify_signature_of_wire(&[]).is_err());
        let mut other_sig = bid.clone();
        other_sig.signature = SigningKey::from_seed("x").sign(b"y");
        assert!(other_sig.verify_signature_of_wire(&wire).is_err());
    }

    #[test]
    fn wire_encoding_is_pinned() {
        // A change to this snapshot is a breaking wire change.
        insta::assert_snapshot!(hex::encode(sample(5_000).encode()));
    }

    #[test]
    fn tampering_breaks_the_signature() {
        for tamper in [
            (|b: &mut Bid| b.amount += 1) as fn(&mut Bid),
            |b| b.target_height += 1,
            |b| b.parent_hash = sha256(b"other"),
            |b| b.chain_id = "other-chain".into(),
            |b| b.bundles[0].payloads.swap(0, 1),
            |b| b.builder = SigningKey::from_seed("thief").public_key(),
        ] {
            let mut bid = sample(5_000);
            tamper(&mut bid.bid);
            assert_eq!(bid.verify_signature(), Err(KeyError::BadSignature));
        }
    }

    #[test]
    fn a_transaction_signature_is_no_bid_signature() {
        // The same key signing the same body under the transaction domain
        // must not verify as a bid.
        let key = SigningKey::from_seed("builder");
        let mut bid = sample(1);
        let body = encode(&bid.bid);
        bid.signature = key.sign(&SigningDomain::Transaction.message("weft-test", &body));
        assert!(bid.verify_signature().is_err());
    }

    #[test]
    fn every_structural_rule_has_its_error() {
        type Breaking = fn(&mut Bid);
        let cases: Vec<(Breaking, BidError)> = vec![
            (|b| b.chain_id.clear(), BidError::ChainId),
            (|b| b.chain_id = "x".repeat(51), BidError::ChainId),
            (|b| b.target_height = 0, BidError::ZeroHeight),
            (|b| b.bundles.clear(), BidError::NoBundles),
            (
                |b| b.bundles = vec![b.bundles[1].clone(); MAX_BID_BUNDLES + 1],
                BidError::TooManyBundles(MAX_BID_BUNDLES + 1),
            ),
            (
                |b| b.bundles[1].rollup_id = b.bundles[0].rollup_id,
                BidError::DuplicateRollup(RollupId::from_name("alpha")),
            ),
            (|b| b.bundles[1].payloads.clear(), BidError::EmptyBundle(1)),
            (
                |b| b.bundles[0].payloads.push(vec![]),
                BidError::EmptyBundle(0),
            ),
            (
                |b| b.bundles[1].payloads = vec![vec![1]; MAX_BUNDLE_PAYLOADS + 1],
                BidError::TooManyPayloads {
                    bundle: 1,
                    count: MAX_BUNDLE_PAYLOADS + 1,
                },
            ),
            (
                |b| b.bundles[1].payloads = vec![vec![1; MAX_BID_DATA_BYTES]],
                BidError::TooMuchData(MAX_BID_DATA_BYTES as u64 + 11),
            ),
        ];
        for (breaking, expected) in cases {
            let mut bid = sample(1);
            breaking(&mut bid.bid);
            assert_eq!(bid.check_structure(), Err(expected));
        }
        // Amount 0 (a cancellation) is structurally fine.
        sample(0).check_structure().unwrap();
    }

    #[test]
    fn bid_items_round_trip_and_never_read_as_transactions() {
        let bid = sample(9);
        let item = bid.encode_item();
        assert!(SignedBid::is_item(&item));
        assert_eq!(SignedBid::decode_item(&item).unwrap(), bid);
        assert!(SignedBid::decode_item(&bid.encode()).is_err(), "no magic");
        assert!(!SignedBid::is_item(&bid.encode()));
        assert!(crate::SignedTransaction::decode(&item).is_err());
        let mut trailing = item;
        trailing.push(0);
        assert!(SignedBid::decode_item(&trailing).is_err());
    }

    #[test]
    fn strict_decoding_rejects_trailing_bytes_and_oversize() {
        let mut bytes = sample(1).encode();
        bytes.push(0);
        assert!(SignedBid::decode(&bytes).is_err());
        assert!(matches!(
            SignedBid::decode(&vec![0u8; MAX_BID_BYTES + 1]),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn a_maximal_bid_fits_the_wire_limit() {
        // Data at the cap, spread over the most bundles and payloads, must
        // still encode within MAX_BID_BYTES (the limits are consistent).
        let key = SigningKey::from_seed("builder");
        let per_payload = MAX_BID_DATA_BYTES / (MAX_BID_BUNDLES * MAX_BUNDLE_PAYLOADS);
        let bid = Bid {
            chain_id: "c".repeat(MAX_CHAIN_ID_LEN),
            target_height: u64::MAX,
            parent_hash: Hash::default(),
            bundles: (0..MAX_BID_BUNDLES)
                .map(|i| Bundle {
                    rollup_id: RollupId::from_name(&i.to_string()),
                    payloads: vec![vec![1; per_payload]; MAX_BUNDLE_PAYLOADS],
                })
                .collect(),
            amount: u128::MAX,
            builder: key.public_key(),
        }
        .sign(&key);
        bid.check_structure().unwrap();
        let bytes = bid.encode();
        assert!(bytes.len() <= MAX_BID_BYTES, "{}", bytes.len());
        assert_eq!(SignedBid::decode(&bytes).unwrap(), bid);
    }

    #[test]
    fn relay_requests_round_trip_and_verify() {
        let key = SigningKey::from_seed("relay-key");
        let request = RelayRequest {
            chain_id: "weft-test".into(),
            kind: RelayRequestKind::FetchWinners,
            height: 9,
            timestamp_ms: 1_700_000_000_000,
            requester: SigningKey::from_seed("operator").address(),
            key: key.public_key(),
        }
        .sign(&key);
        let bytes = request.encode();
        assert!(bytes.len() <= MAX_RELAY_REQUEST_BYTES);
        let back = SignedRelayRequest::decode(&bytes).unwrap();
        assert_eq!(back, request);
        back.verify_signature().unwrap();
        let mut other = back.clone();
        other.request.kind = RelayRequestKind::CancelBid;
        assert!(other.verify_signature().is_err());
        let mut other = back;
        other.request.height += 1;
        assert!(other.verify_signature().is_err());
    }
}
