//! A whole transaction's checks and execution, in stages shared by CheckTx,
//! PrepareProposal, ProcessProposal and FinalizeBlock so they never drift:
//! `check_stateless` (decode, structure, chain id, signature), then
//! `check_stateful` (nonce, limits, affordability against a state), then
//! `execute` (fees, nonce, each action through the component owning it).

use weft_core::{Action, Address, Amount, ChainParams, Hash, RollupId, SignedTransaction, TxCode};

use crate::{
    accounts::{actions::transfer, Account, AccountsRead, AccountsWrite},
    chain::ChainRead,
    fees,
    rollups::actions::check_data_size,
    storage::{StateRead, StateWrite, StorageError},
};

/// A refusal with its ABCI code and a readable reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.name())]
pub struct Rejection {
    /// The class of refusal.
    pub code: TxCode,
    /// What was wrong, for the user.
    pub message: String,
}

impl Rejection {
    /// A rejection.
    pub fn new(code: TxCode, message: impl Into<String>) -> Self {
        Rejection {
            code,
            message: message.into(),
        }
    }
}

impl From<StorageError> for Rejection {
    fn from(e: StorageError) -> Self {
        Rejection::new(TxCode::Internal, e.to_string())
    }
}

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

/// Decode, structure and chain id: the checks that need neither state nor
/// the signature (cheap; recheck stops here).
pub fn check_decoded(bytes: &[u8], chain_id: &str) -> Result<CheckedTx, Rejection> {
    let tx = SignedTransaction::decode(bytes)
        .map_err(|e| Rejection::new(TxCode::Malformed, e.to_string()))?;
    tx.check_structure()
        .map_err(|e| Rejection::new(TxCode::InvalidTransaction, e.to_string()))?;
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

/// The total the signer must hold: fee plus all transfers.
pub fn cost(tx: &CheckedTx, fee: Amount) -> Result<Amount, Rejection> {
    tx.tx
        .transaction
        .actions
        .iter()
        .try_fold(fee, |acc, a| match a {
            Action::Transfer { amount, .. } => acc
                .checked_add(*amount)
                .ok_or_else(|| Rejection::new(TxCode::InsufficientFunds, "total cost overflows")),
            Action::SubmitRollupData { .. } => Ok(acc),
        })
}

/// The fee, if `account` holds the fee plus all transfers of `tx`.
fn affordable(
    tx: &CheckedTx,
    account: &Account,
    params: &ChainParams,
) -> Result<Amount, Rejection> {
    let fee = fees::fee_for(params, tx.tx.transaction.rollup_data_bytes())?;
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

/// Nonce, size limits and affordability against `state`. Returns the fee.
pub fn check_stateful<S: StateRead>(
    state: &S,
    tx: &CheckedTx,
    rule: NonceRule,
) -> Result<Amount, Rejection> {
    let params = state.params()?;
    check_data_size(&tx.tx.transaction, &params)?;
    let account = state.account(&tx.signer)?;
    let nonce = tx.tx.transaction.nonce;
    match rule {
        NonceRule::Exact if nonce != account.nonce => {
            return Err(Rejection::new(
                TxCode::NonceMismatch,
                format!("nonce {nonce}, account expects {}", account.nonce),
            ))
        }
        NonceRule::Pending { .. } if nonce < account.nonce => {
            return Err(Rejection::new(
                TxCode::NonceAlreadyUsed,
                format!(
                    "nonce {nonce} already used; account is at {}",
                    account.nonce
                ),
            ))
        }
        NonceRule::Pending { max_ahead } if nonce - account.nonce > max_ahead => {
            return Err(Rejection::new(
                TxCode::NonceTooFarAhead,
                format!(
                    "nonce {nonce} is more than {max_ahead} ahead of the account's {}",
                    account.nonce
                ),
            ))
        }
        _ => {}
    }
    affordable(tx, &account, &params)
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
    /// Transfers made: recipient and amount.
    pub transfers: Vec<(Address, Amount)>,
    /// Rollup data placed in the block: rollup and byte count.
    pub rollup_data: Vec<(RollupId, usize)>,
}

/// One attribute of an ABCI event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventAttribute {
    /// Attribute key.
    pub key: &'static str,
    /// Its value.
    pub value: String,
    /// Whether CometBFT's tx indexer indexes it (`tx_search` can find it).
    pub index: bool,
}

impl EventAttribute {
    fn indexed(key: &'static str, value: String) -> Self {
        EventAttribute {
            key,
            value,
            index: true,
        }
    }

    fn stored(key: &'static str, value: String) -> Self {
        EventAttribute {
            key,
            value,
            index: false,
        }
    }
}

impl Receipt {
    /// Deterministic ABCI events: `weft.tx`, one `weft.transfer` per
    /// transfer in action order, then one `weft.rollup_data` per rollup the
    /// transaction wrote to (in order of first appearance) with its item
    /// count and bytes. Each attribute says whether CometBFT should index
    /// it: every indexed attribute is a write to CometBFT's tx index for
    /// every transaction, so only what users look transactions up by is
    /// indexed (signer, transfer parties, rollup id); CometBFT indexes the
    /// tx hash and height itself. One event per rollup rather than per item
    /// for the same reason.
    pub fn events(&self) -> Vec<(&'static str, Vec<EventAttribute>)> {
        let mut events = vec![(
            "weft.tx",
            vec![
                EventAttribute::indexed("signer", self.signer.to_string()),
                EventAttribute::stored("nonce", self.nonce.to_string()),
                EventAttribute::stored("fee", self.fee.to_string()),
            ],
        )];
        for (to, amount) in &self.transfers {
            events.push((
                "weft.transfer",
                vec![
                    EventAttribute::indexed("from", self.signer.to_string()),
                    EventAttribute::indexed("to", to.to_string()),
                    EventAttribute::stored("amount", amount.to_string()),
                ],
            ));
        }
        let mut per_rollup: Vec<(RollupId, usize, usize)> = Vec::new();
        for (rollup_id, bytes) in &self.rollup_data {
            match per_rollup.iter_mut().find(|(r, _, _)| r == rollup_id) {
                Some((_, items, total)) => {
                    *items += 1;
                    *total += bytes;
                }
                None => per_rollup.push((*rollup_id, 1, *bytes)),
            }
        }
        for (rollup_id, items, bytes) in per_rollup {
            events.push((
                "weft.rollup_data",
                vec![
                    EventAttribute::indexed("rollup_id", rollup_id.to_hex()),
                    EventAttribute::stored("items", items.to_string()),
                    EventAttribute::stored("bytes", bytes.to_string()),
                ],
            ));
        }
        events
    }
}

/// Executes `tx` on `state` under `params`: exact nonce, affordability,
/// fee debit, nonce increment, then each action through the component
/// owning it. The fee is only debited here; the block credits the pool
/// once (`fees::collect`). Not atomic by itself: callers open and close a
/// transaction layer around it so a failure leaves nothing behind.
pub fn execute<S: StateWrite>(
    state: &mut S,
    tx: &CheckedTx,
    params: &ChainParams,
) -> Result<Receipt, Rejection> {
    let body = &tx.tx.transaction;
    check_data_size(body, params)?;
    let mut account = state.account(&tx.signer)?;
    if body.nonce != account.nonce {
        return Err(Rejection::new(
            TxCode::NonceMismatch,
            format!("nonce {}, account expects {}", body.nonce, account.nonce),
        ));
    }
    let fee = affordable(tx, &account, params)?;
    account.balance -= fee;
    account.nonce += 1;
    state.put_account(&tx.signer, account);

    let mut receipt = Receipt {
        fee,
        signer: tx.signer,
        nonce: body.nonce,
        transfers: Vec::new(),
        rollup_data: Vec::new(),
    };
    for action in &body.actions {
        match action {
            Action::Transfer { to, amount } => {
                transfer(state, &tx.signer, to, *amount)?;
                receipt.transfers.push((*to, *amount));
            }
            Action::SubmitRollupData { rollup_id, data } => {
                receipt.rollup_data.push((*rollup_id, data.len()));
            }
        }
    }
    Ok(receipt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_one_rollup_data_event_per_rollup() {
        let (a, b) = (RollupId::from_name("a"), RollupId::from_name("b"));
        let to = Address([9; 20]);
        let receipt = Receipt {
            fee: 1_234,
            signer: Address([1; 20]),
            nonce: 7,
            transfers: vec![(to, 5)],
            rollup_data: vec![(b, 10), (a, 3), (b, 20), (b, 1)],
        };
        let events = receipt.events();
        let kinds: Vec<&str> = events.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            kinds,
            vec![
                "weft.tx",
                "weft.transfer",
                "weft.rollup_data",
                "weft.rollup_data"
            ]
        );
        let attrs = |i: usize| -> Vec<(&str, String, bool)> {
            events[i]
                .1
                .iter()
                .map(|a| (a.key, a.value.clone(), a.index))
                .collect()
        };
        assert_eq!(
            attrs(0),
            vec![
                ("signer", Address([1; 20]).to_string(), true),
                ("nonce", "7".to_string(), false),
                ("fee", "1234".to_string(), false)
            ]
        );
        assert_eq!(
            attrs(1),
            vec![
                ("from", Address([1; 20]).to_string(), true),
                ("to", to.to_string(), true),
                ("amount", "5".to_string(), false)
            ]
        );
        assert_eq!(
            attrs(2),
            vec![
                ("rollup_id", b.to_hex(), true),
                ("items", "3".to_string(), false),
                ("bytes", "31".to_string(), false)
            ]
        );
        assert_eq!(
            attrs(3),
            vec![
                ("rollup_id", a.to_hex(), true),
                ("items", "1".to_string(), false),
                ("bytes", "3".to_string(), false)
            ]
        );
    }
}
