//! Inclusion lists through the real app and storage, without CometBFT:
//! four validators whose keys sign their extensions, a proposer that must
//! carry them, and nodes with different mempools that must agree.

use bytes::Bytes;
use proptest::prelude::*;
use tendermint::{
    abci::{
        request::CheckTxKind,
        response::ProcessProposal,
        types::{BlockSignatureInfo, CommitInfo, ExtendedCommitInfo, ExtendedVoteInfo, VoteInfo},
    },
    account,
    block::BlockIdFlag,
    v0_38::abci::{request, response as resp, Request, Response},
    Time,
};
use weft_core::{
    inclusion::{vote_extension_sign_bytes, InclusionList, ListedCommit, ListedVote},
    Action, GenesisAccount, GenesisAppState, InclusionParams, SignedTransaction, SigningKey,
    Transaction,
};

use crate::{
    app::{validator_update, App, AppConfig},
    storage::Storage,
    test_support::consensus_params,
};

const CHAIN: &str = "weft-inclusion-test";
const VALIDATORS: [&str; 4] = ["val-0", "val-1", "val-2", "val-3"];
const POWER: u64 = 10;

fn val_key(i: usize) -> SigningKey {
    SigningKey::from_seed(VALIDATORS[i])
}

fn val_addr(i: usize) -> [u8; 20] {
    weft_core::inclusion::validator_address(&val_key(i).public_key().0)
}

fn user(i: u32) -> SigningKey {
    SigningKey::from_seed(&format!("user-{i}"))
}

struct Node {
    app: App,
    _dir: tempfile::TempDir,
}

fn node(censor: Option<&SigningKey>, params: Option<InclusionParams>) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let config = AppConfig {
        unsafe_test_censor: censor.map(|k| k.address()),
        ..AppConfig::default()
    };
    let mut app = App::new(Storage::open(dir.path()).unwrap(), config).unwrap();
    let genesis = GenesisAppState {
        accounts: (0..8)
            .map(|i| GenesisAccount {
                address: user(i).address(),
                balance: 1_000_000_000,
            })
            .collect(),
        inclusion: params,
        // Bids on too, so the interplay with the auction is tested on the
        // same chains (no bid is proposed unless a test leaves one).
        auction: Some(weft_core::AuctionParams::default()),
        ..Default::default()
    };
    let mut consensus = consensus_params();
    consensus.abci.vote_extensions_enable_height = Some(1u32.into());
    let validators = (0..4)
        .map(|i| validator_update(&val_key(i).public_key().0, POWER).unwrap())
        .collect();
    let r = app.handle(Request::InitChain(request::InitChain {
        time: Time::from_unix_timestamp(1_700_000_000, 0).unwrap(),
        chain_id: CHAIN.into(),
        consensus_params: consensus,
        validators,
        app_state_bytes: serde_json::to_vec(&genesis).unwrap().into(),
        initial_height: 1u32.into(),
    }));
    assert!(matches!(r, Response::InitChain(_)));
    Node { app, _dir: dir }
}

fn on() -> Option<InclusionParams> {
    Some(InclusionParams::default())
}

fn tx(from: &SigningKey, nonce: u64) -> Bytes {
    let signed: SignedTransaction = Transaction {
        chain_id: CHAIN.into(),
        nonce,
        actions: vec![Action::Transfer {
            to: user(7).address(),
            amount: 1,
        }],
    }
    .sign(from);
    Bytes::from(signed.encode())
}

fn check(app: &mut App, bytes: &Bytes) -> resp::CheckTx {
    match app.handle(Request::CheckTx(request::CheckTx {
        tx: bytes.clone(),
        kind: CheckTxKind::New,
    })) {
        Response::CheckTx(r) => r,
        other => panic!("{other:?}"),
    }
}

fn time(height: u32) -> Time {
    Time::from_unix_timestamp(1_700_000_000 + i64::from(height), 0).unwrap()
}

/// The extended commit of `height` as CometBFT hands it to the proposer:
/// validator `i` extends with `lists[i]` (None: it precommitted nil).
fn extended_commit(height: u64, lists: &[Option<Vec<u8>>]) -> ExtendedCommitInfo {
    ExtendedCommitInfo {
        round: 0u16.into(),
        votes: lists
            .iter()
            .enumerate()
            .map(|(i, ext)| ExtendedVoteInfo {
                validator: tendermint::abci::types::Validator {
                    address: val_addr(i),
                    power: POWER.try_into().unwrap(),
                },
                sig_info: BlockSignatureInfo::Flag(if ext.is_some() {
                    BlockIdFlag::Commit
                } else {
                    BlockIdFlag::Nil
                }),
                vote_extension: ext.clone().unwrap_or_default().into(),
                extension_signature: ext.as_ref().map(|e| {
                    let msg = vote_extension_sign_bytes(CHAIN, height, 0, e);
                    tendermint::Signature::try_from(val_key(i).sign(&msg).0.as_slice()).unwrap()
                }),
            })
            .collect(),
    }
}

/// The same commit as ProcessProposal and FinalizeBlock see it.
fn commit_info(c: &ExtendedCommitInfo) -> CommitInfo {
    CommitInfo {
        round: c.round,
        votes: c
            .votes
            .iter()
            .map(|v| VoteInfo {
                validator: v.validator.clone(),
                sig_info: v.sig_info,
            })
            .collect(),
    }
}

fn prepare(app: &mut App, height: u32, last: Option<&ExtendedCommitInfo>) -> Vec<Bytes> {
    match app.handle(Request::PrepareProposal(request::PrepareProposal {
        max_tx_bytes: 1 << 20,
        txs: vec![],
        local_last_commit: last.cloned(),
        misbehavior: vec![],
        height: height.into(),
        time: time(height),
        next_validators_hash: Default::default(),
        proposer_address: account::Id::new(val_addr(0)),
    })) {
        Response::PrepareProposal(r) => r.txs,
        other => panic!("{other:?}"),
    }
}

fn process(
    app: &mut App,
    height: u32,
    txs: &[Bytes],
    last: Option<&ExtendedCommitInfo>,
) -> ProcessProposal {
    match app.handle(Request::ProcessProposal(request::ProcessProposal {
        txs: txs.to_vec(),
        proposed_last_commit: last.map(commit_info),
        misbehavior: vec![],
        hash: tendermint::Hash::Sha256([height as u8; 32]),
        height: height.into(),
        time: time(height),
        next_validators_hash: Default::default(),
        proposer_address: account::Id::new(val_addr(0)),
    })) {
        Response::ProcessProposal(r) => r,
        other => panic!("{other:?}"),
    }
}

fn finalize(app: &mut App, height: u32, txs: &[Bytes], last: Option<&ExtendedCommitInfo>) {
    let r = app.handle(Request::FinalizeBlock(request::FinalizeBlock {
        txs: txs.to_vec(),
        decided_last_commit: last.map(commit_info).unwrap_or(CommitInfo {
            round: 0u16.into(),
            votes: vec![],
        }),
        misbehavior: vec![],
        hash: tendermint::Hash::Sha256([height as u8; 32]),
        height: height.into(),
        time: time(height),
        next_validators_hash: Default::default(),
        proposer_address: account::Id::new(val_addr(0)),
    }));
    assert!(matches!(r, Response::FinalizeBlock(_)));
    assert!(matches!(app.handle(Request::Commit), Response::Commit(_)));
}

fn extend(app: &mut App, height: u32, block: &[Bytes]) -> Vec<u8> {
    match app.handle(Request::ExtendVote(request::ExtendVote {
        hash: tendermint::Hash::Sha256([height as u8; 32]),
        height: height.into(),
        time: time(height),
        txs: block.to_vec(),
        proposed_last_commit: None,
        misbehavior: vec![],
        next_validators_hash: Default::default(),
        proposer_address: account::Id::new(val_addr(0)),
    })) {
        Response::ExtendVote(r) => r.vote_extension.to_vec(),
        other => panic!("{other:?}"),
    }
}

fn verify_ext(app: &mut App, ext: &[u8]) -> bool {
    match app.handle(Request::VerifyVoteExtension(request::VerifyVoteExtension {
        hash: tendermint::Hash::Sha256([1; 32]),
        validator_address: account::Id::new(val_addr(1)),
        height: 1u32.into(),
        vote_extension: ext.to_vec().into(),
    })) {
        Response::VerifyVoteExtension(r) => r == resp::VerifyVoteExtension::Accept,
        other => panic!("{other:?}"),
    }
}

/// Every node runs height 1 (no list owed yet): an empty block.
fn height_one(nodes: &mut [&mut Node]) -> Vec<Bytes> {
    let block = prepare(&mut nodes[0].app, 1, None);
    for n in nodes.iter_mut() {
        assert_eq!(
            process(&mut n.app, 1, &block, None),
            ProcessProposal::Accept
        );
        finalize(&mut n.app, 1, &block, None);
    }
    block
}

fn list(txs: &[&Bytes]) -> Vec<u8> {
    InclusionList::new(txs.iter().map(|t| t.to_vec()).collect()).encode()
}

#[test]
fn sign_bytes_are_cometbft_canonical_vote_extension_bytes() {
    use tendermint_proto::v0_38::types::CanonicalVoteExtension;
    for (chain, height, round, ext) in [
        ("weft", 1u64, 0u32, b"abc".to_vec()),
        ("a-longer-chain-id", 123_456_789, 3, vec![0xff; 300]),
        ("c", 7, 0, vec![]),
    ] {
        let canonical = CanonicalVoteExtension {
            extension: ext.clone(),
            height: height as i64,
            round: i64::from(round),
            chain_id: chain.into(),
        };
        let expected = prost::Message::encode_length_delimited_to_vec(&canonical);
        assert_eq!(
            vote_extension_sign_bytes(chain, height, round, &ext),
            expected
        );
    }
}

#[test]
fn extend_vote_lists_what_waited_and_not_what_is_in_the_block() {
    let delay_two = InclusionParams {
        inclusion_delay_blocks: 2,
        ..InclusionParams::default()
    };
    let mut n = node(None, on());
    let mut slow = node(None, Some(delay_two));
    height_one(&mut [&mut n, &mut slow]);
    // Block 2 is built before anything arrives, so it is empty.
    let c1 = extended_commit(1, &[Some(vec![]), Some(vec![]), Some(vec![]), None]);
    let block = prepare(&mut n.app, 2, Some(&c1));
    assert!(ListedCommit::is_item(&block[1]));
    assert_eq!(block.len(), 2);
    // Admitted while height 1 is the committed one.
    let a0 = tx(&user(0), 0);
    let a1 = tx(&user(0), 1);
    let b0 = tx(&user(1), 0);
    for t in [&a0, &a1, &b0] {
        assert_eq!(check(&mut n.app, t).code.value(), 0);
        assert_eq!(check(&mut slow.app, t).code.value(), 0);
    }
    let listed = |ext: Vec<u8>| InclusionList::decode(&ext, 1 << 20).unwrap().txs;
    // Block 2 left them out: with a delay of 1 they are listed for block
    // 3, oldest first and in nonce order; with 2 they wait one more block.
    assert_eq!(
        listed(extend(&mut n.app, 2, &block)),
        vec![a0.to_vec(), a1.to_vec(), b0.to_vec()]
    );
    assert!(listed(extend(&mut slow.app, 2, &block)).is_empty());
    // What the block being voted on carries is not listed, nor what
    // follows it in nonce order is held back by it.
    assert_eq!(
        listed(extend(
            &mut n.app,
            2,
            &[block[0].clone(), block[1].clone(), a0.clone()]
        )),
        vec![a1.to_vec(), b0.to_vec()]
    );
    for node in [&mut n, &mut slow] {
        assert_eq!(
            process(&mut node.app, 2, &block, Some(&c1)),
            ProcessProposal::Accept
        );
        finalize(&mut node.app, 2, &block, Some(&c1));
    }
    // Admitted while height 2 is the committed one.
    let c0 = tx(&user(2), 0);
    assert_eq!(check(&mut slow.app, &c0).code.value(), 0);
    assert_eq!(
        listed(extend(&mut slow.app, 3, &[])),
        vec![a0.to_vec(), a1.to_vec(), b0.to_vec()]
    );
}

#[test]
fn the_proposer_carries_the_lists_and_appends_what_it_did_not_have() {
    let mut proposer = node(None, on());
    let mut other = node(None, on());
    height_one(&mut [&mut proposer, &mut other]);
    // Only `other` (a validator) ever saw these.
    let x = tx(&user(3), 0);
    let bad_nonce = tx(&user(4), 5);
    let garbage = Bytes::from_static(b"not a transaction");
    let ext = list(&[&x, &bad_nonce, &garbage]);
    let c = extended_commit(
        1,
        &[
            Some(ext.clone()),
            Some(ext.clone()),
            Some(ext),
            Some(vec![]),
        ],
    );
    let block = prepare(&mut proposer.app, 2, Some(&c));
    assert!(ListedCommit::is_item(&block[1]));
    assert!(block.contains(&x), "the listed transaction is appended");
    assert!(!block.contains(&bad_nonce) && !block.contains(&garbage));
    // Everyone accepts: the two left out are excused (invalid).
    assert_eq!(
        process(&mut other.app, 2, &block, Some(&c)),
        ProcessProposal::Accept
    );
    finalize(&mut other.app, 2, &block, Some(&c));
    // The tx index says it was listed, and by how much power: three of
    // the four validators (the fourth extended an empty list).
    let status = |n: &Node| {
        let s = crate::mempool::status(n.app.storage(), &n.app.mempool(), &weft_core::sha256(&x))
            .unwrap();
        serde_json::to_value(&s).unwrap()
    };
    let json = status(&other);
    assert_eq!(json["status"], "included");
    assert_eq!(json["listed"]["height"], 1);
    assert_eq!(json["listed"]["power"], 30);
    assert_eq!(json["listed"]["total_power"], 40);
    // A decided block this node never processed records the same.
    finalize(&mut proposer.app, 2, &block, Some(&c));
    assert_eq!(status(&proposer), json);
}

#[test]
fn a_censoring_proposal_is_refused_and_without_lists_it_is_not() {
    let x = tx(&user(3), 0);
    let ext = list(&[&x]);
    let c = extended_commit(1, &[Some(ext.clone()), Some(ext.clone()), Some(ext), None]);
    for (params, refused) in [(on(), true), (None, false)] {
        let mut censor = node(Some(&user(3)), params.clone());
        let mut honest = node(None, params.clone());
        height_one(&mut [&mut censor, &mut honest]);
        assert_eq!(check(&mut censor.app, &x).code.value(), 0);
        let last = params.is_some().then_some(&c);
        let block = prepare(&mut censor.app, 2, last);
        assert!(!block.contains(&x), "the censor leaves it out");
        let verdict = process(&mut honest.app, 2, &block, last);
        assert_eq!(verdict == ProcessProposal::Reject, refused, "{params:?}");
    }
}

#[test]
fn a_forged_foreign_or_short_listed_commit_is_refused() {
    let mut proposer = node(None, on());
    let mut other = node(None, on());
    height_one(&mut [&mut proposer, &mut other]);
    let x = tx(&user(3), 0);
    let ext = list(&[&x]);
    let c = extended_commit(
        1,
        &[
            Some(ext.clone()),
            Some(ext.clone()),
            Some(ext.clone()),
            None,
        ],
    );
    let block = prepare(&mut proposer.app, 2, Some(&c));
    let item = ListedCommit::decode(&block[1]).unwrap();
    let with_item = |item: &ListedCommit| {
        let mut b = block.clone();
        b[1] = Bytes::from(item.encode());
        b
    };
    // A forged signature.
    let mut forged = item.clone();
    forged.votes[0].signature[0] ^= 1;
    // A vote by a non-validator (signed with its own key).
    let mut foreign = item.clone();
    let outsider = SigningKey::from_seed("outsider");
    let addr = weft_core::inclusion::validator_address(&outsider.public_key().0);
    foreign.votes.push(ListedVote {
        validator: addr,
        extension: ext.clone(),
        signature: outsider
            .sign(&vote_extension_sign_bytes(CHAIN, 1, 0, &ext))
            .0
            .to_vec(),
    });
    foreign.votes.sort_by_key(|v| v.validator);
    // Two of four: not more than two-thirds.
    let mut short = item.clone();
    short.votes.truncate(2);
    // Another height's extensions.
    let mut stale = item.clone();
    stale.height = 0;
    for (what, b) in [
        ("forged", with_item(&forged)),
        ("foreign", with_item(&foreign)),
        ("short", with_item(&short)),
        ("stale", with_item(&stale)),
        ("missing", {
            let mut b = block.clone();
            b.remove(1);
            b
        }),
    ] {
        assert_eq!(
            process(&mut other.app, 2, &b, Some(&c)),
            ProcessProposal::Reject,
            "{what}"
        );
    }
    assert_eq!(
        process(&mut other.app, 2, &block, Some(&c)),
        ProcessProposal::Accept
    );
}

#[test]
fn verify_vote_extension_refuses_only_form_and_bound() {
    let mut n = node(None, on());
    assert!(verify_ext(&mut n.app, &[]));
    assert!(verify_ext(&mut n.app, &list(&[&tx(&user(0), 9)])));
    // Garbage transactions inside a well-formed list are fine (excused
    // later); a list that is not a list, or too large, is not.
    assert!(verify_ext(
        &mut n.app,
        &list(&[&Bytes::from_static(b"junk")])
    ));
    assert!(!verify_ext(&mut n.app, b"garbage"));
    let big = Bytes::from(vec![1u8; 20_000]);
    assert!(!verify_ext(&mut n.app, &list(&[&big])));
    // With lists off, only the empty extension is expected.
    let mut off = node(None, None);
    assert!(verify_ext(&mut off.app, &[]));
    assert!(!verify_ext(&mut off.app, &list(&[&tx(&user(0), 0)])));
}

#[test]
fn a_validator_extending_with_garbage_does_not_stop_blocks() {
    let mut proposer = node(None, on());
    let mut other = node(None, on());
    height_one(&mut [&mut proposer, &mut other]);
    // Validator 3's garbage never reaches the commit in CometBFT (its
    // VerifyVoteExtension refuses it); if a proposer is handed one, it
    // leaves it out and still carries more than two-thirds.
    let good = list(&[]);
    let c = extended_commit(
        1,
        &[
            Some(good.clone()),
            Some(good.clone()),
            Some(good),
            Some(b"garbage".to_vec()),
        ],
    );
    let block = prepare(&mut proposer.app, 2, Some(&c));
    let item = ListedCommit::decode(&block[1]).unwrap();
    assert_eq!(item.votes.len(), 3);
    assert_eq!(
        process(&mut other.app, 2, &block, Some(&c)),
        ProcessProposal::Accept
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    /// Nodes with different mempools reach the same verdict on the same
    /// proposal, and an honest proposer's block is always accepted.
    #[test]
    fn verdicts_do_not_depend_on_the_mempool(
        listed_nonces in proptest::collection::vec((0u32..4, 0u64..3), 0..8),
        own in proptest::collection::vec((0u32..4, 0u64..3), 0..6),
        seen_by_other in proptest::collection::vec((0u32..4, 0u64..3), 0..6),
        censored in 0u32..4,
    ) {
        let mut proposer = node(None, on());
        let mut censor = node(Some(&user(censored)), on());
        let mut a = node(None, on());
        let mut b = node(None, on());
        height_one(&mut [&mut proposer, &mut censor, &mut a, &mut b]);
        // The censored account's transactions reach proposers only
        // through the lists, so the honest block carries one of them
        // exactly when the rule owes it.
        for (u, n) in own.iter().filter(|(u, _)| *u != censored) {
            check(&mut proposer.app, &tx(&user(*u), *n));
            check(&mut censor.app, &tx(&user(*u), *n));
        }
        for (u, n) in &seen_by_other {
            check(&mut a.app, &tx(&user(*u), *n));
        }
        let txs: Vec<Bytes> = listed_nonces.iter().map(|(u, n)| tx(&user(*u), *n)).collect();
        let refs: Vec<&Bytes> = txs.iter().collect();
        let ext = list(&refs);
        let c = extended_commit(1, &[Some(ext.clone()), Some(ext.clone()), Some(ext), None]);
        let block = prepare(&mut proposer.app, 2, Some(&c));
        prop_assert_eq!(process(&mut a.app, 2, &block, Some(&c)), ProcessProposal::Accept);
        prop_assert_eq!(process(&mut b.app, 2, &block, Some(&c)), ProcessProposal::Accept);
        // A censoring proposal: refused or accepted alike by both, and
        // refused exactly when a listed tx of the censored account would
        // have executed.
        let censored_block = prepare(&mut censor.app, 2, Some(&c));
        let va = process(&mut a.app, 2, &censored_block, Some(&c));
        let vb = process(&mut b.app, 2, &censored_block, Some(&c));
        prop_assert_eq!(va, vb);
        let owed = block.iter().any(|t| {
            SignedTransaction::decode(t).is_ok_and(|s| s.public_key.address() == user(censored).address())
                && txs.contains(t)
        });
        prop_assert_eq!(va == ProcessProposal::Reject, owed);
    }
}

/// A bid buys order, never exclusion: a proposer carrying a winning bid
/// for the rollup must still carry what the validators listed, after its
/// own choice; leaving a listed transaction out is refused whatever bids
/// the block holds.
#[test]
fn a_bid_leads_but_never_excuses_leaving_a_listed_transaction_out() {
    let x = tx(&user(3), 0);
    let ext = list(&[&x]);
    let c = extended_commit(1, &[Some(ext.clone()), Some(ext.clone()), Some(ext), None]);
    let builder = user(4);
    // Height 1 was finalized with hash [1; 32] (the fixture's hashes).
    let bid = weft_core::Bid {
        chain_id: CHAIN.into(),
        target_height: 2,
        parent_hash: weft_core::Hash([1; 32]),
        bundles: vec![weft_core::Bundle {
            rollup_id: weft_core::RollupId::from_name("alpha"),
            payloads: vec![b"builder's first".to_vec()],
        }],
        amount: 50_000,
        builder: builder.public_key(),
    }
    .sign(&builder);
    let item = Bytes::from(bid.encode_item());

    let mut censor = node(Some(&user(3)), on());
    let mut fair = node(None, on());
    let mut judge = node(None, on());
    height_one(&mut [&mut censor, &mut fair, &mut judge]);
    for n in [&mut censor, &mut fair] {
        assert_eq!(check(&mut n.app, &x).code.value(), 0);
        n.app.prefetched().put(2, vec![bid.clone()]);
    }

    // The fair proposer: the bid right after the commitments, the listed
    // commit, then the listed transaction.
    let block = prepare(&mut fair.app, 2, Some(&c));
    assert_eq!(block[1], item, "the bid leads");
    assert!(ListedCommit::is_item(&block[2]));
    assert_eq!(block.last(), Some(&x), "the listed tx is still carried");
    assert_eq!(
        process(&mut judge.app, 2, &block, Some(&c)),
        ProcessProposal::Accept
    );

    // The censoring proposer carries the same bid but drops the listed
    // transaction: refused.
    let block = prepare(&mut censor.app, 2, Some(&c));
    assert_eq!(block[1], item);
    assert!(!block.contains(&x));
    assert_eq!(
        process(&mut judge.app, 2, &block, Some(&c)),
        ProcessProposal::Reject
    );
}
