//! The sequencer's genesis `app_state` (inside CometBFT's genesis.json) and
//! the chain parameters it sets.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{keys::Address, Amount};

/// Chain parameters kept in authenticated state (governance changes them in
/// a later issue).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChainParams {
    /// Fee charged for every transaction, in the native asset.
    #[serde(with = "amount_string")]
    pub base_fee: Amount,
    /// Fee per byte of rollup data carried.
    #[serde(with = "amount_string")]
    pub fee_per_byte: Amount,
    /// Most rollup data bytes one transaction may carry.
    pub max_rollup_data_per_tx: u32,
    /// Most rollup data bytes one block may carry (all rollups together).
    pub max_rollup_data_per_block: u64,
    /// Most transactions one account may have in one block, so a single
    /// sender cannot fill blocks while others wait.
    pub max_txs_per_account_per_block: u32,
}

impl Default for ChainParams {
    fn default() -> Self {
        ChainParams {
            base_fee: 1_000,
            fee_per_byte: 1,
            max_rollup_data_per_tx: 256 * 1024,
            max_rollup_data_per_block: 3 * 1024 * 1024,
            max_txs_per_account_per_block: 256,
        }
    }
}

impl ChainParams {
    /// The fee a transaction carrying `rollup_bytes` of rollup data pays.
    /// `None` on overflow, which callers treat as unaffordable.
    pub fn fee_for(&self, rollup_bytes: u64) -> Option<Amount> {
        self.fee_per_byte
            .checked_mul(Amount::from(rollup_bytes))?
            .checked_add(self.base_fee)
    }
}

/// A funded account at genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    /// The account.
    pub address: Address,
    /// Its starting balance.
    #[serde(with = "amount_string")]
    pub balance: Amount,
}

/// The `app_state` object of CometBFT's genesis.json.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct GenesisAppState {
    /// Funded accounts; addresses must be distinct.
    pub accounts: Vec<GenesisAccount>,
    /// Chain parameters.
    #[serde(default)]
    pub params: ChainParams,
}

/// Why a genesis is refused.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// Not the JSON we expect.
    #[error("genesis app_state is not valid: {0}")]
    Json(#[from] serde_json::Error),
    /// Duplicate accounts or an impossible parameter.
    #[error("genesis app_state is not valid: {0}")]
    Invalid(String),
}

impl GenesisAppState {
    /// Parses and validates the JSON `app_state`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, GenesisError> {
        let state: GenesisAppState = serde_json::from_slice(bytes)?;
        let mut seen = std::collections::BTreeSet::new();
        for a in &state.accounts {
            if !seen.insert(a.address) {
                return Err(GenesisError::Invalid(format!(
                    "account {} listed twice",
                    a.address
                )));
            }
        }
        if state.params.max_rollup_data_per_tx == 0 {
            return Err(GenesisError::Invalid(
                "max_rollup_data_per_tx must be positive".into(),
            ));
        }
        Ok(state)
    }
}

/// serde helper: amounts as decimal strings (u128 does not fit a JSON
/// number safely); numbers are accepted on input.
pub mod amount_string {
    use serde::{de, Deserialize, Deserializer, Serializer};

    use crate::Amount;

    /// Serialize as a decimal string.
    pub fn serialize<S: Serializer>(v: &Amount, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    /// Deserialize from a decimal string or a non-negative integer.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Amount, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            S(String),
            N(u64),
        }
        match Repr::deserialize(d)? {
            Repr::S(s) => s.parse().map_err(de::Error::custom),
            Repr::N(n) => Ok(Amount::from(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;

    #[test]
    fn parses_and_rejects_duplicates() {
        let a = SigningKey::from_seed("a").address();
        let json = format!(
            r#"{{"accounts":[{{"address":"{a}","balance":"100"}}],"params":{{"base_fee":"1","fee_per_byte":2,"max_rollup_data_per_tx":10}}}}"#
        );
        let g = GenesisAppState::from_json(json.as_bytes()).unwrap();
        assert_eq!(g.accounts[0].balance, 100);
        assert_eq!(g.params.fee_per_byte, 2);
        let dup = format!(
            r#"{{"accounts":[{{"address":"{a}","balance":"1"}},{{"address":"{a}","balance":"2"}}]}}"#
        );
        assert!(GenesisAppState::from_json(dup.as_bytes()).is_err());
        assert!(GenesisAppState::from_json(b"{\"bogus\":1}").is_err());
        assert!(GenesisAppState::from_json(b"not json").is_err());
    }

    // genesis/README.md warns that the example funds the key of the public
    // seed `alice`; this keeps that warning true if the file changes.
    #[test]
    fn the_example_genesis_in_the_repository_parses_and_funds_only_the_dev_key() {
        let g =
            GenesisAppState::from_json(include_bytes!("../../../genesis/example-app-state.json"))
                .unwrap();
        assert_eq!(g.accounts.len(), 1);
        assert_eq!(
            g.accounts[0].address,
            SigningKey::from_seed("alice").address(),
            "genesis/README.md and docs/protocol.md name the seed `alice`"
        );
    }

    #[test]
    fn fees() {
        let p = ChainParams {
            base_fee: 10,
            fee_per_byte: 3,
            ..ChainParams::default()
        };
        assert_eq!(p.fee_for(0), Some(10));
        assert_eq!(p.fee_for(5), Some(25));
        let huge = ChainParams {
            base_fee: Amount::MAX,
            fee_per_byte: 1,
            ..ChainParams::default()
        };
        assert_eq!(huge.fee_for(1), None);
    }
}
