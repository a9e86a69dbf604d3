//! `RollupId`: 32 bytes naming a rollup, conventionally SHA-256 of its name.

use std::{fmt, str::FromStr};

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::hash::sha256;

/// Identifies a rollup. Ordered bytewise, which is the order of rollups in a
/// block's commitments.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct RollupId(pub [u8; 32]);

impl RollupId {
    /// The conventional id of a rollup called `name`: SHA-256 of the name.
    pub fn from_name(name: &str) -> Self {
        RollupId(sha256(name.as_bytes()).0)
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Self, hex::FromHexError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s.strip_prefix("0x").unwrap_or(s), &mut out)?;
        Ok(RollupId(out))
    }

    /// Reads a user's spelling of a rollup: 64 hex characters are taken as
    /// the id itself, anything else as a name to hash.
    pub fn from_name_or_hex(s: &str) -> Self {
        match Self::from_hex(s) {
            Ok(id) if s.len() >= 64 => id,
            _ => Self::from_name(s),
        }
    }
}

impl fmt::Display for RollupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for RollupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RollupId({})", self.to_hex())
    }
}

impl FromStr for RollupId {
    type Err = hex::FromHexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s)
    }
}

impl Serialize for RollupId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for RollupId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as Deserialize>::deserialize(d)?;
        Self::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_name_is_sha256_of_the_name() {
        assert_eq!(RollupId::from_name("alpha").0, sha256(b"alpha").0);
        let id = RollupId::from_name("alpha");
        assert_eq!(RollupId::from_name_or_hex(&id.to_hex()), id);
        assert_eq!(RollupId::from_name_or_hex("alpha"), id);
    }
}
