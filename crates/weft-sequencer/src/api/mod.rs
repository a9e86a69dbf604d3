//! The sequencer's HTTP API (axum): health and read-only queries served
//! straight from committed storage, concurrently with consensus.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use serde::Serialize;
use weft_core::{Address, Hash, RollupId};

use crate::{accounts, mempool, rollups, storage::Storage};

/// A JSON error body: `{ code, message }` with a matching HTTP status.
#[derive(Debug, Serialize)]
pub struct ApiError {
    /// Machine-readable code.
    pub code: &'static str,
    /// What went wrong and what to do.
    pub message: String,
    #[serde(skip)]
    status: StatusCode,
}

impl ApiError {
    fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            code: "bad_request",
            message: message.into(),
            status: StatusCode::BAD_REQUEST,
        }
    }
    fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            code: "not_found",
            message: message.into(),
            status: StatusCode::NOT_FOUND,
        }
    }
    fn internal(e: impl std::fmt::Display) -> Self {
        ApiError {
            code: "internal",
            message: e.to_string(),
            status: StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self)).into_response()
    }
}

/// The API router; tests call this directly.
pub fn router(storage: Storage) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/v1/accounts/{address}", get(account))
        .route("/v1/rollups/{rollup_id}/batches/{height}", get(batch))
        .route("/v1/tx/{hash}", get(tx))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .with_state(storage)
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    chain_id: Option<String>,
    last_height: u64,
}

async fn health(State(storage): State<Storage>) -> Result<Json<Health>, ApiError> {
    let c = storage.committed().map_err(ApiError::internal)?;
    Ok(Json(Health {
        status: "ok",
        chain_id: c.as_ref().map(|c| c.chain_id.clone()),
        last_height: c.map(|c| c.height).unwrap_or(0),
    }))
}

async fn account(
    State(storage): State<Storage>,
    Path(address): Path<String>,
) -> Result<Json<accounts::query::AccountView>, ApiError> {
    let address: Address = address
        .parse()
        .map_err(|e| ApiError::bad_request(format!("{e}")))?;
    accounts::query::account(&storage, &address, 0)
        .map(Json)
        .map_err(ApiError::internal)
}

async fn batch(
    State(storage): State<Storage>,
    Path((rollup, height)): Path<(String, String)>,
) -> Result<Json<weft_core::RollupBatchProof>, ApiError> {
    let rollup_id = RollupId::from_hex(&rollup)
        .map_err(|e| ApiError::bad_request(format!("rollup id must be 64 hex characters: {e}")))?;
    let height: u64 = height
        .parse()
        .map_err(|e| ApiError::bad_request(format!("height: {e}")))?;
    match rollups::query::batch(&storage, &rollup_id, height).map_err(ApiError::internal)? {
        Some(p) => Ok(Json(p)),
        None => Err(ApiError::not_found(format!(
            "height {height} is not committed yet"
        ))),
    }
}

async fn tx(
    State(storage): State<Storage>,
    Path(hash): Path<String>,
) -> Result<Json<mempool::TxLocation>, ApiError> {
    let hash = Hash::from_hex(&hash).map_err(|e| ApiError::bad_request(format!("hash: {e}")))?;
    let txn = storage.read().map_err(ApiError::internal)?;
    match mempool::tx_location(&txn, &hash).map_err(ApiError::internal)? {
        Some(loc) => Ok(Json(loc)),
        None => Err(ApiError::not_found(format!(
            "tx {hash} is not in a committed block"
        ))),
    }
}
