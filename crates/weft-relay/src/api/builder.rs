//! Builder endpoints: submitting a bid (checked cheapest first, each
//! failure with its own code) and cancelling one with a signed request.

use std::{sync::Arc, time::Instant};
use weft_http::JsonPath;

use axum::{
    body::Bytes,
    extract::State,
    http::{header::CONTENT_TYPE, HeaderMap, StatusCode},
    Json,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use weft_core::{
    bid::{RelayRequestKind, SignedRelayRequest},
    Address, Amount, Hash, SignedBid,
};

use super::{lock, now_ms, Relay};
use crate::{
    book::{BookError, LiveBid, Placed},
    error::RelayError,
    traces::{BidTrace, Kind},
};

/// The header carrying a signed relay request: hex of
/// `borsh(SignedRelayRequest)`.
pub const REQUEST_HEADER: &str = "weft-relay-request";

/// `POST /relay/v1/builder/bids` with `Content-Type: application/json`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitBid {
    /// Hex of `borsh(SignedBid)` (docs/protocol.md section 12).
    pub signed_bid: String,
}

/// What a submission did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Submitted {
    /// `accepted` (the bid is live) or `cancelled` (amount 0: the
    /// builder's bid at that height is gone).
    pub status: &'static str,
    /// The bid hash.
    #[schema(value_type = String)]
    pub hash: Hash,
    /// The target height.
    pub height: u64,
    /// The builder's earlier bid this one replaced or cancelled, if any.
    #[schema(value_type = Option<String>)]
    pub replaced: Option<Hash>,
}

fn count(result: &'static str) {
    metrics::counter!("weft_relay_bids_total", "result" => result).increment(1);
}

#[utoipa::path(post, path = "/relay/v1/builder/bids", tag = "builder",
    request_body(content = SubmitBid, description = "JSON `{\"signed_bid\": hex}`, or the raw `borsh(SignedBid)` with `Content-Type: application/octet-stream`"),
    responses(
        (status = 200, description = "Accepted, or cancelled (amount 0)", body = Submitted),
        (status = 400, description = "`malformed_bid`, `invalid_bid`, `wrong_chain`, `bad_signature`", body = RelayError),
        (status = 402, description = "`insufficient_funds`", body = RelayError),
        (status = 409, description = "`stale_height`, `unknown_parent`, `replayed`", body = RelayError),
        (status = 413, description = "`body_too_large`", body = RelayError),
        (status = 415, description = "`unsupported_media_type`", body = RelayError),
        (status = 429, description = "`rate_limited`", body = RelayError),
        (status = 503, description = "`head_unknown`, `balance_unavailable`, `book_full`, `overloaded`", body = RelayError),
    ))]
pub(crate) async fn submit(
    State(relay): State<Relay>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<Submitted>, RelayError> {
    let started = Instant::now();
    let result = submit_checked(&relay, &headers, body).await;
    metrics::histogram!("weft_relay_submit_seconds").record(started.elapsed().as_secs_f64());
    match &result {
        Ok(s) => count(s.status),
        Err(e) => count(e.code),
    }
    result.map(Json)
}

async fn submit_checked(
    relay: &Relay,
    headers: &HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Submitted, RelayError> {
    // 1. Size: the body limit answers 413 before anything is parsed.
    let body = body?;
    // 2. Decoding.
    let encoded = decode_body(headers, &body)?;
    let signed = SignedBid::decode(&encoded)
        .map_err(|e| RelayError::bad_request("malformed_bid", format!("bid: {e}")))?;
    signed
        .check_structure()
        .map_err(|e| RelayError::bad_request("invalid_bid", e.to_string()))?;
    let bid = &signed.bid;
    // 3. Chain.
    let config = &relay.0.config;
    if bid.chain_id != config.chain_id {
        return Err(RelayError::bad_request(
            "wrong_chain",
            format!(
                "the bid is for chain {:?}; this relay serves {:?}",
                bid.chain_id, config.chain_id
            ),
        ));
    }
    // 4. Height and parent against the head.
    let head = relay.head().await?;
    check_target(head.height, head.hash, bid.target_height, bid.parent_hash)?;
    // 5. Replay (the same bytes seen at this height).
    let hash = weft_core::sha256(&encoded);
    if relay.book().seen(bid.target_height, &hash) {
        return Err(replayed(hash));
    }
    // 6. Signature.
    signed.verify_signature_of_wire(&encoded).map_err(|e| {
        RelayError::bad_request("bad_signature", format!("the builder's signature: {e}"))
    })?;
    // 7. Funds at the parent height (a cancellation pays nothing).
    let builder = bid.builder_address();
    if bid.amount > 0 {
        let balance = balance_at(relay, &builder, head.height).await?;
        if balance < bid.amount {
            return Err(RelayError::new(
                StatusCode::PAYMENT_REQUIRED,
                "insufficient_funds",
                format!(
                    "{builder} holds {balance} at height {}, less than the {} bid",
                    head.height, bid.amount
                ),
            ));
        }
    }
    // 8. Per-builder rate.
    rate_limit(relay, &builder)?;
    let received_ms = now_ms();
    let traces = &relay.0.traces;
    let (target_height, amount) = (bid.target_height, bid.amount.to_string());
    let live = Arc::new(LiveBid::with_hash(
        signed,
        encoded,
        hash,
        traces.next_seq(),
        received_ms,
    ));
    let placed = relay
        .book()
        .place(live.clone())
        .map_err(|e| book_error(e, hash))?;
    let (status, replaced) = match placed {
        Placed::Accepted { replaced } => ("accepted", replaced),
        Placed::Cancelled { removed } => ("cancelled", removed),
    };
    let trace = BidTrace {
        seq: live.arrival,
        height: target_height,
        hash,
        builder,
        amount,
        rollups: live.rollups.clone(),
        status: status.into(),
        data_bytes: live.data_bytes,
        timestamp_ms: received_ms,
        validator: None,
    };
    traces
        .record(Kind::Received, trace)
        .await
        .map_err(RelayError::internal)?;
    Ok(Submitted {
        status,
        hash,
        height: target_height,
        replaced,
    })
}

/// The bid bytes from a JSON or raw body.
/// The body decoder of `POST /relay/v1/builder/bids`, for the fuzz targets.
#[cfg(any(test, feature = "fuzzing"))]
pub fn decode_submission(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, RelayError> {
    decode_body(headers, body)
}

fn decode_body(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, RelayError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/octet-stream") {
        return Ok(body.to_vec());
    }
    if content_type.starts_with("application/json") {
        let parsed: SubmitBid = serde_json::from_slice(body)
            .map_err(|e| RelayError::bad_request("malformed_bid", format!("JSON body: {e}")))?;
        return hex::decode(parsed.signed_bid.trim_start_matches("0x")).map_err(|e| {
            RelayError::bad_request("malformed_bid", format!("signed_bid is not hex: {e}"))
        });
    }
    Err(RelayError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "send application/json `{\"signed_bid\": hex}` or application/octet-stream borsh",
    ))
}

/// Bids are for the next height only, on the head's hash.
fn check_target(
    head_height: u64,
    head_hash: Hash,
    target: u64,
    parent: Hash,
) -> Result<(), RelayError> {
    let next = head_height.saturating_add(1);
    if target < next {
        return Err(RelayError::conflict(
            "stale_height",
            format!("height {target} is committed already; bids are for height {next}"),
        ));
    }
    if target > next {
        return Err(RelayError::conflict(
            "unknown_parent",
            format!("height {target} is not the next height ({next}): its parent is not known yet"),
        ));
    }
    if parent != head_hash {
        return Err(RelayError::conflict(
            "unknown_parent",
            format!("parent hash {parent} is not the hash of height {head_height} ({head_hash})"),
        ));
    }
    Ok(())
}

fn replayed(hash: Hash) -> RelayError {
    RelayError::conflict("replayed", format!("{hash} was already received"))
}

fn book_error(e: BookError, hash: Hash) -> RelayError {
    match e {
        BookError::Replayed => replayed(hash),
        BookError::Full => RelayError::unavailable(
            "book_full",
            "the relay holds as many bids for this height as it takes",
        ),
        BookError::Closed(h) => RelayError::conflict(
            "stale_height",
            format!("height {h} was committed while the bid was checked"),
        ),
    }
}

/// The builder's balance at `height`, from the cache or the sequencer.
async fn balance_at(relay: &Relay, builder: &Address, height: u64) -> Result<Amount, RelayError> {
    if let Some(b) = lock(&relay.0.balances).get(&(height, *builder)) {
        return Ok(*b);
    }
    let read = relay.0.sequencer.balance(builder).await.map_err(|e| {
        RelayError::unavailable(
            "balance_unavailable",
            format!("cannot read the builder's balance: {e}"),
        )
    })?;
    if read.height < height {
        return Err(RelayError::unavailable(
            "balance_unavailable",
            format!(
                "the sequencer is at height {}, behind the parent height {height}; retry shortly",
                read.height
            ),
        ));
    }
    if read.height > height {
        return Err(RelayError::conflict(
            "stale_height",
            format!(
                "height {} is committed already; bids are for height {}",
                height + 1,
                read.height + 1
            ),
        ));
    }
    lock(&relay.0.balances).insert((height, *builder), read.balance);
    Ok(read.balance)
}

fn rate_limit(relay: &Relay, builder: &Address) -> Result<(), RelayError> {
    if let Some(limiter) = &relay.0.limiter {
        limiter.check_key(builder).map_err(|_| {
            RelayError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many bids from {builder}; slow down"),
            )
            .with_retry_after(1)
        })?;
    }
    Ok(())
}

/// A signed request from the `weft-relay-request` header, checked for
/// kind, chain, height, freshness and signature.
pub(crate) fn signed_request(
    relay: &Relay,
    headers: &HeaderMap,
    kind: RelayRequestKind,
    height: u64,
) -> Result<SignedRelayRequest, RelayError> {
    let text = headers
        .get(REQUEST_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            RelayError::unauthorized(
                "unauthorized",
                format!("send a signed request in the `{REQUEST_HEADER}` header"),
            )
        })?;
    let bytes = hex::decode(text).map_err(|e| {
        RelayError::bad_request("malformed_request", format!("{REQUEST_HEADER}: {e}"))
    })?;
    let request = SignedRelayRequest::decode(&bytes).map_err(|e| {
        RelayError::bad_request("malformed_request", format!("{REQUEST_HEADER}: {e}"))
    })?;
    let r = &request.request;
    if r.chain_id != relay.0.config.chain_id {
        return Err(RelayError::bad_request(
            "wrong_chain",
            format!("the request is for chain {:?}", r.chain_id),
        ));
    }
    if r.kind != kind || r.height != height {
        return Err(RelayError::unauthorized(
            "unauthorized",
            format!(
                "the signed request is {:?} at height {}, not {kind:?} at height {height}",
                r.kind, r.height
            ),
        ));
    }
    let skew = relay.0.config.max_request_skew.as_millis() as u64;
    if now_ms().abs_diff(r.timestamp_ms) > skew {
        return Err(RelayError::unauthorized(
            "stale_request",
            format!("the request's timestamp is more than {skew} ms from the relay's clock"),
        ));
    }
    request.verify_signature().map_err(|e| {
        RelayError::unauthorized("bad_signature", format!("the request's signature: {e}"))
    })?;
    Ok(request)
}

/// `DELETE /relay/v1/builder/bids/{height}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Cancelled {
    /// Always `cancelled`.
    pub status: &'static str,
    /// The height.
    pub height: u64,
    /// The hash of the bid removed; `null` if the builder had none (or only
    /// one received after the request was signed).
    #[schema(value_type = Option<String>)]
    pub removed: Option<Hash>,
}

#[utoipa::path(delete, path = "/relay/v1/builder/bids/{height}", tag = "builder",
    params(("height" = u64, Path, description = "The target height"),
           ("weft-relay-request" = String, Header, description = "Hex of borsh(SignedRelayRequest), kind CancelBid, signed by the builder")),
    responses(
        (status = 200, description = "Cancelled", body = Cancelled),
        (status = 400, description = "`malformed_request`, `wrong_chain`", body = RelayError),
        (status = 401, description = "`unauthorized`, `stale_request`, `bad_signature`", body = RelayError),
        (status = 409, description = "`stale_height`, `replayed`", body = RelayError),
        (status = 429, description = "`rate_limited`", body = RelayError),
    ))]
pub(crate) async fn cancel(
    State(relay): State<Relay>,
    JsonPath(height): JsonPath<u64>,
    headers: HeaderMap,
) -> Result<Json<Cancelled>, RelayError> {
    let request = signed_request(&relay, &headers, RelayRequestKind::CancelBid, height)?;
    let r = &request.request;
    if r.requester != r.key.address() {
        return Err(RelayError::unauthorized(
            "unauthorized",
            "a cancellation's requester must be the signing key's address",
        ));
    }
    let head = relay.head().await?;
    if height <= head.height {
        return Err(RelayError::conflict(
            "stale_height",
            format!("height {height} is committed already"),
        ));
    }
    rate_limit(&relay, &r.requester)?;
    let hash = request.hash();
    let placed = relay
        .book()
        .cancel(height, &r.requester, r.timestamp_ms, hash)
        .map_err(|e| book_error(e, hash))?;
    let Placed::Cancelled { removed } = placed else {
        return Err(RelayError::internal("a cancel request placed a bid"));
    };
    let traces = &relay.0.traces;
    traces
        .record(
            Kind::Received,
            BidTrace {
                seq: traces.next_seq(),
                height,
                hash: removed.unwrap_or(hash),
                builder: r.requester,
                amount: "0".into(),
                rollups: Vec::new(),
                status: "cancelled".into(),
                data_bytes: 0,
                timestamp_ms: now_ms(),
                validator: None,
            },
        )
        .await
        .map_err(RelayError::internal)?;
    count("cancelled");
    Ok(Json(Cancelled {
        status: "cancelled",
        height,
        removed,
    }))
}
