//! Staking routes: the validators with the set's decentralisation figures,
//! one validator, and an account's delegations and unbonding entries. Each
//! reads one committed snapshot (so the height it reports is the height
//! of what it shows) and serializes the views of `staking::query`, so a
//! field added there appears here without a handler change.

use axum::{extract::State, Json};
use serde::Serialize;
use weft_core::Address;

use super::{ApiError, ApiState, JsonPath};
use crate::{
    chain::ChainRead,
    staking::{
        decentralisation,
        query::{self, DelegationView, UnbondingView, ValidatorView},
    },
    storage::{Snapshot, StateRead, StorageError},
};

/// One validator row: its view and whether it is in the active set.
#[derive(Debug, Serialize)]
pub struct ValidatorRow {
    /// Everything `staking::query` says about it.
    #[serde(flatten)]
    pub validator: ValidatorView,
    /// In the active set (it has voting power in CometBFT).
    pub active: bool,
}

impl From<ValidatorView> for ValidatorRow {
    fn from(validator: ValidatorView) -> Self {
        // The active set is exactly the validators with power (it never
        // holds power 0).
        let active = validator.power > 0;
        ValidatorRow { validator, active }
    }
}

/// `GET /v1/validators`.
#[derive(Debug, Serialize)]
pub struct ValidatorsResponse {
    /// The committed height this answer reads.
    pub height: u64,
    /// Total voting power of the active set.
    pub total_power: u64,
    /// Validators in the active set.
    pub active_validators: u32,
    /// Fewest validators holding more than a third of the power.
    pub nakamoto_coefficient: u32,
    /// Every registered validator, by stake (highest first).
    pub validators: Vec<ValidatorRow>,
}

/// `GET /v1/validators/{address}`.
#[derive(Debug, Serialize)]
pub struct ValidatorResponse {
    /// The committed height this answer reads.
    pub height: u64,
    /// The validator.
    #[serde(flatten)]
    pub validator: ValidatorRow,
}

/// `GET /v1/staking/delegations/{address}`.
#[derive(Debug, Serialize)]
pub struct DelegationsResponse {
    /// The committed height this answer reads.
    pub height: u64,
    /// The delegator.
    pub address: Address,
    /// Its bonded stake, by validator.
    pub delegations: Vec<DelegationView>,
    /// Its stake on the way back, soonest first.
    pub unbonding: Vec<UnbondingView>,
}

pub(super) fn snapshot(s: &ApiState) -> Result<Snapshot, ApiError> {
    s.storage.snapshot().map_err(ApiError::internal)
}

pub(super) fn parse_address(text: &str) -> Result<Address, ApiError> {
    text.parse()
        .map_err(|e| ApiError::bad_request(format!("`{text}` is not an address: {e}")))
}

/// The answer of `GET /v1/validators` (and the ABCI query `validators`)
/// over `state`.
pub fn validators_at<S: StateRead + ?Sized>(state: &S) -> Result<ValidatorsResponse, StorageError> {
    let view = query::validators(state)?;
    let summary = decentralisation::summary(state)?;
    Ok(ValidatorsResponse {
        height: state.height()?,
        total_power: view.total_power,
        active_validators: summary.active,
        nakamoto_coefficient: summary.nakamoto_coefficient,
        validators: view
            .validators
            .into_iter()
            .map(ValidatorRow::from)
            .collect(),
    })
}

/// The answer of `GET /v1/validators/{address}` over `state`; `None` if
/// `operator` registered no validator.
pub fn validator_at<S: StateRead + ?Sized>(
    state: &S,
    operator: &Address,
) -> Result<Option<ValidatorResponse>, StorageError> {
    let height = state.height()?;
    Ok(
        query::validator(state, operator)?.map(|v| ValidatorResponse {
            height,
            validator: v.into(),
        }),
    )
}

/// The answer of `GET /v1/staking/delegations/{address}` over `state`.
pub fn delegations_at<S: StateRead + ?Sized>(
    state: &S,
    address: &Address,
) -> Result<DelegationsResponse, StorageError> {
    Ok(DelegationsResponse {
        height: state.height()?,
        address: *address,
        delegations: query::delegations(state, address)?,
        unbonding: query::unbonding(state, address)?,
    })
}

/// `GET /v1/validators`
pub(super) async fn validators(
    State(s): State<ApiState>,
) -> Result<Json<ValidatorsResponse>, ApiError> {
    validators_at(&snapshot(&s)?)
        .map(Json)
        .map_err(ApiError::internal)
}

/// `GET /v1/validators/{address}`
pub(super) async fn validator(
    State(s): State<ApiState>,
    JsonPath(address): JsonPath<String>,
) -> Result<Json<ValidatorResponse>, ApiError> {
    let operator = parse_address(&address)?;
    validator_at(&snapshot(&s)?, &operator)
        .map_err(ApiError::internal)?
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(format!("no validator is registered by operator {operator}"))
        })
}

/// `GET /v1/staking/delegations/{address}`
pub(super) async fn delegations(
    State(s): State<ApiState>,
    JsonPath(address): JsonPath<String>,
) -> Result<Json<DelegationsResponse>, ApiError> {
    let address = parse_address(&address)?;
    delegations_at(&snapshot(&s)?, &address)
        .map(Json)
        .map_err(ApiError::internal)
}
