//! Fees: a base fee per transaction plus a fee per byte of rollup data,
//! charged in the native asset into the fee pool.

use weft_core::{Amount, ChainParams, TxCode};

use crate::{
    storage::{decode_stored, encode_stored, StateRead, StateWrite, StorageError},
    transaction::Rejection,
};

/// Storage keys owned by fees.
pub mod keys {
    /// Total fees collected (u128 borsh).
    pub const POOL: &str = "fees/pool";
}

/// The fee for a transaction carrying `rollup_bytes` of rollup data.
pub fn fee_for(params: &ChainParams, rollup_bytes: u64) -> Result<Amount, Rejection> {
    params
        .fee_for(rollup_bytes)
        .ok_or_else(|| Rejection::new(TxCode::InsufficientFunds, "fee overflows".to_string()))
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
pub fn collect<S: StateWrite>(state: &mut S, fees: Amount) -> Result<(), StorageError> {
    if fees == 0 {
        return Ok(());
    }
    // A pool past u128::MAX is unreachable (total supply is far below it);
    // saturate rather than fail a block that already executed.
    let total = pool(state)?.saturating_add(fees);
    state.put_raw(keys::POOL.into(), encode_stored(&total));
    Ok(())
}
