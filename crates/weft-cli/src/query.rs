//! `weft query`: reading accounts and verified rollup batches from a node
//! through ABCI queries.

use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::{json, Value};
use weft_core::{Address, RollupBatchProof, RollupId};

use crate::{args::NodeArgs, output::Output};

/// Queries.
#[derive(Debug, Subcommand)]
pub enum QueryCommand {
    /// An account's balance, nonce and pending nonce (the nonce after its
    /// transactions still in the node's mempool; the next transaction's).
    Account {
        /// The address (weft1…).
        address: Address,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// A rollup's batch at a height, verified against the block's data_hash.
    Batch {
        /// Rollup name (hashed to its id) or 64-hex rollup id.
        #[arg(long, value_name = "NAME|HEX")]
        rollup: String,
        /// Block height.
        #[arg(long, value_name = "H")]
        height: u64,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// A transaction's status by hash: pending, parked, included (height,
    /// index, code), rejected or evicted (with the reason), or unknown.
    Tx {
        /// The transaction hash (64 hex characters, as `weft tx` prints it).
        hash: String,
        #[command(flatten)]
        node: NodeArgs,
    },
}

/// Runs a `weft query` command.
pub async fn run(command: QueryCommand, out: Output) -> Result<()> {
    match command {
        QueryCommand::Tx { hash, node } => {
            let hash = weft_core::Hash::from_hex(hash.trim())
                .with_context(|| format!("`{hash}` is not a 64-hex transaction hash"))?;
            let status: Value = node
                .client()?
                .abci_query_json(&format!("tx/{}", hash.to_hex()))
                .await?;
            out.emit(&json!({ "hash": hash, "status": status }), || {
                let mut text = format!(
                    "hash:   {}\nstatus: {}",
                    hash.to_hex().to_uppercase(),
                    status["status"].as_str().unwrap_or("?")
                );
                if let Some(fields) = status.as_object() {
                    for (k, v) in fields.iter().filter(|(k, _)| k.as_str() != "status") {
                        text.push_str(&format!(
                            "\n{k}: {}",
                            v.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string())
                        ));
                    }
                }
                text
            });
        }
        QueryCommand::Account { address, node } => {
            let account = node.client()?.account(&address).await?;
            out.emit(
                &json!({
                    "address": account.address,
                    "balance": account.balance.to_string(),
                    "nonce": account.nonce,
                    // null from a node that does not report it.
                    "pending_nonce": account.pending_nonce,
                    "height": account.height,
                }),
                || {
                    let pending = account
                        .pending_nonce
                        .map_or_else(|| "(not reported by this node)".to_string(), |n| n.to_string());
                    format!(
                        "address:       {}\nbalance:       {}\nnonce:         {}\npending nonce: {pending}\nheight:        {}",
                        account.address, account.balance, account.nonce, account.height
                    )
                },
            );
        }
        QueryCommand::Batch {
            rollup,
            height,
            node,
        } => {
            let client = node.client()?;
            let rollup_id = RollupId::from_name_or_hex(&rollup);
            let proof: RollupBatchProof = client
                .abci_query_json(&format!("batch/{}/{height}", rollup_id.to_hex()))
                .await?;
            let data_hash = client.block_data_hash(height).await?;
            proof.verify(&data_hash, &rollup_id).with_context(|| {
                format!("the node's batch for rollup {rollup_id} at height {height} does NOT verify against block data_hash {data_hash}")
            })?;
            let items: Vec<Value> = proof
                .items
                .iter()
                .map(|item| {
                    let mut v = json!({ "hex": hex::encode(item), "len": item.len() });
                    if let Ok(text) = std::str::from_utf8(item) {
                        v["text"] = json!(text);
                    }
                    v
                })
                .collect();
            out.emit(
                &json!({
                    "rollup_id": rollup_id.to_hex(),
                    "height": height,
                    "data_hash": data_hash.to_hex(),
                    "items": items,
                    "verified": true,
                }),
                || {
                    let mut text = format!(
                        "rollup:    {rollup_id}\nheight:    {height}\ndata_hash: {data_hash}\nitems:     {}\n",
                        proof.items.len()
                    );
                    for (i, item) in proof.items.iter().enumerate() {
                        text.push_str(&format!("  [{i}] {} bytes: {}\n", item.len(), hex::encode(item)));
                        if let Ok(s) = std::str::from_utf8(item) {
                            text.push_str(&format!("       text: {s:?}\n"));
                        }
                    }
                    text.push_str("verified: true");
                    text
                },
            );
        }
    }
    Ok(())
}
