//! `weft bid`: builders sign bids for the top of rollup batches and submit,
//! cancel or look them up at a relay (`weft-relay`). The parent hash comes
//! from the node's CometBFT RPC; the relay is spoken to over HTTP.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use weft_core::{
    bid::{RelayRequest, RelayRequestKind},
    Amount, Bid, Bundle, RollupId,
};
use weft_testnet::DEV_KEY_WARNING;

use crate::{
    args::{KeyArgs, NodeArgs},
    output::Output,
};

/// The header a signed relay request travels in.
const REQUEST_HEADER: &str = "weft-relay-request";

/// Bids.
#[derive(Debug, Subcommand)]
pub enum BidCommand {
    /// Signs a bid and submits it to the relay. Targets the next height
    /// unless `--height` is given; amount 0 cancels the key's bid there.
    Submit {
        /// A bundle payload as ROLLUP=HEX or ROLLUP=@FILE (ROLLUP is a name
        /// or a 64-hex id). Repeat it: payloads of one rollup form its
        /// bundle in the order given; several rollups make one atomic bid.
        #[arg(long = "payload", value_name = "ROLLUP=HEX|@FILE", required = true)]
        payloads: Vec<String>,
        /// What the builder pays if the bid wins and is included.
        #[arg(long, value_name = "N")]
        amount: Amount,
        /// Target height [default: the node's latest height + 1].
        #[arg(long, value_name = "H")]
        height: Option<u64>,
        #[command(flatten)]
        options: BidOptions,
    },
    /// Cancels the key's bid at a height with a signed request.
    Cancel {
        /// Target height [default: the node's latest height + 1].
        #[arg(long, value_name = "H")]
        height: Option<u64>,
        #[command(flatten)]
        options: BidOptions,
    },
    /// Shows a height's auction (top bid per rollup) and the key's bids
    /// the relay received for it.
    Status {
        /// Target height [default: the node's latest height + 1].
        #[arg(long, value_name = "H")]
        height: Option<u64>,
        #[command(flatten)]
        options: BidOptions,
    },
}

/// Options every bid command takes.
#[derive(Debug, Args)]
pub struct BidOptions {
    /// The relay's HTTP API [default: the `--devnet` file's relay, else
    /// http://127.0.0.1:18550]
    #[arg(long, env = "WEFT_RELAY", value_name = "URL")]
    relay: Option<String>,
    #[command(flatten)]
    node: NodeArgs,
    #[command(flatten)]
    key: KeyArgs,
}

/// Groups `ROLLUP=PAYLOAD` arguments into bundles, rollups in first-seen
/// order, payloads in the order given.
fn bundles(args: &[String]) -> Result<Vec<Bundle>> {
    let mut out: Vec<Bundle> = Vec::new();
    for arg in args {
        let (rollup, payload) = arg
            .split_once('=')
            .with_context(|| format!("--payload {arg:?} must be ROLLUP=HEX or ROLLUP=@FILE"))?;
        let bytes = match payload.strip_prefix('@') {
            Some(path) => {
                std::fs::read(path).with_context(|| format!("reading payload file {path}"))?
            }
            None => hex::decode(payload.strip_prefix("0x").unwrap_or(payload))
                .with_context(|| format!("payload of {rollup} must be hex (or @FILE)"))?,
        };
        if bytes.is_empty() {
            bail!("an empty payload for {rollup}: payloads must be at least one byte");
        }
        let rollup_id = RollupId::from_name_or_hex(rollup);
        match out.iter_mut().find(|b| b.rollup_id == rollup_id) {
            Some(b) => b.payloads.push(bytes),
            None => out.push(Bundle {
                rollup_id,
                payloads: vec![bytes],
            }),
        }
    }
    Ok(out)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The relay's answer: the JSON body, and whether it was a success.
async fn answer(response: reqwest::Response) -> Result<(bool, Value)> {
    let ok = response.status().is_success();
    let status = response.status();
    let text = response
        .text()
        .await
        .context("reading the relay's answer")?;
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|_| json!({ "code": status.as_u16(), "message": text }));
    Ok((ok, value))
}

/// Runs a `weft bid` command; `Ok(false)` when the relay refused.
pub async fn run(command: BidCommand, out: Output) -> Result<bool> {
    let options = match &command {
        BidCommand::Submit { options, .. }
        | BidCommand::Cancel { options, .. }
        | BidCommand::Status { options, .. } => options,
    };
    let height_arg = match &command {
        BidCommand::Submit { height, .. }
        | BidCommand::Cancel { height, .. }
        | BidCommand::Status { height, .. } => *height,
    };
    let key = options.key.signing_key(&options.node)?;
    if options.key.uses_devnet_dev_key(&options.node) {
        out.note(format!(
            "using the devnet's developer key {}. {DEV_KEY_WARNING}",
            key.address()
        ));
    }
    let node = options.node.client()?;
    let status = node.status().await?;
    let chain_id = status.node_info.network.to_string();
    let latest = status.sync_info.latest_block_height.value();
    let height = height_arg.unwrap_or(latest + 1);
    let relay = match (&options.relay, options.node.devnet_file()?) {
        (Some(relay), _) => relay.clone(),
        (None, Some(devnet)) if devnet.relay.is_some() => devnet.relay.unwrap_or_default(),
        (None, _) => "http://127.0.0.1:18550".to_string(),
    };
    let relay = relay.trim_end_matches('/');
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .context("building an HTTP client")?;
    let (ok, value) = match &command {
        BidCommand::Submit {
            payloads, amount, ..
        } => {
            if height == 0 {
                bail!("height 0 has no parent; bid for height 1 or later");
            }
            let parent_hash = if height == latest + 1 {
                match status.sync_info.latest_block_hash {
                    tendermint::Hash::Sha256(b) => weft_core::Hash(b),
                    tendermint::Hash::None => bail!("the node has no committed block yet"),
                }
            } else {
                node.block_hash(height - 1)
                    .await
                    .with_context(|| format!("reading the hash of block {}", height - 1))?
            };
            let signed = Bid {
                chain_id: chain_id.clone(),
                target_height: height,
                parent_hash,
                bundles: bundles(payloads)?,
                amount: *amount,
                builder: key.public_key(),
            }
            .sign(&key);
            signed
                .check_structure()
                .context("the bid breaks a protocol limit")?;
            let response = http
                .post(format!("{relay}/relay/v1/builder/bids"))
                .header("content-type", "application/octet-stream")
                .body(signed.encode())
                .send()
                .await
                .with_context(|| format!("submitting to the relay at {relay}"))?;
            answer(response).await?
        }
        BidCommand::Cancel { .. } => {
            let request = RelayRequest {
                chain_id: chain_id.clone(),
                kind: RelayRequestKind::CancelBid,
                height,
                timestamp_ms: now_ms(),
                requester: key.address(),
                key: key.public_key(),
            }
            .sign(&key);
            let response = http
                .delete(format!("{relay}/relay/v1/builder/bids/{height}"))
                .header(REQUEST_HEADER, hex::encode(request.encode()))
                .send()
                .await
                .with_context(|| format!("cancelling at the relay at {relay}"))?;
            answer(response).await?
        }
        BidCommand::Status { .. } => {
            let (auction_ok, auction) = answer(
                http.get(format!("{relay}/relay/v1/auctions/{height}"))
                    .send()
                    .await
                    .with_context(|| format!("asking the relay at {relay}"))?,
            )
            .await?;
            let (_, mine) = answer(
                http.get(format!(
                    "{relay}/relay/v1/data/bids_received?height={height}&builder={}",
                    key.address()
                ))
                .send()
                .await
                .with_context(|| format!("asking the relay at {relay}"))?,
            )
            .await?;
            (
                auction_ok,
                json!({ "height": height, "auction": auction, "my_bids": mine["traces"] }),
            )
        }
    };
    out.emit(&value, || {
        if ok {
            serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string())
        } else {
            format!(
                "the relay refused: {} ({})",
                value["message"].as_str().unwrap_or("?"),
                value["code"]
            )
        }
    });
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_group_into_bundles_in_order() {
        let b = bundles(&["a=01".into(), "b=0x02".into(), "a=03".into()]).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].rollup_id, RollupId::from_name("a"));
        assert_eq!(b[0].payloads, vec![vec![1], vec![3]]);
        assert_eq!(b[1].payloads, vec![vec![2]]);
        assert!(bundles(&["nopayload".into()]).is_err());
        assert!(bundles(&["a=".into()]).is_err());
        assert!(bundles(&["a=zz".into()]).is_err());
    }
}
