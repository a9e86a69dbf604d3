//! ABCI result codes: one per rejection class, the same in CheckTx,
//! FinalizeBlock results and the HTTP API. Part of the public interface.

use serde::{Deserialize, Serialize};

/// Why a transaction was refused (0 = accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u32)]
pub enum TxCode {
    /// Accepted.
    Ok = 0,
    /// The bytes do not decode as a signed transaction.
    Malformed = 1,
    /// Decodes but breaks a structural rule (no actions, zero amount, …).
    InvalidTransaction = 2,
    /// Signed for another chain.
    WrongChainId = 3,
    /// The signature does not verify.
    BadSignature = 4,
    /// The nonce was already used by an executed transaction.
    NonceAlreadyUsed = 5,
    /// The nonce is further ahead of the account than the mempool keeps.
    NonceTooFarAhead = 6,
    /// The account cannot pay its fee plus its transfers.
    InsufficientFunds = 7,
    /// More rollup data than one transaction may carry.
    RollupDataTooLarge = 8,
    /// Nonce does not match the account when executed in a block.
    NonceMismatch = 9,
    /// The same transaction, or another one with this account and nonce,
    /// is already pending.
    Duplicate = 10,
    /// The mempool is at its bound (total, or parked per account / overall).
    MempoolFull = 11,
    /// Recheck: the transaction left the mempool (expired or evicted); its
    /// status says why.
    Evicted = 12,
    /// A staking action names a validator that is not registered.
    UnknownValidator = 13,
    /// Undelegating or redelegating more than the signer has bonded to
    /// that validator.
    InsufficientStake = 14,
    /// The signer already operates a validator, or the consensus key is
    /// already used by one.
    ValidatorExists = 15,
    /// A vote names a proposal that does not exist.
    UnknownProposal = 16,
    /// A vote on a proposal whose voting period is over.
    VotingClosed = 17,
    /// `Unjail` before the validator's jail period is over.
    ValidatorJailed = 18,
    /// `Unjail` of a validator tombstoned for double-signing (it can
    /// never validate again), or `Delegate` / `Redelegate` to one.
    ValidatorTombstoned = 19,
    /// `ClaimRewards` with no reward or commission to claim.
    NothingToClaim = 20,
    /// `EditValidator` changing the commission a second time in an epoch
    /// or by more than `max_commission_change_bps`.
    CommissionChangeRefused = 21,
    /// `Unjail` of a validator that is not jailed.
    NotJailed = 22,
    /// The node failed internally (storage); retrying elsewhere may work.
    Internal = 99,
}

impl TxCode {
    /// Every code, for documentation and tests.
    pub const ALL: [TxCode; 24] = [
        TxCode::Ok,
        TxCode::Malformed,
        TxCode::InvalidTransaction,
        TxCode::WrongChainId,
        TxCode::BadSignature,
        TxCode::NonceAlreadyUsed,
        TxCode::NonceTooFarAhead,
        TxCode::InsufficientFunds,
        TxCode::RollupDataTooLarge,
        TxCode::NonceMismatch,
        TxCode::Duplicate,
        TxCode::MempoolFull,
        TxCode::Evicted,
        TxCode::UnknownValidator,
        TxCode::InsufficientStake,
        TxCode::ValidatorExists,
        TxCode::UnknownProposal,
        TxCode::VotingClosed,
        TxCode::ValidatorJailed,
        TxCode::ValidatorTombstoned,
        TxCode::NothingToClaim,
        TxCode::CommissionChangeRefused,
        TxCode::NotJailed,
        TxCode::Internal,
    ];

    /// The numeric ABCI code.
    pub fn value(self) -> u32 {
        self as u32
    }

    /// The code for a number, if it is one of ours.
    pub fn from_value(v: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.value() == v)
    }

    /// A stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            TxCode::Ok => "ok",
            TxCode::Malformed => "malformed",
            TxCode::InvalidTransaction => "invalid_transaction",
            TxCode::WrongChainId => "wrong_chain_id",
            TxCode::BadSignature => "bad_signature",
            TxCode::NonceAlreadyUsed => "nonce_already_used",
            TxCode::NonceTooFarAhead => "nonce_too_far_ahead",
            TxCode::InsufficientFunds => "insufficient_funds",
            TxCode::RollupDataTooLarge => "rollup_data_too_large",
            TxCode::NonceMismatch => "nonce_mismatch",
            TxCode::Duplicate => "duplicate",
            TxCode::MempoolFull => "mempool_full",
            TxCode::Evicted => "evicted",
            TxCode::UnknownValidator => "unknown_validator",
            TxCode::InsufficientStake => "insufficient_stake",
            TxCode::ValidatorExists => "validator_exists",
            TxCode::UnknownProposal => "unknown_proposal",
            TxCode::VotingClosed => "voting_closed",
            TxCode::ValidatorJailed => "validator_jailed",
            TxCode::ValidatorTombstoned => "validator_tombstoned",
            TxCode::NothingToClaim => "nothing_to_claim",
            TxCode::CommissionChangeRefused => "commission_change_refused",
            TxCode::NotJailed => "not_jailed",
            TxCode::Internal => "internal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_pinned() {
        let values: Vec<String> = TxCode::ALL
            .iter()
            .map(|c| format!("{}={}", c.value(), c.name()))
            .collect();
        insta::assert_snapshot!(values.join("\n"));
        for c in TxCode::ALL {
            assert_eq!(TxCode::from_value(c.value()), Some(c));
        }
        assert_eq!(TxCode::from_value(12345), None);
    }
}
