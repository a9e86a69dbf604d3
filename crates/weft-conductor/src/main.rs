//! `weft-conductor`: wiring only. Resolves configuration, serves /health
//! and /metrics, runs the conductor until SIGTERM or Ctrl-C.

use std::sync::{atomic::Ordering, Arc};

use anyhow::Context;
use axum::{routing::get, Json, Router};
use clap::Parser;
use metrics_exporter_prometheus::PrometheusBuilder;
use weft_conductor::{
    conductor::Progress,
    config::{Args, Delivery},
    BatchSource, ChainVerifier, Conductor, CursorFile, Executor, HttpExecutor, StdoutExecutor,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.print_default_config {
        print!("{}", weft_conductor::config::Settings::default_toml()?);
        return Ok(());
    }
    if args.check_config {
        print!("{}", toml::to_string(&args.settings()?)?);
        return Ok(());
    }
    let config = args.resolve()?;
    // Logs go to stderr: stdout may be the NDJSON delivery.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&config.log))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .context("metrics recorder")?;
    let mut cursor = CursorFile::open(&config.cursor)
        .with_context(|| format!("opening cursor {}", config.cursor.display()))?;
    if config.reset_cursor {
        if let Some(old) = cursor.last() {
            tracing::warn!(height = old.height, chain_id = %old.trusted.chain_id, cursor = %config.cursor.display(), "--reset-cursor: forgetting the cursor");
        }
        cursor
            .reset()
            .with_context(|| format!("resetting cursor {}", config.cursor.display()))?;
    }
    let source = BatchSource::new(config.endpoints.clone(), config.rollup_id)
        .with_max_response_bytes(config.max_response_bytes);
    let verifier = ChainVerifier::new(config.anchor.clone(), config.trusting_period);
    tracing::info!(rollup = %config.rollup_id, endpoints = ?config.endpoints, cursor = %config.cursor.display(), "weft-conductor starting");
    match &config.delivery {
        Delivery::Stdout => run(config, cursor, source, verifier, StdoutExecutor, metrics).await,
        Delivery::Http(url) => {
            let executor = HttpExecutor::new(url);
            run(config, cursor, source, verifier, executor, metrics).await
        }
    }
}

async fn run<E: Executor + 'static>(
    config: weft_conductor::config::Config,
    cursor: CursorFile,
    source: BatchSource,
    verifier: ChainVerifier,
    executor: E,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
) -> anyhow::Result<()> {
    let conductor = Conductor::new(
        config.rollup_id,
        source,
        executor,
        cursor,
        verifier,
        config.from_height,
    )
    .with_options(config.options);
    if let Some(addr) = config.listen {
        let progress = conductor.progress();
        let app = Router::new()
            .route("/health", get(move || health(progress.clone())))
            .route(
                "/metrics",
                get(move || std::future::ready(metrics.render())),
            );
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    let stop = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {},
        }
        tracing::info!("stopping after the current height");
    };
    conductor.run(stop).await.context("conductor stopped")
}

async fn health(p: Arc<Progress>) -> Json<serde_json::Value> {
    let delivered = p.delivered.load(Ordering::Relaxed);
    let latest = p.latest.load(Ordering::Relaxed);
    Json(serde_json::json!({
        "status": "ok",
        "delivered_height": delivered,
        "sequencer_height": latest,
        "lag_blocks": latest.saturating_sub(delivered),
        "refused": p.refused.load(Ordering::Relaxed),
    }))
}
