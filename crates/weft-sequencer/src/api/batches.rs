//! The rollup batch API a conductor follows: one height with its signed
//! header and proofs, a range for catch-up (optionally waiting for the next
//! height), a server-sent-event stream of every committed height (empty
//! ones included), and validator sets.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::{Path, Query, State},
    response::sse::{Event, KeepAlive, Sse},
    Json,
};
use futures::Stream;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use weft_core::{RollupBatchProof, RollupId};

use super::{ApiError, ApiState};
use crate::rollups;

/// Most heights one range request returns.
pub const MAX_RANGE: u64 = 500;
/// Longest a range request may wait for its first height.
pub const MAX_WAIT: Duration = Duration::from_secs(10);

/// One height of one rollup: the batch, its proofs down from `data_hash`,
/// and the signed header (CometBFT's header + commit JSON) that vouches for
/// `data_hash`.
#[derive(Debug, Clone, Serialize)]
pub struct BatchAtHeight {
    /// Block height.
    pub height: u64,
    /// CometBFT's `signed_header` (`/commit` result), verbatim.
    pub signed_header: Value,
    /// The batch with its proofs.
    pub batch: RollupBatchProof,
}

/// A range of heights.
#[derive(Debug, Serialize)]
pub struct BatchRange {
    /// Consecutive heights from `from`, possibly none yet.
    pub items: Vec<BatchAtHeight>,
    /// The height to ask for next.
    pub next: u64,
    /// The last committed height on this node.
    pub latest: u64,
}

fn parse_rollup(rollup: &str) -> Result<RollupId, ApiError> {
    RollupId::from_hex(rollup)
        .map_err(|e| ApiError::bad_request(format!("rollup id must be 64 hex characters: {e}")))
}

/// The item at `height`, if that height is committed and its signed header
/// is available.
async fn item(
    s: &ApiState,
    rollup_id: &RollupId,
    height: u64,
) -> Result<Option<BatchAtHeight>, ApiError> {
    let Some(batch) =
        rollups::query::batch(&s.storage, rollup_id, height).map_err(ApiError::internal)?
    else {
        return Ok(None);
    };
    let Some(signed_header) = s.headers.get(height).await.map_err(ApiError::unavailable)? else {
        return Ok(None);
    };
    Ok(Some(BatchAtHeight {
        height,
        signed_header,
        batch,
    }))
}

fn latest(s: &ApiState) -> Result<u64, ApiError> {
    Ok(s.storage
        .committed()
        .map_err(ApiError::internal)?
        .map(|c| c.height)
        .unwrap_or(0))
}

/// `GET /v1/rollups/{rollup_id}/batches/{height}`
pub(super) async fn one(
    State(s): State<ApiState>,
    Path((rollup, height)): Path<(String, String)>,
) -> Result<Json<BatchAtHeight>, ApiError> {
    let rollup_id = parse_rollup(&rollup)?;
    let height: u64 = height
        .parse()
        .map_err(|e| ApiError::bad_request(format!("height: {e}")))?;
    item(&s, &rollup_id, height)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("height {height} is not committed yet")))
}

/// Query of a range request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    /// First height wanted (≥ 1).
    pub from: u64,
    /// How many at most (default 100, at most 500).
    pub limit: Option<u64>,
    /// If `from` is not committed yet, wait up to this long for it (ms,
    /// at most 10,000): long-polling for followers.
    pub wait_ms: Option<u64>,
}

/// `GET /v1/rollups/{rollup_id}/batches?from=H&limit=N&wait_ms=W`
pub(super) async fn range(
    State(s): State<ApiState>,
    Path(rollup): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Result<Json<BatchRange>, ApiError> {
    let rollup_id = parse_rollup(&rollup)?;
    if q.from == 0 {
        return Err(ApiError::bad_request("heights start at 1"));
    }
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_RANGE);
    let wait = Duration::from_millis(q.wait_ms.unwrap_or(0)).min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    let mut items = Vec::new();
    loop {
        let mut h = q.from;
        while h < q.from + limit {
            match item(&s, &rollup_id, h).await? {
                Some(i) => items.push(i),
                None => break,
            }
            h += 1;
        }
        if !items.is_empty() || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let next = q.from + items.len() as u64;
    Ok(Json(BatchRange {
        items,
        next,
        latest: latest(&s)?,
    }))
}

/// Query of a stream request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// First height to send (≥ 1).
    pub from: u64,
}

/// `GET /v1/rollups/{rollup_id}/stream?from=H`: server-sent events, one
/// `batch` event per committed height in order, empty batches included, so
/// a rollup's clock advances with every block.
pub(super) async fn stream(
    State(s): State<ApiState>,
    Path(rollup): Path<String>,
    Query(q): Query<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let rollup_id = parse_rollup(&rollup)?;
    if q.from == 0 {
        return Err(ApiError::bad_request("heights start at 1"));
    }
    let events = futures::stream::unfold((s, q.from), move |(s, h)| async move {
        loop {
            match item(&s, &rollup_id, h).await {
                Ok(Some(i)) => {
                    let event = Event::default()
                        .event("batch")
                        .id(h.to_string())
                        .data(serde_json::to_string(&i).unwrap_or_default());
                    return Some((Ok(event), (s, h + 1)));
                }
                Ok(None) => tokio::time::sleep(Duration::from_millis(25)).await,
                Err(e) => {
                    let event = Event::default().event("error").data(e.message);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    return Some((Ok(event), (s, h)));
                }
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// `GET /v1/validators/{height}`: the validator set at a height, as
/// CometBFT's `/validators` JSON with every page joined.
pub(super) async fn validators(
    State(s): State<ApiState>,
    Path(height): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let height: u64 = height
        .parse()
        .map_err(|e| ApiError::bad_request(format!("height: {e}")))?;
    s.headers
        .validators(height)
        .await
        .map(Json)
        .map_err(ApiError::unavailable)
}
