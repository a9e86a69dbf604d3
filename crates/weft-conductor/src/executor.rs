//! Delivery to the rollup: the [`Executor`] trait a rollup implements, and
//! the two the binary offers (HTTP to the rollup node, NDJSON on stdout).

use std::time::Duration;

use async_trait::async_trait;
use base64::{engine::general_purpose::STANDARD, Engine};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::source::read_capped;

/// Cap on a rollup node's answer (a head or a block hash): a few bytes are
/// expected, so anything near this is a broken or hostile node.
pub const MAX_ROLLUP_RESPONSE_BYTES: usize = 1024 * 1024;

/// One sequencer height for the rollup, verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollupBlock {
    /// Sequencer height.
    pub height: u64,
    /// Sequencer block time (RFC 3339): the rollup's clock.
    pub time: String,
    /// Hash of the sequencer block (hex).
    pub sequencer_block_hash: String,
    /// Hash of the previous sequencer block (hex).
    pub parent_hash: String,
    /// The rollup's transactions, in order (base64 in JSON).
    #[serde(with = "b64")]
    pub txs: Vec<Vec<u8>>,
}

mod b64 {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|b| STANDARD.encode(b)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Vec::<String>::deserialize(d)?
            .into_iter()
            .map(|s| STANDARD.decode(s).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// Why delivery failed; the conductor retries the same height.
#[derive(Debug, thiserror::Error)]
#[error("rollup executor: {0}")]
pub struct ExecutorError(pub String);

/// What a rollup implements to receive its blocks.
///
/// Exactly-once: `execute` is called for each height once, in order, unless
/// the conductor crashed between the rollup executing a height and the
/// conductor persisting its cursor; on restart the conductor asks `head`
/// and skips what the rollup already has. An executor that cannot answer
/// `head` gets at-least-once on such a crash (the height repeats).
#[async_trait]
pub trait Executor: Send + Sync {
    /// The last sequencer height the rollup executed, if it can tell.
    async fn head(&self) -> Result<Option<u64>, ExecutorError>;
    /// Executes one height; returns the rollup's resulting block hash.
    async fn execute(&self, block: &RollupBlock) -> Result<String, ExecutorError>;
}

/// Delivers to a rollup node over HTTP: `POST <url>` with a [`RollupBlock`]
/// JSON, answered `{ "block_hash": "…" }`; `GET <url>` answers
/// `{ "height": N | null }`, the rollup's head.
pub struct HttpExecutor {
    url: String,
    http: reqwest::Client,
}

impl HttpExecutor {
    /// An executor posting to `url`.
    pub fn new(url: &str) -> Self {
        HttpExecutor {
            url: url.to_string(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap_or_default(),
        }
    }
}

#[derive(Deserialize)]
struct Ack {
    block_hash: String,
}

#[derive(Deserialize)]
struct Head {
    height: Option<u64>,
}

#[async_trait]
impl Executor for HttpExecutor {
    async fn head(&self) -> Result<Option<u64>, ExecutorError> {
        let resp = self
            .http
            .get(&self.url)
            .send()
            .await
            .map_err(|e| ExecutorError(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(ExecutorError(format!(
                "GET {}: HTTP {}",
                self.url,
                resp.status()
            )));
        }
        let head: Head = read_json(resp, "head").await?;
        Ok(head.height)
    }

    async fn execute(&self, block: &RollupBlock) -> Result<String, ExecutorError> {
        let resp = self
            .http
            .post(&self.url)
            .json(block)
            .send()
            .await
            .map_err(|e| ExecutorError(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(ExecutorError(format!(
                "POST {}: HTTP {}",
                self.url,
                resp.status()
            )));
        }
        let ack: Ack = read_json(resp, "ack").await?;
        Ok(ack.block_hash)
    }
}

/// Decodes a rollup node's JSON answer, reading at most
/// [`MAX_ROLLUP_RESPONSE_BYTES`].
async fn read_json<T: DeserializeOwned>(
    resp: reqwest::Response,
    what: &str,
) -> Result<T, ExecutorError> {
    let body = read_capped(resp, MAX_ROLLUP_RESPONSE_BYTES)
        .await
        .map_err(|e| ExecutorError(format!("{what}: {e}")))?;
    serde_json::from_slice(&body).map_err(|e| ExecutorError(format!("{what}: {e}")))
}

/// Writes one JSON line per height to stdout; the ack is the flushed write.
pub struct StdoutExecutor;

#[async_trait]
impl Executor for StdoutExecutor {
    async fn head(&self) -> Result<Option<u64>, ExecutorError> {
        Ok(None)
    }

    async fn execute(&self, block: &RollupBlock) -> Result<String, ExecutorError> {
        use std::io::Write;
        let line = serde_json::to_string(block).map_err(|e| ExecutorError(e.to_string()))?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| ExecutorError(e.to_string()))?;
        Ok(block.sequencer_block_hash.clone())
    }
}
