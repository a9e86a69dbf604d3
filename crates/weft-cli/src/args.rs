//! The flags shared by commands that talk to a node or sign (`--node`,
//! `--key`, `--devnet`) and how they resolve to a node URL and a key.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use weft_core::{KeyFile, SigningKey};
use weft_testnet::{DevnetFile, DEVNET_RPC_URL};

use weft_cli::rpc::NodeClient;

/// Where the node is.
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// The node's CometBFT RPC address (not the sequencer API), e.g.
    /// http://127.0.0.1:26657 [default: http://127.0.0.1:26657, node0 of a
    /// local devnet]
    #[arg(long, env = "WEFT_NODE", value_name = "URL")]
    pub node: Option<String>,
    /// A devnet.json written by `weft devnet up`: supplies the node (its
    /// first node's RPC) and the key (its DEV ONLY developer key, for
    /// local networks only) when not given.
    #[arg(long, env = "WEFT_DEVNET", value_name = "PATH")]
    pub devnet: Option<PathBuf>,
}

/// Which key signs.
#[derive(Debug, Clone, Args)]
pub struct KeyArgs {
    /// Key file (from `weft keys new`) that signs the transaction.
    #[arg(long, env = "WEFT_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,
}

impl NodeArgs {
    /// The devnet file, when `--devnet` was given.
    pub fn devnet_file(&self) -> Result<Option<DevnetFile>> {
        self.devnet
            .as_deref()
            .map(|path| {
                DevnetFile::load(path)
                    .with_context(|| format!("reading --devnet {}", path.display()))
            })
            .transpose()
    }

    /// The node URL: `--node`/`WEFT_NODE`, else the devnet's first node,
    /// else the local default.
    pub fn client(&self) -> Result<NodeClient> {
        let url = match (&self.node, self.devnet_file()?) {
            (Some(url), _) => url.clone(),
            (None, Some(devnet)) => devnet
                .nodes
                .first()
                .map(|n| n.rpc.clone())
                .context("--devnet file lists no nodes")?,
            (None, None) => DEVNET_RPC_URL.to_string(),
        };
        NodeClient::new(&url)
    }
}

impl KeyArgs {
    /// The signing key: `--key`/`WEFT_KEY`, else the devnet's (DEV ONLY)
    /// developer key.
    pub fn signing_key(&self, node: &NodeArgs) -> Result<SigningKey> {
        let path = match (&self.key, node.devnet_file()?) {
            (Some(path), _) => path.clone(),
            (None, Some(devnet)) => devnet.dev_key,
            (None, None) => anyhow::bail!(
                "no key: pass --key FILE (or set WEFT_KEY), or --devnet PATH/devnet.json to use a local devnet's DEV ONLY developer key"
            ),
        };
        load_key(&path)
    }

    /// Whether [`KeyArgs::signing_key`] falls back to a devnet's developer key.
    pub fn uses_devnet_dev_key(&self, node: &NodeArgs) -> bool {
        self.key.is_none() && node.devnet.is_some()
    }
}

/// Reads and checks a key file.
pub fn load_key(path: &Path) -> Result<SigningKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading key file {}", path.display()))?;
    let file: KeyFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a weft key file", path.display()))?;
    file.signing_key()
        .with_context(|| format!("key file {}", path.display()))
}
