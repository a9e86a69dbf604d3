//! `POST /v1/tx`: raw signed bytes (`application/octet-stream`, or no
//! content type) or JSON `{ "tx": "<base64>" }`; answers with the hash and
//! the CheckTx outcome. On a node that takes batches (the sequencer's
//! default), the transaction is admitted to this node's mempool in process,
//! by the rules CheckTx applies, and forwarded to CometBFT in an envelope
//! with others: the answer never waits for CometBFT. Otherwise it is
//! forwarded to the local CometBFT's `broadcast_tx_sync` and the answer is
//! CometBFT's. A transaction this node already holds or has included is a
//! duplicate (409), decided from the node's own records by hash, before
//! admission and again after any refusal.

use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, State},
    http::{header::CONTENT_TYPE, HeaderMap, StatusCode},
    Json,
};
use base64::{engine::general_purpose::STANDARD, Engine};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tendermint_rpc::{error::ErrorDetail, Client};
use weft_core::{transaction::MAX_TX_BYTES, Hash, TxCode};

use super::{ApiError, ApiState, Envelopes};
use crate::mempool::{self, TxOutcome, TxStatus};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonTx {
    tx: String,
}

/// An accepted submission.
#[derive(Debug, Serialize)]
pub struct Submitted {
    /// SHA-256 of the tx bytes.
    pub hash: Hash,
    /// Its status right after admission (pending or parked).
    #[serde(flatten)]
    pub status: TxStatus,
}

fn too_large(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "tx_too_large", message)
}

pub(super) async fn submit(
    State(s): State<ApiState>,
    peer: super::Peer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Submitted>), ApiError> {
    let body = body.map_err(|r| match ApiError::from(r) {
        // Over the body limit: the client's transaction is too large.
        e if e.status() == StatusCode::PAYLOAD_TOO_LARGE => too_large(format!(
            "the request body is over {} bytes; a transaction is at most {MAX_TX_BYTES} bytes",
            super::MAX_BODY_BYTES
        )),
        e => e,
    })?;
    let tx = decode_body(&headers, &body)?;
    if tx.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "empty_tx",
            "the body holds no transaction",
        ));
    }
    if tx.len() > MAX_TX_BYTES {
        return Err(too_large(format!(
            "a transaction is at most {MAX_TX_BYTES} bytes; this one is {}",
            tx.len()
        )));
    }
    s.charge_txs(peer, 1)?;
    let hash = weft_core::sha256(&tx);
    if let Some(dup) = duplicate(&s, &hash)? {
        return Err(dup);
    }
    if let Some(envelopes) = s.envelopes.clone() {
        return admit_locally(&s, envelopes, tx, hash).await;
    }
    let answer = match s.cometbft.broadcast_tx_sync(tx).await {
        Ok(answer) => answer,
        Err(e) => {
            // CometBFT's own cache refuses a replay with a JSON-RPC error;
            // what this node knows of the hash says whether it was one.
            return Err(match duplicate(&s, &hash)? {
                Some(dup) => dup,
                None => node_error(&s, &hash, &e),
            });
        }
    };
    if answer.code.is_err() {
        return Err(match duplicate(&s, &hash)? {
            Some(dup) => dup,
            None => refused(&hash, answer.code.value(), answer.log.clone()),
        });
    }
    let status = mempool::status(&s.storage, &s.mempool, &hash).map_err(ApiError::internal)?;
    Ok((StatusCode::ACCEPTED, Json(Submitted { hash, status })))
}

/// Admission in this node's mempool (CheckTx's rules, signature included),
/// then the envelope forwarder; 202 once admitted, whatever CometBFT does
/// with the envelope later (the transaction is this node's to propose
/// either way).
async fn admit_locally(
    s: &ApiState,
    envelopes: Envelopes,
    tx: Vec<u8>,
    hash: Hash,
) -> Result<(StatusCode, Json<Submitted>), ApiError> {
    let tx = Bytes::from(tx);
    let admission = envelopes.admission.clone();
    let one = vec![tx.clone()];
    let outcome = tokio::task::spawn_blocking(move || admission.admit_all(one, 1))
        .await
        .map_err(ApiError::internal)?
        .pop()
        .ok_or_else(|| ApiError::internal("admission gave no outcome"))?;
    match outcome {
        TxOutcome::Admitted { hash, status } => {
            if !envelopes.forwarder.forward(tx).await {
                tracing::warn!("the envelope forwarder stopped; admitted transactions stay local");
            }
            Ok((StatusCode::ACCEPTED, Json(Submitted { hash, status })))
        }
        // Another submission or a gossiped envelope brought it first.
        TxOutcome::Held { hash, status } => Err(duplicate_of(&hash, status)
            .unwrap_or_else(|| ApiError::internal("a held transaction has no held status"))),
        // A replay of an included transaction fails on its nonce: the
        // index says it is a duplicate.
        TxOutcome::Refused { rejection, .. } => Err(match duplicate(s, &hash)? {
            Some(dup) => dup,
            None => refused(&hash, rejection.code.value(), rejection.message),
        }),
    }
}

/// 409 `duplicate` when this node holds `hash` (pending or parked) or has
/// included it.
fn duplicate(s: &ApiState, hash: &Hash) -> Result<Option<ApiError>, ApiError> {
    let status = mempool::status(&s.storage, &s.mempool, hash).map_err(ApiError::internal)?;
    Ok(duplicate_of(hash, status))
}

/// The 409 for a transaction in `status`, if that status is a holding one.
fn duplicate_of(hash: &Hash, status: TxStatus) -> Option<ApiError> {
    let (what, details) = match status {
        TxStatus::Pending => (
            "pending".to_string(),
            json!({ "hash": hash, "status": "pending" }),
        ),
        TxStatus::Parked { waiting_for_nonce } => (
            format!("parked (waiting for nonce {waiting_for_nonce})"),
            json!({ "hash": hash, "status": "parked", "waiting_for_nonce": waiting_for_nonce }),
        ),
        TxStatus::Included { height, .. } => (
            format!("included at height {height}"),
            json!({ "hash": hash, "status": "included", "height": height }),
        ),
        TxStatus::Rejected { .. } | TxStatus::Evicted { .. } | TxStatus::Unknown => return None,
    };
    Some(
        ApiError::new(
            StatusCode::CONFLICT,
            "duplicate",
            format!("transaction {hash} is already {what}"),
        )
        .with_details(details),
    )
}

/// CheckTx refused the transaction (`code`, `log`): 422 with the code's
/// name (503 when the pool is full, which passes).
fn refused(hash: &Hash, code: u32, log: String) -> ApiError {
    let known = TxCode::from_value(code);
    let status = if known == Some(TxCode::MempoolFull) {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let error = ApiError::new(status, known.map(TxCode::name).unwrap_or("unknown"), log)
        .with_details(json!({ "hash": hash, "abci_code": code }));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        error.with_retry_after(1)
    } else {
        error
    }
}

/// CometBFT did not take the transaction, by the client error's kind:
/// no answer at all is `cometbft_unreachable`, an answer that is an error
/// is `node_error` (with the JSON-RPC code or HTTP status). Both are 502:
/// the node, not the request, is at fault (sizes were checked above).
fn node_error(s: &ApiState, hash: &Hash, e: &tendermint_rpc::Error) -> ApiError {
    let unreachable = |what: String| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "cometbft_unreachable",
            format!(
                "the local CometBFT at {} did not answer: {what}",
                s.cometbft_rpc
            ),
        )
        .with_details(json!({ "hash": hash }))
    };
    match e.detail() {
        ErrorDetail::Http(_) | ErrorDetail::Io(_) | ErrorDetail::Timeout(_) => {
            unreachable(e.to_string())
        }
        ErrorDetail::Response(r) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "node_error",
            format!("CometBFT refused the transaction: {}", r.source),
        )
        .with_details(json!({ "hash": hash, "rpc_code": r.source.code().value() })),
        ErrorDetail::HttpRequestFailed(f) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "node_error",
            format!(
                "CometBFT's RPC answered HTTP {} (is its rpc.max_body_bytes below a base64-encoded transaction?)",
                f.status
            ),
        )
        .with_details(json!({ "hash": hash, "http_status": f.status.as_u16() })),
        _ => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "node_error",
            format!("CometBFT's answer could not be read: {e}"),
        )
        .with_details(json!({ "hash": hash })),
    }
}

/// The transaction bytes: the body itself, or base64 inside JSON.
/// The body decoder of `POST /v1/tx`, for the fuzz targets.
#[cfg(any(test, feature = "fuzzing"))]
pub fn decode_submission(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    decode_body(headers, body)
}

/// The request's media type without parameters, lower-cased (`None`
/// without a `Content-Type`).
pub(super) fn media_type(headers: &HeaderMap) -> Option<String> {
    headers.get(CONTENT_TYPE).map(|v| {
        v.to_str()
            .unwrap_or("<not text>")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    })
}

/// A JSON body that does not parse as `expected`: 400 `bad_request` when
/// it is JSON of another shape, `bad_json` when it is not JSON.
pub(super) fn bad_json(e: serde_json::Error, expected: &str) -> ApiError {
    let code = match e.classify() {
        serde_json::error::Category::Data => "bad_request",
        _ => "bad_json",
    };
    ApiError::new(
        StatusCode::BAD_REQUEST,
        code,
        format!("expected {expected}: {e}"),
    )
}

fn decode_body(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    match media_type(headers).as_deref() {
        None | Some("application/octet-stream") => Ok(body.to_vec()),
        Some("application/json") => {
            let parsed: JsonTx = serde_json::from_slice(body)
                .map_err(|e| bad_json(e, "{\"tx\": \"<base64>\"}"))?;
            STANDARD
                .decode(parsed.tx.as_bytes())
                .map_err(|e| ApiError::bad_request(format!("tx is not base64: {e}")))
        }
        Some(other) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "content type `{other}`: send application/octet-stream (the signed bytes) or application/json ({{\"tx\": \"<base64>\"}})"
            ),
        )),
    }
}
