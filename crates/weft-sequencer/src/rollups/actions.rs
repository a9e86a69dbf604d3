//! The `SubmitRollupData` action: a per-transaction data limit; execution
//! changes no state, it only places the data in the block's batches and
//! records one `weft.rollup_data` event per rollup per transaction.

use weft_core::{RollupId, TxCode};

use super::RollupParams;
use crate::{
    component::{ActionEffects, ActionHandler, Event, EventValue, ParamsRead, TxContext},
    error::{ExecError, Rejection},
    storage::{StateRead, StateWrite},
};

/// `Action::SubmitRollupData`: opaque bytes for one rollup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubmitRollupData<'a> {
    /// The rollup.
    pub rollup_id: &'a RollupId,
    /// Its bytes (never empty: the structure check refuses it).
    pub data: &'a [u8],
}

impl ActionHandler for SubmitRollupData<'_> {
    fn check_stateless(&self) -> Result<(), Rejection> {
        if self.data.is_empty() {
            return Err(Rejection::new(
                TxCode::InvalidTransaction,
                "empty rollup data",
            ));
        }
        Ok(())
    }

    fn check_stateful(&self, state: &dyn StateRead, tx: &TxContext) -> Result<(), ExecError> {
        let params: RollupParams = state.component_params()?;
        check_data_size(tx.rollup_data_bytes, &params)?;
        Ok(())
    }

    fn execute(
        &self,
        state: &mut dyn StateWrite,
        tx: &TxContext,
        effects: &mut ActionEffects,
    ) -> Result<(), ExecError> {
        // check_stateful ran just before, against this same state.
        let _ = (state, tx);
        effects
            .rollup_data
            .push((*self.rollup_id, self.data.to_vec()));
        let bytes = self.data.len() as u64;
        // One event per rollup per transaction, not per item: every
        // indexed attribute costs CometBFT an index write.
        let existing = effects.events.iter_mut().find(|e| {
            e.kind == "weft.rollup_data"
                && e.get("rollup_id") == Some(&EventValue::Rollup(*self.rollup_id))
        });
        match existing {
            Some(event) => {
                if let Some(EventValue::U64(items)) = event.get_mut("items") {
                    *items += 1;
                }
                if let Some(EventValue::U64(total)) = event.get_mut("bytes") {
                    *total += bytes;
                }
            }
            None => effects.events.push(
                Event::new("weft.rollup_data")
                    .indexed("rollup_id", EventValue::Rollup(*self.rollup_id))
                    .stored("items", EventValue::U64(1))
                    .stored("bytes", EventValue::U64(bytes)),
            ),
        }
        Ok(())
    }
}

/// Checks a transaction's total rollup data against the chain limit.
pub fn check_data_size(bytes: u64, params: &RollupParams) -> Result<(), Rejection> {
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
