//! Account storage: one key per account holding balance and nonce.

use borsh::{BorshDeserialize, BorshSerialize};
use weft_core::{Address, Amount};

use crate::storage::{decode_stored, encode_stored, StateRead, StateWrite, StorageError};

/// `accounts/<hex of the 20 address bytes>`.
pub fn account_key(address: &Address) -> String {
    format!("accounts/{}", address.to_hex())
}

/// The prefix every account key starts with (shared with other
/// `accounts/` keys such as the parameters: see [`is_account_key`]).
pub const ACCOUNTS_PREFIX: &str = "accounts/";

/// Whether `key` is an account's (`accounts/` and 40 hex digits).
pub fn is_account_key(key: &str) -> bool {
    key.strip_prefix(ACCOUNTS_PREFIX)
        .is_some_and(|rest| rest.len() == 40 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// What the state holds for an account. Absent = zero balance, nonce 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Account {
    /// Balance of the native asset.
    pub balance: Amount,
    /// Number of transactions executed from this account: the next valid nonce.
    pub nonce: u64,
}

/// Typed reads of accounts.
pub trait AccountsRead: StateRead {
    /// The account, or the default for one never seen.
    fn account(&self, address: &Address) -> Result<Account, StorageError> {
        let key = account_key(address);
        match self.get_raw(&key)? {
            Some(b) => decode_stored(&key, &b),
            None => Ok(Account::default()),
        }
    }
}

impl<S: StateRead + ?Sized> AccountsRead for S {}

/// Typed writes of accounts.
pub trait AccountsWrite: StateWrite {
    /// Stores the account.
    fn put_account(&mut self, address: &Address, account: Account) {
        self.put_raw(account_key(address), encode_stored(&account));
    }
}

impl<S: StateWrite + ?Sized> AccountsWrite for S {}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_core::SigningKey;

    #[test]
    fn key_and_value_encodings_are_pinned() {
        let a = SigningKey::from_seed("alice").address();
        let v = encode_stored(&Account {
            balance: 1_000_000,
            nonce: 3,
        });
        insta::assert_snapshot!(format!("{}\n{}", account_key(&a), hex::encode(v)));
    }
}
