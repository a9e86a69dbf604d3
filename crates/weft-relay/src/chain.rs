//! The chain head the relay auctions against: the latest committed height
//! and its block hash, read from CometBFT (through `tendermint-rpc`) by a
//! follower task that polls with backoff, behind [`HeadSource`] so tests
//! drive it with a fake.

use std::time::Duration;

use tendermint_rpc::{Client, HttpClient};
use tokio::sync::watch;
use weft_core::Hash;

/// The latest committed block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Its height.
    pub height: u64,
    /// Its block hash (CometBFT's header hash).
    pub hash: Hash,
}

/// Why the head could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// CometBFT did not answer or answered an error.
    #[error("CometBFT RPC: {0}")]
    Rpc(String),
    /// CometBFT has no committed block yet, or no hash for it.
    #[error("no committed block yet")]
    NoBlock,
}

/// Where the head comes from.
#[async_trait::async_trait]
pub trait HeadSource: Send + Sync + 'static {
    /// The latest committed block.
    async fn latest(&self) -> Result<Head, ChainError>;
}

/// CometBFT's RPC `status`: the latest block height and hash, one cheap
/// request.
pub struct CometHead {
    client: HttpClient,
}

impl CometHead {
    /// A source reading the CometBFT RPC at `url` (`http://host:port`).
    pub fn new(url: &str) -> Result<Self, ChainError> {
        let client = HttpClient::builder(
            url.parse()
                .map_err(|e: tendermint_rpc::Error| ChainError::Rpc(e.to_string()))?,
        )
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| ChainError::Rpc(e.to_string()))?;
        Ok(CometHead { client })
    }
}

#[async_trait::async_trait]
impl HeadSource for CometHead {
    async fn latest(&self) -> Result<Head, ChainError> {
        let status = self
            .client
            .status()
            .await
            .map_err(|e| ChainError::Rpc(e.to_string()))?;
        let height = status.sync_info.latest_block_height.value();
        let hash = status.sync_info.latest_block_hash;
        match hash {
            tendermint::Hash::Sha256(bytes) if height > 0 => Ok(Head {
                height,
                hash: Hash(bytes),
            }),
            _ => Err(ChainError::NoBlock),
        }
    }
}

/// How the follower polls.
#[derive(Debug, Clone, Copy)]
pub struct FollowConfig {
    /// Between two polls while the source answers. Blocks come about once a
    /// second; a bid for the next height needs the head within a fraction
    /// of that.
    pub interval: Duration,
    /// The longest wait after repeated failures (doubling from `interval`).
    pub max_backoff: Duration,
}

impl Default for FollowConfig {
    fn default() -> Self {
        FollowConfig {
            interval: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Polls `source` forever, publishing every new head on `heads` (only ever
/// moving forward). Returns when every receiver is gone.
pub async fn follow(
    source: impl HeadSource,
    heads: watch::Sender<Option<Head>>,
    config: FollowConfig,
) {
    let mut wait = config.interval;
    loop {
        match source.latest().await {
            Ok(head) => {
                wait = config.interval;
                publish(&heads, head);
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "cannot read the chain head");
                wait = (wait * 2).min(config.max_backoff);
            }
        }
        if heads.is_closed() {
            return;
        }
        tokio::time::sleep(wait).await;
    }
}

/// Publishes `head` if it is newer than the current one (several
/// followers may feed one channel; the head never goes back).
pub fn publish(heads: &watch::Sender<Option<Head>>, head: Head) {
    heads.send_if_modified(|current| {
        let newer = current.is_none_or(|c| head.height > c.height);
        if newer {
            *current = Some(head);
            metrics::gauge!("weft_relay_head_height").set(head.height as f64);
        }
        newer
    });
}

/// The head a `NewBlock` event announces.
fn head_of(event: tendermint_rpc::event::Event) -> Option<Head> {
    match event.data {
        tendermint_rpc::event::EventData::NewBlock {
            block: Some(block),
            block_id,
            ..
        } => match block_id.hash {
            tendermint::Hash::Sha256(bytes) => Some(Head {
                height: block.header.height.value(),
                hash: Hash(bytes),
            }),
            tendermint::Hash::None => None,
        },
        _ => None,
    }
}

/// Follows CometBFT's `NewBlock` events over its websocket (`ws_url`,
/// e.g. `ws://127.0.0.1:26657/websocket`), publishing each head the
/// moment the block commits: builders bid right after a commit, and a
/// polled head would refuse them as `unknown_parent` for up to a poll
/// interval. Reconnects after `retry` when the connection fails; the
/// polling [`follow`] keeps running beside it as the fallback. Returns
/// when every receiver is gone.
pub async fn follow_events(ws_url: String, heads: watch::Sender<Option<Head>>, retry: Duration) {
    use futures::StreamExt;
    use tendermint_rpc::{query::EventType, SubscriptionClient, WebSocketClient};
    loop {
        if heads.is_closed() {
            return;
        }
        match WebSocketClient::new(ws_url.as_str()).await {
            Ok((client, driver)) => {
                let driver = tokio::spawn(driver.run());
                match client.subscribe(EventType::NewBlock.into()).await {
                    Ok(mut events) => {
                        tracing::info!(url = %ws_url, "following new blocks over the websocket");
                        while let Some(event) = events.next().await {
                            match event {
                                Ok(event) => {
                                    if let Some(head) = head_of(event) {
                                        publish(&heads, head);
                                    }
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "websocket subscription ended");
                                    break;
                                }
                            }
                            if heads.is_closed() {
                                break;
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "websocket subscribe refused"),
                }
                drop(client);
                driver.abort();
            }
            Err(e) => tracing::debug!(error = %e, url = %ws_url, "websocket not reachable"),
        }
        tokio::time::sleep(retry).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    struct Script(Arc<Mutex<Vec<Result<Head, ChainError>>>>);

    #[async_trait::async_trait]
    impl HeadSource for Script {
        async fn latest(&self) -> Result<Head, ChainError> {
            let mut s = self.0.lock().unwrap();
            if s.len() > 1 {
                s.remove(0)
            } else {
                match &s[0] {
                    Ok(h) => Ok(*h),
                    Err(_) => Err(ChainError::NoBlock),
                }
            }
        }
    }

    #[tokio::test]
    async fn the_follower_survives_errors_and_never_goes_back() {
        let h = |height| Head {
            height,
            hash: Hash([height as u8; 32]),
        };
        let script = Script(Arc::new(Mutex::new(vec![
            Err(ChainError::NoBlock),
            Ok(h(3)),
            Ok(h(2)),
            Err(ChainError::Rpc("down".into())),
            Ok(h(5)),
        ])));
        let (tx, mut rx) = watch::channel(None);
        let task = tokio::spawn(follow(
            script,
            tx,
            FollowConfig {
                interval: Duration::from_millis(1),
                max_backoff: Duration::from_millis(4),
            },
        ));
        let mut seen = Vec::new();
        while seen.last() != Some(&5) {
            rx.changed().await.unwrap();
            seen.push(rx.borrow().unwrap().height);
        }
        // Updates may coalesce, but the head only ever moves forward: the
        // stale 2 never shows.
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
        assert!(!seen.contains(&2));
        drop(rx);
        task.await.unwrap();
    }
}
