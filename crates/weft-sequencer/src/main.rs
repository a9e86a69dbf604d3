//! `weft-sequencer`: wiring only. Opens storage, serves ABCI to CometBFT
//! and the HTTP API, stops on SIGTERM or Ctrl-C.

use anyhow::Context;
use clap::Parser;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use tower_abci::v038::split;
use weft_sequencer::{
    abci_server,
    api::{self, ApiState},
    app::AppConfig,
    config::{Config, Flags},
    App, Storage,
};

/// Latency buckets (seconds) for CheckTx and PrepareProposal.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];
/// Size buckets (bytes) for blocks.
const BYTES_BUCKETS: &[f64] = &[1e3, 1e4, 1e5, 2.5e5, 5e5, 1e6, 2e6, 4e6, 8e6];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    if flags.print_default_config {
        print!("{}", Config::default_toml()?);
        return Ok(());
    }
    let config = flags.load()?;
    if flags.check_config {
        print!("{}", toml::to_string(&config)?);
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&config.log))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let metrics = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)?
        .set_buckets_for_metric(Matcher::Suffix("_bytes".into()), BYTES_BUCKETS)?
        .install_recorder()
        .context("installing the metrics recorder")?;

    let cache_bytes = usize::try_from(config.store_cache_mib.saturating_mul(1 << 20))
        .context("store_cache_mib is too large for this machine")?;
    let storage = Storage::open_with_cache(&config.home, cache_bytes)
        .with_context(|| format!("opening storage in {}", config.home.display()))?
        .with_state_retention(config.state_retention_heights);
    let app = App::new(
        storage.clone(),
        AppConfig {
            unsafe_test_censor: flags.unsafe_test_censor,
            unsafe_test_bid: flags.unsafe_test_bid,
            unsafe_test_crash: flags.unsafe_test_crash_at.map(|point| {
                weft_sequencer::app::UnsafeTestCrash {
                    point,
                    height: flags.unsafe_test_crash_height,
                }
            }),
            ..config.app_config()
        },
    )
    .context("reading committed state")?;
    let verify_threads = std::thread::available_parallelism().map_or(1, usize::from);
    let api_state = ApiState::new(
        storage,
        app.mempool(),
        app.subscribe_commits(),
        &config.cometbft_rpc,
        Some(metrics),
    )
    .context("setting up the HTTP API")?
    .with_limits(config.api_limits())
    .with_envelopes(app.admission(), config.envelope_config(), verify_threads);
    // Copies each committed height's signed header from CometBFT into the
    // store, so the batch API serves ranges without a round trip per height.
    tokio::spawn(api_state.headers.clone().follow(app.subscribe_commits()));
    // Winners are fetched from the relays as soon as a height commits, off
    // the consensus path: PrepareProposal only reads what has arrived.
    if let Some(relays) = config.relay_client()? {
        tracing::info!(relays = ?relays.relays, "asking builder relays for winning bids");
        let client = weft_sequencer::auction::fetch::RelayClient::new(relays)
            .context("building the relay client")?;
        tokio::spawn(client.follow(
            app.chain_id_handle(),
            app.subscribe_commits(),
            app.prefetched(),
        ));
    }
    // CheckTx bypasses the consensus worker: signatures verify on every
    // core while consensus requests never queue behind admissions.
    let check_tx = app.check_tx_service(verify_threads);
    let (consensus, _mempool, snapshot, info) = split::service(app, 1);
    let abci = abci_server::serve(&config.abci_listen, consensus, check_tx, info, snapshot);

    let listener = tokio::net::TcpListener::bind(config.api_listen)
        .await
        .with_context(|| format!("binding the API on {}", config.api_listen))?;
    tracing::info!(abci = %config.abci_listen, api = %config.api_listen, "weft-sequencer starting");
    // With a header-read timeout (slow clients are cut off); each request
    // carries its peer address, the per-IP rate limit's key.
    let api = api::serve(
        listener,
        api::router(api_state),
        api::HEADER_READ_TIMEOUT,
        std::future::pending(),
    );

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = abci => r.map_err(|e| anyhow::anyhow!("ABCI server on {}: {e}", config.abci_listen))?,
        () = api => anyhow::bail!("the API server stopped"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; stopping"),
        _ = sigterm.recv() => tracing::info!("SIGTERM; stopping"),
    }
    Ok(())
}
