//! `weft query`: reading accounts, verified rollup batches, validators,
//! delegations and governance proposals from a node through ABCI queries.

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
    /// Every validator (candidates included) with stake, power, share and
    /// activity, and the set's Nakamoto coefficient.
    Validators {
        #[command(flatten)]
        node: NodeArgs,
    },
    /// One validator by its operator address.
    Validator {
        /// The operator address (weft1…).
        address: Address,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// An account's delegations and unbonding entries.
    Delegations {
        /// The delegator (weft1…).
        address: Address,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Governance proposals by id, a page at a time.
    Proposals {
        /// Only these: voting, passed, rejected, vetoed or no_quorum.
        #[arg(long)]
        status: Option<String>,
        /// At most this many (1 to 100) [default: 50].
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
        /// The first id wanted (a previous page's next_cursor).
        #[arg(long, value_name = "ID")]
        cursor: Option<u64>,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// One proposal with its tally (final, or so far while voting).
    Proposal {
        /// The proposal's id.
        id: u64,
        #[command(flatten)]
        node: NodeArgs,
    },
}

/// A decimal-string or number JSON field as text.
fn text(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

/// One validator row, as text.
fn validator_text(v: &Value) -> String {
    format!(
        "{}  {:<16} stake {:>14}  power {:>8}  share {:>6}  commission {:>5} bps  {}{}",
        text(&v["operator"]),
        text(&v["name"]),
        text(&v["stake"]),
        text(&v["power"]),
        format!("{}bps", text(&v["share_bps"])),
        text(&v["commission_bps"]),
        if v["active"] == true {
            "active"
        } else {
            "inactive"
        },
        if v["approved"] == true {
            ""
        } else {
            ", not approved"
        },
    )
}

/// One proposal, as text.
fn proposal_text(p: &Value) -> String {
    let kind = &p["kind"];
    let what = match kind["type"].as_str() {
        Some("admit_validator") | Some("remove_validator") => {
            format!("{} {}", text(&kind["type"]), text(&kind["operator"]))
        }
        Some("text") => format!("text {:?}", text(&kind["title"])),
        _ => kind.to_string(),
    };
    let t = &p["tally"];
    format!(
        "#{} {:<10} {}
    proposer {}  deposit {}  blocks {}..{}  votes {}
    tally yes {} no {} abstain {} no_with_veto {} of {} bonded",
        text(&p["id"]),
        text(&p["status"]),
        what,
        text(&p["proposer"]),
        text(&p["deposit"]),
        text(&p["submit_height"]),
        text(&p["end_height"]),
        text(&p["votes"]),
        text(&t["yes"]),
        text(&t["no"]),
        text(&t["abstain"]),
        text(&t["no_with_veto"]),
        text(&t["total_bonded"]),
    )
}

/// Runs a `weft query` command.
pub async fn run(command: QueryCommand, out: Output) -> Result<()> {
    match command {
        QueryCommand::Validators { node } => {
            let v: Value = node.client()?.abci_query_json("validators").await?;
            out.emit(&v, || {
                let mut t = format!(
                    "height {}  active {}  total power {}  Nakamoto coefficient {}",
                    text(&v["height"]),
                    text(&v["active_validators"]),
                    text(&v["total_power"]),
                    text(&v["nakamoto_coefficient"]),
                );
                for row in v["validators"].as_array().into_iter().flatten() {
                    t.push('\n');
                    t.push_str(&validator_text(row));
                }
                t
            });
        }
        QueryCommand::Validator { address, node } => {
            let v: Value = node
                .client()?
                .abci_query_json(&format!("validator/{address}"))
                .await?;
            out.emit(&v, || {
                format!(
                    "height {}\n{}\nconsensus key {}\nwebsite {}",
                    text(&v["height"]),
                    validator_text(&v),
                    text(&v["consensus_key"]),
                    text(&v["website"])
                )
            });
        }
        QueryCommand::Delegations { address, node } => {
            let v: Value = node
                .client()?
                .abci_query_json(&format!("delegations/{address}"))
                .await?;
            out.emit(&v, || {
                let mut t = format!("{address} at height {}", text(&v["height"]));
                for d in v["delegations"].as_array().into_iter().flatten() {
                    t.push_str(&format!(
                        "\n  bonded    {:>14} to {}",
                        text(&d["amount"]),
                        text(&d["validator"])
                    ));
                }
                for u in v["unbonding"].as_array().into_iter().flatten() {
                    t.push_str(&format!(
                        "\n  unbonding {:>14} from {} until height {}",
                        text(&u["amount"]),
                        text(&u["validator"]),
                        text(&u["completion_height"])
                    ));
                }
                t
            });
        }
        QueryCommand::Proposals {
            status,
            limit,
            cursor,
            node,
        } => {
            let mut params = Vec::new();
            if let Some(s) = status {
                params.push(format!("status={s}"));
            }
            if let Some(l) = limit {
                params.push(format!("limit={l}"));
            }
            if let Some(c) = cursor {
                params.push(format!("cursor={c}"));
            }
            let path = if params.is_empty() {
                "proposals".to_string()
            } else {
                format!("proposals?{}", params.join("&"))
            };
            let v: Value = node.client()?.abci_query_json(&path).await?;
            out.emit(&v, || {
                let list = v["proposals"].as_array().cloned().unwrap_or_default();
                let mut t = format!("height {}  {} proposal(s)", text(&v["height"]), list.len());
                for p in &list {
                    t.push('\n');
                    t.push_str(&proposal_text(p));
                }
                if !v["next_cursor"].is_null() {
                    t.push_str(&format!("\nmore: --cursor {}", text(&v["next_cursor"])));
                }
                t
            });
        }
        QueryCommand::Proposal { id, node } => {
            let v: Value = node
                .client()?
                .abci_query_json(&format!("proposal/{id}"))
                .await?;
            out.emit(&v, || {
                format!("height {}\n{}", text(&v["height"]), proposal_text(&v))
            });
        }
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
