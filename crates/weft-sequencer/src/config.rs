//! Process configuration: command-line flags, each also readable from a
//! `WEFT_SEQUENCER_*` environment variable.

use std::{net::SocketAddr, path::PathBuf};

/// `weft-sequencer` configuration.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "weft-sequencer",
    version,
    about = "The Weft ABCI application. Run it next to a CometBFT v0.38 node whose proxy_app points at --abci-listen."
)]
pub struct Config {
    /// Data directory; the state lives in `<home>/weft.redb`.
    #[arg(long, env = "WEFT_SEQUENCER_HOME", default_value = ".weft-sequencer")]
    pub home: PathBuf,
    /// Where CometBFT connects over ABCI (its `proxy_app`).
    #[arg(
        long,
        env = "WEFT_SEQUENCER_ABCI_LISTEN",
        default_value = "127.0.0.1:26658"
    )]
    pub abci_listen: SocketAddr,
    /// Where the HTTP API listens.
    #[arg(
        long,
        env = "WEFT_SEQUENCER_API_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub api_listen: SocketAddr,
    /// The local CometBFT node's RPC address.
    #[arg(
        long,
        env = "WEFT_SEQUENCER_COMETBFT_RPC",
        default_value = "http://127.0.0.1:26657"
    )]
    pub cometbft_rpc: String,
    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "WEFT_SEQUENCER_LOG", default_value = "info")]
    pub log: String,
}
