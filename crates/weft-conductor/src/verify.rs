//! Verification: the light-client check of each signed header against the
//! trusted state (validator-set continuity, more than two-thirds of the
//! voting power signed the commit, chain id, monotonic time), then the
//! merkle proofs from its `data_hash` down to the rollup's batch.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tendermint::{block::signed_header::SignedHeader, chain, validator, Hash as TmHash, Time};
use tendermint_light_client_verifier::{
    options::Options,
    predicates::{ProdPredicates, VerificationPredicates},
    types::{TrustThreshold, UntrustedBlockState},
    ProdVerifier, Verdict,
};
use weft_core::{Hash, RollupBatchProof, RollupId};

/// Why a height was refused. Nothing refused is ever delivered.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The header or its commit does not verify against the trusted state.
    #[error("header {height} does not verify: {reason}")]
    Header {
        /// Height.
        height: u64,
        /// The verifier's reason.
        reason: String,
    },
    /// The batch does not match the verified header.
    #[error("batch at {height} does not verify: {reason}")]
    Batch {
        /// Height.
        height: u64,
        /// Why.
        reason: String,
    },
    /// The served height is not the one asked for.
    #[error("asked for height {expected}, served {served}")]
    WrongHeight {
        /// Wanted.
        expected: u64,
        /// Got.
        served: u64,
    },
}

/// What verification trusts at start.
#[derive(Debug, Clone)]
pub enum Anchor {
    /// The chain's genesis: its chain id and initial validator set (from a
    /// genesis.json the operator supplies).
    Genesis {
        /// Chain id.
        chain_id: chain::Id,
        /// Genesis validators.
        validators: validator::Set,
    },
    /// A header the operator trusts by hash (from a source they trust).
    Header {
        /// Its height.
        height: u64,
        /// Its hash.
        hash: TmHash,
    },
}

/// The verified state persisted with the cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedRecord {
    /// The chain.
    pub chain_id: String,
    /// Height of the last verified header.
    pub height: u64,
    /// Its time (RFC 3339).
    pub time: String,
    /// Its `next_validators_hash` (hex): the set the next header must use.
    pub next_validators_hash: String,
    /// Its hash (hex): the next header's parent.
    pub header_hash: String,
}

#[derive(Debug, Clone)]
struct Trusted {
    height: u64,
    time: Time,
    next_validators_hash: TmHash,
    header_hash: TmHash,
}

/// Follows the chain header by header from an anchor.
#[derive(Clone)]
pub struct ChainVerifier {
    chain_id: Option<chain::Id>,
    anchor: Option<Anchor>,
    trusted: Option<Trusted>,
    options: Options,
    verifier: ProdVerifier,
}

impl ChainVerifier {
    /// A verifier starting from `anchor`. `trusting_period` bounds how old
    /// the trusted header may be relative to the wall clock.
    pub fn new(anchor: Anchor, trusting_period: Duration) -> Self {
        let chain_id = match &anchor {
            Anchor::Genesis { chain_id, .. } => Some(chain_id.clone()),
            Anchor::Header { .. } => None,
        };
        ChainVerifier {
            chain_id,
            anchor: Some(anchor),
            trusted: None,
            options: Options {
                trust_threshold: TrustThreshold::TWO_THIRDS,
                trusting_period,
                clock_drift: Duration::from_secs(10),
            },
            verifier: ProdVerifier::default(),
        }
    }

    /// Resumes from a persisted record (our own earlier verification).
    pub fn resume(&mut self, record: &TrustedRecord) -> Result<(), String> {
        let chain_id: chain::Id = record
            .chain_id
            .parse()
            .map_err(|e: tendermint::Error| e.to_string())?;
        if let Some(expected) = &self.chain_id {
            if expected != &chain_id {
                return Err(format!(
                    "cursor is for chain {chain_id}, anchor for {expected}"
                ));
            }
        }
        let hash = |s: &str| {
            TmHash::from_hex_upper(tendermint::hash::Algorithm::Sha256, &s.to_uppercase())
                .map_err(|e| e.to_string())
        };
        self.trusted = Some(Trusted {
            height: record.height,
            time: Time::parse_from_rfc3339(&record.time).map_err(|e| e.to_string())?,
            next_validators_hash: hash(&record.next_validators_hash)?,
            header_hash: hash(&record.header_hash)?,
        });
        self.chain_id = Some(chain_id);
        self.anchor = None;
        Ok(())
    }

    /// The height the next header must have.
    pub fn next_height(&self) -> u64 {
        match (&self.trusted, &self.anchor) {
            (Some(t), _) => t.height + 1,
            (None, Some(Anchor::Header { height, .. })) => *height,
            _ => 1,
        }
    }

    /// The chain id once known.
    pub fn chain_id(&self) -> Option<&chain::Id> {
        self.chain_id.as_ref()
    }

    /// Verifies the header at [`Self::next_height`] with the validator set
    /// it names (`validators`, which must hash to its `validators_hash`),
    /// then the batch against its `data_hash`. On success the header
    /// becomes trusted and its record is returned.
    ///
    /// The same as [`Self::check`] followed by [`Self::accept`].
    pub fn verify(
        &mut self,
        signed_header: &SignedHeader,
        validators: &validator::Set,
        batch: &RollupBatchProof,
        rollup_id: &RollupId,
        now: Time,
    ) -> Result<TrustedRecord, VerifyError> {
        let expected = self.next_height();
        let height = signed_header.header.height.value();
        if height != expected || batch.height != expected {
            return Err(VerifyError::WrongHeight {
                expected,
                served: height.max(batch.height),
            });
        }
        let checked = self.check(signed_header, validators, batch, rollup_id)?;
        self.accept(&checked, now)
    }

    /// The expensive half of verification, which needs no trusted state and
    /// so runs for many heights in parallel: the validator set hashes to
    /// the header's `validators_hash`, the commit is for this header and is
    /// signed by more than two-thirds of that set's power, and the batch's
    /// proofs lead to the header's `data_hash`. Nothing is trusted until
    /// [`Self::accept`] links the result to the trusted chain.
    pub fn check(
        &self,
        signed_header: &SignedHeader,
        validators: &validator::Set,
        batch: &RollupBatchProof,
        rollup_id: &RollupId,
    ) -> Result<Checked, VerifyError> {
        let header = &signed_header.header;
        let height = header.height.value();
        if batch.height != height {
            return Err(VerifyError::WrongHeight {
                expected: height,
                served: batch.height,
            });
        }
        let header_err = |reason: String| VerifyError::Header { height, reason };
        let untrusted = UntrustedBlockState {
            signed_header,
            validators,
            next_validators: None,
        };
        verdict(self.verifier.verify_validator_sets(&untrusted)).map_err(header_err)?;
        verdict(self.verifier.verify_commit(&untrusted)).map_err(header_err)?;
        let data_hash = match header.data_hash {
            Some(TmHash::Sha256(h)) => Hash(h),
            _ => {
                return Err(VerifyError::Batch {
                    height,
                    reason: "header has no data_hash".into(),
                })
            }
        };
        batch
            .verify(&data_hash, rollup_id)
            .map_err(|e| VerifyError::Batch {
                height,
                reason: e.to_string(),
            })?;
        Ok(Checked {
            height,
            chain_id: header.chain_id.clone(),
            time: header.time,
            validators_hash: header.validators_hash,
            next_validators_hash: header.next_validators_hash,
            parent_hash: header.last_block_id.map(|b| b.hash),
            // verify_validator_sets established that the commit is for
            // exactly this hash.
            header_hash: signed_header.commit.block_id.hash,
        })
    }

    /// The cheap, sequential half: links a [`Checked`] header to the trusted
    /// state (next height, same chain, the validator set the trusted header
    /// announced, its hash as parent, later time, trusted header not
    /// expired and the new one not from the future), or to the anchor.
    /// On success the header becomes trusted and its record is returned.
    pub fn accept(&mut self, checked: &Checked, now: Time) -> Result<TrustedRecord, VerifyError> {
        let height = checked.height;
        let expected = self.next_height();
        if height != expected {
            return Err(VerifyError::WrongHeight {
                expected,
                served: height,
            });
        }
        let header_err = |reason: String| VerifyError::Header { height, reason };
        let predicates = ProdPredicates;
        match (&self.trusted, &self.anchor) {
            (Some(t), _) => {
                let chain_id = self
                    .chain_id
                    .as_ref()
                    .ok_or_else(|| header_err("no chain id".into()))?;
                predicates
                    .is_within_trust_period(t.time, self.options.trusting_period, now)
                    .map_err(|e| header_err(e.to_string()))?;
                predicates
                    .is_monotonic_bft_time(checked.time, t.time)
                    .map_err(|e| header_err(e.to_string()))?;
                predicates
                    .is_matching_chain_id(&checked.chain_id, chain_id)
                    .map_err(|e| header_err(e.to_string()))?;
                predicates
                    .valid_next_validator_set(checked.validators_hash, t.next_validators_hash)
                    .map_err(|e| header_err(e.to_string()))?;
                if checked.parent_hash != Some(t.header_hash) {
                    return Err(header_err("parent is not the trusted header".into()));
                }
            }
            (
                None,
                Some(Anchor::Genesis {
                    chain_id,
                    validators: genesis,
                }),
            ) => {
                if &checked.chain_id != chain_id {
                    return Err(header_err(format!(
                        "chain id {} is not {chain_id}",
                        checked.chain_id
                    )));
                }
                if checked.validators_hash != genesis.hash() {
                    return Err(header_err(
                        "validators are not the genesis validators".into(),
                    ));
                }
            }
            (None, Some(Anchor::Header { hash, .. })) => {
                if checked.header_hash != *hash {
                    return Err(header_err("hash differs from the trusted anchor".into()));
                }
                self.chain_id = Some(checked.chain_id.clone());
            }
            (None, None) => return Err(header_err("no trust anchor".into())),
        }
        predicates
            .is_header_from_past(checked.time, self.options.clock_drift, now)
            .map_err(|e| header_err(e.to_string()))?;

        self.trusted = Some(Trusted {
            height,
            time: checked.time,
            next_validators_hash: checked.next_validators_hash,
            header_hash: checked.header_hash,
        });
        self.anchor = None;
        Ok(TrustedRecord {
            chain_id: checked.chain_id.to_string(),
            height,
            time: checked.time.to_rfc3339(),
            next_validators_hash: hex::encode(checked.next_validators_hash.as_bytes()),
            header_hash: hex::encode(checked.header_hash.as_bytes()),
        })
    }
}

/// A header whose commit and batch verified on their own (see
/// [`ChainVerifier::check`]); not yet linked to the trusted chain.
#[derive(Debug, Clone)]
pub struct Checked {
    /// Height.
    pub height: u64,
    /// Chain id in the header.
    pub chain_id: chain::Id,
    /// Header time.
    pub time: Time,
    /// The set that signed it.
    pub validators_hash: TmHash,
    /// The set the next header must be signed by.
    pub next_validators_hash: TmHash,
    /// `last_block_id.hash`: the parent.
    pub parent_hash: Option<TmHash>,
    /// The header's hash (what the commit signed).
    pub header_hash: TmHash,
}

fn verdict(v: Verdict) -> Result<(), String> {
    match v {
        Verdict::Success => Ok(()),
        Verdict::NotEnoughTrust(t) => Err(format!("not enough trust: {t}")),
        Verdict::Invalid(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tendermint::block::CommitSig;

    use super::*;
    use crate::testing::TestChain;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn rollup(name: &str) -> RollupId {
        RollupId::from_name(name)
    }

    /// Heights 1..=n; every third height carries data for "alpha", every
    /// height some for "beta".
    fn chain(validators: usize, n: u64) -> TestChain {
        let mut chain = TestChain::new("weft-test", validators);
        for h in 1..=n {
            let mut batches = BTreeMap::new();
            if h % 3 == 0 {
                batches.insert(rollup("alpha"), vec![format!("a{h}").into_bytes()]);
            }
            batches.insert(rollup("beta"), vec![vec![h as u8; 40], b"b".to_vec()]);
            chain.push(batches);
        }
        chain
    }

    fn genesis_verifier(chain: &TestChain) -> ChainVerifier {
        ChainVerifier::new(
            Anchor::Genesis {
                chain_id: chain.chain_id().clone(),
                validators: chain.validators().clone(),
            },
            DAY,
        )
    }

    fn verify_at(
        v: &mut ChainVerifier,
        chain: &TestChain,
        h: u64,
        id: RollupId,
    ) -> Result<TrustedRecord, VerifyError> {
        let item = chain.sequenced(h, id);
        v.verify(
            &item.signed_header,
            chain.validators(),
            &item.batch,
            &id,
            chain.now(),
        )
    }

    #[test]
    fn a_signed_chain_verifies_from_genesis_with_batches_and_absences() {
        let chain = chain(4, 12);
        for id in [rollup("alpha"), rollup("beta"), rollup("absent")] {
            let mut v = genesis_verifier(&chain);
            for h in 1..=12 {
                let record = verify_at(&mut v, &chain, h, id).unwrap();
                assert_eq!(record.height, h);
                assert_eq!(
                    record.header_hash,
                    hex::encode(chain.block(h).signed_header.header.hash().as_bytes())
                );
            }
            assert_eq!(v.next_height(), 13);
        }
    }

    #[test]
    fn parallel_checks_then_sequential_accepts_match_one_by_one_verification() {
        let chain = chain(4, 10);
        let id = rollup("alpha");
        let mut sequential = genesis_verifier(&chain);
        let one_by_one: Vec<_> = (1..=10)
            .map(|h| verify_at(&mut sequential, &chain, h, id).unwrap())
            .collect();
        let mut split = genesis_verifier(&chain);
        let items: Vec<_> = (1..=10).map(|h| chain.sequenced(h, id)).collect();
        let checked: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = items
                .iter()
                .map(|item| {
                    let split = &split;
                    let validators = chain.validators();
                    s.spawn(move || split.check(&item.signed_header, validators, &item.batch, &id))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap().unwrap())
                .collect()
        });
        let accepted: Vec<_> = checked
            .iter()
            .map(|c| split.accept(c, chain.now()).unwrap())
            .collect();
        assert_eq!(accepted, one_by_one);
    }

    #[test]
    fn tampered_batches_are_refused() {
        let chain = chain(4, 3);
        let id = rollup("alpha");
        let mut v = genesis_verifier(&chain);
        verify_at(&mut v, &chain, 1, id).unwrap();
        verify_at(&mut v, &chain, 2, id).unwrap();
        let good = chain.sequenced(3, id);
        let now = chain.now();
        let validators = chain.validators();

        let mut altered = good.batch.clone();
        altered.items[0][0] ^= 1;
        let mut dropped = good.batch.clone();
        dropped.items.clear();
        let beta = chain.batch(3, rollup("beta"));
        let mut reordered = beta.clone();
        reordered.items.swap(0, 1);
        for (what, batch, as_rollup) in [
            ("altered", altered, id),
            ("dropped", dropped, id),
            ("other rollup's batch", beta, id),
            ("reordered", reordered, rollup("beta")),
        ] {
            let err = v
                .clone()
                .verify(&good.signed_header, validators, &batch, &as_rollup, now)
                .expect_err(what);
            assert!(
                matches!(err, VerifyError::Batch { height: 3, .. }),
                "{what}: {err}"
            );
        }
        // A batch from another height.
        let err = v
            .clone()
            .verify(
                &good.signed_header,
                validators,
                &chain.batch(2, id),
                &id,
                now,
            )
            .unwrap_err();
        assert!(matches!(err, VerifyError::WrongHeight { .. }), "{err}");
        // Nothing above moved the trusted height.
        assert_eq!(v.next_height(), 3);
        verify_at(&mut v, &chain, 3, id).unwrap();
    }

    #[test]
    fn forged_or_missing_signatures_are_refused() {
        let chain = chain(4, 2);
        let id = rollup("beta");
        let mut v = genesis_verifier(&chain);
        verify_at(&mut v, &chain, 1, id).unwrap();
        let good = chain.sequenced(2, id);

        let mut forged = good.signed_header.clone();
        if let CommitSig::BlockIdFlagCommit {
            signature: Some(sig),
            ..
        } = &mut forged.commit.signatures[0]
        {
            let mut bytes = sig.as_bytes().to_vec();
            bytes[5] ^= 0x40;
            *sig = tendermint::Signature::try_from(bytes.as_slice()).unwrap();
        }
        let err = v
            .clone()
            .verify(&forged, chain.validators(), &good.batch, &id, chain.now())
            .unwrap_err();
        assert!(
            matches!(err, VerifyError::Header { height: 2, .. }),
            "{err}"
        );

        // Two of four signatures is not more than two-thirds of the power.
        let mut half = good.signed_header.clone();
        for sig in half.commit.signatures.iter_mut().take(2) {
            *sig = CommitSig::BlockIdFlagAbsent;
        }
        let err = v
            .clone()
            .verify(&half, chain.validators(), &good.batch, &id, chain.now())
            .unwrap_err();
        assert!(
            err.to_string().contains("not enough") || err.to_string().contains("insufficient"),
            "{err}"
        );

        // Three of four is enough.
        let mut three = good.signed_header.clone();
        three.commit.signatures[3] = CommitSig::BlockIdFlagAbsent;
        v.verify(&three, chain.validators(), &good.batch, &id, chain.now())
            .unwrap();
    }

    #[test]
    fn headers_from_another_chain_or_set_are_refused() {
        let chain = chain(4, 2);
        let id = rollup("beta");
        // Genesis anchor with another chain id.
        let mut other_id = ChainVerifier::new(
            Anchor::Genesis {
                chain_id: "another-chain".parse().unwrap(),
                validators: chain.validators().clone(),
            },
            DAY,
        );
        assert!(verify_at(&mut other_id, &chain, 1, id).is_err());
        // Genesis anchor with another validator set: the served set (the
        // real signers) is not the genesis set.
        let stranger = TestChain::new("weft-test", 5);
        let mut other_set = ChainVerifier::new(
            Anchor::Genesis {
                chain_id: chain.chain_id().clone(),
                validators: stranger.validators().clone(),
            },
            DAY,
        );
        let err = verify_at(&mut other_set, &chain, 1, id).unwrap_err();
        assert!(err.to_string().contains("genesis validators"), "{err}");
        // Serving the header with a set it was not signed by.
        let mut v = genesis_verifier(&chain);
        let item = chain.sequenced(1, id);
        assert!(v
            .verify(
                &item.signed_header,
                stranger.validators(),
                &item.batch,
                &id,
                chain.now()
            )
            .is_err());

        // A fork: same validators, different data at height 2. Its header
        // is validly signed but its parent differs from what we trusted…
        let mut fork = TestChain::new("weft-test", 4);
        fork.push(BTreeMap::from([(id, vec![b"fork".to_vec()])]));
        fork.push(BTreeMap::new());
        let mut v = genesis_verifier(&chain);
        verify_at(&mut v, &chain, 1, id).unwrap();
        let err = verify_at(&mut v, &fork, 2, id).unwrap_err();
        assert!(err.to_string().contains("parent"), "{err}");
        // …while the real height 2 still verifies.
        verify_at(&mut v, &chain, 2, id).unwrap();
    }

    #[test]
    fn trust_anchored_at_a_header_hash_and_resumed_from_a_record() {
        let chain = chain(4, 6);
        let id = rollup("alpha");
        let hash = chain.block(3).signed_header.header.hash();
        let mut wrong = ChainVerifier::new(
            Anchor::Header {
                height: 3,
                hash: chain.block(2).signed_header.header.hash(),
            },
            DAY,
        );
        assert_eq!(wrong.next_height(), 3);
        assert!(verify_at(&mut wrong, &chain, 3, id).is_err());

        let mut v = ChainVerifier::new(Anchor::Header { height: 3, hash }, DAY);
        let record = verify_at(&mut v, &chain, 3, id).unwrap();
        verify_at(&mut v, &chain, 4, id).unwrap();

        let mut resumed = genesis_verifier(&chain);
        resumed.resume(&record).unwrap();
        assert_eq!(resumed.next_height(), 4);
        verify_at(&mut resumed, &chain, 4, id).unwrap();
        // A record for another chain is refused against a genesis anchor.
        let mut foreign = record.clone();
        foreign.chain_id = "another-chain".into();
        assert!(genesis_verifier(&chain).resume(&foreign).is_err());
    }

    #[test]
    fn an_expired_trusted_header_or_a_header_from_the_future_is_refused() {
        let chain = chain(4, 3);
        let id = rollup("beta");
        let mut v = genesis_verifier(&chain);
        verify_at(&mut v, &chain, 1, id).unwrap();
        let item = chain.sequenced(2, id);
        // Two days later the day-long trusting period has passed.
        let late = (chain.now() + 2 * DAY).unwrap();
        let err = v
            .clone()
            .verify(
                &item.signed_header,
                chain.validators(),
                &item.batch,
                &id,
                late,
            )
            .unwrap_err();
        assert!(
            err.to_string().contains("expired") || err.to_string().contains("trust"),
            "{err}"
        );
        // A clock well before the header's time: from the future.
        let early = chain.block(1).signed_header.header.time;
        let err = v
            .clone()
            .verify(
                &item.signed_header,
                chain.validators(),
                &item.batch,
                &id,
                (early - Duration::from_secs(60)).unwrap(),
            )
            .unwrap_err();
        assert!(
            matches!(err, VerifyError::Header { height: 2, .. }),
            "{err}"
        );
    }
}
