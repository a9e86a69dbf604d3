//! Accounts: balances of the native asset, nonces, transfers, and the
//! per-account share of a block.

pub mod actions;
pub mod query;
pub mod state;

use borsh::{BorshDeserialize, BorshSerialize};

pub use state::{Account, AccountsRead, AccountsWrite};

use crate::{
    component::{Component, ComponentParams, Genesis, ParamsWrite},
    error::StorageError,
    storage::StateWrite,
};

/// The accounts component.
pub struct Accounts;

/// Parameters owned by accounts.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct AccountParams {
    /// Most transactions one account may have in one block, so a single
    /// sender cannot fill blocks while others wait.
    pub max_txs_per_account_per_block: u32,
}

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
        state.put_component_params(&AccountParams {
            max_txs_per_account_per_block: genesis.app_state.params.max_txs_per_account_per_block,
        });
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
