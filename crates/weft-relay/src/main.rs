//! `weft-relay`: argument parsing and wiring only; everything else is in
//! the library.

use std::{sync::Arc, time::Duration};

use anyhow::{Context, Result};
use clap::Parser;
use tokio::sync::watch;
use weft_relay::{
    api::{serve, HEADER_READ_TIMEOUT},
    chain::{follow, follow_events, CometHead, FollowConfig},
    config::{Config, Flags},
    router, HttpSequencer, Relay, TraceStore,
};

#[tokio::main]
async fn main() -> Result<()> {
    let flags = Flags::parse();
    if flags.print_default_config {
        print!("{}", Config::default_toml()?);
        return Ok(());
    }
    let args = flags.load()?;
    if flags.check_config {
        print!("{}", toml::to_string(&args)?);
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&args.log))
        .init();
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let config = args.relay_config();
    let traces = TraceStore::open(&args.data)
        .with_context(|| format!("opening the trace store {}", args.data.display()))?;
    let sequencer = HttpSequencer::new(&args.sequencer_api, Duration::from_secs(2))
        .context("sequencer API client")?;
    let head_source = CometHead::new(&args.cometbft_rpc).context("CometBFT RPC client")?;
    let (heads_tx, heads) = watch::channel(None);
    // New blocks arrive over the websocket the moment they commit; the
    // poll is the fallback while the websocket is down.
    let ws_url = format!(
        "{}/websocket",
        args.cometbft_rpc
            .trim_end_matches('/')
            .replacen("http", "ws", 1)
    );
    tokio::spawn(follow_events(
        ws_url,
        heads_tx.clone(),
        Duration::from_secs(1),
    ));
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
