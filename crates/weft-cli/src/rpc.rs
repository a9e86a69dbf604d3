//! The CometBFT RPC client every node-talking command uses: status, ABCI
//! queries, broadcasting, committed-tx lookup and block data hashes, over
//! `tendermint_rpc::HttpClient`, with errors that say what to do next.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tendermint_rpc::{
    endpoint::status, error::ErrorDetail, query::Query, Client, HttpClient, HttpClientUrl, Order,
};
use weft_core::{Address, Amount, Hash};

/// Said whenever a node cannot be reached.
const UNREACHABLE_HINT: &str =
    "is the node running? try scripts/devnet, or point --node / --devnet at a running node";
/// Said when something answers that is not a CometBFT RPC endpoint.
const NOT_COMETBFT_HINT: &str =
    "is --node a CometBFT RPC address (e.g. http://127.0.0.1:26657), not the sequencer API?";
/// How long one request may take, connecting included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// A CometBFT node's RPC endpoint.
#[derive(Debug, Clone)]
pub struct NodeClient {
    /// The URL as the user gave it, without a trailing slash (for messages).
    base: String,
    rpc: HttpClient,
}

/// The `response` of an ABCI query.
#[derive(Debug, Clone)]
pub struct AbciResponse {
    /// 0 on success.
    pub code: u32,
    /// Human-readable message (errors).
    pub log: String,
    /// The value bytes.
    pub value: Vec<u8>,
}

/// An account as the sequencer's `account/<address>` query returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    /// The account.
    pub address: String,
    /// Its balance.
    pub balance: Amount,
    /// The nonce the account's next *committed* transaction carries.
    pub nonce: u64,
    /// The nonce after the account's transactions still pending in the
    /// node's mempool: what a new transaction should carry. `None` from a
    /// node that does not report it.
    pub pending_nonce: Option<u64>,
    /// Height of the state read.
    pub height: u64,
}

impl AccountInfo {
    /// Reads the sequencer's `account/<address>` answer; `address` fills in
    /// an answer that omits it.
    pub fn from_query(address: &Address, value: &Value) -> Result<Self> {
        let nonce = uint_at(value, "/nonce")
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| anyhow!("account answer has no nonce: {value}"))?;
        let pending_nonce = match value.get("pending_nonce") {
            None | Some(Value::Null) => None,
            Some(_) => Some(
                uint_at(value, "/pending_nonce")
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| anyhow!("account answer has a bad pending_nonce: {value}"))?,
            ),
        };
        Ok(AccountInfo {
            address: value
                .get("address")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| address.to_string()),
            balance: uint_at(value, "/balance")
                .ok_or_else(|| anyhow!("account answer has no balance: {value}"))?,
            nonce,
            pending_nonce,
            height: uint_at(value, "/height")
                .and_then(|h| u64::try_from(h).ok())
                .unwrap_or(0),
        })
    }

    /// The nonce a new transaction from this account should carry: the
    /// pending nonce when the node reports one, so a transaction sent while
    /// an earlier one waits in the mempool follows it instead of colliding
    /// with it; else the committed nonce.
    pub fn next_nonce(&self) -> u64 {
        // A pending nonce below the committed one would be a stale view;
        // no transaction below the committed nonce can ever be valid.
        self.pending_nonce
            .map_or(self.nonce, |pending| pending.max(self.nonce))
    }
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
        let parsed: HttpClientUrl = base
            .parse()
            .map_err(|e| anyhow!("--node `{url}` is not a usable URL: {e}"))?;
        let rpc = HttpClient::builder(parsed)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| anyhow!("building an RPC client for {base}: {e}"))?;
        Ok(NodeClient { base, rpc })
    }

    /// The node's `/status`.
    pub async fn status(&self) -> Result<status::Response> {
        self.rpc
            .status()
            .await
            .map_err(|e| self.explain("status", e))
    }

    /// The chain id (`node_info.network`).
    pub async fn chain_id(&self) -> Result<String> {
        Ok(self.status().await?.node_info.network.to_string())
    }

    /// CometBFT's current block and evidence parameters, as an
    /// `EnableInclusionLists` proposal restates them; an error if vote
    /// extensions are already on (the chain would refuse the proposal).
    pub async fn consensus_params(&self) -> Result<weft_core::ConsensusParams> {
        // CometBFT may answer "could not find consensus params" for a
        // height whose block is stored before its state is: ask again.
        let mut tries = 0;
        let response = loop {
            match self.rpc.latest_consensus_params().await {
                Ok(r) => break r,
                Err(e) if tries >= 4 => return Err(self.explain("consensus_params", e)),
                Err(_) => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        };
        let p = response.consensus_params;
        // CometBFT's JSON says "0" for off, which parses as Some(0).
        if let Some(h) = p
            .abci
            .vote_extensions_enable_height
            .filter(|h| h.value() > 0)
        {
            bail!(
                "vote extensions are already on at {} (from height {h}); \
                 change the inclusion parameters with a change_inclusion_params proposal",
                self.base
            );
        }
        let duration = u64::try_from(p.evidence.max_age_duration.0.as_nanos())
            .context("evidence.max_age_duration does not fit u64 nanoseconds")?;
        Ok(weft_core::ConsensusParams {
            block_max_bytes: p.block.max_bytes,
            block_max_gas: p.block.max_gas,
            evidence_max_age_num_blocks: p.evidence.max_age_num_blocks,
            evidence_max_age_duration_ns: duration,
            evidence_max_bytes: u64::try_from(p.evidence.max_bytes)
                .context("evidence.max_bytes is negative")?,
        })
    }

    /// Runs an ABCI query at the latest height.
    pub async fn abci_query(&self, path: &str) -> Result<AbciResponse> {
        let response = self
            .rpc
            .abci_query(Some(path.to_string()), Vec::new(), None, false)
            .await
            .map_err(|e| self.explain("abci_query", e))?;
        Ok(AbciResponse {
            code: response.code.value(),
            log: response.log,
            value: response.value,
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
        AccountInfo::from_query(address, &value)
    }

    /// Submits a transaction and waits for CheckTx (`broadcast_tx_sync`,
    /// a JSON-RPC POST, so large transactions fit).
    pub async fn broadcast_tx_sync(&self, tx: &[u8]) -> Result<BroadcastResult> {
        let response = self
            .rpc
            .broadcast_tx_sync(tx.to_vec())
            .await
            .map_err(|e| self.explain("broadcast_tx_sync", e))?;
        Ok(BroadcastResult {
            code: response.code.value(),
            log: response.log,
            hash: response.hash.to_string(),
        })
    }

    /// Looks a transaction up by hash (hex, optionally `0x`-prefixed);
    /// `None` while it is not committed.
    pub async fn tx(&self, hash: &str) -> Result<Option<CommittedTx>> {
        let hex = hash.trim().trim_start_matches("0x").to_uppercase();
        Hash::from_hex(&hex).with_context(|| format!("`{hash}` is not a 64-hex tx hash"))?;
        // `tx_search` on the hash answers an empty list for a transaction
        // not (yet) committed, where `tx` answers a generic internal error
        // that only its text tells apart from a real failure.
        let query = Query::eq("tx.hash", hex);
        let found = self
            .rpc
            .tx_search(query, false, 1, 1, Order::Ascending)
            .await
            .map_err(|e| self.explain("tx_search", e))?;
        Ok(found.txs.into_iter().next().map(|tx| CommittedTx {
            height: tx.height.value(),
            code: tx.tx_result.code.value(),
            log: tx.tx_result.log,
        }))
    }

    /// `data_hash` from the header of the block at `height`.
    pub async fn block_data_hash(&self, height: u64) -> Result<Hash> {
        let at = tendermint::block::Height::try_from(height)
            .map_err(|e| anyhow!("height {height} is not a block height: {e}"))?;
        let response = self
            .rpc
            .header(at)
            .await
            .map_err(|e| self.explain("header", e))?;
        match response.header.data_hash {
            Some(tendermint::Hash::Sha256(bytes)) => Ok(Hash(bytes)),
            Some(tendermint::Hash::None) | None => {
                bail!("block {height} has no data_hash (no transactions)")
            }
        }
    }

    /// The block hash (CometBFT's header hash) of the block at `height`.
    pub async fn block_hash(&self, height: u64) -> Result<Hash> {
        let at = tendermint::block::Height::try_from(height)
            .map_err(|e| anyhow!("height {height} is not a block height: {e}"))?;
        let response = self
            .rpc
            .header(at)
            .await
            .map_err(|e| self.explain("header", e))?;
        match response.header.hash() {
            tendermint::Hash::Sha256(bytes) => Ok(Hash(bytes)),
            tendermint::Hash::None => bail!("block {height} has no hash"),
        }
    }

    /// A failed request as a message that says what went wrong and, where
    /// there is one, what to do. Decided by the error's kind, never its text.
    fn explain(&self, method: &str, error: tendermint_rpc::Error) -> anyhow::Error {
        let base = &self.base;
        // The error's own Display is its tracer's Debug: source location and,
        // with RUST_BACKTRACE set, a stack trace. The trace's alternate
        // Display is the message chain alone.
        let message = format!("{:#}", error.trace());
        match error.detail() {
            // Connecting, sending or reading the answer failed (refused,
            // timed out, reset): nothing usable answered.
            ErrorDetail::Http(_) => {
                anyhow!("cannot reach CometBFT RPC at {base}: {message}; {UNREACHABLE_HINT}")
            }
            ErrorDetail::HttpRequestFailed(failed) => anyhow!(
                "{base} answered {method} with HTTP {}; {NOT_COMETBFT_HINT}",
                failed.status
            ),
            ErrorDetail::Serde(_)
            | ErrorDetail::MalformedJson(_)
            | ErrorDetail::UnsupportedRpcVersion(_) => anyhow!(
                "{base} answered {method} with something that is not a CometBFT v0.38 JSON-RPC answer ({message}); {NOT_COMETBFT_HINT}"
            ),
            // The node answered with a JSON-RPC error.
            ErrorDetail::Response(response) => {
                let e = &response.source;
                let data = e.data().map(|d| format!(": {d}")).unwrap_or_default();
                anyhow!(
                    "{method} failed at {base}: {}{data} (JSON-RPC code {})",
                    e.message(),
                    e.code().value()
                )
            }
            _ => anyhow!("{method} at {base}: {message}"),
        }
    }
}

/// An unsigned integer that the sequencer may send as a JSON number or a
/// decimal string.
fn uint_at(value: &Value, pointer: &str) -> Option<u128> {
    match value.pointer(pointer)? {
        Value::Number(n) => n.as_u64().map(u128::from),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use weft_core::SigningKey;

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
        assert!(NodeClient::new("tcp://127.0.0.1:26657").is_err());
        assert_eq!(
            NodeClient::new("http://127.0.0.1:26657/").unwrap().base,
            "http://127.0.0.1:26657"
        );
    }

    fn address() -> Address {
        SigningKey::from_seed("account").address()
    }

    #[test]
    fn an_account_without_pending_nonce_signs_with_its_nonce() {
        let a = address();
        let v = json!({ "address": a.to_string(), "balance": "100", "nonce": 4, "height": "9" });
        let account = AccountInfo::from_query(&a, &v).unwrap();
        assert_eq!(account.pending_nonce, None);
        assert_eq!(account.nonce, 4);
        assert_eq!(account.height, 9);
        assert_eq!(account.next_nonce(), 4);
        // An explicit null is the same as an absent field.
        let v = json!({ "balance": "100", "nonce": 4, "pending_nonce": null });
        let account = AccountInfo::from_query(&a, &v).unwrap();
        assert_eq!(account.next_nonce(), 4);
        assert_eq!(account.address, a.to_string());
    }

    #[test]
    fn an_account_with_pending_transactions_signs_after_them() {
        let a = address();
        let v = json!({ "balance": "100", "nonce": 4, "pending_nonce": 6, "height": 9 });
        let account = AccountInfo::from_query(&a, &v).unwrap();
        assert_eq!(account.pending_nonce, Some(6));
        assert_eq!(account.next_nonce(), 6);
        // A stale pending view never takes a nonce below the committed one.
        let v = json!({ "balance": "100", "nonce": 4, "pending_nonce": "3" });
        assert_eq!(AccountInfo::from_query(&a, &v).unwrap().next_nonce(), 4);
    }

    #[test]
    fn malformed_account_answers_are_errors_not_panics() {
        let a = address();
        for v in [
            json!({ "balance": "100" }),
            json!({ "nonce": 1 }),
            json!({ "balance": "1", "nonce": "18446744073709551616" }),
            json!({ "balance": "1", "nonce": 1, "pending_nonce": "x" }),
            json!({ "balance": "1", "nonce": 1, "pending_nonce": -1 }),
        ] {
            assert!(AccountInfo::from_query(&a, &v).is_err(), "{v}");
        }
    }

    /// A port nothing listens on: bound, then released.
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn an_unreachable_node_gets_the_hint() {
        let client = NodeClient::new(&format!("http://127.0.0.1:{}", closed_port())).unwrap();
        let message = format!("{:#}", client.chain_id().await.unwrap_err());
        assert!(
            message.starts_with("cannot reach CometBFT RPC at"),
            "{message}"
        );
        assert!(message.ends_with(UNREACHABLE_HINT), "{message}");
        // One line for a person, not the error tracer's debug dump.
        assert!(!message.contains('\n'), "{message}");
    }

    /// Serves one HTTP answer to every connection, as a stand-in for
    /// something that is not CometBFT.
    async fn serve(status_line: &'static str, body: &'static str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = vec![0u8; 64 * 1024];
                let _ = socket.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 {status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        url
    }

    #[tokio::test]
    async fn a_server_that_is_not_cometbft_is_named_as_such() {
        let url = serve("404 Not Found", "{\"code\":\"not_found\"}").await;
        let message = format!(
            "{:#}",
            NodeClient::new(&url).unwrap().chain_id().await.unwrap_err()
        );
        assert!(message.contains("HTTP 404"), "{message}");
        assert!(message.contains(NOT_COMETBFT_HINT), "{message}");

        let url = serve("200 OK", "{\"hello\":1}").await;
        let message = format!(
            "{:#}",
            NodeClient::new(&url).unwrap().chain_id().await.unwrap_err()
        );
        assert!(message.ends_with(NOT_COMETBFT_HINT), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }

    #[tokio::test]
    async fn a_json_rpc_error_keeps_its_message_data_and_code() {
        let url = serve(
            "200 OK",
            r#"{"jsonrpc":"2.0","id":-1,"error":{"code":-32603,"message":"Internal error","data":"height 99 must be less than or equal to the current blockchain height 5"}}"#,
        )
        .await;
        let message = format!(
            "{:#}",
            NodeClient::new(&url)
                .unwrap()
                .block_data_hash(99)
                .await
                .unwrap_err()
        );
        assert!(
            message.starts_with("header failed at http://127.0.0.1:"),
            "{message}"
        );
        assert!(
            message.ends_with(": Internal error: height 99 must be less than or equal to the current blockchain height 5 (JSON-RPC code -32603)"),
            "{message}"
        );
    }
}
