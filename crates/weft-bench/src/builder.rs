//! `weft-bench builder`: a sample builder that bids every block. It
//! follows committed blocks over CometBFT's websocket (`NewBlock` events
//! carry the block hash the next bid must name), submits one bid for the
//! next height to a relay the moment a block commits, and reads each
//! following block to see whether its bid landed. What it reports is what
//! a builder cares about: how many bids landed, how fast the relay
//! answered, and why the others did not.

use std::{collections::BTreeMap, time::Instant};

use futures::StreamExt;
use serde::Serialize;
use tendermint_rpc::event::EventData;
use weft_core::{Amount, Bid, Bundle, Hash, RollupId, SignedBid, SigningKey};

use crate::{
    blocks::{brief, Connection},
    error::{BenchError, Result},
    stats::LatencySummary,
};

/// What the builder bids.
#[derive(Debug, Clone)]
pub struct BuilderOptions {
    /// A node's CometBFT RPC (`http://host:port`).
    pub node_rpc: String,
    /// The relay (`http://host:port`).
    pub relay: String,
    /// The chain id bids carry.
    pub chain_id: String,
    /// The builder's key (its account pays).
    pub key: SigningKey,
    /// The rollups each bid leads (one bundle each).
    pub rollups: Vec<RollupId>,
    /// Offered per bid.
    pub amount: Amount,
    /// Payload bytes per bundle.
    pub payload_bytes: usize,
    /// Blocks to bid on.
    pub blocks: u64,
}

/// What happened to the bids.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BuilderReport {
    /// Blocks followed (a bid was sent after each).
    pub blocks: u64,
    /// Bids the relay accepted.
    pub accepted: u64,
    /// Bids the relay refused, by its error code.
    pub refused: BTreeMap<String, u64>,
    /// Accepted bids found in their target block.
    pub landed: u64,
    /// Heights whose block carried this builder's bid.
    pub landed_heights: Vec<u64>,
    /// From the `NewBlock` event to the relay's answer.
    pub submit_latency: LatencySummary,
}

impl BuilderReport {
    /// Landed bids per accepted bid.
    pub fn landing_ratio(&self) -> f64 {
        if self.accepted == 0 {
            0.0
        } else {
            self.landed as f64 / self.accepted as f64
        }
    }
}

/// The bid this builder makes for `height` on `parent`.
pub fn bid_for(options: &BuilderOptions, height: u64, parent: Hash) -> SignedBid {
    let payload = |i: usize| {
        let mut p = format!("bid@{height}/{i}:").into_bytes();
        p.resize(options.payload_bytes.max(p.len()), b'.');
        p
    };
    Bid {
        chain_id: options.chain_id.clone(),
        target_height: height,
        parent_hash: parent,
        bundles: options
            .rollups
            .iter()
            .enumerate()
            .map(|(i, rollup_id)| Bundle {
                rollup_id: *rollup_id,
                payloads: vec![payload(i)],
            })
            .collect(),
        amount: options.amount,
        builder: options.key.public_key(),
    }
    .sign(&options.key)
}

/// Bids on `options.blocks` blocks, then one more block to see the last
/// bid land.
pub async fn run(options: &BuilderOptions) -> Result<BuilderReport> {
    let ws_url = format!(
        "{}/websocket",
        options
            .node_rpc
            .trim_end_matches('/')
            .replacen("http", "ws", 1)
    );
    let mut connection = Connection::open(&ws_url).await?;
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(|e| BenchError::io("building an HTTP client", std::io::Error::other(e)))?;
    let url = format!(
        "{}/relay/v1/builder/bids",
        options.relay.trim_end_matches('/')
    );
    let mut report = BuilderReport::default();
    let mut latencies = Vec::new();
    // The bid sent for each height, by its hash.
    let mut pending: BTreeMap<u64, Hash> = BTreeMap::new();
    while report.blocks <= options.blocks {
        let Some(item) = connection.subscription.next().await else {
            return Err(websocket(&ws_url, "the subscription ended".into()));
        };
        let event = item.map_err(|e| websocket(&ws_url, brief(&e)))?;
        let seen = Instant::now();
        let EventData::NewBlock {
            block: Some(block),
            block_id,
            ..
        } = event.data
        else {
            continue;
        };
        let height = block.header.height.value();
        if let Some(ours) = pending.remove(&height) {
            let carried = block
                .data
                .iter()
                .skip(1)
                .take_while(|i| SignedBid::is_item(i))
                .filter_map(|i| SignedBid::decode_item(i).ok())
                .any(|b| b.hash() == ours);
            if carried {
                report.landed += 1;
                report.landed_heights.push(height);
            }
        }
        pending.retain(|h, _| *h > height);
        if report.blocks == options.blocks {
            break;
        }
        report.blocks += 1;
        let parent = match block_id.hash {
            tendermint::Hash::Sha256(h) => Hash(h),
            tendermint::Hash::None => continue,
        };
        let bid = bid_for(options, height + 1, parent);
        // The relay may see the new block a moment after this builder
        // does (both follow a websocket): `unknown_parent` is retried a
        // few times, 20 ms apart, as a real builder would.
        let mut outcome = submit(&http, &url, &bid).await;
        for _ in 0..5 {
            if !matches!(&outcome, Err(code) if code == "unknown_parent") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            outcome = submit(&http, &url, &bid).await;
        }
        latencies.push(Some(seen.elapsed().as_secs_f64()));
        match outcome {
            Ok(()) => {
                report.accepted += 1;
                pending.insert(height + 1, bid.hash());
            }
            Err(code) => *report.refused.entry(code).or_default() += 1,
        }
    }
    report.submit_latency = LatencySummary::from_seconds(latencies);
    Ok(report)
}

/// Posts one bid; the relay's error code when refused.
async fn submit(
    http: &reqwest::Client,
    url: &str,
    bid: &SignedBid,
) -> std::result::Result<(), String> {
    match http
        .post(url)
        .header("content-type", "application/octet-stream")
        .body(bid.encode())
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(r
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_string))
            .unwrap_or_else(|| "unknown".into())),
        Err(e) => Err(format!("unreachable: {}", e.without_url())),
    }
}

fn websocket(url: &str, message: String) -> BenchError {
    BenchError::Websocket {
        url: url.to_string(),
        message,
    }
}

/// The report as a short markdown table.
pub fn markdown(r: &BuilderReport) -> String {
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    format!(
        "| blocks | accepted | landed | landing ratio | submit p50 ms | submit p99 ms | refused |\n\
         |---|---|---|---|---|---|---|\n\
         | {} | {} | {} | {:.2} | {} | {} | {:?} |\n",
        r.blocks,
        r.accepted,
        r.landed,
        r.landing_ratio(),
        ms(r.submit_latency.p50_ms),
        ms(r.submit_latency.p99_ms),
        r.refused
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bids_name_their_height_and_parent_and_verify() {
        let options = BuilderOptions {
            node_rpc: "http://127.0.0.1:1".into(),
            relay: "http://127.0.0.1:2".into(),
            chain_id: "weft-test".into(),
            key: SigningKey::from_seed("sample-builder"),
            rollups: vec![RollupId::from_name("a"), RollupId::from_name("b")],
            amount: 7_000,
            payload_bytes: 64,
            blocks: 3,
        };
        let parent = weft_core::sha256(b"block 9");
        let bid = bid_for(&options, 10, parent);
        bid.check_structure().unwrap();
        bid.verify_signature().unwrap();
        assert_eq!((bid.bid.target_height, bid.bid.parent_hash), (10, parent));
        assert_eq!(bid.bid.rollups().len(), 2);
        assert!(bid.bid.bundles.iter().all(|b| b.payloads[0].len() == 64));
        // Another height is another bid (never a replay of this one).
        assert_ne!(bid_for(&options, 11, parent).hash(), bid.hash());
    }
}
