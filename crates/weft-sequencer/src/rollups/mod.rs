//! Rollups: submission of opaque rollup data (sized and priced here, never
//! executed) and the per-height index of each rollup's batch.

pub mod actions;
pub mod query;
pub mod state;
