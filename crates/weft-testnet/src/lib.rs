//! Spawns and controls local Weft validator networks on loopback: one
//! CometBFT process plus one `weft-sequencer` process per validator (or,
//! for benchmarks' ceiling, CometBFT running its built-in `kvstore`).
//!
//! Used by the end-to-end tests, the benchmarks and `weft devnet`. The crate
//! owns the port plan ([`ports`]), finding the binaries ([`binaries`]),
//! writing CometBFT's genesis and config files ([`genesis`], [`node_config`])
//! and supervising the processes ([`network`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), weft_testnet::TestnetError> {
//! use std::time::Duration;
//! use weft_testnet::{Testnet, TestnetConfig};
//!
//! let mut cfg = TestnetConfig::new("/tmp/my-testnet");
//! cfg.validators = 4;
//! cfg.timeout_commit = Duration::from_millis(300);
//! let net = Testnet::create(cfg).await?;
//! net.start().await?;
//! net.wait_all_for_height(3, Duration::from_secs(30)).await?;
//! println!("node0 RPC: {}", net.nodes()[0].rpc_url());
//! net.shutdown().await?;
//! # Ok(()) }
//! ```

pub mod app;
pub mod binaries;
pub mod devnet_file;
pub mod error;
pub mod genesis;
pub mod link_proxy;
pub mod network;
pub mod node_config;
pub mod ports;
mod process;

pub use app::{AbciEndpoint, AbciTransport, App};
pub use binaries::{cli_binary, cometbft_binary, sequencer_binary, workspace_binary};
pub use devnet_file::{DevnetCandidate, DevnetFile, DevnetNode, DEV_KEY_WARNING};
pub use error::TestnetError;
pub use link_proxy::{LinkProxies, LinkProxy};
pub use network::{
    Node, NodePids, Testnet, TestnetConfig, TestnetStaking, DEV_ACCOUNT_BALANCE, OPERATOR_BALANCE,
};
pub use ports::{NodePorts, PortPlan, DEVNET_BASE_PORT, DEVNET_RPC_URL};

/// Result type of this crate.
pub type Result<T, E = TestnetError> = std::result::Result<T, E>;
