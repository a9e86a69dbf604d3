//! Regenerates `docs/test-vectors.json` from the code and compares it with
//! the committed file, so the vectors an independent client is written
//! against are always the ones this code produces.
//!
//! A difference fails the test. Only `WEFT_UPDATE_VECTORS=1` rewrites the
//! file, so CI (which never sets it) cannot silently accept a wire change;
//! a changed file is a breaking change and shows up in review.

use std::{collections::BTreeMap, path::PathBuf};

use serde_json::{json, Value};
use weft_core::{
    bid::{Bid, Bundle, RelayRequest, RelayRequestKind, SignedBid, SignedRelayRequest},
    block::{self, BlockCommitments, COMMITMENTS_MAGIC},
    encoding,
    merkle::{self, Proof},
    transaction::SigningDomain,
    AccountParams, Action, FeeParams, GovernanceParams, Hash, ProposalKind, RollupId, RollupParams,
    SignedTransaction, SigningKey, StakingParams, Transaction, VoteOption,
};

/// Where the committed vectors live, from this crate's manifest directory.
fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/test-vectors.json")
}

const CHAIN_ID: &str = "weft-devnet";

fn key_vector(seed: &str) -> Value {
    let key = SigningKey::from_seed(seed);
    json!({
        "seed": seed,
        "secret_key": hex::encode(key.to_bytes()),
        "public_key": key.public_key().to_hex(),
        "address_hex": key.address().to_hex(),
        "address": key.address().to_string(),
    })
}

/// The transactions every client should reproduce byte for byte, each
/// chosen to exercise one part of the layout.
fn sample_transactions() -> Vec<(&'static str, &'static str, Transaction)> {
    let bob = SigningKey::from_seed("bob").address();
    vec![
        (
            "one transfer",
            "alice",
            Transaction {
                chain_id: CHAIN_ID.into(),
                nonce: 0,
                actions: vec![Action::Transfer {
                    to: bob,
                    amount: 1_000,
                }],
            },
        ),
        (
            "rollup data",
            "alice",
            Transaction {
                chain_id: CHAIN_ID.into(),
                nonce: 1,
                actions: vec![Action::SubmitRollupData {
                    rollup_id: RollupId::from_name("my-rollup"),
                    data: b"hello".to_vec(),
                }],
            },
        ),
        (
            "several actions; a nonce above 2^32 and an amount above 2^64 show the little-endian widths",
            "bob",
            Transaction {
                chain_id: CHAIN_ID.into(),
                nonce: (1 << 32) + 5,
                actions: vec![
                    Action::SubmitRollupData {
                        rollup_id: RollupId::from_name("alpha"),
                        data: vec![0x00, 0x01, 0x02],
                    },
                    Action::Transfer {
                        to: SigningKey::from_seed("alice").address(),
                        amount: (1u128 << 64) + 1,
                    },
                    Action::SubmitRollupData {
                        rollup_id: RollupId::from_name("my-rollup"),
                        data: b"world".to_vec(),
                    },
                ],
            },
        ),
        // Staking actions (tags 2 to 5), appended after the first three so
        // the block vectors, built from those three, stay as they were.
        (
            "staking: register a validator (consensus key of seed `bob/consensus`) and self-bond to it",
            "bob",
            Transaction {
                chain_id: CHAIN_ID.into(),
                nonce: 0,
                actions: vec![
                    Action::RegisterValidator {
                        consensus_key: SigningKey::from_seed("bob/consensus").public_key().0,
                        name: "bob's validator".into(),
                        website: "https://example.org".into(),
                        commission_bps: 500,
                    },
                    Action::Delegate {
                        validator: bob,
                        amount: 1_000_000,
                    },
                ],
            },
        ),
        (
            "staking: undelegate, then redelegate to another validator",
            "alice",
            Transaction {
                chain_id: CHAIN_ID.into(),
                nonce: 2,
                actions: vec![
                    Action::Undelegate {
                        validator: bob,
                        amount: 10,
                    },
                    Action::Redelegate {
                        from: bob,
                        to: SigningKey::from_seed("dev").address(),
                        amount: 20,
                    },
                ],
            },
        ),
        // Governance actions (tags 6 and 7), appended after the staking
        // samples so every earlier vector stays as it was.
        (
            "governance: propose admitting a candidate (operator of seed `bob`), then vote yes on proposal 0",
            "alice",
            Transaction {
                chain_id: CHAIN_ID.into(),
                nonce: 3,
                actions: vec![
                    Action::Propose {
                        kind: ProposalKind::AdmitValidator { operator: bob },
                        deposit: 10_000_000,
                    },
                    Action::Vote {
                        proposal_id: 0,
                        option: VoteOption::Yes,
                    },
                ],
            },
        ),
        (
            "governance: remove a validator (a deposit above 2^64); abstain on proposal 1, no on proposal 2",
            "bob",
            Transaction {
                chain_id: CHAIN_ID.into(),
                nonce: 1,
                actions: vec![
                    Action::Propose {
                        kind: ProposalKind::RemoveValidator {
                            operator: SigningKey::from_seed("alice").address(),
                        },
                        deposit: (1u128 << 64) + 7,
                    },
                    Action::Vote {
                        proposal_id: 1,
                        option: VoteOption::Abstain,
                    },
                    Action::Vote {
                        proposal_id: 2,
                        option: VoteOption::No,
                    },
                ],
            },
        ),
        (
            "governance: a text proposal, a staking parameter change (the defaults), and a no-with-veto vote on a proposal id above 2^32",
            "dev",
            Transaction {
                chain_id: CHAIN_ID.into(),
                nonce: 0,
                actions: vec![
                    Action::Propose {
                        kind: ProposalKind::Text {
                            title: "Signal: weekly epochs".into(),
                            description: "Line one.\nLine two.".into(),
                        },
                        deposit: 10_000_000,
                    },
                    Action::Propose {
                        kind: ProposalKind::ChangeStakingParams {
                            params: StakingParams::default(),
                        },
                        deposit: 10_000_000,
                    },
                    Action::Vote {
                        proposal_id: (1 << 32) + 1,
                        option: VoteOption::NoWithVeto,
                    },
                ],
            },
        ),
        (
            "governance: change the voting rules (the defaults with a quorum of 50 %)",
            "alice",
            Transaction {
                chain_id: CHAIN_ID.into(),
                nonce: 4,
                actions: vec![Action::Propose {
                    kind: ProposalKind::ChangeGovernanceParams {
                        params: GovernanceParams {
                            quorum_bps: 5_000,
                            ..GovernanceParams::default()
                        },
                    },
                    deposit: 10_000_000,
                }],
            },
        ),
        // Staking economics (tags 8, 9, 10), appended so every earlier
        // vector stays as it was.
        (
            "staking: edit a validator (new name and commission, a relay key, website unchanged), unjail, claim rewards",
            "bob",
            Transaction {
                chain_id: CHAIN_ID.into(),
                nonce: 2,
                actions: vec![
                    Action::EditValidator {
                        name: Some("bob's validator, renamed".into()),
                        website: None,
                        commission_bps: Some(600),
                        relay_key: Some(SigningKey::from_seed("bob/relay").public_key().0),
                    },
                    Action::Unjail {},
                    Action::ClaimRewards {},
                ],
            },
        ),
        (
            "governance: change the fees, the rollup data limits and the per-account block limit",
            "bob",
            Transaction {
                chain_id: CHAIN_ID.into(),
                nonce: 3,
                actions: vec![
                    Action::Propose {
                        kind: ProposalKind::ChangeFeeParams {
                            params: FeeParams {
                                base_fee: 2_000,
                                fee_per_byte: 3,
                            },
                        },
                        deposit: 10_000_000,
                    },
                    Action::Propose {
                        kind: ProposalKind::ChangeRollupParams {
                            params: RollupParams {
                                max_rollup_data_per_tx: 512 * 1024,
                                max_rollup_data_per_block: 4 * 1024 * 1024,
                            },
                        },
                        deposit: 10_000_000,
                    },
                    Action::Propose {
                        kind: ProposalKind::ChangeAccountParams {
                            params: AccountParams {
                                max_txs_per_account_per_block: 64,
                            },
                        },
                        deposit: 10_000_000,
                    },
                ],
            },
        ),
        (
            "governance: turn inclusion lists on, then change their parameters",
            "bob",
            Transaction {
                chain_id: CHAIN_ID.into(),
                nonce: 4,
                actions: vec![
                    Action::Propose {
                        kind: ProposalKind::EnableInclusionLists {
                            params: weft_core::InclusionParams::default(),
                            consensus: weft_core::ConsensusParams {
                                block_max_bytes: 4 * 1024 * 1024,
                                block_max_gas: -1,
                                evidence_max_age_num_blocks: 100_000,
                                evidence_max_age_duration_ns: 172_800_000_000_000,
                                evidence_max_bytes: 1024 * 1024,
                            },
                        },
                        deposit: 10_000_000,
                    },
                    Action::Propose {
                        kind: ProposalKind::ChangeInclusionParams {
                            params: weft_core::InclusionParams {
                                enabled: false,
                                inclusion_delay_blocks: 2,
                                max_inclusion_list_bytes: 8192,
                            },
                        },
                        deposit: 10_000_000,
                    },
                ],
            },
        ),
    ]
}

/// How many of the sample transactions the block vectors are built from
/// (the ones that existed before the staking samples were appended).
const BLOCK_SAMPLE_TXS: usize = 3;

fn transaction_vector(description: &str, seed: &str, tx: &Transaction) -> Value {
    let body = encoding::encode(tx);
    let message = SigningDomain::Transaction.message(&tx.chain_id, &body);
    let signed = tx.clone().sign(&SigningKey::from_seed(seed));
    signed
        .verify_signature()
        .expect("a freshly signed vector verifies");
    json!({
        "description": description,
        "signer_seed": seed,
        "transaction": tx,
        "transaction_borsh": hex::encode(&body),
        "signing_message": hex::encode(&message),
        "public_key": signed.public_key.to_hex(),
        "signature": hex::encode(signed.signature.0),
        "signed_transaction_borsh": hex::encode(signed.encode()),
        "hash": signed.hash(),
    })
}

/// Bytes a strict decoder must refuse, derived from a valid transaction.
fn rejected_encodings(valid: &SignedTransaction) -> Vec<Value> {
    let good = valid.encode();
    let mut trailing = good.clone();
    trailing.push(0);
    let truncated = good[..good.len() - 1].to_vec();
    // chain id "weft-devnet" (4 + 11 bytes), nonce (8), action count (4):
    // the next byte is the first action's tag.
    let tag_at = 4 + CHAIN_ID.len() + 8 + 4;
    let mut unknown_tag = good.clone();
    unknown_tag[tag_at] = 2;
    let mut bad_utf8 = good.clone();
    bad_utf8[4] = 0xff;
    // Tag 2 has been `RegisterValidator` since the staking actions were
    // added; the vector is kept byte for byte (it is still refused: the
    // transfer's bytes read as a website length that runs past the input)
    // and "action tag 6" likewise predates the governance actions (tag 6 is
    // now `Propose`; those bytes are still refused because the address
    // that follows reads as an unknown proposal kind). Tag 8 is the first
    // unused one.
    let mut unused_tag = good.clone();
    unused_tag[tag_at] = 6;
    let mut unused_tag_8 = good.clone();
    unused_tag_8[tag_at] = 8;
    let cases = [
        ("a byte after the signature", trailing),
        ("the signature's last byte missing", truncated),
        ("action tag 2 (no such action)", unknown_tag),
        ("chain id that is not UTF-8", bad_utf8),
        ("action tag 6 (no such action)", unused_tag),
        ("action tag 8 (no such action)", unused_tag_8),
    ];
    cases
        .into_iter()
        .map(|(why, bytes)| {
            assert!(
                SignedTransaction::decode(&bytes).is_err(),
                "rejected vector `{why}` decodes"
            );
            json!({ "description": why, "hex": hex::encode(bytes) })
        })
        .collect()
}

fn proof_json(p: &Proof) -> Value {
    serde_json::to_value(p).expect("a proof serializes")
}

fn merkle_vectors() -> Value {
    let items: Vec<Vec<u8>> = [b"a", b"b", b"c", b"d", b"e", b"f", b"g"]
        .iter()
        .map(|i| i.to_vec())
        .collect();
    let roots: Vec<Value> = (0..=items.len())
        .map(|n| {
            json!({
                "items": items[..n].iter().map(hex::encode).collect::<Vec<_>>(),
                "root": merkle::root(&items[..n]),
            })
        })
        .collect();
    let proofs: Vec<Value> = [3usize, 5, 7]
        .into_iter()
        .flat_map(|n| {
            let leaves: Vec<Hash> = items[..n].iter().map(|i| merkle::leaf_hash(i)).collect();
            let root = merkle::root_from_leaf_hashes(&leaves);
            Proof::all(&leaves)
                .into_iter()
                .zip(&items[..n])
                .map(move |(p, item)| {
                    p.verify(&root, &merkle::leaf_hash(item))
                        .expect("an honest proof verifies");
                    json!({
                        "item": hex::encode(item),
                        "leaf_hash": merkle::leaf_hash(item),
                        "proof": proof_json(&p),
                        "root": root,
                    })
                })
                .collect::<Vec<_>>()
        })
        .collect();
    json!({
        "empty_root": merkle::empty_root(),
        "leaf_hashes": [
            { "item": "", "leaf_hash": merkle::leaf_hash(b"") },
            { "item": hex::encode(b"a"), "leaf_hash": merkle::leaf_hash(b"a") },
        ],
        "inner_hash": {
            "left": merkle::leaf_hash(b"a"),
            "right": merkle::leaf_hash(b"b"),
            "inner_hash": merkle::inner_hash(&merkle::leaf_hash(b"a"), &merkle::leaf_hash(b"b")),
        },
        "roots": roots,
        "proofs": proofs,
    })
}

/// A rollup's batch: the data of its `SubmitRollupData` actions, in
/// transaction order then action order.
fn batches_of(txs: &[SignedTransaction]) -> BTreeMap<RollupId, Vec<Vec<u8>>> {
    let mut batches: BTreeMap<RollupId, Vec<Vec<u8>>> = BTreeMap::new();
    for tx in txs {
        for action in &tx.transaction.actions {
            if let Action::SubmitRollupData { rollup_id, data } = action {
                batches.entry(*rollup_id).or_default().push(data.clone());
            }
        }
    }
    batches
}

/// A whole block built from the sample transactions: its commitments item,
/// `data_hash`, and batch proofs for a present and an absent rollup.
fn block_vectors(signed: &[SignedTransaction]) -> Value {
    let height = 7;
    let batches = batches_of(signed);
    let commitments = BlockCommitments::compute(&batches);
    let roots = block::batch_roots(&batches);

    let mut block_txs = vec![commitments.encode()];
    block_txs.extend(signed.iter().map(SignedTransaction::encode));
    let tx_hashes: Vec<Hash> = block_txs.iter().map(|t| weft_core::sha256(t)).collect();
    let data_hash = merkle::root_from_leaf_hashes(
        &tx_hashes
            .iter()
            .map(|h| merkle::leaf_hash(&h.0))
            .collect::<Vec<_>>(),
    );

    let proof_for = |name: &str| {
        let id = RollupId::from_name(name);
        let items = batches.get(&id).cloned().unwrap_or_default();
        let p = block::prove_batch(height, id, &tx_hashes, &roots, items, commitments)
            .expect("the block's parts are consistent");
        p.verify(&data_hash, &id).expect("the batch proof verifies");
        json!({
            "rollup_name": name,
            "rollup_id": id,
            "proof": p,
        })
    };

    json!({
        "height": height,
        "batches": roots.iter().map(|(id, root)| json!({
            "rollup_id": id,
            "items": batches[id].iter().map(hex::encode).collect::<Vec<_>>(),
            "batch_root": root,
            "rollup_txs_leaf": block::rollup_txs_leaf(id, root),
        })).collect::<Vec<_>>(),
        "commitments": commitments,
        "commitments_item": hex::encode(commitments.encode()),
        "block_txs": block_txs.iter().map(hex::encode).collect::<Vec<_>>(),
        "tx_hashes": tx_hashes,
        "data_hash": data_hash,
        "batch_proofs": [proof_for("my-rollup"), proof_for("absent-rollup")],
    })
}

/// Bids every client should reproduce: one single-rollup bid, one
/// two-rollup bid, and a cancellation (amount 0).
fn bid_vectors() -> Vec<Value> {
    let parent = weft_core::sha256(b"block 41");
    let samples = [
        (
            "one bundle for one rollup",
            "builder",
            vec![Bundle {
                rollup_id: RollupId::from_name("my-rollup"),
                payloads: vec![b"tx-1".to_vec(), b"tx-2".to_vec()],
            }],
            25_000u128,
        ),
        (
            "two rollups taken atomically",
            "builder",
            vec![
                Bundle {
                    rollup_id: RollupId::from_name("alpha"),
                    payloads: vec![vec![0xaa]],
                },
                Bundle {
                    rollup_id: RollupId::from_name("my-rollup"),
                    payloads: vec![vec![0xbb, 0xcc]],
                },
            ],
            1 << 70,
        ),
        (
            "a cancellation: amount 0",
            "builder",
            vec![Bundle {
                rollup_id: RollupId::from_name("my-rollup"),
                payloads: vec![b"tx-1".to_vec()],
            }],
            0,
        ),
    ];
    samples
        .into_iter()
        .map(|(why, seed, bundles, amount)| {
            let key = SigningKey::from_seed(seed);
            let bid = Bid {
                chain_id: CHAIN_ID.into(),
                target_height: 42,
                parent_hash: parent,
                bundles,
                amount,
                builder: key.public_key(),
            };
            let body = encoding::encode(&bid);
            let signed = bid.clone().sign(&key);
            json!({
                "description": why,
                "builder_seed": seed,
                "bid": bid,
                "bid_borsh": hex::encode(&body),
                "signing_message": hex::encode(SigningDomain::Bid.message(CHAIN_ID, &body)),
                "signature": hex::encode(signed.signature.0),
                "signed_bid_borsh": hex::encode(signed.encode()),
                "block_item": hex::encode(signed.encode_item()),
                "hash": signed.hash(),
                "bundle_hashes": bid.bundles.iter().map(Bundle::hash).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// A validator's signed winner fetch and a builder's signed cancellation.
fn relay_request_vectors() -> Vec<Value> {
    let operator = SigningKey::from_seed("operator").address();
    let relay_key = SigningKey::from_seed("relay-key");
    let builder = SigningKey::from_seed("builder");
    [
        (
            "a validator fetches the winners of height 42",
            "relay-key",
            relay_key.clone(),
            RelayRequestKind::FetchWinners,
            operator,
        ),
        (
            "a builder cancels its bid for height 42",
            "builder",
            builder.clone(),
            RelayRequestKind::CancelBid,
            builder.address(),
        ),
    ]
    .into_iter()
    .map(|(why, seed, key, kind, requester)| {
        let request = RelayRequest {
            chain_id: CHAIN_ID.into(),
            kind,
            height: 42,
            timestamp_ms: 1_767_225_600_000,
            requester,
            key: key.public_key(),
        };
        let body = encoding::encode(&request);
        let signed: SignedRelayRequest = request.sign(&key);
        json!({
            "description": why,
            "signer_seed": seed,
            "request_borsh": hex::encode(&body),
            "signing_message": hex::encode(SigningDomain::RelayRequest.message(CHAIN_ID, &body)),
            "signed_request_borsh": hex::encode(signed.encode()),
        })
    })
    .collect()
}

fn generate() -> Value {
    let txs = sample_transactions();
    let signed: Vec<SignedTransaction> = txs
        .iter()
        .map(|(_, seed, tx)| tx.clone().sign(&SigningKey::from_seed(seed)))
        .collect();
    let empty_block = BlockCommitments::compute(&BTreeMap::new());
    json!({
        "about": "Weft wire-format test vectors. Generated by crates/weft-core/tests/test_vectors.rs; regenerate with WEFT_UPDATE_VECTORS=1 cargo test -p weft-core --test test_vectors. Described in docs/protocol.md. Hex is lower-case without 0x. The keys come from public seeds: never fund them outside a local network.",
        "keys": (["alice", "bob", "dev"].map(key_vector)),
        "signing": {
            "transaction_domain_tag": String::from_utf8_lossy(SigningDomain::Transaction.tag()),
            "bid_domain_tag": String::from_utf8_lossy(SigningDomain::Bid.tag()),
            "relay_request_domain_tag": String::from_utf8_lossy(SigningDomain::RelayRequest.tag()),
            "example": {
                "chain_id": "c",
                "body": "0102",
                "message": hex::encode(SigningDomain::Transaction.message("c", &[1, 2])),
            },
        },
        "rollup_ids": (["my-rollup", "alpha"].map(|name| json!({
            "name": name,
            "rollup_id": RollupId::from_name(name),
        }))),
        "transactions": txs
            .iter()
            .map(|(why, seed, tx)| transaction_vector(why, seed, tx))
            .collect::<Vec<_>>(),
        "rejected_transaction_encodings": rejected_encodings(&signed[0]),
        "merkle": merkle_vectors(),
        "empty_block_commitments_item": hex::encode(empty_block.encode()),
        "commitments_magic": hex::encode(COMMITMENTS_MAGIC),
        "block": block_vectors(&signed[..BLOCK_SAMPLE_TXS]),
        "bids": bid_vectors(),
        "relay_requests": relay_request_vectors(),
        "inclusion": inclusion_vectors(&signed),
        "envelope": envelope_vector(&signed),
    })
}

/// An envelope of the first two sample transactions: their hashes stay
/// the hashes of their own bytes.
fn envelope_vector(signed: &[SignedTransaction]) -> Value {
    let inner: Vec<Vec<u8>> = signed[..2].iter().map(SignedTransaction::encode).collect();
    let envelope = weft_core::Envelope { txs: inner.clone() };
    json!({
        "description": "an envelope carrying transactions[0] and transactions[1]",
        "txs": inner.iter().map(hex::encode).collect::<Vec<_>>(),
        "tx_hashes": signed[..2].iter().map(SignedTransaction::hash).collect::<Vec<_>>(),
        "envelope": hex::encode(envelope.encode()),
    })
}

/// An inclusion list of two sample transactions, a validator's signed
/// extension of it, and the listed-commit item carrying it.
fn inclusion_vectors(signed: &[SignedTransaction]) -> Value {
    use weft_core::inclusion::{
        validator_address, vote_extension_sign_bytes, InclusionList, ListedCommit, ListedVote,
        INCLUSION_VERSION,
    };
    let list = InclusionList::new(signed[..2].iter().map(|t| t.encode()).collect());
    let extension = list.encode();
    let validator = SigningKey::from_seed("validator-0");
    let (chain_id, height, round) = ("weft-devnet", 41u64, 2u32);
    let sign_bytes = vote_extension_sign_bytes(chain_id, height, round, &extension);
    let signature = validator.sign(&sign_bytes);
    let item = ListedCommit {
        version: INCLUSION_VERSION,
        height,
        round,
        votes: vec![ListedVote {
            validator: validator_address(&validator.public_key().0),
            extension: extension.clone(),
            signature: signature.0.to_vec(),
        }],
    };
    json!({
        "description": "validator-0 (seed) lists the first two sample transactions in its precommit for height 41, round 2, of chain weft-devnet; the block at 42 carries it",
        "validator_public_key": hex::encode(validator.public_key().0),
        "validator_address": hex::encode_upper(validator_address(&validator.public_key().0)),
        "extension": hex::encode(&extension),
        "sign_bytes": hex::encode(&sign_bytes),
        "signature": hex::encode(signature.0),
        "listed_commit_item": hex::encode(item.encode()),
    })
}

#[test]
fn test_vectors_match_the_code() {
    let generated = serde_json::to_string_pretty(&generate()).expect("vectors serialize") + "\n";
    let path = vectors_path();
    if std::env::var("WEFT_UPDATE_VECTORS").as_deref() == Ok("1") {
        std::fs::write(&path, &generated)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}\nGenerate it with WEFT_UPDATE_VECTORS=1 cargo test -p weft-core --test test_vectors",
            path.display()
        )
    });
    if committed != generated {
        let first = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        panic!(
            "{} no longer matches what the code produces (first difference at line {}):\n  committed: {}\n  generated: {}\n\
             This is a wire-format change: every independent client breaks. If it is intended, \
             regenerate with WEFT_UPDATE_VECTORS=1 cargo test -p weft-core --test test_vectors, \
             update docs/protocol.md, and call it out in review.",
            path.display(),
            first + 1,
            committed.lines().nth(first).unwrap_or("<end of file>"),
            generated.lines().nth(first).unwrap_or("<end of file>"),
        );
    }
}

// The committed vectors must also hold up when read back the way a client
// reads them: every transaction decodes from its hex and verifies.
#[test]
fn committed_transactions_decode_and_verify() {
    let text = std::fs::read_to_string(vectors_path()).expect("vectors exist");
    let vectors: Value = serde_json::from_str(&text).expect("vectors are JSON");
    let txs = vectors["transactions"]
        .as_array()
        .expect("a transaction list");
    assert!(!txs.is_empty());
    for v in txs {
        let bytes = hex::decode(v["signed_transaction_borsh"].as_str().unwrap()).unwrap();
        let tx = SignedTransaction::decode(&bytes).unwrap();
        tx.verify_signature().unwrap();
        tx.check_structure().unwrap();
        assert_eq!(tx.hash().to_hex(), v["hash"].as_str().unwrap());
        let fields: Transaction = serde_json::from_value(v["transaction"].clone()).unwrap();
        assert_eq!(tx.transaction, fields);
    }
}

// Committed bids decode, pass their stateless checks and verify.
#[test]
fn committed_bids_decode_and_verify() {
    let text = std::fs::read_to_string(vectors_path()).expect("vectors exist");
    let vectors: Value = serde_json::from_str(&text).expect("vectors are JSON");
    let bids = vectors["bids"].as_array().expect("a bid list");
    assert_eq!(bids.len(), 3);
    for v in bids {
        let bytes = hex::decode(v["signed_bid_borsh"].as_str().unwrap()).unwrap();
        let bid = SignedBid::decode(&bytes).unwrap();
        bid.check_structure().unwrap();
        bid.verify_signature().unwrap();
        assert_eq!(bid.hash().to_hex(), v["hash"].as_str().unwrap());
        let fields: Bid = serde_json::from_value(v["bid"].clone()).unwrap();
        assert_eq!(bid.bid, fields);
        let item = hex::decode(v["block_item"].as_str().unwrap()).unwrap();
        assert_eq!(SignedBid::decode_item(&item).unwrap(), bid);
    }
    for v in vectors["relay_requests"]
        .as_array()
        .expect("a request list")
    {
        let bytes = hex::decode(v["signed_request_borsh"].as_str().unwrap()).unwrap();
        SignedRelayRequest::decode(&bytes)
            .unwrap()
            .verify_signature()
            .unwrap();
    }
}
