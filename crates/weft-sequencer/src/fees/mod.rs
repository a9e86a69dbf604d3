//! Fees: a base fee per transaction plus a fee per byte of rollup data,
//! charged in the native asset into the fee pool. Payers are debited as
//! each transaction executes; the pool is credited once per block.

use weft_core::{Amount, TxCode};

use crate::{
    component::{
        BlockContext, BlockSummary, Component, ComponentParams, EndBlock, Genesis, ParamsWrite,
    },
    error::{Rejection, StorageError},
    storage::{decode_stored, encode_stored, StateRead, StateWrite},
};

/// Storage keys owned by fees.
pub mod keys {
    /// Total fees collected (u128 borsh).
    pub const POOL: &str = "fees/pool";
}

/// Parameters owned by fees (defined in `weft_core`: a `ChangeFeeParams`
/// proposal carries them).
pub use weft_core::FeeParams;

impl ComponentParams for FeeParams {
    const KEY: &'static str = "fees/params";
    const VERSION: u8 = 1;
}

/// The fee for a transaction carrying `rollup_bytes` of rollup data; an
/// overflow makes the transaction unaffordable.
pub fn fee_for(params: &FeeParams, rollup_bytes: u64) -> Result<Amount, Rejection> {
    params
        .fee_for(rollup_bytes)
        .ok_or_else(|| Rejection::new(TxCode::InsufficientFunds, "fee overflows"))
}

/// The fees component.
pub struct Fees;

impl Component for Fees {
    fn name(&self) -> &'static str {
        "fees"
    }

    fn init_chain(
        &self,
        state: &mut dyn StateWrite,
        genesis: &Genesis<'_>,
    ) -> Result<(), StorageError> {
        state.put_component_params(&genesis.app_state.params.fees());
        Ok(())
    }

    fn end_block(
        &self,
        state: &mut dyn StateWrite,
        _ctx: &BlockContext,
        block: &BlockSummary,
        _out: &mut EndBlock,
    ) -> Result<(), StorageError> {
        collect(state, block.fees)
    }
}

/// The fee pool balance.
pub fn pool<S: StateRead + ?Sized>(state: &S) -> Result<Amount, StorageError> {
    state
        .get_raw(keys::POOL)?
        .map(|b| decode_stored(keys::POOL, &b))
        .transpose()
        .map(Option::unwrap_or_default)
}

/// Credits a block's collected fees to the pool (payers were debited as
/// each transaction executed).
fn collect(state: &mut dyn StateWrite, fees: Amount) -> Result<(), StorageError> {
    add_to_pool(state, fees)
}

/// Adds `amount`, already taken from someone's balance, to the pool.
/// The staking rewards pay the pool out each epoch; see
/// `staking::rewards::pay_into_reward_pool` for the call that debits a
/// payer too.
pub fn add_to_pool(state: &mut dyn StateWrite, amount: Amount) -> Result<(), StorageError> {
    if amount == 0 {
        return Ok(());
    }
    // A pool past u128::MAX is unreachable (total supply is far below it);
    // saturate rather than fail a block that already executed.
    let total = pool(state)?.saturating_add(amount);
    state.put_raw(keys::POOL.into(), encode_stored(&total));
    Ok(())
}

/// Takes `amount` out of the pool (to pay it to someone); more than the
/// pool holds is a corrupt state.
pub fn take_from_pool(state: &mut dyn StateWrite, amount: Amount) -> Result<(), StorageError> {
    if amount == 0 {
        return Ok(());
    }
    let left = pool(state)?.checked_sub(amount).ok_or_else(|| {
        StorageError::Corrupt(format!("{}: paying out more than it holds", keys::POOL))
    })?;
    state.put_raw(keys::POOL.into(), encode_stored(&left));
    Ok(())
}
