//! The sequencer's HTTP API (axum): submitting transactions (forwarded to
//! the local CometBFT), transaction status, accounts, rollup batches with
//! signed headers and proofs (one, a range, a stream), validator sets at
//! a height, validators and delegations (staking), proposals
//! (governance), health and Prometheus metrics. Bodies are size-limited before
//! parsing, every request has a timeout, clients are rate-limited per IP
//! and requests in flight are capped (see `limits`), every error is JSON
//! `{ code, message }` (see `error`).

mod batch;
mod batches;
mod envelopes;
mod error;
mod governance;
mod limits;
mod staking;
mod submit;

pub use batch::{
    decode_batch, encode_frames, BatchResult, BatchSubmitted, ItemError, MAX_BATCH_BODY_BYTES,
    MAX_BATCH_TXS, MAX_CONCURRENT_BATCHES,
};
pub use batches::{BatchAtHeight, BatchRange, MAX_HEIGHT};
pub use envelopes::{EnvelopeConfig, Forwarder};
pub use error::{json_errors, ApiError};
pub use governance::{
    proposal_at, proposals_at, ProposalResponse, ProposalsQuery, ProposalsResponse,
};
pub use limits::ApiLimits;
pub use staking::{
    delegations_at, validator_at, validators_at, DelegationsResponse, ValidatorResponse,
    ValidatorRow, ValidatorsResponse,
};
#[cfg(any(test, feature = "fuzzing"))]
pub use submit::decode_submission;
pub use submit::Submitted;
pub use weft_http::{serve, HEADER_READ_TIMEOUT};
pub use weft_http::{JsonPath, JsonQuery};

use std::sync::{Arc, Mutex};

use axum::{
    error_handling::HandleErrorLayer,
    extract::{DefaultBodyLimit, State},
    http::StatusCode,
    middleware,
    routing::{get, post},
    Json, Router,
};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use tendermint_rpc::HttpClient;
use tokio::sync::{watch, Semaphore};
use tower::{limit::GlobalConcurrencyLimitLayer, load_shed::LoadShedLayer, ServiceBuilder};
use tower_http::timeout::TimeoutLayer;
use weft_core::{Address, Hash};

use crate::{
    accounts,
    headers::{HeaderError, Headers},
    mempool::{self, Mempool, TxStatus},
    storage::Storage,
};

/// Largest request body accepted (a maximal tx as base64 JSON, plus slack).
pub const MAX_BODY_BYTES: usize = weft_core::transaction::MAX_TX_BYTES * 4 / 3 + 4096;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// Committed state and indexes.
    pub storage: Storage,
    /// The app's mempool (statuses, pending nonces).
    pub mempool: Arc<Mutex<Mempool>>,
    /// Renders `/metrics`; `None` when no recorder is installed.
    pub metrics: Option<PrometheusHandle>,
    /// Signed headers and validator sets from the local CometBFT.
    pub headers: Headers,
    /// The local CometBFT's RPC, for submissions.
    cometbft: HttpClient,
    /// Its address, for messages.
    cometbft_rpc: String,
    /// The app's last committed height (streams and long-polls wait on it).
    commits: watch::Receiver<u64>,
    /// One permit per open event stream.
    streams: Arc<Semaphore>,
    limits: ApiLimits,
    /// Batch submission and envelope forwarding (`None`: `POST /v1/txs`
    /// answers 503).
    envelopes: Option<Envelopes>,
    /// Per-IP budget of submitted transactions (`None`: off).
    tx_budget: Option<Arc<limits::TxBudget>>,
}

/// The client's address as the server saw the connection (absent when the
/// router is served without connect info, as in some tests).
type Peer = Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>;

/// What `POST /v1/txs` needs: admission into the app's mempool, the
/// envelope forwarder, and how many threads may verify a batch.
#[derive(Clone)]
pub struct Envelopes {
    admission: mempool::Admission,
    forwarder: Forwarder,
    verify_threads: usize,
}

impl ApiState {
    /// State for the router, with default [`ApiLimits`]. `commits` is the
    /// app's committed height (`App::subscribe_commits`); `cometbft_rpc`
    /// the local CometBFT's RPC address (`http://host:port`).
    pub fn new(
        storage: Storage,
        mempool: Arc<Mutex<Mempool>>,
        commits: watch::Receiver<u64>,
        cometbft_rpc: &str,
        metrics: Option<PrometheusHandle>,
    ) -> Result<Self, HeaderError> {
        let limits = ApiLimits::default();
        let headers = Headers::new(storage.clone(), cometbft_rpc)?;
        Ok(ApiState {
            // One client (and connection pool) for every CometBFT call.
            cometbft: headers.rpc_client().clone(),
            headers,
            cometbft_rpc: cometbft_rpc.trim_end_matches('/').to_string(),
            storage,
            mempool,
            metrics,
            commits,
            streams: Arc::new(Semaphore::new(limits.max_streams)),
            tx_budget: limits::TxBudget::new(&limits),
            limits,
            envelopes: None,
        })
    }

    /// Takes batch submissions: admitted through `admission` (the app's
    /// CheckTx path) with signatures batch-verified on up to
    /// `verify_threads` threads, forwarded to CometBFT in envelopes.
    /// Starts the forwarder on the current runtime.
    pub fn with_envelopes(
        mut self,
        admission: mempool::Admission,
        config: EnvelopeConfig,
        verify_threads: usize,
    ) -> Self {
        self.envelopes = Some(Envelopes {
            admission,
            forwarder: Forwarder::spawn(self.cometbft.clone(), config),
            verify_threads: verify_threads.max(1),
        });
        self
    }

    /// The same state with other limits.
    pub fn with_limits(mut self, limits: ApiLimits) -> Self {
        self.streams = Arc::new(Semaphore::new(limits.max_streams));
        self.tx_budget = limits::TxBudget::new(&limits);
        self.limits = limits;
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> &ApiLimits {
        &self.limits
    }

    /// Takes `n` submitted transactions from the budget of the client at
    /// `peer` (the connection's address, when the server has it).
    fn charge_txs(&self, peer: Peer, n: usize) -> Result<(), ApiError> {
        match &self.tx_budget {
            Some(budget) => budget.charge(peer.map(|p| p.0 .0.ip()), n),
            None => Ok(()),
        }
    }
}

/// The API router; tests call this directly. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()`: the per-IP rate
/// limit keys on the peer address.
pub fn router(state: ApiState) -> Router {
    let limits = state.limits.clone();
    let mut router = Router::new()
        .route("/health", get(health))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics_text))
        .route("/v1/tx", post(submit::submit))
        .route(
            "/v1/txs",
            // At most MAX_CONCURRENT_BATCHES bodies of up to
            // MAX_BATCH_BODY_BYTES in memory at once; more are shed (503).
            post(batch::submit_batch)
                .layer::<_, std::convert::Infallible>(DefaultBodyLimit::max(MAX_BATCH_BODY_BYTES))
                .layer::<_, std::convert::Infallible>(
                    ServiceBuilder::new()
                        .layer(HandleErrorLayer::new(limits::overloaded))
                        .layer(LoadShedLayer::new())
                        .layer(tower::limit::ConcurrencyLimitLayer::new(
                            MAX_CONCURRENT_BATCHES,
                        )),
                ),
        )
        .route("/v1/tx/{hash}", get(tx_status))
        .route("/v1/accounts/{address}", get(account))
        .route("/v1/supply", get(supply))
        .route(
            "/v1/rollups/{rollup_id}/batches/{height}",
            get(batches::one),
        )
        .route("/v1/rollups/{rollup_id}/batches", get(batches::range))
        .route("/v1/rollups/{rollup_id}/stream", get(batches::stream))
        .route("/v1/validator-sets/{height}", get(batches::validators))
        .route("/v1/validators", get(staking::validators))
        .route("/v1/validators/{address}", get(staking::validator))
        .route(
            "/v1/staking/delegations/{address}",
            get(staking::delegations),
        )
        .route("/v1/governance/proposals", get(governance::proposals))
        .route("/v1/governance/proposals/{id}", get(governance::proposal))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        // Shed, never queue: a request over the cap is answered at once.
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(limits::overloaded))
                .layer(LoadShedLayer::new())
                .layer(GlobalConcurrencyLimitLayer::new(
                    limits.max_concurrent_requests.max(1),
                )),
        );
    if let Some(limit) = limits::rate_limit(&limits) {
        router = router.layer(middleware::from_fn(limit));
    }
    // Outermost, so that what any layer above answers is JSON too.
    router
        .layer(middleware::map_response(json_errors))
        .with_state(state)
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    chain_id: Option<String>,
    last_height: u64,
    mempool_txs: usize,
    /// The local CometBFT's own word (its `/status` `sync_info`): true
    /// while it block-syncs or state-syncs; `null` when it cannot be asked.
    catching_up: Option<bool>,
}

/// Longest wait for CometBFT's `/status`: a probe must answer in time even
/// when CometBFT hangs.
const STATUS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

async fn health_of(s: &ApiState) -> Result<Health, ApiError> {
    use tendermint_rpc::Client;
    let c = s.storage.committed().map_err(ApiError::internal)?;
    let catching_up = match tokio::time::timeout(STATUS_TIMEOUT, s.cometbft.status()).await {
        Ok(Ok(status)) => Some(status.sync_info.catching_up),
        _ => None,
    };
    Ok(Health {
        status: "ok",
        chain_id: c.as_ref().map(|c| c.chain_id.clone()),
        last_height: c.map(|c| c.height).unwrap_or(0),
        mempool_txs: mempool::lock(&s.mempool).len(),
        catching_up,
    })
}

/// Liveness: 200 whenever the process serves and its store reads, syncing
/// or not (a node that is catching up must not be restarted for it).
async fn health(State(s): State<ApiState>) -> Result<Json<Health>, ApiError> {
    health_of(&s).await.map(Json)
}

/// Readiness: 200 only once CometBFT reports it has caught up; 503 (with
/// the same body) while it syncs or cannot be asked, so a load balancer
/// sends no client to a node that serves stale state.
async fn ready(State(s): State<ApiState>) -> Result<(StatusCode, Json<Health>), ApiError> {
    let mut h = health_of(&s).await?;
    if h.catching_up == Some(false) {
        Ok((StatusCode::OK, Json(h)))
    } else {
        h.status = if h.catching_up.is_some() {
            "catching_up"
        } else {
            "cometbft_unreachable"
        };
        Ok((StatusCode::SERVICE_UNAVAILABLE, Json(h)))
    }
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
    JsonPath(hash): JsonPath<String>,
) -> Result<Json<TxStatusView>, ApiError> {
    let hash = Hash::from_hex(&hash)
        .map_err(|e| ApiError::bad_request(format!("hash must be 64 hex characters: {e}")))?;
    let status = mempool::status(&s.storage, &s.mempool, &hash).map_err(ApiError::internal)?;
    Ok(Json(TxStatusView { hash, status }))
}

async fn account(
    State(s): State<ApiState>,
    JsonPath(address): JsonPath<String>,
) -> Result<Json<accounts::query::AccountView>, ApiError> {
    let address: Address = address
        .parse()
        .map_err(|e| ApiError::bad_request(format!("{e}")))?;
    accounts::query::account(&s.storage, Some(&s.mempool), &address, 0)
        .map(Json)
        .map_err(ApiError::internal)
}

/// `GET /v1/supply`: the total supply by holder at the latest committed
/// height (scans every account: answered off the async workers).
async fn supply(State(s): State<ApiState>) -> Result<Json<crate::supply::Supply>, ApiError> {
    tokio::task::spawn_blocking(move || {
        let snapshot = s.storage.snapshot().map_err(ApiError::internal)?;
        crate::supply::supply(&snapshot).map_err(ApiError::internal)
    })
    .await
    .map_err(ApiError::internal)?
    .map(Json)
}

#[cfg(test)]
mod tests;
