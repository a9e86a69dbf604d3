//! `weft-sequencer`: wiring only. Opens storage, serves ABCI to CometBFT
//! and the HTTP API, stops on SIGTERM or Ctrl-C.

use anyhow::Context;
use clap::Parser;
use tower_abci::v038::{split, Server};
use weft_sequencer::{api, config::Config, App, Storage};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&config.log))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();

    let storage = Storage::open(&config.home)
        .with_context(|| format!("opening storage in {}", config.home.display()))?;
    let app = App::new(storage.clone()).context("reading committed state")?;
    let (consensus, mempool, snapshot, info) = split::service(app, 1);
    let abci = Server::builder()
        .consensus(consensus)
        .mempool(mempool)
        .snapshot(snapshot)
        .info(info)
        .finish()
        .context("building the ABCI server")?;

    let listener = tokio::net::TcpListener::bind(config.api_listen)
        .await
        .with_context(|| format!("binding the API on {}", config.api_listen))?;
    tracing::info!(abci = %config.abci_listen, api = %config.api_listen, "weft-sequencer starting");
    let api = axum::serve(listener, api::router(storage));

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = abci.listen_tcp(config.abci_listen) => r.map_err(|e| anyhow::anyhow!("ABCI server: {e}"))?,
        r = api => r.context("API server")?,
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; stopping"),
        _ = sigterm.recv() => tracing::info!("SIGTERM; stopping"),
    }
    Ok(())
}
