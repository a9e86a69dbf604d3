//! Fixtures shared by the unit tests of several components.

use weft_core::{Amount, ChainParams, GenesisAccount, GenesisAppState, SigningKey};

use crate::{
    component::Genesis,
    storage::{delta::EmptyState, StateDelta},
};

/// An in-memory state for `chain` with `params` and funded accounts at
/// nonce 0, written by the standard components' genesis hooks.
pub fn state(
    chain: &str,
    params: ChainParams,
    funded: &[(&SigningKey, Amount)],
) -> StateDelta<EmptyState> {
    let app_state = GenesisAppState {
        accounts: funded
            .iter()
            .map(|(k, b)| GenesisAccount {
                address: k.address(),
                balance: *b,
            })
            .collect(),
        params,
        staking: None,
        governance: None,
    };
    let mut s = StateDelta::new(EmptyState);
    crate::app::standard_components(0)
        .init_chain(
            &mut s,
            &Genesis {
                chain_id: chain,
                app_state: &app_state,
            },
        )
        .expect("in-memory genesis cannot fail");
    s
}
