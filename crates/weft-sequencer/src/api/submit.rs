//! `POST /v1/tx`: raw signed bytes (`application/octet-stream`) or JSON
//! `{ "tx": "<base64>" }`, forwarded to the local CometBFT's
//! `broadcast_tx_sync`; answers with the hash and the CheckTx outcome.

use axum::{
    body::Bytes,
    extract::State,
    http::{header::CONTENT_TYPE, HeaderMap, StatusCode},
    Json,
};
use base64::{engine::general_purpose::STANDARD, Engine};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use weft_core::{transaction::MAX_TX_BYTES, Hash, TxCode};

use super::{ApiError, ApiState};
use crate::mempool::{self, TxStatus};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonTx {
    tx: String,
}

/// An accepted submission.
#[derive(Serialize)]
pub struct Submitted {
    /// SHA-256 of the tx bytes.
    pub hash: Hash,
    /// Its status right after admission (pending or parked).
    #[serde(flatten)]
    pub status: TxStatus,
}

pub(super) async fn submit(
    State(s): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Submitted>), ApiError> {
    let tx = decode_body(&headers, &body)?;
    if tx.is_empty() || tx.len() > MAX_TX_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "tx_size",
            format!(
                "a transaction is 1 to {MAX_TX_BYTES} bytes; this one is {}",
                tx.len()
            ),
        ));
    }
    let hash = weft_core::sha256(&tx);
    let request = json!({
        "jsonrpc": "2.0", "id": 1, "method": "broadcast_tx_sync",
        "params": { "tx": STANDARD.encode(&tx) },
    });
    let answer: Value = s
        .http
        .post(&s.cometbft_rpc)
        .json(&request)
        .send()
        .await
        .map_err(|e| unreachable_node(&s, e))?
        .json()
        .await
        .map_err(|e| unreachable_node(&s, e))?;
    if let Some(err) = answer.get("error") {
        let data = err.get("data").and_then(Value::as_str).unwrap_or_default();
        let message = format!(
            "{} {data}",
            err.get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
        );
        let (status, code) = if data.contains("already exists in cache") {
            (StatusCode::CONFLICT, "duplicate")
        } else if data.contains("mempool is full") {
            (StatusCode::SERVICE_UNAVAILABLE, "mempool_full")
        } else {
            (StatusCode::BAD_GATEWAY, "node_error")
        };
        return Err(ApiError::new(status, code, message.trim().to_string())
            .with_details(json!({ "hash": hash })));
    }
    let result = answer.get("result").cloned().unwrap_or_default();
    let code = result
        .get("code")
        .and_then(Value::as_u64)
        .unwrap_or(u64::MAX);
    if code != 0 {
        let log = result
            .get("log")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let name = u32::try_from(code)
            .ok()
            .and_then(TxCode::from_value)
            .map(TxCode::name)
            .unwrap_or("unknown");
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, name, log)
            .with_details(json!({ "hash": hash, "abci_code": code })));
    }
    let status = mempool::status(&s.storage, &s.mempool, &hash).map_err(ApiError::internal)?;
    Ok((StatusCode::ACCEPTED, Json(Submitted { hash, status })))
}

fn decode_body(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Ok(body.to_vec());
    }
    let parsed: JsonTx = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("expected {{\"tx\": \"<base64>\"}}: {e}")))?;
    STANDARD
        .decode(parsed.tx.as_bytes())
        .map_err(|e| ApiError::bad_request(format!("tx is not base64: {e}")))
}

fn unreachable_node(s: &ApiState, e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "cometbft_unreachable",
        format!(
            "the local CometBFT at {} did not answer: {e}",
            s.cometbft_rpc
        ),
    )
}
