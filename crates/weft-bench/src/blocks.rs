//! Following committed blocks on one node through `tendermint-rpc`: a
//! websocket subscription to CometBFT's `NewBlock` events gives the moment
//! each height commits (on the local monotonic clock) and its transactions,
//! which are matched by hash to the step's transactions.
//!
//! Events are hints (PITFALLS 10: CometBFT cancels a subscription whose
//! buffer fills, and connections drop): whenever a height arrives after a
//! gap, or no event arrives for [`QUIET`], the missing heights are fetched
//! over HTTP (`block`) and stamped with the time the gap was noticed (an
//! upper bound). A cancelled or dropped subscription is replaced by a new
//! connection.
//!
//! `NewBlock` rather than `NewBlockHeader`: tendermint-rpc 0.40 only decodes
//! `NewBlock` and `Tx` events and silently drops the others, and the
//! `NewBlock` event already carries the transactions the follower needs.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use futures::StreamExt;
use sha2::{Digest, Sha256};
use tendermint::block::Height;
use tendermint_rpc::{
    event::{Event, EventData},
    query::EventType,
    Client, HttpClient, Subscription, SubscriptionClient, WebSocketClient,
};
use tokio::{sync::mpsc, task::JoinHandle};

use crate::{BenchError, Result};

/// With no event for this long, the follower asks the node for its latest
/// height over HTTP (in case the subscription died silently).
pub const QUIET: Duration = Duration::from_secs(3);

/// A committed block as the follower saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockSeen {
    /// Height.
    pub height: u64,
    /// When its `NewBlock` event arrived (or, for a height whose event was
    /// missed, when the gap was noticed: a later event or a quiet poll).
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
    /// Heights fetched over HTTP because their event was missed.
    backfilled: usize,
    last_error: Option<String>,
}

/// Follows one node's committed blocks until dropped.
#[derive(Debug)]
pub struct BlockFollower {
    shared: Arc<Mutex<Shared>>,
    tasks: Vec<JoinHandle<()>>,
}

impl BlockFollower {
    /// Subscribes on the node at `rpc_url` (`http://host:port`) and waits
    /// until the subscription is confirmed.
    pub async fn start(rpc_url: &str) -> Result<Self> {
        let rpc_url = rpc_url.trim_end_matches('/');
        let ws_url = format!("{}/websocket", rpc_url.replacen("http", "ws", 1));
        let url = rpc_url
            .parse()
            .map_err(|e| BenchError::rpc(rpc_url, brief(&e)))?;
        let http = HttpClient::builder(url)
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| BenchError::rpc(rpc_url, brief(&e)))?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (hints_tx, hints_rx) = mpsc::unbounded_channel();
        let connection = Connection::open(&ws_url).await?;
        let reader = tokio::spawn(read_events(ws_url, connection, hints_tx, shared.clone()));
        let recorder = tokio::spawn(record_blocks(http, hints_rx, shared.clone()));
        Ok(BlockFollower {
            shared,
            tasks: vec![reader, recorder],
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

    /// How many heights were fetched over HTTP because their event was
    /// missed.
    pub fn backfilled(&self) -> usize {
        self.lock().backfilled
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

/// A committed height as an event (with its transactions) or a quiet poll
/// (height only) reported it.
#[derive(Debug)]
struct Hint {
    height: u64,
    at: Instant,
    txs: Option<Vec<Vec<u8>>>,
}

/// One websocket connection with its `NewBlock` subscription.
pub(crate) struct Connection {
    /// Kept so the driver keeps running; dropped with the connection.
    _client: WebSocketClient,
    driver: JoinHandle<()>,
    pub(crate) subscription: Subscription,
}

impl Connection {
    /// Connects, spawns the driver and subscribes (waiting for the ack).
    pub(crate) async fn open(ws_url: &str) -> Result<Self> {
        let err = |m: String| BenchError::Websocket {
            url: ws_url.to_string(),
            message: m,
        };
        let (client, driver) = WebSocketClient::new(ws_url)
            .await
            .map_err(|e| err(brief(&e)))?;
        let driver = tokio::spawn(async move {
            if let Err(e) = driver.run().await {
                tracing::debug!(
                    error = brief(&e),
                    "block follower: websocket driver stopped"
                );
            }
        });
        let subscribe = client.subscribe(EventType::NewBlock.into());
        let subscription = match tokio::time::timeout(Duration::from_secs(10), subscribe).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                driver.abort();
                return Err(err(format!("subscribe refused: {}", brief(&e))));
            }
            Err(_) => {
                driver.abort();
                return Err(err("no answer to subscribe".into()));
            }
        };
        Ok(Connection {
            _client: client,
            driver,
            subscription,
        })
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Dropping the client alone leaves the driver pinging forever.
        self.driver.abort();
    }
}

/// The height and transactions of a `NewBlock` event.
fn new_block(event: Event) -> Option<(u64, Vec<Vec<u8>>)> {
    match event.data {
        EventData::NewBlock {
            block: Some(block), ..
        }
        | EventData::LegacyNewBlock {
            block: Some(block), ..
        } => Some((block.header.height.value(), block.data)),
        _ => None,
    }
}

/// Reads events, forwarding each block as a [`Hint`] stamped on arrival;
/// reconnects and resubscribes when the subscription ends or is cancelled.
async fn read_events(
    ws_url: String,
    mut connection: Connection,
    hints: mpsc::UnboundedSender<Hint>,
    shared: Arc<Mutex<Shared>>,
) {
    loop {
        while let Some(item) = connection.subscription.next().await {
            match item {
                Ok(event) => {
                    let at = Instant::now();
                    if let Some((height, txs)) = new_block(event) {
                        tracing::debug!(height, txs = txs.len(), "NewBlock event received");
                        let hint = Hint {
                            height,
                            at,
                            txs: Some(txs),
                        };
                        if hints.send(hint).is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    // E.g. CometBFT cancelled a slow subscriber: the
                    // connection stays open but no more events come.
                    record_error(&shared, format!("subscription: {}", brief(&e)));
                    break;
                }
            }
        }
        // Missed heights are filled in by the recorder when the next event
        // arrives (or on a quiet poll).
        drop(connection);
        connection = loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            match Connection::open(&ws_url).await {
                Ok(c) => break c,
                Err(e) => record_error(&shared, e.to_string()),
            }
        };
    }
}

/// A tendermint-rpc error on one line, without the location and backtrace
/// its `Display` appends (when `RUST_BACKTRACE` is set).
pub(crate) fn brief(e: &tendermint_rpc::Error) -> String {
    let full = e.to_string();
    let text = full.split("\n\nLocation:").next().unwrap_or_default();
    let text = text
        .split("\n\nStack backtrace:")
        .next()
        .unwrap_or_default();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn record_error(shared: &Arc<Mutex<Shared>>, message: String) {
    tracing::warn!(%message, "block follower");
    shared.lock().unwrap_or_else(|e| e.into_inner()).last_error = Some(message);
}

/// Which heights a hint for `height` records, given the last one recorded
/// (0: none yet, so the first hint starts the record).
fn heights_to_record(last: u64, height: u64) -> std::ops::RangeInclusive<u64> {
    let first = if last == 0 { height } else { last + 1 };
    first..=height
}

/// Records each hinted height, fetching over HTTP any skipped before it
/// (and polling the node's height when events go quiet), and matches
/// transactions to the step's.
async fn record_blocks(
    http: HttpClient,
    mut hints: mpsc::UnboundedReceiver<Hint>,
    shared: Arc<Mutex<Shared>>,
) {
    loop {
        let hint = match tokio::time::timeout(QUIET, hints.recv()).await {
            Ok(Some(hint)) => hint,
            Ok(None) => return,
            Err(_) => match http.status().await {
                Ok(status) => Hint {
                    height: status.sync_info.latest_block_height.value(),
                    at: Instant::now(),
                    txs: None,
                },
                Err(e) => {
                    record_error(&shared, format!("status: {}", brief(&e)));
                    continue;
                }
            },
        };
        let last = shared.lock().unwrap_or_else(|e| e.into_inner()).last_height;
        let mut hinted = hint.txs;
        for h in heights_to_record(last, hint.height) {
            let from_event = if h == hint.height {
                hinted.take()
            } else {
                None
            };
            let txs = match from_event {
                Some(txs) => txs,
                None => {
                    let fetched = fetch_txs(&http, h).await;
                    shared.lock().unwrap_or_else(|e| e.into_inner()).backfilled += 1;
                    fetched.unwrap_or_else(|e| {
                        record_error(&shared, e.to_string());
                        Vec::new()
                    })
                }
            };
            record(&shared, h, hint.at, &txs);
        }
    }
}

/// Records height `h`, seen at `at` with `txs`.
fn record(shared: &Arc<Mutex<Shared>>, h: u64, at: Instant, txs: &[Vec<u8>]) {
    let bytes = txs.iter().map(Vec::len).sum();
    let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
    let mut step_txs = 0;
    if let Some(step) = s.step.as_mut() {
        for tx in txs {
            let hash: [u8; 32] = Sha256::digest(tx).into();
            if let Some(&i) = step.by_hash.get(&hash) {
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
        txs: txs.len(),
        bytes,
        step_txs,
    });
    s.last_height = s.last_height.max(h);
}

async fn fetch_txs(http: &HttpClient, height: u64) -> Result<Vec<Vec<u8>>> {
    let at = Height::try_from(height).map_err(|e| BenchError::rpc("block", e))?;
    let mut last = None;
    // A just-announced block is occasionally not yet readable: retry briefly.
    for _ in 0..5 {
        match http.block(at).await {
            Ok(r) => return Ok(r.block.data),
            Err(e) => last = Some(brief(&e)),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(BenchError::rpc(
        format!("block?height={height}"),
        last.unwrap_or_default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tendermint_rpc::{event::v0_38::DeEvent, Response};

    /// A `NewBlock` event as CometBFT v0.38.25 (kvstore) sent it: height
    /// 44, two transactions.
    const NEW_BLOCK: &str = include_str!("../testdata/new_block_event.json");

    #[test]
    fn new_block_events_give_height_and_transactions() {
        // Decoded the way the websocket driver decodes events.
        let event: Event = DeEvent::from_string(NEW_BLOCK).expect("decodes").into();
        let (height, txs) = new_block(event).expect("a NewBlock event");
        assert_eq!(height, 44);
        assert_eq!(txs, vec![b"k36=v36".to_vec(), b"k37=v37".to_vec()]);
    }

    #[test]
    fn other_events_give_nothing() {
        let event = Event {
            query: "tm.event = 'Tx'".into(),
            data: EventData::GenericJsonEvent(serde_json::json!({})),
            events: None,
        };
        assert_eq!(new_block(event), None);
    }

    #[test]
    fn errors_are_one_line() {
        let e = DeEvent::from_string("{}").unwrap_err();
        let text = brief(&e);
        assert!(!text.is_empty() && !text.contains('\n'), "{text}");
        assert!(!text.contains("Stack backtrace"), "{text}");
    }

    #[test]
    fn gaps_are_backfilled_and_repeats_ignored() {
        assert_eq!(heights_to_record(0, 7), 7..=7);
        assert_eq!(heights_to_record(7, 8), 8..=8);
        assert_eq!(
            heights_to_record(8, 11).collect::<Vec<_>>(),
            vec![9, 10, 11]
        );
        assert!(heights_to_record(11, 11).is_empty());
        assert!(heights_to_record(11, 9).is_empty());
    }

    #[test]
    fn records_sizes_and_step_inclusions() {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let mine = b"mine".to_vec();
        let hash: [u8; 32] = Sha256::digest(&mine).into();
        shared.lock().unwrap().step = Some(StepInclusions {
            by_hash: HashMap::from([(hash, 0)]),
            included_at: vec![None],
            count: 0,
        });
        let at = Instant::now();
        record(&shared, 5, at, &[b"other".to_vec(), mine.clone()]);
        record(&shared, 6, at, &[mine]);
        let s = shared.lock().unwrap();
        assert_eq!(s.last_height, 6);
        assert_eq!(
            s.blocks[0],
            BlockSeen {
                height: 5,
                at,
                txs: 2,
                bytes: 9,
                step_txs: 1
            }
        );
        // Counted once, at the first height it appeared.
        assert_eq!(s.blocks[1].step_txs, 0);
        let step = s.step.as_ref().unwrap();
        assert_eq!((step.count, step.included_at[0]), (1, Some((at, 5))));
    }
}
