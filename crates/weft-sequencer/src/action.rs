//! From the wire's `Action` enum to the handler of the component that owns
//! each variant: the one place an action's variant meets its rules.

use weft_core::Action;

use crate::{
    accounts::actions::Transfer,
    component::{ActionHandler, HandledAction},
    rollups::actions::SubmitRollupData,
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
        }
    }
}
