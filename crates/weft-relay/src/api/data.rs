//! The public data API: bid traces (received, delivered) with filters and
//! a cursor, and each height's auction (top bid per rollup, never bundle
//! contents).

use axum::{extract::State, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use weft_core::{Address, RollupId};
use weft_http::{JsonPath, JsonQuery};

use super::Relay;
use crate::{
    book::AuctionView,
    error::RelayError,
    traces::{BidTrace, Filter, Kind},
};

/// Most traces one page holds.
pub const MAX_LIMIT: u64 = 500;
/// Traces per page when no `limit` is given.
pub const DEFAULT_LIMIT: u64 = 100;

/// Filters of the trace lists.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TraceQuery {
    /// Only this target height.
    pub height: Option<u64>,
    /// Only bids covering this rollup (64 hex characters).
    pub rollup: Option<String>,
    /// Only this builder's bids (a `weft1…` address).
    pub builder: Option<String>,
    /// Page size: 1 to 500 (0 is taken as 1, more as 500); default 100.
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of traces, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct TracePage {
    /// The traces.
    pub traces: Vec<BidTrace>,
    /// Pass as `cursor` for the next page; `null` at the end.
    pub next_cursor: Option<String>,
}

fn filter_of(q: TraceQuery) -> Result<Filter, RelayError> {
    let rollup = q
        .rollup
        .map(|r| {
            RollupId::from_hex(&r).map_err(|e| {
                RelayError::bad_request("bad_query", format!("rollup must be 64 hex digits: {e}"))
            })
        })
        .transpose()?;
    let builder = q
        .builder
        .map(|b| {
            b.parse::<Address>()
                .map_err(|e| RelayError::bad_request("bad_query", format!("builder: {e}")))
        })
        .transpose()?;
    let before = q
        .cursor
        .map(|c| {
            c.split_once('-')
                .and_then(|(h, s)| Some((h.parse().ok()?, s.parse().ok()?)))
                .ok_or_else(|| {
                    RelayError::bad_request("bad_query", "cursor is not one this relay gave")
                })
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT) as usize;
    Ok(Filter {
        height: q.height,
        rollup,
        builder,
        before,
        limit,
    })
}

async fn list(relay: Relay, kind: Kind, q: TraceQuery) -> Result<Json<TracePage>, RelayError> {
    let filter = filter_of(q)?;
    let store = relay.0.traces.clone();
    let (traces, more) = tokio::task::spawn_blocking(move || store.list(kind, &filter))
        .await
        .map_err(RelayError::internal)?
        .map_err(RelayError::internal)?;
    let next_cursor = more
        .then(|| traces.last().map(|t| format!("{}-{}", t.height, t.seq)))
        .flatten();
    Ok(Json(TracePage {
        traces,
        next_cursor,
    }))
}

#[utoipa::path(get, path = "/relay/v1/data/bids_received", tag = "data",
    params(TraceQuery),
    responses((status = 200, description = "Bids accepted or cancelled, newest first", body = TracePage),
              (status = 400, description = "`bad_query`", body = RelayError)))]
pub(crate) async fn bids_received(
    State(relay): State<Relay>,
    JsonQuery(q): JsonQuery<TraceQuery>,
) -> Result<Json<TracePage>, RelayError> {
    list(relay, Kind::Received, q).await
}

#[utoipa::path(get, path = "/relay/v1/data/bids_delivered", tag = "data",
    params(TraceQuery),
    responses((status = 200, description = "Winning bids handed to validators (with the validator), newest first", body = TracePage),
              (status = 400, description = "`bad_query`", body = RelayError)))]
pub(crate) async fn bids_delivered(
    State(relay): State<Relay>,
    JsonQuery(q): JsonQuery<TraceQuery>,
) -> Result<Json<TracePage>, RelayError> {
    list(relay, Kind::Delivered, q).await
}

#[utoipa::path(get, path = "/relay/v1/auctions/{height}", tag = "data",
    params(("height" = u64, Path, description = "A target height")),
    responses((status = 200, description = "The top bid per rollup", body = AuctionView),
              (status = 404, description = "`unknown_auction`", body = RelayError)))]
pub(crate) async fn auction(
    State(relay): State<Relay>,
    JsonPath(height): JsonPath<u64>,
) -> Result<Json<AuctionView>, RelayError> {
    // Brings the book up to the head, so a committed height shows as such.
    let _ = relay.head().await;
    relay.book().auction(height).map(Json).ok_or_else(|| {
        RelayError::not_found(
            "unknown_auction",
            format!("the relay holds no auction for height {height}"),
        )
    })
}
