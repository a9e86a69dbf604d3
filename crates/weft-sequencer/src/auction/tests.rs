//! The auction's consensus rules over in-memory state: what a bid in a
//! block must meet, what it pays, where its bundles land, and how the
//! proposer and the other validators treat it.

use std::time::Instant;

use bytes::Bytes;
use weft_core::{
    AuctionParams, Bid, BlockCommitments, Bundle, ChainParams, Hash, RollupId, SignedBid,
    SigningKey, Transaction,
};

use super::{fetch::merge, rules::BidRejection};
use crate::{
    accounts::state::AccountsRead,
    component::{BlockContext, ParamsWrite},
    mempool::{Mempool, MempoolConfig, SignatureCache},
    proposal::{self, BlockExecution, ItemResult, ProposalError, ProposalInputs},
    storage::{delta::EmptyState, StateDelta, StateRead},
};

const CHAIN: &str = "weft-auction";
const HEIGHT: u64 = 7;

fn parent() -> Hash {
    weft_core::sha256(b"block 6")
}

/// Genesis with the auction on, `funded` accounts, and block 6's hash
/// recorded as the parent of the block being built.
fn state(funded: &[(&SigningKey, u128)]) -> StateDelta<EmptyState> {
    let params = ChainParams {
        base_fee: 10,
        fee_per_byte: 1,
        ..ChainParams::default()
    };
    let mut s = crate::test_support::state(CHAIN, params, funded);
    s.put_component_params(&AuctionParams::default());
    super::record_block_hash(&mut s, parent()).unwrap();
    s
}

fn builder(name: &str) -> SigningKey {
    SigningKey::from_seed(name)
}

fn bid_of(key: &SigningKey, rollups: &[&str], amount: u128) -> Bid {
    Bid {
        chain_id: CHAIN.into(),
        target_height: HEIGHT,
        parent_hash: parent(),
        bundles: rollups
            .iter()
            .map(|r| Bundle {
                rollup_id: RollupId::from_name(r),
                payloads: vec![format!("{r}:bundle-1").into_bytes(), b"bundle-2".to_vec()],
            })
            .collect(),
        amount,
        builder: key.public_key(),
    }
}

fn signed(key: &SigningKey, rollups: &[&str], amount: u128) -> SignedBid {
    bid_of(key, rollups, amount).sign(key)
}

fn data_tx(key: &SigningKey, nonce: u64, rollup: &str, data: &[u8]) -> Bytes {
    Transaction {
        chain_id: CHAIN.into(),
        nonce,
        actions: vec![weft_core::Action::SubmitRollupData {
            rollup_id: RollupId::from_name(rollup),
            data: data.to_vec(),
        }],
    }
    .sign(key)
    .encode()
    .into()
}

fn exec<S: StateRead>(base: S) -> BlockExecution<S> {
    BlockExecution::new(
        base,
        crate::app::standard_components(0),
        BlockContext::at_height(HEIGHT),
    )
    .unwrap()
}

fn cache() -> SignatureCache {
    SignatureCache::new(100)
}

fn pool_of<S: StateRead>(base: &S, txs: &[Bytes]) -> Mempool {
    let mut pool = Mempool::new(MempoolConfig::default());
    for t in txs {
        let checked = cache().check_stateless(t, CHAIN).unwrap();
        pool.admit(base, checked, t.clone(), Instant::now())
            .unwrap();
    }
    pool
}

fn prepare<S: StateRead>(base: &S, pool: &Mempool, bids: Vec<SignedBid>) -> Vec<Bytes> {
    proposal::prepare(
        exec(base),
        pool.proposal_runs(),
        &cache(),
        CHAIN,
        ProposalInputs {
            max_tx_bytes: 1 << 20,
            deadline: Instant::now() + std::time::Duration::from_secs(600),
            bids,
            listed: None,
            guaranteed_tx_bytes: usize::MAX,
            censor: None,
            unchecked_bid: None,
        },
    )
    .unwrap()
}

fn rejection(base: &StateDelta<EmptyState>, block: &[Bytes]) -> BidRejection {
    match proposal::process(exec(base), &cache(), CHAIN, block) {
        Err(ProposalError::Bid { rejection, .. }) => rejection,
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("accepted"),
    }
}

/// A block of exactly these bid items (and commitments that match them).
fn block_with_bids(base: &StateDelta<EmptyState>, bids: &[SignedBid]) -> Vec<Bytes> {
    let mut e = exec(base);
    for bid in bids {
        e.place_unchecked_bid(bid);
    }
    let mut block = vec![Bytes::from(e.commitments().encode())];
    block.extend(bids.iter().map(|b| Bytes::from(b.encode_item())));
    block
}

#[test]
fn the_winning_bundles_lead_their_batches_and_every_pending_tx_still_lands() {
    let (alice, winner, multi) = (builder("alice"), builder("winner"), builder("multi"));
    let base = state(&[
        (&alice, 1_000_000),
        (&winner, 1_000_000),
        (&multi, 1_000_000),
    ]);
    let pending = vec![
        data_tx(&alice, 0, "alpha", b"alice-0"),
        data_tx(&alice, 1, "beta", b"alice-1"),
    ];
    let pool = pool_of(&base, &pending);
    let bids = vec![
        signed(&winner, &["alpha"], 5_000),
        signed(&multi, &["beta", "gamma"], 4_000),
    ];
    let block = prepare(&base, &pool, bids.clone());
    assert_eq!(block.len(), 1 + 2 + 2, "commitments, two bids, two txs");
    assert_eq!(block[1], Bytes::from(bids[0].encode_item()));
    assert_eq!(block[2], Bytes::from(bids[1].encode_item()));
    assert_eq!(&block[3..], &pending[..]);

    let checked = proposal::process(exec(&base), &cache(), CHAIN, &block).unwrap();
    let batches = checked.batches().clone();
    let alpha = &batches[&RollupId::from_name("alpha")];
    assert_eq!(
        alpha,
        &vec![
            b"alpha:bundle-1".to_vec(),
            b"bundle-2".to_vec(),
            b"alice-0".to_vec()
        ]
    );
    let beta = &batches[&RollupId::from_name("beta")];
    assert_eq!(beta[..2], [b"beta:bundle-1".to_vec(), b"bundle-2".to_vec()]);
    assert_eq!(beta[2], b"alice-1".to_vec());
    assert_eq!(
        batches[&RollupId::from_name("gamma")].len(),
        2,
        "a two-rollup bid lands in both batches"
    );
    assert_eq!(
        BlockCommitments::decode(&block[0]).unwrap(),
        BlockCommitments::compute(&batches)
    );

    // Settlement: builders debited, the reward pool credited with the
    // amounts (the transactions' fees join it at the end of the block).
    let pool_before = crate::fees::pool(&base).unwrap();
    assert_eq!(
        checked.delta.account(&winner.address()).unwrap().balance,
        995_000
    );
    assert_eq!(
        checked.delta.account(&multi.address()).unwrap().balance,
        996_000
    );
    assert_eq!(
        crate::fees::pool(&checked.delta).unwrap(),
        pool_before + 9_000
    );
    let finished = checked.finish().unwrap();
    let bid_results: Vec<_> = finished
        .results
        .iter()
        .filter(|r| matches!(r, ItemResult::Bid { outcome: Ok(_), .. }))
        .collect();
    assert_eq!(bid_results.len(), 2);
}

#[test]
fn the_proposer_skips_conflicting_unfunded_and_stale_bids() {
    let (rich, poor, other) = (builder("rich"), builder("poor"), builder("other"));
    let base = state(&[(&rich, 1_000_000), (&poor, 100), (&other, 1_000_000)]);
    let mut stale = bid_of(&other, &["delta"], 900);
    stale.target_height = HEIGHT - 1;
    let bids = vec![
        signed(&rich, &["alpha"], 5_000),
        signed(&other, &["alpha", "beta"], 4_000), // conflicts with the first
        signed(&poor, &["gamma"], 3_000),          // cannot pay
        stale.sign(&other),                        // another height
    ];
    let block = prepare(&base, &pool_of(&base, &[]), bids.clone());
    assert_eq!(block.len(), 2, "only the first bid: {}", block.len());
    assert_eq!(block[1], Bytes::from(bids[0].encode_item()));
    assert!(proposal::process(exec(&base), &cache(), CHAIN, &block).is_ok());
}

#[test]
fn every_broken_bid_class_is_refused_with_its_own_reason() {
    let (good, poor) = (builder("good"), builder("poor"));
    let base = state(&[(&good, 1_000_000), (&poor, 10)]);
    type Breaking = fn(&mut Bid);
    let cases: Vec<(Breaking, &str)> = vec![
        (|b| b.chain_id = "other-chain".into(), "wrong_chain"),
        (|b| b.target_height = HEIGHT + 1, "wrong_height"),
        (|b| b.target_height = HEIGHT - 1, "wrong_height"),
        (
            |b| b.parent_hash = weft_core::sha256(b"fork"),
            "wrong_parent",
        ),
        (|b| b.amount = 0, "zero_amount"),
        (|b| b.amount = 5, "below_reserve"),
        (|b| b.bundles.clear(), "structure"),
    ];
    for (breaking, code) in cases {
        let mut bid = bid_of(&good, &["alpha"], 5_000);
        breaking(&mut bid);
        let block = block_with_bids(&base, &[bid.sign(&good)]);
        assert_eq!(rejection(&base, &block).code(), code);
    }
    // Forged: the right body under another key's signature.
    let forged = bid_of(&good, &["alpha"], 5_000).sign(&builder("thief"));
    assert_eq!(
        rejection(&base, &block_with_bids(&base, &[forged])).code(),
        "bad_signature"
    );
    // Unfunded: correctly signed, but the builder holds 10.
    let unfunded = signed(&poor, &["alpha"], 5_000);
    assert_eq!(
        rejection(&base, &block_with_bids(&base, &[unfunded])).code(),
        "unfunded"
    );
    // Replayed: the same bid twice in one block conflicts with itself.
    let once = signed(&good, &["alpha"], 5_000);
    assert_eq!(
        rejection(&base, &block_with_bids(&base, &[once.clone(), once])).code(),
        "conflict"
    );
    // Malformed: the magic, then garbage.
    let mut block = block_with_bids(&base, &[]);
    block.push(Bytes::from_static(b"WFTBgarbage"));
    assert_eq!(rejection(&base, &block).code(), "malformed");
}

#[test]
fn a_bid_from_an_earlier_block_is_refused_in_the_next() {
    let key = builder("replayer");
    let mut base = state(&[(&key, 1_000_000)]);
    let bid = signed(&key, &["alpha"], 5_000);
    let block = block_with_bids(&base, std::slice::from_ref(&bid));
    assert!(proposal::process(exec(&base), &cache(), CHAIN, &block).is_ok());
    // The chain moves on: block 7 is finalized with its own hash.
    super::record_block_hash(&mut base, weft_core::sha256(b"block 7")).unwrap();
    let at_8 = |base| {
        BlockExecution::new(
            base,
            crate::app::standard_components(0),
            BlockContext::at_height(HEIGHT + 1),
        )
        .unwrap()
    };
    match proposal::process(at_8(&base), &cache(), CHAIN, &block) {
        Err(ProposalError::Bid { rejection, .. }) => assert_eq!(rejection.code(), "wrong_height"),
        other => panic!("replayed bid not refused: {:?}", other.err()),
    }
}

#[test]
fn bids_must_come_right_after_the_commitments() {
    let (key, user) = (builder("b"), builder("u"));
    let base = state(&[(&key, 1_000_000), (&user, 1_000_000)]);
    let bid = signed(&key, &["alpha"], 5_000);
    let tx = data_tx(&user, 0, "alpha", b"u0");
    // The transaction first, the bid after it: the bid would not lead.
    let mut e = exec(&base);
    e.apply(&cache().check_stateless(&tx, CHAIN).unwrap())
        .unwrap();
    e.place_unchecked_bid(&bid);
    let block = vec![
        Bytes::from(e.commitments().encode()),
        tx,
        Bytes::from(bid.encode_item()),
    ];
    assert!(matches!(
        proposal::process(exec(&base), &cache(), CHAIN, &block),
        Err(ProposalError::Tx { index: 2, .. })
    ));
}

#[test]
fn a_chain_without_an_auction_refuses_bids_and_hashes_as_before() {
    let key = builder("b");
    let params = ChainParams::default();
    let mut base = crate::test_support::state(CHAIN, params, &[(&key, 1_000_000)]);
    super::record_block_hash(&mut base, parent()).unwrap();
    assert_eq!(super::parent_hash(&base).unwrap(), None, "nothing written");
    let block = block_with_bids(&base, &[signed(&key, &["alpha"], 5_000)]);
    assert_eq!(rejection(&base, &block), BidRejection::Disabled);
}

#[test]
fn the_block_bid_count_is_capped() {
    let keys: Vec<SigningKey> = (0..3).map(|i| builder(&format!("b{i}"))).collect();
    let mut base = state(&keys.iter().map(|k| (k, 1_000_000)).collect::<Vec<_>>());
    base.put_component_params(&AuctionParams {
        enabled: true,
        max_bids_per_block: 2,
    });
    let bids: Vec<SignedBid> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| signed(k, &[&format!("r{i}")], 5_000))
        .collect();
    assert_eq!(
        rejection(&base, &block_with_bids(&base, &bids)),
        BidRejection::TooMany(2)
    );
    assert_eq!(prepare(&base, &pool_of(&base, &[]), bids).len(), 1 + 2);
}

#[test]
fn a_decided_block_with_a_bad_bid_records_it_and_executes_the_rest() {
    let (key, user) = (builder("b"), builder("u"));
    let base = state(&[(&key, 1_000_000), (&user, 1_000_000)]);
    let forged = bid_of(&key, &["alpha"], 5_000).sign(&builder("thief"));
    let good = signed(&key, &["beta"], 5_000);
    let block = vec![
        Bytes::from(BlockCommitments::compute(&Default::default()).encode()),
        Bytes::from(forged.encode_item()),
        Bytes::from(good.encode_item()),
        data_tx(&user, 0, "alpha", b"u0"),
    ];
    let done = proposal::execute_decided(exec(&base), &cache(), CHAIN, &block)
        .unwrap()
        .finish()
        .unwrap();
    assert!(matches!(
        &done.results[1],
        ItemResult::Bid {
            outcome: Err(BidRejection::BadSignature),
            ..
        }
    ));
    assert!(matches!(
        &done.results[2],
        ItemResult::Bid { outcome: Ok(_), .. }
    ));
    assert!(matches!(
        &done.results[3],
        ItemResult::Tx { outcome: Ok(_), .. }
    ));
    assert_eq!(
        done.batches[&RollupId::from_name("alpha")],
        vec![b"u0".to_vec()]
    );
}

#[test]
fn merging_relays_takes_the_best_non_conflicting_bids_whatever_the_order() {
    let (a, b, c) = (builder("a"), builder("b"), builder("c"));
    let high = signed(&a, &["alpha"], 9_000);
    let multi = signed(&b, &["alpha", "beta"], 8_000);
    let low = signed(&c, &["beta"], 1_000);
    let one = merge(vec![low.clone(), multi.clone(), high.clone(), high.clone()]);
    let two = merge(vec![high.clone(), low.clone(), multi]);
    assert_eq!(one, vec![high.clone(), low.clone()]);
    assert_eq!(one, two);
}

#[test]
fn storage_keys_are_pinned() {
    // A change here is a breaking change of the state layout.
    assert_eq!(super::keys::PARAMS, "auction/params");
    assert_eq!(super::keys::PARENT_HASH, "auction/parent_hash");
}
