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

    /// Verifies, on up to `threads` threads, the signatures of every item
    /// of `txs` not in the cache yet, and remembers those that verify.
    /// Items that fail any check are left for the caller's own in-order
    /// checks to report; this only moves work earlier and in parallel.
    pub fn warm(&self, txs: &[bytes::Bytes], chain_id: &str, threads: usize) {
        let missing: Vec<&bytes::Bytes> = {
            let verified = self.lock();
            txs.iter()
                .filter(|t| !verified.set.contains(&weft_core::sha256(t)))
                .collect()
        };
        // Below this, spawning threads costs more than it saves.
        const MIN_PER_THREAD: usize = 32;
        let threads = threads.min(missing.len() / MIN_PER_THREAD).max(1);
        if threads == 1 {
            for t in missing {
                let _ = self.check_stateless(t, chain_id);
            }
            return;
        }
        let chunk = missing.len().div_ceil(threads);
        std::thread::scope(|s| {
            for part in missing.chunks(chunk) {
                s.spawn(move || {
                    for t in part {
                        let _ = self.check_stateless(t, chain_id);
                    }
                });
            }
        });
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
    fn warming_in_parallel_remembers_exactly_the_valid_signatures() {
        let key = SigningKey::from_bytes([7; 32]);
        let mut txs: Vec<bytes::Bytes> = (0..200).map(|n| signed(&key, n, "c")).collect();
        // A flipped signature byte, another chain's tx, and garbage.
        let mut forged = signed(&key, 999, "c").to_vec();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        txs.push(forged.clone().into());
        txs.push(signed(&key, 1000, "other"));
        txs.push(bytes::Bytes::from_static(b"not a transaction"));

        let c = SignatureCache::new(10_000);
        c.warm(&txs, "c", 2);
        for t in &txs[..200] {
            assert!(c.contains(&weft_core::sha256(t)));
        }
        for t in &txs[200..] {
            assert!(!c.contains(&weft_core::sha256(t)), "only valid ones cached");
        }
        // The in-order check still reports the forged one.
        let r = c.check_stateless(&forged, "c").unwrap_err();
        assert_eq!(r.code, TxCode::BadSignature);
    }
}
