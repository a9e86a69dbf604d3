//! Building and checking block proposals: the block layout (commitments
//! item first, then transactions that execute), CometBFT's own size
//! accounting, and the one execution path FinalizeBlock also uses.

use std::{
    cmp::Reverse,
    collections::{BTreeMap, BinaryHeap},
};

use bytes::Bytes;
use weft_core::{
    block::{batch_roots, COMMITMENTS_ITEM_LEN},
    Address, BlockCommitments, ChainParams, Hash, RollupId, TxCode,
};

use crate::{
    chain::ChainRead,
    mempool::{Mempool, SignatureCache},
    storage::{StateDelta, StateRead, StorageError},
    transaction::{execute, CheckedTx, Receipt, Rejection},
};

/// Bytes a tx costs against `max_tx_bytes`, as CometBFT counts it: the
/// protobuf field tag, the varint length and the bytes (pitfall 1).
pub fn proto_size(len: usize) -> usize {
    let mut varint = 1;
    let mut v = len >> 7;
    while v > 0 {
        varint += 1;
        v >>= 7;
    }
    1 + varint + len
}

/// The result of one CometBFT tx of a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemResult {
    /// Item 0.
    Commitments,
    /// A transaction and what became of it.
    Tx {
        /// Its hash.
        hash: Hash,
        /// Executed, or refused (only possible in a block decided
        /// without our ProcessProposal's agreement).
        outcome: Result<Receipt, Rejection>,
    },
}

/// Why a transaction could not be added to a block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The block is at a limit for it (rollup data, the account's share).
    #[error("block limit: {0}")]
    Limit(String),
    /// The transaction itself does not execute.
    #[error(transparent)]
    Rejected(#[from] Rejection),
}

/// A block being executed over a base state.
pub struct BlockExecution<S: StateRead> {
    /// State changes so far.
    pub delta: StateDelta<S>,
    params: ChainParams,
    batches: BTreeMap<RollupId, Vec<Vec<u8>>>,
    rollup_bytes: u64,
    fees: weft_core::Amount,
    per_account: BTreeMap<Address, u32>,
    /// One result per CometBFT tx so far.
    pub results: Vec<ItemResult>,
}

impl<S: StateRead> BlockExecution<S> {
    /// Starts a block over `base`, under the chain parameters it holds.
    pub fn new(base: S) -> Result<Self, StorageError> {
        let params = base.params()?;
        Ok(BlockExecution {
            delta: StateDelta::new(base),
            params,
            batches: BTreeMap::new(),
            rollup_bytes: 0,
            fees: 0,
            per_account: BTreeMap::new(),
            results: vec![ItemResult::Commitments],
        })
    }

    /// Applies `tx` atomically within the block's limits: all of it, or
    /// nothing and why.
    pub fn apply(&mut self, tx: &CheckedTx) -> Result<(), ApplyError> {
        let count = self.per_account.get(&tx.signer).copied().unwrap_or(0);
        if count >= self.params.max_txs_per_account_per_block {
            return Err(ApplyError::Limit(format!(
                "{} already has {count} transactions in this block (limit {})",
                tx.signer, self.params.max_txs_per_account_per_block
            )));
        }
        let data = tx.tx.transaction.rollup_data_bytes();
        if self.rollup_bytes + data > self.params.max_rollup_data_per_block {
            return Err(ApplyError::Limit(format!(
                "{} more bytes of rollup data would exceed the block's {} (already {})",
                data, self.params.max_rollup_data_per_block, self.rollup_bytes
            )));
        }
        self.delta.begin_tx();
        match execute(&mut self.delta, tx, &self.params) {
            Ok(receipt) => {
                self.delta.commit_tx();
                self.rollup_bytes += data;
                self.fees = self.fees.saturating_add(receipt.fee);
                self.per_account.insert(tx.signer, count + 1);
                for action in &tx.tx.transaction.actions {
                    if let weft_core::Action::SubmitRollupData { rollup_id, data } = action {
                        self.batches
                            .entry(*rollup_id)
                            .or_default()
                            .push(data.clone());
                    }
                }
                self.results.push(ItemResult::Tx {
                    hash: tx.hash,
                    outcome: Ok(receipt),
                });
                Ok(())
            }
            Err(e) => {
                self.delta.discard_tx();
                Err(ApplyError::Rejected(e))
            }
        }
    }

    /// Ends the block: credits the collected fees to the pool and returns
    /// the state changes in key order.
    pub fn into_changes(mut self) -> Result<crate::storage::StateChanges, StorageError> {
        crate::fees::collect(&mut self.delta, self.fees)?;
        Ok(self.delta.into_changes())
    }

    /// Rollup data bytes in the block so far.
    pub fn rollup_bytes(&self) -> u64 {
        self.rollup_bytes
    }

    /// Records a tx that could not be executed (FinalizeBlock only).
    pub fn record_failure(&mut self, hash: Hash, rejection: Rejection) {
        self.results.push(ItemResult::Tx {
            hash,
            outcome: Err(rejection),
        });
    }

    /// The commitments of the batches so far.
    pub fn commitments(&self) -> BlockCommitments {
        BlockCommitments::compute(&self.batches)
    }

    /// Each rollup's batch, in id order.
    pub fn batches(&self) -> &BTreeMap<RollupId, Vec<Vec<u8>>> {
        &self.batches
    }

    /// Each rollup's batch root, in id order.
    pub fn batch_roots(&self) -> Vec<(RollupId, Hash)> {
        batch_roots(&self.batches)
    }
}

/// PrepareProposal: the commitments item, then transactions from the
/// mempool that execute, first-seen across accounts and in nonce order
/// within each, within `max_tx_bytes` as CometBFT measures it and within
/// the block's rollup-data and per-account caps. What is left out stays
/// pending in the mempool for a later block.
pub fn prepare<S: StateRead>(
    base: S,
    pool: &Mempool,
    max_tx_bytes: usize,
) -> Result<Vec<Bytes>, StorageError> {
    let mut exec = BlockExecution::new(base)?;
    let mut budget = max_tx_bytes.saturating_sub(proto_size(COMMITMENTS_ITEM_LEN));
    let runs: Vec<Vec<&crate::mempool::Entry>> =
        pool.pending_runs().filter(|r| !r.is_empty()).collect();
    // Heads of every account's run, earliest arrival first.
    let mut heads: BinaryHeap<Reverse<(u64, usize, usize)>> = runs
        .iter()
        .enumerate()
        .map(|(i, run)| Reverse((run[0].seq, i, 0)))
        .collect();
    let mut included: Vec<Bytes> = Vec::new();
    while let Some(Reverse((_, run, pos))) = heads.pop() {
        let entry = runs[run][pos];
        let size = proto_size(entry.bytes.len());
        if size > budget {
            continue; // this account's run stops here; smaller txs of others may fit
        }
        match exec.apply(&entry.checked) {
            Ok(()) => {
                budget -= size;
                included.push(entry.bytes.clone());
                if let Some(next) = runs[run].get(pos + 1) {
                    heads.push(Reverse((next.seq, run, pos + 1)));
                }
            }
            Err(ApplyError::Rejected(r)) if r.code == TxCode::Internal => {
                return Err(StorageError::Tree(r.message));
            }
            Err(_) => {} // limit reached or no longer executable: the run stops
        }
    }
    let mut block = Vec::with_capacity(included.len() + 1);
    block.push(Bytes::from(exec.commitments().encode()));
    block.extend(included);
    Ok(block)
}

/// Why a proposal is refused.
#[derive(Debug, thiserror::Error)]
pub enum ProposalError {
    /// Item 0 is missing or not a commitments item.
    #[error("item 0 is not a valid commitments item: {0}")]
    Commitments(String),
    /// A transaction fails a check or does not execute.
    #[error("tx {index} is invalid: {rejection}")]
    Tx {
        /// Position in the block.
        index: usize,
        /// Why.
        rejection: Rejection,
    },
    /// A transaction would exceed a block limit.
    #[error("tx {index} exceeds a block limit: {why}")]
    Limit {
        /// Position in the block.
        index: usize,
        /// Which limit.
        why: String,
    },
    /// The commitments do not match the block's batches.
    #[error("commitments do not match the block's batches")]
    CommitmentsMismatch,
    /// Storage failed while checking: not the proposer's fault.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// ProcessProposal: recomputes everything; any transaction that does not
/// execute, or commitments that differ, refuse the proposal.
pub fn process<S: StateRead>(
    base: S,
    cache: &SignatureCache,
    chain_id: &str,
    txs: &[Bytes],
) -> Result<BlockExecution<S>, ProposalError> {
    let first = txs
        .first()
        .ok_or_else(|| ProposalError::Commitments("empty block".into()))?;
    let claimed =
        BlockCommitments::decode(first).map_err(|e| ProposalError::Commitments(e.to_string()))?;
    let mut exec = BlockExecution::new(base)?;
    let stateless = cache.check_all(&txs[1..], chain_id, verify_threads());
    for (index, checked) in stateless.into_iter().enumerate() {
        let index = index + 1;
        let checked = checked.map_err(|rejection| ProposalError::Tx { index, rejection })?;
        exec.apply(&checked).map_err(|e| match e {
            ApplyError::Rejected(r) if r.code == TxCode::Internal => {
                ProposalError::Storage(StorageError::Tree(r.message))
            }
            ApplyError::Rejected(rejection) => ProposalError::Tx { index, rejection },
            ApplyError::Limit(why) => ProposalError::Limit { index, why },
        })?;
    }
    if exec.commitments() != claimed {
        return Err(ProposalError::CommitmentsMismatch);
    }
    Ok(exec)
}

/// FinalizeBlock on a decided block we did not (or could not) process:
/// executes what executes and records the rest; never refuses. Only a local
/// storage failure stops it, since recording that as a tx result would make
/// this node's results differ from everyone else's.
pub fn execute_decided<S: StateRead>(
    base: S,
    cache: &SignatureCache,
    chain_id: &str,
    txs: &[Bytes],
) -> Result<BlockExecution<S>, StorageError> {
    let mut exec = BlockExecution::new(base)?;
    if let Some(first) = txs.first() {
        if BlockCommitments::decode(first).is_err() {
            tracing::error!("decided block's item 0 is not a commitments item");
        }
    }
    let items = txs.get(1..).unwrap_or_default();
    let stateless = cache.check_all(items, chain_id, verify_threads());
    for (raw, checked) in items.iter().zip(stateless) {
        match checked {
            Ok(checked) => match exec.apply(&checked) {
                Ok(()) => {}
                Err(ApplyError::Rejected(r)) if r.code == TxCode::Internal => {
                    return Err(StorageError::Tree(r.message))
                }
                Err(ApplyError::Rejected(rejection)) => {
                    exec.record_failure(checked.hash, rejection)
                }
                Err(ApplyError::Limit(why)) => exec.record_failure(
                    checked.hash,
                    Rejection::new(TxCode::InvalidTransaction, format!("block limit: {why}")),
                ),
            },
            Err(rejection) => exec.record_failure(weft_core::sha256(raw), rejection),
        }
    }
    Ok(exec)
}

/// Threads that verify a block's uncached signatures: the machine's cores
/// (the outcome never depends on it; only how soon it is known).
fn verify_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests;
