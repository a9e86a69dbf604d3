//! The mempool's promise on a real two-validator network: under a bounded
//! flood (thousands of transactions from many accounts, some with nonce
//! gaps, some oversized, some unaffordable) every accepted transaction ends
//! `included` or `evicted` with a reason, nothing stays pending; parked
//! transactions are promoted when their gap fills and expire when it never
//! does; every block respects the rollup-data and per-account caps and
//! reaches them exactly; a multi-rollup transaction lands in both batches
//! of the same block.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use anyhow::{ensure, Context, Result};
use futures::{stream, StreamExt};
use weft_core::{
    Action, Address, ChainParams, GenesisAccount, RollupBatchProof, RollupId, SignedTransaction,
    SigningKey, Transaction, TxCode,
};
use weft_e2e::{block_txs, eventually, rollup_data_tx, tx_status, TestNetwork};

const ACCOUNTS: usize = 80;
const TXS_PER_ACCOUNT: u64 = 25;
/// Every included tx carries exactly this much rollup data, so the block
/// cap below is reachable exactly.
const DATA: usize = 80;
const BLOCK_DATA_CAP: u64 = 16_000; // = 200 txs
const PER_ACCOUNT_CAP: u32 = 8;
const TTL_SECS: u64 = 15;
/// Accounts 0..GAPPED skip nonce GAP_AT; the first FILLED of them fill it later.
const GAPPED: usize = 5;
const FILLED: usize = 3;
const GAP_AT: u64 = 10;
const POOR: usize = 10;

fn payload(tag: &str) -> Vec<u8> {
    let mut d = tag.as_bytes().to_vec();
    d.resize(DATA, b'.');
    d
}

fn data_tx(
    key: &SigningKey,
    chain: &str,
    nonce: u64,
    rollup: &str,
    tag: &str,
) -> SignedTransaction {
    rollup_data_tx(key, chain, nonce, rollup, payload(tag))
}

struct Sent {
    hash: String,
    node: usize,
    account: usize,
    nonce: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_drains_with_every_tx_final_and_caps_held_exactly() -> Result<()> {
    let poor: Vec<SigningKey> = (0..POOR).map(|_| SigningKey::generate()).collect();
    let params = ChainParams::default();
    let one_tx_fee = params.fee_for(DATA as u64).unwrap();
    let t = TestNetwork::start_with(2, ACCOUNTS, |cfg| {
        cfg.params = ChainParams {
            max_rollup_data_per_tx: 2048,
            max_rollup_data_per_block: BLOCK_DATA_CAP,
            max_txs_per_account_per_block: PER_ACCOUNT_CAP,
            ..ChainParams::default()
        };
        cfg.sequencer_args = vec!["--mempool-ttl-secs".into(), TTL_SECS.to_string()];
        // Enough for exactly one transaction each.
        cfg.extra_accounts
            .extend(poor.iter().map(|k| GenesisAccount {
                address: k.address(),
                balance: one_tx_fee,
            }));
    })
    .await?;
    let result = run(&t, &poor).await;
    t.finish(result).await
}

async fn run(t: &TestNetwork, poor: &[SigningKey]) -> Result<()> {
    let chain = t.net.chain_id().to_string();
    let start_height = t.net.height(0).await?;

    // Build the flood: every account's nonces, gapped accounts skip GAP_AT;
    // interleave accounts so nonces arrive roughly in order per account.
    let mut flood: Vec<(usize, SignedTransaction)> = Vec::new();
    for nonce in 0..TXS_PER_ACCOUNT {
        for (a, key) in t.users.iter().enumerate() {
            if a < GAPPED && nonce == GAP_AT {
                continue;
            }
            let rollup = ["alpha", "beta", "gamma"][(a + nonce as usize) % 3];
            flood.push((
                a,
                data_tx(key, &chain, nonce, rollup, &format!("a{a}n{nonce}")),
            ));
        }
    }
    // Like wallets: each account sends its own transactions in order to one
    // node (accounts alternate between the two); accounts send concurrently.
    let mut by_account: BTreeMap<usize, Vec<SignedTransaction>> = BTreeMap::new();
    for (account, tx) in flood {
        by_account.entry(account).or_default().push(tx);
    }
    let sends = stream::iter(by_account.into_iter().map(|(account, txs)| {
        let node = account % t.clients.len();
        let client = t.clients[node].clone();
        async move {
            let mut out = Vec::new();
            for tx in txs {
                let r = client.broadcast_tx_sync(&tx.encode()).await?;
                out.push((
                    r,
                    Sent {
                        hash: tx.hash().to_hex(),
                        node,
                        account,
                        nonce: tx.transaction.nonce,
                    },
                ));
            }
            anyhow::Ok(out)
        }
    }))
    .buffer_unordered(16)
    .collect::<Vec<_>>()
    .await;
    let mut accepted = Vec::new();
    for (r, sent) in sends
        .into_iter()
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
    {
        ensure!(
            r.code == 0,
            "flood tx a{} n{} refused: {} {}",
            sent.account,
            sent.nonce,
            r.code,
            r.log
        );
        accepted.push(sent);
    }

    // Oversized and unaffordable transactions are refused with their codes.
    let big = Transaction {
        chain_id: chain.clone(),
        nonce: 0,
        actions: vec![Action::SubmitRollupData {
            rollup_id: RollupId::from_name("alpha"),
            data: vec![1; 4096],
        }],
    }
    .sign(&poor[0]);
    let r = t.clients[0].broadcast_tx_sync(&big.encode()).await?;
    ensure!(
        r.code == TxCode::RollupDataTooLarge.value(),
        "oversized: {} {}",
        r.code,
        r.log
    );
    let status = tx_status(&t.clients[0], &big.hash().to_hex()).await?;
    ensure!(
        status["status"] == "rejected" && status["code"] == r.code,
        "oversized status: {status}"
    );
    for (p, key) in poor.iter().enumerate() {
        let first = data_tx(key, &chain, 0, "beta", &format!("poor{p}"));
        let r = t.clients[p % 2].broadcast_tx_sync(&first.encode()).await?;
        ensure!(r.code == 0, "a poor account can pay for one tx: {}", r.log);
        accepted.push(Sent {
            hash: first.hash().to_hex(),
            node: p % 2,
            account: usize::MAX,
            nonce: 0,
        });
        let second = data_tx(key, &chain, 1, "beta", &format!("poor{p}-again"));
        let r = t.clients[p % 2].broadcast_tx_sync(&second.encode()).await?;
        ensure!(
            r.code == TxCode::InsufficientFunds.value(),
            "unaffordable: {} {}",
            r.code,
            r.log
        );
    }

    // A transaction carrying data for two rollups at once.
    let multi_key = SigningKey::generate();
    let fund = Transaction {
        chain_id: chain.clone(),
        nonce: 0,
        actions: vec![Action::Transfer {
            to: multi_key.address(),
            amount: 1_000_000,
        }],
    }
    .sign(&t.net.dev_key().clone());
    // Submitted through the sequencer's HTTP API (JSON + base64), and
    // followed there until included.
    use base64::Engine;
    let api = t.net.nodes()[0].api_url();
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{api}/v1/tx"))
        .json(&serde_json::json!({ "tx": base64::engine::general_purpose::STANDARD.encode(fund.encode()) }))
        .send()
        .await?;
    ensure!(
        resp.status() == reqwest::StatusCode::ACCEPTED,
        "POST /v1/tx: {}",
        resp.status()
    );
    let body: serde_json::Value = resp.json().await?;
    let fund_hash = fund.hash().to_hex();
    ensure!(
        body["hash"] == fund_hash && body["status"] == "pending",
        "POST /v1/tx answer: {body}"
    );
    let resp = http
        .post(format!("{api}/v1/tx"))
        .body(fund.encode())
        .send()
        .await?;
    ensure!(
        resp.status() == reqwest::StatusCode::CONFLICT,
        "resubmission is a duplicate: {}",
        resp.status()
    );
    eventually(Duration::from_secs(60), "the funding tx", || {
        let url = format!("{api}/v1/tx/{fund_hash}");
        let http = http.clone();
        async move {
            let st: serde_json::Value = http.get(url).send().await?.json().await?;
            Ok((st["status"] == "included").then_some(()))
        }
    })
    .await?;
    let mut half = payload("multi");
    half.truncate(DATA / 2);
    let multi = Transaction {
        chain_id: chain.clone(),
        nonce: 0,
        actions: vec![
            Action::SubmitRollupData {
                rollup_id: RollupId::from_name("delta"),
                data: half.clone(),
            },
            Action::SubmitRollupData {
                rollup_id: RollupId::from_name("epsilon"),
                data: half.clone(),
            },
        ],
    }
    .sign(&multi_key);
    // Node 0 is where the funding was seen committed (node 1 may lag a block).
    let r = t.clients[0].broadcast_tx_sync(&multi.encode()).await?;
    ensure!(r.code == 0, "multi-rollup tx refused: {} {}", r.code, r.log);
    accepted.push(Sent {
        hash: multi.hash().to_hex(),
        node: 0,
        account: usize::MAX,
        nonce: 0,
    });

    // Parked txs of the gapped accounts are visible as such; fill some gaps.
    let parked_probe = accepted
        .iter()
        .find(|s| s.account == 0 && s.nonce == GAP_AT + 1)
        .context("probe")?;
    let s = tx_status(&t.clients[parked_probe.node], &parked_probe.hash).await?;
    ensure!(
        s["status"] == "parked" && s["waiting_for_nonce"] == GAP_AT,
        "gapped tx is parked: {s}"
    );
    for (a, key) in t.users.iter().enumerate().take(FILLED) {
        let fill = data_tx(key, &chain, GAP_AT, "alpha", &format!("a{a}n{GAP_AT}"));
        let r = t.clients[a % 2].broadcast_tx_sync(&fill.encode()).await?;
        ensure!(r.code == 0, "gap fill refused: {}", r.log);
        accepted.push(Sent {
            hash: fill.hash().to_hex(),
            node: a % 2,
            account: a,
            nonce: GAP_AT,
        });
    }

    // Drain: every accepted tx reaches a final status; none stays pending.
    let mut finals: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(TTL_SECS * 4 + 60);
    while finals.len() < accepted.len() {
        ensure!(
            std::time::Instant::now() < deadline,
            "{} of {} txs still not final",
            accepted.len() - finals.len(),
            accepted.len()
        );
        let open: Vec<&Sent> = accepted
            .iter()
            .filter(|s| !finals.contains_key(&s.hash))
            .collect();
        for s in open {
            let st = tx_status(&t.clients[s.node], &s.hash).await?;
            match st["status"].as_str() {
                Some("included") | Some("evicted") => {
                    finals.insert(s.hash.clone(), st);
                }
                Some("pending") | Some("parked") => {}
                other => anyhow::bail!("accepted tx {} has status {other:?}: {st}", s.hash),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for s in &accepted {
        let st = &finals[&s.hash];
        let never_filled = s.account >= FILLED && s.account < GAPPED && s.nonce > GAP_AT;
        if never_filled {
            ensure!(
                st["status"] == "evicted",
                "a{} n{}: parked behind a gap that never filled must expire: {st}",
                s.account,
                s.nonce
            );
            let reason = st["reason"].as_str().unwrap_or_default();
            ensure!(reason.starts_with("expired"), "eviction reason: {reason}");
        } else {
            ensure!(
                st["status"] == "included" && st["code"] == 0,
                "a{} n{} should be included: {st}",
                s.account,
                s.nonce
            );
        }
    }
    // Every node's mempool drains too. Statuses above come from the node
    // that accepted each transaction; a parked one gossiped to another node
    // started its TTL there a little later, so that node may hold it up to
    // a TTL longer, never more.
    for node in t.net.nodes() {
        let drained = eventually(
            Duration::from_secs(TTL_SECS + 10),
            "every mempool to drain",
            || async {
                let health: serde_json::Value = reqwest::get(format!("{}/health", node.api_url()))
                    .await?
                    .json()
                    .await?;
                Ok((health["mempool_txs"] == 0).then_some(()))
            },
        )
        .await;
        drained.with_context(|| format!("{} mempool not drained", node.name))?;
    }

    // Every block holds the caps; the flood reached both exactly.
    let end_height = t.net.height(0).await?;
    let rpc = t.net.nodes()[0].rpc_url();
    let (mut max_data, mut max_per_account) = (0u64, 0u32);
    let mut multi_heights = BTreeSet::new();
    for h in start_height..=end_height {
        let txs = block_txs(&rpc, h).await?;
        let mut data = 0u64;
        let mut per_account: BTreeMap<Address, u32> = BTreeMap::new();
        // Item 0 is the commitments; item 1 may be the listed commit
        // (inclusion lists are on in test networks).
        for raw in txs
            .iter()
            .skip(1)
            .filter(|t| !weft_core::inclusion::ListedCommit::is_item(t))
        {
            let tx = SignedTransaction::decode(raw)?;
            data += tx.transaction.rollup_data_bytes();
            *per_account.entry(tx.signer()).or_default() += 1;
            if tx.hash() == multi.hash() {
                multi_heights.insert(h);
            }
        }
        ensure!(
            data <= BLOCK_DATA_CAP,
            "block {h} carries {data} bytes of rollup data"
        );
        let top = per_account.values().copied().max().unwrap_or(0);
        ensure!(
            top <= PER_ACCOUNT_CAP,
            "block {h} has {top} txs from one account"
        );
        max_data = max_data.max(data);
        max_per_account = max_per_account.max(top);
    }
    ensure!(
        max_data == BLOCK_DATA_CAP,
        "the flood should fill a block's rollup data exactly (max seen {max_data})"
    );
    ensure!(
        max_per_account == PER_ACCOUNT_CAP,
        "the flood should hit the per-account cap (max seen {max_per_account})"
    );

    // The multi-rollup tx is in both rollups' batches, in the same block.
    ensure!(
        multi_heights.len() == 1,
        "multi-rollup tx heights: {multi_heights:?}"
    );
    let h = *multi_heights.iter().next().unwrap_or(&0);
    for rollup in ["delta", "epsilon"] {
        let id = RollupId::from_name(rollup);
        let proof: RollupBatchProof = t.clients[0]
            .abci_query_json(&format!("batch/{}/{h}", id.to_hex()))
            .await?;
        ensure!(
            proof.items == vec![half.clone()],
            "{rollup} batch at {h}: {:?}",
            proof.items
        );
    }
    Ok(())
}
