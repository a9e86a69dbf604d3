//! Account queries: balance and nonce, latest or at a height.

use serde::Serialize;
use weft_core::{Address, Amount};

use super::state::{account_key, Account};
use crate::storage::{decode_stored, Storage, StorageError};

/// An account as the API and CLI show it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AccountView {
    /// The account.
    pub address: Address,
    /// Balance (decimal string).
    #[serde(with = "weft_core::genesis::amount_string")]
    pub balance: Amount,
    /// Next valid nonce.
    pub nonce: u64,
    /// The committed height this view is at.
    pub height: u64,
}

/// The account at `height` (0 = latest committed).
pub fn account(
    storage: &Storage,
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
    Ok(AccountView {
        address: *address,
        balance: acct.balance,
        nonce: acct.nonce,
        height: at,
    })
}
