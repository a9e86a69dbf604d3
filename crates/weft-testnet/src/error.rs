//! Everything that can go wrong while creating, starting, controlling or
//! watching a local network, as one typed error.

use std::{path::PathBuf, process::ExitStatus, time::Duration};

/// An error from this crate. Messages say what to do where there is
/// something to do.
#[derive(Debug, thiserror::Error)]
pub enum TestnetError {
    /// A binary the network needs was not found.
    #[error("{what} binary not found ({searched}); {hint}")]
    BinaryNotFound {
        /// Which binary.
        what: &'static str,
        /// Where we looked.
        searched: String,
        /// How to get it.
        hint: &'static str,
    },
    /// A file-system or process-spawning operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A helper command (e.g. `cometbft init`) exited with an error.
    #[error("`{command}` failed ({status}): {output}")]
    Command {
        /// The command line.
        command: String,
        /// How it exited.
        status: ExitStatus,
        /// Its stderr (or stdout when stderr was empty).
        output: String,
    },
    /// A JSON file or response did not have the expected shape.
    #[error("{context}: {message}")]
    Json {
        /// What we were reading or writing.
        context: String,
        /// What was wrong.
        message: String,
    },
    /// CometBFT's config.toml could not be read or written.
    #[error("{context}: {message}")]
    Toml {
        /// Which file.
        context: String,
        /// What was wrong.
        message: String,
    },
    /// The configuration asked for something impossible.
    #[error("invalid testnet configuration: {0}")]
    InvalidConfig(String),
    /// No free block of ports could be found.
    #[error("no free block of {ports} loopback ports found after {attempts} attempts")]
    NoFreePorts {
        /// Ports needed.
        ports: usize,
        /// Bases tried.
        attempts: usize,
    },
    /// A requested port is taken.
    #[error("port {port} on 127.0.0.1 is already in use (another devnet or node running?)")]
    PortInUse {
        /// The port.
        port: u16,
    },
    /// The home directory already holds a network.
    #[error("{0} already contains a network; remove it or choose another home")]
    HomeNotEmpty(PathBuf),
    /// There is no node with this index.
    #[error("no node {index}: the network has {count} nodes")]
    NoSuchNode {
        /// The index asked for.
        index: usize,
        /// How many nodes exist.
        count: usize,
    },
    /// A node's process exited when it should be running.
    #[error("node{node}'s {process} exited ({status}); last lines of {log}:\n{tail}")]
    ProcessExited {
        /// Node index.
        node: usize,
        /// `cometbft` or `weft-sequencer`.
        process: &'static str,
        /// How it exited.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The end of its log.
        tail: String,
    },
    /// Something did not happen in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What we waited for, including the last observation.
        what: String,
        /// How long we waited.
        after: Duration,
    },
    /// A CometBFT RPC request failed.
    #[error("CometBFT RPC {url}: {message}")]
    Rpc {
        /// The URL requested.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// Sending a signal to a child failed.
    #[error("sending {signal} to pid {pid}: {source}")]
    Signal {
        /// Signal name.
        signal: &'static str,
        /// Target pid.
        pid: u32,
        /// The errno.
        #[source]
        source: nix::Error,
    },
}

impl TestnetError {
    /// An [`TestnetError::Io`] with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        TestnetError::Io {
            context: context.into(),
            source,
        }
    }

    /// A [`TestnetError::Json`] with context.
    pub fn json(context: impl Into<String>, message: impl ToString) -> Self {
        TestnetError::Json {
            context: context.into(),
            message: message.to_string(),
        }
    }
}
