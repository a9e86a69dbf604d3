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
        inclusion: None,
        auction: None,
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

/// CometBFT's consensus parameters as the tests' genesis sets them.
pub fn consensus_params() -> tendermint::consensus::Params {
    use tendermint::{block, consensus, evidence};
    consensus::Params {
        block: block::Size {
            max_bytes: 4 << 20,
            max_gas: -1,
            time_iota_ms: 1000,
        },
        evidence: evidence::Params {
            max_age_num_blocks: 100_000,
            max_age_duration: evidence::Duration(std::time::Duration::from_secs(172_800)),
            max_bytes: 1 << 20,
        },
        validator: consensus::params::ValidatorParams {
            pub_key_types: vec![tendermint::public_key::Algorithm::Ed25519],
        },
        version: None,
        abci: Default::default(),
    }
}

/// Runs one height through `app` the way CometBFT does when this node
/// proposes (PrepareProposal, ProcessProposal, which must accept,
/// FinalizeBlock, Commit); returns the block and FinalizeBlock's answer.
pub fn run_block(
    app: &mut crate::App,
    height: u32,
    offered: Vec<bytes::Bytes>,
) -> (Vec<bytes::Bytes>, tendermint::abci::response::FinalizeBlock) {
    use tendermint::{
        abci::{response::ProcessProposal, types::CommitInfo},
        account,
        v0_38::abci::{request, Request, Response},
        Time,
    };
    let time = Time::from_unix_timestamp(1_700_000_000 + i64::from(height), 0).unwrap();
    let proposer = account::Id::new([7; 20]);
    let txs = match app.handle(Request::PrepareProposal(request::PrepareProposal {
        max_tx_bytes: 1 << 20,
        txs: offered,
        local_last_commit: None,
        misbehavior: vec![],
        height: height.into(),
        time,
        next_validators_hash: Default::default(),
        proposer_address: proposer,
    })) {
        Response::PrepareProposal(r) => r.txs,
        other => panic!("{other:?}"),
    };
    let hash = tendermint::Hash::Sha256([height as u8; 32]);
    let accepted = app.handle(Request::ProcessProposal(request::ProcessProposal {
        txs: txs.clone(),
        proposed_last_commit: None,
        misbehavior: vec![],
        hash,
        height: height.into(),
        time,
        next_validators_hash: Default::default(),
        proposer_address: proposer,
    }));
    assert!(matches!(
        accepted,
        Response::ProcessProposal(ProcessProposal::Accept)
    ));
    let fin = match app.handle(Request::FinalizeBlock(request::FinalizeBlock {
        txs: txs.clone(),
        decided_last_commit: CommitInfo {
            round: 0u16.into(),
            votes: vec![],
        },
        misbehavior: vec![],
        hash,
        height: height.into(),
        time,
        next_validators_hash: Default::default(),
        proposer_address: proposer,
    })) {
        Response::FinalizeBlock(r) => r,
        other => panic!("{other:?}"),
    };
    assert!(matches!(app.handle(Request::Commit), Response::Commit(_)));
    (txs, fin)
}
