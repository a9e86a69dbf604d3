//! Governance storage: every key the governance component writes, spelled
//! here and nowhere else, and the typed reads and writes over them.
//!
//! Keys sort by what is iterated: proposals by id (zero-padded), the queue
//! of open proposals by end height then id, a proposal's votes by voter.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use weft_core::{Address, Amount, ProposalKind, VoteOption};

use crate::storage::{decode_stored, encode_stored, StateRead, StateWrite, StorageError};

/// Prefix of every proposal record.
pub const PROPOSALS_PREFIX: &str = "governance/proposals/";
/// Prefix of the queue of open proposals by end height.
pub const QUEUE_PREFIX: &str = "governance/queue/";
/// The id the next proposal gets (absent = 0).
pub const NEXT_ID: &str = "governance/next_id";
/// Total of the deposits currently escrowed.
pub const ESCROW: &str = "governance/escrow";
/// Total of the deposits burned by vetoes (out of circulation for good).
pub const BURNED: &str = "governance/burned";

/// `governance/proposals/<id, 20 digits>`.
pub fn proposal_key(id: u64) -> String {
    format!("{PROPOSALS_PREFIX}{id:020}")
}

/// `governance/queue/<end height, 20 digits>/`: every proposal whose
/// voting ends at `height`.
pub fn queue_prefix_at(height: u64) -> String {
    format!("{QUEUE_PREFIX}{height:020}/")
}

/// `governance/queue/<end height>/<id>`: empty; present while the
/// proposal is open.
pub fn queue_key(height: u64, id: u64) -> String {
    format!("{}{id:020}", queue_prefix_at(height))
}

/// `governance/votes/<id, 20 digits>/`: every vote on one proposal.
pub fn votes_prefix(id: u64) -> String {
    format!("governance/votes/{id:020}/")
}

/// `governance/votes/<id>/<voter hex>`.
pub fn vote_key(id: u64, voter: &Address) -> String {
    format!("{}{}", votes_prefix(id), voter.to_hex())
}

/// Where a proposal stands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ProposalStatus {
    /// Open for votes until the end of its end height.
    Voting,
    /// Reached quorum and the pass threshold, not vetoed: executed.
    Passed,
    /// Reached quorum, not vetoed, short of the pass threshold.
    Rejected,
    /// No-with-veto reached the veto threshold: deposit burned.
    Vetoed,
    /// Too little stake voted: nothing executed, deposit returned.
    NoQuorum,
}

/// Stake behind each option, and the stake that could have voted.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize,
)]
pub struct Tally {
    /// Stake voting yes.
    #[serde(with = "weft_core::genesis::amount_string")]
    pub yes: Amount,
    /// Stake voting no.
    #[serde(with = "weft_core::genesis::amount_string")]
    pub no: Amount,
    /// Stake abstaining.
    #[serde(with = "weft_core::genesis::amount_string")]
    pub abstain: Amount,
    /// Stake voting no with veto.
    #[serde(with = "weft_core::genesis::amount_string")]
    pub no_with_veto: Amount,
    /// All stake bonded to approved validators (the quorum's base).
    #[serde(with = "weft_core::genesis::amount_string")]
    pub total_bonded: Amount,
}

impl Tally {
    /// Stake that voted, any option.
    pub fn voted(&self) -> Amount {
        self.yes
            .saturating_add(self.no)
            .saturating_add(self.abstain)
            .saturating_add(self.no_with_veto)
    }
}

/// A governance proposal.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Proposal {
    /// Its id, in submission order from 0.
    pub id: u64,
    /// Who submitted it (gets the deposit back unless vetoed).
    pub proposer: Address,
    /// What it does if it passes.
    pub kind: ProposalKind,
    /// The escrowed deposit.
    pub deposit: Amount,
    /// The height it was submitted at.
    pub submit_height: u64,
    /// Votes count until the end of this height, where it is tallied.
    pub end_height: u64,
    /// Where it stands.
    pub status: ProposalStatus,
    /// The final tally, once the voting period is over.
    pub final_tally: Option<Tally>,
}

fn get<T: BorshDeserialize, S: StateRead + ?Sized>(
    state: &S,
    key: &str,
) -> Result<Option<T>, StorageError> {
    state
        .get_raw(key)?
        .map(|b| decode_stored(key, &b))
        .transpose()
}

/// Typed reads of governance state.
pub trait GovernanceRead: StateRead {
    /// A proposal by id.
    fn proposal(&self, id: u64) -> Result<Option<Proposal>, StorageError> {
        get(self, &proposal_key(id))
    }

    /// Every proposal, by id.
    fn proposals(&self) -> Result<Vec<Proposal>, StorageError> {
        self.prefix_raw(PROPOSALS_PREFIX)?
            .into_iter()
            .map(|(k, v)| decode_stored(&k, &v))
            .collect()
    }

    /// The ids of the proposals whose voting ends at `height`, ascending.
    fn proposals_ending_at(&self, height: u64) -> Result<Vec<u64>, StorageError> {
        let prefix = queue_prefix_at(height);
        self.prefix_raw(&prefix)?
            .into_iter()
            .map(|(k, _)| {
                k.strip_prefix(&prefix)
                    .and_then(|id| id.parse().ok())
                    .ok_or(StorageError::Corrupt(k))
            })
            .collect()
    }

    /// Every vote on a proposal: (voter, option), by voter.
    fn votes(&self, id: u64) -> Result<Vec<(Address, VoteOption)>, StorageError> {
        let prefix = votes_prefix(id);
        self.prefix_raw(&prefix)?
            .into_iter()
            .map(|(k, v)| {
                let option = decode_stored(&k, &v)?;
                let voter = k
                    .strip_prefix(&prefix)
                    .and_then(|h| hex::decode(h).ok())
                    .and_then(|b| b.try_into().ok())
                    .map(Address)
                    .ok_or_else(|| StorageError::Corrupt(k.clone()))?;
                Ok((voter, option))
            })
            .collect()
    }

    /// The id the next proposal gets.
    fn next_proposal_id(&self) -> Result<u64, StorageError> {
        Ok(get(self, NEXT_ID)?.unwrap_or(0))
    }

    /// Total escrowed deposits.
    fn escrowed(&self) -> Result<Amount, StorageError> {
        Ok(get(self, ESCROW)?.unwrap_or(0))
    }

    /// Total burned deposits.
    fn burned(&self) -> Result<Amount, StorageError> {
        Ok(get(self, BURNED)?.unwrap_or(0))
    }
}

impl<S: StateRead + ?Sized> GovernanceRead for S {}

/// Typed writes of governance state.
pub trait GovernanceWrite: StateWrite {
    /// Stores a proposal, and keeps its queue entry present iff it is
    /// open.
    fn put_proposal(&mut self, p: &Proposal) {
        self.put_raw(proposal_key(p.id), encode_stored(p));
        if p.status == ProposalStatus::Voting {
            self.put_raw(queue_key(p.end_height, p.id), Vec::new());
        } else {
            self.delete(queue_key(p.end_height, p.id));
        }
    }

    /// Records (or replaces) a vote.
    fn put_vote(&mut self, id: u64, voter: &Address, option: VoteOption) {
        self.put_raw(vote_key(id, voter), encode_stored(&option));
    }

    /// Sets the id the next proposal gets.
    fn put_next_proposal_id(&mut self, id: u64) {
        self.put_raw(NEXT_ID.into(), encode_stored(&id));
    }

    /// Sets the escrowed total.
    fn put_escrowed(&mut self, amount: Amount) {
        self.put_raw(ESCROW.into(), encode_stored(&amount));
    }

    /// Sets the burned total.
    fn put_burned(&mut self, amount: Amount) {
        self.put_raw(BURNED.into(), encode_stored(&amount));
    }
}

impl<S: StateWrite + ?Sized> GovernanceWrite for S {}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_core::SigningKey;

    #[test]
    fn keys_and_value_encodings_are_pinned() {
        let a = SigningKey::from_seed("alice").address();
        let p = Proposal {
            id: 3,
            proposer: a,
            kind: ProposalKind::AdmitValidator { operator: a },
            deposit: 500,
            submit_height: 10,
            end_height: 20,
            status: ProposalStatus::Passed,
            final_tally: Some(Tally {
                yes: 1,
                no: 2,
                abstain: 3,
                no_with_veto: 4,
                total_bonded: 10,
            }),
        };
        insta::assert_snapshot!([
            proposal_key(3),
            queue_key(20, 3),
            vote_key(3, &a),
            NEXT_ID.to_string(),
            ESCROW.to_string(),
            BURNED.to_string(),
            hex::encode(encode_stored(&p)),
            hex::encode(encode_stored(&VoteOption::NoWithVeto)),
        ]
        .join("\n"));
    }

    #[test]
    fn queue_keys_sort_by_height_then_id() {
        assert!(queue_key(9, 5) < queue_key(10, 0));
        assert!(queue_key(10, 1) < queue_key(10, 2));
        assert!(queue_key(10, 7).starts_with(&queue_prefix_at(10)));
        assert!(!queue_key(100, 7).starts_with(&queue_prefix_at(10)));
    }
}
