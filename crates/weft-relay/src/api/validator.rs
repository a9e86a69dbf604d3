//! The validator endpoint: the winning bids of the next height, only for a
//! signed request from an active validator's registered relay key, each
//! delivery recorded.

use std::{sync::Arc, time::Instant};
use weft_http::JsonQuery;

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    Json,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use weft_core::{bid::RelayRequestKind, Address, Hash, RollupId};

use super::{builder::signed_request, now_ms, Relay};
use crate::{
    error::RelayError,
    sequencer::Directory,
    traces::{BidTrace, Kind},
};

/// `?height=H`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct WinnersQuery {
    /// The next height (the latest committed height plus one).
    pub height: u64,
}

/// One winning bid, in full.
#[derive(Debug, Serialize, ToSchema)]
pub struct WinningBid {
    /// The bid hash.
    #[schema(value_type = String)]
    pub hash: Hash,
    /// The builder's address.
    #[schema(value_type = String)]
    pub builder: Address,
    /// The amount, decimal.
    pub amount: String,
    /// The rollups it leads.
    #[schema(value_type = Vec<String>)]
    pub rollups: Vec<RollupId>,
    /// Hex of `borsh(SignedBid)`: what the proposer re-checks and includes.
    pub signed_bid: String,
}

/// The winners of a height.
#[derive(Debug, Serialize, ToSchema)]
pub struct Winners {
    /// The target height.
    pub height: u64,
    /// The block hash of the height before.
    #[schema(value_type = String)]
    pub parent_hash: Hash,
    /// The winning bids, highest rank first; they never share a rollup and
    /// together stay under the relay's byte cap.
    pub bids: Vec<WinningBid>,
}

#[utoipa::path(get, path = "/relay/v1/validator/winners", tag = "validator",
    params(WinnersQuery,
           ("weft-relay-request" = String, Header, description = "Hex of borsh(SignedRelayRequest), kind FetchWinners, signed with the validator's relay key")),
    responses(
        (status = 200, description = "The winning bids", body = Winners),
        (status = 400, description = "`bad_query`, `malformed_request`, `wrong_chain`", body = RelayError),
        (status = 401, description = "`unauthorized`, `stale_request`, `bad_signature`", body = RelayError),
        (status = 403, description = "`not_active_validator`, `wrong_relay_key`", body = RelayError),
        (status = 409, description = "`not_next_height`", body = RelayError),
        (status = 503, description = "`head_unknown`, `directory_unavailable`", body = RelayError),
    ))]
pub(crate) async fn winners(
    State(relay): State<Relay>,
    headers: HeaderMap,
    JsonQuery(q): JsonQuery<WinnersQuery>,
) -> Result<Json<Winners>, RelayError> {
    let started = Instant::now();
    let result = winners_checked(&relay, &headers, q.height).await;
    metrics::histogram!("weft_relay_winners_seconds").record(started.elapsed().as_secs_f64());
    let code = match &result {
        Ok(_) => "ok",
        Err(e) => e.code,
    };
    metrics::counter!("weft_relay_winner_fetches_total", "result" => code).increment(1);
    result.map(Json)
}

async fn winners_checked(
    relay: &Relay,
    headers: &HeaderMap,
    height: u64,
) -> Result<Winners, RelayError> {
    let request = signed_request(relay, headers, RelayRequestKind::FetchWinners, height)?;
    let head = relay.head().await?;
    if height != head.height.saturating_add(1) {
        return Err(RelayError::conflict(
            "not_next_height",
            format!(
                "winners are served for the next height only ({})",
                head.height + 1
            ),
        ));
    }
    let operator = request.request.requester;
    let directory = directory(relay, head.height).await?;
    let entry = directory
        .validators
        .get(&operator)
        .filter(|v| v.active)
        .ok_or_else(|| {
            RelayError::new(
                StatusCode::FORBIDDEN,
                "not_active_validator",
                format!(
                    "{operator} is not an active validator at height {}",
                    directory.height
                ),
            )
        })?;
    if entry.relay_key != Some(request.request.key) {
        return Err(RelayError::new(
            StatusCode::FORBIDDEN,
            "wrong_relay_key",
            format!("the request is not signed with {operator}'s registered relay key"),
        ));
    }
    let winners = relay
        .book()
        .winners(height, relay.0.config.auction_byte_cap);
    let now = now_ms();
    let traces = &relay.0.traces;
    let mut bids = Vec::with_capacity(winners.len());
    for bid in winners.iter() {
        let builder = bid.signed.bid.builder_address();
        traces
            .record(
                Kind::Delivered,
                BidTrace {
                    seq: traces.next_seq(),
                    height,
                    hash: bid.hash,
                    builder,
                    amount: bid.signed.bid.amount.to_string(),
                    rollups: bid.rollups.clone(),
                    status: "delivered".into(),
                    data_bytes: bid.data_bytes,
                    timestamp_ms: now,
                    validator: Some(operator),
                },
            )
            .await
            .map_err(RelayError::internal)?;
        bids.push(WinningBid {
            hash: bid.hash,
            builder,
            amount: bid.signed.bid.amount.to_string(),
            rollups: bid.rollups.clone(),
            signed_bid: hex::encode(&bid.encoded),
        });
    }
    Ok(Winners {
        height,
        parent_hash: head.hash,
        bids,
    })
}

/// The validator directory, refetched at most once per head height; a
/// failed refetch keeps serving the last one read.
async fn directory(relay: &Relay, head: u64) -> Result<Arc<Directory>, RelayError> {
    let mut cached = relay.0.directory.lock().await;
    if let Some((at, d)) = cached.as_ref() {
        if *at >= head {
            return Ok(d.clone());
        }
    }
    match relay.0.sequencer.directory().await {
        Ok(d) => {
            let d = Arc::new(d);
            *cached = Some((head, d.clone()));
            Ok(d)
        }
        Err(e) => match cached.take() {
            Some((_, d)) => {
                tracing::warn!(error = %e, "validator directory refresh failed; using the last one");
                // Not retried before the next height: a down sequencer
                // must not slow every fetch by its timeout.
                *cached = Some((head, d.clone()));
                Ok(d)
            }
            None => Err(RelayError::unavailable(
                "directory_unavailable",
                format!("cannot read the validator directory: {e}"),
            )),
        },
    }
}
