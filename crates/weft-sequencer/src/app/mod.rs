//! The ABCI application: receives CometBFT's requests and dispatches each
//! to the component that owns it. No protocol rules live here.

mod crash;
mod query;

pub use crash::{CrashPoint, UnsafeTestCrash};

use std::{
    future::{ready, Ready},
    sync::{Arc, Mutex, OnceLock},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use tendermint::{
    abci::{
        response::{self as resp, ProcessProposal},
        types::ExecTxResult,
        Code,
    },
    v0_38::abci::{request, Request, Response},
    AppHash,
};
use tower::Service;
use weft_core::{GenesisAppState, Hash, TxCode};

use crate::{
    component::{BlockContext, Components, FinalizedBlock, Genesis, ParamsRead},
    mempool::{self, Admission, CheckTxService, Mempool, MempoolConfig, SignatureCache},
    proposal::{self, BlockExecution, ItemResult, Prefetched, ProposalInputs},
    storage::{
        delta::EmptyState, Snapshot, StagedCommit, StateDelta, StateRead, Storage, StorageError,
    },
};

/// How many verified signatures are remembered.
const SIGNATURE_CACHE: usize = 200_000;

/// Settings of the app that are not consensus parameters (each node may
/// choose its own).
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Mempool bounds and timings.
    pub mempool: MempoolConfig,
    /// How many heights of tx locations (`included` statuses) are kept.
    pub tx_index_retention_blocks: u64,
    /// Blocks CometBFT keeps (0: all): Commit answers a `retain_height`
    /// this far back, and CometBFT prunes its block store below it.
    pub cometbft_retain_blocks: u64,
    /// Longest PrepareProposal spends adding mempool transactions; kept
    /// well under CometBFT's `timeout_propose`, past which the proposer
    /// is skipped for the round.
    pub prepare_proposal_budget: Duration,
    /// TEST ONLY: never propose this account's transactions (the
    /// censorship tests run one validator with it to show that inclusion
    /// lists make the others refuse its proposals).
    pub unsafe_test_censor: Option<weft_core::Address>,
    /// TEST ONLY: put a bid that breaks the auction's rules into every
    /// proposal (the bids tests show the others refuse it).
    pub unsafe_test_bid: Option<UnsafeTestBid>,
    /// TEST ONLY: abort the process at a point of a block's commit (the
    /// crash-point fault tests).
    pub unsafe_test_crash: Option<UnsafeTestCrash>,
}

/// Which broken bid `--unsafe-test-bid` proposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnsafeTestBid {
    /// Signed by a key other than the builder's.
    Forged,
    /// Correctly signed by a builder with no funds.
    Unfunded,
}

impl UnsafeTestBid {
    /// The broken bid for the block at `height` over `parent`.
    fn bid(self, chain_id: &str, height: u64, parent: Hash) -> weft_core::SignedBid {
        let builder = weft_core::SigningKey::from_seed("unsafe-test/builder");
        let bid = weft_core::Bid {
            chain_id: chain_id.to_string(),
            target_height: height,
            parent_hash: parent,
            bundles: vec![weft_core::Bundle {
                rollup_id: weft_core::RollupId::from_name("unsafe-test"),
                payloads: vec![format!("unsafe test bid at {height}").into_bytes()],
            }],
            amount: 1_000_000_000_000,
            builder: builder.public_key(),
        };
        match self {
            UnsafeTestBid::Forged => {
                bid.sign(&weft_core::SigningKey::from_seed("unsafe-test/thief"))
            }
            UnsafeTestBid::Unfunded => bid.sign(&builder),
        }
    }
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            mempool: MempoolConfig::default(),
            tx_index_retention_blocks: 100_000,
            cometbft_retain_blocks: 0,
            prepare_proposal_budget: Duration::from_millis(500),
            unsafe_test_censor: None,
            unsafe_test_bid: None,
            unsafe_test_crash: None,
        }
    }
}

/// The lowest height CometBFT must keep after committing `height` when it
/// keeps `keep` blocks (0: everything, answered as retain height 0).
/// Local only: no other node, and no app hash, depends on it.
pub fn retain_height(height: u64, keep: u64) -> u64 {
    if keep == 0 || height <= keep {
        0
    } else {
        height - keep + 1
    }
}

/// Weft's components in hook order: chain facts, accounts, fees, rollups,
/// staking, governance and the transaction index (keeping
/// `tx_index_retention_blocks` heights). Staking runs after accounts (its
/// genesis self-bonds debit funded accounts) and after fees; governance
/// after staking (a validator admitted at an epoch boundary waits for the
/// next epoch). The one list a new component is added
/// to.
pub fn standard_components(tx_index_retention_blocks: u64) -> Components {
    Components::new(vec![
        Arc::new(crate::chain::Chain),
        Arc::new(crate::accounts::Accounts),
        Arc::new(crate::fees::Fees),
        Arc::new(crate::rollups::Rollups),
        Arc::new(crate::staking::Staking),
        Arc::new(crate::governance::Governance),
        // After staking: it records the keys of the validators staking adds.
        Arc::new(crate::inclusion::Inclusion),
        Arc::new(crate::auction::Auction),
        Arc::new(crate::mempool::TxIndex {
            retention_blocks: tx_index_retention_blocks,
        }),
    ])
}

/// The Weft ABCI application.
pub struct App {
    storage: Storage,
    config: AppConfig,
    /// The parts of the state machine, in hook order.
    components: Components,
    /// Transactions fetched ahead for the next proposals.
    prefetched: Prefetched,
    /// Set at InitChain (or read from the store); shared with CheckTx.
    chain_id: Arc<OnceLock<String>>,
    signatures: SignatureCache,
    mempool: Arc<Mutex<Mempool>>,
    admission: Admission,
    /// Hashes of the transactions executed in the block awaiting Commit.
    executed: Vec<Hash>,
    /// The last proposal we accepted, by block hash, reused by FinalizeBlock.
    processed: Option<(Hash, BlockExecution<Snapshot>)>,
    /// The executed height, staged in the store's write transaction,
    /// awaiting Commit.
    pending: Option<StagedCommit>,
    /// The last committed height, published after each Commit (API streams
    /// and the signed-header follower wait on it instead of polling).
    commits: tokio::sync::watch::Sender<u64>,
}

/// The consensus limits the inclusion rule needs, from InitChain.
fn consensus_limits(p: &tendermint::consensus::Params) -> crate::inclusion::state::ConsensusLimits {
    // CometBFT's hard cap on a block, which `max_bytes = -1` means.
    const MAX_BLOCK_SIZE_BYTES: u64 = 104_857_600;
    let block_max_bytes = match p.block.max_bytes {
        0 => MAX_BLOCK_SIZE_BYTES,
        n => n.min(MAX_BLOCK_SIZE_BYTES),
    };
    crate::inclusion::state::ConsensusLimits {
        block_max_bytes,
        evidence_max_bytes: u64::try_from(p.evidence.max_bytes).unwrap_or(0),
        vote_extensions_enable_height: p
            .abci
            .vote_extensions_enable_height
            .map_or(0, |h| h.value()),
    }
}

/// A failure that leaves no safe way forward: the process must stop rather
/// than diverge from the network. CometBFT exits with it and both restart.
fn fatal(what: &str, err: impl std::fmt::Display) -> ! {
    tracing::error!(error = %err, "fatal: {what}; stopping so the node cannot diverge");
    eprintln!("weft-sequencer: fatal: {what}: {err}");
    std::process::exit(1)
}

/// [`fatal`] for a storage failure, naming a full disk as such (the
/// store's directory, the bytes left) rather than as a bare I/O error.
fn fatal_storage(what: &str, storage: &Storage, err: StorageError) -> ! {
    match storage.out_of_space(&err) {
        Some(free) => fatal(
            what,
            format!(
                "the disk holding the store {} is full ({free} bytes free): {err}; \
                 free space there and restart the node (it replays the blocks it missed)",
                storage.dir().display()
            ),
        ),
        None => fatal(what, err),
    }
}

impl App {
    /// An app over `storage` with Weft's components.
    pub fn new(storage: Storage, config: AppConfig) -> Result<Self, StorageError> {
        let components = standard_components(config.tx_index_retention_blocks);
        Self::with_components(storage, config, components)
    }

    /// An app over `storage` running exactly `components` (tests plug in
    /// components of their own).
    pub fn with_components(
        storage: Storage,
        config: AppConfig,
        components: Components,
    ) -> Result<Self, StorageError> {
        storage.create_tables(|txn| components.create_tables(txn))?;
        let chain_id = Arc::new(OnceLock::new());
        let commits = tokio::sync::watch::Sender::new(storage.committed()?.map_or(0, |c| c.height));
        if let Some(c) = storage.committed()? {
            let _ = chain_id.set(c.chain_id);
        }
        let mempool = Arc::new(Mutex::new(Mempool::new(config.mempool.clone())));
        let signatures = SignatureCache::new(SIGNATURE_CACHE);
        let admission = Admission::new(
            storage.clone(),
            mempool.clone(),
            signatures.clone(),
            chain_id.clone(),
        );
        Ok(App {
            storage,
            components,
            prefetched: Prefetched::default(),
            mempool,
            admission,
            config,
            chain_id,
            executed: Vec::new(),
            signatures,
            processed: None,
            pending: None,
            commits,
        })
    }

    fn chain_id(&self) -> &str {
        self.chain_id.get().map_or("", String::as_str)
    }

    /// The mempool connection's service: CheckTx outside the consensus
    /// worker, verifying signatures on up to `threads` threads.
    pub fn check_tx_service(&self, threads: usize) -> CheckTxService {
        CheckTxService::new(self.admission.clone(), threads)
    }

    /// CheckTx's admission, for the API's batch submissions.
    pub fn admission(&self) -> crate::mempool::Admission {
        self.admission.clone()
    }

    /// Handles one request. Never panics on request content; storage
    /// failure on the consensus path stops the process.
    pub fn handle(&mut self, req: Request) -> Response {
        match req {
            Request::Echo(e) => Response::Echo(resp::Echo { message: e.message }),
            Request::Flush => Response::Flush,
            Request::Info(_) => Response::Info(self.info()),
            Request::InitChain(r) => Response::InitChain(self.init_chain(r)),
            Request::Query(r) => Response::Query(query::handle(&self.storage, &self.mempool, r)),
            Request::CheckTx(r) => Response::CheckTx(self.admission.check_tx(&r)),
            Request::PrepareProposal(r) => Response::PrepareProposal(self.prepare_proposal(r)),
            Request::ProcessProposal(r) => Response::ProcessProposal(self.process_proposal(r)),
            Request::FinalizeBlock(r) => Response::FinalizeBlock(self.finalize_block(r)),
            Request::Commit => Response::Commit(self.commit()),
            Request::ExtendVote(r) => Response::ExtendVote(self.extend_vote(r)),
            Request::VerifyVoteExtension(r) => {
                Response::VerifyVoteExtension(self.verify_vote_extension(r))
            }
            Request::ListSnapshots => Response::ListSnapshots(Default::default()),
            Request::OfferSnapshot(_) => Response::OfferSnapshot(resp::OfferSnapshot::Reject),
            Request::LoadSnapshotChunk(_) => Response::LoadSnapshotChunk(Default::default()),
            Request::ApplySnapshotChunk(_) => {
                Response::ApplySnapshotChunk(resp::ApplySnapshotChunk {
                    result: resp::ApplySnapshotChunkResult::Abort,
                    refetch_chunks: vec![],
                    reject_senders: vec![],
                })
            }
        }
    }

    fn info(&mut self) -> resp::Info {
        let committed = self
            .storage
            .committed()
            .unwrap_or_else(|e| fatal("reading the committed height", e));
        let (height, app_hash) = match committed {
            // Height 0 = only genesis written: CometBFT will call InitChain.
            Some(c) if c.height > 0 => (c.height, app_hash(&c.app_hash)),
            _ => (0, AppHash::default()),
        };
        tracing::info!(height, "info: reporting last committed height");
        resp::Info {
            data: "weft-sequencer".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            app_version: 1,
            last_block_height: height.try_into().unwrap_or_default(),
            last_block_app_hash: app_hash,
        }
    }

    fn init_chain(&mut self, req: request::InitChain) -> resp::InitChain {
        if req.initial_height.value() != 1 {
            fatal(
                "genesis",
                format!(
                    "initial_height must be 1 (JMT versions are heights), got {}",
                    req.initial_height
                ),
            );
        }
        let genesis = GenesisAppState::from_json(&req.app_state_bytes)
            .unwrap_or_else(|e| fatal("genesis", e));
        if let Some(c) = self
            .storage
            .committed()
            .unwrap_or_else(|e| fatal("reading storage", e))
        {
            // A crash between InitChain and the first Commit: genesis is
            // already written and identical; report it again, with the
            // validators read back from that state (the same answer).
            if c.height == 0 && c.chain_id == req.chain_id {
                let _ = self.chain_id.set(c.chain_id);
                let snapshot = self
                    .storage
                    .snapshot()
                    .unwrap_or_else(|e| fatal("reading genesis", e));
                let validators = self.genesis_validators(&snapshot, &req.validators);
                return resp::InitChain {
                    consensus_params: None,
                    validators,
                    app_hash: app_hash(&c.app_hash),
                };
            }
            fatal(
                "genesis",
                format!(
                    "store already holds chain `{}` at height {}",
                    c.chain_id, c.height
                ),
            );
        }
        let mut state = StateDelta::new(EmptyState);
        self.components
            .init_chain(
                &mut state,
                &Genesis {
                    chain_id: &req.chain_id,
                    app_state: &genesis,
                },
            )
            .unwrap_or_else(|e| fatal("writing genesis", e));
        let validators = self.genesis_validators(&state, &req.validators);
        let keys: Vec<[u8; 32]> = if validators.is_empty() {
            &req.validators
        } else {
            &validators
        }
        .iter()
        .filter_map(|u| u.pub_key.ed25519())
        .filter_map(|k| <[u8; 32]>::try_from(k.as_bytes()).ok())
        .collect();
        crate::inclusion::record_genesis(
            &mut state,
            consensus_limits(&req.consensus_params),
            &keys,
        )
        .unwrap_or_else(|e| fatal("writing genesis", e));
        let pending = self
            .storage
            .prepare_commit(0, state.into_changes(), vec![])
            .unwrap_or_else(|e| fatal("writing genesis", e));
        let hash = pending.app_hash;
        self.storage
            .commit(&req.chain_id, pending)
            .unwrap_or_else(|e| fatal("writing genesis", e));
        let _ = self.chain_id.set(req.chain_id);
        tracing::info!(chain_id = %self.chain_id(), app_hash = %hash, accounts = genesis.accounts.len(), "genesis written");
        resp::InitChain {
            consensus_params: None,
            validators,
            app_hash: app_hash(&hash),
        }
    }

    /// The validators InitChain answers with: the set a component (staking)
    /// computed at genesis, read from `state`, or none (CometBFT then keeps
    /// genesis.json's). A non-empty answer replaces genesis.json's set, and
    /// it is the set later validator updates are diffs against, so they
    /// can never remove a key CometBFT does not know. If genesis.json
    /// lists a different set, a warning names the differences; the app's
    /// answer wins (CometBFT's rule), so the chain does not stop.
    fn genesis_validators(
        &self,
        state: &dyn StateRead,
        listed: &[tendermint::validator::Update],
    ) -> Vec<tendermint::validator::Update> {
        let set = self
            .components
            .genesis_validators(state)
            .unwrap_or_else(|e| fatal("genesis validators", e));
        let validators = set
            .iter()
            .map(|(key, power)| validator_update(key, *power))
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_else(|e| fatal("genesis validators", e));
        if validators.is_empty() {
            return validators;
        }
        let differences = validator_set_differences(listed, &validators);
        if listed.is_empty() {
            tracing::info!(
                validators = validators.len(),
                "InitChain: returning the staking genesis set (genesis.json lists none)"
            );
        } else if !differences.is_empty() {
            tracing::warn!(
                differences = %differences.join("; "),
                "InitChain: genesis.json's validators differ from the staking genesis set; \
                 CometBFT will use the staking set this app returns"
            );
        } else {
            tracing::info!(
                validators = validators.len(),
                "InitChain: genesis.json's validators match the staking genesis set"
            );
        }
        validators
    }

    /// A block's execution over the latest committed state, its
    /// components' begin-block hooks run.
    fn begin(&self, what: &str, ctx: BlockContext) -> BlockExecution<Snapshot> {
        let snapshot = self.storage.snapshot().unwrap_or_else(|e| fatal(what, e));
        BlockExecution::new(snapshot, self.components.clone(), ctx)
            .unwrap_or_else(|e| fatal(what, e))
    }

    fn prepare_proposal(&mut self, req: request::PrepareProposal) -> resp::PrepareProposal {
        let started = Instant::now();
        let ctx = BlockContext::of_prepare(&req);
        let exec = self.begin("PrepareProposal", ctx.clone());
        let max_tx_bytes = usize::try_from(req.max_tx_bytes).unwrap_or(0);
        let listed = self
            .listed_commit(&exec.delta, &ctx, &req, max_tx_bytes)
            .unwrap_or_else(|e| fatal("PrepareProposal", e));
        let guaranteed_tx_bytes = proposal::guaranteed_tx_bytes(&exec.delta, &ctx)
            .unwrap_or_else(|e| fatal("PrepareProposal", e));
        let unchecked_bid = self.config.unsafe_test_bid.map(|broken| {
            let parent = crate::auction::parent_hash(&exec.delta)
                .unwrap_or_else(|e| fatal("PrepareProposal", e))
                .unwrap_or_default();
            broken.bid(self.chain_id(), ctx.height, parent)
        });
        let inputs = ProposalInputs {
            max_tx_bytes,
            deadline: started + self.config.prepare_proposal_budget,
            // Only what has already arrived: never a wait on the network.
            bids: self.prefetched.current(req.height.value()),
            listed,
            guaranteed_tx_bytes,
            censor: self.config.unsafe_test_censor,
            unchecked_bid,
        };
        // The pool's lock is held only to copy the candidates out.
        let (runs, held, parked) = {
            let pool = mempool::lock(&self.mempool);
            (pool.proposal_runs(), pool.len(), pool.parked_len())
        };
        let txs = proposal::prepare(exec, runs, &self.signatures, self.chain_id(), inputs)
            .unwrap_or_else(|e| fatal("PrepareProposal", e));
        metrics::histogram!("weft_prepare_proposal_seconds")
            .record(started.elapsed().as_secs_f64());
        tracing::debug!(
            height = %req.height,
            held,
            parked,
            offered_by_cometbft = req.txs.len(),
            included = txs.len() - 1,
            "proposal prepared"
        );
        resp::PrepareProposal { txs }
    }

    /// The listed commit this proposal must carry, if inclusion lists are
    /// on: built from the extensions CometBFT gathered for the previous
    /// height (at most a quarter of the block).
    fn listed_commit(
        &self,
        state: &dyn StateRead,
        ctx: &BlockContext,
        req: &request::PrepareProposal,
        max_tx_bytes: usize,
    ) -> Result<Option<(Bytes, crate::inclusion::rule::Listed)>, StorageError> {
        let Some(params) = crate::inclusion::required(state, ctx.height)? else {
            return Ok(None);
        };
        let Some(local) = &req.local_last_commit else {
            tracing::error!(
                height = ctx.height,
                "inclusion lists are on but CometBFT sent no extended commit"
            );
            return Ok(None);
        };
        let built = crate::inclusion::rule::build(
            state,
            self.chain_id(),
            ctx,
            &params,
            local,
            max_tx_bytes / 4,
        )?;
        if built.is_none() {
            tracing::error!(
                height = ctx.height,
                "the verified vote extensions do not reach two-thirds of the power"
            );
        }
        Ok(built.map(|(item, listed)| (Bytes::from(item.encode()), listed)))
    }

    /// ExtendVote: this validator's inclusion list for the next block.
    /// Reads only the mempool and committed state; never the network.
    fn extend_vote(&mut self, req: request::ExtendVote) -> resp::ExtendVote {
        let snapshot = self
            .storage
            .snapshot()
            .unwrap_or_else(|e| fatal("ExtendVote", e));
        let height = req.height.value();
        let params = crate::inclusion::required(&snapshot, height + 1)
            .unwrap_or_else(|e| fatal("ExtendVote", e));
        let Some(params) = params else {
            return resp::ExtendVote {
                vote_extension: Bytes::new(),
            };
        };
        let in_block: std::collections::BTreeSet<Hash> =
            req.txs.iter().map(|t| weft_core::sha256(t)).collect();
        let pool = mempool::lock(&self.mempool);
        let list = crate::inclusion::list::inclusion_list(
            &pool,
            &params,
            height.saturating_sub(1),
            &in_block,
            None,
        );
        metrics::gauge!("weft_inclusion_list_txs").set(list.txs.len() as f64);
        resp::ExtendVote {
            vote_extension: Bytes::from(list.encode()),
        }
    }

    /// VerifyVoteExtension: the form and the bound only (never this node's
    /// own view: refusing on it would split the votes and halt the chain).
    fn verify_vote_extension(
        &mut self,
        req: request::VerifyVoteExtension,
    ) -> resp::VerifyVoteExtension {
        let snapshot = self
            .storage
            .snapshot()
            .unwrap_or_else(|e| fatal("VerifyVoteExtension", e));
        let params = snapshot
            .optional_component_params::<weft_core::InclusionParams>()
            .unwrap_or_else(|e| fatal("VerifyVoteExtension", e));
        match crate::inclusion::list::verify_extension(params.as_ref(), &req.vote_extension) {
            Ok(()) => resp::VerifyVoteExtension::Accept,
            Err(e) => {
                tracing::warn!(height = %req.height, validator = %req.validator_address, error = %e, "rejecting a vote extension");
                resp::VerifyVoteExtension::Reject
            }
        }
    }

    fn process_proposal(&mut self, req: request::ProcessProposal) -> ProcessProposal {
        let started = Instant::now();
        let verdict = self.process_proposal_verdict(req);
        metrics::histogram!("weft_process_proposal_seconds")
            .record(started.elapsed().as_secs_f64());
        verdict
    }

    fn process_proposal_verdict(&mut self, req: request::ProcessProposal) -> ProcessProposal {
        let exec = self.begin("ProcessProposal", BlockContext::of_process(&req));
        match proposal::process(exec, &self.signatures, self.chain_id(), &req.txs) {
            Ok(exec) => {
                self.processed = Some((block_hash(&req.hash), exec));
                ProcessProposal::Accept
            }
            Err(proposal::ProposalError::Storage(e)) => fatal("ProcessProposal", e),
            Err(e) => {
                tracing::warn!(height = %req.height, error = %e, "rejecting proposal");
                let reason = match e {
                    proposal::ProposalError::Censored(_) => "censored",
                    proposal::ProposalError::ListedCommit(_) => "listed_commit",
                    proposal::ProposalError::Bid { .. } => "bid",
                    _ => "invalid",
                };
                metrics::counter!("weft_proposals_rejected_total", "reason" => reason).increment(1);
                ProcessProposal::Reject
            }
        }
    }

    fn finalize_block(&mut self, req: request::FinalizeBlock) -> resp::FinalizeBlock {
        let started = Instant::now();
        let response = self.finalize_block_response(req);
        metrics::histogram!("weft_finalize_block_seconds").record(started.elapsed().as_secs_f64());
        response
    }

    fn finalize_block_response(&mut self, req: request::FinalizeBlock) -> resp::FinalizeBlock {
        let height = req.height.value();
        let ctx = BlockContext::of_finalize(&req);
        // The accepted proposal's execution is reused only if it ran under
        // exactly this block's context; otherwise the decided block is
        // executed afresh (a block this node never processed, or another
        // round's).
        let mut exec = match self.processed.take() {
            Some((h, exec)) if h == block_hash(&req.hash) && *exec.context() == ctx => exec,
            _ => {
                let exec = self.begin("FinalizeBlock", ctx);
                proposal::execute_decided(exec, &self.signatures, self.chain_id(), &req.txs)
                    .unwrap_or_else(|e| fatal("FinalizeBlock", e))
            }
        };
        crate::auction::record_block_hash(&mut exec.delta, block_hash(&req.hash))
            .unwrap_or_else(|e| fatal("FinalizeBlock", e));
        let block = exec.finish().unwrap_or_else(|e| fatal("FinalizeBlock", e));

        let tx_hashes: Vec<Hash> = req.txs.iter().map(|t| weft_core::sha256(t)).collect();
        let mut located = Vec::new();
        let mut tx_results = Vec::with_capacity(block.results.len());
        self.executed.clear();
        for (index, result) in block.results.iter().enumerate() {
            let (code, r) = exec_tx_result(result);
            if let ItemResult::Tx { hash, .. } = result {
                located.push((index as u32, *hash, code));
                self.executed.push(*hash);
            }
            tx_results.push(r);
        }
        metrics::histogram!("weft_block_bytes")
            .record(req.txs.iter().map(|t| t.len()).sum::<usize>() as f64);
        metrics::histogram!("weft_block_rollup_data_bytes").record(block.rollup_bytes as f64);
        metrics::gauge!("weft_block_txs").set(self.executed.len() as f64);
        let indexes = self.components.index_block(&FinalizedBlock {
            height,
            tx_hashes: &tx_hashes,
            tx_results: &located,
            batches: &block.batches,
            commitments: block.commitments(),
            listed: block.listed.as_ref(),
        });
        let validator_updates = block
            .end
            .validator_updates
            .iter()
            .map(|(key, power)| validator_update(key, *power))
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_else(|e| fatal("FinalizeBlock: validator update", e));
        let consensus_param_updates = block.end.consensus_params.as_ref().map(|u| {
            tracing::info!(
                height,
                vote_extensions_enable_height = u.vote_extensions_enable_height,
                "sending CometBFT a consensus-parameter update: vote extensions on"
            );
            consensus_params_update(u)
        });
        let events = block.end.events.iter().map(|e| e.to_abci()).collect();
        let pending = self
            .storage
            .prepare_commit(height, block.changes, indexes)
            .unwrap_or_else(|e| fatal("FinalizeBlock", e));
        let hash = pending.app_hash;
        // A staged height never committed (no Commit followed its
        // FinalizeBlock) is discarded first: it holds the write lock.
        self.pending = None;
        // Staged here, not in Commit: CometBFT holds its mempool lock for
        // all of Commit, and staging is most of the store's work.
        let staged = self
            .storage
            .stage(self.chain_id(), pending)
            .unwrap_or_else(|e| fatal_storage("FinalizeBlock", &self.storage, e));
        self.pending = Some(staged);
        tracing::debug!(height, txs = req.txs.len(), app_hash = %hash, "block finalized");
        resp::FinalizeBlock {
            events,
            tx_results,
            validator_updates,
            consensus_param_updates,
            app_hash: app_hash(&hash),
        }
    }

    fn commit(&mut self) -> resp::Commit {
        let started = Instant::now();
        let response = self.commit_pending();
        metrics::histogram!("weft_commit_seconds").record(started.elapsed().as_secs_f64());
        response
    }

    fn commit_pending(&mut self) -> resp::Commit {
        self.processed = None;
        let mut committed = 0;
        match self.pending.take() {
            Some(pending) => {
                let height = pending.height;
                committed = height;
                let crash = self.config.unsafe_test_crash;
                UnsafeTestCrash::check(crash, CrashPoint::AfterFinalizeBlock, height);
                self.storage
                    .commit_staged(pending, |h| {
                        UnsafeTestCrash::check(crash, CrashPoint::MidCommit, h)
                    })
                    .unwrap_or_else(|e| fatal_storage("Commit", &self.storage, e));
                // Published only once durable: a woken reader finds it stored.
                self.commits.send_replace(height);
                tracing::info!(height, txs = self.executed.len(), "committed");
                // The mempool moves on with the new state; CometBFT's recheck follows.
                let snapshot = self
                    .storage
                    .snapshot()
                    .unwrap_or_else(|e| fatal("Commit", e));
                let mut pool = mempool::lock(&self.mempool);
                if let Err(e) = pool.on_commit(&snapshot, &self.executed, Instant::now()) {
                    fatal("Commit", e);
                }
                pool.report_metrics();
                drop(pool);
                if let Err(e) = crate::staking::decentralisation::report_metrics(&snapshot) {
                    // Metrics only: the block is committed; say so and go on.
                    tracing::warn!(height, error = %e, "validator metrics not updated");
                }
            }
            None => tracing::warn!("Commit without a finalized block"),
        }
        let retain_height = retain_height(committed, self.config.cometbft_retain_blocks);
        resp::Commit {
            data: Bytes::new(),
            retain_height: retain_height.try_into().unwrap_or_default(),
        }
    }

    /// Read access for tests and the API.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Where transactions fetched ahead for coming proposals are left
    /// (an auction's winners): PrepareProposal takes what has arrived for
    /// its height and never waits for more.
    pub fn prefetched(&self) -> Prefetched {
        self.prefetched.clone()
    }

    /// The shared mempool (the API reads statuses from it).
    pub fn mempool(&self) -> Arc<Mutex<Mempool>> {
        self.mempool.clone()
    }

    /// The chain id, once InitChain or the store has told it (the relay
    /// fetcher signs requests for it).
    pub fn chain_id_handle(&self) -> Arc<OnceLock<String>> {
        self.chain_id.clone()
    }

    /// The last committed height, updated right after each Commit.
    pub fn subscribe_commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commits.subscribe()
    }
}

fn exec_tx_result(result: &ItemResult) -> (u32, ExecTxResult) {
    match result {
        ItemResult::Commitments => (
            0,
            ExecTxResult {
                info: "commitments".into(),
                ..Default::default()
            },
        ),
        ItemResult::ListedCommit => (
            0,
            ExecTxResult {
                info: "listed commit".into(),
                ..Default::default()
            },
        ),
        ItemResult::Bid {
            hash,
            outcome: Ok(receipt),
        } => (
            0,
            ExecTxResult {
                info: "bid".into(),
                events: vec![bid_event(hash, receipt).to_abci()],
                ..Default::default()
            },
        ),
        ItemResult::Bid {
            outcome: Err(why), ..
        } => (
            TxCode::InvalidTransaction.value(),
            ExecTxResult {
                code: Code::from(TxCode::InvalidTransaction.value()),
                log: format!("bid refused: {why}"),
                codespace: "weft".into(),
                ..Default::default()
            },
        ),
        ItemResult::Tx {
            outcome: Ok(receipt),
            ..
        } => (
            0,
            ExecTxResult {
                events: receipt.events().iter().map(|e| e.to_abci()).collect(),
                ..Default::default()
            },
        ),
        ItemResult::Tx {
            outcome: Err(r), ..
        } => (
            r.code.value(),
            ExecTxResult {
                code: Code::from(r.code.value()),
                log: r.message.clone(),
                codespace: "weft".into(),
                ..Default::default()
            },
        ),
    }
}

/// The event of a settled bid: who paid how much for which rollups.
fn bid_event(hash: &Hash, receipt: &proposal::BidReceipt) -> crate::component::Event {
    use crate::component::{Event, EventValue};
    let mut event = Event::new("weft.bid")
        .indexed("builder", EventValue::Address(receipt.builder))
        .stored("bid", EventValue::Text(hash.to_string()))
        .stored("amount", EventValue::Amount(receipt.amount));
    for rollup in &receipt.rollups {
        event = event.indexed("rollup_id", EventValue::Rollup(*rollup));
    }
    event
}

/// A component's consensus-parameter update as CometBFT takes it. The
/// ABCI library always sends the block, evidence and validator groups, so
/// all three are restated (each was checked against CometBFT's rules when
/// proposed); `version` is left out, which CometBFT reads as unchanged.
pub(crate) fn consensus_params_update(
    u: &crate::component::ConsensusParamsUpdate,
) -> tendermint::consensus::Params {
    use tendermint::{block, consensus, evidence};
    let c = &u.consensus;
    consensus::Params {
        block: block::Size {
            max_bytes: c.block_max_bytes,
            max_gas: c.block_max_gas,
            time_iota_ms: block::Size::default_time_iota_ms(),
        },
        evidence: evidence::Params {
            max_age_num_blocks: c.evidence_max_age_num_blocks,
            max_age_duration: evidence::Duration(Duration::from_nanos(
                c.evidence_max_age_duration_ns,
            )),
            // At most `block_max_bytes` (checked), which fits an i64.
            max_bytes: i64::try_from(c.evidence_max_bytes).unwrap_or(i64::MAX),
        },
        validator: consensus::params::ValidatorParams {
            pub_key_types: vec![tendermint::public_key::Algorithm::Ed25519],
        },
        version: None,
        abci: consensus::params::AbciParams {
            vote_extensions_enable_height: tendermint::block::Height::try_from(
                u.vote_extensions_enable_height,
            )
            .ok(),
        },
    }
}

/// A component's validator update as CometBFT takes it.
pub(crate) fn validator_update(
    key: &[u8; 32],
    power: u64,
) -> Result<tendermint::validator::Update, tendermint::Error> {
    Ok(tendermint::validator::Update {
        pub_key: tendermint::PublicKey::from_raw_ed25519(key)
            .ok_or_else(|| tendermint::Error::invalid_key("not an ed25519 key".into()))?,
        power: tendermint::vote::Power::try_from(power)?,
    })
}

/// How the set genesis.json lists differs from the set the app returns,
/// one line per key (hex): missing from either side, or another power.
fn validator_set_differences(
    listed: &[tendermint::validator::Update],
    returned: &[tendermint::validator::Update],
) -> Vec<String> {
    use std::collections::BTreeMap;
    let by_key = |set: &[tendermint::validator::Update]| -> BTreeMap<tendermint::PublicKey, u64> {
        set.iter().map(|u| (u.pub_key, u.power.value())).collect()
    };
    let (listed, returned) = (by_key(listed), by_key(returned));
    let mut out = Vec::new();
    for (key, power) in &listed {
        let hex = hex::encode(key.to_bytes());
        match returned.get(key) {
            None => out.push(format!(
                "{hex} (power {power}) is in genesis.json but not in the staking set"
            )),
            Some(p) if p != power => out.push(format!(
                "{hex} has power {power} in genesis.json but {p} in the staking set"
            )),
            Some(_) => {}
        }
    }
    for (key, power) in &returned {
        if !listed.contains_key(key) {
            out.push(format!(
                "{} (power {power}) is in the staking set but not in genesis.json",
                hex::encode(key.to_bytes())
            ));
        }
    }
    out
}

fn app_hash(h: &Hash) -> AppHash {
    AppHash::try_from(h.0.to_vec()).unwrap_or_default()
}

fn block_hash(h: &tendermint::Hash) -> Hash {
    match h {
        tendermint::Hash::Sha256(b) => Hash(*b),
        tendermint::Hash::None => Hash::default(),
    }
}

impl Service<Request> for App {
    type Response = Response;
    type Error = tower::BoxError;
    type Future = Ready<Result<Response, tower::BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        ready(Ok(self.handle(req)))
    }
}

#[cfg(test)]
mod tests;
