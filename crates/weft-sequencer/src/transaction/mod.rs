//! A whole transaction's checks and execution, in stages shared by CheckTx,
//! PrepareProposal, ProcessProposal and FinalizeBlock so they never drift:
//! `check_stateless` (decode, structure, chain id, signature, each action's
//! stateless rules), then `check_stateful` (nonce, each action's rules
//! against a state, affordability), then `execute` (fee, nonce, each
//! action through the handler of the component owning it). Nothing here
//! knows any action: [`execute_actions`] runs any [`ActionHandler`]s.

use weft_core::{Address, Amount, Hash, SignedTransaction, TxCode};

pub use crate::error::Rejection;
use crate::{
    accounts::{Account, AccountsRead, AccountsWrite},
    component::{
        ActionEffects, Event, EventValue, HandledAction, ParamsRead, RollupItems, TxContext,
    },
    error::ExecError,
    fees::FeeParams,
    storage::{StateRead, StateWrite},
};

/// A transaction that passed its stateless checks.
#[derive(Debug, Clone)]
pub struct CheckedTx {
    /// The transaction.
    pub tx: SignedTransaction,
    /// SHA-256 of its wire bytes (CometBFT's tx hash).
    pub hash: Hash,
    /// The signer's address.
    pub signer: Address,
}

impl CheckedTx {
    /// What its actions see of it.
    pub fn context(&self) -> TxContext {
        TxContext {
            signer: self.signer,
            nonce: self.tx.transaction.nonce,
            hash: self.hash,
            rollup_data_bytes: self.tx.transaction.rollup_data_bytes(),
        }
    }
}

/// Decode, structure, chain id and each action's stateless rules: the
/// checks that need neither state nor the signature (cheap; recheck stops
/// here).
pub fn check_decoded(bytes: &[u8], chain_id: &str) -> Result<CheckedTx, Rejection> {
    let tx = SignedTransaction::decode(bytes)
        .map_err(|e| Rejection::new(TxCode::Malformed, e.to_string()))?;
    tx.check_structure()
        .map_err(|e| Rejection::new(TxCode::InvalidTransaction, e.to_string()))?;
    for (i, action) in tx.transaction.actions.iter().enumerate() {
        action
            .with_handler(|h| h.check_stateless())
            .map_err(|r| Rejection::new(r.code, format!("action {i}: {}", r.message)))?;
    }
    if tx.transaction.chain_id != chain_id {
        return Err(Rejection::new(
            TxCode::WrongChainId,
            format!(
                "signed for chain `{}`, this is `{chain_id}`",
                tx.transaction.chain_id
            ),
        ));
    }
    Ok(CheckedTx {
        hash: weft_core::sha256(bytes),
        signer: tx.signer(),
        tx,
    })
}

/// Every stateless check including the signature.
pub fn check_stateless(bytes: &[u8], chain_id: &str) -> Result<CheckedTx, Rejection> {
    let checked = check_decoded(bytes, chain_id)?;
    checked
        .tx
        .verify_signature()
        .map_err(|e| Rejection::new(TxCode::BadSignature, e.to_string()))?;
    Ok(checked)
}

/// How the nonce must relate to the account's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceRule {
    /// Executing in a block: exactly the account's nonce.
    Exact,
    /// Admitting to the mempool: not yet used, and at most `max_ahead`
    /// beyond the account's nonce.
    Pending {
        /// How far ahead a queued nonce may be.
        max_ahead: u64,
    },
}

/// The total the signer must hold: fee plus what each action spends.
pub fn cost(tx: &CheckedTx, fee: Amount) -> Result<Amount, Rejection> {
    tx.tx.transaction.actions.iter().try_fold(fee, |acc, a| {
        acc.checked_add(a.with_handler(|h| h.spend()))
            .ok_or_else(|| Rejection::new(TxCode::InsufficientFunds, "total cost overflows"))
    })
}

/// The fee for `tx` under the fee component's parameters.
fn fee<S: StateRead + ?Sized>(state: &S, tx: &CheckedTx) -> Result<Amount, ExecError> {
    let params: FeeParams = state.component_params()?;
    Ok(crate::fees::fee_for(
        &params,
        tx.tx.transaction.rollup_data_bytes(),
    )?)
}

/// The fee, if `account` holds the fee plus everything `tx` spends.
fn affordable(tx: &CheckedTx, account: &Account, fee: Amount) -> Result<Amount, Rejection> {
    let total = cost(tx, fee)?;
    if account.balance < total {
        return Err(Rejection::new(
            TxCode::InsufficientFunds,
            format!(
                "{} has {} but the transaction costs {total}",
                tx.signer, account.balance
            ),
        ));
    }
    Ok(fee)
}

fn check_nonce(nonce: u64, account: &Account, rule: NonceRule) -> Result<(), Rejection> {
    match rule {
        NonceRule::Exact if nonce != account.nonce => Err(Rejection::new(
            TxCode::NonceMismatch,
            format!("nonce {nonce}, account expects {}", account.nonce),
        )),
        NonceRule::Pending { .. } if nonce < account.nonce => Err(Rejection::new(
            TxCode::NonceAlreadyUsed,
            format!(
                "nonce {nonce} already used; account is at {}",
                account.nonce
            ),
        )),
        NonceRule::Pending { max_ahead } if nonce - account.nonce > max_ahead => {
            Err(Rejection::new(
                TxCode::NonceTooFarAhead,
                format!(
                    "nonce {nonce} is more than {max_ahead} ahead of the account's {}",
                    account.nonce
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// Each action's rules against `state`, then the nonce and affordability.
/// Returns the fee.
pub fn check_stateful<S: StateRead>(
    state: &S,
    tx: &CheckedTx,
    rule: NonceRule,
) -> Result<Amount, ExecError> {
    let ctx = tx.context();
    for action in &tx.tx.transaction.actions {
        action.with_handler(|h| h.check_stateful(state, &ctx))?;
    }
    let account = state.account(&tx.signer)?;
    check_nonce(ctx.nonce, &account, rule)?;
    let fee = fee(state, tx)?;
    Ok(affordable(tx, &account, fee)?)
}

/// What executing a transaction did: enough to emit its events later,
/// without formatting anything on the proposal path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Fee debited from the signer (credited to the pool once per block).
    pub fee: Amount,
    /// The signer.
    pub signer: Address,
    /// The nonce it used.
    pub nonce: u64,
    /// The actions' events, in action order.
    pub events: Vec<Event>,
}

impl Receipt {
    /// Deterministic events: `weft.tx` (signer indexed; nonce and fee
    /// stored), then each action's events in action order. CometBFT
    /// indexes the tx hash and height itself.
    pub fn events(&self) -> Vec<Event> {
        let mut events = Vec::with_capacity(self.events.len() + 1);
        events.push(
            Event::new("weft.tx")
                .indexed("signer", EventValue::Address(self.signer))
                .stored("nonce", EventValue::U64(self.nonce))
                .stored("fee", EventValue::Amount(self.fee)),
        );
        events.extend(self.events.iter().cloned());
        events
    }
}

/// Runs `actions` in order for the transaction `tx`: each one's stateful
/// check against the state as the earlier actions left it, then its
/// execution. Not atomic by itself (see [`execute`]).
pub fn execute_actions<S: StateWrite, A: HandledAction>(
    state: &mut S,
    tx: &TxContext,
    actions: &[A],
) -> Result<ActionEffects, ExecError> {
    let mut effects = ActionEffects::default();
    for action in actions {
        action.with_handler(|h| {
            h.check_stateful(&*state, tx)?;
            h.execute(&mut *state, tx, &mut effects)
        })?;
    }
    Ok(effects)
}

/// Executes `tx` on `state`: exact nonce, affordability, fee debit, nonce
/// increment, then each action through the component owning it. The fee
/// is only debited here; the fee component credits the pool once per
/// block. Not atomic by itself: callers open and close a transaction
/// layer around it so a failure leaves nothing behind. Returns the
/// receipt and the rollup data the transaction places in the block.
pub fn execute<S: StateWrite>(
    state: &mut S,
    tx: &CheckedTx,
) -> Result<(Receipt, RollupItems), ExecError> {
    let ctx = tx.context();
    let mut account = state.account(&tx.signer)?;
    check_nonce(ctx.nonce, &account, NonceRule::Exact)?;
    let fee = affordable(tx, &account, fee(state, tx)?)?;
    account.balance -= fee;
    account.nonce += 1;
    state.put_account(&tx.signer, account);

    let ActionEffects {
        events,
        rollup_data,
    } = execute_actions(state, &ctx, &tx.tx.transaction.actions)?;
    let receipt = Receipt {
        fee,
        signer: tx.signer,
        nonce: ctx.nonce,
        events,
    };
    Ok((receipt, rollup_data))
}

#[cfg(test)]
mod tests;
