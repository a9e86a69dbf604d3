//! The network's one CometBFT genesis.json: chain id, consensus parameters
//! (block limits, vote extensions), the validator set and Weft's
//! `app_state`. The one place Weft builds, edits and checks a genesis:
//! `weft devnet up` and every [`Testnet`](crate::Testnet) go through
//! [`build_genesis`], and `weft genesis new|add-account|add-validator|
//! set-param|validate` through [`new_genesis`], [`add_validator`],
//! [`app_state`], [`set_app_state`] and [`validate`].

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use weft_core::{
    genesis::{check_chain_id, GenesisFieldError},
    sha256, GenesisAppState,
};

use crate::{Result, TestnetError};

/// Most bytes in a block (4 MiB), well under CometBFT's 21 MiB default
/// (pitfall 9: big blocks raise latency).
pub const BLOCK_MAX_BYTES: u64 = 4 * 1024 * 1024;
/// Voting power of every validator at genesis.
pub const VALIDATOR_POWER: u64 = 10;
/// Amino type of an ed25519 consensus key, the only kind Weft accepts.
pub const ED25519_KEY_TYPE: &str = "tendermint/PubKeyEd25519";
/// CometBFT's `MaxTotalVotingPower` (`int64 max / 8`).
pub const MAX_TOTAL_VOTING_POWER: i64 = i64::MAX / 8;

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

    /// An ed25519 consensus key; the address is CometBFT's (first 20
    /// bytes of SHA-256 of the key, upper-case hex).
    pub fn from_ed25519(key: [u8; 32], name: impl Into<String>) -> Self {
        GenesisValidator {
            address: consensus_address(&key),
            pub_key_type: ED25519_KEY_TYPE.into(),
            pub_key_value: base64::engine::general_purpose::STANDARD.encode(key),
            name: name.into(),
        }
    }

    /// An ed25519 consensus key given as base64 (what CometBFT prints).
    pub fn from_base64(key: &str, name: impl Into<String>) -> Result<Self> {
        let key = decode_ed25519(key).map_err(TestnetError::InvalidConfig)?;
        Ok(Self::from_ed25519(key, name))
    }

    /// The 32 key bytes, if this is a valid ed25519 key.
    pub fn ed25519_key(&self) -> Result<[u8; 32], String> {
        if self.pub_key_type != ED25519_KEY_TYPE {
            return Err(format!(
                "key type `{}` is not `{ED25519_KEY_TYPE}`",
                self.pub_key_type
            ));
        }
        decode_ed25519(&self.pub_key_value)
    }
}

/// CometBFT's address of an ed25519 key: upper-case hex of the first 20
/// bytes of its SHA-256.
pub fn consensus_address(key: &[u8; 32]) -> String {
    hex::encode_upper(&sha256(key).as_bytes()[..20])
}

fn decode_ed25519(b64: &str) -> Result<[u8; 32], String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| format!("`{b64}` is not base64: {e}"))?;
    let key: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| format!("an ed25519 key is 32 bytes, `{b64}` is {}", bytes.len()))?;
    if !weft_core::transaction::is_valid_consensus_key(&key) {
        return Err(format!("`{b64}` is not a valid ed25519 public key"));
    }
    Ok(key)
}

/// What [`new_genesis`] needs.
#[derive(Debug, Clone)]
pub struct NewGenesis {
    /// Chain id (see [`check_chain_id`]).
    pub chain_id: String,
    /// RFC 3339 time of the first block, e.g. `2026-01-01T00:00:00Z`.
    pub genesis_time: String,
    /// `consensus_params.block.max_bytes`.
    pub block_max_bytes: u64,
    /// `consensus_params.abci.vote_extensions_enable_height`: 0 = off,
    /// else the first height whose votes carry extensions.
    pub vote_extensions_enable_height: u64,
}

/// A CometBFT v0.38 genesis with no validators and an empty `app_state`
/// (no accounts, default parameters): CometBFT's default consensus
/// parameters except the block size ([`NewGenesis::block_max_bytes`]) and
/// vote extensions.
pub fn new_genesis(opts: &NewGenesis) -> Result<Value> {
    check_chain_id(&opts.chain_id)
        .map_err(|e| TestnetError::InvalidConfig(format!("chain_id: {e}")))?;
    check_time(&opts.genesis_time)
        .map_err(|e| TestnetError::InvalidConfig(format!("genesis_time: {e}")))?;
    let mut doc = json!({
        "genesis_time": opts.genesis_time,
        "chain_id": opts.chain_id,
        "initial_height": "1",
        "consensus_params": {
            "block": { "max_bytes": opts.block_max_bytes.to_string(), "max_gas": "-1" },
            "evidence": {
                "max_age_num_blocks": "100000",
                "max_age_duration": "172800000000000",
                "max_bytes": "1048576"
            },
            "validator": { "pub_key_types": ["ed25519"] },
            "version": { "app": "0" },
            "abci": { "vote_extensions_enable_height": "0" }
        },
        "validators": [],
        "app_hash": "",
    });
    set_vote_extensions_enable_height(&mut doc, opts.vote_extensions_enable_height)?;
    set_app_state(&mut doc, &GenesisAppState::default())?;
    Ok(doc)
}

fn object_mut<'a>(v: &'a mut Value, what: &str) -> Result<&'a mut serde_json::Map<String, Value>> {
    v.as_object_mut()
        .ok_or_else(|| TestnetError::json("genesis.json", format!("{what} is not a JSON object")))
}

/// Sets `consensus_params.abci.vote_extensions_enable_height` (0 = off).
pub fn set_vote_extensions_enable_height(doc: &mut Value, height: u64) -> Result<()> {
    let params = object_mut(doc, "the genesis")?
        .entry("consensus_params")
        .or_insert_with(|| json!({}));
    object_mut(params, "consensus_params")?
        .entry("abci")
        .or_insert_with(|| json!({}));
    object_mut(&mut params["abci"], "consensus_params.abci")?.insert(
        "vote_extensions_enable_height".into(),
        json!(height.to_string()),
    );
    Ok(())
}

/// The genesis' `app_state`, parsed (shape only: [`validate`] checks the rest).
pub fn app_state(doc: &Value) -> Result<GenesisAppState> {
    let v = doc.get("app_state").cloned().unwrap_or(Value::Null);
    serde_path_to_error::deserialize(v)
        .map_err(|e| TestnetError::InvalidConfig(format!("app_state.{}: {}", e.path(), e.inner())))
}

/// Replaces the genesis' `app_state`.
pub fn set_app_state(doc: &mut Value, app_state: &GenesisAppState) -> Result<()> {
    let v = serde_json::to_value(app_state).map_err(|e| TestnetError::json("app_state", e))?;
    object_mut(doc, "the genesis")?.insert("app_state".into(), v);
    Ok(())
}

/// The voting power the staking rules give the genesis validator with
/// consensus key `key`, as InitChain will return it: stake divided by the
/// smallest common divisor that keeps the total within CometBFT's maximum
/// (docs/governance.md, "The active set and voting power"). genesis.json
/// must list the same set, or a conductor trusting genesis.json refuses
/// height 1. Exact when no validator's share exceeds
/// `max_power_share_bps` (test networks bond every validator equally).
pub fn staking_power(staking: &weft_core::GenesisStaking, key: &[u8; 32]) -> Result<u64> {
    let total: u128 = staking.validators.iter().map(|v| v.self_bond).sum();
    let max = MAX_TOTAL_VOTING_POWER as u128;
    let divisor = total.div_ceil(max).max(1);
    let bond = staking
        .validators
        .iter()
        .find(|v| &v.consensus_key == key)
        .map(|v| v.self_bond)
        .ok_or_else(|| {
            TestnetError::InvalidConfig(format!(
                "validator {} has no staking entry",
                hex::encode(key)
            ))
        })?;
    u64::try_from(bond / divisor)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| TestnetError::InvalidConfig(format!("self-bond {bond} gives no power")))
}

/// Appends a validator with `power`; refuses power 0 and a key already
/// listed.
pub fn add_validator(doc: &mut Value, v: &GenesisValidator, power: u64) -> Result<()> {
    if power == 0 {
        return Err(TestnetError::InvalidConfig(
            "validator power must be positive (CometBFT refuses power 0)".into(),
        ));
    }
    let list = object_mut(doc, "the genesis")?
        .entry("validators")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .ok_or_else(|| TestnetError::json("genesis.json", "validators is not an array"))?;
    if let Some(i) = list
        .iter()
        .position(|e| e["pub_key"]["value"] == json!(v.pub_key_value))
    {
        return Err(TestnetError::InvalidConfig(format!(
            "validator key {} is already listed at validators[{i}]",
            v.pub_key_value
        )));
    }
    list.push(json!({
        "address": v.address,
        "pub_key": { "type": v.pub_key_type, "value": v.pub_key_value },
        "power": power.to_string(),
        "name": v.name,
    }));
    Ok(())
}

/// Builds the network's genesis from `base` (a genesis.json written by
/// `cometbft init`, whose evidence/validator/abci parameters and genesis time
/// are kept): sets the chain id, initial height 1, the block limits, every
/// validator (power [`VALIDATOR_POWER`], or with a staking section the
/// power its self-bond gets, see [`staking_power`]), and `app_state`; then
/// [`validate`]s it.
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
    let obj = object_mut(&mut genesis, "genesis.json")?;
    if !obj.get("genesis_time").is_some_and(Value::is_string) {
        return Err(TestnetError::json("genesis.json", "missing genesis_time"));
    }
    obj.insert("chain_id".into(), json!(chain_id));
    obj.insert("initial_height".into(), json!("1"));

    let params = obj.entry("consensus_params").or_insert_with(|| json!({}));
    object_mut(params, "consensus_params")?.insert(
        "block".into(),
        json!({ "max_bytes": BLOCK_MAX_BYTES.to_string(), "max_gas": "-1" }),
    );
    obj.insert("validators".into(), json!([]));
    obj.insert("app_hash".into(), json!(""));
    for v in validators {
        let power = match &app_state.staking {
            Some(staking) => staking_power(
                staking,
                &v.ed25519_key().map_err(TestnetError::InvalidConfig)?,
            )?,
            None => VALIDATOR_POWER,
        };
        add_validator(&mut genesis, v, power)?;
    }
    set_app_state(&mut genesis, app_state)?;
    validate(&genesis).map_err(|e| TestnetError::InvalidConfig(format!("genesis: {e}")))?;
    Ok(genesis)
}

/// A CometBFT int64, which its JSON writes as a decimal string.
#[derive(Debug, Clone, Copy, Default)]
struct I64Str(i64);

impl<'de> Deserialize<'de> for I64Str {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map(I64Str).map_err(|_| {
            serde::de::Error::custom(format!("`{s}` is not an integer written as a string"))
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Fields exist to check the JSON's shape.
struct DocShape {
    genesis_time: String,
    chain_id: String,
    initial_height: I64Str,
    consensus_params: ConsensusParamsShape,
    validators: Vec<ValidatorShape>,
    #[serde(default)]
    app_hash: String,
    app_state: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ConsensusParamsShape {
    block: Option<BlockShape>,
    evidence: Option<EvidenceShape>,
    validator: Option<ValidatorParamsShape>,
    version: Option<VersionShape>,
    abci: Option<AbciShape>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockShape {
    max_bytes: I64Str,
    max_gas: I64Str,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct EvidenceShape {
    max_age_num_blocks: I64Str,
    max_age_duration: I64Str,
    max_bytes: I64Str,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidatorParamsShape {
    pub_key_types: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct VersionShape {
    #[serde(default)]
    app: I64Str,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AbciShape {
    vote_extensions_enable_height: I64Str,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidatorShape {
    #[serde(default)]
    address: String,
    pub_key: PubKeyShape,
    power: I64Str,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PubKeyShape {
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

/// What a valid genesis holds, for reports.
#[derive(Debug, Clone)]
pub struct GenesisSummary {
    /// Chain id.
    pub chain_id: String,
    /// Genesis time.
    pub genesis_time: String,
    /// CometBFT validators.
    pub validators: usize,
    /// Their total voting power.
    pub total_power: i64,
    /// `consensus_params.abci.vote_extensions_enable_height` (0 = off).
    pub vote_extensions_enable_height: i64,
    /// The parsed, checked `app_state`.
    pub app_state: GenesisAppState,
}

fn check_time(t: &str) -> Result<(), String> {
    let b = t.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let ok = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && (t.ends_with('Z') || t[19..].contains(['+', '-']));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{t}` is not an RFC 3339 time like 2026-01-01T00:00:00Z"
        ))
    }
}

/// Checks a whole genesis.json as CometBFT v0.38 and `weft-sequencer`
/// would, and more strictly (unknown fields refused): its JSON shape, the
/// chain id, `initial_height` 1, consensus parameters, the validators
/// (ed25519 keys, positive power, no key twice, addresses matching keys,
/// total power within CometBFT's limit), the `app_state` (see
/// [`GenesisAppState::check_fields`]) and, with a staking section,
/// that CometBFT's validators are exactly the staking validators' keys.
/// Every error names its field.
pub fn validate(doc: &Value) -> Result<GenesisSummary, GenesisFieldError> {
    let shape: DocShape = serde_path_to_error::deserialize(doc).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "genesis".into() } else { path };
        GenesisFieldError::new(field, e.inner().to_string())
    })?;
    check_chain_id(&shape.chain_id).map_err(|m| GenesisFieldError::new("chain_id", m))?;
    check_time(&shape.genesis_time).map_err(|m| GenesisFieldError::new("genesis_time", m))?;
    if shape.initial_height.0 != 1 {
        return Err(GenesisFieldError::new(
            "initial_height",
            format!(
                "must be \"1\" (the sequencer's state versions are heights), got {}",
                shape.initial_height.0
            ),
        ));
    }
    let cp = &shape.consensus_params;
    if let Some(block) = &cp.block {
        if block.max_bytes.0 <= 0 && block.max_bytes.0 != -1 {
            return Err(GenesisFieldError::new(
                "consensus_params.block.max_bytes",
                "must be positive (or -1 for CometBFT's maximum)",
            ));
        }
        if block.max_gas.0 < -1 {
            return Err(GenesisFieldError::new(
                "consensus_params.block.max_gas",
                "must be -1 (no limit) or more",
            ));
        }
    }
    if let Some(v) = &cp.validator {
        if v.pub_key_types.iter().all(|t| t != "ed25519") {
            return Err(GenesisFieldError::new(
                "consensus_params.validator.pub_key_types",
                "must include \"ed25519\" (Weft's consensus keys are ed25519)",
            ));
        }
    }
    let vote_extensions_enable_height = cp
        .abci
        .as_ref()
        .map_or(0, |a| a.vote_extensions_enable_height.0);
    if vote_extensions_enable_height < 0 {
        return Err(GenesisFieldError::new(
            "consensus_params.abci.vote_extensions_enable_height",
            "must be 0 (off) or a positive height",
        ));
    }

    if shape.validators.is_empty() {
        return Err(GenesisFieldError::new(
            "validators",
            "must list at least one validator (weft-sequencer's InitChain does not return a set)",
        ));
    }
    let mut keys: BTreeMap<[u8; 32], usize> = BTreeMap::new();
    let mut total_power: i64 = 0;
    for (i, v) in shape.validators.iter().enumerate() {
        let at = |f: &str| format!("validators[{i}].{f}");
        if v.pub_key.kind != ED25519_KEY_TYPE {
            return Err(GenesisFieldError::new(
                at("pub_key.type"),
                format!("`{}` is not `{ED25519_KEY_TYPE}`", v.pub_key.kind),
            ));
        }
        let key = decode_ed25519(&v.pub_key.value)
            .map_err(|m| GenesisFieldError::new(at("pub_key.value"), m))?;
        if let Some(first) = keys.insert(key, i) {
            return Err(GenesisFieldError::new(
                at("pub_key"),
                format!(
                    "duplicate validator: key {} is already listed at validators[{first}]",
                    v.pub_key.value
                ),
            ));
        }
        if v.power.0 <= 0 {
            return Err(GenesisFieldError::new(
                at("power"),
                format!(
                    "must be positive, got {} (validator `{}`)",
                    v.power.0, v.name
                ),
            ));
        }
        if !v.address.is_empty() && !v.address.eq_ignore_ascii_case(&consensus_address(&key)) {
            return Err(GenesisFieldError::new(
                at("address"),
                format!(
                    "{} is not the address of this key ({})",
                    v.address,
                    consensus_address(&key)
                ),
            ));
        }
        total_power = total_power
            .checked_add(v.power.0)
            .filter(|t| *t <= MAX_TOTAL_VOTING_POWER)
            .ok_or_else(|| {
                GenesisFieldError::new(
                    at("power"),
                    format!(
                        "total voting power exceeds CometBFT's maximum {MAX_TOTAL_VOTING_POWER}"
                    ),
                )
            })?;
    }
    if !shape.app_hash.is_empty() {
        return Err(GenesisFieldError::new(
            "app_hash",
            "must be empty (the sequencer computes the genesis app hash)",
        ));
    }

    let app_state: GenesisAppState =
        serde_path_to_error::deserialize(&shape.app_state).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." {
                "app_state".into()
            } else {
                format!("app_state.{path}")
            };
            GenesisFieldError::new(field, e.inner().to_string())
        })?;
    app_state.check_fields()?;
    // The sequencer's own rule, in case it refuses more than check_fields.
    let bytes = serde_json::to_vec(&shape.app_state)
        .map_err(|e| GenesisFieldError::new("app_state", e.to_string()))?;
    GenesisAppState::from_json(&bytes)
        .map_err(|e| GenesisFieldError::new("app_state", e.to_string()))?;

    if let Some(staking) = &app_state.staking {
        for (i, v) in staking.validators.iter().enumerate() {
            if !keys.contains_key(&v.consensus_key) {
                return Err(GenesisFieldError::new(
                    format!("app_state.staking.validators[{i}].consensus_key"),
                    "this key is not in `validators`: with a staking section, CometBFT's validators must be exactly the staking validators",
                ));
            }
        }
        if let Some((_, i)) = keys
            .iter()
            .find(|(k, _)| !staking.validators.iter().any(|v| v.consensus_key == **k))
        {
            return Err(GenesisFieldError::new(
                format!("validators[{i}].pub_key"),
                "this key has no entry in app_state.staking.validators: with a staking section, CometBFT's validators must be exactly the staking validators",
            ));
        }
    }

    Ok(GenesisSummary {
        chain_id: shape.chain_id,
        genesis_time: shape.genesis_time,
        validators: shape.validators.len(),
        total_power,
        vote_extensions_enable_height,
        app_state,
    })
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

    fn key(i: u8) -> [u8; 32] {
        SigningKey::from_seed(&format!("validator{i}"))
            .public_key()
            .0
    }

    fn validator(i: u8) -> GenesisValidator {
        let b64 = base64::engine::general_purpose::STANDARD.encode(key(i));
        GenesisValidator::from_priv_validator_key(
            &json!({
                "address": consensus_address(&key(i)),
                "pub_key": { "type": "tendermint/PubKeyEd25519", "value": b64 },
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
            ..Default::default()
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
        assert_eq!(vals[3]["pub_key"]["value"], validator(3).pub_key_value);
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

    /// A small valid genesis: two validators, one account.
    fn fixture() -> Value {
        let mut doc = new_genesis(&NewGenesis {
            chain_id: "weft-fixture".into(),
            genesis_time: "2026-01-01T00:00:00Z".into(),
            block_max_bytes: BLOCK_MAX_BYTES,
            vote_extensions_enable_height: 0,
        })
        .unwrap();
        add_validator(&mut doc, &GenesisValidator::from_ed25519(key(0), "v0"), 10).unwrap();
        add_validator(&mut doc, &GenesisValidator::from_ed25519(key(1), "v1"), 10).unwrap();
        let mut app = app_state(&doc).unwrap();
        app.accounts.push(GenesisAccount {
            address: SigningKey::from_seed("alice").address(),
            balance: 1000,
        });
        set_app_state(&mut doc, &app).unwrap();
        doc
    }

    /// The field `validate` names for `doc` after `edit`.
    fn refused(edit: impl FnOnce(&mut Value)) -> GenesisFieldError {
        let mut doc = fixture();
        edit(&mut doc);
        validate(&doc).unwrap_err()
    }

    #[test]
    fn the_fixture_is_valid() {
        let s = validate(&fixture()).unwrap();
        assert_eq!(
            (s.validators, s.total_power, s.app_state.accounts.len()),
            (2, 20, 1)
        );
        assert_eq!(s.vote_extensions_enable_height, 0);
    }

    #[test]
    fn duplicate_validator_is_refused() {
        let e = refused(|d| {
            let v = d["validators"][0].clone();
            d["validators"].as_array_mut().unwrap().push(v);
        });
        assert_eq!(e.field, "validators[2].pub_key", "{e}");
        assert!(e.message.contains("duplicate validator"), "{e}");
        // add_validator refuses it too.
        let mut doc = fixture();
        assert!(add_validator(&mut doc, &GenesisValidator::from_ed25519(key(0), "x"), 1).is_err());
    }

    #[test]
    fn zero_power_is_refused() {
        let e = refused(|d| d["validators"][1]["power"] = json!("0"));
        assert_eq!(e.field, "validators[1].power", "{e}");
        let mut doc = fixture();
        assert!(add_validator(&mut doc, &GenesisValidator::from_ed25519(key(5), "x"), 0).is_err());
    }

    #[test]
    fn unknown_parameter_is_refused() {
        let e = refused(|d| d["app_state"]["params"]["max_block_fun"] = json!(1));
        assert_eq!(e.field, "app_state.params.max_block_fun", "{e}");
        assert!(e.message.contains("max_block_fun"), "{e}");
    }

    #[test]
    fn bad_address_is_refused() {
        let e = refused(|d| {
            d["app_state"]["accounts"][0]["address"] =
                json!("weft1rsxyjrcm255ds9euthjx6yc3vrjt9sxr7pc3nx")
        });
        assert_eq!(e.field, "app_state.accounts[0].address", "{e}");
        let e = refused(|d| {
            d["app_state"]["accounts"][0]["address"] = json!("cosmos1qqqqqqqqqqqqqqqqqqqq")
        });
        assert_eq!(e.field, "app_state.accounts[0].address", "{e}");
    }

    #[test]
    fn supply_overflow_is_refused() {
        let e = refused(|d| {
            let accounts = d["app_state"]["accounts"].as_array_mut().unwrap();
            accounts[0]["balance"] = json!(u128::MAX.to_string());
            accounts.push(json!({
                "address": SigningKey::from_seed("bob").address().to_string(),
                "balance": "1"
            }));
        });
        assert_eq!(e.field, "app_state.accounts[1].balance", "{e}");
        assert!(e.message.contains("overflows u128"), "{e}");
    }

    #[test]
    fn chain_id_length_is_checked() {
        let e = refused(|d| d["chain_id"] = json!("x".repeat(51)));
        assert_eq!(e.field, "chain_id", "{e}");
        let e = refused(|d| d["chain_id"] = json!(""));
        assert_eq!(e.field, "chain_id", "{e}");
    }

    #[test]
    fn bad_json_shape_is_refused() {
        let e = refused(|d| d["validators"][0]["power"] = json!(10));
        assert_eq!(e.field, "validators[0].power", "{e}");
        let e = refused(|d| d["consensus_params"]["blok"] = json!({}));
        assert_eq!(e.field, "consensus_params.blok", "{e}");
        let e = refused(|d| d["app_state"]["accounts"] = json!({}));
        assert_eq!(e.field, "app_state.accounts", "{e}");
        let e = refused(|d| {
            d.as_object_mut().unwrap().remove("app_state");
        });
        assert_eq!(e.field, "genesis", "{e}");
        assert!(e.message.contains("app_state"), "{e}");
        let e = refused(|d| d["initial_height"] = json!("5"));
        assert_eq!(e.field, "initial_height", "{e}");
    }

    #[test]
    fn bad_keys_and_addresses_of_validators_are_refused() {
        let e = refused(|d| d["validators"][0]["pub_key"]["value"] = json!("AAAA"));
        assert_eq!(e.field, "validators[0].pub_key.value", "{e}");
        let e = refused(|d| d["validators"][0]["address"] = json!("00".repeat(20)));
        assert_eq!(e.field, "validators[0].address", "{e}");
    }

    #[test]
    fn staking_validators_must_match_cometbft_validators() {
        let mut doc = fixture();
        let mut app = app_state(&doc).unwrap();
        let op = SigningKey::from_seed("alice").address();
        app.accounts[0].balance = 5_000_000;
        app.staking = Some(weft_core::GenesisStaking {
            params: Default::default(),
            validators: vec![weft_core::GenesisValidator {
                operator: op,
                consensus_key: key(0),
                name: "v0".into(),
                website: String::new(),
                commission_bps: 0,
                self_bond: 2_000_000,
            }],
        });
        set_app_state(&mut doc, &app).unwrap();
        // validators[1] has no staking entry.
        let e = validate(&doc).unwrap_err();
        assert_eq!(e.field, "validators[1].pub_key", "{e}");
        doc["validators"].as_array_mut().unwrap().pop();
        validate(&doc).unwrap();
    }

    #[test]
    fn vote_extensions_height_is_set() {
        let mut doc = fixture();
        set_vote_extensions_enable_height(&mut doc, 7).unwrap();
        assert_eq!(
            doc["consensus_params"]["abci"]["vote_extensions_enable_height"],
            "7"
        );
        assert_eq!(validate(&doc).unwrap().vote_extensions_enable_height, 7);
    }

    // genesis/README.md documents both files; they must stay valid, and
    // the DEV ONLY example's keys must stay the public-seed ones it names.
    #[test]
    fn the_genesis_files_in_the_repository_are_valid() {
        let parse = |text: &str| -> Value { serde_json::from_str(text).unwrap() };
        let devnet = parse(include_str!("../../../genesis/devnet-4.json"));
        let s = validate(&devnet).unwrap();
        assert_eq!(s.validators, 4);
        assert!(s.chain_id.contains("dev-only"));
        let staking = s.app_state.staking.unwrap();
        for (i, v) in staking.validators.iter().enumerate() {
            let seed = |what: &str| SigningKey::from_seed(&format!("weft-devnet-4/{what}{i}"));
            assert_eq!(v.consensus_key, seed("validator").public_key().0);
            assert_eq!(v.operator, seed("operator").address());
            assert!(devnet["validators"][i]["name"]
                .as_str()
                .unwrap()
                .starts_with("DEV-ONLY-"));
        }
        let template = parse(include_str!("../../../genesis/testnet-template.json"));
        let s = validate(&template).unwrap();
        assert_eq!(s.chain_id, "weft-testnet-1");
        assert!(template["validators"][0]["name"]
            .as_str()
            .unwrap()
            .starts_with("REPLACE-ME"));
    }

    #[test]
    fn staking_powers_follow_self_bonds_within_cometbft_s_maximum() {
        let validator = |seed: u8, self_bond: u128| weft_core::GenesisValidator {
            operator: weft_core::SigningKey::from_seed(&seed.to_string()).address(),
            consensus_key: [seed; 32],
            name: format!("v{seed}"),
            website: String::new(),
            commission_bps: 0,
            self_bond,
        };
        let staking = |bonds: &[u128]| weft_core::GenesisStaking {
            validators: bonds
                .iter()
                .enumerate()
                .map(|(i, b)| validator(i as u8 + 1, *b))
                .collect(),
            params: weft_core::StakingParams::default(),
        };
        let small = staking(&[1_000, 1_000]);
        assert_eq!(staking_power(&small, &[1; 32]).unwrap(), 1_000);
        // Past the maximum, one common divisor brings the total under it.
        let big = staking(&[u128::from(u64::MAX), u128::from(u64::MAX)]);
        let p = staking_power(&big, &[2; 32]).unwrap();
        assert!(
            2 * i128::from(p) <= i128::from(MAX_TOTAL_VOTING_POWER),
            "{p}"
        );
        assert!(staking_power(&small, &[9; 32]).is_err(), "no staking entry");
    }
}
