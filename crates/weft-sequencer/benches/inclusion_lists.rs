//! The per-block cost of inclusion lists with 4, 50 and 150 validators:
//! the proposer building the listed commit from CometBFT's extended commit
//! (every extension's signature checked, the largest powers carried) and
//! every validator verifying it in ProcessProposal. Each validator lists
//! the same 40 transactions of 250 bytes (a 10 KiB list, within the
//! default 16 KiB bound), all signed with real ed25519 keys.
//!
//! Run: `cargo bench -p weft-sequencer --bench inclusion_lists`

use criterion::{criterion_group, criterion_main, Criterion};
use tendermint::{
    abci::types::{BlockSignatureInfo, ExtendedCommitInfo, ExtendedVoteInfo, Validator},
    block::BlockIdFlag,
};
use weft_core::{
    inclusion::{validator_address, vote_extension_sign_bytes, InclusionList, ListedCommit},
    InclusionParams, SigningKey,
};
use weft_sequencer::{
    component::{BlockContext, CommitVote, LastCommit, ParamsWrite},
    inclusion::{rule, state::InclusionWrite},
    storage::{delta::EmptyState, StateDelta},
};

const CHAIN: &str = "weft-bench";
const HEIGHT: u64 = 41;

struct Setup {
    state: StateDelta<EmptyState>,
    ctx: BlockContext,
    commit: ExtendedCommitInfo,
    item: ListedCommit,
}

fn setup(validators: u32) -> Setup {
    let params = InclusionParams::default();
    let mut state = StateDelta::new(EmptyState);
    state.put_component_params(&params);
    let list = InclusionList::new((0..40u32).map(|i| vec![i as u8; 250]).collect()).encode();
    let mut votes = Vec::new();
    let mut commit_votes = Vec::new();
    for v in 0..validators {
        let key = SigningKey::from_seed(&format!("bench-validator-{v}"));
        let pubkey = key.public_key().0;
        state.record_validator_key(&pubkey).unwrap();
        let address = validator_address(&pubkey);
        let sig = key.sign(&vote_extension_sign_bytes(CHAIN, HEIGHT, 0, &list));
        votes.push(ExtendedVoteInfo {
            validator: Validator {
                address,
                power: 10u32.into(),
            },
            sig_info: BlockSignatureInfo::Flag(BlockIdFlag::Commit),
            vote_extension: list.clone().into(),
            extension_signature: Some(tendermint::Signature::try_from(&sig.0[..]).unwrap()),
        });
        commit_votes.push(CommitVote {
            validator: address,
            power: 10,
            signed: true,
        });
    }
    let mut ctx = BlockContext::at_height(HEIGHT + 1);
    ctx.last_commit = LastCommit {
        round: 0,
        votes: commit_votes,
    };
    let commit = ExtendedCommitInfo {
        round: 0u16.into(),
        votes,
    };
    let (item, _) = rule::build(&state, CHAIN, &ctx, &params, &commit, 1 << 20)
        .unwrap()
        .expect("more than two-thirds verify");
    Setup {
        state,
        ctx,
        commit,
        item,
    }
}

fn inclusion(c: &mut Criterion) {
    let params = InclusionParams::default();
    for validators in [4u32, 50, 150] {
        let s = setup(validators);
        println!(
            "{validators} validators: the listed commit carries {} votes, {} bytes",
            s.item.votes.len(),
            s.item.encode().len()
        );
        c.bench_function(&format!("inclusion/build/{validators}_validators"), |b| {
            b.iter(|| {
                rule::build(&s.state, CHAIN, &s.ctx, &params, &s.commit, 1 << 20)
                    .unwrap()
                    .unwrap()
            })
        });
        let bytes = s.item.encode();
        c.bench_function(&format!("inclusion/verify/{validators}_validators"), |b| {
            b.iter(|| {
                let item = ListedCommit::decode(&bytes).unwrap();
                rule::verify(&s.state, CHAIN, &s.ctx, &params, &item)
                    .unwrap()
                    .unwrap()
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = inclusion
}
criterion_main!(benches);
