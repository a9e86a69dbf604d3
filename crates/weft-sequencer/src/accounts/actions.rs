//! The `Transfer` action and the debit/credit rules every balance change
//! follows (checked arithmetic; an overdraft is an error, never a wrap).

use weft_core::{Address, Amount, TxCode};

use super::state::{AccountsRead, AccountsWrite};
use crate::{
    component::{ActionEffects, ActionHandler, Event, EventValue, TxContext},
    error::{ExecError, Rejection},
    storage::StateWrite,
};

/// `Action::Transfer`: moves native asset from the signer to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer<'a> {
    /// Recipient.
    pub to: &'a Address,
    /// Amount (never zero: the structure check refuses it).
    pub amount: Amount,
}

impl ActionHandler for Transfer<'_> {
    fn check_stateless(&self) -> Result<(), Rejection> {
        if self.amount == 0 {
            return Err(Rejection::new(
                TxCode::InvalidTransaction,
                "transfer of zero",
            ));
        }
        Ok(())
    }

    fn spend(&self) -> Amount {
        self.amount
    }

    fn execute(
        &self,
        state: &mut dyn StateWrite,
        tx: &TxContext,
        effects: &mut ActionEffects,
    ) -> Result<(), ExecError> {
        transfer(state, &tx.signer, self.to, self.amount)?;
        effects.events.push(
            Event::new("weft.transfer")
                .indexed("from", EventValue::Address(tx.signer))
                .indexed("to", EventValue::Address(*self.to))
                .stored("amount", EventValue::Amount(self.amount)),
        );
        Ok(())
    }
}

/// Takes `amount` from `from`.
pub fn debit<S: StateWrite + ?Sized>(
    state: &mut S,
    from: &Address,
    amount: Amount,
) -> Result<(), ExecError> {
    let mut acct = state.account(from)?;
    acct.balance = acct.balance.checked_sub(amount).ok_or_else(|| {
        Rejection::new(
            TxCode::InsufficientFunds,
            format!("{from} has {} but needs {amount}", acct.balance),
        )
    })?;
    state.put_account(from, acct);
    Ok(())
}

/// Gives `amount` to `to`.
pub fn credit<S: StateWrite + ?Sized>(
    state: &mut S,
    to: &Address,
    amount: Amount,
) -> Result<(), ExecError> {
    let mut acct = state.account(to)?;
    acct.balance = acct.balance.checked_add(amount).ok_or_else(|| {
        Rejection::new(
            TxCode::InvalidTransaction,
            format!("balance of {to} would overflow"),
        )
    })?;
    state.put_account(to, acct);
    Ok(())
}

/// Executes a transfer.
pub fn transfer<S: StateWrite + ?Sized>(
    state: &mut S,
    from: &Address,
    to: &Address,
    amount: Amount,
) -> Result<(), ExecError> {
    debit(state, from, amount)?;
    credit(state, to, amount)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{delta::EmptyState, StateDelta};
    use weft_core::SigningKey;

    #[test]
    fn transfer_moves_funds_and_refuses_overdraft() {
        let (a, b) = (
            SigningKey::from_seed("a").address(),
            SigningKey::from_seed("b").address(),
        );
        let mut s = StateDelta::new(EmptyState);
        credit(&mut s, &a, 10).unwrap();
        transfer(&mut s, &a, &b, 4).unwrap();
        assert_eq!(s.account(&a).unwrap().balance, 6);
        assert_eq!(s.account(&b).unwrap().balance, 4);
        let err = transfer(&mut s, &a, &b, 7).unwrap_err();
        assert_eq!(err.code(), TxCode::InsufficientFunds);
        credit(&mut s, &b, Amount::MAX - 4).unwrap();
        assert!(credit(&mut s, &b, 1).is_err(), "overflow is refused");
    }
}
