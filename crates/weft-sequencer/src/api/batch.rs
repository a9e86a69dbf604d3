//! `POST /v1/txs`: many signed transactions in one request, as a JSON
//! array of base64 strings or a binary stream of `u32le length ‖ bytes`
//! frames. Signatures are batch-verified, each transaction is admitted to
//! this node's mempool on its own (in request order, so one account's
//! nonces may follow each other), and the admitted ones are forwarded to
//! CometBFT in envelopes. The answer has one result per transaction, in
//! order: its hash and status, or its error.

use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, State},
    http::{HeaderMap, StatusCode},
    Json,
};
use base64::{engine::general_purpose::STANDARD, Engine};
use serde::Serialize;
use weft_core::{transaction::MAX_TX_BYTES, Hash, TxCode};

use super::{
    submit::{bad_json, media_type},
    ApiError, ApiState,
};
use crate::mempool::{self, TxOutcome, TxStatus};

/// Most transactions in one request.
pub const MAX_BATCH_TXS: usize = 4096;
/// Largest request body of `POST /v1/txs` (base64 JSON included).
pub const MAX_BATCH_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Batch requests handled at once; more are answered 503 `overloaded` at
/// once. With the body limit, it bounds what batches hold in memory
/// (128 MiB), which the API-wide cap on requests in flight does not.
pub const MAX_CONCURRENT_BATCHES: usize = 16;

/// The answer to a batch.
#[derive(Debug, Serialize)]
pub struct BatchSubmitted {
    /// Transactions now held by this node (admitted, or held already).
    pub accepted: usize,
    /// Transactions refused.
    pub refused: usize,
    /// One per submitted transaction, in order.
    pub results: Vec<BatchResult>,
}

/// One transaction's result.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum BatchResult {
    /// Held by this node.
    Accepted {
        /// SHA-256 of its bytes.
        hash: Hash,
        /// Pending or parked (or included, for a replay of an included
        /// transaction).
        #[serde(flatten)]
        status: TxStatus,
        /// True when this node held it before this request.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        duplicate: bool,
    },
    /// Refused.
    Refused {
        /// SHA-256 of its bytes.
        hash: Hash,
        /// Why, as `{ code, message, abci_code }`.
        error: ItemError,
    },
}

/// Why one transaction was refused.
#[derive(Debug, Serialize)]
pub struct ItemError {
    /// The result code's name (`bad_signature`, `invalid_nonce`, …).
    pub code: &'static str,
    /// What was wrong.
    pub message: String,
    /// The numeric result code.
    pub abci_code: u32,
}

pub(super) async fn submit_batch(
    State(s): State<ApiState>,
    peer: super::Peer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<BatchSubmitted>, ApiError> {
    let body = body.map_err(|r| match ApiError::from(r) {
        e if e.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!("a batch request is at most {MAX_BATCH_BODY_BYTES} bytes"),
        ),
        e => e,
    })?;
    let Some(envelopes) = s.envelopes.clone() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "batches_disabled",
            "this node does not take batch submissions",
        ));
    };
    let txs = decode_batch(&headers, &body)?;
    s.charge_txs(peer, txs.len())?;
    // Cheap: each is a slice of the body or its own buffer, shared.
    let forwarded = txs.clone();
    let threads = envelopes.verify_threads;
    let admission = envelopes.admission.clone();
    let outcomes = tokio::task::spawn_blocking(move || admission.admit_all(txs, threads))
        .await
        .map_err(ApiError::internal)?;
    let mut results = Vec::with_capacity(outcomes.len());
    for (outcome, bytes) in outcomes.into_iter().zip(forwarded) {
        match outcome {
            TxOutcome::Admitted { hash, status } => {
                if !envelopes.forwarder.forward(bytes).await {
                    tracing::warn!(
                        "the envelope forwarder stopped; admitted transactions stay local"
                    );
                }
                results.push(BatchResult::Accepted {
                    hash,
                    status,
                    duplicate: false,
                });
            }
            TxOutcome::Held { hash, status } => {
                results.push(BatchResult::Accepted {
                    hash,
                    status,
                    duplicate: true,
                });
            }
            TxOutcome::Refused { hash, rejection } => {
                // A replay of an included transaction fails on its nonce;
                // the index says it is a duplicate, not an error.
                if rejection.code == TxCode::NonceAlreadyUsed {
                    let status = mempool::status(&s.storage, &s.mempool, &hash)
                        .map_err(ApiError::internal)?;
                    if matches!(status, TxStatus::Included { .. }) {
                        results.push(BatchResult::Accepted {
                            hash,
                            status,
                            duplicate: true,
                        });
                        continue;
                    }
                }
                results.push(BatchResult::Refused {
                    hash,
                    error: ItemError {
                        code: rejection.code.name(),
                        message: rejection.message,
                        abci_code: rejection.code.value(),
                    },
                });
            }
        }
    }
    let refused = results
        .iter()
        .filter(|r| matches!(r, BatchResult::Refused { .. }))
        .count();
    let accepted = results.len() - refused;
    metrics::counter!("weft_api_batch_txs_total", "outcome" => "accepted")
        .increment(accepted as u64);
    metrics::counter!("weft_api_batch_txs_total", "outcome" => "refused").increment(refused as u64);
    Ok(Json(BatchSubmitted {
        accepted,
        refused,
        results,
    }))
}

/// The batch's transactions: JSON `["<base64>", …]` or binary frames.
/// Refuses an empty batch, more than [`MAX_BATCH_TXS`], empty or
/// oversized transactions and truncated frames, naming the position.
pub fn decode_batch(headers: &HeaderMap, body: &Bytes) -> Result<Vec<Bytes>, ApiError> {
    let txs = match media_type(headers).as_deref() {
        None | Some("application/octet-stream") => decode_frames(body)?,
        Some("application/json") => {
            let items: Vec<String> = serde_json::from_slice(body)
                .map_err(|e| bad_json(e, "[\"<base64>\", …]"))?;
            if items.len() > MAX_BATCH_TXS {
                return Err(too_many(items.len()));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    STANDARD.decode(t.as_bytes()).map(Bytes::from).map_err(|e| {
                        ApiError::bad_request(format!("transaction {i} is not base64: {e}"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "content type `{other}`: send application/octet-stream (u32le length ‖ bytes, repeated) or application/json ([\"<base64>\", …])"
                ),
            ))
        }
    };
    if txs.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "empty_batch",
            "the body holds no transaction",
        ));
    }
    for (i, t) in txs.iter().enumerate() {
        if t.is_empty() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "empty_tx",
                format!("transaction {i} is empty"),
            ));
        }
        if t.len() > MAX_TX_BYTES {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "tx_too_large",
                format!(
                    "a transaction is at most {MAX_TX_BYTES} bytes; transaction {i} is {}",
                    t.len()
                ),
            ));
        }
    }
    Ok(txs)
}

fn too_many(n: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "batch_too_large",
        format!("a batch holds at most {MAX_BATCH_TXS} transactions; this one {n}"),
    )
}

/// `u32le length ‖ bytes`, repeated to the end of the body.
fn decode_frames(body: &Bytes) -> Result<Vec<Bytes>, ApiError> {
    let mut txs = Vec::new();
    let mut at = 0usize;
    while at < body.len() {
        if txs.len() == MAX_BATCH_TXS {
            return Err(too_many(MAX_BATCH_TXS + 1));
        }
        let Some(prefix) = body.get(at..at + 4) else {
            return Err(ApiError::bad_request(format!(
                "truncated length prefix at byte {at} (transaction {})",
                txs.len()
            )));
        };
        let len = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        let start = at + 4;
        if len > MAX_TX_BYTES {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "tx_too_large",
                format!(
                    "a transaction is at most {MAX_TX_BYTES} bytes; transaction {} announces {len}",
                    txs.len()
                ),
            ));
        }
        if body.len() - start < len {
            return Err(ApiError::bad_request(format!(
                "transaction {} announces {len} bytes but {} remain",
                txs.len(),
                body.len() - start
            )));
        }
        txs.push(body.slice(start..start + len));
        at = start + len;
    }
    Ok(txs)
}

/// Encodes transactions as the binary batch body (clients and tests).
pub fn encode_frames<'a>(txs: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for t in txs {
        out.extend_from_slice(&(t.len() as u32).to_le_bytes());
        out.extend_from_slice(t);
    }
    out
}
