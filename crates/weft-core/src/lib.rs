//! Weft's shared vocabulary: wire types, their strict encoding, hashing,
//! merkle proofs, keys and addresses, and the block layout a conductor checks.
//!
//! This crate does no I/O. Every other Weft crate depends on it, so anything
//! that crosses a process boundary is defined here exactly once.

pub mod bid;
pub mod block;
pub mod codes;
pub mod encoding;
pub mod envelope;
pub mod genesis;
pub mod hash;
pub mod inclusion;
pub mod keys;
pub mod merkle;
pub mod rollup;
pub mod transaction;
mod zip215;

pub use bid::{Bid, Bundle, RelayRequest, RelayRequestKind, SignedBid, SignedRelayRequest};
pub use block::{BlockCommitments, RollupBatch, RollupBatchProof};
pub use codes::TxCode;
pub use encoding::DecodeError;
pub use envelope::Envelope;
pub use genesis::{
    AccountParams, AuctionParams, ChainParams, ConsensusParams, FeeParams, GenesisAccount,
    GenesisAppState, GenesisStaking, GenesisValidator, GovernanceParams, InclusionParams,
    RollupParams, StakingParams,
};
pub use hash::{sha256, Hash};
pub use keys::{Address, KeyFile, PublicKey, Signature, SigningKey};
pub use rollup::RollupId;
pub use transaction::{Action, ProposalKind, SignedTransaction, Transaction, VoteOption};

/// The native asset's amount type. Balances and fees never overflow it in
/// practice; arithmetic on it is always checked.
pub type Amount = u128;
