//! What can go wrong while benchmarking, as one typed error; the binary
//! wraps it with context.

use std::path::PathBuf;

/// An error from the benchmark harness.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Creating, starting or watching the network failed.
    #[error(transparent)]
    Testnet(#[from] weft_testnet::TestnetError),
    /// A file or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An HTTP or JSON-RPC exchange with a node failed.
    #[error("{url}: {message}")]
    Rpc {
        /// Where.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The websocket following committed blocks failed.
    #[error("following blocks on {url}: {message}")]
    Websocket {
        /// The websocket URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The conductor could not be started or stopped early.
    #[error("weft-conductor: {0}")]
    Conductor(String),
    /// The scenario or options ask for something impossible.
    #[error("invalid benchmark: {0}")]
    Invalid(String),
    /// A report could not be written.
    #[error("writing {path}: {message}")]
    Report {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl BenchError {
    /// An [`BenchError::Io`] with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        BenchError::Io {
            context: context.into(),
            source,
        }
    }

    /// An [`BenchError::Rpc`].
    pub fn rpc(url: impl Into<String>, message: impl std::fmt::Display) -> Self {
        BenchError::Rpc {
            url: url.into(),
            message: message.to_string(),
        }
    }
}

/// Result type of this crate.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;
