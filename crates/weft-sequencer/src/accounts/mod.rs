//! Accounts: balances of the native asset, nonces, transfers, and the
//! per-account share of a block.

pub mod actions;
pub mod query;
pub mod state;

pub use state::{Account, AccountsRead, AccountsWrite};

use crate::{
    component::{Component, ComponentParams, Genesis, ParamsWrite},
    error::StorageError,
    storage::StateWrite,
};

/// The accounts component.
pub struct Accounts;

/// Parameters owned by accounts (defined in `weft_core`: a
/// `ChangeAccountParams` proposal carries them).
pub use weft_core::AccountParams;

impl ComponentParams for AccountParams {
    const KEY: &'static str = "accounts/params";
    const VERSION: u8 = 1;
}

impl Component for Accounts {
    fn name(&self) -> &'static str {
        "accounts"
    }

    fn init_chain(
        &self,
        state: &mut dyn StateWrite,
        genesis: &Genesis<'_>,
    ) -> Result<(), StorageError> {
        state.put_component_params(&genesis.app_state.params.accounts());
        for a in &genesis.app_state.accounts {
            state.put_account(
                &a.address,
                Account {
                    balance: a.balance,
                    nonce: 0,
                },
            );
        }
        Ok(())
    }
}
