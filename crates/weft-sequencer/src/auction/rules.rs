//! The rules a bid in a block must meet, re-checked by every validator
//! from chain state alone, cheapest first, and its settlement.

use weft_core::{bid::BidError, AuctionParams, FeeParams, Hash, RollupId, SignedBid};

use crate::{
    component::ParamsRead,
    error::{ExecError, StorageError},
    rollups::RollupParams,
    storage::{StateRead, StateWrite},
};

/// Why a bid may not be in a block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BidRejection {
    /// The chain has no auction, or it is switched off.
    #[error("this chain takes no bids")]
    Disabled,
    /// The item does not decode as a bid.
    #[error("malformed bid item: {0}")]
    Malformed(String),
    /// A stateless rule fails.
    #[error(transparent)]
    Structure(#[from] BidError),
    /// Amount 0 is a cancellation at a relay, never a block's bid.
    #[error("a bid in a block must pay something")]
    ZeroAmount,
    /// Signed for another chain.
    #[error("bid for chain {0:?}")]
    WrongChain(String),
    /// For another height (stale, or replayed from another block).
    #[error("bid targets height {bid}, this block is {block}")]
    WrongHeight {
        /// The bid's target.
        bid: u64,
        /// This block.
        block: u64,
    },
    /// Names another parent block.
    #[error("bid names parent {bid}, the chain's is {chain}")]
    WrongParent {
        /// What the bid names.
        bid: Hash,
        /// The last finalized block's hash (zero if none was recorded).
        chain: Hash,
    },
    /// More rollup data than one transaction may carry.
    #[error("{bytes} bytes of rollup data, at most {max} per bid")]
    TooMuchData {
        /// The bid's data.
        bytes: u64,
        /// `max_rollup_data_per_tx`.
        max: u64,
    },
    /// Pays less than the same data would cost as a transaction.
    #[error("bid pays {amount}, below the reserve {reserve} (the fee for its data)")]
    BelowReserve {
        /// Offered.
        amount: u128,
        /// What a transaction with the same data would pay.
        reserve: u128,
    },
    /// The builder's signature does not verify.
    #[error("bad builder signature")]
    BadSignature,
    /// The builder cannot pay.
    #[error("builder cannot pay: {0}")]
    Unfunded(String),
    /// A rollup already led by an earlier bid in the block.
    #[error("rollup {0} is already led by another bid in this block")]
    Conflict(RollupId),
    /// The block already holds `max_bids_per_block` bids.
    #[error("more than {0} bids in one block")]
    TooMany(u32),
    /// The block's rollup-data cap would be exceeded.
    #[error("block limit: {0}")]
    Limit(String),
}

impl BidRejection {
    /// A short code, for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            BidRejection::Disabled => "disabled",
            BidRejection::Malformed(_) => "malformed",
            BidRejection::Structure(_) => "structure",
            BidRejection::ZeroAmount => "zero_amount",
            BidRejection::WrongChain(_) => "wrong_chain",
            BidRejection::WrongHeight { .. } => "wrong_height",
            BidRejection::WrongParent { .. } => "wrong_parent",
            BidRejection::TooMuchData { .. } => "too_much_data",
            BidRejection::BelowReserve { .. } => "below_reserve",
            BidRejection::BadSignature => "bad_signature",
            BidRejection::Unfunded(_) => "unfunded",
            BidRejection::Conflict(_) => "conflict",
            BidRejection::TooMany(_) => "too_many",
            BidRejection::Limit(_) => "limit",
        }
    }
}

/// A bid's failure: its own fault, or this node's storage.
#[derive(Debug, thiserror::Error)]
pub enum BidCheckError {
    /// The bid breaks a rule.
    #[error(transparent)]
    Rejected(#[from] BidRejection),
    /// This node could not read its state.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Checks `bid` for the block at `height` over `state` (everything but
/// the block-wide rules: conflicts, count, the data cap). Cheapest first:
/// the signature is verified only once everything it signs is right.
pub fn check<S: StateRead + ?Sized>(
    state: &S,
    chain_id: &str,
    height: u64,
    bid: &SignedBid,
) -> Result<AuctionParams, BidCheckError> {
    let params = super::enabled(state)?.ok_or(BidRejection::Disabled)?;
    bid.check_structure().map_err(BidRejection::from)?;
    let body = &bid.bid;
    if body.amount == 0 {
        return Err(BidRejection::ZeroAmount.into());
    }
    if body.chain_id != chain_id {
        return Err(BidRejection::WrongChain(body.chain_id.clone()).into());
    }
    if body.target_height != height {
        return Err(BidRejection::WrongHeight {
            bid: body.target_height,
            block: height,
        }
        .into());
    }
    let parent = super::parent_hash(state)?.unwrap_or_default();
    if body.parent_hash != parent {
        return Err(BidRejection::WrongParent {
            bid: body.parent_hash,
            chain: parent,
        }
        .into());
    }
    let rollups: RollupParams = state.component_params()?;
    let data = body.data_bytes();
    if data > u64::from(rollups.max_rollup_data_per_tx) {
        return Err(BidRejection::TooMuchData {
            bytes: data,
            max: u64::from(rollups.max_rollup_data_per_tx),
        }
        .into());
    }
    let fees: FeeParams = state.component_params()?;
    let reserve = fees.fee_for(data).unwrap_or(u128::MAX);
    if body.amount < reserve {
        return Err(BidRejection::BelowReserve {
            amount: body.amount,
            reserve,
        }
        .into());
    }
    bid.verify_signature()
        .map_err(|_| BidRejection::BadSignature)?;
    Ok(params)
}

/// Pays the bid: the builder's balance into the reward pool. Fails, with
/// nothing written, when the balance is short.
pub fn settle(state: &mut dyn StateWrite, bid: &SignedBid) -> Result<(), BidCheckError> {
    match crate::staking::rewards::pay_into_reward_pool(
        state,
        &bid.bid.builder_address(),
        bid.bid.amount,
    ) {
        Ok(()) => Ok(()),
        Err(ExecError::Rejected(r)) => Err(BidRejection::Unfunded(r.message).into()),
        Err(ExecError::Storage(e)) => Err(e.into()),
    }
}
