//! The sequencer's error types, in a leaf module that imports nothing of the
//! crate, so every part of the state machine can name them without import
//! cycles: a [`Rejection`] is the transaction's fault (an ABCI code and a
//! reason), a [`StorageError`] is the node's, and [`ExecError`] carries
//! either without ever turning one into the other.

use weft_core::TxCode;

/// Every storage failure: the embedded store or the tree. Fatal on the
/// consensus path; a clean error on the query path.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The embedded store failed (I/O, corruption, lock).
    #[error("embedded store: {0}")]
    Store(#[from] redb::Error),
    /// The JMT reported an inconsistency.
    #[error("merkle tree: {0}")]
    Tree(String),
    /// A stored value does not decode: the file is corrupt or from an
    /// incompatible version.
    #[error("stored value under {0} does not decode")]
    Corrupt(String),
    /// A historical read below the pruned floor (the node keeps
    /// `state_retention_heights` heights of history).
    #[error("height {height} is pruned: this node keeps state history from height {floor}")]
    Pruned {
        /// The height asked for.
        height: u64,
        /// The oldest height still readable.
        floor: u64,
    },
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StorageError {
            fn from(e: $t) -> Self { StorageError::Store(e.into()) }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// A refusal with its ABCI code and a readable reason: always the
/// transaction's (or the proposer's) fault, never the node's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.name())]
pub struct Rejection {
    /// The class of refusal.
    pub code: TxCode,
    /// What was wrong, for the user.
    pub message: String,
}

impl Rejection {
    /// A rejection.
    pub fn new(code: TxCode, message: impl Into<String>) -> Self {
        Rejection {
            code,
            message: message.into(),
        }
    }
}

/// Why checking or executing a transaction stopped: the transaction was
/// refused, or the node could not read its own state. Callers on the
/// consensus path stop on `Storage` (a node that cannot read must not
/// guess) and record `Rejected` as the transaction's result.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The transaction is refused.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// Storage failed while checking it: not the transaction's fault.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl ExecError {
    /// The ABCI code a client is answered with (`internal` for storage).
    pub fn code(&self) -> TxCode {
        match self {
            ExecError::Rejected(r) => r.code,
            ExecError::Storage(_) => TxCode::Internal,
        }
    }

    /// The rejection, if the transaction is at fault.
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            ExecError::Rejected(r) => Some(r),
            ExecError::Storage(_) => None,
        }
    }
}
