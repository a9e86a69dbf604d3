//! Following committed blocks on one node: a websocket subscription to
//! CometBFT's `NewBlockHeader` events gives the moment each height commits
//! (on the local monotonic clock), then `GET /block` gives its
//! transactions, which are matched by hash to the step's transactions.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use async_tungstenite::tungstenite::Message;
use base64::{engine::general_purpose::STANDARD, Engine};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::{sync::mpsc, task::JoinHandle};

use crate::{BenchError, Result};

/// A committed block as the follower saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockSeen {
    /// Height.
    pub height: u64,
    /// When its `NewBlockHeader` event arrived (or, for a height whose
    /// event was missed, when a later one did).
    pub at: Instant,
    /// Transactions in it (for Weft, the commitments item included).
    pub txs: usize,
    /// Bytes of those transactions.
    pub bytes: usize,
    /// How many were the current step's.
    pub step_txs: usize,
}

/// Inclusions of the current step's transactions.
#[derive(Debug, Default)]
struct StepInclusions {
    by_hash: HashMap<[u8; 32], u32>,
    included_at: Vec<Option<(Instant, u64)>>,
    count: usize,
}

#[derive(Debug, Default)]
struct Shared {
    step: Option<StepInclusions>,
    blocks: Vec<BlockSeen>,
    last_height: u64,
    last_error: Option<String>,
}

/// Follows one node's committed blocks until dropped.
#[derive(Debug)]
pub struct BlockFollower {
    shared: Arc<Mutex<Shared>>,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Deserialize)]
struct BlockResponse {
    result: BlockResult,
}

#[derive(Deserialize)]
struct BlockResult {
    block: Block,
}

#[derive(Deserialize)]
struct Block {
    data: BlockData,
}

#[derive(Deserialize)]
struct BlockData {
    #[serde(default)]
    txs: Option<Vec<String>>,
}

impl BlockFollower {
    /// Subscribes on the node at `rpc_url` (`http://host:port`) and waits
    /// until the subscription is confirmed.
    pub async fn start(rpc_url: &str) -> Result<Self> {
        let ws_url = format!(
            "{}/websocket",
            rpc_url.trim_end_matches('/').replacen("http", "ws", 1)
        );
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (heights_tx, heights_rx) = mpsc::unbounded_channel();
        let socket = subscribe(&ws_url).await?;
        let reader = tokio::spawn(read_events(ws_url, socket, heights_tx, shared.clone()));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| BenchError::rpc(rpc_url, e))?;
        let fetcher = tokio::spawn(fetch_blocks(
            http,
            rpc_url.trim_end_matches('/').to_string(),
            heights_rx,
            shared.clone(),
        ));
        Ok(BlockFollower {
            shared,
            tasks: vec![reader, fetcher],
        })
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts watching for a step's transactions (by hash → index).
    pub fn begin_step(&self, by_hash: HashMap<[u8; 32], u32>) {
        let n = by_hash.len();
        self.lock().step = Some(StepInclusions {
            by_hash,
            included_at: vec![None; n],
            count: 0,
        });
    }

    /// How many of the step's transactions were seen included.
    pub fn included_so_far(&self) -> usize {
        self.lock().step.as_ref().map_or(0, |s| s.count)
    }

    /// Stops watching; for each transaction, when and at which height it
    /// was seen committed.
    pub fn end_step(&self) -> Vec<Option<(Instant, u64)>> {
        self.lock()
            .step
            .take()
            .map(|s| s.included_at)
            .unwrap_or_default()
    }

    /// Blocks seen committed between `from` and `to`.
    pub fn blocks_between(&self, from: Instant, to: Instant) -> Vec<BlockSeen> {
        self.lock()
            .blocks
            .iter()
            .filter(|b| b.at >= from && b.at <= to)
            .cloned()
            .collect()
    }

    /// The latest height fetched.
    pub fn last_height(&self) -> u64 {
        self.lock().last_height
    }

    /// The latest websocket or fetch error, if any.
    pub fn last_error(&self) -> Option<String> {
        self.lock().last_error.clone()
    }

    /// Waits until `n` more blocks than now have been fetched, or `timeout`.
    pub async fn wait_blocks(&self, n: u64, timeout: Duration) -> bool {
        let target = self.last_height() + n;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.last_height() >= target {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }
}

impl Drop for BlockFollower {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

type Socket = async_tungstenite::WebSocketStream<async_tungstenite::tokio::ConnectStream>;

/// Connects and subscribes to `NewBlockHeader`, waiting for the ack.
async fn subscribe(ws_url: &str) -> Result<Socket> {
    let err = |m: String| BenchError::Websocket {
        url: ws_url.to_string(),
        message: m,
    };
    let (mut socket, _) = async_tungstenite::tokio::connect_async(ws_url)
        .await
        .map_err(|e| err(e.to_string()))?;
    let request = r#"{"jsonrpc":"2.0","method":"subscribe","id":1,"params":{"query":"tm.event='NewBlockHeader'"}}"#;
    socket
        .send(Message::Text(request.into()))
        .await
        .map_err(|e| err(e.to_string()))?;
    let ack = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .map_err(|_| err("no answer to subscribe".into()))?;
    match ack {
        Some(Ok(Message::Text(text))) if !text.contains("\"error\"") => Ok(socket),
        other => Err(err(format!("subscribe refused: {other:?}"))),
    }
}

/// The height in a `NewBlockHeader` event message.
pub fn event_height(text: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    v.pointer("/result/data/value/header/height")?
        .as_str()?
        .parse()
        .ok()
}

/// Reads events, forwarding `(height, arrival)`; reconnects on failure.
async fn read_events(
    ws_url: String,
    mut socket: Socket,
    heights: mpsc::UnboundedSender<(u64, Instant)>,
    shared: Arc<Mutex<Shared>>,
) {
    loop {
        while let Some(msg) = socket.next().await {
            match msg {
                Ok(Message::Text(text)) => {
                    let at = Instant::now();
                    if let Some(h) = event_height(&text) {
                        if heights.send((h, at)).is_err() {
                            return;
                        }
                    }
                }
                Ok(Message::Ping(p)) => {
                    let _ = socket.send(Message::Pong(p)).await;
                }
                Ok(Message::Close(_)) => break,
                Ok(_) => {}
                Err(e) => {
                    record_error(&shared, format!("websocket: {e}"));
                    break;
                }
            }
        }
        // Missed heights are filled in by the fetcher when the next event
        // arrives, stamped with that event's time (an upper bound).
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            match subscribe(&ws_url).await {
                Ok(s) => {
                    socket = s;
                    break;
                }
                Err(e) => record_error(&shared, e.to_string()),
            }
        }
    }
}

fn record_error(shared: &Arc<Mutex<Shared>>, message: String) {
    tracing::warn!(%message, "block follower");
    shared.lock().unwrap_or_else(|e| e.into_inner()).last_error = Some(message);
}

/// Fetches each announced height (and any skipped before it) and matches
/// its transactions.
async fn fetch_blocks(
    http: reqwest::Client,
    rpc_url: String,
    mut heights: mpsc::UnboundedReceiver<(u64, Instant)>,
    shared: Arc<Mutex<Shared>>,
) {
    while let Some((height, at)) = heights.recv().await {
        let last = shared.lock().unwrap_or_else(|e| e.into_inner()).last_height;
        let first = if last == 0 { height } else { last + 1 };
        for h in first..=height {
            let txs = match fetch_txs(&http, &rpc_url, h).await {
                Ok(txs) => txs,
                Err(e) => {
                    record_error(&shared, e.to_string());
                    Vec::new()
                }
            };
            let mut bytes = 0;
            let hashes: Vec<[u8; 32]> = txs
                .iter()
                .filter_map(|t| STANDARD.decode(t).ok())
                .map(|b| {
                    bytes += b.len();
                    Sha256::digest(&b).into()
                })
                .collect();
            let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
            let mut step_txs = 0;
            if let Some(step) = s.step.as_mut() {
                for hash in &hashes {
                    if let Some(&i) = step.by_hash.get(hash) {
                        let slot = &mut step.included_at[i as usize];
                        if slot.is_none() {
                            *slot = Some((at, h));
                            step.count += 1;
                            step_txs += 1;
                        }
                    }
                }
            }
            s.blocks.push(BlockSeen {
                height: h,
                at,
                txs: hashes.len(),
                bytes,
                step_txs,
            });
            s.last_height = s.last_height.max(h);
        }
    }
}

async fn fetch_txs(http: &reqwest::Client, rpc_url: &str, height: u64) -> Result<Vec<String>> {
    let url = format!("{rpc_url}/block?height={height}");
    let mut last = None;
    // A just-announced block is occasionally not yet readable: retry briefly.
    for _ in 0..5 {
        match http.get(&url).send().await {
            Ok(r) => match r.json::<BlockResponse>().await {
                Ok(b) => return Ok(b.result.block.data.txs.unwrap_or_default()),
                Err(e) => last = Some(e.to_string()),
            },
            Err(e) => last = Some(e.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(BenchError::rpc(url, last.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heights_come_from_new_block_header_events() {
        let event = r#"{"jsonrpc":"2.0","id":1,"result":{"query":"tm.event='NewBlockHeader'","data":{"type":"tendermint/event/NewBlockHeader","value":{"header":{"chain_id":"c","height":"42","time":"2026-01-01T00:00:00Z"}}},"events":{}}}"#;
        assert_eq!(event_height(event), Some(42));
        assert_eq!(
            event_height(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#),
            None
        );
        assert_eq!(event_height("not json"), None);
    }
}
