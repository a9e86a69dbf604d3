//! The rollup batch API a conductor follows: one height with its signed
//! header and proofs, a range for catch-up (optionally waiting for the next
//! height), a server-sent-event stream of every committed height (empty
//! ones included), and validator sets. Waiting is on the app's commit
//! notifications, never a polling loop.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::State,
    http::StatusCode,
    response::sse::{Event, KeepAlive, Sse},
    Json,
};
use futures::Stream;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{watch, OwnedSemaphorePermit};
use weft_core::{RollupBatchProof, RollupId};

use super::{ApiError, ApiState, JsonPath, JsonQuery};
use crate::{
    headers::{Backoff, HeaderError},
    rollups,
};

/// Most heights one range request returns.
pub const MAX_RANGE: u64 = 500;
/// Longest a range request may wait for its first height.
pub const MAX_WAIT: Duration = Duration::from_secs(10);
/// Highest height any request may name: CometBFT heights are `int64`.
/// Keeping to it also keeps `from + limit` and `height + 1` from overflowing.
pub const MAX_HEIGHT: u64 = i64::MAX as u64;
/// A stream retries a height it could not serve after this, doubling up
/// to [`STREAM_MAX_RETRY`].
const STREAM_MIN_RETRY: Duration = Duration::from_millis(500);
const STREAM_MAX_RETRY: Duration = Duration::from_secs(5);
/// `Retry-After` when every stream slot is taken.
const STREAMS_FULL_RETRY_SECS: u64 = 5;

/// One height of one rollup: the batch, its proofs down from `data_hash`,
/// and the signed header (CometBFT's header + commit JSON) that vouches for
/// `data_hash`.
#[derive(Debug, Clone, Serialize)]
pub struct BatchAtHeight {
    /// Block height.
    pub height: u64,
    /// CometBFT's `signed_header` (`/commit` result), in CometBFT's JSON.
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

/// A height a client may ask for: 1 to [`MAX_HEIGHT`].
fn check_height(height: u64) -> Result<u64, ApiError> {
    match height {
        0 => Err(ApiError::bad_request("heights start at 1")),
        h if h > MAX_HEIGHT => Err(ApiError::bad_request(format!(
            "height {h} is beyond any CometBFT height (at most {MAX_HEIGHT})"
        ))),
        h => Ok(h),
    }
}

fn parse_height(raw: &str) -> Result<u64, ApiError> {
    let h = raw
        .parse()
        .map_err(|e| ApiError::bad_request(format!("height `{raw}`: {e}")))?;
    check_height(h)
}

/// A signed header that cannot be had (CometBFT down, height pruned) is
/// the node's problem, temporarily: 503, retry later.
fn header_error(e: HeaderError) -> ApiError {
    match e {
        HeaderError::Rpc { .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "header_unavailable",
            e.to_string(),
        )
        .with_retry_after(1),
        other => ApiError::internal(other),
    }
}

/// The item at `height`; `None` when that height is not committed.
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
    let signed_header = s.headers.get(height).await.map_err(header_error)?;
    Ok(Some(BatchAtHeight {
        height,
        signed_header,
        batch,
    }))
}

/// The last committed height in storage (the source of truth; the commit
/// notifications only wake waiters).
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
    JsonPath((rollup, height)): JsonPath<(String, String)>,
) -> Result<Json<BatchAtHeight>, ApiError> {
    let rollup_id = parse_rollup(&rollup)?;
    let height = parse_height(&height)?;
    let latest = latest(&s)?;
    if height > latest {
        return Err(ApiError::not_committed(height, latest));
    }
    item(&s, &rollup_id, height)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_committed(height, latest))
}

/// Query of a range request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    /// First height wanted (1 to [`MAX_HEIGHT`]).
    pub from: u64,
    /// How many at most (default 100, at most 500).
    pub limit: Option<u64>,
    /// If `from` is not committed yet, wait up to this long for it (ms,
    /// at most 10,000): long-polling for followers.
    pub wait_ms: Option<u64>,
}

/// Consecutive items from `from` below `end`, stopping at the first height
/// not committed. An error after some items ends the range early instead.
async fn collect(
    s: &ApiState,
    rollup_id: &RollupId,
    from: u64,
    end: u64,
) -> Result<Vec<BatchAtHeight>, ApiError> {
    let mut items = Vec::new();
    for h in from..end {
        match item(s, rollup_id, h).await {
            Ok(Some(i)) => items.push(i),
            Ok(None) => break,
            Err(e) if items.is_empty() => return Err(e),
            Err(_) => break,
        }
    }
    Ok(items)
}

/// `GET /v1/rollups/{rollup_id}/batches?from=H&limit=N&wait_ms=W`
pub(super) async fn range(
    State(s): State<ApiState>,
    JsonPath(rollup): JsonPath<String>,
    JsonQuery(q): JsonQuery<RangeQuery>,
) -> Result<Json<BatchRange>, ApiError> {
    let rollup_id = parse_rollup(&rollup)?;
    let from = check_height(q.from)?;
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_RANGE);
    // Cannot overflow with `from` ≤ MAX_HEIGHT; checked all the same.
    let end = from
        .checked_add(limit)
        .ok_or_else(|| ApiError::bad_request("from + limit is beyond any height"))?;
    let wait = Duration::from_millis(q.wait_ms.unwrap_or(0)).min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    let mut commits = s.commits.clone();
    let items = loop {
        // Marked seen before reading, so a commit landing during the read
        // wakes the wait below instead of being missed.
        commits.borrow_and_update();
        let items = collect(&s, &rollup_id, from, end).await?;
        if !items.is_empty() {
            break items;
        }
        match tokio::time::timeout_at(deadline, commits.changed()).await {
            Ok(Ok(())) => continue,
            // Deadline passed, or the app stopped publishing heights.
            Ok(Err(_)) | Err(_) => break items,
        }
    };
    let next = from + items.len() as u64;
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
    /// First height to send (1 to [`MAX_HEIGHT`]).
    pub from: u64,
}

/// What one open stream carries between events.
struct Follow {
    state: ApiState,
    rollup_id: RollupId,
    next: u64,
    commits: watch::Receiver<u64>,
    retry: Backoff,
    /// Set after an error event: wait this long before trying again.
    pause: Option<Duration>,
    /// Held while the stream is open; dropped with it.
    _slot: OwnedSemaphorePermit,
}

impl Follow {
    /// The next event: the batch at `next` once it is committed, or an
    /// `error` event (then a retry after a growing delay). `None` ends the
    /// stream (the app is gone).
    async fn next_event(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        if let Some(pause) = self.pause.take() {
            tokio::time::sleep(pause).await;
        }
        loop {
            if *self.commits.borrow_and_update() < self.next {
                self.commits.changed().await.ok()?;
                continue;
            }
            match item(&self.state, &self.rollup_id, self.next).await {
                Ok(Some(i)) => {
                    self.retry.succeeded();
                    let event = Event::default()
                        .event("batch")
                        .id(self.next.to_string())
                        .json_data(&i)
                        .unwrap_or_else(|e| Event::default().event("error").data(e.to_string()));
                    self.next += 1;
                    return Some((Ok(event), self));
                }
                // Announced but not readable yet: wait for the next commit.
                Ok(None) => self.commits.changed().await.ok()?,
                Err(e) => {
                    let event = Event::default().event("error").data(e.message);
                    self.pause = Some(self.retry.failed(std::time::Instant::now()).delay);
                    return Some((Ok(event), self));
                }
            }
        }
    }
}

/// `GET /v1/rollups/{rollup_id}/stream?from=H`: server-sent events, one
/// `batch` event per committed height in order, empty batches included, so
/// a rollup's clock advances with every block. At most
/// `ApiLimits::max_streams` are open at once; more are refused with 503.
pub(super) async fn stream(
    State(s): State<ApiState>,
    JsonPath(rollup): JsonPath<String>,
    JsonQuery(q): JsonQuery<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let rollup_id = parse_rollup(&rollup)?;
    let from = check_height(q.from)?;
    let slot = s.streams.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            format!(
                "this node serves at most {} streams at once; retry later or use another node",
                s.limits.max_streams
            ),
        )
        .with_retry_after(STREAMS_FULL_RETRY_SECS)
    })?;
    let follow = Follow {
        commits: s.commits.clone(),
        state: s,
        rollup_id,
        next: from,
        retry: Backoff::new(STREAM_MIN_RETRY, STREAM_MAX_RETRY, Duration::MAX),
        pause: None,
        _slot: slot,
    };
    let events = futures::stream::unfold(follow, Follow::next_event);
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// `GET /v1/validator-sets/{height}`: the validator set at a committed
/// height, as CometBFT's `/validators` JSON with every page joined.
pub(super) async fn validators(
    State(s): State<ApiState>,
    JsonPath(height): JsonPath<String>,
) -> Result<Json<Value>, ApiError> {
    let height = parse_height(&height)?;
    let latest = latest(&s)?;
    if height > latest {
        return Err(ApiError::not_committed(height, latest));
    }
    s.headers
        .validators(height)
        .await
        .map(Json)
        .map_err(header_error)
}
