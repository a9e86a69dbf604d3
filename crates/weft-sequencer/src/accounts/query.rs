//! Account queries: balance and nonce, latest or at a height, with the
//! nonce a wallet should use next given what this node's mempool holds.

use std::sync::Mutex;

use serde::Serialize;
use weft_core::{Address, Amount};

use super::state::{account_key, Account};
use crate::{
    mempool::{self, Mempool},
    storage::{decode_stored, Storage, StorageError},
};

/// An account as the API and CLI show it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AccountView {
    /// The account.
    pub address: Address,
    /// Balance (decimal string).
    #[serde(with = "weft_core::genesis::amount_string")]
    pub balance: Amount,
    /// Next valid nonce in committed state.
    pub nonce: u64,
    /// The nonce to sign the next transaction with: `nonce` plus the
    /// account's pending (gap-free) transactions in this node's mempool.
    /// Equal to `nonce` for a view at a past height, or when no pool is
    /// consulted.
    pub pending_nonce: u64,
    /// The committed height this view is at.
    pub height: u64,
}

/// The account at `height` (0 = latest committed). With `pool`, a latest
/// view's `pending_nonce` counts the account's pending transactions there.
pub fn account(
    storage: &Storage,
    pool: Option<&Mutex<Mempool>>,
    address: &Address,
    height: u64,
) -> Result<AccountView, StorageError> {
    let latest = storage.committed()?.map(|c| c.height).unwrap_or(0);
    let at = if height == 0 || height > latest {
        latest
    } else {
        height
    };
    let key = account_key(address);
    let acct = match storage.get_at(&key, at)? {
        Some(b) => decode_stored::<Account>(&key, &b)?,
        None => Account::default(),
    };
    // The pool's queue may lag a block behind committed state (it moves an
    // account on at commit or recheck), so the committed nonce is a floor.
    let pooled = match pool {
        Some(pool) if at == latest => mempool::lock(pool).pending_nonce(address),
        _ => None,
    };
    Ok(AccountView {
        address: *address,
        balance: acct.balance,
        nonce: acct.nonce,
        pending_nonce: pooled.map_or(acct.nonce, |p| p.max(acct.nonce)),
        height: at,
    })
}
