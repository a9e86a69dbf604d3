//! Governance: proposals with escrowed deposits, votes weighed by bonded
//! stake at the end of the voting period, and the deterministic execution
//! of passed proposals (admitting and removing validators, changing the
//! staking, governance, fee, rollup, account and inclusion parameters,
//! turning inclusion lists on) at the end of that period.
//!
//! Governance runs exactly when staking does: votes weigh by stake, so a
//! chain without a staking section writes no governance state, refuses
//! governance actions and hashes exactly as before.

pub mod actions;
pub mod query;
pub mod state;
pub mod tally;

#[cfg(test)]
mod tests;

use weft_core::{Amount, GovernanceParams, ProposalKind, StakingParams};

use crate::{
    accounts::actions::credit,
    component::{
        BlockContext, BlockSummary, Component, ComponentParams, EndBlock, Event, EventValue,
        Genesis, ParamsRead, ParamsWrite,
    },
    error::{ExecError, StorageError},
    staking::state::{StakingRead, StakingWrite},
    storage::StateWrite,
};
use state::{GovernanceRead, GovernanceWrite, ProposalStatus};

/// Where the governance parameters live.
pub const PARAMS_KEY: &str = "governance/params";

impl ComponentParams for GovernanceParams {
    const KEY: &'static str = PARAMS_KEY;
    const VERSION: u8 = 1;
}

/// The governance component. Runs after staking, so a validator admitted
/// at an epoch boundary enters the active set at the next epoch.
pub struct Governance;

impl Component for Governance {
    fn name(&self) -> &'static str {
        "governance"
    }

    fn init_chain(
        &self,
        state: &mut dyn StateWrite,
        genesis: &Genesis<'_>,
    ) -> Result<(), StorageError> {
        let app_state = genesis.app_state;
        if app_state.staking.is_none() {
            // `GenesisAppState::from_json` refuses a governance section
            // without staking; a hand-built one is refused here too.
            if app_state.governance.is_some() {
                return Err(StorageError::Corrupt(
                    "genesis governance section without a staking section".into(),
                ));
            }
            return Ok(());
        }
        let params = app_state.governance.clone().unwrap_or_default();
        params
            .check()
            .map_err(|e| StorageError::Corrupt(format!("genesis governance section: {e}")))?;
        state.put_component_params(&params);
        Ok(())
    }

    fn end_block(
        &self,
        state: &mut dyn StateWrite,
        ctx: &BlockContext,
        _block: &BlockSummary,
        out: &mut EndBlock,
    ) -> Result<(), StorageError> {
        // Off on a chain whose genesis did not switch it on.
        let Some(params) = state.optional_component_params::<GovernanceParams>()? else {
            return Ok(());
        };
        for id in state.proposals_ending_at(ctx.height)? {
            finish(state, &params, ctx.height, id, out)?;
        }
        Ok(())
    }
}

fn storage_of(e: ExecError, what: &str) -> StorageError {
    match e {
        ExecError::Storage(s) => s,
        ExecError::Rejected(r) => StorageError::Corrupt(format!("{what}: {r}")),
    }
}

/// Ends proposal `id`'s voting period: tally, decide, execute if passed,
/// return or burn the deposit, record the outcome.
fn finish(
    state: &mut dyn StateWrite,
    params: &GovernanceParams,
    height: u64,
    id: u64,
    out: &mut EndBlock,
) -> Result<(), StorageError> {
    let mut proposal = state
        .proposal(id)?
        .ok_or_else(|| StorageError::Corrupt(state::proposal_key(id)))?;
    if proposal.status != ProposalStatus::Voting {
        return Err(StorageError::Corrupt(format!(
            "proposal {id} is queued but not open"
        )));
    }
    let t = tally::tally(&*state, id)?;
    let status = tally::outcome(&t, params);
    let effect = if status == ProposalStatus::Passed {
        execute(state, height, &proposal.kind, out)?
    } else {
        "none"
    };
    // The deposit leaves escrow: burned on a veto, otherwise returned.
    // Escrow holds every open deposit, so it covers this one.
    let escrowed = state
        .escrowed()?
        .checked_sub(proposal.deposit)
        .ok_or_else(|| StorageError::Corrupt(format!("escrow short of proposal {id}")))?;
    state.put_escrowed(escrowed);
    if status == ProposalStatus::Vetoed {
        let burned = state.burned()?.saturating_add(proposal.deposit);
        state.put_burned(burned);
    } else {
        credit(state, &proposal.proposer, proposal.deposit)
            .map_err(|e| storage_of(e, "returning a deposit"))?;
    }
    proposal.status = status;
    proposal.final_tally = Some(t);
    state.put_proposal(&proposal);
    out.events.push(
        Event::new("governance.proposal_finished")
            .stored("proposal_id", EventValue::U64(id))
            .stored(
                "kind",
                EventValue::Text(actions::kind_name(&proposal.kind).into()),
            )
            .stored("outcome", EventValue::Text(status_name(status).into()))
            .stored("effect", EventValue::Text(effect.into()))
            .stored("yes", EventValue::Amount(t.yes))
            .stored("no", EventValue::Amount(t.no))
            .stored("abstain", EventValue::Amount(t.abstain))
            .stored("no_with_veto", EventValue::Amount(t.no_with_veto))
            .stored("total_bonded", EventValue::Amount(t.total_bonded))
            .stored(
                if status == ProposalStatus::Vetoed {
                    "deposit_burned"
                } else {
                    "deposit_returned"
                },
                EventValue::Amount(proposal.deposit),
            ),
    );
    Ok(())
}

/// A status's stable name.
pub fn status_name(status: ProposalStatus) -> &'static str {
    match status {
        ProposalStatus::Voting => "voting",
        ProposalStatus::Passed => "passed",
        ProposalStatus::Rejected => "rejected",
        ProposalStatus::Vetoed => "vetoed",
        ProposalStatus::NoQuorum => "no_quorum",
    }
}

/// Applies a passed proposal. What it names was checked when it was
/// submitted, but the state may have moved during the voting period
/// (another proposal admitted the same candidate first): then it does
/// nothing and says so (`no_effect`) rather than fail the block.
/// Runs at the end of block `height`; a consensus-parameter update goes
/// to `out`.
fn execute(
    state: &mut dyn StateWrite,
    height: u64,
    kind: &ProposalKind,
    out: &mut EndBlock,
) -> Result<&'static str, StorageError> {
    match kind {
        ProposalKind::AdmitValidator { operator } | ProposalKind::RemoveValidator { operator } => {
            let approve = matches!(kind, ProposalKind::AdmitValidator { .. });
            match state.validator(operator)? {
                Some(mut v) if v.approved != approve => {
                    v.approved = approve;
                    state.put_validator(&v)?;
                    Ok("applied")
                }
                _ => Ok("no_effect"),
            }
        }
        ProposalKind::ChangeStakingParams { params } => {
            if params.check().is_err() || state.get_raw(crate::staking::PARAMS_KEY)?.is_none() {
                return Ok("no_effect");
            }
            state.put_component_params::<StakingParams>(params);
            Ok("applied")
        }
        ProposalKind::ChangeGovernanceParams { params } => {
            if params.check().is_err() {
                return Ok("no_effect");
            }
            state.put_component_params::<GovernanceParams>(params);
            Ok("applied")
        }
        // Always present (genesis writes them); read from the next block
        // on, as every block reads its parameters from state.
        ProposalKind::ChangeFeeParams { params } => Ok(replace(state, params, params.check())),
        ProposalKind::ChangeRollupParams { params } => Ok(replace(state, params, params.check())),
        ProposalKind::ChangeAccountParams { params } => Ok(replace(state, params, params.check())),
        // Owned by the inclusion component, which keeps its state and the
        // consensus limits in step with what CometBFT is sent.
        ProposalKind::EnableInclusionLists { params, consensus } => {
            crate::inclusion::enable(state, height, params, consensus, out)
        }
        ProposalKind::ChangeInclusionParams { params } => {
            crate::inclusion::change_params(state, height, params)
        }
        ProposalKind::Text { .. } => Ok("none"),
    }
}

/// Writes a component's parameters if they passed their check (they did
/// when proposed; checked again so a block never stores parameters the
/// chain refuses).
fn replace<P: ComponentParams>(
    state: &mut dyn StateWrite,
    params: &P,
    check: Result<(), String>,
) -> &'static str {
    if check.is_err() {
        return "no_effect";
    }
    state.put_component_params(params);
    "applied"
}

/// Deposits escrowed plus deposits burned: what governance holds out of
/// the accounts' balances, for supply accounting.
pub fn held<S: crate::storage::StateRead + ?Sized>(state: &S) -> Result<Amount, StorageError> {
    Ok(state.escrowed()?.saturating_add(state.burned()?))
}
