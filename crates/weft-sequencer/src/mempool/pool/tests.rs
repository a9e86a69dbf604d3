use std::time::{Duration, Instant};

use bytes::Bytes;
use weft_core::{Action, Amount, ChainParams, RollupId, SigningKey, Transaction, TxCode};

use super::*;
use crate::{
    accounts::{Account, AccountsWrite},
    mempool::SignatureCache,
    storage::{delta::EmptyState, StateDelta},
};

const CHAIN: &str = "weft-pool";

fn state(funded: &[(&SigningKey, Amount)]) -> StateDelta<EmptyState> {
    crate::test_support::state(
        CHAIN,
        ChainParams {
            base_fee: 10,
            fee_per_byte: 1,
            ..ChainParams::default()
        },
        funded,
    )
}

fn tx(key: &SigningKey, nonce: u64, data: &[u8]) -> (CheckedTx, Bytes) {
    let bytes: Bytes = Transaction {
        chain_id: CHAIN.into(),
        nonce,
        actions: vec![Action::SubmitRollupData {
            rollup_id: RollupId::from_name("r"),
            data: data.to_vec(),
        }],
    }
    .sign(key)
    .encode()
    .into();
    let checked = SignatureCache::new(0)
        .check_stateless(&bytes, CHAIN)
        .unwrap();
    (checked, bytes)
}

fn admit(
    pool: &mut Mempool,
    s: &StateDelta<EmptyState>,
    key: &SigningKey,
    nonce: u64,
    now: Instant,
) -> Result<TxStatus, crate::error::ExecError> {
    let (c, b) = tx(key, nonce, format!("{nonce}").as_bytes());
    pool.admit(s, c, b, now)
}

fn hash_of(key: &SigningKey, nonce: u64) -> Hash {
    tx(key, nonce, format!("{nonce}").as_bytes()).0.hash
}

fn config() -> MempoolConfig {
    MempoolConfig {
        max_parked_per_account: 3,
        max_parked: 5,
        max_txs: 10,
        ..MempoolConfig::default()
    }
}

#[test]
fn gaps_park_and_filling_them_promotes() {
    let a = SigningKey::from_seed("a");
    let s = state(&[(&a, 1_000_000)]);
    let mut pool = Mempool::new(config());
    let now = Instant::now();
    assert_eq!(admit(&mut pool, &s, &a, 0, now).unwrap(), TxStatus::Pending);
    assert_eq!(
        admit(&mut pool, &s, &a, 2, now).unwrap(),
        TxStatus::Parked {
            waiting_for_nonce: 1
        }
    );
    assert_eq!(
        admit(&mut pool, &s, &a, 3, now).unwrap(),
        TxStatus::Parked {
            waiting_for_nonce: 1
        }
    );
    assert_eq!(pool.parked_len(), 2);
    assert_eq!(admit(&mut pool, &s, &a, 1, now).unwrap(), TxStatus::Pending);
    assert_eq!(
        pool.parked_len(),
        0,
        "filling the gap promotes the parked txs"
    );
    assert_eq!(pool.status(&hash_of(&a, 3)), Some(TxStatus::Pending));
    let run: Vec<u64> = pool
        .pending_runs()
        .flatten()
        .map(|e| e.checked.tx.transaction.nonce)
        .collect();
    assert_eq!(run, vec![0, 1, 2, 3]);
}

#[test]
fn duplicates_and_nonce_window_are_refused() {
    let a = SigningKey::from_seed("a");
    let mut s = state(&[(&a, 1_000_000)]);
    let mut pool = Mempool::new(config());
    let now = Instant::now();
    admit(&mut pool, &s, &a, 0, now).unwrap();
    assert_eq!(
        admit(&mut pool, &s, &a, 0, now).unwrap_err().code(),
        TxCode::Duplicate
    );
    let (other, bytes) = tx(&a, 0, b"different payload, same nonce");
    assert_eq!(
        pool.admit(&s, other, bytes, now).unwrap_err().code(),
        TxCode::Duplicate
    );
    let far = pool.config().max_nonce_ahead + 1;
    assert_eq!(
        admit(&mut pool, &s, &a, far, now).unwrap_err().code(),
        TxCode::NonceTooFarAhead
    );
    s.put_account(
        &a.address(),
        Account {
            balance: 1_000_000,
            nonce: 5,
        },
    );
    assert_eq!(
        admit(&mut pool, &s, &a, 4, now).unwrap_err().code(),
        TxCode::NonceAlreadyUsed
    );
}

#[test]
fn parked_limits_per_account_and_overall() {
    let keys: Vec<SigningKey> = (0..3)
        .map(|i| SigningKey::from_seed(&format!("k{i}")))
        .collect();
    let funded: Vec<(&SigningKey, Amount)> = keys.iter().map(|k| (k, 1_000_000)).collect();
    let s = state(&funded);
    let mut pool = Mempool::new(config());
    let now = Instant::now();
    for n in 1..=3 {
        admit(&mut pool, &s, &keys[0], n, now).unwrap();
    }
    let e = admit(&mut pool, &s, &keys[0], 4, now).unwrap_err();
    assert_eq!(
        e.code(),
        TxCode::MempoolFull,
        "per-account parked limit: {e}"
    );
    admit(&mut pool, &s, &keys[1], 1, now).unwrap();
    admit(&mut pool, &s, &keys[1], 2, now).unwrap();
    let e = admit(&mut pool, &s, &keys[2], 1, now).unwrap_err();
    assert_eq!(e.code(), TxCode::MempoolFull, "overall parked limit: {e}");
    // An executable tx is still welcome.
    assert_eq!(
        admit(&mut pool, &s, &keys[2], 0, now).unwrap(),
        TxStatus::Pending
    );
}

#[test]
fn when_full_executable_arrivals_evict_oldest_parked_and_parked_arrivals_are_refused() {
    let keys: Vec<SigningKey> = (0..12)
        .map(|i| SigningKey::from_seed(&format!("k{i}")))
        .collect();
    let funded: Vec<(&SigningKey, Amount)> = keys.iter().map(|k| (k, 1_000_000)).collect();
    let s = state(&funded);
    let mut pool = Mempool::new(MempoolConfig {
        max_txs: 4,
        ..config()
    });
    let now = Instant::now();
    admit(&mut pool, &s, &keys[0], 1, now).unwrap(); // parked, oldest
    admit(&mut pool, &s, &keys[1], 1, now).unwrap(); // parked
    admit(&mut pool, &s, &keys[2], 0, now).unwrap();
    admit(&mut pool, &s, &keys[3], 0, now).unwrap();
    assert_eq!(pool.len(), 4);
    assert_eq!(
        admit(&mut pool, &s, &keys[4], 1, now).unwrap_err().code(),
        TxCode::MempoolFull
    );
    assert_eq!(
        admit(&mut pool, &s, &keys[5], 0, now).unwrap(),
        TxStatus::Pending
    );
    assert!(
        matches!(
            pool.status(&hash_of(&keys[0], 1)),
            Some(TxStatus::Evicted { .. })
        ),
        "the oldest parked tx made room"
    );
    assert_eq!(
        pool.status(&hash_of(&keys[1], 1)),
        Some(TxStatus::Parked {
            waiting_for_nonce: 0
        })
    );
    admit(&mut pool, &s, &keys[6], 0, now).unwrap();
    // Only pending left: nothing may be evicted, the arrival is refused.
    assert_eq!(
        admit(&mut pool, &s, &keys[7], 0, now).unwrap_err().code(),
        TxCode::MempoolFull
    );
    assert_eq!(pool.len(), 4);
    // Byte bound, too.
    let mut small = Mempool::new(MempoolConfig {
        max_bytes: 350,
        ..config()
    });
    admit(&mut small, &s, &keys[8], 0, now).unwrap();
    admit(&mut small, &s, &keys[9], 0, now).unwrap();
    assert_eq!(
        admit(&mut small, &s, &keys[10], 0, now).unwrap_err().code(),
        TxCode::MempoolFull
    );
    assert!(small.bytes() <= 350);
}

#[test]
fn an_account_must_afford_all_its_queued_transactions() {
    let a = SigningKey::from_seed("a");
    // Each tx costs base 10 + 1 byte of data = 11.
    let s = state(&[(&a, 25)]);
    let mut pool = Mempool::new(config());
    let now = Instant::now();
    admit(&mut pool, &s, &a, 0, now).unwrap();
    admit(&mut pool, &s, &a, 1, now).unwrap();
    let e = admit(&mut pool, &s, &a, 2, now).unwrap_err();
    assert_eq!(e.code(), TxCode::InsufficientFunds, "{e}");
}

#[test]
fn ttl_expires_on_recheck_and_on_commit() {
    let (a, b) = (SigningKey::from_seed("a"), SigningKey::from_seed("b"));
    let s = state(&[(&a, 1_000_000), (&b, 1_000_000)]);
    let ttl = Duration::from_secs(10);
    let mut pool = Mempool::new(MempoolConfig { ttl, ..config() });
    let t0 = Instant::now();
    admit(&mut pool, &s, &a, 0, t0).unwrap();
    admit(&mut pool, &s, &b, 0, t0 + Duration::from_secs(5)).unwrap();
    let later = t0 + ttl + Duration::from_secs(1);
    let e = pool.recheck(&s, &hash_of(&a, 0), later).unwrap_err();
    assert_eq!(e.code(), TxCode::Evicted);
    assert!(
        matches!(pool.status(&hash_of(&a, 0)), Some(TxStatus::Evicted { reason }) if reason.starts_with("expired"))
    );
    assert!(pool.recheck(&s, &hash_of(&b, 0), later).is_ok());
    pool.on_commit(&s, &[], t0 + Duration::from_secs(16))
        .unwrap();
    assert!(
        pool.is_empty(),
        "the commit sweep expires what recheck never saw"
    );
    assert!(matches!(
        pool.status(&hash_of(&b, 0)),
        Some(TxStatus::Evicted { .. })
    ));
    // Recheck of something already gone tells CometBFT to drop it.
    assert_eq!(
        pool.recheck(&s, &hash_of(&b, 0), later).unwrap_err().code(),
        TxCode::Evicted
    );
}

#[test]
fn the_next_nonce_after_a_commit_is_executable_at_once() {
    let a = SigningKey::from_seed("a");
    let mut s = state(&[(&a, 1_000_000)]);
    let mut pool = Mempool::new(config());
    let now = Instant::now();
    admit(&mut pool, &s, &a, 0, now).unwrap();
    s.put_account(
        &a.address(),
        Account {
            balance: 999_000,
            nonce: 1,
        },
    );
    pool.on_commit(&s, &[hash_of(&a, 0)], now).unwrap();
    assert!(pool.is_empty());
    // The account has no queue left; its next nonce must not wait for a
    // recheck to become part of the next proposal.
    assert_eq!(admit(&mut pool, &s, &a, 1, now).unwrap(), TxStatus::Pending);
    assert_eq!(pool.parked_len(), 0);
    let run: Vec<u64> = pool
        .pending_runs()
        .flatten()
        .map(|e| e.checked.tx.transaction.nonce)
        .collect();
    assert_eq!(run, vec![1]);
    assert_eq!(
        admit(&mut pool, &s, &a, 3, now).unwrap(),
        TxStatus::Parked {
            waiting_for_nonce: 2
        }
    );
}

#[test]
fn commit_removes_included_and_evicts_stale_nonces() {
    let a = SigningKey::from_seed("a");
    let mut s = state(&[(&a, 1_000_000)]);
    let mut pool = Mempool::new(config());
    let now = Instant::now();
    admit(&mut pool, &s, &a, 0, now).unwrap();
    admit(&mut pool, &s, &a, 1, now).unwrap();
    admit(&mut pool, &s, &a, 3, now).unwrap();
    // Block: nonce 0 included (ours), nonce 1 used by some other tx we never saw.
    s.put_account(
        &a.address(),
        Account {
            balance: 999_000,
            nonce: 2,
        },
    );
    pool.on_commit(&s, &[hash_of(&a, 0)], now).unwrap();
    assert_eq!(
        pool.status(&hash_of(&a, 0)),
        None,
        "included: the block index answers"
    );
    assert!(
        matches!(pool.status(&hash_of(&a, 1)), Some(TxStatus::Evicted { reason }) if reason.contains("nonce 1"))
    );
    assert_eq!(
        pool.status(&hash_of(&a, 3)),
        Some(TxStatus::Parked {
            waiting_for_nonce: 2
        })
    );
}

#[test]
fn recheck_evicts_what_became_unaffordable() {
    let a = SigningKey::from_seed("a");
    let mut s = state(&[(&a, 1_000)]);
    let mut pool = Mempool::new(config());
    let now = Instant::now();
    admit(&mut pool, &s, &a, 0, now).unwrap();
    s.put_account(
        &a.address(),
        Account {
            balance: 3,
            nonce: 0,
        },
    );
    let e = pool.recheck(&s, &hash_of(&a, 0), now).unwrap_err();
    assert_eq!(e.code(), TxCode::InsufficientFunds);
    assert!(matches!(
        pool.status(&hash_of(&a, 0)),
        Some(TxStatus::Evicted { .. })
    ));
}

#[test]
fn rejections_are_remembered_within_the_retention_window() {
    let mut pool = Mempool::new(MempoolConfig {
        status_retention: Duration::from_secs(5),
        max_statuses: 2,
        ..config()
    });
    let s = state(&[]);
    let now = Instant::now();
    let r = Rejection::new(TxCode::BadSignature, "nope");
    pool.record_rejection(Hash([1; 32]), &r, now);
    assert!(matches!(
        pool.status(&Hash([1; 32])),
        Some(TxStatus::Rejected { code: 4, .. })
    ));
    pool.record_rejection(Hash([2; 32]), &r, now);
    pool.record_rejection(Hash([3; 32]), &r, now);
    assert_eq!(
        pool.status(&Hash([1; 32])),
        None,
        "bounded count: oldest forgotten"
    );
    pool.on_commit(&s, &[], now + Duration::from_secs(6))
        .unwrap();
    assert_eq!(pool.status(&Hash([3; 32])), None, "retention window passed");
}

#[test]
fn a_status_recorded_again_outlives_its_older_record() {
    let mut pool = Mempool::new(MempoolConfig {
        max_statuses: 2,
        ..config()
    });
    let now = Instant::now();
    let r = Rejection::new(TxCode::BadSignature, "nope");
    pool.record_rejection(Hash([1; 32]), &r, now);
    pool.record_rejection(Hash([2; 32]), &r, now);
    pool.record_rejection(Hash([1; 32]), &r, now); // submitted and refused again
    pool.record_rejection(Hash([3; 32]), &r, now);
    assert!(
        pool.status(&Hash([1; 32])).is_some(),
        "the newer record of hash 1 is kept"
    );
    assert_eq!(
        pool.status(&Hash([2; 32])),
        None,
        "the oldest live record is forgotten"
    );
    assert!(pool.status(&Hash([3; 32])).is_some());
}

#[test]
fn the_pending_nonce_follows_the_gap_free_run() {
    let a = SigningKey::from_seed("a");
    let b = SigningKey::from_seed("b");
    let s = state(&[(&a, 1_000_000), (&b, 1_000_000)]);
    let mut pool = Mempool::new(config());
    let now = Instant::now();
    assert_eq!(pool.pending_nonce(&a.address()), None, "nothing held");
    admit(&mut pool, &s, &a, 0, now).unwrap();
    admit(&mut pool, &s, &a, 1, now).unwrap();
    // Committed nonce 0 plus two pending transactions.
    assert_eq!(pool.pending_nonce(&a.address()), Some(2));
    // A parked nonce does not move it; filling the gap does.
    admit(&mut pool, &s, &a, 3, now).unwrap();
    assert_eq!(pool.pending_nonce(&a.address()), Some(2));
    admit(&mut pool, &s, &a, 2, now).unwrap();
    assert_eq!(pool.pending_nonce(&a.address()), Some(4));
    // Only parked transactions: nothing pending.
    admit(&mut pool, &s, &b, 1, now).unwrap();
    assert_eq!(pool.pending_nonce(&b.address()), None);
}
