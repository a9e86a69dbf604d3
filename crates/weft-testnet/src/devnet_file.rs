//! `devnet.json`: the small file `weft devnet up` writes so other tools (the
//! `weft` CLI's `--devnet`, scripts) can find the nodes and the dev key.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Result, TestnetError};

/// The contents of `devnet.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevnetFile {
    /// The network's chain id.
    pub chain_id: String,
    /// Every node, node0 first.
    pub nodes: Vec<DevnetNode>,
    /// Path of the funded developer key (a `weft_core::KeyFile`).
    pub dev_key: PathBuf,
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
        };
        let value = serde_json::to_value(&file).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "chain_id": "weft-devnet",
                "nodes": [{ "name": "node0", "rpc": "http://127.0.0.1:26657", "api": "http://127.0.0.1:26659" }],
                "dev_key": "/tmp/dev-key.json"
            })
        );
        let back: DevnetFile = serde_json::from_value(value).unwrap();
        assert_eq!(back, file);
    }
}
