//! The reusable part of the `weft` command: the CometBFT RPC client
//! ([`rpc::NodeClient`]) that end-to-end tests and tools share with the CLI.

pub mod rpc;
