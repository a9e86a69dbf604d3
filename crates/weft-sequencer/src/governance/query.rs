//! Governance queries over any state view (a committed snapshot or a
//! block's overlay): every proposal, or one, with its tally (final once
//! the period is over, so far while it is open). Plain functions; the
//! HTTP API and CLI wrap them.

use serde::Serialize;
use weft_core::{Address, Amount, ProposalKind};

use super::{
    state::{GovernanceRead, Proposal, ProposalStatus, Tally},
    tally::tally,
};
use crate::storage::{StateRead, StorageError};

/// A proposal as the API and CLI show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProposalView {
    /// Its id.
    pub id: u64,
    /// Who submitted it.
    pub proposer: Address,
    /// What it does if it passes.
    pub kind: ProposalKind,
    /// The deposit (decimal string).
    #[serde(with = "weft_core::genesis::amount_string")]
    pub deposit: Amount,
    /// The height it was submitted at.
    pub submit_height: u64,
    /// Votes count until the end of this height.
    pub end_height: u64,
    /// Where it stands.
    pub status: ProposalStatus,
    /// The final tally, or while voting the tally over current stakes.
    pub tally: Tally,
    /// How many accounts voted.
    pub votes: u64,
}

fn view<S: StateRead + ?Sized>(state: &S, p: Proposal) -> Result<ProposalView, StorageError> {
    let t = match p.final_tally {
        Some(t) => t,
        None => tally(state, p.id)?,
    };
    Ok(ProposalView {
        id: p.id,
        proposer: p.proposer,
        kind: p.kind,
        deposit: p.deposit,
        submit_height: p.submit_height,
        end_height: p.end_height,
        status: p.status,
        tally: t,
        votes: state.votes(p.id)?.len() as u64,
    })
}

/// Every proposal, by id.
pub fn proposals<S: StateRead + ?Sized>(state: &S) -> Result<Vec<ProposalView>, StorageError> {
    state
        .proposals()?
        .into_iter()
        .map(|p| view(state, p))
        .collect()
}

/// A page of proposals: those with id ≥ `from` and, if given, this
/// status, at most `limit` of them by id, and the id the next page starts
/// at (`None` when nothing is left). Tallies are computed only for the
/// page, not for every open proposal.
pub fn proposals_page<S: StateRead + ?Sized>(
    state: &S,
    status: Option<ProposalStatus>,
    from: u64,
    limit: usize,
) -> Result<(Vec<ProposalView>, Option<u64>), StorageError> {
    let mut matching = state
        .proposals()?
        .into_iter()
        .filter(|p| p.id >= from && status.is_none_or(|s| p.status == s));
    let page: Vec<Proposal> = matching.by_ref().take(limit).collect();
    let next = matching.next().map(|p| p.id);
    let views = page
        .into_iter()
        .map(|p| view(state, p))
        .collect::<Result<_, _>>()?;
    Ok((views, next))
}

/// One proposal, if it exists.
pub fn proposal<S: StateRead + ?Sized>(
    state: &S,
    id: u64,
) -> Result<Option<ProposalView>, StorageError> {
    state.proposal(id)?.map(|p| view(state, p)).transpose()
}
