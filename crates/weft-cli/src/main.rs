//! The `weft` command: keys, genesis files, local devnets, transactions and queries against
//! a Weft node's CometBFT RPC.

mod args;
mod bid;
mod devnet;
mod genesis;
mod keys;
mod output;
mod query;
mod tx;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::output::Output;

/// Weft: a shared sequencer. Manage keys, build a genesis, run a local devnet, send
/// transactions and query (verified) state.
#[derive(Debug, Parser)]
#[command(name = "weft", version, propagate_version = true)]
struct Cli {
    /// Print every result as JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create and inspect key files.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Write, edit and validate a genesis.json (CometBFT genesis with
    /// Weft's app_state).
    #[command(subcommand)]
    Genesis(genesis::GenesisCommand),
    /// Run a local validator network.
    #[command(subcommand)]
    Devnet(devnet::DevnetCommand),
    /// Sign and submit transactions (transfers, rollup data, staking,
    /// governance).
    #[command(subcommand)]
    Tx(tx::TxCommand),
    /// Query accounts, rollup batches, validators, delegations and
    /// proposals.
    #[command(subcommand)]
    Query(query::QueryCommand),
    /// Bid at a relay for the top of rollup batches (builders).
    #[command(subcommand)]
    Bid(bid::BidCommand),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let out = Output { json: cli.json };
    let result = match cli.command {
        Command::Keys(c) => keys::run(c, out).map(|()| true),
        Command::Genesis(c) => genesis::run(c, out),
        Command::Devnet(c) => devnet::run(c, out).await.map(|()| true),
        Command::Tx(c) => tx::run(c, out).await,
        Command::Query(c) => query::run(c, out).await.map(|()| true),
        Command::Bid(c) => bid::run(c, out).await,
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            out.error(&e);
            ExitCode::FAILURE
        }
    }
}
