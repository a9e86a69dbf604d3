//! Fixtures shared by the unit tests of several components.

use weft_core::{Amount, ChainParams, SigningKey};

use crate::{
    accounts::{Account, AccountsWrite},
    chain::ChainWrite,
    storage::{delta::EmptyState, StateDelta},
};

/// An in-memory state for `chain` with `params` and funded accounts at nonce 0.
pub fn state(
    chain: &str,
    params: ChainParams,
    funded: &[(&SigningKey, Amount)],
) -> StateDelta<EmptyState> {
    let mut s = StateDelta::new(EmptyState);
    s.put_chain_id(chain);
    s.put_params(&params);
    for (k, b) in funded {
        s.put_account(
            &k.address(),
            Account {
                balance: *b,
                nonce: 0,
            },
        );
    }
    s
}
