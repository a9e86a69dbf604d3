//! Transactions: `{ chain_id, nonce, actions }`, signed with ed25519 over a
//! domain-separated message so no signed object replays as another kind or
//! on another chain.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{
    encoding::{decode_strict, encode, DecodeError},
    hash::{sha256, Hash},
    keys::{Address, KeyError, PublicKey, Signature, SigningKey},
    rollup::RollupId,
    Amount,
};

/// Largest encoded signed transaction accepted anywhere (CometBFT's default
/// mempool `max_tx_bytes`).
pub const MAX_TX_BYTES: usize = 1024 * 1024;
/// Most actions one transaction may carry.
pub const MAX_ACTIONS: usize = 64;
/// CometBFT's own limit on chain id length.
pub const MAX_CHAIN_ID_LEN: usize = 50;
/// Longest validator name, in bytes (names are shown in lists and logs).
pub const MAX_VALIDATOR_NAME_LEN: usize = 64;
/// Longest validator website, in bytes.
pub const MAX_VALIDATOR_WEBSITE_LEN: usize = 128;
/// Commission is in basis points of a validator's rewards: 10000 = 100 %.
pub const MAX_COMMISSION_BPS: u16 = 10_000;
/// Longest title of a text proposal, in bytes.
pub const MAX_PROPOSAL_TITLE_LEN: usize = 128;
/// Longest description of a text proposal, in bytes.
pub const MAX_PROPOSAL_DESCRIPTION_LEN: usize = 4_096;

/// What a signature is over: each kind of signed object has its own tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningDomain {
    /// A transaction.
    Transaction,
    /// A builder's bid for the top of rollup batches (`bid::Bid`).
    Bid,
    /// A signed request to a relay (`bid::RelayRequest`): a validator
    /// fetching winners, a builder cancelling its bid.
    RelayRequest,
}

impl SigningDomain {
    /// The fixed tag that starts every signed message of this kind.
    pub fn tag(self) -> &'static [u8] {
        match self {
            SigningDomain::Transaction => b"weft/transaction/v1",
            SigningDomain::Bid => b"weft/bid/v1",
            SigningDomain::RelayRequest => b"weft/relay-request/v1",
        }
    }

    /// `tag ‖ 0x00 ‖ u32le(len chain_id) ‖ chain_id ‖ body`.
    pub fn message(self, chain_id: &str, body: &[u8]) -> Vec<u8> {
        let tag = self.tag();
        let mut m = Vec::with_capacity(tag.len() + 5 + chain_id.len() + body.len());
        m.extend_from_slice(tag);
        m.push(0);
        m.extend_from_slice(&(chain_id.len() as u32).to_le_bytes());
        m.extend_from_slice(chain_id.as_bytes());
        m.extend_from_slice(body);
        m
    }
}

/// One state change requested by a transaction. The rules of each variant
/// live with the sequencer component that owns the state it touches.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Action {
    /// Move native asset to another account.
    Transfer {
        /// Recipient.
        to: Address,
        /// Amount, in the smallest unit.
        #[serde(with = "crate::genesis::amount_string")]
        amount: Amount,
    },
    /// Opaque data for one rollup; Weft orders it and never executes it.
    SubmitRollupData {
        /// The rollup this data belongs to.
        rollup_id: RollupId,
        /// The rollup's own bytes.
        #[serde(with = "base64_bytes")]
        data: Vec<u8>,
    },
    /// Register the signer as the operator of a validator candidate.
    /// Appended after the existing variants so their borsh tags stay.
    RegisterValidator {
        /// The ed25519 key CometBFT signs blocks with (not the operator's
        /// account key: an operator can keep that one offline).
        #[serde(with = "hex_32")]
        consensus_key: [u8; 32],
        /// Display name: 1 to `MAX_VALIDATOR_NAME_LEN` bytes, no control
        /// characters.
        name: String,
        /// Website: at most `MAX_VALIDATOR_WEBSITE_LEN` bytes, no control
        /// characters; may be empty.
        website: String,
        /// Share of rewards kept by the operator, in basis points (at most
        /// `MAX_COMMISSION_BPS`).
        commission_bps: u16,
    },
    /// Bond the signer's funds to a validator (named by its operator
    /// address). A self-bond is a delegation from the operator's account.
    Delegate {
        /// The validator's operator address.
        validator: Address,
        /// Amount to bond.
        #[serde(with = "crate::genesis::amount_string")]
        amount: Amount,
    },
    /// Start unbonding: the amount leaves the validator now and returns to
    /// the signer's balance after the unbonding period.
    Undelegate {
        /// The validator's operator address.
        validator: Address,
        /// Amount to unbond.
        #[serde(with = "crate::genesis::amount_string")]
        amount: Amount,
    },
    /// Move bonded stake from one validator to another without unbonding.
    Redelegate {
        /// The validator the stake leaves.
        from: Address,
        /// The validator the stake joins.
        to: Address,
        /// Amount to move.
        #[serde(with = "crate::genesis::amount_string")]
        amount: Amount,
    },
    /// Submit a governance proposal, escrowing `deposit` from the signer's
    /// balance until the proposal's voting period ends. Appended after the
    /// staking variants (tag 6).
    Propose {
        /// What the proposal does if it passes.
        kind: ProposalKind,
        /// Escrowed deposit: at least the governance `min_deposit`;
        /// returned at the end unless the proposal is vetoed (then burned).
        #[serde(with = "crate::genesis::amount_string")]
        deposit: Amount,
    },
    /// Vote on a proposal in its voting period; a later vote of the same
    /// signer replaces an earlier one (tag 7).
    Vote {
        /// The proposal's id.
        proposal_id: u64,
        /// The signer's choice.
        option: VoteOption,
    },
    /// Change the signer's validator's description, commission or relay
    /// key; each field left `None` stays as it is (tag 8). Commission
    /// changes are rate-limited per epoch.
    EditValidator {
        /// New display name (the `RegisterValidator` rules).
        name: Option<String>,
        /// New website (the `RegisterValidator` rules).
        website: Option<String>,
        /// New commission in basis points.
        commission_bps: Option<u16>,
        /// The ed25519 key the builder relay authenticates this
        /// validator's requests with.
        #[serde(with = "opt_hex_32", default)]
        relay_key: Option<[u8; 32]>,
    },
    /// Bring the signer's jailed validator back into the eligible set once
    /// its jail period is over; it rejoins the active set at the next
    /// epoch (tag 9).
    Unjail {},
    /// Pay the signer's claimable staking rewards (from all its
    /// delegations, plus its validator's commission if it operates one)
    /// to its balance (tag 10).
    ClaimRewards {},
}

/// What a governance proposal does if it passes.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", deny_unknown_fields)]
pub enum ProposalKind {
    /// Admit a registered candidate (named by its operator) to the
    /// approved set; it enters the active set at the next epoch if its
    /// stake earns it a place.
    AdmitValidator {
        /// The candidate's operator address.
        operator: Address,
    },
    /// Take a validator out of the approved set; it leaves the active set
    /// at the next epoch.
    RemoveValidator {
        /// The validator's operator address.
        operator: Address,
    },
    /// Replace the staking parameters as a whole (every field is given, so
    /// what voters read is exactly what takes effect); they must pass
    /// `StakingParams::check`.
    ChangeStakingParams {
        /// The new parameters.
        params: crate::genesis::StakingParams,
    },
    /// A signalling proposal: executes nothing.
    Text {
        /// 1 to `MAX_PROPOSAL_TITLE_LEN` bytes, no control characters.
        title: String,
        /// At most `MAX_PROPOSAL_DESCRIPTION_LEN` bytes, no control
        /// characters other than line feeds.
        description: String,
    },
    /// Replace the governance parameters (the voting rules) as a whole;
    /// they must pass `GovernanceParams::check`. Proposals already open
    /// keep their end height; the new thresholds apply to every tally
    /// from the next block on.
    ChangeGovernanceParams {
        /// The new parameters.
        params: crate::genesis::GovernanceParams,
    },
    /// Replace the fee parameters as a whole (tag 5); they must pass
    /// `FeeParams::check`. Transactions pay the new fees from the block
    /// after the one that tallies the proposal.
    ChangeFeeParams {
        /// The new parameters.
        params: crate::genesis::FeeParams,
    },
    /// Replace the rollup data limits as a whole (tag 6); they must pass
    /// `RollupParams::check`. They apply from the next block.
    ChangeRollupParams {
        /// The new parameters.
        params: crate::genesis::RollupParams,
    },
    /// Replace the per-account block limit (tag 7); it must pass
    /// `AccountParams::check`. It applies from the next block.
    ChangeAccountParams {
        /// The new parameters.
        params: crate::genesis::AccountParams,
    },
    /// Turn inclusion lists on for a chain whose CometBFT vote extensions
    /// are off (tag 8): when it passes at height H, CometBFT is sent a
    /// consensus-parameter update with `consensus` and vote extensions
    /// enabled from H + 2, and the inclusion parameters are written; the
    /// first block that must carry listed votes is H + 3. `params.enabled`
    /// must be true; refused if vote extensions are already on or
    /// scheduled (then use `ChangeInclusionParams`).
    EnableInclusionLists {
        /// The inclusion parameters, as they will be.
        params: crate::genesis::InclusionParams,
        /// CometBFT's block and evidence parameters the update restates.
        consensus: crate::genesis::ConsensusParams,
    },
    /// Replace the inclusion parameters of a chain whose vote extensions
    /// are on or scheduled (tag 9), for example `enabled: false` to stop
    /// requiring listed votes (CometBFT keeps extending votes, with empty
    /// lists). They apply from the next block.
    ChangeInclusionParams {
        /// The new parameters.
        params: crate::genesis::InclusionParams,
    },
}

impl ProposalKind {
    /// Why this proposal is malformed, if it is: rules that need no state.
    pub fn check(&self) -> Result<(), String> {
        match self {
            ProposalKind::AdmitValidator { .. } | ProposalKind::RemoveValidator { .. } => Ok(()),
            ProposalKind::ChangeStakingParams { params } => params.check(),
            ProposalKind::ChangeGovernanceParams { params } => params.check(),
            ProposalKind::ChangeFeeParams { params } => params.check(),
            ProposalKind::ChangeRollupParams { params } => params.check(),
            ProposalKind::ChangeAccountParams { params } => params.check(),
            ProposalKind::EnableInclusionLists { params, consensus } => {
                if !params.enabled {
                    return Err(
                        "an EnableInclusionLists proposal must have inclusion.enabled set".into(),
                    );
                }
                params.check()?;
                consensus.check()
            }
            ProposalKind::ChangeInclusionParams { params } => params.check(),
            ProposalKind::Text { title, description } => {
                if title.is_empty() || title.len() > MAX_PROPOSAL_TITLE_LEN {
                    return Err(format!(
                        "proposal title must be 1 to {MAX_PROPOSAL_TITLE_LEN} bytes"
                    ));
                }
                if description.len() > MAX_PROPOSAL_DESCRIPTION_LEN {
                    return Err(format!(
                        "proposal description must be at most {MAX_PROPOSAL_DESCRIPTION_LEN} bytes"
                    ));
                }
                if title.chars().any(char::is_control)
                    || description.chars().any(|c| c.is_control() && c != '\n')
                {
                    return Err(
                        "proposal title and description must not hold control characters".into(),
                    );
                }
                Ok(())
            }
        }
    }
}

/// A voter's choice on a proposal.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum VoteOption {
    /// For.
    Yes,
    /// Against.
    No,
    /// Counts towards quorum, not towards the pass threshold.
    Abstain,
    /// Against, and if enough voting power says so, the deposit is burned.
    NoWithVeto,
}

/// Whether `key` can be a CometBFT consensus key: a canonical ed25519
/// point that is not of small order (a weak key would let anyone forge
/// that validator's votes).
pub fn is_valid_consensus_key(key: &[u8; 32]) -> bool {
    ed25519_dalek::VerifyingKey::from_bytes(key).is_ok_and(|k| !k.is_weak())
}

/// Why a validator's description is refused, if it is: the rules shared by
/// `RegisterValidator` and genesis.
pub fn check_validator_description(
    name: &str,
    website: &str,
    commission_bps: u16,
) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_VALIDATOR_NAME_LEN {
        return Err(format!(
            "validator name must be 1 to {MAX_VALIDATOR_NAME_LEN} bytes"
        ));
    }
    if website.len() > MAX_VALIDATOR_WEBSITE_LEN {
        return Err(format!(
            "validator website must be at most {MAX_VALIDATOR_WEBSITE_LEN} bytes"
        ));
    }
    // Control characters would let a name rewrite terminal output or logs.
    if name.chars().chain(website.chars()).any(char::is_control) {
        return Err("validator name and website must not hold control characters".into());
    }
    if commission_bps > MAX_COMMISSION_BPS {
        return Err(format!(
            "commission of {commission_bps} bps is above {MAX_COMMISSION_BPS}"
        ));
    }
    Ok(())
}

/// The unsigned body of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Transaction {
    /// The chain this transaction is for.
    pub chain_id: String,
    /// Must equal the signer's account nonce when it executes.
    pub nonce: u64,
    /// Applied atomically, in order.
    pub actions: Vec<Action>,
}

/// Why a transaction fails its stateless checks.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TxError {
    /// Bytes do not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Signature or key problem.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Empty, too many actions, zero amounts, empty data, bad chain id.
    #[error("invalid transaction: {0}")]
    Invalid(String),
}

impl Transaction {
    /// Signs the transaction.
    pub fn sign(self, key: &SigningKey) -> SignedTransaction {
        let message = SigningDomain::Transaction.message(&self.chain_id, &encode(&self));
        SignedTransaction {
            signature: key.sign(&message),
            public_key: key.public_key(),
            transaction: self,
        }
    }

    /// Total bytes of rollup data carried.
    pub fn rollup_data_bytes(&self) -> u64 {
        self.actions
            .iter()
            .map(|a| match a {
                Action::SubmitRollupData { data, .. } => data.len() as u64,
                Action::Transfer { .. }
                | Action::RegisterValidator { .. }
                | Action::Delegate { .. }
                | Action::Undelegate { .. }
                | Action::Redelegate { .. }
                | Action::Propose { .. }
                | Action::Vote { .. }
                | Action::EditValidator { .. }
                | Action::Unjail {}
                | Action::ClaimRewards {} => 0,
            })
            .sum()
    }
}

/// A transaction with its signer's key and signature: what goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedTransaction {
    /// The body.
    pub transaction: Transaction,
    /// The signer; its address pays fees and owns the nonce.
    pub public_key: PublicKey,
    /// Over `SigningDomain::Transaction.message(chain_id, borsh(transaction))`.
    pub signature: Signature,
}

impl SignedTransaction {
    /// Strictly decodes wire bytes (no trailing bytes, limited size).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode_strict(bytes, MAX_TX_BYTES)
    }

    /// Canonical wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// SHA-256 of the wire bytes: the same hash CometBFT uses for the tx.
    pub fn hash(&self) -> Hash {
        sha256(&self.encode())
    }

    /// The signer's address.
    pub fn signer(&self) -> Address {
        self.public_key.address()
    }

    /// Structural rules that need no state: action count, non-zero
    /// amounts, non-empty data, chain id length.
    pub fn check_structure(&self) -> Result<(), TxError> {
        let tx = &self.transaction;
        if tx.chain_id.is_empty() || tx.chain_id.len() > MAX_CHAIN_ID_LEN {
            return Err(TxError::Invalid("chain id must be 1 to 50 bytes".into()));
        }
        if tx.actions.is_empty() {
            return Err(TxError::Invalid(
                "a transaction needs at least one action".into(),
            ));
        }
        if tx.actions.len() > MAX_ACTIONS {
            return Err(TxError::Invalid(format!(
                "{} actions, at most {MAX_ACTIONS} allowed",
                tx.actions.len()
            )));
        }
        for (i, action) in tx.actions.iter().enumerate() {
            match action {
                Action::Transfer { amount, .. } if *amount == 0 => {
                    return Err(TxError::Invalid(format!("action {i}: transfer of zero")));
                }
                Action::SubmitRollupData { data, .. } if data.is_empty() => {
                    return Err(TxError::Invalid(format!("action {i}: empty rollup data")));
                }
                Action::Delegate { amount, .. }
                | Action::Undelegate { amount, .. }
                | Action::Redelegate { amount, .. }
                    if *amount == 0 =>
                {
                    return Err(TxError::Invalid(format!(
                        "action {i}: stake amount of zero"
                    )));
                }
                Action::Propose { deposit, .. } if *deposit == 0 => {
                    return Err(TxError::Invalid(format!("action {i}: deposit of zero")));
                }
                Action::Propose { kind, .. } => {
                    kind.check()
                        .map_err(|e| TxError::Invalid(format!("action {i}: {e}")))?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Verifies the signature over the domain-separated message.
    pub fn verify_signature(&self) -> Result<(), KeyError> {
        self.public_key
            .verify(&self.signing_message(), &self.signature)
    }

    /// What the signature is over: the transaction's signing message.
    pub fn signing_message(&self) -> Vec<u8> {
        let tx = &self.transaction;
        SigningDomain::Transaction.message(&tx.chain_id, &encode(tx))
    }
}

/// serde helper: bytes as standard base64.
pub mod base64_bytes {
    use base64::{engine::general_purpose::STANDARD, Engine};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialize as base64.
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    /// Deserialize from base64.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

/// serde helper: 32 bytes as lower-case hex (consensus keys).
pub mod hex_32 {
    use serde::{de, Deserialize, Deserializer, Serializer};

    /// Serialize as 64 hex digits.
    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    /// Deserialize from 64 hex digits.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let bytes = hex::decode(&s).map_err(de::Error::custom)?;
        bytes
            .try_into()
            .map_err(|_| de::Error::custom("expected 32 bytes (64 hex digits)"))
    }
}

/// serde helper: an optional 32 bytes as lower-case hex, `null` for none.
pub mod opt_hex_32 {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialize as 64 hex digits or null.
    pub fn serialize<S: Serializer>(v: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => super::hex_32::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    /// Deserialize from 64 hex digits or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 32]>, D::Error> {
        #[derive(Deserialize)]
        struct Hex(#[serde(with = "super::hex_32")] [u8; 32]);
        Ok(Option::<Hex>::deserialize(d)?.map(|h| h.0))
    }
}

/// serde helper: a list of byte strings as base64.
pub mod base64_list {
    use base64::{engine::general_purpose::STANDARD, Engine};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialize each as base64.
    pub fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|b| STANDARD.encode(b)))
    }

    /// Deserialize each from base64.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        v.into_iter()
            .map(|s| STANDARD.decode(s).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SignedTransaction {
        Transaction {
            chain_id: "weft-test".into(),
            nonce: 7,
            actions: vec![
                Action::Transfer {
                    to: SigningKey::from_seed("bob").address(),
                    amount: 1_000,
                },
                Action::SubmitRollupData {
                    rollup_id: RollupId::from_name("alpha"),
                    data: b"hello rollup".to_vec(),
                },
            ],
        }
        .sign(&SigningKey::from_seed("alice"))
    }

    #[test]
    fn parameter_proposals_take_tags_5_to_7_and_are_checked() {
        use crate::genesis::{AccountParams, FeeParams, RollupParams};
        let fees = FeeParams {
            base_fee: 2,
            fee_per_byte: 3,
        };
        let rollups = RollupParams {
            max_rollup_data_per_tx: 10,
            max_rollup_data_per_block: 10,
        };
        let accounts = AccountParams {
            max_txs_per_account_per_block: 1,
        };
        for (kind, tag) in [
            (
                ProposalKind::ChangeFeeParams {
                    params: fees.clone(),
                },
                5u8,
            ),
            (
                ProposalKind::ChangeRollupParams {
                    params: rollups.clone(),
                },
                6,
            ),
            (
                ProposalKind::ChangeAccountParams {
                    params: accounts.clone(),
                },
                7,
            ),
        ] {
            kind.check().unwrap();
            let bytes = crate::encoding::encode(&kind);
            assert_eq!(bytes[0], tag, "{kind:?}");
            let back: ProposalKind = borsh::from_slice(&bytes).unwrap();
            assert_eq!(back, kind);
        }
        // Fees whose largest transaction's fee overflows.
        let overflowing = FeeParams {
            base_fee: Amount::MAX,
            fee_per_byte: 1,
        };
        assert!(ProposalKind::ChangeFeeParams {
            params: overflowing
        }
        .check()
        .unwrap_err()
        .contains("overflows"));
        // A zero or inverted rollup limit, a zero account limit.
        for params in [
            RollupParams {
                max_rollup_data_per_tx: 0,
                ..rollups.clone()
            },
            RollupParams {
                max_rollup_data_per_tx: 11,
                ..rollups
            },
        ] {
            assert!(ProposalKind::ChangeRollupParams { params }.check().is_err());
        }
        assert!(ProposalKind::ChangeAccountParams {
            params: AccountParams {
                max_txs_per_account_per_block: 0
            }
        }
        .check()
        .is_err());
        // JSON is complete: a missing field is refused, not defaulted.
        assert!(serde_json::from_str::<ProposalKind>(
            r#"{"type":"change_fee_params","params":{"base_fee":"1"}}"#
        )
        .is_err());
        let json: ProposalKind = serde_json::from_str(
            r#"{"type":"change_fee_params","params":{"base_fee":"2","fee_per_byte":"3"}}"#,
        )
        .unwrap();
        assert_eq!(json, ProposalKind::ChangeFeeParams { params: fees });
    }

    #[test]
    fn inclusion_proposals_take_tags_8_and_9_and_are_checked() {
        use crate::genesis::{ConsensusParams, InclusionParams};
        let consensus = ConsensusParams {
            block_max_bytes: 4 << 20,
            block_max_gas: -1,
            evidence_max_age_num_blocks: 100_000,
            evidence_max_age_duration_ns: 172_800_000_000_000,
            evidence_max_bytes: 1 << 20,
        };
        let enable = ProposalKind::EnableInclusionLists {
            params: InclusionParams::default(),
            consensus: consensus.clone(),
        };
        let change = ProposalKind::ChangeInclusionParams {
            params: InclusionParams {
                enabled: false,
                ..InclusionParams::default()
            },
        };
        for (kind, tag) in [(enable, 8u8), (change, 9)] {
            kind.check().unwrap();
            let bytes = crate::encoding::encode(&kind);
            assert_eq!(bytes[0], tag, "{kind:?}");
            let back: ProposalKind = borsh::from_slice(&bytes).unwrap();
            assert_eq!(back, kind);
        }
        // Enabling with lists off, bad inclusion parameters, or consensus
        // parameters CometBFT would refuse (which would stop the chain).
        let refused = |params: InclusionParams, consensus: ConsensusParams| {
            ProposalKind::EnableInclusionLists { params, consensus }
                .check()
                .unwrap_err()
        };
        let off = InclusionParams {
            enabled: false,
            ..InclusionParams::default()
        };
        assert!(refused(off, consensus.clone()).contains("enabled"));
        let no_delay = InclusionParams {
            inclusion_delay_blocks: 0,
            ..InclusionParams::default()
        };
        assert!(refused(no_delay.clone(), consensus.clone()).contains("inclusion_delay_blocks"));
        assert!(ProposalKind::ChangeInclusionParams { params: no_delay }
            .check()
            .is_err());
        for (bad, what) in [
            (
                ConsensusParams {
                    block_max_bytes: 0,
                    ..consensus.clone()
                },
                "block_max_bytes",
            ),
            (
                ConsensusParams {
                    block_max_bytes: crate::genesis::MAX_BLOCK_SIZE_BYTES + 1,
                    ..consensus.clone()
                },
                "block_max_bytes",
            ),
            (
                ConsensusParams {
                    block_max_gas: -2,
                    ..consensus.clone()
                },
                "block_max_gas",
            ),
            (
                ConsensusParams {
                    evidence_max_age_num_blocks: 0,
                    ..consensus.clone()
                },
                "evidence_max_age_num_blocks",
            ),
            (
                ConsensusParams {
                    evidence_max_age_duration_ns: u64::MAX,
                    ..consensus.clone()
                },
                "evidence_max_age_duration_ns",
            ),
            (
                ConsensusParams {
                    evidence_max_bytes: (4 << 20) + 1,
                    ..consensus.clone()
                },
                "evidence_max_bytes",
            ),
        ] {
            assert!(
                refused(InclusionParams::default(), bad).contains(what),
                "{what}"
            );
        }
        // JSON: the consensus group is complete.
        let json = r#"{"type":"enable_inclusion_lists","params":{"enabled":true,"inclusion_delay_blocks":1,"max_inclusion_list_bytes":16384},"consensus":{"block_max_bytes":4194304,"block_max_gas":-1,"evidence_max_age_num_blocks":100000,"evidence_max_age_duration_ns":172800000000000,"evidence_max_bytes":1048576}}"#;
        let parsed: ProposalKind = serde_json::from_str(json).unwrap();
        assert_eq!(
            parsed,
            ProposalKind::EnableInclusionLists {
                params: InclusionParams::default(),
                consensus,
            }
        );
        assert!(serde_json::from_str::<ProposalKind>(
            r#"{"type":"enable_inclusion_lists","params":{},"consensus":{"block_max_bytes":4194304}}"#
        )
        .is_err());
    }

    #[test]
    fn round_trip_and_signature() {
        let tx = sample();
        let bytes = tx.encode();
        let back = SignedTransaction::decode(&bytes).unwrap();
        assert_eq!(back, tx);
        back.verify_signature().unwrap();
        back.check_structure().unwrap();
        assert_eq!(back.transaction.rollup_data_bytes(), 12);
    }

    #[test]
    fn wire_encoding_is_pinned() {
        // A change to this snapshot is a breaking wire change.
        insta::assert_snapshot!(hex::encode(sample().encode()));
    }

    #[test]
    fn signing_message_is_pinned() {
        let m = SigningDomain::Transaction.message("c", b"\x01\x02");
        assert_eq!(m, b"weft/transaction/v1\x00\x01\x00\x00\x00c\x01\x02");
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let mut tx = sample();
        tx.transaction.nonce += 1;
        assert!(tx.verify_signature().is_err());
        let mut tx = sample();
        tx.transaction.chain_id = "other-chain".into();
        assert!(
            tx.verify_signature().is_err(),
            "replay on another chain must fail"
        );
    }

    #[test]
    fn strict_decoding_rejects_trailing_bytes_and_unknown_variants() {
        let mut bytes = sample().encode();
        bytes.push(0);
        assert!(SignedTransaction::decode(&bytes).is_err());
        // chain_id "a", nonce 0, one action with an unused variant tag.
        let mut bad = Vec::new();
        bad.extend_from_slice(&1u32.to_le_bytes());
        bad.push(b'a');
        bad.extend_from_slice(&0u64.to_le_bytes());
        bad.extend_from_slice(&1u32.to_le_bytes());
        bad.push(200);
        assert!(SignedTransaction::decode(&bad).is_err());
        assert!(SignedTransaction::decode(&vec![0u8; MAX_TX_BYTES + 1]).is_err());
    }

    #[test]
    fn staking_variants_take_the_next_tags_and_round_trip() {
        let v = SigningKey::from_seed("validator").address();
        let actions = [
            Action::RegisterValidator {
                consensus_key: SigningKey::from_seed("consensus").public_key().0,
                name: "v".into(),
                website: String::new(),
                commission_bps: 500,
            },
            Action::Delegate {
                validator: v,
                amount: 1,
            },
            Action::Undelegate {
                validator: v,
                amount: 1,
            },
            Action::Redelegate {
                from: v,
                to: v,
                amount: 1,
            },
        ];
        for (tag, a) in (2u8..).zip(actions) {
            let bytes = encode(&a);
            assert_eq!(bytes[0], tag, "{a:?}");
            assert_eq!(decode_strict::<Action>(&bytes, 1024).unwrap(), a);
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(serde_json::from_str::<Action>(&json).unwrap(), a);
        }
    }

    #[test]
    fn staking_economics_variants_take_tags_8_to_10_and_round_trip() {
        let actions = [
            Action::EditValidator {
                name: Some("v".into()),
                website: None,
                commission_bps: Some(700),
                relay_key: Some(SigningKey::from_seed("relay").public_key().0),
            },
            Action::Unjail {},
            Action::ClaimRewards {},
        ];
        for (tag, a) in (8u8..).zip(actions) {
            let bytes = encode(&a);
            assert_eq!(bytes[0], tag, "{a:?}");
            assert_eq!(decode_strict::<Action>(&bytes, 1024).unwrap(), a);
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(serde_json::from_str::<Action>(&json).unwrap(), a);
        }
        // Unit-like variants carry nothing but their tag.
        assert_eq!(encode(&Action::Unjail {}), vec![9]);
        assert_eq!(
            serde_json::to_string(&Action::ClaimRewards {}).unwrap(),
            r#"{"type":"claim_rewards"}"#
        );
        // An absent relay key is null, and may be left out.
        let edit: Action = serde_json::from_str(
            r#"{"type":"edit_validator","name":null,"website":"w","commission_bps":null}"#,
        )
        .unwrap();
        assert_eq!(
            edit,
            Action::EditValidator {
                name: None,
                website: Some("w".into()),
                commission_bps: None,
                relay_key: None
            }
        );
    }

    #[test]
    fn consensus_keys_and_descriptions() {
        assert!(is_valid_consensus_key(
            &SigningKey::from_seed("c").public_key().0
        ));
        // The identity point (y = 1) is of small order; no point has y = 2.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(!is_valid_consensus_key(&identity));
        let mut off_curve = [0u8; 32];
        off_curve[0] = 2;
        assert!(!is_valid_consensus_key(&off_curve));
        assert!(check_validator_description("ok", "", 10_000).is_ok());
        assert!(check_validator_description("", "", 0).is_err());
        assert!(check_validator_description(&"n".repeat(65), "", 0).is_err());
        assert!(check_validator_description("n", &"w".repeat(129), 0).is_err());
        assert!(check_validator_description("a\u{1b}[2J", "", 0).is_err());
        assert!(check_validator_description("n", "", 10_001).is_err());
    }

    #[test]
    fn structure_rules() {
        let key = SigningKey::from_seed("alice");
        let mk = |actions: Vec<Action>, chain: &str| {
            Transaction {
                chain_id: chain.into(),
                nonce: 0,
                actions,
            }
            .sign(&key)
        };
        assert!(mk(vec![], "c").check_structure().is_err());
        let t = Action::Transfer {
            to: key.address(),
            amount: 0,
        };
        assert!(mk(vec![t], "c").check_structure().is_err());
        let d = Action::SubmitRollupData {
            rollup_id: RollupId::from_name("a"),
            data: vec![],
        };
        assert!(mk(vec![d], "c").check_structure().is_err());
        let zero_stake = Action::Delegate {
            validator: key.address(),
            amount: 0,
        };
        assert!(mk(vec![zero_stake], "c").check_structure().is_err());
        let ok = Action::Transfer {
            to: key.address(),
            amount: 1,
        };
        assert!(mk(vec![ok.clone()], "").check_structure().is_err());
        assert!(mk(vec![ok.clone(); MAX_ACTIONS + 1], "c")
            .check_structure()
            .is_err());
        assert!(mk(vec![ok], "c").check_structure().is_ok());
    }
}
