//! ProcessProposal on arbitrary proposals: a block of raw items, claimed
//! commitments and validly signed transactions built from the input (so
//! the fuzzer gets past the signature check and into execution), over a
//! small in-memory genesis built once. Checks, besides "never panics":
//! - determinism: the same proposal gets the same answer twice (the second
//!   time the signature cache is warm);
//! - agreement: a block whose transactions all execute one by one, with
//!   the commitments they produce in front, is accepted, and any block that
//!   is accepted claims exactly the commitments its execution produces.
#![no_main]

use bytes::Bytes;
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use weft_core::{
    Action, BlockCommitments, ChainParams, Hash, RollupId, SigningKey, Transaction, VoteOption,
};
use weft_sequencer::{
    component::BlockContext,
    mempool::SignatureCache,
    proposal::{process, BlockExecution},
    storage::{delta::EmptyState, StateDelta},
};

const CHAIN: &str = "weft-fuzz";

#[derive(Arbitrary, Debug)]
enum FuzzAction {
    Transfer { to: u8, amount: u128 },
    Data { rollup: u8, data: Vec<u8> },
    Delegate { validator: u8, amount: u128 },
    Undelegate { validator: u8, amount: u128 },
    Vote { proposal_id: u64, yes: bool },
    Unjail,
    ClaimRewards,
}

#[derive(Arbitrary, Debug)]
enum Item {
    /// Any bytes at all.
    Raw(Vec<u8>),
    /// A commitments item with arbitrary roots.
    Commitments([u8; 32], [u8; 32]),
    /// A transaction signed by key `signer % KEYS`, for this chain or not.
    Tx {
        signer: u8,
        nonce: u8,
        other_chain: bool,
        actions: Vec<FuzzAction>,
    },
}

#[derive(Arbitrary, Debug)]
struct Proposal {
    /// Put the commitments the transactions produce in front.
    own_commitments: bool,
    items: Vec<Item>,
}

const KEYS: u8 = 4;

fn key(i: u8) -> SigningKey {
    SigningKey::from_seed(&format!("fuzz-{}", i % (KEYS + 1)))
}

fn action(a: &FuzzAction) -> Action {
    match a {
        FuzzAction::Transfer { to, amount } => Action::Transfer {
            to: key(*to).address(),
            amount: *amount,
        },
        FuzzAction::Data { rollup, data } => Action::SubmitRollupData {
            rollup_id: RollupId::from_name(&format!("r{}", rollup % 3)),
            data: data.clone(),
        },
        FuzzAction::Delegate { validator, amount } => Action::Delegate {
            validator: key(*validator).address(),
            amount: *amount,
        },
        FuzzAction::Undelegate { validator, amount } => Action::Undelegate {
            validator: key(*validator).address(),
            amount: *amount,
        },
        FuzzAction::Vote { proposal_id, yes } => Action::Vote {
            proposal_id: *proposal_id,
            option: if *yes { VoteOption::Yes } else { VoteOption::No },
        },
        FuzzAction::Unjail => Action::Unjail {},
        FuzzAction::ClaimRewards => Action::ClaimRewards {},
    }
}

fn encode(item: &Item) -> Bytes {
    match item {
        Item::Raw(b) => Bytes::copy_from_slice(b),
        Item::Commitments(ids, txs) => BlockCommitments {
            version: weft_core::block::COMMITMENTS_VERSION,
            rollup_ids_root: Hash(*ids),
            rollup_txs_root: Hash(*txs),
        }
        .encode()
        .into(),
        Item::Tx {
            signer,
            nonce,
            other_chain,
            actions,
        } => Transaction {
            chain_id: if *other_chain { "other" } else { CHAIN }.into(),
            nonce: u64::from(*nonce % 4),
            actions: actions.iter().map(action).collect(),
        }
        .sign(&key(*signer))
        .encode()
        .into(),
    }
}

struct Fixture {
    base: StateDelta<EmptyState>,
    cache: SignatureCache,
}

thread_local! {
    static FIXTURE: Fixture = {
        let params = ChainParams {
            base_fee: 10,
            fee_per_byte: 1,
            max_rollup_data_per_tx: 4096,
            ..ChainParams::default()
        };
        let keys: Vec<SigningKey> = (0..KEYS).map(key).collect();
        let funded: Vec<(&SigningKey, u128)> = keys.iter().map(|k| (k, 1_000_000)).collect();
        Fixture {
            base: weft_sequencer::test_support::state(CHAIN, params, &funded),
            cache: SignatureCache::new(1000),
        }
    };
}

fn exec(base: &StateDelta<EmptyState>) -> BlockExecution<&StateDelta<EmptyState>> {
    BlockExecution::new(
        base,
        weft_sequencer::app::standard_components(0),
        BlockContext::at_height(1),
    )
    .expect("an in-memory block starts")
}

/// The commitments of `txs` executed one by one, or `None` if one fails.
fn executed_commitments(f: &Fixture, txs: &[Bytes]) -> Option<BlockCommitments> {
    let mut e = exec(&f.base);
    for t in txs {
        let checked = f.cache.check_stateless(t, CHAIN).ok()?;
        e.apply(&checked).ok()?;
    }
    Some(e.commitments())
}

fuzz_target!(|p: Proposal| {
    FIXTURE.with(|f| {
        let mut block: Vec<Bytes> = p.items.iter().map(encode).collect();
        let mut all_execute = None;
        if p.own_commitments {
            all_execute = executed_commitments(f, &block);
            // When some tx fails, the empty block's commitments stand in.
            let c = all_execute.unwrap_or_else(|| BlockCommitments::compute(&Default::default()));
            block.insert(0, c.encode().into());
        }
        let answer = |block: &[Bytes]| match process(exec(&f.base), &f.cache, CHAIN, block) {
            Ok(e) => Ok(e.commitments()),
            Err(e) => Err(e.to_string()),
        };
        let first = answer(&block);
        assert_eq!(first, answer(&block), "ProcessProposal is not deterministic");
        if all_execute.is_some() {
            assert!(first.is_ok(), "a block of executing txs refused: {first:?}");
        }
        if let Ok(c) = &first {
            assert_eq!(BlockCommitments::decode(&block[0]).ok().as_ref(), Some(c));
        }
    });
});
