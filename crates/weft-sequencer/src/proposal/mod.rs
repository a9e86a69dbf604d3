//! Building and checking block proposals: the block layout (commitments
//! item first, then transactions that execute), CometBFT's own size
//! accounting, and the one execution path FinalizeBlock also uses.

use std::collections::BTreeMap;

use bytes::Bytes;
use weft_core::{
    block::{batch_roots, COMMITMENTS_ITEM_LEN},
    Address, BlockCommitments, Hash, RollupId,
};

use crate::{
    accounts::AccountsRead,
    mempool::SignatureCache,
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

/// A block being executed over a base state.
pub struct BlockExecution<S: StateRead> {
    /// State changes so far.
    pub delta: StateDelta<S>,
    batches: BTreeMap<RollupId, Vec<Vec<u8>>>,
    /// One result per CometBFT tx so far.
    pub results: Vec<ItemResult>,
}

impl<S: StateRead> BlockExecution<S> {
    /// Starts a block over `base`.
    pub fn new(base: S) -> Self {
        BlockExecution {
            delta: StateDelta::new(base),
            batches: BTreeMap::new(),
            results: vec![ItemResult::Commitments],
        }
    }

    /// Applies `tx` atomically: all of it, or nothing and the rejection.
    pub fn apply(&mut self, tx: &CheckedTx) -> Result<(), Rejection> {
        self.delta.begin_tx();
        match execute(&mut self.delta, tx) {
            Ok(receipt) => {
                self.delta.commit_tx();
                for (id, data) in &receipt.rollup_data {
                    self.batches.entry(*id).or_default().push(data.clone());
                }
                self.results.push(ItemResult::Tx {
                    hash: tx.hash,
                    outcome: Ok(receipt),
                });
                Ok(())
            }
            Err(e) => {
                self.delta.discard_tx();
                Err(e)
            }
        }
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

/// PrepareProposal: the commitments item, then every offered transaction
/// that executes, first-seen within each account's nonce order, within
/// `max_tx_bytes` as CometBFT measures it. Transactions left out stay in
/// CometBFT's mempool for a later block or for recheck to remove.
pub fn prepare<S: StateRead>(
    base: S,
    cache: &mut SignatureCache,
    chain_id: &str,
    offered: &[Bytes],
    max_tx_bytes: usize,
) -> Result<Vec<Bytes>, StorageError> {
    let mut exec = BlockExecution::new(base);
    let mut budget = max_tx_bytes.saturating_sub(proto_size(COMMITMENTS_ITEM_LEN));
    let mut included: Vec<Bytes> = Vec::new();
    // Future nonces wait here until their predecessor is included.
    let mut parked: BTreeMap<Address, BTreeMap<u64, (CheckedTx, Bytes)>> = BTreeMap::new();

    for raw in offered {
        let Ok(checked) = cache.check_stateless(raw, chain_id) else {
            continue;
        };
        let expected = exec.delta.account(&checked.signer)?.nonce;
        let nonce = checked.tx.transaction.nonce;
        if nonce > expected {
            parked
                .entry(checked.signer)
                .or_default()
                .entry(nonce)
                .or_insert((checked, raw.clone()));
            continue;
        }
        if nonce < expected {
            continue;
        }
        let signer = checked.signer;
        if !try_include(&mut exec, &mut budget, &mut included, &checked, raw) {
            continue;
        }
        // Promote this account's parked successors while they fit and execute.
        if let Some(queue) = parked.get_mut(&signer) {
            loop {
                let next = exec.delta.account(&signer)?.nonce;
                let Some((tx, bytes)) = queue.remove(&next) else {
                    break;
                };
                if !try_include(&mut exec, &mut budget, &mut included, &tx, &bytes) {
                    break;
                }
            }
        }
    }

    let mut block = Vec::with_capacity(included.len() + 1);
    block.push(Bytes::from(exec.commitments().encode()));
    block.extend(included);
    Ok(block)
}

fn try_include<S: StateRead>(
    exec: &mut BlockExecution<S>,
    budget: &mut usize,
    included: &mut Vec<Bytes>,
    tx: &CheckedTx,
    raw: &Bytes,
) -> bool {
    let size = proto_size(raw.len());
    if size > *budget || exec.apply(tx).is_err() {
        return false;
    }
    *budget -= size;
    included.push(raw.clone());
    true
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
    cache: &mut SignatureCache,
    chain_id: &str,
    txs: &[Bytes],
) -> Result<BlockExecution<S>, ProposalError> {
    let first = txs
        .first()
        .ok_or_else(|| ProposalError::Commitments("empty block".into()))?;
    let claimed =
        BlockCommitments::decode(first).map_err(|e| ProposalError::Commitments(e.to_string()))?;
    let mut exec = BlockExecution::new(base);
    for (index, raw) in txs.iter().enumerate().skip(1) {
        let checked = cache
            .check_stateless(raw, chain_id)
            .map_err(|rejection| ProposalError::Tx { index, rejection })?;
        exec.apply(&checked)
            .map_err(|rejection| match rejection.code {
                weft_core::TxCode::Internal => {
                    ProposalError::Storage(StorageError::Tree(rejection.message.clone()))
                }
                _ => ProposalError::Tx { index, rejection },
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
    cache: &mut SignatureCache,
    chain_id: &str,
    txs: &[Bytes],
) -> Result<BlockExecution<S>, StorageError> {
    let mut exec = BlockExecution::new(base);
    if let Some(first) = txs.first() {
        if BlockCommitments::decode(first).is_err() {
            tracing::error!("decided block's item 0 is not a commitments item");
        }
    }
    for raw in txs.iter().skip(1) {
        let hash = weft_core::sha256(raw);
        match cache.check_stateless(raw, chain_id) {
            Ok(checked) => match exec.apply(&checked) {
                Ok(()) => {}
                Err(r) if r.code == weft_core::TxCode::Internal => {
                    return Err(StorageError::Tree(r.message))
                }
                Err(rejection) => exec.record_failure(hash, rejection),
            },
            Err(rejection) => exec.record_failure(hash, rejection),
        }
    }
    Ok(exec)
}

#[cfg(test)]
mod tests;
