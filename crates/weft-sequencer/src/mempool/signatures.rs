//! The cache of verified signatures: a hit skips re-verifying bytes that
//! verified before, so outcomes never depend on it.

use std::collections::{HashSet, VecDeque};

use weft_core::{Hash, TxCode};

use crate::transaction::{check_decoded, CheckedTx, Rejection};

/// Hashes of transactions whose signatures verified. Bounded, oldest
/// forgotten first.
pub struct SignatureCache {
    set: HashSet<Hash>,
    order: VecDeque<Hash>,
    capacity: usize,
}

impl SignatureCache {
    /// A cache holding at most `capacity` hashes.
    pub fn new(capacity: usize) -> Self {
        SignatureCache {
            set: HashSet::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    /// Stateless checks, verifying the signature unless these exact bytes
    /// verified before.
    pub fn check_stateless(
        &mut self,
        bytes: &[u8],
        chain_id: &str,
    ) -> Result<CheckedTx, Rejection> {
        let checked = check_decoded(bytes, chain_id)?;
        if !self.set.contains(&checked.hash) {
            checked
                .tx
                .verify_signature()
                .map_err(|e| Rejection::new(TxCode::BadSignature, e.to_string()))?;
            self.insert(checked.hash);
        }
        Ok(checked)
    }

    fn insert(&mut self, hash: Hash) {
        if self.capacity == 0 || !self.set.insert(hash) {
            return;
        }
        self.order.push_back(hash);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_is_bounded_and_forgets_oldest() {
        let mut c = SignatureCache::new(2);
        let h = |i: u8| Hash([i; 32]);
        c.insert(h(1));
        c.insert(h(2));
        c.insert(h(3));
        assert!(!c.set.contains(&h(1)));
        assert!(c.set.contains(&h(2)) && c.set.contains(&h(3)));
        assert_eq!(c.order.len(), 2);
    }
}
