//! Fees: a base fee per transaction plus a fee per byte of rollup data,
//! charged in the native asset into the fee pool.

use weft_core::{Address, Amount, ChainParams, TxCode};

use crate::{
    accounts::actions::debit,
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

/// Moves `fee` from `payer` into the pool.
pub fn charge<S: StateWrite>(state: &mut S, payer: &Address, fee: Amount) -> Result<(), Rejection> {
    debit(state, payer, fee)?;
    let total = pool(state)?.checked_add(fee).ok_or_else(|| {
        Rejection::new(
            TxCode::InvalidTransaction,
            "fee pool would overflow".to_string(),
        )
    })?;
    state.put_raw(keys::POOL.into(), encode_stored(&total));
    Ok(())
}
