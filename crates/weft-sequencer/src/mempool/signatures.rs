//! The cache of verified signatures: a hit skips re-verifying bytes that
//! verified before, so outcomes never depend on it. Shared by CheckTx
//! (which fills it from several threads at once) and the proposal
//! handlers (which mostly hit it: every transaction they see was checked
//! on admission or gossip).

use std::{
    collections::{HashSet, VecDeque},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, PoisonError,
    },
};

use weft_core::{Hash, TxCode};

use crate::transaction::{check_decoded, CheckedTx, Rejection};

/// Hashes of transactions whose signatures verified. Bounded, oldest
/// forgotten first. Cheap to clone; clones share one cache.
#[derive(Clone)]
pub struct SignatureCache {
    inner: Arc<Mutex<Verified>>,
    /// Signatures verified one by one after their batch failed.
    fallbacks: Arc<AtomicU64>,
}

/// Most signatures in one batch equation. A batch that fails is verified
/// again one signature at a time, so one bad signature costs at most this
/// many single verifications, however large the envelope or request it
/// came in: a batch of 4,096 with one forgery would otherwise cost one and
/// a half times the verification of its transactions sent alone. 256 is
/// where a batch's cost per signature has levelled off (Pippenger's
/// method, 513 points).
pub const MAX_BATCH_SIGNATURES: usize = 256;

struct Verified {
    set: HashSet<Hash>,
    order: VecDeque<Hash>,
    capacity: usize,
}

impl SignatureCache {
    /// A cache holding at most `capacity` hashes.
    pub fn new(capacity: usize) -> Self {
        SignatureCache {
            inner: Arc::new(Mutex::new(Verified {
                set: HashSet::new(),
                order: VecDeque::new(),
                capacity,
            })),
            fallbacks: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Signatures verified one by one because their batch failed, since
    /// the cache was made (also counted in
    /// `weft_signature_fallback_verifications_total`).
    pub fn fallback_verifications(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// Stateless checks, verifying the signature unless these exact bytes
    /// verified before. The lock is not held while verifying, so callers
    /// on different threads verify in parallel.
    pub fn check_stateless(&self, bytes: &[u8], chain_id: &str) -> Result<CheckedTx, Rejection> {
        let checked = check_decoded(bytes, chain_id)?;
        if !self.contains(&checked.hash) {
            checked
                .tx
                .verify_signature()
                .map_err(|e| Rejection::new(TxCode::BadSignature, e.to_string()))?;
            self.insert(checked.hash);
        }
        Ok(checked)
    }

    /// [`check_stateless`](Self::check_stateless) of every item of `txs`,
    /// in order, spread over up to `threads` threads: a block's uncached
    /// signatures verify on every core. Each result is exactly what the
    /// one-by-one check gives (it is the same function), so callers keep
    /// their in-order semantics; each item is decoded and hashed once.
    pub fn check_all(
        &self,
        txs: &[bytes::Bytes],
        chain_id: &str,
        threads: usize,
    ) -> Vec<Result<CheckedTx, Rejection>> {
        // Below this many per thread, spawning costs more than it saves.
        const MIN_PER_THREAD: usize = 32;
        let threads = threads.min(txs.len() / MIN_PER_THREAD).max(1);
        if threads == 1 {
            return txs
                .iter()
                .map(|t| self.check_stateless(t, chain_id))
                .collect();
        }
        let chunk = txs.len().div_ceil(threads);
        std::thread::scope(|s| {
            let parts: Vec<_> = txs
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .map(|t| self.check_stateless(t, chain_id))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            parts
                .into_iter()
                .flat_map(|p| match p.join() {
                    Ok(results) => results,
                    // check_stateless does not panic on any input; if it
                    // ever did, the panic belongs to the caller's thread.
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        })
    }

    /// Stateless checks of many transactions, their uncached signatures
    /// verified in ed25519 batches of at most [`MAX_BATCH_SIGNATURES`]
    /// spread over `threads` threads (about half the cost of verifying each
    /// alone). A failed batch is retried one by one, so each result is
    /// exactly what [`check_stateless`](Self::check_stateless) gives: batch
    /// and single verification agree on every input (ZIP 215).
    pub fn check_batch(
        &self,
        txs: &[bytes::Bytes],
        chain_id: &str,
        threads: usize,
    ) -> Vec<Result<CheckedTx, Rejection>> {
        // Below this many per thread, a second thread costs more than it saves.
        const MIN_PER_THREAD: usize = 64;
        let mut results: Vec<Result<CheckedTx, Rejection>> =
            txs.iter().map(|t| check_decoded(t, chain_id)).collect();
        let uncached: Vec<usize> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| r.as_ref().is_ok_and(|c| !self.contains(&c.hash)))
            .map(|(i, _)| i)
            .collect();
        if uncached.is_empty() {
            return results;
        }
        let threads = threads.min(uncached.len() / MIN_PER_THREAD).max(1);
        let chunk = uncached.len().div_ceil(threads);
        let refused: Vec<(usize, Rejection)> = {
            let results = &results;
            let verify_batch = |part: &[usize], refused: &mut Vec<(usize, Rejection)>| {
                let checked = |i: usize| results[i].as_ref().ok();
                let messages: Vec<Vec<u8>> = part
                    .iter()
                    .filter_map(|&i| checked(i).map(|c| c.tx.signing_message()))
                    .collect();
                let verify_each = |refused: &mut Vec<(usize, Rejection)>| {
                    for (&i, m) in part.iter().zip(&messages) {
                        let Some(c) = checked(i) else { continue };
                        match c.tx.public_key.verify(m, &c.tx.signature) {
                            Ok(()) => self.insert(c.hash),
                            Err(e) => refused
                                .push((i, Rejection::new(TxCode::BadSignature, e.to_string()))),
                        }
                    }
                };
                // One signature alone: the single check's precomputed
                // basepoint tables beat a one-item multiscalar product.
                if messages.len() < 2 {
                    verify_each(refused);
                    return;
                }
                let mut batch = weft_core::keys::BatchVerifier::new();
                for (&i, m) in part.iter().zip(&messages) {
                    if let Some(c) = checked(i) {
                        batch.queue(&c.tx.public_key, m, &c.tx.signature);
                    }
                }
                if batch.verify().is_ok() {
                    part.iter()
                        .filter_map(|&i| checked(i))
                        .for_each(|c| self.insert(c.hash));
                    return;
                }
                self.fallbacks
                    .fetch_add(messages.len() as u64, Ordering::Relaxed);
                metrics::counter!("weft_signature_fallback_verifications_total")
                    .increment(messages.len() as u64);
                verify_each(refused);
            };
            let verify = |part: &[usize]| -> Vec<(usize, Rejection)> {
                let mut refused = Vec::new();
                for batch in part.chunks(MAX_BATCH_SIGNATURES) {
                    verify_batch(batch, &mut refused);
                }
                refused
            };
            if threads == 1 {
                verify(&uncached)
            } else {
                std::thread::scope(|s| {
                    let parts: Vec<_> = uncached
                        .chunks(chunk)
                        .map(|part| s.spawn(move || verify(part)))
                        .collect();
                    parts
                        .into_iter()
                        .flat_map(|p| match p.join() {
                            Ok(refused) => refused,
                            Err(panic) => std::panic::resume_unwind(panic),
                        })
                        .collect()
                })
            }
        };
        for (i, r) in refused {
            results[i] = Err(r);
        }
        results
    }

    fn contains(&self, hash: &Hash) -> bool {
        self.lock().set.contains(hash)
    }

    fn insert(&self, hash: Hash) {
        let mut v = self.lock();
        if v.capacity == 0 || !v.set.insert(hash) {
            return;
        }
        v.order.push_back(hash);
        while v.order.len() > v.capacity {
            if let Some(old) = v.order.pop_front() {
                v.set.remove(&old);
            }
        }
    }

    /// A panic elsewhere cannot leave the set inconsistent in a way that
    /// matters (a hash is either in it or not), so poisoning is ignored.
    fn lock(&self) -> std::sync::MutexGuard<'_, Verified> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use weft_core::{Action, RollupId, SigningKey, Transaction};

    use super::*;

    #[test]
    fn cache_is_bounded_and_forgets_oldest() {
        let c = SignatureCache::new(2);
        let h = |i: u8| Hash([i; 32]);
        c.insert(h(1));
        c.insert(h(2));
        c.insert(h(3));
        assert!(!c.contains(&h(1)));
        assert!(c.contains(&h(2)) && c.contains(&h(3)));
        assert_eq!(c.lock().order.len(), 2);
    }

    fn signed(key: &SigningKey, nonce: u64, chain_id: &str) -> bytes::Bytes {
        Transaction {
            chain_id: chain_id.into(),
            nonce,
            actions: vec![Action::SubmitRollupData {
                rollup_id: RollupId::from_name("r"),
                data: vec![1, 2, 3],
            }],
        }
        .sign(key)
        .encode()
        .into()
    }

    type Checked = Vec<Result<CheckedTx, Rejection>>;

    /// The one-by-one, uncached check of every item.
    fn serial(txs: &[bytes::Bytes]) -> Checked {
        let c = SignatureCache::new(0);
        txs.iter().map(|t| c.check_stateless(t, "c")).collect()
    }

    /// Fails unless `got` gives each item what `want` gives it.
    fn assert_same(got: &Checked, want: &Checked) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            match (g, w) {
                (Ok(g), Ok(w)) => assert_eq!(g.hash, w.hash, "item {i}"),
                (Err(g), Err(w)) => assert_eq!(g, w, "item {i}"),
                _ => panic!("item {i}: {g:?} against {w:?}"),
            }
        }
    }

    /// The positions and codes of the refused items.
    fn refusals(results: &Checked) -> Vec<(usize, TxCode)> {
        results
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().err().map(|e| (i, e.code)))
            .collect()
    }

    /// Batches with a forged signature, another chain's tx and garbage
    /// among valid ones, on one and two threads, cached and not: every
    /// result is what the one-by-one check gives.
    #[test]
    fn batch_checks_give_the_one_by_one_results() {
        let keys: Vec<SigningKey> = (0..5u8)
            .map(|i| SigningKey::from_bytes([i + 1; 32]))
            .collect();
        let mut txs: Vec<bytes::Bytes> = (0..300u64)
            .map(|n| signed(&keys[n as usize % 5], n, "c"))
            .collect();
        let mut forged = signed(&keys[0], 999, "c").to_vec();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        txs.insert(77, forged.into());
        txs.insert(150, signed(&keys[1], 1000, "other"));
        txs.insert(200, bytes::Bytes::from_static(b"not a transaction"));
        let serial = serial(&txs);
        for threads in [1, 2] {
            let cache = SignatureCache::new(10_000);
            // Warm part of the cache, forged item included in the rest.
            let _ = cache.check_batch(&txs[..40], "c", threads);
            assert_same(&cache.check_batch(&txs, "c", threads), &serial);
            assert!(
                !cache.contains(&weft_core::sha256(&txs[77])),
                "a forgery is never cached"
            );
            assert!(cache.contains(&weft_core::sha256(&txs[299])));
        }
        assert_eq!(
            refusals(&serial),
            vec![
                (77, TxCode::BadSignature),
                (150, TxCode::WrongChainId),
                (200, TxCode::Malformed)
            ]
        );
    }

    #[test]
    fn a_forgery_costs_one_batch_of_single_verifications_not_the_whole_request() {
        let key = SigningKey::from_bytes([9; 32]);
        let n = 3 * MAX_BATCH_SIGNATURES;
        let mut txs: Vec<bytes::Bytes> = (0..n as u64).map(|n| signed(&key, n, "c")).collect();
        let mut forged = txs[MAX_BATCH_SIGNATURES + 7].to_vec();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        txs[MAX_BATCH_SIGNATURES + 7] = forged.into();
        let cache = SignatureCache::new(10_000);
        let results = cache.check_batch(&txs, "c", 1);
        assert_same(&results, &serial(&txs));
        assert_eq!(
            refusals(&results),
            vec![(MAX_BATCH_SIGNATURES + 7, TxCode::BadSignature)]
        );
        // Only the forgery's batch was verified again, one by one.
        assert_eq!(cache.fallback_verifications(), MAX_BATCH_SIGNATURES as u64);
        assert!(cache.contains(&weft_core::sha256(&txs[0])));
        assert!(cache.contains(&weft_core::sha256(&txs[n - 1])));
        // A lone signature is checked alone, not as a failed batch of one.
        let lone = cache.check_batch(&txs[MAX_BATCH_SIGNATURES + 7..][..1], "c", 1);
        assert_eq!(refusals(&lone), vec![(0, TxCode::BadSignature)]);
        assert_eq!(cache.fallback_verifications(), MAX_BATCH_SIGNATURES as u64);
    }

    #[test]
    fn checking_a_block_in_parallel_gives_the_one_by_one_results() {
        let key = SigningKey::from_bytes([7; 32]);
        let mut txs: Vec<bytes::Bytes> = (0..200).map(|n| signed(&key, n, "c")).collect();
        // A flipped signature byte, another chain's tx, and garbage.
        let mut forged = signed(&key, 999, "c").to_vec();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        txs.insert(50, forged.into());
        txs.insert(120, signed(&key, 1000, "other"));
        txs.push(bytes::Bytes::from_static(b"not a transaction"));

        let parallel = SignatureCache::new(10_000).check_all(&txs, "c", 2);
        assert_same(&parallel, &serial(&txs));
        assert_eq!(
            refusals(&parallel),
            vec![
                (50, TxCode::BadSignature),
                (120, TxCode::WrongChainId),
                (202, TxCode::Malformed)
            ]
        );
    }
}
