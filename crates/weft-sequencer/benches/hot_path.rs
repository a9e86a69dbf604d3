//! Microbenchmarks of the sequencer's hot path through the real `App`
//! (real redb storage, real mempool): CheckTx against the cost of one
//! ed25519 verification, CheckTx of envelopes per inner transaction (one
//! batch verification each), and PrepareProposal / ProcessProposal of a full
//! 4 MiB block with 10,000 pending transactions, and a proposer's whole
//! consensus path for a block of 4,096 small transactions (PrepareProposal,
//! ProcessProposal, FinalizeBlock, Commit, each timed).
//!
//! Run: `cargo bench -p weft-sequencer --bench hot_path`

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tendermint::{
    abci::request::CheckTxKind,
    account, block, consensus, evidence,
    v0_38::abci::{request, Request, Response},
    Time,
};
use weft_core::{
    Action, ChainParams, GenesisAccount, GenesisAppState, RollupId, SignedTransaction, SigningKey,
    Transaction,
};
use weft_sequencer::{app::AppConfig, mempool::MempoolConfig, App, Storage};

const CHAIN: &str = "weft-bench";
const MAX_BLOCK: i64 = 4 * 1024 * 1024;

fn consensus_params() -> consensus::Params {
    consensus::Params {
        block: block::Size {
            max_bytes: MAX_BLOCK as u64,
            max_gas: -1,
            time_iota_ms: 1000,
        },
        evidence: evidence::Params {
            max_age_num_blocks: 100_000,
            max_age_duration: evidence::Duration(Duration::from_secs(172_800)),
            max_bytes: 1 << 20,
        },
        validator: consensus::params::ValidatorParams {
            pub_key_types: vec![tendermint::public_key::Algorithm::Ed25519],
        },
        version: None,
        abci: Default::default(),
    }
}

/// A fresh app (own temp dir) with `keys` funded and big mempool bounds.
fn app(keys: &[SigningKey]) -> (App, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = AppConfig {
        mempool: MempoolConfig {
            max_txs: 100_000,
            max_bytes: 1 << 30,
            ..MempoolConfig::default()
        },
        ..AppConfig::default()
    };
    let mut app = App::new(Storage::open(dir.path()).unwrap(), config).unwrap();
    let genesis = GenesisAppState {
        inclusion: None,
        auction: None,
        accounts: keys
            .iter()
            .map(|k| GenesisAccount {
                address: k.address(),
                balance: u64::MAX.into(),
            })
            .collect(),
        params: ChainParams {
            max_rollup_data_per_block: MAX_BLOCK as u64,
            max_txs_per_account_per_block: 1_000,
            ..ChainParams::default()
        },
        staking: None,
        governance: None,
    };
    app.handle(Request::InitChain(request::InitChain {
        time: Time::from_unix_timestamp(1_700_000_000, 0).unwrap(),
        chain_id: CHAIN.into(),
        consensus_params: consensus_params(),
        validators: vec![],
        app_state_bytes: serde_json::to_vec(&genesis).unwrap().into(),
        initial_height: 1u32.into(),
    }));
    (app, dir)
}

fn keys(n: usize) -> Vec<SigningKey> {
    (0..n)
        .map(|i| SigningKey::from_seed(&format!("bench-{i}")))
        .collect()
}

/// `per_account` consecutive nonces for every key, interleaved by nonce.
fn txs(keys: &[SigningKey], per_account: u64, data: usize) -> Vec<Bytes> {
    let mut out = Vec::new();
    for nonce in 0..per_account {
        for (i, k) in keys.iter().enumerate() {
            let payload = vec![(i as u8) ^ (nonce as u8); data];
            let tx = Transaction {
                chain_id: CHAIN.into(),
                nonce,
                actions: vec![Action::SubmitRollupData {
                    rollup_id: RollupId::from_name(["a", "b", "c"][i % 3]),
                    data: payload,
                }],
            };
            out.push(tx.sign(k).encode().into());
        }
    }
    out
}

fn check_tx(app: &mut App, tx: Bytes) -> bool {
    match app.handle(Request::CheckTx(request::CheckTx {
        tx,
        kind: CheckTxKind::New,
    })) {
        Response::CheckTx(r) => r.code.is_ok(),
        _ => false,
    }
}

fn bench_check_tx(c: &mut Criterion) {
    let mut g = c.benchmark_group("check_tx");
    g.throughput(Throughput::Elements(1));
    // Baseline: one ed25519 verification of a typical transaction.
    let key = SigningKey::from_seed("verify");
    let one = SignedTransaction::decode(&txs(std::slice::from_ref(&key), 1, 200)[0]).unwrap();
    g.bench_function("ed25519_verify_baseline", |b| {
        b.iter(|| one.verify_signature().unwrap())
    });
    // For reference: ed25519-dalek's cofactorless strict verification
    // (the rule before ZIP 215), on the same transaction.
    let message = one.signing_message();
    let dalek_key = ed25519_dalek::VerifyingKey::from_bytes(&one.public_key.0).unwrap();
    let dalek_sig = ed25519_dalek::Signature::from_bytes(&one.signature.0);
    g.bench_function("ed25519_dalek_verify_strict_reference", |b| {
        b.iter(|| dalek_key.verify_strict(&message, &dalek_sig).unwrap())
    });

    // Full CheckTx of new 200-byte-payload txs: decode, hash, signature,
    // state read, mempool admission. 1,000 accounts x 32 nonces per app.
    let accounts = keys(1_000);
    let pool: Vec<Bytes> = txs(&accounts, 32, 200);
    g.bench_function("new_tx_200b", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters as usize;
            while left > 0 {
                let (mut app, _dir) = app(&accounts);
                let n = left.min(pool.len());
                let start = Instant::now();
                for tx in &pool[..n] {
                    assert!(check_tx(&mut app, tx.clone()));
                }
                total += start.elapsed();
                left -= n;
            }
            total
        })
    });

    // The same transactions in envelopes of ENVELOPE_TXS: CheckTx of each
    // envelope (decode, hash, one batch verification, admission of every
    // inner transaction), reported per inner transaction.
    let envelopes: Vec<Bytes> = pool
        .chunks(ENVELOPE_TXS)
        .map(|part| {
            Bytes::from(
                weft_core::Envelope {
                    txs: part.iter().map(|t| t.to_vec()).collect(),
                }
                .encode(),
            )
        })
        .collect();
    g.bench_function("envelope_256x200b_per_inner_tx", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0u64;
            while done < iters {
                let (mut app, _dir) = app(&accounts);
                for e in &envelopes {
                    if done >= iters {
                        break;
                    }
                    let start = Instant::now();
                    assert!(check_tx(&mut app, e.clone()));
                    total += start.elapsed();
                    done += ENVELOPE_TXS as u64;
                }
            }
            // Scaled to exactly `iters` inner transactions.
            total.mul_f64(iters as f64 / done as f64)
        })
    });

    // The batch verification alone, per signature.
    let signed: Vec<SignedTransaction> = pool[..ENVELOPE_TXS]
        .iter()
        .map(|t| SignedTransaction::decode(t).unwrap())
        .collect();
    let messages: Vec<Vec<u8>> = signed.iter().map(|t| t.signing_message()).collect();
    g.bench_function("batch_verify_256_per_signature", |b| {
        b.iter_custom(|iters| {
            let rounds = iters.div_ceil(ENVELOPE_TXS as u64);
            let start = Instant::now();
            for _ in 0..rounds {
                let mut batch = weft_core::keys::BatchVerifier::new();
                for (t, m) in signed.iter().zip(&messages) {
                    batch.queue(&t.public_key, m, &t.signature);
                }
                batch.verify().unwrap();
            }
            start
                .elapsed()
                .mul_f64(iters as f64 / (rounds * ENVELOPE_TXS as u64) as f64)
        })
    });
    g.finish();
}

/// Transactions per envelope in the envelope benchmarks.
const ENVELOPE_TXS: usize = 256;

fn prepare(app: &mut App) -> Vec<Bytes> {
    match app.handle(Request::PrepareProposal(request::PrepareProposal {
        max_tx_bytes: MAX_BLOCK,
        txs: vec![],
        local_last_commit: None,
        misbehavior: vec![],
        height: 1u32.into(),
        time: Time::from_unix_timestamp(1_700_000_001, 0).unwrap(),
        next_validators_hash: Default::default(),
        proposer_address: account::Id::new([1; 20]),
    })) {
        Response::PrepareProposal(r) => r.txs,
        other => panic!("{other:?}"),
    }
}

fn bench_proposals(c: &mut Criterion) {
    // 10,000 pending txs of ~530 bytes (400 bytes of rollup data): more than
    // a 4 MiB block holds, so PrepareProposal fills the block.
    let accounts = keys(1_000);
    let (mut app, _dir) = app(&accounts);
    for tx in txs(&accounts, 10, 400) {
        assert!(check_tx(&mut app, tx));
    }
    let block = prepare(&mut app);
    let bytes: usize = block.iter().map(|t| t.len()).sum();
    eprintln!("prepared block: {} txs, {bytes} bytes", block.len() - 1);
    let mut g = c.benchmark_group("proposal");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("prepare_4MiB_from_10k_pending", |b| {
        b.iter(|| prepare(&mut app))
    });
    g.bench_function("process_4MiB", |b| {
        b.iter_batched(
            || block.clone(),
            |txs| {
                let r = app.handle(Request::ProcessProposal(request::ProcessProposal {
                    txs,
                    proposed_last_commit: None,
                    misbehavior: vec![],
                    hash: tendermint::Hash::Sha256([9; 32]),
                    height: 1u32.into(),
                    time: Time::from_unix_timestamp(1_700_000_001, 0).unwrap(),
                    next_validators_hash: Default::default(),
                    proposer_address: account::Id::new([1; 20]),
                }));
                assert!(matches!(
                    r,
                    Response::ProcessProposal(tendermint::abci::response::ProcessProposal::Accept)
                ));
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// Accounts of the block-cycle benchmark (as `weft-bench`'s default).
const CYCLE_ACCOUNTS: usize = 16_384;
/// Transactions per block of the block-cycle benchmark: one each from
/// distinct accounts, as an open-loop load of 200 B payloads fills a block.
const CYCLE_TXS: usize = 4_096;

/// Time spent in each handler over the cycles run.
#[derive(Default)]
struct CyclePhases {
    blocks: u32,
    prepare: Duration,
    process: Duration,
    finalize: Duration,
    commit: Duration,
}

impl CyclePhases {
    fn total(&self) -> Duration {
        self.prepare + self.process + self.finalize + self.commit
    }

    fn report(&self) {
        let per = |d: Duration| d.as_secs_f64() * 1e3 / f64::from(self.blocks.max(1));
        eprintln!(
            "block cycle, {CYCLE_TXS} txs of 200 B from {CYCLE_ACCOUNTS} accounts, mean of {} blocks: \
             PrepareProposal {:.1} ms, ProcessProposal {:.1} ms, FinalizeBlock {:.1} ms, Commit {:.1} ms, \
             total {:.1} ms = {:.1} µs per tx",
            self.blocks,
            per(self.prepare),
            per(self.process),
            per(self.finalize),
            per(self.commit),
            per(self.total()),
            per(self.total()) * 1e3 / CYCLE_TXS as f64,
        );
    }
}

/// The proposer's whole consensus path for one height: PrepareProposal of
/// the pending transactions, ProcessProposal of its own proposal,
/// FinalizeBlock and Commit. The CheckTx that fills the mempool first is
/// not timed.
fn bench_block_cycle(c: &mut Criterion) {
    let accounts = keys(CYCLE_ACCOUNTS);
    let (mut app, _dir) = app(&accounts);
    let mut nonces = vec![0u64; accounts.len()];
    let mut next_account = 0usize;
    let mut height = 1u32;
    let mut phases = CyclePhases::default();
    let mut one_block = |app: &mut App, phases: &mut CyclePhases| {
        for _ in 0..CYCLE_TXS {
            let i = next_account;
            next_account = (next_account + 1) % accounts.len();
            let tx = Transaction {
                chain_id: CHAIN.into(),
                nonce: nonces[i],
                actions: vec![Action::SubmitRollupData {
                    rollup_id: RollupId::from_name(["a", "b", "c", "d"][i % 4]),
                    data: vec![i as u8; 200],
                }],
            };
            nonces[i] += 1;
            assert!(check_tx(app, tx.sign(&accounts[i]).encode().into()));
        }
        let time = Time::from_unix_timestamp(1_700_000_000 + i64::from(height), 0).unwrap();
        let hash = tendermint::Hash::Sha256([height as u8; 32]);
        let proposer = account::Id::new([1; 20]);
        let started = Instant::now();
        let txs = match app.handle(Request::PrepareProposal(request::PrepareProposal {
            max_tx_bytes: MAX_BLOCK,
            txs: vec![],
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
        assert_eq!(
            txs.len(),
            CYCLE_TXS + 1,
            "every pending tx and the commitments"
        );
        let prepared = Instant::now();
        let r = app.handle(Request::ProcessProposal(request::ProcessProposal {
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
            r,
            Response::ProcessProposal(tendermint::abci::response::ProcessProposal::Accept)
        ));
        let processed = Instant::now();
        let r = app.handle(Request::FinalizeBlock(request::FinalizeBlock {
            txs,
            decided_last_commit: tendermint::abci::types::CommitInfo {
                round: 0u16.into(),
                votes: vec![],
            },
            misbehavior: vec![],
            hash,
            height: height.into(),
            time,
            next_validators_hash: Default::default(),
            proposer_address: proposer,
        }));
        let Response::FinalizeBlock(fin) = r else {
            panic!("{r:?}")
        };
        assert!(fin.tx_results.iter().all(|r| r.code.is_ok()));
        let finalized = Instant::now();
        assert!(matches!(app.handle(Request::Commit), Response::Commit(_)));
        let committed = Instant::now();
        height += 1;
        phases.blocks += 1;
        phases.prepare += prepared - started;
        phases.process += processed - prepared;
        phases.finalize += finalized - processed;
        phases.commit += committed - finalized;
        committed - started
    };
    // Warm up: every account touched once, the tree at its working size.
    for _ in 0..CYCLE_ACCOUNTS / CYCLE_TXS {
        one_block(&mut app, &mut CyclePhases::default());
    }
    let mut g = c.benchmark_group("block");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(CYCLE_TXS as u64));
    g.bench_function("cycle_4096x200b_16k_accounts", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| one_block(&mut app, &mut phases))
                .sum::<Duration>()
        })
    });
    g.finish();
    phases.report();
}

criterion_group!(benches, bench_check_tx, bench_proposals, bench_block_cycle);
criterion_main!(benches);
