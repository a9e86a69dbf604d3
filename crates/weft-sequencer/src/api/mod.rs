//! The sequencer's HTTP API (axum): submitting transactions (forwarded to
//! the local CometBFT), transaction status, accounts, rollup batches with
//! signed headers and proofs (one, a range, a stream), validator sets,
//! health and Prometheus metrics. Bodies are size-limited before
//! parsing, every request has a timeout, every error is JSON.

mod batches;
mod submit;

pub use batches::{BatchAtHeight, BatchRange};

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::{DefaultBodyLimit, Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use tower_http::timeout::TimeoutLayer;
use weft_core::{Address, Hash};

use crate::{
    accounts,
    headers::Headers,
    mempool::{self, Mempool, TxStatus},
    storage::Storage,
};

/// Largest request body accepted (a maximal tx as base64 JSON, plus slack).
pub const MAX_BODY_BYTES: usize = weft_core::transaction::MAX_TX_BYTES * 4 / 3 + 4096;
/// Every request must finish within this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// Committed state and indexes.
    pub storage: Storage,
    /// The app's mempool (statuses).
    pub mempool: Arc<Mutex<Mempool>>,
    /// The local CometBFT RPC, for submissions.
    pub cometbft_rpc: String,
    /// Renders `/metrics`; `None` when no recorder is installed.
    pub metrics: Option<PrometheusHandle>,
    /// Signed headers and validator sets from the local CometBFT.
    pub headers: Headers,
    http: reqwest::Client,
}

impl ApiState {
    /// State for the router.
    pub fn new(
        storage: Storage,
        mempool: Arc<Mutex<Mempool>>,
        cometbft_rpc: String,
        metrics: Option<PrometheusHandle>,
    ) -> Self {
        ApiState {
            headers: Headers::new(storage.clone(), &cometbft_rpc),
            storage,
            mempool,
            cometbft_rpc: cometbft_rpc.trim_end_matches('/').to_string(),
            metrics,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }
}

/// A JSON error body: `{ code, message }` with a matching HTTP status.
#[derive(Debug, Serialize)]
pub struct ApiError {
    /// Machine-readable code.
    pub code: &'static str,
    /// What went wrong and what to do.
    pub message: String,
    /// Extra fields (tx hash, ABCI code) where they help.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    #[serde(skip)]
    status: StatusCode,
}

impl ApiError {
    /// An error with a status.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            details: None,
            status,
        }
    }
    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    fn internal(e: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    }
    fn unavailable(e: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        )
    }
    fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self)).into_response()
    }
}

/// The API router; tests call this directly.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .route("/v1/tx", post(submit::submit))
        .route("/v1/tx/{hash}", get(tx_status))
        .route("/v1/accounts/{address}", get(account))
        .route(
            "/v1/rollups/{rollup_id}/batches/{height}",
            get(batches::one),
        )
        .route("/v1/rollups/{rollup_id}/batches", get(batches::range))
        .route("/v1/rollups/{rollup_id}/stream", get(batches::stream))
        .route("/v1/validators/{height}", get(batches::validators))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(state)
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    chain_id: Option<String>,
    last_height: u64,
    mempool_txs: usize,
}

async fn health(State(s): State<ApiState>) -> Result<Json<Health>, ApiError> {
    let c = s.storage.committed().map_err(ApiError::internal)?;
    Ok(Json(Health {
        status: "ok",
        chain_id: c.as_ref().map(|c| c.chain_id.clone()),
        last_height: c.map(|c| c.height).unwrap_or(0),
        mempool_txs: mempool::lock(&s.mempool).len(),
    }))
}

async fn metrics_text(State(s): State<ApiState>) -> Result<String, ApiError> {
    s.metrics
        .as_ref()
        .map(PrometheusHandle::render)
        .ok_or_else(|| ApiError::not_found("metrics are not enabled in this process"))
}

/// A transaction's status with its hash.
#[derive(Serialize)]
pub struct TxStatusView {
    /// The tx hash (hex).
    pub hash: Hash,
    /// The status and its fields.
    #[serde(flatten)]
    pub status: TxStatus,
}

async fn tx_status(
    State(s): State<ApiState>,
    Path(hash): Path<String>,
) -> Result<Json<TxStatusView>, ApiError> {
    let hash = Hash::from_hex(&hash)
        .map_err(|e| ApiError::bad_request(format!("hash must be 64 hex characters: {e}")))?;
    let status = mempool::status(&s.storage, &s.mempool, &hash).map_err(ApiError::internal)?;
    Ok(Json(TxStatusView { hash, status }))
}

async fn account(
    State(s): State<ApiState>,
    Path(address): Path<String>,
) -> Result<Json<accounts::query::AccountView>, ApiError> {
    let address: Address = address
        .parse()
        .map_err(|e| ApiError::bad_request(format!("{e}")))?;
    accounts::query::account(&s.storage, Some(&s.mempool), &address, 0)
        .map(Json)
        .map_err(ApiError::internal)
}

#[cfg(test)]
mod tests;
