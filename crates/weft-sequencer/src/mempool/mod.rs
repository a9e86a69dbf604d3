//! The mempool: admission (CheckTx), per-account nonce queues with parked
//! future nonces, bounds and eviction, time-to-live, recheck after each
//! block, and the status of every transaction a user may ask about.
//!
//! CometBFT keeps its own copy of every admitted transaction for gossip;
//! this pool decides what is executable, what goes into a proposal, and
//! tells CometBFT (through recheck codes) to drop what it evicted, so no
//! transaction is ever silently stuck.

mod admission;
mod index;
mod pool;
mod signatures;

use std::time::Duration;

use serde::Serialize;

pub use admission::{Admission, CheckTxService, TxOutcome};
pub use index::{tx_location, TxIndex, TxIndexPrune, TxLocation, TxLocations};
pub use pool::{Entry, Mempool};
pub use signatures::SignatureCache;

/// Bounds and timings of the mempool. Every field has a command-line flag
/// and a `WEFT_SEQUENCER_*` environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MempoolConfig {
    /// Most transactions held (pending + parked).
    pub max_txs: usize,
    /// Most encoded bytes held.
    pub max_bytes: usize,
    /// Most parked (future-nonce) transactions per account.
    pub max_parked_per_account: usize,
    /// Most parked transactions overall.
    pub max_parked: usize,
    /// How far beyond an account's nonce a transaction may be admitted.
    pub max_nonce_ahead: u64,
    /// A transaction not included within this time is evicted.
    pub ttl: Duration,
    /// How long a `rejected` or `evicted` status stays queryable.
    pub status_retention: Duration,
    /// Most `rejected`/`evicted` statuses remembered (oldest forgotten first).
    pub max_statuses: usize,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig {
            max_txs: 20_000,
            max_bytes: 64 * 1024 * 1024,
            max_parked_per_account: 16,
            max_parked: 2_000,
            max_nonce_ahead: 32,
            ttl: Duration::from_secs(600),
            status_retention: Duration::from_secs(3600),
            max_statuses: 200_000,
        }
    }
}

/// What became of a transaction, as `GET /v1/tx/{hash}` and
/// `weft query tx` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TxStatus {
    /// In the mempool and executable now: its nonce chain from the
    /// account's nonce has no gap.
    Pending,
    /// In the mempool behind a nonce gap; promoted when the gap fills.
    Parked {
        /// The nonce the account needs first.
        waiting_for_nonce: u64,
    },
    /// In a committed block.
    Included {
        /// Block height.
        height: u64,
        /// Position in the block (0 is the commitments item).
        index: u32,
        /// Result code (0 = executed).
        code: u32,
        /// When inclusion lists named it: the listing height and the power
        /// of the validators that listed it.
        #[serde(skip_serializing_if = "Option::is_none")]
        listed: Option<index::Listing>,
    },
    /// Refused on admission.
    Rejected {
        /// ABCI code.
        code: u32,
        /// Its name.
        code_name: &'static str,
        /// Why.
        reason: String,
    },
    /// Admitted, then dropped without being included.
    Evicted {
        /// Why.
        reason: String,
    },
    /// Never seen by this node, or forgotten after the retention window.
    Unknown,
}

impl TxStatus {
    /// Whether the status can still change.
    pub fn is_final(&self) -> bool {
        !matches!(self, TxStatus::Pending | TxStatus::Parked { .. })
    }
}

/// Locks the shared pool. A panic while holding the lock cannot leave the
/// pool half-updated in a way that matters more than stopping would, so a
/// poisoned lock is taken over rather than turned into a crash.
pub fn lock(pool: &std::sync::Mutex<Mempool>) -> std::sync::MutexGuard<'_, Mempool> {
    pool.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The status of `hash` as users see it: held in the pool (pending or
/// parked), else in a committed block (the index wins over an eviction
/// seen here: another proposer may have included it), else rejected or
/// evicted here, else unknown.
pub fn status(
    storage: &crate::storage::Storage,
    pool: &std::sync::Mutex<Mempool>,
    hash: &weft_core::Hash,
) -> Result<TxStatus, crate::storage::StorageError> {
    let held = lock(pool).status(hash);
    if let Some(s) = &held {
        if !s.is_final() {
            return Ok(s.clone());
        }
    }
    if let Some(loc) = tx_location(&storage.read()?, hash)? {
        return Ok(TxStatus::Included {
            height: loc.height,
            index: loc.index,
            code: loc.code,
            listed: loc.listed,
        });
    }
    Ok(held.unwrap_or(TxStatus::Unknown))
}
