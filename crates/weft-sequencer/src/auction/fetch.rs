//! The proposer side of the auction: as soon as a height commits, ask
//! every configured relay for the next height's winners with a request
//! signed by this validator's relay key, and keep refreshing until the
//! height moves on. What arrives goes into [`Prefetched`], which
//! PrepareProposal reads without waiting; a relay that is down, slow or
//! wrong only means fewer bids.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use serde::Deserialize;
use weft_core::{Address, RelayRequest, RelayRequestKind, SignedBid, SigningKey};

use crate::proposal::Prefetched;

/// The header a relay reads a signed request from.
pub const REQUEST_HEADER: &str = "weft-relay-request";

/// How this validator reaches its relays.
#[derive(Clone)]
pub struct RelayClientConfig {
    /// Relay base URLs (`http://host:port`).
    pub relays: Vec<String>,
    /// The validator's operator address (who asks).
    pub operator: Address,
    /// The relay key registered in the validator's staking record.
    pub key: Arc<SigningKey>,
    /// Longest one fetch may take; a slower relay is skipped for that
    /// round.
    pub deadline: Duration,
    /// Pause between refreshes of the same height.
    pub refresh: Duration,
}

/// The winners endpoint's answer, as far as the proposer reads it.
#[derive(Debug, Deserialize)]
struct Winners {
    height: u64,
    bids: Vec<WinningBid>,
}

#[derive(Debug, Deserialize)]
struct WinningBid {
    signed_bid: String,
}

/// Why one fetch gave nothing.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No answer in time, or an HTTP error.
    #[error("{relay}: {message}")]
    Unreachable {
        /// The relay.
        relay: String,
        /// What happened.
        message: String,
    },
    /// An answer that does not parse, or for another height.
    #[error("{relay}: unexpected answer: {message}")]
    Malformed {
        /// The relay.
        relay: String,
        /// What was wrong.
        message: String,
    },
}

/// Merges the relays' winners into one proposal order: highest amount
/// first, ties by bid hash (deterministic whatever the arrival order),
/// skipping duplicates and bids that share a rollup with one taken before.
/// PrepareProposal re-checks every bid against state anyway.
pub fn merge(mut bids: Vec<SignedBid>) -> Vec<SignedBid> {
    bids.sort_by(|a, b| {
        b.bid
            .amount
            .cmp(&a.bid.amount)
            .then_with(|| a.hash().cmp(&b.hash()))
    });
    let mut seen = BTreeSet::new();
    let mut rollups = BTreeSet::new();
    bids.into_iter()
        .filter(|bid| {
            if !seen.insert(bid.hash()) {
                return false;
            }
            let covered = bid.bid.rollups();
            if covered.iter().any(|r| rollups.contains(r)) {
                return false;
            }
            rollups.extend(covered);
            true
        })
        .collect()
}

/// Asks relays for winners on behalf of one validator.
pub struct RelayClient {
    config: RelayClientConfig,
    http: reqwest::Client,
}

impl RelayClient {
    /// A client of the configured relays.
    pub fn new(config: RelayClientConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(config.deadline)
            .connect_timeout(config.deadline)
            .build()?;
        Ok(RelayClient { config, http })
    }

    /// One relay's winners for `height`, under the deadline.
    pub async fn fetch_one(
        &self,
        relay: &str,
        chain_id: &str,
        height: u64,
    ) -> Result<Vec<SignedBid>, FetchError> {
        let request = RelayRequest {
            chain_id: chain_id.to_string(),
            kind: RelayRequestKind::FetchWinners,
            height,
            timestamp_ms: now_ms(),
            requester: self.config.operator,
            key: self.config.key.public_key(),
        }
        .sign(&self.config.key);
        let url = format!(
            "{}/relay/v1/validator/winners?height={height}",
            relay.trim_end_matches('/')
        );
        let unreachable = |message: String| FetchError::Unreachable {
            relay: relay.to_string(),
            message,
        };
        let malformed = |message: String| FetchError::Malformed {
            relay: relay.to_string(),
            message,
        };
        let response = self
            .http
            .get(&url)
            .header(REQUEST_HEADER, hex::encode(request.encode()))
            .send()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(unreachable(format!("HTTP {status}: {body}")));
        }
        let winners: Winners = response
            .json()
            .await
            .map_err(|e| malformed(e.to_string()))?;
        if winners.height != height {
            return Err(malformed(format!(
                "winners for height {} when {height} was asked",
                winners.height
            )));
        }
        winners
            .bids
            .iter()
            .map(|w| {
                let bytes = hex::decode(&w.signed_bid).map_err(|e| malformed(e.to_string()))?;
                SignedBid::decode(&bytes).map_err(|e| malformed(e.to_string()))
            })
            .collect()
    }

    /// Every relay's winners for `height`, asked at once, merged. Relays
    /// that fail are logged and left out; `None` when none answered.
    pub async fn fetch(&self, chain_id: &str, height: u64) -> Option<Vec<SignedBid>> {
        let answers = futures::future::join_all(
            self.config
                .relays
                .iter()
                .map(|relay| self.fetch_one(relay, chain_id, height)),
        )
        .await;
        let mut bids = Vec::new();
        let mut answered = false;
        for answer in answers {
            match answer {
                Ok(found) => {
                    answered = true;
                    metrics::counter!("weft_relay_fetches_total", "result" => "ok").increment(1);
                    bids.extend(found);
                }
                Err(e) => {
                    metrics::counter!("weft_relay_fetches_total", "result" => "failed")
                        .increment(1);
                    tracing::debug!(height, error = %e, "relay fetch failed");
                }
            }
        }
        answered.then(|| merge(bids))
    }

    /// Runs until `commits` closes: after each commit of height H, fetches
    /// H + 1's winners every `refresh` until the next commit, leaving the
    /// latest merge in `prefetched`. `chain_id` is read each time (it is
    /// known only after InitChain).
    pub async fn follow(
        self,
        chain_id: Arc<std::sync::OnceLock<String>>,
        mut commits: tokio::sync::watch::Receiver<u64>,
        prefetched: Prefetched,
    ) {
        loop {
            let committed = *commits.borrow_and_update();
            if let Some(chain_id) = chain_id.get() {
                let height = committed + 1;
                // A round where every relay failed keeps the last answer.
                if let Some(bids) = self.fetch(chain_id, height).await {
                    metrics::gauge!("weft_relay_prefetched_bids").set(bids.len() as f64);
                    prefetched.put(height, bids);
                }
            }
            tokio::select! {
                changed = commits.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = tokio::time::sleep(self.config.refresh) => {}
            }
        }
    }
}

fn now_ms() -> u64 {
    // A relay request's freshness stamp: the one wall-clock read here, and
    // it is off the consensus path.
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
