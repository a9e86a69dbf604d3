//! The governance actions: `Propose` (escrows a deposit, opens a voting
//! period) and `Vote` (records or replaces the signer's choice while the
//! period is open).

use weft_core::{Address, Amount, GovernanceParams, ProposalKind, TxCode, VoteOption};

use super::state::{GovernanceRead, GovernanceWrite, Proposal, ProposalStatus};
use crate::{
    accounts::actions::debit,
    chain::ChainRead,
    component::{ActionEffects, ActionHandler, Event, EventValue, ParamsRead, TxContext},
    error::{ExecError, Rejection},
    staking::state::StakingRead,
    storage::{StateRead, StateWrite},
};

/// The governance parameters, or a refusal on a chain without staking
/// (governance runs exactly when staking does).
pub(crate) fn enabled_params<S: StateRead + ?Sized>(
    state: &S,
) -> Result<GovernanceParams, ExecError> {
    state
        .optional_component_params::<GovernanceParams>()?
        .ok_or_else(|| {
            Rejection::new(
                TxCode::InvalidTransaction,
                "governance is not enabled on this chain (its genesis has no staking section)",
            )
            .into()
        })
}

fn invalid(message: String) -> ExecError {
    Rejection::new(TxCode::InvalidTransaction, message).into()
}

/// `Action::Propose`.
#[derive(Debug, Clone, Copy)]
pub struct Propose<'a> {
    /// What the proposal does if it passes.
    pub kind: &'a ProposalKind,
    /// The deposit to escrow.
    pub deposit: Amount,
}

impl Propose<'_> {
    /// Rules the current state decides: the deposit covers the minimum;
    /// an admission names a registered, unapproved candidate; a removal
    /// names an approved validator; `EnableInclusionLists` needs vote
    /// extensions off, `ChangeInclusionParams` on or scheduled.
    fn check_against(&self, state: &dyn StateRead) -> Result<GovernanceParams, ExecError> {
        let params = enabled_params(state)?;
        if self.deposit < params.min_deposit {
            return Err(invalid(format!(
                "deposit {} is below the minimum of {}",
                self.deposit, params.min_deposit
            )));
        }
        let named = |operator: &Address| -> Result<_, ExecError> {
            state.validator(operator)?.ok_or_else(|| {
                Rejection::new(
                    TxCode::UnknownValidator,
                    format!("no validator is registered by operator {operator}"),
                )
                .into()
            })
        };
        match self.kind {
            ProposalKind::AdmitValidator { operator } => {
                if named(operator)?.approved {
                    return Err(invalid(format!("{operator} is already approved")));
                }
            }
            ProposalKind::RemoveValidator { operator } => {
                if !named(operator)?.approved {
                    return Err(invalid(format!("{operator} is not approved")));
                }
            }
            ProposalKind::EnableInclusionLists { .. } => {
                if crate::inclusion::vote_extensions_scheduled(state)? {
                    return Err(invalid(
                        "CometBFT's vote extensions are already on or scheduled on this \
                         chain; change the inclusion parameters with ChangeInclusionParams"
                            .into(),
                    ));
                }
            }
            ProposalKind::ChangeInclusionParams { .. } => {
                if !crate::inclusion::can_change_params(state)? {
                    return Err(invalid(
                        "inclusion lists were never turned on on this chain; \
                         propose EnableInclusionLists"
                            .into(),
                    ));
                }
            }
            ProposalKind::ChangeStakingParams { .. }
            | ProposalKind::ChangeGovernanceParams { .. }
            | ProposalKind::ChangeFeeParams { .. }
            | ProposalKind::ChangeRollupParams { .. }
            | ProposalKind::ChangeAccountParams { .. }
            | ProposalKind::Text { .. } => {}
        }
        Ok(params)
    }
}

impl ActionHandler for Propose<'_> {
    fn check_stateless(&self) -> Result<(), Rejection> {
        if self.deposit == 0 {
            return Err(Rejection::new(
                TxCode::InvalidTransaction,
                "deposit of zero",
            ));
        }
        self.kind
            .check()
            .map_err(|e| Rejection::new(TxCode::InvalidTransaction, e))
    }

    fn spend(&self) -> Amount {
        self.deposit
    }

    fn check_stateful(&self, state: &dyn StateRead, _tx: &TxContext) -> Result<(), ExecError> {
        self.check_against(state).map(|_| ())
    }

    fn execute(
        &self,
        state: &mut dyn StateWrite,
        tx: &TxContext,
        effects: &mut ActionEffects,
    ) -> Result<(), ExecError> {
        let params = self.check_against(&*state)?;
        debit(state, &tx.signer, self.deposit)?;
        // Escrow is part of supply, which fits an Amount.
        let escrowed = state
            .escrowed()?
            .checked_add(self.deposit)
            .ok_or_else(|| invalid("escrowed deposits would overflow".into()))?;
        state.put_escrowed(escrowed);
        let id = state.next_proposal_id()?;
        let next = id
            .checked_add(1)
            .ok_or_else(|| invalid("no proposal id left".into()))?;
        state.put_next_proposal_id(next);
        let height = state.height()?;
        let end_height = height
            .checked_add(params.voting_period_blocks)
            .ok_or_else(|| invalid("voting period end overflows".into()))?;
        state.put_proposal(&Proposal {
            id,
            proposer: tx.signer,
            kind: self.kind.clone(),
            deposit: self.deposit,
            submit_height: height,
            end_height,
            status: ProposalStatus::Voting,
            final_tally: None,
        });
        effects.events.push(
            Event::new("governance.propose")
                .indexed("proposal_id", EventValue::U64(id))
                .indexed("proposer", EventValue::Address(tx.signer))
                .stored("kind", EventValue::Text(kind_name(self.kind).into()))
                .stored("deposit", EventValue::Amount(self.deposit))
                .stored("end_height", EventValue::U64(end_height)),
        );
        Ok(())
    }
}

/// A proposal kind's stable name, for events and queries.
pub fn kind_name(kind: &ProposalKind) -> &'static str {
    match kind {
        ProposalKind::AdmitValidator { .. } => "admit_validator",
        ProposalKind::RemoveValidator { .. } => "remove_validator",
        ProposalKind::ChangeStakingParams { .. } => "change_staking_params",
        ProposalKind::ChangeGovernanceParams { .. } => "change_governance_params",
        ProposalKind::Text { .. } => "text",
        ProposalKind::ChangeFeeParams { .. } => "change_fee_params",
        ProposalKind::ChangeRollupParams { .. } => "change_rollup_params",
        ProposalKind::ChangeAccountParams { .. } => "change_account_params",
        ProposalKind::EnableInclusionLists { .. } => "enable_inclusion_lists",
        ProposalKind::ChangeInclusionParams { .. } => "change_inclusion_params",
    }
}

/// A vote option's stable name.
pub fn option_name(option: VoteOption) -> &'static str {
    match option {
        VoteOption::Yes => "yes",
        VoteOption::No => "no",
        VoteOption::Abstain => "abstain",
        VoteOption::NoWithVeto => "no_with_veto",
    }
}

/// `Action::Vote`.
#[derive(Debug, Clone, Copy)]
pub struct Vote {
    /// The proposal voted on.
    pub proposal_id: u64,
    /// The signer's choice.
    pub option: VoteOption,
}

impl Vote {
    fn check_against(&self, state: &dyn StateRead) -> Result<(), ExecError> {
        enabled_params(state)?;
        let proposal = state.proposal(self.proposal_id)?.ok_or_else(|| {
            Rejection::new(
                TxCode::UnknownProposal,
                format!("no proposal has id {}", self.proposal_id),
            )
        })?;
        // Tallied at the end of `end_height`: a vote in that block still
        // counts, and a closed proposal's status is no longer `Voting`.
        if proposal.status != ProposalStatus::Voting || state.height()? > proposal.end_height {
            return Err(Rejection::new(
                TxCode::VotingClosed,
                format!(
                    "voting on proposal {} ended at height {}",
                    self.proposal_id, proposal.end_height
                ),
            )
            .into());
        }
        Ok(())
    }
}

impl ActionHandler for Vote {
    fn check_stateful(&self, state: &dyn StateRead, _tx: &TxContext) -> Result<(), ExecError> {
        self.check_against(state)
    }

    fn execute(
        &self,
        state: &mut dyn StateWrite,
        tx: &TxContext,
        effects: &mut ActionEffects,
    ) -> Result<(), ExecError> {
        self.check_against(&*state)?;
        state.put_vote(self.proposal_id, &tx.signer, self.option);
        effects.events.push(
            Event::new("governance.vote")
                .indexed("proposal_id", EventValue::U64(self.proposal_id))
                .indexed("voter", EventValue::Address(tx.signer))
                .stored("option", EventValue::Text(option_name(self.option).into())),
        );
        Ok(())
    }
}
