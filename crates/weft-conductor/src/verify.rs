//! Verification: the light-client check of each signed header against the
//! trusted state (validator-set continuity, more than two-thirds of the
//! voting power signed the commit, chain id, monotonic time), then the
//! merkle proofs from its `data_hash` down to the rollup's batch.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tendermint::{block::signed_header::SignedHeader, chain, validator, Hash as TmHash, Time};
use tendermint_light_client_verifier::{
    options::Options,
    types::{TrustThreshold, TrustedBlockState, UntrustedBlockState},
    ProdVerifier, Verdict, Verifier,
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
    pub fn verify(
        &mut self,
        signed_header: &SignedHeader,
        validators: &validator::Set,
        batch: &RollupBatchProof,
        rollup_id: &RollupId,
        now: Time,
    ) -> Result<TrustedRecord, VerifyError> {
        let height = signed_header.header.height.value();
        let expected = self.next_height();
        if height != expected || batch.height != expected {
            return Err(VerifyError::WrongHeight {
                expected,
                served: height.max(batch.height),
            });
        }
        let header_err = |reason: String| VerifyError::Header { height, reason };
        let untrusted = UntrustedBlockState {
            signed_header,
            validators,
            next_validators: None,
        };
        match (&self.trusted, &self.anchor) {
            (Some(t), _) => {
                let chain_id = self
                    .chain_id
                    .clone()
                    .ok_or_else(|| header_err("no chain id".into()))?;
                let trusted = TrustedBlockState {
                    chain_id: &chain_id,
                    header_time: t.time,
                    height: t
                        .height
                        .try_into()
                        .map_err(|e: tendermint::Error| header_err(e.to_string()))?,
                    next_validators: validators,
                    next_validators_hash: t.next_validators_hash,
                };
                verdict(
                    self.verifier
                        .verify_update_header(untrusted, trusted, &self.options, now),
                )
                .map_err(header_err)?;
                if signed_header.header.last_block_id.map(|b| b.hash) != Some(t.header_hash) {
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
                if &signed_header.header.chain_id != chain_id {
                    return Err(header_err(format!(
                        "chain id {} is not {chain_id}",
                        signed_header.header.chain_id
                    )));
                }
                if signed_header.header.validators_hash != genesis.hash() {
                    return Err(header_err(
                        "validators are not the genesis validators".into(),
                    ));
                }
                verdict(self.verifier.verify_validator_sets(&untrusted)).map_err(header_err)?;
                verdict(self.verifier.verify_commit(&untrusted)).map_err(header_err)?;
            }
            (None, Some(Anchor::Header { hash, .. })) => {
                if signed_header.header.hash() != *hash {
                    return Err(header_err("hash differs from the trusted anchor".into()));
                }
                verdict(self.verifier.verify_validator_sets(&untrusted)).map_err(header_err)?;
                verdict(self.verifier.verify_commit(&untrusted)).map_err(header_err)?;
                self.chain_id = Some(signed_header.header.chain_id.clone());
            }
            (None, None) => return Err(header_err("no trust anchor".into())),
        }
        let data_hash = match signed_header.header.data_hash {
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

        let header_hash = signed_header.header.hash();
        self.trusted = Some(Trusted {
            height,
            time: signed_header.header.time,
            next_validators_hash: signed_header.header.next_validators_hash,
            header_hash,
        });
        self.anchor = None;
        Ok(TrustedRecord {
            chain_id: signed_header.header.chain_id.to_string(),
            height,
            time: signed_header.header.time.to_rfc3339(),
            next_validators_hash: hex::encode(signed_header.header.next_validators_hash.as_bytes()),
            header_hash: hex::encode(header_hash.as_bytes()),
        })
    }
}

fn verdict(v: Verdict) -> Result<(), String> {
    match v {
        Verdict::Success => Ok(()),
        Verdict::NotEnoughTrust(t) => Err(format!("not enough trust: {t}")),
        Verdict::Invalid(e) => Err(e.to_string()),
    }
}
