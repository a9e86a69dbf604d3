//! Governance routes: proposals by id, filtered by status and paginated,
//! and one proposal with its tally (final once decided, over current
//! stakes while voting). They serialize `governance::query`'s views.

use axum::{extract::State, Json};
use serde::{Deserialize, Serialize};

use super::{staking::snapshot, ApiError, ApiPath, ApiQuery, ApiState};
use crate::governance::{
    query::{self, ProposalView},
    state::ProposalStatus,
};

/// Proposals per page unless `limit` says otherwise.
pub const DEFAULT_PAGE: u64 = 50;
/// Most proposals per page: each open one costs a tally.
pub const MAX_PAGE: u64 = 100;

/// Query of `GET /v1/governance/proposals`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposalsQuery {
    /// Only proposals with this status (`voting`, `passed`, `rejected`,
    /// `vetoed`, `no_quorum`).
    pub status: Option<ProposalStatus>,
    /// At most this many (1 to [`MAX_PAGE`], default [`DEFAULT_PAGE`]).
    pub limit: Option<u64>,
    /// The first id wanted: a previous page's `next_cursor` (default 0).
    pub cursor: Option<u64>,
}

/// `GET /v1/governance/proposals`.
#[derive(Debug, Serialize)]
pub struct ProposalsResponse {
    /// The committed height this answer reads.
    pub height: u64,
    /// The page, by id.
    pub proposals: Vec<ProposalView>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<u64>,
}

/// `GET /v1/governance/proposals/{id}`.
#[derive(Debug, Serialize)]
pub struct ProposalResponse {
    /// The committed height this answer reads.
    pub height: u64,
    /// The proposal and its tally.
    #[serde(flatten)]
    pub proposal: ProposalView,
}

/// `GET /v1/governance/proposals?status=S&limit=N&cursor=C`
pub(super) async fn proposals(
    State(s): State<ApiState>,
    ApiQuery(q): ApiQuery<ProposalsQuery>,
) -> Result<Json<ProposalsResponse>, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {MAX_PAGE}, not {limit}"
        )));
    }
    let (snap, height) = snapshot(&s)?;
    // `limit` ≤ MAX_PAGE, so it fits any usize.
    let (proposals, next_cursor) =
        query::proposals_page(&snap, q.status, q.cursor.unwrap_or(0), limit as usize)
            .map_err(ApiError::internal)?;
    Ok(Json(ProposalsResponse {
        height,
        proposals,
        next_cursor,
    }))
}

/// `GET /v1/governance/proposals/{id}`
pub(super) async fn proposal(
    State(s): State<ApiState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ProposalResponse>, ApiError> {
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("proposal id `{id}` is not a number")))?;
    let (snap, height) = snapshot(&s)?;
    let proposal = query::proposal(&snap, id)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no proposal has id {id}")))?;
    Ok(Json(ProposalResponse { height, proposal }))
}
