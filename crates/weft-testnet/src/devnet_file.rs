//! `devnet.json`: the small file `weft devnet up` writes so other tools (the
//! `weft` CLI's `--devnet`, scripts) can find the nodes and the dev key.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Result, TestnetError};

/// What every place that shows or hands out a devnet's funded developer key
/// says about it.
pub const DEV_KEY_WARNING: &str = "DEV ONLY: the funded developer key is an unencrypted file in the devnet home, readable by every tool given devnet.json; never use it, or send anything of value to its address, outside local networks";

/// The contents of `devnet.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevnetFile {
    /// The network's chain id.
    pub chain_id: String,
    /// Every node, node0 first.
    pub nodes: Vec<DevnetNode>,
    /// Path of the funded developer key (a `weft_core::KeyFile`): DEV ONLY,
    /// see [`DEV_KEY_WARNING`].
    pub dev_key: PathBuf,
    /// [`DEV_KEY_WARNING`], so whoever opens the file reads it next to the
    /// key's path. Absent from files written before it existed.
    #[serde(default)]
    pub dev_key_warning: String,
    /// Full nodes that are not validators (`weft devnet up --candidates
    /// N`), each ready to register as a candidate. Absent when there are
    /// none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<DevnetCandidate>,
    /// The builder relay's URL, when the devnet runs one (with staking).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<String>,
}

/// A candidate node in `devnet.json`: its endpoints, its consensus key and
/// its funded operator key (DEV ONLY, like the developer key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevnetCandidate {
    /// `node<i>`.
    pub name: String,
    /// CometBFT RPC URL.
    pub rpc: String,
    /// Sequencer HTTP API URL.
    pub api: String,
    /// Its ed25519 consensus key, 64 hex digits (what `weft tx
    /// register-validator --consensus-key` takes).
    pub consensus_key: String,
    /// The operator's address (weft1…), funded at genesis.
    pub operator: String,
    /// The operator's key file (a `weft_core::KeyFile`).
    pub operator_key: PathBuf,
    /// CometBFT's priv_validator_key.json of the node.
    pub priv_validator_key: PathBuf,
}

/// One node's endpoints in `devnet.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevnetNode {
    /// `node<i>`.
    pub name: String,
    /// CometBFT RPC URL.
    pub rpc: String,
    /// Sequencer HTTP API URL.
    pub api: String,
}

impl DevnetFile {
    /// Reads a `devnet.json`.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .map_err(|e| TestnetError::io(format!("reading {}", path.display()), e))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| TestnetError::json(path.display().to_string(), e))
    }

    /// Writes it as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| TestnetError::json(path.display().to_string(), e))?;
        std::fs::write(path, text + "\n")
            .map_err(|e| TestnetError::io(format!("writing {}", path.display()), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devnet_json_has_exactly_the_documented_fields() {
        let file = DevnetFile {
            chain_id: "weft-devnet".into(),
            nodes: vec![DevnetNode {
                name: "node0".into(),
                rpc: "http://127.0.0.1:26657".into(),
                api: "http://127.0.0.1:26659".into(),
            }],
            dev_key: "/tmp/dev-key.json".into(),
            dev_key_warning: DEV_KEY_WARNING.into(),
            candidates: vec![],
            relay: None,
        };
        let value = serde_json::to_value(&file).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "chain_id": "weft-devnet",
                "nodes": [{ "name": "node0", "rpc": "http://127.0.0.1:26657", "api": "http://127.0.0.1:26659" }],
                "dev_key": "/tmp/dev-key.json",
                "dev_key_warning": DEV_KEY_WARNING
            })
        );
        let back: DevnetFile = serde_json::from_value(value).unwrap();
        assert_eq!(back, file);
    }

    #[test]
    fn files_written_before_the_warning_still_load() {
        let old = serde_json::json!({
            "chain_id": "weft-devnet",
            "nodes": [],
            "dev_key": "/tmp/dev-key.json"
        });
        let file: DevnetFile = serde_json::from_value(old).unwrap();
        assert_eq!(file.dev_key_warning, "");
    }

    #[test]
    fn the_warning_says_dev_only_and_where_not_to_use_the_key() {
        assert!(DEV_KEY_WARNING.starts_with("DEV ONLY:"));
        assert!(DEV_KEY_WARNING.contains("outside local networks"));
    }
}
