//! The whole ABCI flow against the real app and storage, without CometBFT:
//! genesis, CheckTx codes, blocks, commit, restart and queries.

use bytes::Bytes;
use tendermint::{
    abci::{request::CheckTxKind, types::CommitInfo},
    account,
    v0_38::abci::{request, Request, Response},
    Time,
};
use weft_core::{
    Action, ChainParams, GenesisAccount, GenesisAppState, RollupBatchProof, RollupId,
    SignedTransaction, SigningKey, Transaction, TxCode,
};

use super::*;
use crate::test_support::consensus_params;

const CHAIN: &str = "weft-app-test";

fn init(app: &mut App, funded: &[&SigningKey]) -> Hash {
    let genesis = GenesisAppState {
        inclusion: None,
        auction: None,
        accounts: funded
            .iter()
            .map(|k| GenesisAccount {
                address: k.address(),
                balance: 1_000_000_000,
            })
            .collect(),
        params: Default::default(),
        staking: None,
        governance: None,
    };
    let r = app.handle(Request::InitChain(request::InitChain {
        time: Time::from_unix_timestamp(1_700_000_000, 0).unwrap(),
        chain_id: CHAIN.into(),
        consensus_params: consensus_params(),
        validators: vec![],
        app_state_bytes: serde_json::to_vec(&genesis).unwrap().into(),
        initial_height: 1u32.into(),
    }));
    match r {
        Response::InitChain(r) => Hash(r.app_hash.as_bytes().try_into().unwrap()),
        other => panic!("{other:?}"),
    }
}

fn check(app: &mut App, tx: &[u8]) -> resp::CheckTx {
    match app.handle(Request::CheckTx(request::CheckTx {
        tx: Bytes::copy_from_slice(tx),
        kind: CheckTxKind::New,
    })) {
        Response::CheckTx(r) => r,
        other => panic!("{other:?}"),
    }
}

/// Runs one height the way CometBFT does, after CheckTx of every offered
/// tx (CometBFT checks everything before it can be proposed).
fn run_block(app: &mut App, height: u32, offered: Vec<Bytes>) -> (Vec<Bytes>, resp::FinalizeBlock) {
    for tx in &offered {
        let r = check(app, tx);
        let held = r.code.value() == TxCode::Duplicate.value();
        assert!(
            r.code.is_ok() || held,
            "test tx refused by CheckTx: {}",
            r.log
        );
    }
    crate::test_support::run_block(app, height, offered)
}

fn signed(key: &SigningKey, chain: &str, nonce: u64, actions: Vec<Action>) -> Vec<u8> {
    Transaction {
        chain_id: chain.into(),
        nonce,
        actions,
    }
    .sign(key)
    .encode()
}

fn data(rollup: &str, bytes: &[u8]) -> Action {
    Action::SubmitRollupData {
        rollup_id: RollupId::from_name(rollup),
        data: bytes.to_vec(),
    }
}

fn query(app: &mut App, path: &str) -> resp::Query {
    match app.handle(Request::Query(request::Query {
        data: Bytes::new(),
        path: path.into(),
        height: 0u32.into(),
        prove: false,
    })) {
        Response::Query(q) => q,
        other => panic!("{other:?}"),
    }
}

#[test]
fn check_tx_gives_each_rejection_class_its_own_code() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = App::new(Storage::open(dir.path()).unwrap(), AppConfig::default()).unwrap();
    let alice = SigningKey::from_seed("alice");
    let broke = SigningKey::from_seed("broke");
    init(&mut app, &[&alice]);
    let bob = SigningKey::from_seed("bob").address();
    let transfer = || vec![Action::Transfer { to: bob, amount: 5 }];

    assert_eq!(
        check(&mut app, &signed(&alice, CHAIN, 0, transfer()))
            .code
            .value(),
        0
    );
    let mut bad = SignedTransaction::decode(&signed(&alice, CHAIN, 0, transfer())).unwrap();
    bad.signature.0[5] ^= 0x40;
    let cases: Vec<(Vec<u8>, TxCode)> = vec![
        (b"\xde\xad\xbe\xef garbage".to_vec(), TxCode::Malformed),
        (signed(&alice, CHAIN, 0, vec![]), TxCode::InvalidTransaction),
        (
            signed(&alice, "another-chain", 0, transfer()),
            TxCode::WrongChainId,
        ),
        (bad.encode(), TxCode::BadSignature),
        (
            signed(&alice, CHAIN, 1000, transfer()),
            TxCode::NonceTooFarAhead,
        ),
        (
            signed(&broke, CHAIN, 0, transfer()),
            TxCode::InsufficientFunds,
        ),
        (
            signed(&alice, CHAIN, 0, vec![data("r", &vec![1u8; 300 * 1024])]),
            TxCode::RollupDataTooLarge,
        ),
    ];
    for (tx, code) in cases {
        let r = check(&mut app, &tx);
        assert_eq!(r.code.value(), code.value(), "{code:?}: {}", r.log);
        assert!(!r.log.is_empty());
    }
    // After a block uses nonce 0, reusing it is its own class.
    run_block(
        &mut app,
        1,
        vec![signed(&alice, CHAIN, 0, transfer()).into()],
    );
    let r = check(&mut app, &signed(&alice, CHAIN, 0, transfer()));
    assert_eq!(
        r.code.value(),
        TxCode::NonceAlreadyUsed.value(),
        "{}",
        r.log
    );
}

#[test]
fn blocks_commit_survive_restart_and_serve_verified_batches() {
    let dir = tempfile::tempdir().unwrap();
    let alice = SigningKey::from_seed("alice");
    let bob = SigningKey::from_seed("bob");
    let (h1, h2);
    {
        let mut app = App::new(Storage::open(dir.path()).unwrap(), AppConfig::default()).unwrap();
        init(&mut app, &[&alice, &bob]);
        let (_, fin1) = run_block(
            &mut app,
            1,
            vec![
                signed(
                    &alice,
                    CHAIN,
                    0,
                    vec![data("alpha", b"a-0"), data("beta", b"b-0")],
                )
                .into(),
                signed(&bob, CHAIN, 0, vec![data("alpha", b"a-1")]).into(),
            ],
        );
        assert!(fin1.tx_results.iter().all(|r| r.code.is_ok()));
        assert_eq!(fin1.tx_results.len(), 3, "commitments item + 2 txs");
        h1 = fin1.app_hash.clone();
        let (_, fin2) = run_block(&mut app, 2, vec![]);
        h2 = fin2.app_hash;
        assert_ne!(h1, h2, "the height key changes every block");
    }
    // Restart: Info reports exactly the last commit.
    let mut app = App::new(Storage::open(dir.path()).unwrap(), AppConfig::default()).unwrap();
    let Response::Info(info) = app.handle(Request::Info(request::Info {
        version: String::new(),
        block_version: 0,
        p2p_version: 0,
        abci_version: String::new(),
    })) else {
        panic!()
    };
    assert_eq!(info.last_block_height.value(), 2);
    assert_eq!(info.last_block_app_hash, h2);

    let q = query(&mut app, &format!("account/{}", alice.address()));
    assert!(q.code.is_ok(), "{}", q.log);
    let v: serde_json::Value = serde_json::from_slice(&q.value).unwrap();
    assert_eq!(v["nonce"], 1);
    let fee = ChainParams::default().fee_for(6).unwrap();
    assert_eq!(v["balance"], (1_000_000_000u128 - fee).to_string());

    // The batch proof verifies against the data hash CometBFT would compute.
    let record = crate::rollups::state::block_record(&app.storage().read().unwrap(), 1)
        .unwrap()
        .unwrap();
    let data_hash = weft_core::merkle::root_from_leaf_hashes(
        &record
            .tx_hashes
            .iter()
            .map(|h| weft_core::merkle::leaf_hash(&h.0))
            .collect::<Vec<_>>(),
    );
    for (rollup, expect) in [
        ("alpha", vec![b"a-0".to_vec(), b"a-1".to_vec()]),
        ("beta", vec![b"b-0".to_vec()]),
        ("gamma", vec![]),
    ] {
        let id = RollupId::from_name(rollup);
        let q = query(&mut app, &format!("batch/{}/1", id.to_hex()));
        assert!(q.code.is_ok(), "{}", q.log);
        let proof: RollupBatchProof = serde_json::from_slice(&q.value).unwrap();
        assert_eq!(proof.items, expect);
        proof.verify(&data_hash, &id).unwrap();
    }
    assert!(!query(&mut app, "batch/zz/1").code.is_ok());
    assert!(!query(
        &mut app,
        &format!("batch/{}/99", RollupId::from_name("alpha").to_hex())
    )
    .code
    .is_ok());
    assert!(!query(&mut app, "nonsense").code.is_ok());
}

#[test]
fn app_hash_of_a_fixed_block_sequence_is_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = App::new(Storage::open(dir.path()).unwrap(), AppConfig::default()).unwrap();
    let alice = SigningKey::from_seed("alice");
    let genesis = init(&mut app, &[&alice]);
    let bob = SigningKey::from_seed("bob").address();
    let mut hashes = vec![format!("genesis {genesis}")];
    for h in 1..=3u32 {
        let nonce = u64::from(h) - 1;
        let tx = signed(
            &alice,
            CHAIN,
            nonce,
            vec![
                Action::Transfer { to: bob, amount: 7 },
                data("alpha", &[h as u8; 3]),
            ],
        );
        let (txs, fin) = run_block(&mut app, h, vec![tx.into()]);
        assert_eq!(txs.len(), 2, "block {h} holds the commitments and its tx");
        hashes.push(format!("{h} {}", hex::encode(fin.app_hash.as_bytes())));
    }
    // A change here is a consensus-breaking change: call it out in review.
    insta::assert_snapshot!(hashes.join("\n"));
}

#[test]
fn every_submitted_transaction_has_a_status() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = App::new(Storage::open(dir.path()).unwrap(), AppConfig::default()).unwrap();
    let alice = SigningKey::from_seed("alice");
    init(&mut app, &[&alice]);
    let status = |app: &mut App, tx: &[u8]| -> serde_json::Value {
        let q = query(app, &format!("tx/{}", weft_core::sha256(tx).to_hex()));
        assert!(q.code.is_ok(), "{}", q.log);
        serde_json::from_slice(&q.value).unwrap()
    };
    let t0 = signed(&alice, CHAIN, 0, vec![data("r", b"zero")]);
    let t2 = signed(&alice, CHAIN, 2, vec![data("r", b"two")]);
    let bad = signed(&alice, "elsewhere", 1, vec![data("r", b"x")]);
    assert_eq!(status(&mut app, &t0)["status"], "unknown");
    assert!(check(&mut app, &t0).code.is_ok());
    assert!(check(&mut app, &t2).code.is_ok());
    assert!(!check(&mut app, &bad).code.is_ok());
    assert_eq!(status(&mut app, &t0)["status"], "pending");
    let parked = status(&mut app, &t2);
    assert_eq!(
        (
            parked["status"].as_str(),
            parked["waiting_for_nonce"].as_u64()
        ),
        (Some("parked"), Some(1))
    );
    let rejected = status(&mut app, &bad);
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["code"], TxCode::WrongChainId.value());
    let (_, fin) = run_block(&mut app, 1, vec![]);
    assert_eq!(
        fin.tx_results.len(),
        2,
        "the pending tx was proposed from the mempool; the parked one waits"
    );
    let included = status(&mut app, &t0);
    assert_eq!(
        (
            included["status"].as_str(),
            included["height"].as_u64(),
            included["index"].as_u64()
        ),
        (Some("included"), Some(1), Some(1))
    );
    assert_eq!(status(&mut app, &t2)["status"], "parked");
    let t1 = signed(&alice, CHAIN, 1, vec![data("r", b"one")]);
    let (_, fin) = run_block(&mut app, 2, vec![t1.into()]);
    assert_eq!(
        fin.tx_results.len(),
        3,
        "filling the gap promotes nonce 2 into the same block"
    );
    assert_eq!(status(&mut app, &t2)["status"], "included");
}

#[test]
fn genesis_state_keys_and_values_are_pinned() {
    // Every key each component writes at genesis, with its encoding: a
    // change here moves state and changes every app hash after it.
    let alice = SigningKey::from_seed("alice");
    let state = crate::test_support::state(CHAIN, ChainParams::default(), &[(&alice, 1_000)]);
    let listing: Vec<String> = state
        .into_changes()
        .into_iter()
        .map(|(k, v)| format!("{k} {}", hex::encode(v.unwrap_or_default())))
        .collect();
    insta::assert_snapshot!(listing.join("\n"));
}

/// A component that writes everything its block context holds into state,
/// so an app hash differs if any hook saw a different context.
struct ContextRecorder;

impl crate::component::Component for ContextRecorder {
    fn name(&self) -> &'static str {
        "context_recorder"
    }

    fn begin_block(
        &self,
        state: &mut dyn crate::storage::StateWrite,
        ctx: &BlockContext,
    ) -> Result<(), StorageError> {
        state.put_raw("recorder/last".into(), format!("{ctx:?}").into_bytes());
        Ok(())
    }
}

fn recording_app(dir: &std::path::Path) -> App {
    let components = crate::component::Components::new(vec![
        std::sync::Arc::new(crate::chain::Chain),
        std::sync::Arc::new(crate::accounts::Accounts),
        std::sync::Arc::new(crate::fees::Fees),
        std::sync::Arc::new(crate::rollups::Rollups),
        std::sync::Arc::new(crate::mempool::TxIndex {
            retention_blocks: 1_000,
        }),
        std::sync::Arc::new(ContextRecorder),
    ]);
    App::with_components(
        Storage::open(dir).unwrap(),
        AppConfig::default(),
        components,
    )
    .unwrap()
}

fn decided(height: u32, txs: Vec<Bytes>) -> request::FinalizeBlock {
    use tendermint::abci::types::{
        BlockSignatureInfo, Misbehavior, MisbehaviorKind, Validator, VoteInfo,
    };
    let validator = |b: u8| Validator {
        address: [b; 20],
        power: 10u32.into(),
    };
    request::FinalizeBlock {
        txs,
        decided_last_commit: CommitInfo {
            round: 1u16.into(),
            votes: vec![
                VoteInfo {
                    validator: validator(1),
                    sig_info: BlockSignatureInfo::Flag(tendermint::block::BlockIdFlag::Commit),
                },
                VoteInfo {
                    validator: validator(2),
                    sig_info: BlockSignatureInfo::Flag(tendermint::block::BlockIdFlag::Absent),
                },
            ],
        },
        misbehavior: vec![Misbehavior {
            kind: MisbehaviorKind::DuplicateVote,
            validator: validator(3),
            height: 1u32.into(),
            time: Time::from_unix_timestamp(1_700_000_000, 0).unwrap(),
            total_voting_power: 30u32.into(),
        }],
        hash: tendermint::Hash::Sha256([0xd0 + height as u8; 32]),
        height: height.into(),
        time: Time::from_unix_timestamp(1_700_000_000 + i64::from(height), 500).unwrap(),
        next_validators_hash: Default::default(),
        proposer_address: account::Id::new([9; 20]),
    }
}

fn process_request(fin: &request::FinalizeBlock) -> request::ProcessProposal {
    request::ProcessProposal {
        txs: fin.txs.clone(),
        proposed_last_commit: Some(fin.decided_last_commit.clone()),
        misbehavior: fin.misbehavior.clone(),
        hash: fin.hash,
        height: fin.height,
        time: fin.time,
        next_validators_hash: fin.next_validators_hash,
        proposer_address: fin.proposer_address,
    }
}

fn finalize(app: &mut App, req: request::FinalizeBlock) -> resp::FinalizeBlock {
    let fin = match app.handle(Request::FinalizeBlock(req)) {
        Response::FinalizeBlock(r) => r,
        other => panic!("{other:?}"),
    };
    assert!(matches!(app.handle(Request::Commit), Response::Commit(_)));
    fin
}

fn results(fin: &resp::FinalizeBlock) -> Vec<(u32, usize)> {
    fin.tx_results
        .iter()
        .map(|r| (r.code.value(), r.events.len()))
        .collect()
}

#[test]
fn finalize_of_a_block_never_processed_sees_the_same_context_and_result() {
    let alice = SigningKey::from_seed("alice");
    let bob = SigningKey::from_seed("bob").address();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut processed = recording_app(dir_a.path());
    let mut unseen = recording_app(dir_b.path());
    assert_eq!(
        init(&mut processed, &[&alice]),
        init(&mut unseen, &[&alice])
    );

    // Height 1: the commitments item built by a proposer, one good tx and
    // (decided anyway, as a faulty proposer could get it decided) a tx
    // with a used nonce.
    let good = signed(
        &alice,
        CHAIN,
        0,
        vec![
            Action::Transfer { to: bob, amount: 7 },
            data("alpha", b"xyz"),
        ],
    );
    let stale = signed(&alice, CHAIN, 0, vec![data("alpha", b"again")]);
    let commitments = {
        let mut m = std::collections::BTreeMap::new();
        m.insert(RollupId::from_name("alpha"), vec![b"xyz".to_vec()]);
        weft_core::BlockCommitments::compute(&m).encode()
    };
    let txs: Vec<Bytes> = vec![commitments.into(), good.into(), stale.into()];
    let req = decided(1, txs.clone());

    // One node checks the proposal first (its execution is reused by
    // FinalizeBlock); the other only ever sees the decided block.
    let verdict = processed.handle(Request::ProcessProposal(process_request(&req)));
    assert!(
        matches!(verdict, Response::ProcessProposal(ProcessProposal::Reject)),
        "a block with a used nonce is not a valid proposal"
    );
    let a = finalize(&mut processed, req.clone());
    let b = finalize(&mut unseen, req);
    assert_eq!(a.app_hash, b.app_hash);
    assert_eq!(results(&a), results(&b));
    assert_eq!(
        results(&b)[1..],
        [(0, 3), (TxCode::NonceMismatch.value(), 0)]
    );

    // Height 2: a valid block both see; one processed it, one did not.
    let next = signed(&alice, CHAIN, 1, vec![data("beta", b"b")]);
    let commitments = {
        let mut m = std::collections::BTreeMap::new();
        m.insert(RollupId::from_name("beta"), vec![b"b".to_vec()]);
        weft_core::BlockCommitments::compute(&m).encode()
    };
    let req = decided(2, vec![commitments.into(), next.into()]);
    let verdict = processed.handle(Request::ProcessProposal(process_request(&req)));
    assert!(matches!(
        verdict,
        Response::ProcessProposal(ProcessProposal::Accept)
    ));
    let a = finalize(&mut processed, req.clone());
    let b = finalize(&mut unseen, req.clone());
    assert_eq!(
        a.app_hash, b.app_hash,
        "the reused execution saw the decided context"
    );
    assert_eq!(results(&a), results(&b));
    use crate::storage::StateRead;
    let recorded = unseen
        .storage()
        .snapshot()
        .unwrap()
        .get_raw("recorder/last")
        .unwrap()
        .map(String::from_utf8)
        .unwrap()
        .unwrap();
    assert_eq!(recorded, format!("{:?}", BlockContext::of_finalize(&req)));
    assert!(recorded.contains("DuplicateVote") && recorded.contains("signed: false"));
}

#[test]
fn a_processed_execution_is_not_reused_under_another_context() {
    let alice = SigningKey::from_seed("alice");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut reused = recording_app(dir_a.path());
    let mut fresh = recording_app(dir_b.path());
    init(&mut reused, &[&alice]);
    init(&mut fresh, &[&alice]);
    let commitments = weft_core::BlockCommitments::compute(&Default::default()).encode();
    let req = decided(1, vec![commitments.into()]);
    // ProcessProposal saw another last commit than the one decided (as
    // for a proposal of another round with the same hash): FinalizeBlock
    // must execute under the decided context, not reuse.
    let mut other = process_request(&req);
    other.proposed_last_commit = None;
    assert!(matches!(
        reused.handle(Request::ProcessProposal(other)),
        Response::ProcessProposal(ProcessProposal::Accept)
    ));
    let a = finalize(&mut reused, req.clone());
    let b = finalize(&mut fresh, req);
    assert_eq!(a.app_hash, b.app_hash);
}

#[test]
fn queries_report_the_height_they_were_read_at() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = App::new(Storage::open(dir.path()).unwrap(), AppConfig::default()).unwrap();
    let alice = SigningKey::from_seed("alice");
    init(&mut app, &[&alice]);
    for h in 1..=3u32 {
        let tx = signed(
            &alice,
            CHAIN,
            u64::from(h) - 1,
            vec![data("alpha", &[h as u8])],
        );
        run_block(&mut app, h, vec![tx.into()]);
    }
    let at = |app: &mut App, path: &str, height: u32| -> u64 {
        match app.handle(Request::Query(request::Query {
            data: Bytes::new(),
            path: path.into(),
            height: height.into(),
            prove: false,
        })) {
            Response::Query(q) => {
                assert!(q.code.is_ok(), "{path}: {}", q.log);
                q.height.value()
            }
            other => panic!("{other:?}"),
        }
    };
    let account = format!("account/{}", alice.address());
    assert_eq!(at(&mut app, &account, 0), 3, "latest");
    assert_eq!(at(&mut app, &account, 2), 2, "historical");
    let alpha = RollupId::from_name("alpha").to_hex();
    assert_eq!(at(&mut app, &format!("batch/{alpha}/1"), 0), 1);
    assert_eq!(at(&mut app, "app_hash/2", 0), 2);
}

/// The staking genesis the InitChain tests use: `v0`, `v1`, `v2` bond
/// 100, 200 and 300 (no cap bites, so powers equal stakes); `d0` only
/// holds funds. Epochs are 2 blocks long.
fn staking_genesis() -> GenesisAppState {
    let key = SigningKey::from_seed;
    GenesisAppState {
        inclusion: None,
        auction: None,
        accounts: ["v0", "v1", "v2", "d0"]
            .map(|s| GenesisAccount {
                address: key(s).address(),
                balance: 1_000_000_000,
            })
            .to_vec(),
        params: Default::default(),
        staking: Some(weft_core::GenesisStaking {
            params: weft_core::StakingParams {
                unbonding_blocks: 3,
                epoch_blocks: 2,
                max_validators: 10,
                max_power_share_bps: 10_000,
                min_self_bond: 10,
                ..Default::default()
            },
            validators: [("v0", 100), ("v1", 200), ("v2", 300)]
                .map(|(s, bond)| weft_core::GenesisValidator {
                    operator: key(s).address(),
                    consensus_key: consensus_key(s),
                    name: s.into(),
                    website: String::new(),
                    commission_bps: 0,
                    self_bond: bond,
                })
                .to_vec(),
        }),
        governance: None,
    }
}

fn consensus_key(seed: &str) -> [u8; 32] {
    SigningKey::from_seed(&format!("{seed}/consensus"))
        .public_key()
        .0
}

fn listed(seed: &str, power: u64) -> tendermint::validator::Update {
    validator_update(&consensus_key(seed), power).unwrap()
}

/// InitChain with `genesis` as app state and `listed` as genesis.json's
/// validators.
fn init_chain_with(
    app: &mut App,
    genesis: &GenesisAppState,
    listed: Vec<tendermint::validator::Update>,
) -> resp::InitChain {
    match app.handle(Request::InitChain(request::InitChain {
        time: Time::from_unix_timestamp(1_700_000_000, 0).unwrap(),
        chain_id: CHAIN.into(),
        consensus_params: consensus_params(),
        validators: listed,
        app_state_bytes: serde_json::to_vec(genesis).unwrap().into(),
        initial_height: 1u32.into(),
    })) {
        Response::InitChain(r) => r,
        other => panic!("{other:?}"),
    }
}

/// A validator set as (ed25519 key, power).
fn as_pairs(set: &[tendermint::validator::Update]) -> Vec<([u8; 32], u64)> {
    set.iter()
        .map(|u| {
            let key: [u8; 32] = u.pub_key.ed25519().unwrap().as_bytes().try_into().unwrap();
            (key, u.power.value())
        })
        .collect()
}

/// The active set staking keeps in the committed state.
fn stored_active_set(app: &App) -> Vec<([u8; 32], u64)> {
    use crate::staking::state::StakingRead;
    app.storage
        .snapshot()
        .unwrap()
        .active_set()
        .unwrap()
        .iter()
        .map(|v| (v.consensus_key, v.power))
        .collect()
}

#[test]
fn init_chain_with_staking_returns_the_computed_set() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = App::new(Storage::open(dir.path()).unwrap(), AppConfig::default()).unwrap();
    // genesis.json lists nothing: CometBFT takes the app's set.
    let r = init_chain_with(&mut app, &staking_genesis(), vec![]);
    let returned = as_pairs(&r.validators);
    let mut expected = vec![
        (consensus_key("v0"), 100),
        (consensus_key("v1"), 200),
        (consensus_key("v2"), 300),
    ];
    expected.sort();
    assert_eq!(returned, expected);
    assert!(
        returned.windows(2).all(|w| w[0].0 < w[1].0),
        "sorted, each key once"
    );
    assert!(returned.iter().all(|(_, p)| *p > 0), "no power 0");
    assert_eq!(
        returned,
        stored_active_set(&app),
        "exactly the set later diffs start from"
    );
}

#[test]
fn init_chain_without_staking_returns_no_validators() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = App::new(Storage::open(dir.path()).unwrap(), AppConfig::default()).unwrap();
    let genesis = GenesisAppState {
        inclusion: None,
        auction: None,
        accounts: vec![GenesisAccount {
            address: SigningKey::from_seed("alice").address(),
            balance: 1_000,
        }],
        ..Default::default()
    };
    // Even when genesis.json lists validators: CometBFT keeps them.
    let r = init_chain_with(&mut app, &genesis, vec![listed("v0", 10)]);
    assert!(r.validators.is_empty());
    assert!(stored_active_set(&app).is_empty());
}

#[test]
fn init_chain_again_after_a_crash_returns_the_same_set() {
    let dir = tempfile::tempdir().unwrap();
    // genesis.json disagrees (an unknown key, another power): warned
    // about, never fatal, and the app's set is the answer both times.
    let genesis_json = vec![listed("v0", 7), listed("v1", 200), listed("x", 5)];
    let first = {
        let mut app = App::new(Storage::open(dir.path()).unwrap(), AppConfig::default()).unwrap();
        init_chain_with(&mut app, &staking_genesis(), genesis_json.clone())
    };
    // The crash: genesis committed at height 0, no block yet.
    let mut app = App::new(Storage::open(dir.path()).unwrap(), AppConfig::default()).unwrap();
    let again = init_chain_with(&mut app, &staking_genesis(), genesis_json);
    assert_eq!(again.app_hash, first.app_hash);
    assert_eq!(as_pairs(&again.validators), as_pairs(&first.validators));
    assert_eq!(as_pairs(&again.validators).len(), 3);
    assert_eq!(as_pairs(&again.validators), stored_active_set(&app));
}

#[test]
fn the_first_epoch_diffs_against_exactly_the_returned_set() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = App::new(Storage::open(dir.path()).unwrap(), AppConfig::default()).unwrap();
    // genesis.json lists a key staking does not know: CometBFT drops it
    // for the app's answer, so no update may ever name it.
    let stranger = consensus_key("x");
    let r = init_chain_with(
        &mut app,
        &staking_genesis(),
        vec![listed("v0", 100), listed("x", 50)],
    );
    let returned = as_pairs(&r.validators);
    assert!(returned.iter().all(|(k, _)| *k != stranger));

    // Block 1: d0 delegates to v0; v2 unbonds its whole self-bond (so it
    // leaves the set). Block 2 ends the first epoch.
    let key = SigningKey::from_seed;
    let delegate = signed(
        &key("d0"),
        CHAIN,
        0,
        vec![Action::Delegate {
            validator: key("v0").address(),
            amount: 1_000,
        }],
    );
    let leave = signed(
        &key("v2"),
        CHAIN,
        0,
        vec![Action::Undelegate {
            validator: key("v2").address(),
            amount: 300,
        }],
    );
    let (_, fin1) = run_block(&mut app, 1, vec![delegate.into(), leave.into()]);
    assert!(
        fin1.tx_results.iter().all(|r| r.code.is_ok()),
        "{:?}",
        fin1.tx_results
    );
    assert!(fin1.validator_updates.is_empty(), "not an epoch end");
    let (_, fin2) = run_block(&mut app, 2, vec![]);
    let updates = as_pairs(&fin2.validator_updates);
    assert_eq!(
        updates,
        {
            let mut u = vec![(consensus_key("v0"), 1_100), (consensus_key("v2"), 0)];
            u.sort();
            u
        },
        "v0's power changes, v2 leaves, v1 is unchanged so not named"
    );
    // Applying the updates to the returned set gives the new active set;
    // removals name only returned keys.
    let mut applied: std::collections::BTreeMap<[u8; 32], u64> = returned.iter().copied().collect();
    for (k, p) in &updates {
        assert_ne!(*k, stranger);
        if *p == 0 {
            assert!(applied.remove(k).is_some(), "removes only a returned key");
        } else {
            applied.insert(*k, *p);
        }
    }
    assert_eq!(
        applied.into_iter().collect::<Vec<_>>(),
        stored_active_set(&app)
    );
}

#[test]
fn set_differences_name_every_key_that_differs() {
    let app_set = vec![listed("v0", 100), listed("v1", 200)];
    assert!(validator_set_differences(&app_set, &app_set).is_empty());
    let genesis_json = vec![listed("v0", 100), listed("v1", 7), listed("x", 5)];
    let d = validator_set_differences(&genesis_json, &app_set);
    assert_eq!(d.len(), 2, "{d:?}");
    let hex_of = |s: &str| hex::encode(consensus_key(s));
    assert!(d
        .iter()
        .any(|l| l.contains(&hex_of("v1")) && l.contains("power 7 in genesis.json but 200")));
    assert!(d
        .iter()
        .any(|l| l.contains(&hex_of("x")) && l.contains("not in the staking set")));
    let d = validator_set_differences(&[listed("v0", 100)], &app_set);
    assert_eq!(d.len(), 1);
    assert!(d[0].contains(&hex_of("v1")) && d[0].contains("not in genesis.json"));
}

#[test]
fn a_consensus_param_update_restates_every_group_and_enables_vote_extensions() {
    use tendermint_proto::v0_38::types::ConsensusParams as RawParams;
    let update = crate::component::ConsensusParamsUpdate {
        consensus: weft_core::ConsensusParams {
            block_max_bytes: 4 << 20,
            block_max_gas: -1,
            evidence_max_age_num_blocks: 100_000,
            evidence_max_age_duration_ns: 172_800_000_000_001,
            evidence_max_bytes: 1 << 20,
        },
        vote_extensions_enable_height: 7,
    };
    // What goes over the wire to CometBFT.
    let raw: RawParams = consensus_params_update(&update).into();
    let block = raw.block.unwrap();
    assert_eq!((block.max_bytes, block.max_gas), (4 << 20, -1));
    let evidence = raw.evidence.unwrap();
    assert_eq!(evidence.max_age_num_blocks, 100_000);
    let age = evidence.max_age_duration.unwrap();
    assert_eq!((age.seconds, age.nanos), (172_800, 1));
    assert_eq!(evidence.max_bytes, 1 << 20);
    // CometBFT's ABCI name for the key type, which its ValidateBasic
    // checks; the app version is left alone.
    assert_eq!(raw.validator.unwrap().pub_key_types, vec!["ed25519"]);
    assert!(raw.version.is_none());
    assert_eq!(raw.abci.unwrap().vote_extensions_enable_height, 7);
}

#[test]
fn commit_answers_the_retain_height_cometbft_keeps() {
    assert_eq!(super::retain_height(5, 0), 0, "0 keeps every block");
    assert_eq!(super::retain_height(10, 10), 0, "not yet more than kept");
    assert_eq!(super::retain_height(11, 10), 2);
    assert_eq!(super::retain_height(100, 1), 100, "keep only the last");

    // Through the app: Commit of height h answers h - keep + 1.
    let dir = tempfile::tempdir().unwrap();
    let config = AppConfig {
        cometbft_retain_blocks: 2,
        ..AppConfig::default()
    };
    let mut app = App::new(Storage::open(dir.path()).unwrap(), config).unwrap();
    init(&mut app, &[]);
    let mut answered = Vec::new();
    for height in 1..=4u32 {
        let fin = decided(height, vec![]);
        let _ = app.handle(Request::FinalizeBlock(request::FinalizeBlock {
            misbehavior: vec![],
            ..fin
        }));
        match app.handle(Request::Commit) {
            Response::Commit(c) => answered.push(c.retain_height.value()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(answered, vec![0, 0, 2, 3]);
}
