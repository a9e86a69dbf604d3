//! The seam every part of the state machine plugs into: a [`Component`]
//! owns its keys, tables, parameters and block hooks; an [`ActionHandler`]
//! owns one action's checks, cost, execution and events. The app calls
//! components in a fixed order and never holds a protocol rule itself.
//!
//! The hooks run identically in PrepareProposal, ProcessProposal and
//! FinalizeBlock (including FinalizeBlock of a block this node never
//! processed), so they can never drift apart. Everything they see comes
//! from the [`BlockContext`], built from the ABCI request, never from the
//! node's clock or local view.

mod context;
mod event;
mod params;

use std::sync::Arc;

use weft_core::{Address, Amount, GenesisAppState, Hash, RollupId};

pub use context::{BlockContext, CommitVote, LastCommit, Misbehavior, MisbehaviorKind};
pub use event::{Event, EventAttribute, EventValue};
pub use params::{ComponentParams, ParamsRead, ParamsWrite};

use crate::{
    error::{ExecError, Rejection, StorageError},
    storage::{IndexWrite, StateRead, StateWrite},
};

/// One part of the state machine. Every hook has a do-nothing default, so
/// a component implements only what it owns.
pub trait Component: Send + Sync + 'static {
    /// A stable name, for logs.
    fn name(&self) -> &'static str;

    /// Creates the non-authenticated tables this component owns, so reads
    /// of a fresh store find them empty rather than missing.
    fn create_tables(&self, _txn: &redb::WriteTransaction) -> Result<(), StorageError> {
        Ok(())
    }

    /// Writes this component's genesis state (its parameters included).
    fn init_chain(
        &self,
        _state: &mut dyn StateWrite,
        _genesis: &Genesis<'_>,
    ) -> Result<(), StorageError> {
        Ok(())
    }

    /// The validator set this component says CometBFT must start with:
    /// (ed25519 consensus key, power), sorted by key, each key once, every
    /// power positive. Read from `state`, the genesis state `init_chain`
    /// just wrote (or, after a crash between InitChain and the first
    /// Commit, the committed genesis state), so both answers agree. It
    /// must be exactly the set this component's later validator updates
    /// are diffs against: the app returns it in InitChain, where it
    /// replaces genesis.json's validators. Empty (the default) means no
    /// opinion; at most one component of a chain may report a set.
    fn genesis_validators(
        &self,
        _state: &dyn StateRead,
    ) -> Result<Vec<([u8; 32], u64)>, StorageError> {
        Ok(Vec::new())
    }

    /// Runs before the block's first transaction.
    fn begin_block(
        &self,
        _state: &mut dyn StateWrite,
        _ctx: &BlockContext,
    ) -> Result<(), StorageError> {
        Ok(())
    }

    /// Runs after the block's last transaction: payouts, parameter
    /// changes, validator updates (into `out`).
    fn end_block(
        &self,
        _state: &mut dyn StateWrite,
        _ctx: &BlockContext,
        _block: &BlockSummary,
        _out: &mut EndBlock,
    ) -> Result<(), StorageError> {
        Ok(())
    }

    /// Adds the non-authenticated rows this component keeps for a
    /// finalized block (block records, tx locations, pruning). They are
    /// written in the same atomic commit as the block's state.
    fn index_block(&self, _block: &FinalizedBlock<'_>, _out: &mut Vec<Box<dyn IndexWrite + Send>>) {
    }
}

/// What InitChain hands every component.
#[derive(Debug, Clone, Copy)]
pub struct Genesis<'a> {
    /// The chain id CometBFT's genesis names.
    pub chain_id: &'a str,
    /// The validated `app_state`.
    pub app_state: &'a GenesisAppState,
}

/// What the block did, as the end-of-block hooks see it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BlockSummary {
    /// Fees debited from the block's transactions (credited by the fee
    /// component once per block, not once per transaction).
    pub fees: Amount,
    /// Transactions executed.
    pub executed: usize,
    /// Rollup data bytes carried.
    pub rollup_bytes: u64,
}

/// What the end-of-block hooks hand back to CometBFT.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EndBlock {
    /// Validator power changes: (ed25519 consensus key, new power; 0
    /// removes). Components must emit only real, deduplicated diffs.
    pub validator_updates: Vec<([u8; 32], u64)>,
    /// A consensus-parameter update for CometBFT, at most one per block
    /// (only a passed `EnableInclusionLists` proposal makes one).
    pub consensus_params: Option<ConsensusParamsUpdate>,
    /// Block-level events.
    pub events: Vec<Event>,
}

/// A consensus-parameter update: the block and evidence groups restated
/// (CometBFT replaces each group it is sent as a whole) and vote
/// extensions enabled from a height after the block that sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsensusParamsUpdate {
    /// The block and evidence parameters CometBFT keeps.
    pub consensus: weft_core::ConsensusParams,
    /// `abci.vote_extensions_enable_height`.
    pub vote_extensions_enable_height: u64,
}

/// A block as the index hooks see it after FinalizeBlock.
pub struct FinalizedBlock<'a> {
    /// Its height.
    pub height: u64,
    /// SHA-256 of every CometBFT tx in order (item 0 = commitments).
    pub tx_hashes: &'a [Hash],
    /// Each executed or refused transaction: (position, hash, code).
    pub tx_results: &'a [(u32, Hash, u32)],
    /// Each rollup's batch, in id order.
    pub batches: &'a std::collections::BTreeMap<RollupId, Vec<Vec<u8>>>,
    /// The commitments item the block carries.
    pub commitments: weft_core::BlockCommitments,
    /// What validators' inclusion lists owed this block, if it carries a
    /// listed commit.
    pub listed: Option<&'a crate::inclusion::rule::Listed>,
}

/// The components of a chain, in the order their hooks run. Cheap to
/// clone.
#[derive(Clone)]
pub struct Components(Arc<[Arc<dyn Component>]>);

impl Components {
    /// A chain of exactly these components, hooks run in this order.
    pub fn new(list: Vec<Arc<dyn Component>>) -> Self {
        Components(list.into())
    }

    /// Every component, in hook order.
    pub fn iter(&self) -> impl Iterator<Item = &dyn Component> {
        self.0.iter().map(|c| c.as_ref())
    }

    /// Genesis: every component's `init_chain`, in order.
    pub fn init_chain(
        &self,
        state: &mut dyn StateWrite,
        genesis: &Genesis<'_>,
    ) -> Result<(), StorageError> {
        self.iter().try_for_each(|c| c.init_chain(state, genesis))
    }

    /// The genesis validator set, from the one component that reports
    /// one (empty if none does; see [`Component::genesis_validators`]).
    pub fn genesis_validators(
        &self,
        state: &dyn StateRead,
    ) -> Result<Vec<([u8; 32], u64)>, StorageError> {
        let mut found = Vec::new();
        let mut reporter: Option<&'static str> = None;
        for c in self.iter() {
            let set = c.genesis_validators(state)?;
            if set.is_empty() {
                continue;
            }
            if let Some(first) = reporter {
                return Err(StorageError::Corrupt(format!(
                    "components `{first}` and `{}` both report a genesis validator set",
                    c.name()
                )));
            }
            reporter = Some(c.name());
            found = set;
        }
        Ok(found)
    }

    /// Every component's `begin_block`, in order.
    pub fn begin_block(
        &self,
        state: &mut dyn StateWrite,
        ctx: &BlockContext,
    ) -> Result<(), StorageError> {
        self.iter().try_for_each(|c| c.begin_block(state, ctx))
    }

    /// Every component's `end_block`, in order.
    pub fn end_block(
        &self,
        state: &mut dyn StateWrite,
        ctx: &BlockContext,
        block: &BlockSummary,
    ) -> Result<EndBlock, StorageError> {
        let mut out = EndBlock::default();
        for c in self.iter() {
            c.end_block(state, ctx, block, &mut out)?;
        }
        Ok(out)
    }

    /// Every component's index rows for a finalized block.
    pub fn index_block(&self, block: &FinalizedBlock<'_>) -> Vec<Box<dyn IndexWrite + Send>> {
        let mut out = Vec::new();
        for c in self.iter() {
            c.index_block(block, &mut out);
        }
        out
    }

    /// Creates every component's tables.
    pub fn create_tables(&self, txn: &redb::WriteTransaction) -> Result<(), StorageError> {
        self.iter().try_for_each(|c| c.create_tables(txn))
    }
}

/// What an action sees of the transaction carrying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxContext {
    /// The signer (pays fees, owns the nonce).
    pub signer: Address,
    /// The transaction's nonce.
    pub nonce: u64,
    /// The transaction's hash.
    pub hash: Hash,
    /// Rollup data bytes of the whole transaction (limits are per
    /// transaction, not per action).
    pub rollup_data_bytes: u64,
}

/// Rollup data placed in a block: each item with its rollup, in order.
pub type RollupItems = Vec<(RollupId, Vec<u8>)>;

/// What executing a transaction's actions leaves behind besides state
/// writes: events (formatted only when FinalizeBlock answers) and rollup
/// data for the block's batches. Discarded with the transaction's state
/// layer if any action fails.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionEffects {
    /// Events in action order.
    pub events: Vec<Event>,
    /// Rollup data placed in the block, in action order.
    pub rollup_data: RollupItems,
}

/// One action's rules, kept together: adding an action means one handler
/// in the component that owns the state it changes, plus its variant in
/// `weft_core::Action` (and its arm in `crate::action`).
///
/// The stages mirror Penumbra's: `check_stateless` needs nothing but the
/// action (it runs once, in CheckTx and for every block item, and is
/// cached with the signature); `check_stateful` reads a state without
/// changing it; `execute` writes. `spend` is what the signer must hold
/// for the action, on top of the fee, so admission and execution agree on
/// affordability.
pub trait ActionHandler {
    /// Structural rules that need no state.
    fn check_stateless(&self) -> Result<(), Rejection> {
        Ok(())
    }

    /// What the signer must hold for this action beyond the fee.
    fn spend(&self) -> Amount {
        0
    }

    /// Rules against a state (limits, parameters, existence).
    fn check_stateful(&self, _state: &dyn StateRead, _tx: &TxContext) -> Result<(), ExecError> {
        Ok(())
    }

    /// Applies the action. Runs inside the transaction's state layer: a
    /// failure leaves nothing behind.
    fn execute(
        &self,
        state: &mut dyn StateWrite,
        tx: &TxContext,
        effects: &mut ActionEffects,
    ) -> Result<(), ExecError>;
}

/// An action that knows its handler. The wire's `weft_core::Action` does,
/// by its variant (`crate::action`); tests plug in actions of their own.
pub trait HandledAction {
    /// Calls `f` with this action's handler.
    fn with_handler<R>(&self, f: impl FnOnce(&dyn ActionHandler) -> R) -> R;
}

#[cfg(test)]
mod tests;
