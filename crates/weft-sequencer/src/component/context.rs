//! The block context: what every hook and action may know about the block
//! being executed, taken from the ABCI request alone (never the node's
//! clock), the same in PrepareProposal, ProcessProposal and FinalizeBlock.

use tendermint::{
    abci::types::{self, CommitInfo, ExtendedCommitInfo},
    v0_38::abci::request,
};

/// How a validator took part in the previous height's commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitVote {
    /// The validator's address (first 20 bytes of SHA-256 of its key).
    pub validator: [u8; 20],
    /// Its voting power at that height.
    pub power: u64,
    /// Whether its precommit is in the commit (for the block or nil).
    pub signed: bool,
}

/// The previous height's commit as the block sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LastCommit {
    /// The round it was decided in.
    pub round: u32,
    /// Every validator of that height, in CometBFT's order.
    pub votes: Vec<CommitVote>,
}

/// Which kind of misbehavior CometBFT's evidence shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MisbehaviorKind {
    /// Two conflicting votes in one round.
    DuplicateVote,
    /// An attack on a light client.
    LightClientAttack,
    /// A kind this version does not know.
    Unknown,
}

/// Evidence of a validator's misbehavior, committed in this block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Misbehavior {
    /// What it did.
    pub kind: MisbehaviorKind,
    /// The offender's address.
    pub validator: [u8; 20],
    /// Its power at the offense.
    pub power: u64,
    /// The height of the offense.
    pub height: u64,
    /// Total voting power at that height.
    pub total_voting_power: u64,
}

/// Everything a block's execution may depend on besides state and its
/// transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockContext {
    /// The height being executed.
    pub height: u64,
    /// The block's time as the proposer set it (BFT time), in seconds and
    /// nanoseconds since the Unix epoch. Deterministic: it is in the header.
    pub time_unix: (i64, u32),
    /// The proposer's address.
    pub proposer: [u8; 20],
    /// The previous height's commit (empty at the first height).
    pub last_commit: LastCommit,
    /// Evidence committed in this block.
    pub misbehavior: Vec<Misbehavior>,
}

impl BlockContext {
    /// A context with only a height (genesis-adjacent tests and tools).
    pub fn at_height(height: u64) -> Self {
        BlockContext {
            height,
            time_unix: (0, 0),
            proposer: [0; 20],
            last_commit: LastCommit::default(),
            misbehavior: Vec::new(),
        }
    }

    fn from_parts(
        height: tendermint::block::Height,
        time: tendermint::Time,
        proposer: &tendermint::account::Id,
        last_commit: LastCommit,
        misbehavior: &[types::Misbehavior],
    ) -> Self {
        let since_epoch = time.unix_timestamp_nanos();
        let secs = since_epoch.div_euclid(1_000_000_000);
        let nanos = since_epoch.rem_euclid(1_000_000_000);
        let mut proposer_bytes = [0u8; 20];
        let raw = proposer.as_bytes();
        let n = raw.len().min(20);
        proposer_bytes[..n].copy_from_slice(&raw[..n]);
        BlockContext {
            height: height.value(),
            time_unix: (
                i64::try_from(secs).unwrap_or(i64::MAX),
                u32::try_from(nanos).unwrap_or(0),
            ),
            proposer: proposer_bytes,
            last_commit,
            misbehavior: misbehavior.iter().map(misbehavior_of).collect(),
        }
    }

    /// The context of a block being proposed by this node.
    pub fn of_prepare(req: &request::PrepareProposal) -> Self {
        let last = req
            .local_last_commit
            .as_ref()
            .map(extended_commit)
            .unwrap_or_default();
        Self::from_parts(
            req.height,
            req.time,
            &req.proposer_address,
            last,
            &req.misbehavior,
        )
    }

    /// The context of a proposal being checked.
    pub fn of_process(req: &request::ProcessProposal) -> Self {
        let last = req
            .proposed_last_commit
            .as_ref()
            .map(commit)
            .unwrap_or_default();
        Self::from_parts(
            req.height,
            req.time,
            &req.proposer_address,
            last,
            &req.misbehavior,
        )
    }

    /// The context of a decided block.
    pub fn of_finalize(req: &request::FinalizeBlock) -> Self {
        Self::from_parts(
            req.height,
            req.time,
            &req.proposer_address,
            commit(&req.decided_last_commit),
            &req.misbehavior,
        )
    }
}

fn vote(validator: &types::Validator, sig: &types::BlockSignatureInfo) -> CommitVote {
    CommitVote {
        validator: validator.address,
        power: validator.power.value(),
        signed: sig.is_signed(),
    }
}

fn commit(c: &CommitInfo) -> LastCommit {
    LastCommit {
        round: c.round.value(),
        votes: c
            .votes
            .iter()
            .map(|v| vote(&v.validator, &v.sig_info))
            .collect(),
    }
}

// The proposer's view carries vote extensions too; the context keeps what
// a decided block's commit has, so both convert to the same value.
fn extended_commit(c: &ExtendedCommitInfo) -> LastCommit {
    LastCommit {
        round: c.round.value(),
        votes: c
            .votes
            .iter()
            .map(|v| vote(&v.validator, &v.sig_info))
            .collect(),
    }
}

fn misbehavior_of(m: &types::Misbehavior) -> Misbehavior {
    Misbehavior {
        kind: match m.kind {
            types::MisbehaviorKind::DuplicateVote => MisbehaviorKind::DuplicateVote,
            types::MisbehaviorKind::LightClientAttack => MisbehaviorKind::LightClientAttack,
            types::MisbehaviorKind::Unknown => MisbehaviorKind::Unknown,
        },
        validator: m.validator.address,
        power: m.validator.power.value(),
        height: m.height.value(),
        total_voting_power: m.total_voting_power.value(),
    }
}
