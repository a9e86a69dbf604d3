//! From the wire's `Action` enum to the handler of the component that owns
//! each variant: the one place an action's variant meets its rules.

use weft_core::Action;

use crate::{
    accounts::actions::Transfer,
    component::{ActionHandler, HandledAction},
    governance::actions::{Propose, Vote},
    rollups::actions::SubmitRollupData,
    staking::actions::{
        ClaimRewards, Delegate, EditValidator, Redelegate, RegisterValidator, Undelegate, Unjail,
    },
};

impl HandledAction for Action {
    fn with_handler<R>(&self, f: impl FnOnce(&dyn ActionHandler) -> R) -> R {
        // Handlers borrow from the action: no allocation on the hot path.
        match self {
            Action::Transfer { to, amount } => f(&Transfer {
                to,
                amount: *amount,
            }),
            Action::SubmitRollupData { rollup_id, data } => {
                f(&SubmitRollupData { rollup_id, data })
            }
            Action::RegisterValidator {
                consensus_key,
                name,
                website,
                commission_bps,
            } => f(&RegisterValidator {
                consensus_key,
                name,
                website,
                commission_bps: *commission_bps,
            }),
            Action::Delegate { validator, amount } => f(&Delegate {
                validator,
                amount: *amount,
            }),
            Action::Undelegate { validator, amount } => f(&Undelegate {
                validator,
                amount: *amount,
            }),
            Action::Redelegate { from, to, amount } => f(&Redelegate {
                from,
                to,
                amount: *amount,
            }),
            Action::Propose { kind, deposit } => f(&Propose {
                kind,
                deposit: *deposit,
            }),
            Action::Vote {
                proposal_id,
                option,
            } => f(&Vote {
                proposal_id: *proposal_id,
                option: *option,
            }),
            Action::EditValidator {
                name,
                website,
                commission_bps,
                relay_key,
            } => f(&EditValidator {
                name: name.as_deref(),
                website: website.as_deref(),
                commission_bps: *commission_bps,
                relay_key: relay_key.as_ref(),
            }),
            Action::Unjail {} => f(&Unjail),
            Action::ClaimRewards {} => f(&ClaimRewards),
        }
    }
}
