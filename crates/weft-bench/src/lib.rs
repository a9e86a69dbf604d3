//! `weft-bench`: an open-loop load generator and the harness around it.
//! It drives real CometBFT networks on loopback, running either Weft's
//! sequencer or CometBFT's own `kvstore` (the ceiling for any app on the
//! same CometBFT), with the same settings and transactions of the same
//! size, and reports throughput, latency and what every process cost.
//!
//! - [`scenario`]: the named scenarios (network size, payload, batching);
//! - [`workload`]: pre-signed transactions, payload ids, accounts;
//! - [`pacing`], [`submit`]: the open-loop schedule and JSON-RPC batches;
//! - [`blocks`], [`conductor`]: when transactions commit and are delivered;
//! - [`procstat`], [`hot_path`]: CPU, memory and the ABCI handlers' time;
//! - [`search`], [`stats`]: the saturation search and percentiles;
//! - [`harness`]: runs a scenario; [`report`]: JSON, Markdown and SVG;
//! - [`relay`]: the builder-bid relay alone (`weft-bench relay`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), weft_bench::BenchError> {
//! use weft_bench::{harness::{run_scenario, BenchOptions}, report, scenario::Scenario};
//!
//! let scenario = Scenario::named("1v-200b-batched")?;
//! let r = run_scenario(&scenario, &BenchOptions::default()).await?;
//! report::write_scenario(&r, std::path::Path::new("target/bench"))?;
//! # Ok(()) }
//! ```

pub mod blocks;
pub mod builder;
pub mod conductor;
pub mod error;
pub mod harness;
pub mod hot_path;
pub mod pacing;
pub mod procstat;
pub mod relay;
pub mod report;
pub mod scenario;
pub mod search;
pub mod soak;
pub mod stats;
pub mod submit;
pub mod workload;

pub use error::{BenchError, Result};
