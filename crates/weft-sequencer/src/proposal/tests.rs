use bytes::Bytes;
use weft_core::{
    block::COMMITMENTS_ITEM_LEN, Action, BlockCommitments, ChainParams, RollupId, SigningKey,
    Transaction,
};

use super::*;
use crate::{
    mempool::Mempool,
    storage::{delta::EmptyState, StateDelta},
};

const CHAIN: &str = "weft-unit";

fn genesis(funded: &[(&SigningKey, u128)]) -> StateDelta<EmptyState> {
    let params = ChainParams {
        base_fee: 10,
        fee_per_byte: 1,
        max_rollup_data_per_tx: 4096,
        ..ChainParams::default()
    };
    crate::test_support::state(CHAIN, params, funded)
}

fn data_tx(key: &SigningKey, nonce: u64, rollup: &str, data: &[u8]) -> Bytes {
    Transaction {
        chain_id: CHAIN.into(),
        nonce,
        actions: vec![Action::SubmitRollupData {
            rollup_id: RollupId::from_name(rollup),
            data: data.to_vec(),
        }],
    }
    .sign(key)
    .encode()
    .into()
}

fn cache() -> SignatureCache {
    SignatureCache::new(1000)
}

/// A mempool holding `txs`, admitted in order against `base`.
fn pool_of<S: StateRead>(base: &S, txs: &[Bytes]) -> Mempool {
    let mut pool = Mempool::new(crate::mempool::MempoolConfig::default());
    let sigs = cache();
    for t in txs {
        let checked = sigs
            .check_stateless(t, CHAIN)
            .expect("test txs are well-formed");
        pool.admit(base, checked, t.clone(), std::time::Instant::now())
            .expect("test txs are admissible");
    }
    pool
}

/// A block at height 1 over `base`, its components' begin hooks run.
fn exec_on<S: StateRead>(base: S) -> BlockExecution<S> {
    BlockExecution::new(
        base,
        crate::app::standard_components(0),
        BlockContext::at_height(1),
    )
    .unwrap()
}

/// PrepareProposal over `base` with no time pressure and nothing fetched ahead.
fn prepare<S: StateRead>(base: &S, pool: &Mempool, max: usize) -> Result<Vec<Bytes>, StorageError> {
    super::prepare(
        exec_on(base),
        pool.proposal_runs(),
        &cache(),
        CHAIN,
        ProposalInputs {
            max_tx_bytes: max,
            deadline: Instant::now() + std::time::Duration::from_secs(600),
            bids: vec![],
            listed: None,
            guaranteed_tx_bytes: usize::MAX,
            censor: None,
            unchecked_bid: None,
        },
    )
}

/// ProcessProposal over `base`.
fn process<'a, S: StateRead>(
    base: &'a S,
    cache: &SignatureCache,
    chain_id: &str,
    txs: &[Bytes],
) -> Result<BlockExecution<&'a S>, ProposalError> {
    super::process(exec_on(base), cache, chain_id, txs)
}

fn build<S: StateRead>(base: &S, txs: &[Bytes], max: usize) -> Vec<Bytes> {
    prepare(base, &pool_of(base, txs), max).unwrap()
}

#[test]
fn proto_size_matches_protobuf_length_prefixing() {
    assert_eq!(proto_size(0), 2);
    assert_eq!(proto_size(127), 1 + 1 + 127);
    assert_eq!(proto_size(128), 1 + 2 + 128);
    assert_eq!(proto_size(16_383), 1 + 2 + 16_383);
    assert_eq!(proto_size(16_384), 1 + 3 + 16_384);
}

#[test]
fn prepare_orders_each_account_by_nonce_first_seen_otherwise() {
    let (a, b) = (SigningKey::from_seed("a"), SigningKey::from_seed("b"));
    let base = genesis(&[(&a, 1_000_000), (&b, 1_000_000)]);
    let offered = vec![
        data_tx(&a, 1, "r", b"a1"),
        data_tx(&b, 0, "r", b"b0"),
        data_tx(&a, 0, "r", b"a0"),
        data_tx(&a, 2, "r", b"a2"),
        data_tx(&a, 5, "r", b"gap"), // parked: never promotable
    ];
    let block = build(&base, &offered, 1 << 20);
    let expect = [&offered[1], &offered[2], &offered[0], &offered[3]];
    assert_eq!(block.len(), 5);
    for (got, want) in block[1..].iter().zip(expect) {
        assert_eq!(got, want);
    }
    let exec = process(&base, &cache(), CHAIN, &block).expect("own proposal is valid");
    let items = &exec.batches()[&RollupId::from_name("r")];
    assert_eq!(
        items,
        &vec![
            b"b0".to_vec(),
            b"a0".to_vec(),
            b"a1".to_vec(),
            b"a2".to_vec()
        ]
    );
}

#[test]
fn prepare_never_exceeds_max_tx_bytes_at_the_exact_boundary() {
    let a = SigningKey::from_seed("a");
    let base = genesis(&[(&a, 1_000_000)]);
    let offered: Vec<Bytes> = (0..3)
        .map(|n| data_tx(&a, n, "r", &[n as u8; 200]))
        .collect();
    let exact = proto_size(COMMITMENTS_ITEM_LEN)
        + proto_size(offered[0].len())
        + proto_size(offered[1].len());
    let counted = |block: &[Bytes]| block.iter().map(|t| proto_size(t.len())).sum::<usize>();

    let block = build(&base, &offered, exact);
    assert_eq!(block.len(), 3, "two txs fit exactly");
    assert_eq!(counted(&block), exact);

    let block = build(&base, &offered, exact - 1);
    assert_eq!(block.len(), 2, "one byte less: only one tx");
    assert!(counted(&block) < exact);

    // Even a budget too small for anything yields a valid (empty) block.
    let block = build(&base, &offered, 10);
    assert_eq!(block.len(), 1);
    assert!(process(&base, &cache(), CHAIN, &block).is_ok());
}

#[test]
fn prepare_leaves_out_what_no_longer_executes_atomically() {
    let (a, b, other) = (
        SigningKey::from_seed("a"),
        SigningKey::from_seed("b"),
        SigningKey::from_seed("o"),
    );
    let rich = genesis(&[(&a, 1_000_000), (&b, 1_000_000)]);
    // Data for a rollup plus a transfer b can afford now...
    let both: Bytes = Transaction {
        chain_id: CHAIN.into(),
        nonce: 0,
        actions: vec![
            Action::SubmitRollupData {
                rollup_id: RollupId::from_name("r"),
                data: b"zz".to_vec(),
            },
            Action::Transfer {
                to: other.address(),
                amount: 500_000,
            },
        ],
    }
    .sign(&b)
    .encode()
    .into();
    let ok = data_tx(&a, 0, "r", b"ok");
    let pool = pool_of(&rich, &[both, ok.clone()]);
    // ...but not by the time the block is built: nothing of it may land.
    let poorer = genesis(&[(&a, 1_000_000), (&b, 1_000)]);
    let block = prepare(&poorer, &pool, 1 << 20).unwrap();
    assert_eq!(block.len(), 2);
    assert_eq!(block[1], ok);
    let exec = process(&poorer, &cache(), CHAIN, &block).unwrap();
    assert_eq!(
        exec.batches()[&RollupId::from_name("r")],
        vec![b"ok".to_vec()]
    );
}

#[test]
fn rollup_data_cap_per_block_holds_at_the_exact_boundary() {
    let keys: Vec<SigningKey> = (0..5)
        .map(|i| SigningKey::from_seed(&format!("k{i}")))
        .collect();
    let base = crate::test_support::state(
        CHAIN,
        ChainParams {
            max_rollup_data_per_block: 3_000,
            ..ChainParams::default()
        },
        &keys.iter().map(|k| (k, 1_000_000)).collect::<Vec<_>>(),
    );
    let txs: Vec<Bytes> = keys
        .iter()
        .map(|k| data_tx(k, 0, "r", &[7u8; 1_000]))
        .collect();
    let block = build(&base, &txs, 1 << 20);
    assert_eq!(
        block.len(),
        4,
        "exactly three 1000-byte payloads fit a 3000-byte cap"
    );
    let exec = process(&base, &cache(), CHAIN, &block).unwrap();
    assert_eq!(exec.rollup_bytes(), 3_000);
    let mut over = block.clone();
    over.push(txs[4].clone());
    over[0] = Bytes::from(
        BlockCommitments::compute(&{
            let mut m = std::collections::BTreeMap::new();
            m.insert(RollupId::from_name("r"), vec![vec![7u8; 1_000]; 4]);
            m
        })
        .encode(),
    );
    assert!(matches!(
        process(&base, &cache(), CHAIN, &over),
        Err(ProposalError::Limit { .. })
    ));
}

#[test]
fn one_account_cannot_fill_a_block() {
    let (a, b) = (SigningKey::from_seed("a"), SigningKey::from_seed("b"));
    let base = crate::test_support::state(
        CHAIN,
        ChainParams {
            max_txs_per_account_per_block: 3,
            ..ChainParams::default()
        },
        &[(&a, 1_000_000), (&b, 1_000_000)],
    );
    let mut txs: Vec<Bytes> = (0..6).map(|n| data_tx(&a, n, "r", &[n as u8])).collect();
    txs.push(data_tx(&b, 0, "r", b"b"));
    let block = build(&base, &txs, 1 << 20);
    assert_eq!(
        block.len(),
        1 + 3 + 1,
        "a gets its cap of 3, b still gets in"
    );
    assert!(block.contains(&txs[6]));
    let mut greedy = vec![Bytes::new()];
    greedy.extend(txs[..4].iter().cloned());
    let batches = {
        let mut m = std::collections::BTreeMap::new();
        m.insert(
            RollupId::from_name("r"),
            (0..4u8).map(|n| vec![n]).collect::<Vec<_>>(),
        );
        m
    };
    greedy[0] = Bytes::from(BlockCommitments::compute(&batches).encode());
    assert!(matches!(
        process(&base, &cache(), CHAIN, &greedy),
        Err(ProposalError::Limit { .. })
    ));
}

#[test]
fn process_rejects_every_kind_of_bad_proposal() {
    let a = SigningKey::from_seed("a");
    let base = genesis(&[(&a, 1_000_000)]);
    let offered = vec![data_tx(&a, 0, "r", b"one"), data_tx(&a, 1, "s", b"two")];
    let good = build(&base, &offered, 1 << 20);
    assert!(process(&base, &cache(), CHAIN, &good).is_ok());

    let reject = |block: Vec<Bytes>| process(&base, &cache(), CHAIN, &block).is_err();
    assert!(reject(vec![]), "no commitments item");
    assert!(reject(good[1..].to_vec()), "commitments missing");
    assert!(
        reject(vec![good[0].clone(), good[2].clone(), good[1].clone()]),
        "nonce order broken"
    );
    assert!(
        reject(vec![good[0].clone(), good[1].clone()]),
        "commitments over txs not in the block"
    );
    let mut wrong = good.clone();
    wrong[0] = BlockCommitments::compute(&Default::default())
        .encode()
        .into();
    assert!(reject(wrong), "commitments of an empty block");
    let mut garbage = good.clone();
    garbage.push(Bytes::from_static(b"\x00\x01"));
    assert!(reject(garbage), "undecodable tx");
    let mut dup = good.clone();
    dup.push(good[1].clone());
    assert!(reject(dup), "replayed tx");
    // Envelopes travel through mempools only; a block carrying one (even
    // with commitments over its inner transactions) is refused.
    let envelope = weft_core::Envelope {
        txs: good[1..].iter().map(|t| t.to_vec()).collect(),
    };
    assert!(
        reject(vec![good[0].clone(), envelope.encode().into()]),
        "an envelope as a block item"
    );
}

#[test]
fn execution_is_deterministic() {
    let a = SigningKey::from_seed("a");
    let offered: Vec<Bytes> = (0..20)
        .map(|n| data_tx(&a, n, &format!("r{}", n % 3), &[n as u8; 10]))
        .collect();
    let run = || {
        let base = genesis(&[(&a, 1_000_000)]);
        let block = build(&base, &offered, 1 << 20);
        let exec = process(&base, &cache(), CHAIN, &block).unwrap();
        let commitments = exec.commitments();
        (block, commitments, exec.finish().unwrap().changes)
    };
    assert_eq!(run(), run());
}

#[test]
fn a_spent_time_budget_proposes_what_is_built() {
    let keys: Vec<SigningKey> = (0..200)
        .map(|i| SigningKey::from_seed(&format!("k{i}")))
        .collect();
    let base = genesis(&keys.iter().map(|k| (k, 1_000_000)).collect::<Vec<_>>());
    let txs: Vec<Bytes> = keys.iter().map(|k| data_tx(k, 0, "r", b"x")).collect();
    let pool = pool_of(&base, &txs);
    let block = super::prepare(
        exec_on(&base),
        pool.proposal_runs(),
        &cache(),
        CHAIN,
        ProposalInputs {
            max_tx_bytes: 1 << 20,
            deadline: Instant::now(), // already spent
            bids: vec![],
            listed: None,
            guaranteed_tx_bytes: usize::MAX,
            censor: None,
            unchecked_bid: None,
        },
    )
    .unwrap();
    // The clock is read every 64 transactions: 63 are in before the first
    // look at it, and what is proposed is still a valid block.
    assert_eq!(block.len(), 1 + 63);
    assert!(process(&base, &cache(), CHAIN, &block).is_ok());
    assert_eq!(
        build(&base, &txs, 1 << 20).len(),
        1 + 200,
        "no budget pressure: all"
    );
}
