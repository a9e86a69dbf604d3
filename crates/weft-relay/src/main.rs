//! `weft-relay`: argument parsing and wiring only; everything else is in
//! the library.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context, Result};
use clap::Parser;
use tokio::sync::watch;
use weft_relay::{
    api::{serve, HEADER_READ_TIMEOUT},
    chain::{follow, CometHead, FollowConfig},
    router, HttpSequencer, Relay, RelayConfig, TraceStore,
};

/// The builder-bid relay.
#[derive(Debug, Parser)]
#[command(name = "weft-relay", version, about)]
struct Args {
    /// The chain id bids must carry.
    #[arg(long, env = "WEFT_RELAY_CHAIN_ID")]
    chain_id: String,
    /// Address to serve the API on.
    #[arg(long, env = "WEFT_RELAY_LISTEN", default_value = "127.0.0.1:18550")]
    listen: SocketAddr,
    /// CometBFT RPC of a node, for the chain head.
    #[arg(
        long,
        env = "WEFT_RELAY_COMETBFT_RPC",
        default_value = "http://127.0.0.1:26657"
    )]
    cometbft_rpc: String,
    /// The sequencer's HTTP API, for balances and the validator directory.
    #[arg(
        long,
        env = "WEFT_RELAY_SEQUENCER_API",
        default_value = "http://127.0.0.1:8080"
    )]
    sequencer_api: String,
    /// Where bid traces are stored.
    #[arg(
        long,
        env = "WEFT_RELAY_DATA",
        default_value = "relay-data/traces.redb"
    )]
    data: PathBuf,
    /// Most rollup data bytes the winners of one height may carry.
    #[arg(long, env = "WEFT_RELAY_AUCTION_BYTE_CAP")]
    auction_byte_cap: Option<u64>,
    /// Heights of traces kept behind the head.
    #[arg(long, env = "WEFT_RELAY_RETENTION_HEIGHTS")]
    retention_heights: Option<u64>,
    /// Sustained bids per second per builder (0: no limit).
    #[arg(long, env = "WEFT_RELAY_RATE_LIMIT")]
    rate_limit: Option<u32>,
    /// Burst of bids per builder.
    #[arg(long, env = "WEFT_RELAY_RATE_BURST")]
    rate_burst: Option<u32>,
    /// How often to poll CometBFT for the head, in ms.
    #[arg(long, env = "WEFT_RELAY_HEAD_POLL_MS", default_value_t = 100)]
    head_poll_ms: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let mut config = RelayConfig::new(args.chain_id);
    if let Some(v) = args.auction_byte_cap {
        config.auction_byte_cap = v;
    }
    if let Some(v) = args.retention_heights {
        config.retention_heights = v;
    }
    if let Some(v) = args.rate_limit {
        config.rate_limit_per_second = v;
    }
    if let Some(v) = args.rate_burst {
        config.rate_limit_burst = v;
    }
    let traces = TraceStore::open(&args.data)
        .with_context(|| format!("opening the trace store {}", args.data.display()))?;
    let sequencer = HttpSequencer::new(&args.sequencer_api, Duration::from_secs(2))
        .context("sequencer API client")?;
    let head_source = CometHead::new(&args.cometbft_rpc).context("CometBFT RPC client")?;
    let (heads_tx, heads) = watch::channel(None);
    tokio::spawn(follow(
        head_source,
        heads_tx,
        FollowConfig {
            interval: Duration::from_millis(args.head_poll_ms.max(1)),
            ..FollowConfig::default()
        },
    ));
    let relay = Relay::new(config, heads, Arc::new(sequencer), traces, Some(metrics));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(listen = %args.listen, "relay serving");
    // With a header-read timeout: slow clients are cut off.
    serve(listener, router(relay), HEADER_READ_TIMEOUT, shutdown()).await;
    Ok(())
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}
