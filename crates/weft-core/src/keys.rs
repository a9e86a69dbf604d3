//! ed25519 keys, signatures and addresses.
//!
//! An address is the first 20 bytes of SHA-256 of the public key, shown as
//! bech32m with the human-readable prefix `weft`.

use std::{fmt, str::FromStr};

use bech32::{Bech32m, Hrp};
use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::Signer;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{hash::sha256, zip215};

/// The bech32m human-readable prefix of addresses.
pub const ADDRESS_PREFIX: &str = "weft";

/// Why a key, signature or address was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// Not a valid ed25519 public key (not a curve point).
    #[error("invalid ed25519 public key")]
    InvalidPublicKey,
    /// The signature does not verify for this key and message.
    #[error("signature does not verify")]
    BadSignature,
    /// The address text is not bech32m `weft1…` over 20 bytes.
    #[error("invalid address: {0}")]
    InvalidAddress(String),
    /// A key file could not be parsed.
    #[error("invalid key file: {0}")]
    InvalidKeyFile(String),
}

/// An ed25519 public key, 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// The address this key controls.
    pub fn address(&self) -> Address {
        let digest = sha256(&self.0);
        let mut a = [0u8; 20];
        a.copy_from_slice(&digest.0[..20]);
        Address(a)
    }

    /// Verifies `signature` over `message` by ZIP 215's rules (cofactored
    /// equation, canonical `s`), refusing small-order (weak) keys, whose
    /// "signatures" anyone could make. ZIP 215 is the rule because single
    /// and batch verification agree on it for every input (with the
    /// cofactorless equation they can disagree on crafted signatures, and
    /// a transaction admitted by a batch must verify the same way alone in
    /// every other node's FinalizeBlock). See `zip215`.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), KeyError> {
        let key = zip215::Key::decode(&self.0).map_err(|_| KeyError::InvalidPublicKey)?;
        zip215::verify(&key, message, &signature.0).map_err(|_| KeyError::BadSignature)
    }

    /// Lower-case hex.
    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// Many signatures checked at once: the batch passes exactly when every
/// item would pass [`PublicKey::verify`] alone (ZIP 215 makes the two
/// agree), at about half the cost per signature. A failed batch says only
/// that some item fails; callers verify the items one by one to learn
/// which.
#[derive(Default)]
pub struct BatchVerifier {
    inner: zip215::Batch,
    len: usize,
    /// A key refused before the batch (not a point, or weak): the batch
    /// cannot pass.
    invalid_key: bool,
}

impl BatchVerifier {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `signature` by `key` over `message`.
    pub fn queue(&mut self, key: &PublicKey, message: &[u8], signature: &Signature) {
        self.len += 1;
        match zip215::Key::decode(&key.0) {
            Ok(k) => self.inner.queue(k, message, &signature.0),
            Err(_) => self.invalid_key = true,
        }
    }

    /// Items queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Checks every queued signature. The random coefficients come from
    /// the OS: their only job is to be unpredictable to whoever crafted
    /// the signatures, and the outcome does not depend on them.
    pub fn verify(self) -> Result<(), KeyError> {
        if self.invalid_key {
            return Err(KeyError::InvalidPublicKey);
        }
        self.inner
            .verify(&mut rand::rngs::OsRng)
            .map_err(|_| KeyError::BadSignature)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

/// An ed25519 signature, 64 bytes.
#[derive(Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", hex::encode(self.0))
    }
}

/// A secret ed25519 key.
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Self {
        SigningKey(ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// A key from its 32 secret bytes.
    pub fn from_bytes(secret: [u8; 32]) -> Self {
        SigningKey(ed25519_dalek::SigningKey::from_bytes(&secret))
    }

    /// A deterministic key derived from a seed string: for tests, benches
    /// and genesis fixtures only, never for real funds.
    pub fn from_seed(seed: &str) -> Self {
        Self::from_bytes(sha256(seed.as_bytes()).0)
    }

    /// The 32 secret bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// The address of the public half.
    pub fn address(&self) -> Address {
        self.public_key().address()
    }

    /// Signs `message` as is; callers build domain-separated messages.
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(address={})", self.address())
    }
}

/// A 20-byte account address, shown as bech32m `weft1…`.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, BorshSerialize, BorshDeserialize,
)]
pub struct Address(pub [u8; 20]);

impl Address {
    /// Lower-case hex of the 20 bytes (used in storage key paths).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hrp = Hrp::parse_unchecked(ADDRESS_PREFIX);
        let s = bech32::encode::<Bech32m>(hrp, &self.0).map_err(|_| fmt::Error)?;
        f.write_str(&s)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

impl FromStr for Address {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let checked = bech32::primitives::decode::CheckedHrpstring::new::<Bech32m>(s)
            .map_err(|e| KeyError::InvalidAddress(e.to_string()))?;
        if checked.hrp().as_str() != ADDRESS_PREFIX {
            return Err(KeyError::InvalidAddress(format!(
                "prefix must be `{ADDRESS_PREFIX}`, found `{}`",
                checked.hrp()
            )));
        }
        let bytes: Vec<u8> = checked.byte_iter().collect();
        let arr: [u8; 20] = bytes.as_slice().try_into().map_err(|_| {
            KeyError::InvalidAddress(format!("expected 20 bytes, found {}", bytes.len()))
        })?;
        Ok(Address(arr))
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The JSON key file written by `weft keys new` and read by every command
/// that signs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyFile {
    /// Always `ed25519`.
    pub kind: String,
    /// Hex of the 32 secret bytes.
    pub secret_key: String,
    /// Hex of the public key (informational; checked on load).
    pub public_key: String,
    /// The bech32m address (informational; checked on load).
    pub address: Address,
}

impl KeyFile {
    /// The key file for `key`.
    pub fn new(key: &SigningKey) -> Self {
        KeyFile {
            kind: "ed25519".into(),
            secret_key: hex::encode(key.to_bytes()),
            public_key: key.public_key().to_hex(),
            address: key.address(),
        }
    }

    /// The signing key, after checking that the stored public key and
    /// address belong to it.
    pub fn signing_key(&self) -> Result<SigningKey, KeyError> {
        if self.kind != "ed25519" {
            return Err(KeyError::InvalidKeyFile(format!(
                "unsupported kind `{}`",
                self.kind
            )));
        }
        let mut secret = [0u8; 32];
        hex::decode_to_slice(&self.secret_key, &mut secret)
            .map_err(|e| KeyError::InvalidKeyFile(format!("secret_key: {e}")))?;
        let key = SigningKey::from_bytes(secret);
        if key.public_key().to_hex() != self.public_key.to_lowercase()
            || key.address() != self.address
        {
            return Err(KeyError::InvalidKeyFile(
                "public_key or address does not match secret_key".into(),
            ));
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_passes_exactly_when_every_signature_does() {
        let keys: Vec<SigningKey> = (0..8)
            .map(|i| SigningKey::from_seed(&format!("k{i}")))
            .collect();
        let msgs: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 40]).collect();
        let sigs: Vec<Signature> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
        let batch = |sigs: &[Signature], keys: &[PublicKey]| {
            let mut b = BatchVerifier::new();
            for ((k, m), s) in keys.iter().zip(&msgs).zip(sigs) {
                b.queue(k, m, s);
            }
            assert_eq!(b.len(), 8);
            b.verify()
        };
        let pubs: Vec<PublicKey> = keys.iter().map(SigningKey::public_key).collect();
        assert_eq!(batch(&sigs, &pubs), Ok(()));
        for (i, (k, m)) in pubs.iter().zip(&msgs).enumerate() {
            assert_eq!(k.verify(m, &sigs[i]), Ok(()));
        }
        let mut forged = sigs.clone();
        forged[5].0[0] ^= 1;
        assert_eq!(batch(&forged, &pubs), Err(KeyError::BadSignature));
        assert!(pubs[5].verify(&msgs[5], &forged[5]).is_err());
        // A weak key (the identity point) is refused alone and in a batch.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut weak = pubs.clone();
        weak[2] = PublicKey(identity);
        assert_eq!(batch(&sigs, &weak), Err(KeyError::InvalidPublicKey));
        assert_eq!(
            weak[2].verify(&msgs[2], &sigs[2]),
            Err(KeyError::InvalidPublicKey)
        );
        assert!(BatchVerifier::new().is_empty() && BatchVerifier::new().verify().is_ok());
    }

    #[test]
    fn address_is_bech32m_weft_of_sha256_prefix() {
        let key = SigningKey::from_seed("alice");
        let addr = key.address();
        assert_eq!(&addr.0[..], &sha256(&key.public_key().0).0[..20]);
        let text = addr.to_string();
        assert!(text.starts_with("weft1"), "{text}");
        assert_eq!(text.parse::<Address>().unwrap(), addr);
        // Pinned: a change here breaks every address users hold.
        insta::assert_snapshot!(text);
    }

    #[test]
    fn address_parsing_rejects_wrong_prefix_checksum_and_length() {
        let addr = SigningKey::from_seed("alice").address().to_string();
        let mut bad = addr.clone();
        bad.pop();
        bad.push(if addr.ends_with('q') { 'p' } else { 'q' });
        assert!(bad.parse::<Address>().is_err());
        let other = bech32::encode::<Bech32m>(Hrp::parse("cosmos").unwrap(), &[0u8; 20]).unwrap();
        assert!(other.parse::<Address>().is_err());
        let short = bech32::encode::<Bech32m>(Hrp::parse("weft").unwrap(), &[0u8; 19]).unwrap();
        assert!(short.parse::<Address>().is_err());
        // bech32 (not bech32m) checksum is refused.
        let legacy =
            bech32::encode::<bech32::Bech32>(Hrp::parse("weft").unwrap(), &[0u8; 20]).unwrap();
        assert!(legacy.parse::<Address>().is_err());
    }

    #[test]
    fn signatures_verify_and_tampering_fails() {
        let key = SigningKey::from_seed("bob");
        let sig = key.sign(b"message");
        key.public_key().verify(b"message", &sig).unwrap();
        assert_eq!(
            key.public_key().verify(b"messagf", &sig),
            Err(KeyError::BadSignature)
        );
        let other = SigningKey::from_seed("carol").public_key();
        assert_eq!(other.verify(b"message", &sig), Err(KeyError::BadSignature));
    }

    #[test]
    fn key_file_round_trip_and_mismatch() {
        let key = SigningKey::generate();
        let file = KeyFile::new(&key);
        let json = serde_json::to_string(&file).unwrap();
        let back: KeyFile = serde_json::from_str(&json).unwrap();
        assert_eq!(back.signing_key().unwrap().to_bytes(), key.to_bytes());
        let mut wrong = back.clone();
        wrong.address = SigningKey::from_seed("x").address();
        assert!(wrong.signing_key().is_err());
    }
}
