//! Inclusion storage: every key the inclusion component writes.

use borsh::{BorshDeserialize, BorshSerialize};
use weft_core::inclusion::validator_address;

use crate::storage::{decode_stored, encode_stored, StateRead, StateWrite, StorageError};

/// Where the inclusion parameters live.
pub const PARAMS_KEY: &str = "inclusion/params";
/// CometBFT's consensus limits as InitChain gave them, or as a passed
/// `EnableInclusionLists` proposal set them.
pub const CONSENSUS_LIMITS: &str = "inclusion/consensus_limits";
/// The list bound that was in force before a `ChangeInclusionParams`
/// replaced it, with the height whose end replaced it (see
/// [`InclusionRead::previous_list_bound`]).
pub const PREVIOUS_LIST_BOUND: &str = "inclusion/previous_list_bound";

/// `inclusion/validator_keys/<address hex, upper case>`: the ed25519 key
/// behind a CometBFT validator address, for every validator the chain has
/// had (never deleted: a block's extensions are those of the previous
/// height's set, which may have left since).
pub fn validator_key_key(address: &[u8; 20]) -> String {
    format!("inclusion/validator_keys/{}", hex::encode_upper(address))
}

/// The consensus parameters the inclusion rule depends on: InitChain's,
/// until a passed `EnableInclusionLists` proposal sends CometBFT new ones
/// (the only consensus-parameter update the app ever makes), which are
/// written here in the same block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ConsensusLimits {
    /// `block.max_bytes` (CometBFT's 100 MiB hard cap when it is -1).
    pub block_max_bytes: u64,
    /// `evidence.max_bytes`.
    pub evidence_max_bytes: u64,
    /// `abci.vote_extensions_enable_height` (0 = never).
    pub vote_extensions_enable_height: u64,
}

/// CometBFT v0.38's size accounting (types/block.go).
const MAX_OVERHEAD_FOR_BLOCK: u64 = 11;
const MAX_HEADER_BYTES: u64 = 626;
const MAX_COMMIT_OVERHEAD_BYTES: u64 = 94;
const MAX_COMMIT_SIG_BYTES: u64 = 109;

impl ConsensusLimits {
    /// The fewest transaction bytes CometBFT can give a proposer of a block
    /// whose validator set has at most `validators` members: `max_bytes`
    /// minus the header, the last commit and the largest evidence. A
    /// listed transaction is excused as "the block is full" only past this
    /// bound, which every proposer can reach, so the rule never asks for
    /// what CometBFT would not let the proposer send.
    pub fn guaranteed_tx_bytes(&self, validators: u64) -> u64 {
        let commit = MAX_COMMIT_OVERHEAD_BYTES + MAX_COMMIT_SIG_BYTES * validators;
        self.block_max_bytes
            .saturating_sub(MAX_OVERHEAD_FOR_BLOCK + MAX_HEADER_BYTES)
            .saturating_sub(commit)
            .saturating_sub(self.evidence_max_bytes)
    }
}

/// Typed reads of inclusion state.
pub trait InclusionRead: StateRead {
    /// The consensus limits (all zero before InitChain wrote them).
    fn consensus_limits(&self) -> Result<ConsensusLimits, StorageError> {
        self.get_raw(CONSENSUS_LIMITS)?
            .map(|b| decode_stored(CONSENSUS_LIMITS, &b))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// The list bound of the votes the block at `height` carries, when it
    /// differs from the current parameters': the votes of `height - 1`
    /// were extended and verified under the parameters of the state before
    /// that height's end, so if a proposal replaced them at the end of
    /// `height - 1`, the bound those votes kept to is the previous one.
    fn previous_list_bound(&self, height: u64) -> Result<Option<u32>, StorageError> {
        let Some(bytes) = self.get_raw(PREVIOUS_LIST_BOUND)? else {
            return Ok(None);
        };
        let (changed_at, bound): (u64, u32) = decode_stored(PREVIOUS_LIST_BOUND, &bytes)?;
        Ok((changed_at.checked_add(1) == Some(height)).then_some(bound))
    }

    /// The key of the validator with this CometBFT address, if known.
    fn validator_key(&self, address: &[u8; 20]) -> Result<Option<[u8; 32]>, StorageError> {
        let key = validator_key_key(address);
        self.get_raw(&key)?
            .map(|b| decode_stored(&key, &b))
            .transpose()
    }
}

impl<S: StateRead + ?Sized> InclusionRead for S {}

/// Typed writes of inclusion state.
pub trait InclusionWrite: StateWrite {
    /// Stores the consensus limits (genesis).
    fn put_consensus_limits(&mut self, limits: &ConsensusLimits) {
        self.put_raw(CONSENSUS_LIMITS.into(), encode_stored(limits));
    }

    /// Remembers the list bound in force before parameters replaced at the
    /// end of `height`.
    fn put_previous_list_bound(&mut self, height: u64, bound: u32) {
        self.put_raw(PREVIOUS_LIST_BOUND.into(), encode_stored(&(height, bound)));
    }

    /// Records a validator's key under its address, once.
    fn record_validator_key(&mut self, key: &[u8; 32]) -> Result<(), StorageError> {
        let k = validator_key_key(&validator_address(key));
        if self.get_raw(&k)?.is_none() {
            self.put_raw(k, encode_stored(key));
        }
        Ok(())
    }
}

impl<S: StateWrite + ?Sized> InclusionWrite for S {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_value_encodings_are_pinned() {
        let limits = ConsensusLimits {
            block_max_bytes: 4 << 20,
            evidence_max_bytes: 1 << 20,
            vote_extensions_enable_height: 1,
        };
        insta::assert_snapshot!([
            PARAMS_KEY.to_string(),
            CONSENSUS_LIMITS.to_string(),
            validator_key_key(&[0xab; 20]),
            hex::encode(encode_stored(&limits)),
            PREVIOUS_LIST_BOUND.to_string(),
            hex::encode(encode_stored(&(41u64, 16_384u32))),
        ]
        .join("\n"));
    }

    #[test]
    fn the_guaranteed_bytes_follow_cometbft_accounting() {
        let limits = ConsensusLimits {
            block_max_bytes: 4 << 20,
            evidence_max_bytes: 1 << 20,
            vote_extensions_enable_height: 1,
        };
        // 4 MiB - 11 - 626 - (94 + 4 × 109) - 1 MiB.
        assert_eq!(
            limits.guaranteed_tx_bytes(4),
            3 * 1024 * 1024 - 11 - 626 - 530
        );
        assert_eq!(ConsensusLimits::default().guaranteed_tx_bytes(4), 0);
    }
}
