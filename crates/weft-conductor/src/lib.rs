//! The rollup side of Weft. A conductor follows one rollup's batches from
//! one or more sequencer endpoints, trusts nothing it has not verified
//! (commit signatures over more than two-thirds of the trusted validator
//! set's power, validator-set changes followed height by height, then the
//! merkle proofs from the header's `data_hash` down to the rollup's batch),
//! and hands each height to the rollup exactly once, in order, across
//! restarts.
//!
//! Library use: implement [`Executor`] for your rollup and run a
//! [`Conductor`]; the `weft-conductor` binary does the same with an HTTP or
//! NDJSON executor.

pub mod conductor;
pub mod config;
pub mod cursor;
pub mod executor;
pub mod source;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod verify;

pub use conductor::{ChainMismatch, Conductor, ConductorError, ConductorOptions};
pub use cursor::{Cursor, CursorError, CursorFile};
pub use executor::{Executor, ExecutorError, HttpExecutor, RollupBlock, StdoutExecutor};
pub use source::{BatchSource, SequencedBatch, SourceError, SourceErrorKind};
pub use verify::{Anchor, ChainVerifier, Checked, TrustedRecord, VerifyError};
