//! The staking epoch transition at scale: 150 approved candidates and
//! 100,000 delegations in state, measured as the staking component's
//! `end_block` at an epoch height (active set recomputed, capped, diffed
//! against the previous set, stored), over an in-memory state and over
//! the real committed store (redb), as FinalizeBlock runs it.
//!
//! The transition includes the reward distribution (the fee pool paid to
//! the 100 active validators through their reward-per-share accumulators)
//! and the downtime bookkeeping of a commit in which every active
//! validator signed but two. It reads validator totals, not delegations,
//! so its cost should not grow with the number of delegations; the
//! delegations are in the state to show that.
//!
//! `ClaimRewards` is measured for an account delegating to all 150
//! candidates and for one with a single delegation, after an epoch paid
//! rewards.
//!
//! Run: `cargo bench -p weft-sequencer --bench staking_epoch`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use weft_core::{Action, Address, Hash, StakingParams};
use weft_sequencer::{
    component::{
        BlockContext, BlockSummary, CommitVote, Component, EndBlock, LastCommit, ParamsWrite,
        TxContext,
    },
    staking::{
        state::{cometbft_address, Delegation, StakingRead, StakingWrite, Validator},
        Staking,
    },
    storage::{delta::EmptyState, StateDelta, StateRead},
    transaction::execute_actions,
    Storage,
};

const CANDIDATES: u32 = 150;
const DELEGATIONS: u32 = 100_000;

fn address(tag: u8, i: u32) -> Address {
    let mut a = [tag; 20];
    a[16..].copy_from_slice(&i.to_be_bytes());
    Address(a)
}

/// A state with the candidates, their delegations and an active set from
/// an earlier epoch (so the transition emits real updates).
fn state() -> StateDelta<EmptyState> {
    let mut s = StateDelta::new(EmptyState);
    let params = StakingParams {
        epoch_blocks: 100,
        ..StakingParams::default()
    };
    s.put_component_params(&params);
    let mut bonded = vec![0u128; CANDIDATES as usize];
    for d in 0..DELEGATIONS {
        let v = d % CANDIDATES;
        // Uneven stakes so the cap clips some validators.
        let amount = 1_000_000 + u128::from(d % 977) * 1_000 + u128::from(v) * 50_000;
        s.put_delegation(&address(2, d), &address(1, v), &shares(amount));
        bonded[v as usize] += amount;
    }
    // One account delegating to every candidate (the many-delegation
    // claim).
    for v in 0..CANDIDATES {
        s.put_delegation(&address(3, 0), &address(1, v), &shares(1_000));
        bonded[v as usize] += 1_000;
    }
    for v in 0..CANDIDATES {
        let operator = address(1, v);
        let self_bond = params.min_self_bond;
        s.put_delegation(&operator, &operator, &shares(self_bond));
        let consensus_key = consensus_key(v);
        // One share per token, as if nothing was ever slashed.
        let stake = bonded[v as usize] + self_bond;
        s.put_validator(&Validator {
            approved: true,
            bonded: stake,
            shares: stake,
            ..Validator::new(
                operator,
                consensus_key,
                format!("validator-{v}"),
                String::new(),
                500,
            )
        })
        .unwrap();
        s.put_consensus_key_owner(&consensus_key, &operator);
        s.put_cometbft_address(&cometbft_address(&consensus_key), &operator);
    }
    // A fee pool for the epoch to pay out.
    weft_sequencer::fees::add_to_pool(&mut s, 123_456_789_000).unwrap();
    // The previous epoch's set, before the stakes above moved.
    let mut prev = weft_sequencer::staking::compute_active_set(&s, &params).unwrap();
    for v in prev.iter_mut().step_by(3) {
        v.power += 1;
    }
    s.put_active_set(&prev);
    s
}

fn shares(shares: u128) -> Delegation {
    Delegation {
        shares,
        ..Delegation::default()
    }
}

fn consensus_key(v: u32) -> [u8; 32] {
    let mut consensus_key = [0u8; 32];
    consensus_key[..4].copy_from_slice(&v.to_be_bytes());
    consensus_key[4] = 1;
    consensus_key
}

/// The epoch block's context: the previous height's commit, signed by
/// every active validator but two.
fn epoch_context(state: &dyn StateRead) -> BlockContext {
    let mut ctx = BlockContext::at_height(100);
    ctx.last_commit = LastCommit {
        round: 0,
        votes: state
            .active_set()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, v)| CommitVote {
                validator: cometbft_address(&v.consensus_key),
                power: v.power,
                signed: i >= 2,
            })
            .collect(),
    };
    ctx
}

fn epoch(c: &mut Criterion) {
    let base = state();
    let ctx = epoch_context(&base);
    c.bench_function("staking_epoch/150_candidates_100k_delegations", |b| {
        b.iter_batched(
            || StateDelta::new(&base),
            |mut delta| {
                let mut out = EndBlock::default();
                Staking
                    .end_block(&mut delta, &ctx, &BlockSummary::default(), &mut out)
                    .unwrap();
                assert!(!out.validator_updates.is_empty());
                out
            },
            BatchSize::SmallInput,
        )
    });
}

fn epoch_over_the_store(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path()).unwrap();
    let pending = storage
        .prepare_commit(0, state().into_changes(), vec![])
        .unwrap();
    storage.commit("bench", pending).unwrap();
    let ctx = epoch_context(&storage.snapshot().unwrap());
    c.bench_function("staking_epoch/150_candidates_100k_delegations/redb", |b| {
        b.iter_batched(
            || StateDelta::new(storage.snapshot().unwrap()),
            |mut delta| {
                let mut out = EndBlock::default();
                Staking
                    .end_block(&mut delta, &ctx, &BlockSummary::default(), &mut out)
                    .unwrap();
                assert!(!out.validator_updates.is_empty());
                out
            },
            BatchSize::SmallInput,
        )
    });
}

/// `ClaimRewards` after an epoch paid rewards, over the committed store.
fn claim_rewards(c: &mut Criterion) {
    let mut after_epoch = state();
    let ctx = epoch_context(&after_epoch);
    let mut out = EndBlock::default();
    Staking
        .end_block(&mut after_epoch, &ctx, &BlockSummary::default(), &mut out)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path()).unwrap();
    let pending = storage
        .prepare_commit(0, after_epoch.into_changes(), vec![])
        .unwrap();
    storage.commit("bench", pending).unwrap();
    for (name, claimer, delegations) in [
        ("many", address(3, 0), CANDIDATES as usize),
        // Delegates to the last candidate: the largest stakes, active
        // (the lowest 50 are not, and earn nothing to claim).
        ("one", address(2, CANDIDATES - 1), 1),
    ] {
        assert_eq!(
            storage
                .snapshot()
                .unwrap()
                .delegation_records_of(&claimer)
                .unwrap()
                .len(),
            delegations
        );
        let tx = TxContext {
            signer: claimer,
            nonce: 0,
            hash: Hash([0; 32]),
            rollup_data_bytes: 0,
        };
        c.bench_function(
            &format!("staking_claim_rewards/{name}_delegations_{delegations}/redb"),
            |b| {
                b.iter_batched(
                    || StateDelta::new(storage.snapshot().unwrap()),
                    |mut delta| {
                        let effects =
                            execute_actions(&mut delta, &tx, &[Action::ClaimRewards {}]).unwrap();
                        assert_eq!(effects.events.len(), 1);
                        delta.get_raw("staking/reward_reserve").unwrap()
                    },
                    BatchSize::SmallInput,
                )
            },
        );
    }
}

criterion_group!(benches, epoch, epoch_over_the_store, claim_rewards);
criterion_main!(benches);
