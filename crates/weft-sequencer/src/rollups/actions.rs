//! The `SubmitRollupData` action: a per-transaction data limit; execution
//! changes no state, it only places the data in the block's batches.

use weft_core::{ChainParams, Transaction, TxCode};

use crate::transaction::Rejection;

/// Checks the transaction's total rollup data against the chain limit.
pub fn check_data_size(tx: &Transaction, params: &ChainParams) -> Result<(), Rejection> {
    let bytes = tx.rollup_data_bytes();
    if bytes > u64::from(params.max_rollup_data_per_tx) {
        return Err(Rejection::new(
            TxCode::RollupDataTooLarge,
            format!(
                "{bytes} bytes of rollup data, at most {} per transaction",
                params.max_rollup_data_per_tx
            ),
        ));
    }
    Ok(())
}
