//! The Weft sequencer: an ABCI application that orders rollup data without
//! executing it, and keeps a small authenticated state in a JMT.
//!
//! One module per part of the state machine (a [`component::Component`]),
//! each owning its storage keys, tables, parameters, actions and queries;
//! `app` only dispatches ABCI requests to them.

pub mod abci_server;
pub mod accounts;
pub mod action;
pub mod api;
pub mod app;
pub mod auction;
pub mod chain;
pub mod component;
pub mod config;
pub mod error;
pub mod fees;
pub mod governance;
pub mod headers;
pub mod inclusion;
pub mod mempool;
pub mod proposal;
pub mod rollups;
pub mod staking;
pub mod storage;
pub mod supply;
pub mod transaction;

#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod test_support;

pub use app::App;
pub use storage::Storage;
