//! Building and checking block proposals: the block layout (commitments
//! item first, then transactions that execute), CometBFT's own size
//! accounting, and the one execution path FinalizeBlock also uses.

use std::{
    cmp::Reverse,
    collections::{BTreeMap, BTreeSet, BinaryHeap},
    sync::{Arc, Mutex},
    time::Instant,
};

use bytes::Bytes;
use weft_core::{
    block::{batch_roots, COMMITMENTS_ITEM_LEN},
    Address, BlockCommitments, Hash, RollupId, TxCode,
};

use crate::{
    accounts::AccountParams,
    component::{BlockContext, BlockSummary, Components, EndBlock, ParamsRead},
    error::{ExecError, Rejection, StorageError},
    mempool::{Mempool, SignatureCache},
    rollups::RollupParams,
    storage::{StateDelta, StateRead},
    transaction::{execute, CheckedTx, Receipt},
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
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The block is at a limit for it (rollup data, the account's share).
    #[error("block limit: {0}")]
    Limit(String),
    /// The transaction itself does not execute.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// This node could not read its state: nobody's fault but ours.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<ExecError> for ApplyError {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::Rejected(r) => ApplyError::Rejected(r),
            ExecError::Storage(s) => ApplyError::Storage(s),
        }
    }
}

/// The block-wide caps, read once per block from the components owning them.
#[derive(Debug, Clone, Copy)]
struct BlockLimits {
    max_rollup_data_per_block: u64,
    max_txs_per_account_per_block: u32,
}

/// A block being executed over a base state: the components' begin-block
/// hooks have run; transactions are applied one by one, each atomically;
/// [`BlockExecution::finish`] runs the end-block hooks.
pub struct BlockExecution<S: StateRead> {
    /// State changes so far.
    pub delta: StateDelta<S>,
    components: Components,
    ctx: BlockContext,
    limits: BlockLimits,
    batches: BTreeMap<RollupId, Vec<Vec<u8>>>,
    summary: BlockSummary,
    per_account: BTreeMap<Address, u32>,
    /// One result per CometBFT tx so far.
    pub results: Vec<ItemResult>,
}

/// A block whose end-block hooks have run: what FinalizeBlock commits and
/// answers.
pub struct FinishedBlock {
    /// State changes in key order.
    pub changes: crate::storage::StateChanges,
    /// Validator updates and block events from the end-block hooks.
    pub end: EndBlock,
    /// One result per CometBFT tx.
    pub results: Vec<ItemResult>,
    /// Each rollup's batch, in id order.
    pub batches: BTreeMap<RollupId, Vec<Vec<u8>>>,
    /// Rollup data bytes carried.
    pub rollup_bytes: u64,
}

impl FinishedBlock {
    /// The commitments of the block's batches.
    pub fn commitments(&self) -> BlockCommitments {
        BlockCommitments::compute(&self.batches)
    }
}

impl<S: StateRead> BlockExecution<S> {
    /// Starts a block over `base`: runs every component's `begin_block`.
    pub fn new(base: S, components: Components, ctx: BlockContext) -> Result<Self, StorageError> {
        let mut delta = StateDelta::new(base);
        components.begin_block(&mut delta, &ctx)?;
        let rollups: RollupParams = delta.component_params()?;
        let accounts: AccountParams = delta.component_params()?;
        Ok(BlockExecution {
            delta,
            components,
            ctx,
            limits: BlockLimits {
                max_rollup_data_per_block: rollups.max_rollup_data_per_block,
                max_txs_per_account_per_block: accounts.max_txs_per_account_per_block,
            },
            batches: BTreeMap::new(),
            summary: BlockSummary::default(),
            per_account: BTreeMap::new(),
            results: vec![ItemResult::Commitments],
        })
    }

    /// The block's context.
    pub fn context(&self) -> &BlockContext {
        &self.ctx
    }

    /// Applies `tx` atomically within the block's limits: all of it, or
    /// nothing and why.
    pub fn apply(&mut self, tx: &CheckedTx) -> Result<(), ApplyError> {
        let count = self.per_account.get(&tx.signer).copied().unwrap_or(0);
        if count >= self.limits.max_txs_per_account_per_block {
            return Err(ApplyError::Limit(format!(
                "{} already has {count} transactions in this block (limit {})",
                tx.signer, self.limits.max_txs_per_account_per_block
            )));
        }
        let data = tx.tx.transaction.rollup_data_bytes();
        if self.summary.rollup_bytes + data > self.limits.max_rollup_data_per_block {
            return Err(ApplyError::Limit(format!(
                "{} more bytes of rollup data would exceed the block's {} (already {})",
                data, self.limits.max_rollup_data_per_block, self.summary.rollup_bytes
            )));
        }
        self.delta.begin_tx();
        match execute(&mut self.delta, tx) {
            Ok((receipt, rollup_data)) => {
                self.delta.commit_tx();
                self.summary.rollup_bytes += data;
                self.summary.fees = self.summary.fees.saturating_add(receipt.fee);
                self.summary.executed += 1;
                self.per_account.insert(tx.signer, count + 1);
                for (rollup_id, item) in rollup_data {
                    self.batches.entry(rollup_id).or_default().push(item);
                }
                self.results.push(ItemResult::Tx {
                    hash: tx.hash,
                    outcome: Ok(receipt),
                });
                Ok(())
            }
            Err(e) => {
                self.delta.discard_tx();
                Err(e.into())
            }
        }
    }

    /// Ends the block: every component's `end_block` (fees credited to
    /// the pool, payouts, validator updates), then the changes in key
    /// order.
    pub fn finish(mut self) -> Result<FinishedBlock, StorageError> {
        let end = self
            .components
            .end_block(&mut self.delta, &self.ctx, &self.summary)?;
        Ok(FinishedBlock {
            changes: self.delta.into_changes(),
            end,
            results: self.results,
            batches: self.batches,
            rollup_bytes: self.summary.rollup_bytes,
        })
    }

    /// Rollup data bytes in the block so far.
    pub fn rollup_bytes(&self) -> u64 {
        self.summary.rollup_bytes
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

/// Transactions fetched ahead of time for coming heights (an auction's
/// winners, fetched as soon as the previous height commits). Cheap to
/// clone; clones share one store. PrepareProposal takes what is there for
/// its height and never waits for more.
#[derive(Clone, Default)]
pub struct Prefetched {
    by_height: Arc<Mutex<BTreeMap<u64, Vec<Bytes>>>>,
}

impl Prefetched {
    /// Leaves `items` for the proposal at `height`, replacing any earlier
    /// ones for it.
    pub fn put(&self, height: u64, items: Vec<Bytes>) {
        self.lock().insert(height, items);
    }

    /// Takes what was left for `height`, forgetting it and anything for
    /// earlier heights (never proposed by this node, or already past).
    pub fn take(&self, height: u64) -> Vec<Bytes> {
        let mut map = self.lock();
        let items = map.remove(&height).unwrap_or_default();
        *map = map.split_off(&height);
        items
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Vec<Bytes>>> {
        self.by_height
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What PrepareProposal works from besides state and the mempool.
#[derive(Debug, Clone)]
pub struct ProposalInputs {
    /// CometBFT's `max_tx_bytes` for the block.
    pub max_tx_bytes: usize,
    /// Stop adding mempool transactions at this instant: a proposer that
    /// overruns `timeout_propose` is skipped for the round (pitfall 14).
    pub deadline: Instant,
    /// Transactions fetched ahead of time (for example an auction's
    /// winners), placed first, in this order, if they execute. Only what
    /// has already arrived is here: the proposal path never waits on the
    /// network.
    pub leading: Vec<Bytes>,
}

/// PrepareProposal: the commitments item, then the `leading` transactions
/// that execute, then transactions from the mempool that execute,
/// first-seen across accounts and in nonce order within each, within
/// `max_tx_bytes` as CometBFT measures it, the block's rollup-data and
/// per-account caps, and the time budget. What is left out stays pending
/// in the mempool for a later block.
pub fn prepare<S: StateRead>(
    mut exec: BlockExecution<S>,
    pool: &Mempool,
    cache: &SignatureCache,
    chain_id: &str,
    inputs: ProposalInputs,
) -> Result<Vec<Bytes>, StorageError> {
    let mut budget = inputs
        .max_tx_bytes
        .saturating_sub(proto_size(COMMITMENTS_ITEM_LEN));
    let mut included: Vec<Bytes> = Vec::new();
    let mut taken: BTreeSet<Hash> = BTreeSet::new();
    for bytes in inputs.leading {
        let size = proto_size(bytes.len());
        if size > budget {
            continue;
        }
        let Ok(checked) = cache.check_stateless(&bytes, chain_id) else {
            continue;
        };
        if taken.contains(&checked.hash) {
            continue;
        }
        match exec.apply(&checked) {
            Ok(()) => {
                budget -= size;
                taken.insert(checked.hash);
                included.push(bytes);
            }
            Err(ApplyError::Storage(e)) => return Err(e),
            Err(_) => {}
        }
    }
    let runs: Vec<Vec<&crate::mempool::Entry>> =
        pool.pending_runs().filter(|r| !r.is_empty()).collect();
    // Heads of every account's run, earliest arrival first.
    let mut heads: BinaryHeap<Reverse<(u64, usize, usize)>> = runs
        .iter()
        .enumerate()
        .map(|(i, run)| Reverse((run[0].seq, i, 0)))
        .collect();
    let mut considered = 0usize;
    while let Some(Reverse((_, run, pos))) = heads.pop() {
        // The clock is read every few transactions: cheap, and the
        // outcome only decides how full this proposal is, never whether
        // anyone accepts it.
        considered += 1;
        if considered.is_multiple_of(64) && Instant::now() >= inputs.deadline {
            tracing::warn!(
                included = included.len(),
                "PrepareProposal time budget spent; proposing what is built"
            );
            break;
        }
        let entry = runs[run][pos];
        if taken.contains(&entry.checked.hash) {
            if let Some(next) = runs[run].get(pos + 1) {
                heads.push(Reverse((next.seq, run, pos + 1)));
            }
            continue;
        }
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
            Err(ApplyError::Storage(e)) => return Err(e),
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
    mut exec: BlockExecution<S>,
    cache: &SignatureCache,
    chain_id: &str,
    txs: &[Bytes],
) -> Result<BlockExecution<S>, ProposalError> {
    let first = txs
        .first()
        .ok_or_else(|| ProposalError::Commitments("empty block".into()))?;
    let claimed =
        BlockCommitments::decode(first).map_err(|e| ProposalError::Commitments(e.to_string()))?;
    let stateless = cache.check_all(&txs[1..], chain_id, verify_threads());
    for (index, checked) in stateless.into_iter().enumerate() {
        let index = index + 1;
        let checked = checked.map_err(|rejection| ProposalError::Tx { index, rejection })?;
        exec.apply(&checked).map_err(|e| match e {
            ApplyError::Storage(e) => ProposalError::Storage(e),
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
    mut exec: BlockExecution<S>,
    cache: &SignatureCache,
    chain_id: &str,
    txs: &[Bytes],
) -> Result<BlockExecution<S>, StorageError> {
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
                Err(ApplyError::Storage(e)) => return Err(e),
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
