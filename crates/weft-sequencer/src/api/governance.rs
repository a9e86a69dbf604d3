//! Governance routes: proposals by id, filtered by status and paginated,
//! and one proposal with its tally (final once decided, over current
//! stakes while voting). They serialize `governance::query`'s views.

use axum::{extract::State, Json};
use serde::{Deserialize, Serialize};

use super::{staking::snapshot, ApiError, ApiState, JsonPath, JsonQuery};
use crate::{
    chain::ChainRead,
    governance::{
        query::{self, ProposalView},
        state::ProposalStatus,
    },
    storage::{StateRead, StorageError},
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

impl ProposalsQuery {
    /// Reads `status=S&limit=N&cursor=C` (any subset, any order): the
    /// ABCI query's form of the HTTP query string.
    pub fn parse(query: &str) -> Result<Self, String> {
        let mut q = ProposalsQuery {
            status: None,
            limit: None,
            cursor: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` is not name=value"))?;
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|e| format!("{name}: `{value}` is not a number: {e}"))
            };
            match name {
                "status" => {
                    q.status = Some(
                        serde_json::from_value(serde_json::Value::String(value.into()))
                            .map_err(|_| {
                                format!(
                                "status `{value}` is none of voting, passed, rejected, vetoed, no_quorum"
                            )
                            })?,
                    )
                }
                "limit" => q.limit = Some(number()?),
                "cursor" => q.cursor = Some(number()?),
                _ => return Err(format!("unknown parameter `{name}` (status, limit, cursor)")),
            }
        }
        Ok(q)
    }

    /// The page size asked for, within 1 to [`MAX_PAGE`].
    pub fn page_size(&self) -> Result<usize, String> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(format!("limit must be 1 to {MAX_PAGE}, not {limit}"));
        }
        // ≤ MAX_PAGE, so it fits any usize.
        Ok(limit as usize)
    }
}

/// The answer of `GET /v1/governance/proposals` over `state`, for a query
/// whose [`ProposalsQuery::page_size`] is `limit`.
pub fn proposals_at<S: StateRead + ?Sized>(
    state: &S,
    q: &ProposalsQuery,
    limit: usize,
) -> Result<ProposalsResponse, StorageError> {
    let (proposals, next_cursor) =
        query::proposals_page(state, q.status, q.cursor.unwrap_or(0), limit)?;
    Ok(ProposalsResponse {
        height: state.height()?,
        proposals,
        next_cursor,
    })
}

/// The answer of `GET /v1/governance/proposals/{id}` over `state`; `None`
/// if no proposal has that id.
pub fn proposal_at<S: StateRead + ?Sized>(
    state: &S,
    id: u64,
) -> Result<Option<ProposalResponse>, StorageError> {
    let height = state.height()?;
    Ok(query::proposal(state, id)?.map(|proposal| ProposalResponse { height, proposal }))
}

/// `GET /v1/governance/proposals?status=S&limit=N&cursor=C`
pub(super) async fn proposals(
    State(s): State<ApiState>,
    JsonQuery(q): JsonQuery<ProposalsQuery>,
) -> Result<Json<ProposalsResponse>, ApiError> {
    let limit = q.page_size().map_err(ApiError::bad_request)?;
    proposals_at(&snapshot(&s)?, &q, limit)
        .map(Json)
        .map_err(ApiError::internal)
}

/// `GET /v1/governance/proposals/{id}`
pub(super) async fn proposal(
    State(s): State<ApiState>,
    JsonPath(id): JsonPath<String>,
) -> Result<Json<ProposalResponse>, ApiError> {
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("proposal id `{id}` is not a number")))?;
    proposal_at(&snapshot(&s)?, id)
        .map_err(ApiError::internal)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no proposal has id {id}")))
}
