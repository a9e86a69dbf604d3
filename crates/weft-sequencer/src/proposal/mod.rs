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
    inclusion::ListedCommit,
    Address, Amount, BlockCommitments, Hash, RollupId, SignedBid, TxCode,
};

use crate::{
    accounts::AccountParams,
    auction::rules::{self as bid_rules, BidCheckError, BidRejection},
    component::{BlockContext, BlockSummary, Components, EndBlock, ParamsRead},
    error::{ExecError, Rejection, StorageError},
    inclusion::rule::{self, Listed, ListedCommitError},
    mempool::{Entry, SignatureCache},
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
    /// Item 1 when inclusion lists are on: the previous height's vote
    /// extensions.
    ListedCommit,
    /// A builder's bid (items right after the commitments) and what became
    /// of it.
    Bid {
        /// The bid hash (of `borsh(SignedBid)`, without the item magic).
        hash: Hash,
        /// Settled, or refused (only possible in a block decided without
        /// our ProcessProposal's agreement).
        outcome: Result<BidReceipt, BidRejection>,
    },
    /// A transaction and what became of it.
    Tx {
        /// Its hash.
        hash: Hash,
        /// Executed, or refused (only possible in a block decided
        /// without our ProcessProposal's agreement).
        outcome: Result<Receipt, Rejection>,
    },
}

/// What an included bid did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BidReceipt {
    /// Who paid.
    pub builder: Address,
    /// What was paid into the reward pool.
    pub amount: Amount,
    /// The rollups whose batches the bid's bundles lead.
    pub rollups: Vec<RollupId>,
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
    /// What the block's listed commit owes, once verified.
    listed: Option<Listed>,
    /// Rollups led by the block's bids so far.
    bid_rollups: BTreeSet<RollupId>,
    /// Bids settled so far.
    bids: u32,
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
    /// What the block's listed commit owed (recorded in the tx index).
    pub listed: Option<Listed>,
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
            listed: None,
            bid_rollups: BTreeSet::new(),
            bids: 0,
        })
    }

    /// The block's context.
    pub fn context(&self) -> &BlockContext {
        &self.ctx
    }

    /// Applies `tx` atomically within the block's limits: all of it, or
    /// nothing and why.
    pub fn apply(&mut self, tx: &CheckedTx) -> Result<(), ApplyError> {
        let (count, data) = self.within_limits(tx)?;
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

    /// Applies a builder's bid atomically: the auction's rules, the block's
    /// bid count, conflicts with earlier bids and the rollup-data cap, then
    /// the payment; its bundles go into their batches. Bids must be applied
    /// before any transaction, so their bundles lead the batches.
    pub fn apply_bid(&mut self, chain_id: &str, bid: &SignedBid) -> Result<(), BidCheckError> {
        let params = bid_rules::check(&self.delta, chain_id, self.ctx.height, bid)?;
        if self.bids >= params.max_bids_per_block {
            return Err(BidRejection::TooMany(params.max_bids_per_block).into());
        }
        let rollups = bid.bid.rollups();
        if let Some(taken) = rollups.iter().find(|r| self.bid_rollups.contains(r)) {
            return Err(BidRejection::Conflict(*taken).into());
        }
        let data = bid.bid.data_bytes();
        if self.summary.rollup_bytes + data > self.limits.max_rollup_data_per_block {
            return Err(BidRejection::Limit(format!(
                "{} more bytes of rollup data would exceed the block's {} (already {})",
                data, self.limits.max_rollup_data_per_block, self.summary.rollup_bytes
            ))
            .into());
        }
        self.delta.begin_tx();
        if let Err(e) = bid_rules::settle(&mut self.delta, bid) {
            self.delta.discard_tx();
            return Err(e);
        }
        self.delta.commit_tx();
        self.place_bundles(bid);
        self.results.push(ItemResult::Bid {
            hash: bid.hash(),
            outcome: Ok(BidReceipt {
                builder: bid.bid.builder_address(),
                amount: bid.bid.amount,
                rollups: rollups.into_iter().collect(),
            }),
        });
        Ok(())
    }

    /// Puts a bid's bundles into their batches and counts them against
    /// the block's caps.
    fn place_bundles(&mut self, bid: &SignedBid) {
        self.bids += 1;
        self.summary.rollup_bytes += bid.bid.data_bytes();
        for bundle in &bid.bid.bundles {
            self.bid_rollups.insert(bundle.rollup_id);
            self.batches
                .entry(bundle.rollup_id)
                .or_default()
                .extend(bundle.payloads.iter().cloned());
        }
    }

    /// TEST ONLY (`--unsafe-test-bid`): places a bid with no check and no
    /// payment, so the other validators' refusal can be shown.
    pub fn place_unchecked_bid(&mut self, bid: &SignedBid) {
        self.place_bundles(bid);
        self.results.push(ItemResult::Bid {
            hash: bid.hash(),
            outcome: Ok(BidReceipt {
                builder: bid.bid.builder_address(),
                amount: 0,
                rollups: bid.bid.rollups().into_iter().collect(),
            }),
        });
    }

    /// Records a bid that could not be settled (FinalizeBlock only).
    pub fn record_bid_failure(&mut self, hash: Hash, rejection: BidRejection) {
        self.results.push(ItemResult::Bid {
            hash,
            outcome: Err(rejection),
        });
    }

    /// The block caps `tx` must fit: the signer's transactions in the
    /// block so far and `tx`'s rollup data bytes, or which cap it breaks.
    fn within_limits(&self, tx: &CheckedTx) -> Result<(u32, u64), ApplyError> {
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
        Ok((count, data))
    }

    /// Whether `tx` would apply on top of the block so far, within its
    /// limits, without applying it (the inclusion rule's question).
    pub fn probe(&mut self, tx: &CheckedTx) -> Result<(), ApplyError> {
        self.within_limits(tx)?;
        self.delta.begin_tx();
        let outcome = execute(&mut self.delta, tx);
        self.delta.discard_tx();
        outcome.map(|_| ()).map_err(ApplyError::from)
    }

    /// Records that the block carries a listed-commit item (its result).
    pub fn record_listed_commit(&mut self) {
        self.results.push(ItemResult::ListedCommit);
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
            listed: self.listed,
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

/// Bids fetched ahead of time for coming heights (an auction's winners,
/// fetched from the relays as soon as the previous height commits). Cheap
/// to clone; clones share one store. PrepareProposal takes what is there
/// for its height and never waits for more.
#[derive(Clone, Default)]
pub struct Prefetched {
    by_height: Arc<Mutex<BTreeMap<u64, Vec<SignedBid>>>>,
}

impl Prefetched {
    /// Leaves `bids` for the proposal at `height`, replacing any earlier
    /// ones for it and forgetting every lower height (the fetcher only
    /// moves forward, so the store never holds more than a few heights).
    pub fn put(&self, height: u64, bids: Vec<SignedBid>) {
        let mut map = self.lock();
        *map = map.split_off(&height);
        map.insert(height, bids);
    }

    /// What is there for `height` now (kept: a later round of the same
    /// height proposes from the freshest fetch too).
    pub fn current(&self, height: u64) -> Vec<SignedBid> {
        self.lock().get(&height).cloned().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Vec<SignedBid>>> {
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
    /// Builders' bids fetched ahead of time from the relays, best first:
    /// each is placed, right after the commitments, if it passes the
    /// auction's rules and does not conflict with one placed before it.
    /// Only what has already arrived is here: the proposal path never
    /// waits on the network.
    pub bids: Vec<SignedBid>,
    /// The previous height's listed commit (item bytes and what it lists),
    /// when inclusion lists are on: carried as item 1, and its
    /// transactions appended after this node's own choice.
    pub listed: Option<(Bytes, Listed)>,
    /// The bytes every proposer of this height is sure to have (see
    /// [`crate::inclusion::state::ConsensusLimits::guaranteed_tx_bytes`]).
    pub guaranteed_tx_bytes: usize,
    /// TEST ONLY (`--unsafe-test-censor`): never propose this account's
    /// transactions, to show that the others refuse such proposals.
    pub censor: Option<Address>,
    /// TEST ONLY (`--unsafe-test-bid`): a bid placed first without any
    /// check or payment, to show that the others refuse such proposals.
    pub unchecked_bid: Option<SignedBid>,
}

/// PrepareProposal: the commitments item, then the bids that pass the
/// auction's rules (their bundles lead their rollups' batches), then the
/// listed commit, then transactions from the mempool's pending runs
/// (`runs`, see [`crate::mempool::Mempool::proposal_runs`]) that execute,
/// first-seen across accounts and in nonce order within each, within
/// `max_tx_bytes` as CometBFT measures it, the block's rollup-data and
/// per-account caps, and the time budget. What is left out stays pending
/// in the mempool for a later block.
pub fn prepare<S: StateRead>(
    mut exec: BlockExecution<S>,
    runs: Vec<Vec<Entry>>,
    cache: &SignatureCache,
    chain_id: &str,
    inputs: ProposalInputs,
) -> Result<Vec<Bytes>, StorageError> {
    let mut budget = inputs
        .max_tx_bytes
        .saturating_sub(proto_size(COMMITMENTS_ITEM_LEN));
    let mut used = proto_size(COMMITMENTS_ITEM_LEN);
    let mut included: Vec<Bytes> = Vec::new();
    let mut taken: BTreeSet<Hash> = BTreeSet::new();
    let censored = |c: &CheckedTx| inputs.censor.is_some_and(|a| a == c.signer);
    // The listed commit's room is set aside first: bids buy order, never
    // the room of what validators listed.
    let listed_item = match inputs.listed {
        Some((item, listed)) if proto_size(item.len()) <= budget => {
            budget -= proto_size(item.len());
            used += proto_size(item.len());
            Some((item, listed))
        }
        Some(_) => {
            tracing::error!("the listed commit does not fit the block; proposing without it");
            None
        }
        None => None,
    };
    if let Some(bid) = &inputs.unchecked_bid {
        let item = Bytes::from(bid.encode_item());
        budget = budget.saturating_sub(proto_size(item.len()));
        used += proto_size(item.len());
        exec.place_unchecked_bid(bid);
        included.push(item);
    }
    for bid in &inputs.bids {
        let item = Bytes::from(bid.encode_item());
        let size = proto_size(item.len());
        if size > budget {
            continue;
        }
        match exec.apply_bid(chain_id, bid) {
            Ok(()) => {
                budget -= size;
                used += size;
                included.push(item);
            }
            Err(BidCheckError::Storage(e)) => return Err(e),
            Err(BidCheckError::Rejected(why)) => {
                metrics::counter!("weft_bids_skipped_total", "reason" => why.code()).increment(1);
                tracing::debug!(bid = %bid.hash(), error = %why, "bid left out of the proposal");
            }
        }
    }
    // Room kept for the listed transactions while this node makes its own
    // choice, so what validators listed is not squeezed out by it.
    let mut reserve = 0usize;
    let listed = match listed_item {
        Some((item, listed)) => {
            exec.record_listed_commit();
            included.push(item);
            reserve = listed
                .txs
                .iter()
                .map(|t| proto_size(t.bytes.len()))
                .sum::<usize>()
                .min(budget);
            budget -= reserve;
            Some(listed)
        }
        None => None,
    };
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
        let entry = &runs[run][pos];
        if censored(&entry.checked) {
            continue;
        }
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
                used += size;
                taken.insert(entry.checked.hash);
                included.push(entry.bytes.clone());
                if let Some(next) = runs[run].get(pos + 1) {
                    heads.push(Reverse((next.seq, run, pos + 1)));
                }
            }
            Err(ApplyError::Storage(e)) => return Err(e),
            Err(_) => {} // limit reached or no longer executable: the run stops
        }
    }
    if let Some(listed) = listed {
        budget += reserve;
        let end = budget_end(used, budget);
        append_listed(
            &mut exec,
            cache,
            chain_id,
            &listed,
            &mut taken,
            &mut included,
            &mut used,
            end,
            inputs.censor.as_ref(),
        )?;
    }
    let mut block = Vec::with_capacity(included.len() + 1);
    block.push(Bytes::from(exec.commitments().encode()));
    block.extend(included);
    Ok(block)
}

/// The byte total the block may reach: what is used plus what is left.
fn budget_end(used: usize, budget: usize) -> usize {
    used.saturating_add(budget)
}

/// Appends the listed transactions the block does not yet carry, in listed
/// order, over and over until a pass adds none: one may make another
/// executable (a listed nonce after a listed nonce), and ProcessProposal
/// asks of every missing one whether it would apply at the end.
#[allow(clippy::too_many_arguments)]
fn append_listed<S: StateRead>(
    exec: &mut BlockExecution<S>,
    cache: &SignatureCache,
    chain_id: &str,
    listed: &Listed,
    taken: &mut BTreeSet<Hash>,
    included: &mut Vec<Bytes>,
    used: &mut usize,
    end: usize,
    censor: Option<&Address>,
) -> Result<(), StorageError> {
    loop {
        let mut added = false;
        for tx in &listed.txs {
            if taken.contains(&tx.hash) {
                continue;
            }
            let size = proto_size(tx.bytes.len());
            if *used + size > end {
                continue;
            }
            let Ok(checked) = cache.check_stateless(&tx.bytes, chain_id) else {
                continue;
            };
            if censor.is_some_and(|a| *a == checked.signer) {
                continue;
            }
            match exec.apply(&checked) {
                Ok(()) => {
                    *used += size;
                    taken.insert(tx.hash);
                    included.push(tx.bytes.clone());
                    added = true;
                }
                Err(ApplyError::Storage(e)) => return Err(e),
                Err(_) => {}
            }
        }
        if !added {
            return Ok(());
        }
    }
}

/// How a block met its listed transactions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InclusionOutcome {
    /// Listed and carried.
    pub enforced: usize,
    /// Left out because they would not execute at the end of the block
    /// (bad bytes, used nonce, unaffordable).
    pub excused_invalid: usize,
    /// Left out because a block cap (rollup data, per-account) is reached.
    pub excused_cap: usize,
    /// Left out because the block is full.
    pub excused_full: usize,
}

/// The inclusion rule: every listed transaction is in the block, or would
/// not apply at its end (invalid, or over a per-block cap), or would not
/// fit within `guaranteed` bytes. Each missing one is asked on its own
/// against the same final state, so the answer does not depend on order.
/// `Err(hash)` names a transaction left out without excuse.
pub fn check_listed<S: StateRead>(
    exec: &mut BlockExecution<S>,
    cache: &SignatureCache,
    chain_id: &str,
    listed: &Listed,
    in_block: &BTreeSet<Hash>,
    used: usize,
    guaranteed: usize,
) -> Result<Result<InclusionOutcome, Hash>, StorageError> {
    let mut outcome = InclusionOutcome::default();
    for tx in &listed.txs {
        if in_block.contains(&tx.hash) {
            outcome.enforced += 1;
            continue;
        }
        if used + proto_size(tx.bytes.len()) > guaranteed {
            outcome.excused_full += 1;
            continue;
        }
        let Ok(checked) = cache.check_stateless(&tx.bytes, chain_id) else {
            outcome.excused_invalid += 1;
            continue;
        };
        match exec.probe(&checked) {
            Ok(()) => return Ok(Err(tx.hash)),
            Err(ApplyError::Storage(e)) => return Err(e),
            Err(ApplyError::Limit(_)) => outcome.excused_cap += 1,
            Err(ApplyError::Rejected(_)) => outcome.excused_invalid += 1,
        }
    }
    Ok(Ok(outcome))
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
    /// A bid item breaks the auction's rules.
    #[error("bid item {index} is refused: {rejection}")]
    Bid {
        /// Position in the block.
        index: usize,
        /// Why.
        rejection: BidRejection,
    },
    /// The commitments do not match the block's batches.
    #[error("commitments do not match the block's batches")]
    CommitmentsMismatch,
    /// The listed commit is missing, unexpected or does not verify.
    #[error(transparent)]
    ListedCommit(#[from] ListedCommitError),
    /// A listed transaction is left out without excuse: censorship.
    #[error("listed transaction {0} is left out though it would execute and fit")]
    Censored(Hash),
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
    let bid_items = txs[1..]
        .iter()
        .take_while(|t| SignedBid::is_item(t))
        .count();
    for (i, item) in txs[1..=bid_items].iter().enumerate() {
        let index = i + 1;
        let bid = SignedBid::decode_item(item).map_err(|e| ProposalError::Bid {
            index,
            rejection: BidRejection::Malformed(e.to_string()),
        })?;
        exec.apply_bid(chain_id, &bid).map_err(|e| match e {
            BidCheckError::Storage(e) => ProposalError::Storage(e),
            BidCheckError::Rejected(rejection) => ProposalError::Bid { index, rejection },
        })?;
    }
    let listed_at = 1 + bid_items;
    let required = crate::inclusion::required(&exec.delta, exec.ctx.height)?;
    let item = txs.get(listed_at).filter(|t| ListedCommit::is_item(t));
    let listed = match (&required, item) {
        (Some(params), Some(item)) => {
            let item = ListedCommit::decode(item)
                .map_err(|e| ListedCommitError::Malformed(e.to_string()))?;
            let ctx = exec.ctx.clone();
            let listed = rule::verify(&exec.delta, chain_id, &ctx, params, &item)??;
            exec.record_listed_commit();
            exec.listed = Some(listed.clone());
            Some(listed)
        }
        (Some(_), None) => {
            return Err(ListedCommitError::Missing(exec.ctx.height.saturating_sub(1)).into())
        }
        (None, Some(_)) => return Err(ListedCommitError::Unexpected.into()),
        (None, None) => None,
    };
    let first_tx = listed_at + usize::from(listed.is_some());
    let stateless = cache.check_all(&txs[first_tx..], chain_id, verify_threads());
    let mut in_block = BTreeSet::new();
    for (index, checked) in stateless.into_iter().enumerate() {
        let index = index + first_tx;
        let checked = checked.map_err(|rejection| ProposalError::Tx { index, rejection })?;
        exec.apply(&checked).map_err(|e| match e {
            ApplyError::Storage(e) => ProposalError::Storage(e),
            ApplyError::Rejected(rejection) => ProposalError::Tx { index, rejection },
            ApplyError::Limit(why) => ProposalError::Limit { index, why },
        })?;
        in_block.insert(checked.hash);
    }
    if exec.commitments() != claimed {
        return Err(ProposalError::CommitmentsMismatch);
    }
    if let Some(listed) = listed {
        let used = txs.iter().map(|t| proto_size(t.len())).sum();
        let guaranteed = guaranteed_tx_bytes(&exec.delta, &exec.ctx)?;
        let outcome = check_listed(
            &mut exec, cache, chain_id, &listed, &in_block, used, guaranteed,
        )?
        .map_err(ProposalError::Censored)?;
        metrics::counter!("weft_inclusion_listed_total", "outcome" => "enforced")
            .increment(outcome.enforced as u64);
        metrics::counter!("weft_inclusion_listed_total", "outcome" => "excused_invalid")
            .increment(outcome.excused_invalid as u64);
        metrics::counter!("weft_inclusion_listed_total", "outcome" => "excused_cap")
            .increment(outcome.excused_cap as u64);
        metrics::counter!("weft_inclusion_listed_total", "outcome" => "excused_full")
            .increment(outcome.excused_full as u64);
    }
    Ok(exec)
}

/// The transaction bytes any proposer of the block in `ctx` is sure to
/// get from CometBFT: the consensus limits less the largest last commit
/// the validator set can produce (its size is bounded by the previous
/// height's set, the staking set and `max_validators`).
pub fn guaranteed_tx_bytes<S: StateRead + ?Sized>(
    state: &S,
    ctx: &BlockContext,
) -> Result<usize, StorageError> {
    use crate::{inclusion::state::InclusionRead, staking::state::StakingRead};
    let limits = state.consensus_limits()?;
    let mut validators = ctx.last_commit.votes.len() as u64;
    if let Some(p) = state.optional_component_params::<weft_core::StakingParams>()? {
        validators = validators
            .max(u64::from(p.max_validators))
            .max(state.active_set()?.len() as u64);
    }
    Ok(usize::try_from(limits.guaranteed_tx_bytes(validators)).unwrap_or(usize::MAX))
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
    let mut items = txs.get(1..).unwrap_or_default();
    while let Some(item) = items.first().filter(|t| SignedBid::is_item(t)) {
        // A decided bid that does not settle is recorded, never fatal.
        match SignedBid::decode_item(item) {
            Ok(bid) => match exec.apply_bid(chain_id, &bid) {
                Ok(()) => {}
                Err(BidCheckError::Storage(e)) => return Err(e),
                Err(BidCheckError::Rejected(why)) => exec.record_bid_failure(bid.hash(), why),
            },
            Err(e) => exec.record_bid_failure(
                weft_core::sha256(item),
                BidRejection::Malformed(e.to_string()),
            ),
        }
        items = &items[1..];
    }
    if let Some(item) = items.first().filter(|t| ListedCommit::is_item(t)) {
        // Checked in ProcessProposal; a decided block is executed as is,
        // and what it listed is kept for the tx index if it verifies.
        exec.record_listed_commit();
        if let (Some(params), Ok(item)) = (
            crate::inclusion::required(&exec.delta, exec.ctx.height)?,
            ListedCommit::decode(item),
        ) {
            let ctx = exec.ctx.clone();
            exec.listed = rule::verify(&exec.delta, chain_id, &ctx, &params, &item)?.ok();
        }
        items = &items[1..];
    }
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
