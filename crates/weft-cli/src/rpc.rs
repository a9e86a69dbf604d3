//! The small CometBFT RPC client every node-talking command uses: status,
//! ABCI queries, broadcasting, tx lookup and block data hashes.

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use weft_core::{Address, Amount, Hash};

/// Said whenever a node cannot be reached.
const UNREACHABLE_HINT: &str =
    "is the node running? try scripts/devnet, or point --node / --devnet at a running node";

/// A CometBFT node's RPC endpoint.
#[derive(Debug, Clone)]
pub struct NodeClient {
    base: String,
    http: reqwest::Client,
}

/// The `response` of an ABCI query.
#[derive(Debug, Clone)]
pub struct AbciResponse {
    /// 0 on success.
    pub code: u32,
    /// Human-readable message (errors).
    pub log: String,
    /// The decoded value bytes.
    pub value: Vec<u8>,
}

/// An account as the sequencer's `account/<address>` query returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    /// The account.
    pub address: String,
    /// Its balance.
    pub balance: Amount,
    /// The nonce its next transaction must carry.
    pub nonce: u64,
    /// Height of the state read.
    pub height: u64,
}

/// What `broadcast_tx_sync` returned: the CheckTx outcome.
#[derive(Debug, Clone)]
pub struct BroadcastResult {
    /// CheckTx code; 0 = admitted to the mempool.
    pub code: u32,
    /// CheckTx log.
    pub log: String,
    /// Tx hash as CometBFT computed it (upper-case hex).
    pub hash: String,
}

/// A committed transaction's outcome.
#[derive(Debug, Clone)]
pub struct CommittedTx {
    /// Block height.
    pub height: u64,
    /// FinalizeBlock result code; 0 = success.
    pub code: u32,
    /// FinalizeBlock log.
    pub log: String,
}

impl NodeClient {
    /// A client for the CometBFT RPC at `url` (e.g. `http://127.0.0.1:26657`).
    pub fn new(url: &str) -> Result<Self> {
        let base = url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--node must be an http(s) URL of a CometBFT RPC endpoint, got `{url}`");
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(15))
            .build()?;
        Ok(NodeClient { base, http })
    }

    /// `GET /status`'s `result`.
    pub async fn status(&self) -> Result<Value> {
        self.get("status", &[]).await
    }

    /// The chain id (`node_info.network`).
    pub async fn chain_id(&self) -> Result<String> {
        let status = self.status().await?;
        string_at(&status, "/node_info/network")
    }

    /// Runs an ABCI query at the latest height.
    pub async fn abci_query(&self, path: &str) -> Result<AbciResponse> {
        // The path is a JSON string inside the URL query: `path="account/…"`.
        let quoted = format!("\"{path}\"");
        let result = self.get("abci_query", &[("path", quoted.as_str())]).await?;
        let response = result
            .get("response")
            .ok_or_else(|| anyhow!("abci_query answer has no `response`: {result}"))?;
        let value = match response.get("value").and_then(Value::as_str) {
            Some(b64) if !b64.is_empty() => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .context("abci_query value is not base64")?,
            _ => Vec::new(),
        };
        Ok(AbciResponse {
            code: uint_at(response, "/code").unwrap_or(0) as u32,
            log: response
                .get("log")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            value,
        })
    }

    /// Runs an ABCI query and parses its JSON value; a non-zero code is an
    /// error carrying the response log.
    pub async fn abci_query_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let response = self.abci_query(path).await?;
        if response.code != 0 {
            bail!(
                "query `{path}` failed (code {}): {}",
                response.code,
                response.log
            );
        }
        if response.value.is_empty() {
            bail!("query `{path}` returned no value; is --node a Weft node?");
        }
        serde_json::from_slice(&response.value).with_context(|| {
            format!(
                "query `{path}` returned unexpected JSON: {}",
                String::from_utf8_lossy(&response.value)
            )
        })
    }

    /// The sequencer's view of an account.
    pub async fn account(&self, address: &Address) -> Result<AccountInfo> {
        let value: Value = self.abci_query_json(&format!("account/{address}")).await?;
        Ok(AccountInfo {
            address: value
                .get("address")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| address.to_string()),
            balance: uint_at(&value, "/balance")
                .ok_or_else(|| anyhow!("account answer has no balance: {value}"))?,
            nonce: uint_at(&value, "/nonce")
                .ok_or_else(|| anyhow!("account answer has no nonce: {value}"))?
                as u64,
            height: uint_at(&value, "/height").unwrap_or(0) as u64,
        })
    }

    /// Submits a transaction and waits for CheckTx (`broadcast_tx_sync`),
    /// as a JSON-RPC POST so large transactions fit.
    pub async fn broadcast_tx_sync(&self, tx: &[u8]) -> Result<BroadcastResult> {
        let body = json!({
            "jsonrpc": "2.0",
            "id": 1,
            "method": "broadcast_tx_sync",
            "params": { "tx": base64::engine::general_purpose::STANDARD.encode(tx) },
        });
        let response = self
            .http
            .post(&self.base)
            .json(&body)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let result = self.result_of(response, "broadcast_tx_sync").await?;
        Ok(BroadcastResult {
            code: uint_at(&result, "/code").unwrap_or(0) as u32,
            log: result
                .get("log")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            hash: string_at(&result, "/hash")?,
        })
    }

    /// Looks a transaction up by hash; `None` while it is not committed.
    pub async fn tx(&self, hash: &str) -> Result<Option<CommittedTx>> {
        let hash = format!("0x{}", hash.trim_start_matches("0x"));
        match self.get("tx", &[("hash", hash.as_str())]).await {
            Ok(result) => Ok(Some(CommittedTx {
                height: uint_at(&result, "/height")
                    .ok_or_else(|| anyhow!("tx answer has no height: {result}"))?
                    as u64,
                code: uint_at(&result, "/tx_result/code").unwrap_or(0) as u32,
                log: result
                    .pointer("/tx_result/log")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            })),
            Err(e) if format!("{e:#}").contains("not found") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `data_hash` from the header of the block at `height`.
    pub async fn block_data_hash(&self, height: u64) -> Result<Hash> {
        let h = height.to_string();
        let result = self.get("block", &[("height", h.as_str())]).await?;
        let data_hash = string_at(&result, "/block/header/data_hash")?;
        if data_hash.is_empty() {
            bail!("block {height} has no data_hash (no transactions)");
        }
        Hash::from_hex(&data_hash)
            .with_context(|| format!("block {height} data_hash `{data_hash}`"))
    }

    async fn get(&self, method: &str, query: &[(&str, &str)]) -> Result<Value> {
        let response = self
            .http
            .get(format!("{}/{method}", self.base))
            .query(query)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        self.result_of(response, method).await
    }

    /// The JSON-RPC `result`, or the JSON-RPC `error` as an error (CometBFT
    /// sends errors with HTTP 500 and a JSON body).
    async fn result_of(&self, response: reqwest::Response, method: &str) -> Result<Value> {
        let status = response.status();
        let text = response.text().await.map_err(|e| self.unreachable(e))?;
        let body: Value = serde_json::from_str(&text).map_err(|_| {
            anyhow!(
                "{} answered {method} with HTTP {status} and a non-JSON body ({}); is --node a CometBFT RPC address?",
                self.base,
                text.chars().take(200).collect::<String>()
            )
        })?;
        if let Some(error) = body.get("error") {
            let message = error.get("message").and_then(Value::as_str).unwrap_or("");
            let data = error.get("data").and_then(Value::as_str).unwrap_or("");
            bail!("{method} failed at {}: {message} {data}", self.base);
        }
        body.get("result")
            .cloned()
            .ok_or_else(|| anyhow!("{method} answer from {} has no result: {body}", self.base))
    }

    fn unreachable(&self, e: reqwest::Error) -> anyhow::Error {
        anyhow!(
            "cannot reach CometBFT RPC at {}: {e}; {UNREACHABLE_HINT}",
            self.base
        )
    }
}

fn string_at(value: &Value, pointer: &str) -> Result<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| anyhow!("missing `{pointer}` in node answer: {value}"))
}

/// An unsigned integer that CometBFT (or the sequencer) may send as a JSON
/// number or a decimal string.
fn uint_at(value: &Value, pointer: &str) -> Option<u128> {
    match value.pointer(pointer)? {
        Value::Number(n) => n.as_u64().map(u128::from),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_read_from_numbers_and_strings() {
        let v = json!({ "a": "340282366920938463463374607431768211455", "b": 7, "c": "x" });
        assert_eq!(uint_at(&v, "/a"), Some(u128::MAX));
        assert_eq!(uint_at(&v, "/b"), Some(7));
        assert_eq!(uint_at(&v, "/c"), None);
        assert_eq!(uint_at(&v, "/d"), None);
    }

    #[test]
    fn node_urls_must_be_http() {
        assert!(NodeClient::new("127.0.0.1:26657").is_err());
        assert_eq!(
            NodeClient::new("http://127.0.0.1:26657/").unwrap().base,
            "http://127.0.0.1:26657"
        );
    }
}
