//! Accounts: balances of the native asset, nonces, and transfers.

pub mod actions;
pub mod query;
pub mod state;

pub use state::{Account, AccountsRead, AccountsWrite};
