//! The cache of verified signatures: a hit skips re-verifying bytes that
//! verified before, so outcomes never depend on it. Shared by CheckTx
//! (which fills it from several threads at once) and the proposal
//! handlers (which mostly hit it: every transaction they see was checked
//! on admission or gossip).

use std::{
    collections::{HashSet, VecDeque},
    sync::{Arc, Mutex, PoisonError},
};

use weft_core::{Hash, TxCode};

use crate::transaction::{check_decoded, CheckedTx, Rejection};

/// Hashes of transactions whose signatures verified. Bounded, oldest
/// forgotten first. Cheap to clone; clones share one cache.
#[derive(Clone)]
pub struct SignatureCache {
    inner: Arc<Mutex<Verified>>,
}

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
        }
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
        let serial: Vec<_> = {
            let c = SignatureCache::new(0);
            txs.iter().map(|t| c.check_stateless(t, "c")).collect()
        };
        assert_eq!(parallel.len(), txs.len());
        for (i, (p, s)) in parallel.iter().zip(&serial).enumerate() {
            match (p, s) {
                (Ok(p), Ok(s)) => assert_eq!(p.hash, s.hash, "item {i}"),
                (Err(p), Err(s)) => assert_eq!(p, s, "item {i}"),
                _ => panic!("item {i}: {p:?} against {s:?}"),
            }
        }
        let codes: Vec<_> = parallel
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().err().map(|e| (i, e.code)))
            .collect();
        assert_eq!(
            codes,
            vec![
                (50, TxCode::BadSignature),
                (120, TxCode::WrongChainId),
                (202, TxCode::Malformed)
            ]
        );
    }
}
