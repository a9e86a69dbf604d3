//! The network's one CometBFT genesis.json: chain id, block limits, the
//! validator set and Weft's `app_state`, built from what `cometbft init` wrote.

use serde_json::{json, Value};
use weft_core::GenesisAppState;

use crate::{Result, TestnetError};

/// Most bytes in a block (4 MiB), well under CometBFT's 21 MiB default
/// (pitfall 9: big blocks raise latency).
pub const BLOCK_MAX_BYTES: u64 = 4 * 1024 * 1024;
/// Voting power of every validator at genesis.
pub const VALIDATOR_POWER: u64 = 10;

/// A validator as CometBFT's genesis lists it, read from its
/// `priv_validator_key.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenesisValidator {
    /// Upper-case hex of the 20-byte consensus address.
    pub address: String,
    /// Amino type of the key, e.g. `tendermint/PubKeyEd25519`.
    pub pub_key_type: String,
    /// Base64 of the public key.
    pub pub_key_value: String,
    /// Moniker shown in the genesis.
    pub name: String,
}

impl GenesisValidator {
    /// Reads the public part of a `priv_validator_key.json`.
    pub fn from_priv_validator_key(json: &Value, name: impl Into<String>) -> Result<Self> {
        let field = |pointer: &str| -> Result<String> {
            json.pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| {
                    TestnetError::json("priv_validator_key.json", format!("missing {pointer}"))
                })
        };
        Ok(GenesisValidator {
            address: field("/address")?,
            pub_key_type: field("/pub_key/type")?,
            pub_key_value: field("/pub_key/value")?,
            name: name.into(),
        })
    }
}

/// Builds the network's genesis from `base` (a genesis.json written by
/// `cometbft init`, whose evidence/validator/abci parameters and genesis time
/// are kept): sets the chain id, initial height 1, the block limits, every
/// validator with equal power, and `app_state`.
pub fn build_genesis(
    base: &Value,
    chain_id: &str,
    validators: &[GenesisValidator],
    app_state: &GenesisAppState,
) -> Result<Value> {
    if validators.is_empty() {
        return Err(TestnetError::InvalidConfig(
            "a network needs at least one validator".into(),
        ));
    }
    let mut genesis = base.clone();
    let obj = genesis
        .as_object_mut()
        .ok_or_else(|| TestnetError::json("genesis.json", "not a JSON object"))?;
    if !obj.get("genesis_time").is_some_and(Value::is_string) {
        return Err(TestnetError::json("genesis.json", "missing genesis_time"));
    }
    obj.insert("chain_id".into(), json!(chain_id));
    obj.insert("initial_height".into(), json!("1"));

    let params = obj
        .entry("consensus_params")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| TestnetError::json("genesis.json", "consensus_params is not an object"))?;
    params.insert(
        "block".into(),
        json!({ "max_bytes": BLOCK_MAX_BYTES.to_string(), "max_gas": "-1" }),
    );

    let validators: Vec<Value> = validators
        .iter()
        .map(|v| {
            json!({
                "address": v.address,
                "pub_key": { "type": v.pub_key_type, "value": v.pub_key_value },
                "power": VALIDATOR_POWER.to_string(),
                "name": v.name,
            })
        })
        .collect();
    obj.insert("validators".into(), Value::Array(validators));
    obj.insert(
        "app_state".into(),
        serde_json::to_value(app_state).map_err(|e| TestnetError::json("app_state", e))?,
    );
    obj.insert("app_hash".into(), json!(""));
    Ok(genesis)
}

#[cfg(test)]
mod tests {
    use weft_core::{ChainParams, GenesisAccount, SigningKey};

    use super::*;

    /// What `cometbft init` v0.38 writes.
    fn init_genesis() -> Value {
        json!({
          "genesis_time": "2025-01-02T03:04:05.123456789Z",
          "chain_id": "test-chain-abc",
          "initial_height": "0",
          "consensus_params": {
            "block": { "max_bytes": "22020096", "max_gas": "-1" },
            "evidence": {
              "max_age_num_blocks": "100000",
              "max_age_duration": "172800000000000",
              "max_bytes": "1048576"
            },
            "validator": { "pub_key_types": ["ed25519"] },
            "version": { "app": "0" },
            "abci": { "vote_extensions_enable_height": "0" }
          },
          "validators": [{
            "address": "1137DF22F03A0F96523B8FCAD52D11179212F5A7",
            "pub_key": { "type": "tendermint/PubKeyEd25519", "value": "AAAA" },
            "power": "10",
            "name": ""
          }],
          "app_hash": ""
        })
    }

    fn validator(i: u8) -> GenesisValidator {
        GenesisValidator::from_priv_validator_key(
            &json!({
                "address": format!("{:040X}", i),
                "pub_key": { "type": "tendermint/PubKeyEd25519", "value": format!("key{i}") },
                "priv_key": { "type": "tendermint/PrivKeyEd25519", "value": "secret" }
            }),
            format!("node{i}"),
        )
        .unwrap()
    }

    #[test]
    fn genesis_has_all_validators_limits_and_app_state() {
        let dev = SigningKey::from_seed("dev");
        let app_state = GenesisAppState {
            accounts: vec![GenesisAccount {
                address: dev.address(),
                balance: 1_000_000_000_000_000_000,
            }],
            params: ChainParams::default(),
            staking: None,
            governance: None,
        };
        let validators: Vec<_> = (0..4).map(validator).collect();
        let g = build_genesis(&init_genesis(), "weft-test", &validators, &app_state).unwrap();

        assert_eq!(g["chain_id"], "weft-test");
        assert_eq!(g["initial_height"], "1");
        assert_eq!(g["genesis_time"], "2025-01-02T03:04:05.123456789Z");
        assert_eq!(g["consensus_params"]["block"]["max_bytes"], "4194304");
        assert_eq!(g["consensus_params"]["block"]["max_gas"], "-1");
        assert_eq!(
            g["consensus_params"]["evidence"]["max_age_num_blocks"],
            "100000"
        );
        assert_eq!(
            g["consensus_params"]["validator"]["pub_key_types"][0],
            "ed25519"
        );
        let vals = g["validators"].as_array().unwrap();
        assert_eq!(vals.len(), 4);
        assert_eq!(vals[3]["pub_key"]["value"], "key3");
        assert_eq!(vals[3]["name"], "node3");
        assert!(vals.iter().all(|v| v["power"] == "10"));

        let parsed =
            GenesisAppState::from_json(&serde_json::to_vec(&g["app_state"]).unwrap()).unwrap();
        assert_eq!(parsed, app_state);
    }

    #[test]
    fn no_validators_is_refused() {
        let r = build_genesis(&init_genesis(), "c", &[], &GenesisAppState::default());
        assert!(matches!(r, Err(TestnetError::InvalidConfig(_))));
    }

    #[test]
    fn malformed_priv_validator_key_is_an_error() {
        let r = GenesisValidator::from_priv_validator_key(&json!({ "address": "AB" }), "n");
        assert!(r.is_err());
    }
}
