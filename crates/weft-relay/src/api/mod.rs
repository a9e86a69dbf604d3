//! The relay's HTTP API (axum): builder submissions and cancellations,
//! validators' winner fetches, the data API, the OpenAPI document, health
//! and metrics. Bodies are size-limited before parsing, every request has
//! a timeout, requests over the in-flight cap are shed with 503, and every
//! error is JSON `{ code, message }`.

mod builder;
mod data;
mod openapi;
mod validator;

#[cfg(any(test, feature = "fuzzing"))]
pub use builder::decode_submission;
pub use openapi::{openapi_document, ROUTES};
pub use weft_http::{serve, HEADER_READ_TIMEOUT};

use std::{
    collections::BTreeMap,
    num::NonZeroU32,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    error_handling::HandleErrorLayer,
    extract::{DefaultBodyLimit, State},
    http::StatusCode,
    middleware,
    routing::{delete, get, post},
    BoxError, Json, Router,
};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use tokio::sync::watch;
use tower::{limit::GlobalConcurrencyLimitLayer, load_shed::LoadShedLayer, ServiceBuilder};
use tower_http::timeout::TimeoutLayer;
use utoipa::ToSchema;
use weft_core::{bid::MAX_BID_BYTES, Address, Amount, ChainParams};

use crate::{
    book::Book,
    chain::Head,
    error::{json_errors, RelayError},
    sequencer::{Directory, SequencerApi},
    traces::TraceStore,
};

/// Largest request body: a maximal bid as hex in JSON, plus slack.
pub const MAX_BODY_BYTES: usize = MAX_BID_BYTES * 2 + 4096;

/// The relay's settings. Defaults, and why:
/// - auction byte cap: half the default `max_rollup_data_per_block`
///   (1.5 MiB), so winning bundles leave the proposer room for every
///   pending transaction the bids must not push out;
/// - 10,000 heights of traces and auction summaries (about three hours at
///   one block a second);
/// - 20 bids/s per builder with bursts of 40: a builder bids for one height
///   at a time and replaces its bid as it learns more, far below this;
/// - a signed request's timestamp within 30 s of the relay's clock;
/// - 10,000 live bids per height: a bound on memory (each bid may carry
///   256 KiB of data) that no honest auction nears.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The chain's id; bids and requests for another chain are refused.
    pub chain_id: String,
    /// Most rollup data bytes the winners of one height may carry.
    pub auction_byte_cap: u64,
    /// Heights of traces and auction summaries kept behind the head.
    pub retention_heights: u64,
    /// Sustained bids per second per builder; 0 turns the limit off.
    pub rate_limit_per_second: u32,
    /// Bids a builder may send at once before the sustained rate applies.
    pub rate_limit_burst: u32,
    /// Largest distance between a signed request's timestamp and the
    /// relay's clock.
    pub max_request_skew: Duration,
    /// Most live bids per height.
    pub max_bids_per_height: usize,
    /// Requests handled at once; more are answered 503 `overloaded`.
    pub max_concurrent_requests: usize,
    /// A request not answered within this is answered 408.
    pub request_timeout: Duration,
}

impl RelayConfig {
    /// Defaults for `chain_id` (see the type's documentation).
    pub fn new(chain_id: impl Into<String>) -> Self {
        RelayConfig {
            chain_id: chain_id.into(),
            auction_byte_cap: ChainParams::default().max_rollup_data_per_block / 2,
            retention_heights: 10_000,
            rate_limit_per_second: 20,
            rate_limit_burst: 40,
            max_request_skew: Duration::from_secs(30),
            max_bids_per_height: 10_000,
            max_concurrent_requests: 1024,
            request_timeout: Duration::from_secs(10),
        }
    }
}

pub(crate) struct Inner {
    pub(crate) config: RelayConfig,
    heads: watch::Receiver<Option<Head>>,
    pub(crate) sequencer: Arc<dyn SequencerApi>,
    pub(crate) book: Mutex<Book>,
    /// Builder balances by (height read at, builder).
    pub(crate) balances: Mutex<BTreeMap<(u64, Address), Amount>>,
    /// The validator directory and the head height it was fetched at.
    pub(crate) directory: tokio::sync::Mutex<Option<(u64, Arc<Directory>)>>,
    pub(crate) limiter: Option<DefaultKeyedRateLimiter<Address>>,
    pub(crate) traces: TraceStore,
    metrics: Option<PrometheusHandle>,
    /// The head height the book was last advanced to.
    advanced_to: AtomicU64,
}

/// The relay: what every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct Relay(pub(crate) Arc<Inner>);

impl Relay {
    /// A relay following `heads` (fed by [`crate::chain::follow`]), reading
    /// balances and validators from `sequencer`, recording into `traces`.
    pub fn new(
        config: RelayConfig,
        heads: watch::Receiver<Option<Head>>,
        sequencer: Arc<dyn SequencerApi>,
        traces: TraceStore,
        metrics: Option<PrometheusHandle>,
    ) -> Self {
        let limiter = NonZeroU32::new(config.rate_limit_per_second).map(|rate| {
            let burst = NonZeroU32::new(config.rate_limit_burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Relay(Arc::new(Inner {
            book: Mutex::new(Book::new(config.max_bids_per_height)),
            config,
            heads,
            sequencer,
            balances: Mutex::new(BTreeMap::new()),
            directory: tokio::sync::Mutex::new(None),
            limiter,
            traces,
            metrics,
            advanced_to: AtomicU64::new(0),
        }))
    }

    /// The settings.
    pub fn config(&self) -> &RelayConfig {
        &self.0.config
    }

    /// The trace store.
    pub fn traces(&self) -> &TraceStore {
        &self.0.traces
    }

    /// The current head, after bringing the book, caches and traces up to
    /// it: heights up to the head close, and what fell out of the
    /// retention window is dropped.
    pub(crate) async fn head(&self) -> Result<Head, RelayError> {
        let head = (*self.0.heads.borrow()).ok_or_else(|| {
            RelayError::unavailable(
                "head_unknown",
                "the relay has not read the chain head from CometBFT yet; retry shortly",
            )
        })?;
        let before = self.0.advanced_to.fetch_max(head.height, Ordering::AcqRel);
        if head.height > before {
            let retention = self.0.config.retention_heights;
            self.book().advance(head.height, retention);
            {
                let mut balances = lock(&self.0.balances);
                *balances = balances.split_off(&(head.height, Address::default()));
            }
            if let Some(limiter) = &self.0.limiter {
                limiter.retain_recent();
            }
            let keep_from = head.height.saturating_sub(retention).saturating_add(1);
            if let Err(e) = self.0.traces.prune_below(keep_from).await {
                tracing::error!(error = %e, "pruning bid traces");
            }
        }
        Ok(head)
    }

    pub(crate) fn book(&self) -> MutexGuard<'_, Book> {
        lock(&self.0.book)
    }
}

/// Locks a mutex, taking the data of a poisoned one (no handler leaves
/// the book half-changed: every change is one map operation).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Milliseconds since the Unix epoch, by the relay's clock.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The relay's router; tests call it directly.
pub fn router(relay: Relay) -> Router {
    let config = relay.0.config.clone();
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .route("/relay/v1/openapi.json", get(openapi::serve))
        .route("/relay/v1/builder/bids", post(builder::submit))
        .route("/relay/v1/builder/bids/{height}", delete(builder::cancel))
        .route("/relay/v1/validator/winners", get(validator::winners))
        .route("/relay/v1/data/bids_received", get(data::bids_received))
        .route("/relay/v1/data/bids_delivered", get(data::bids_delivered))
        .route("/relay/v1/auctions/{height}", get(data::auction))
        .fallback(|| async { RelayError::not_found("not_found", "no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.request_timeout,
        ))
        // Shed, never queue: a request over the cap is answered at once.
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .layer(LoadShedLayer::new())
                .layer(GlobalConcurrencyLimitLayer::new(
                    config.max_concurrent_requests.max(1),
                )),
        )
        .layer(middleware::map_response(json_errors))
        .with_state(relay)
}

async fn overloaded(e: BoxError) -> RelayError {
    if e.is::<tower::load_shed::error::Overloaded>() {
        RelayError::unavailable(
            "overloaded",
            "the relay is handling as many requests as it takes; retry shortly",
        )
    } else {
        RelayError::internal(e)
    }
}

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` once the relay knows the chain head, `waiting` before.
    pub status: &'static str,
    /// The chain id served.
    pub chain_id: String,
    /// The latest committed height known (0 before the first).
    pub head_height: u64,
    /// The height bids are taken for now.
    pub next_height: u64,
}

#[utoipa::path(get, path = "/health", tag = "service",
    responses((status = 200, description = "The relay is up", body = Health)))]
pub(crate) async fn health(State(relay): State<Relay>) -> Json<Health> {
    let head = relay.head().await.ok();
    Json(Health {
        status: if head.is_some() { "ok" } else { "waiting" },
        chain_id: relay.0.config.chain_id.clone(),
        head_height: head.map(|h| h.height).unwrap_or(0),
        next_height: head.map(|h| h.height + 1).unwrap_or(0),
    })
}

#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Prometheus text format", body = String),
              (status = 404, description = "No metrics recorder in this process", body = RelayError)))]
pub(crate) async fn metrics_text(State(relay): State<Relay>) -> Result<String, RelayError> {
    relay
        .0
        .metrics
        .as_ref()
        .map(PrometheusHandle::render)
        .ok_or_else(|| {
            RelayError::not_found("not_found", "metrics are not enabled in this process")
        })
}

#[cfg(test)]
mod tests;
