//! The builder-bid relay: builders submit signed bids for the top of rollup
//! batches at the next height; the relay checks them (cheapest first),
//! keeps one live bid per builder and height, runs the greedy auction, and
//! hands the winning bids only to signed requests from active validators,
//! recording who fetched what.
//!
//! The relay sits outside consensus: a slow or dead relay must never delay
//! a block, so proposers fetch ahead of time and go on without bids.

pub mod api;
pub mod auction;
pub mod book;
pub mod chain;
pub mod config;
pub mod error;
pub mod sequencer;
pub mod traces;

pub use api::{router, Relay, RelayConfig};
pub use chain::{follow, CometHead, FollowConfig, Head, HeadSource};
pub use error::RelayError;
pub use sequencer::{Balance, Directory, HttpSequencer, SequencerApi, ValidatorEntry};
pub use traces::TraceStore;
