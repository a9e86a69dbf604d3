//! The staking epoch transition at scale: 150 approved candidates and
//! 100,000 delegations in state, measured as the staking component's
//! `end_block` at an epoch height (active set recomputed, capped, diffed
//! against the previous set, stored), over an in-memory state and over
//! the real committed store (redb), as FinalizeBlock runs it.
//!
//! The transition reads validator totals, not delegations, so its cost
//! should not grow with the number of delegations; the delegations are in
//! the state to show that.
//!
//! Run: `cargo bench -p weft-sequencer --bench staking_epoch`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use weft_core::{Address, StakingParams};
use weft_sequencer::{
    component::{BlockContext, BlockSummary, Component, EndBlock, ParamsWrite},
    staking::{
        state::{StakingWrite, Validator},
        Staking,
    },
    storage::{delta::EmptyState, StateDelta},
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
        s.put_delegation(&address(2, d), &address(1, v), amount);
        bonded[v as usize] += amount;
    }
    for v in 0..CANDIDATES {
        let operator = address(1, v);
        let self_bond = params.min_self_bond;
        s.put_delegation(&operator, &operator, self_bond);
        let mut consensus_key = [0u8; 32];
        consensus_key[..4].copy_from_slice(&v.to_be_bytes());
        consensus_key[4] = 1;
        s.put_validator(&Validator {
            operator,
            consensus_key,
            name: format!("validator-{v}"),
            website: String::new(),
            commission_bps: 500,
            approved: true,
            bonded: bonded[v as usize] + self_bond,
        })
        .unwrap();
        s.put_consensus_key_owner(&consensus_key, &operator);
    }
    // The previous epoch's set, before the stakes above moved.
    let mut prev = weft_sequencer::staking::compute_active_set(&s, &params).unwrap();
    for v in prev.iter_mut().step_by(3) {
        v.power += 1;
    }
    s.put_active_set(&prev);
    s
}

fn epoch(c: &mut Criterion) {
    let base = state();
    let ctx = BlockContext::at_height(100);
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
    let ctx = BlockContext::at_height(100);
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

criterion_group!(benches, epoch, epoch_over_the_store);
criterion_main!(benches);
