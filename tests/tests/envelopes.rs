//! Envelopes and batch submission on a real four-validator network:
//! 10,000 single-payload transactions from 2,000 accounts, sent one by one
//! (through the API and through CometBFT's RPC) and in batches (`POST
//! /v1/txs`) to different validators, some batches sent twice to two
//! validators. Every transaction is included exactly once, each account's
//! nonces in order, every status is `included` by the user's own hash, no
//! block carries an envelope, and a batch with bad transactions admits the
//! good ones and answers each bad one with its own error.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use anyhow::{bail, ensure, Context, Result};
use futures::{stream, StreamExt};
use serde_json::Value;
use weft_core::{Envelope, Hash, SignedTransaction, SigningKey};
use weft_e2e::{block_txs, eventually, metric, rollup_data_tx, TestNetwork};

const VALIDATORS: usize = 4;
const ACCOUNTS: usize = 2_000;
const TXS_PER_ACCOUNT: u64 = 5;
/// Accounts `0..BATCHED` send in batches, `BATCHED..API_SINGLE` one by one
/// through the API, the rest one by one through CometBFT's RPC.
const BATCHED: usize = 1_000;
const API_SINGLE: usize = 1_500;
/// Accounts per batch request (each with all its nonces, in order).
const ACCOUNTS_PER_BATCH: usize = 50;

fn data_tx(key: &SigningKey, chain: &str, nonce: u64, tag: &str) -> SignedTransaction {
    let mut data = tag.as_bytes().to_vec();
    data.resize(200, b'.');
    rollup_data_tx(
        key,
        chain,
        nonce,
        ["alpha", "beta"][(nonce % 2) as usize],
        data,
    )
}

fn frames(txs: &[SignedTransaction]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in txs {
        let b = t.encode();
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(&b);
    }
    out
}

async fn post_batch(http: &reqwest::Client, api: &str, txs: &[SignedTransaction]) -> Result<Value> {
    let r = http
        .post(format!("{api}/v1/txs"))
        .header("content-type", "application/octet-stream")
        .body(frames(txs))
        .send()
        .await?;
    let status = r.status();
    let body: Value = r.json().await?;
    ensure!(status == 200, "batch answered {status}: {body}");
    Ok(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_transactions_singly_and_in_batches_are_each_included_once() -> Result<()> {
    let t = TestNetwork::start(VALIDATORS, ACCOUNTS + 1).await?;
    let result = run(&t).await;
    t.finish(result).await
}

async fn run(t: &TestNetwork) -> Result<()> {
    let chain = t.net.chain_id().to_string();
    let apis: Vec<String> = t.net.nodes().iter().map(|n| n.api_url()).collect();
    let rpcs: Vec<String> = t.net.nodes().iter().map(|n| n.rpc_url()).collect();
    let http = reqwest::Client::new();
    let start_height = t.net.height(0).await?;

    let txs: Vec<Vec<SignedTransaction>> = t.users[..ACCOUNTS]
        .iter()
        .enumerate()
        .map(|(a, key)| {
            (0..TXS_PER_ACCOUNT)
                .map(|n| data_tx(key, &chain, n, &format!("a{a}n{n}")))
                .collect()
        })
        .collect();
    let expected: BTreeMap<Hash, (usize, u64)> = txs
        .iter()
        .enumerate()
        .flat_map(|(a, list)| {
            list.iter()
                .map(move |tx| (tx.hash(), (a, tx.transaction.nonce)))
        })
        .collect();
    ensure!(expected.len() == ACCOUNTS * TXS_PER_ACCOUNT as usize);

    // A batch with bad transactions: the good ones are admitted, each bad
    // one answered with its own error.
    let spare = &t.users[ACCOUNTS];
    let good0 = data_tx(spare, &chain, 0, "spare0");
    let good1 = data_tx(spare, &chain, 1, "spare1");
    let mut forged = data_tx(spare, &chain, 2, "forged");
    forged.signature.0[0] ^= 1;
    let replayed_nonce = data_tx(spare, &chain, 0, "other bytes, same nonce");
    let other_chain = data_tx(spare, "another-chain", 2, "x");
    let mixed = [
        good0.clone(),
        forged,
        good1.clone(),
        replayed_nonce,
        other_chain,
    ];
    let answer = post_batch(&http, &apis[1], &mixed).await?;
    ensure!(
        answer["accepted"] == 2 && answer["refused"] == 3,
        "{answer}"
    );
    let results = answer["results"].as_array().context("results")?;
    let codes: Vec<&str> = results
        .iter()
        .map(|r| r["error"]["code"].as_str().unwrap_or("-"))
        .collect();
    ensure!(
        codes == ["-", "bad_signature", "-", "duplicate", "wrong_chain_id"],
        "per-transaction errors: {answer}"
    );
    for (r, tx) in results.iter().zip(&mixed) {
        ensure!(
            r["hash"] == tx.hash().to_hex(),
            "result hashes follow the request: {r}"
        );
    }

    // Batched accounts: ACCOUNTS_PER_BATCH accounts per request, each to a
    // validator in turn; every fourth batch is sent again to the next
    // validator (the same transactions in two envelopes on two nodes).
    let batches: Vec<(usize, Vec<SignedTransaction>)> = txs[..BATCHED]
        .chunks(ACCOUNTS_PER_BATCH)
        .enumerate()
        .map(|(i, accounts)| {
            // Nonce order within each account; accounts interleaved.
            let mut batch = Vec::new();
            for n in 0..TXS_PER_ACCOUNT as usize {
                batch.extend(accounts.iter().map(|list| list[n].clone()));
            }
            (i, batch)
        })
        .collect();
    let batch_sends = stream::iter(batches.into_iter().map(|(i, batch)| {
        let http = http.clone();
        let apis = apis.clone();
        async move {
            let answer = post_batch(&http, &apis[i % VALIDATORS], &batch).await?;
            ensure!(
                answer["accepted"] == batch.len() && answer["refused"] == 0,
                "batch {i}: {answer}"
            );
            if i % 4 == 0 {
                let again = post_batch(&http, &apis[(i + 1) % VALIDATORS], &batch).await?;
                ensure!(
                    again["refused"] == 0 || refused_only_as_used(&again),
                    "batch {i} again: {again}"
                );
            }
            anyhow::Ok(())
        }
    }))
    .buffer_unordered(4)
    .collect::<Vec<_>>();

    // Single senders: each account's nonces in order to one validator.
    let single_sends = stream::iter((BATCHED..ACCOUNTS).map(|a| {
        let http = http.clone();
        let node = a % VALIDATORS;
        let api = apis[node].clone();
        let client = t.clients[node].clone();
        let list = txs[a].clone();
        async move {
            for tx in &list {
                if a < API_SINGLE {
                    let r = http
                        .post(format!("{api}/v1/tx"))
                        .header("content-type", "application/octet-stream")
                        .body(tx.encode())
                        .send()
                        .await?;
                    let status = r.status();
                    let body: Value = r.json().await?;
                    ensure!(
                        status == 202,
                        "a{a} n{}: {status} {body}",
                        tx.transaction.nonce
                    );
                    ensure!(body["hash"] == tx.hash().to_hex(), "{body}");
                } else {
                    let r = client.broadcast_tx_sync(&tx.encode()).await?;
                    ensure!(
                        r.code == 0,
                        "a{a} n{}: {} {}",
                        tx.transaction.nonce,
                        r.code,
                        r.log
                    );
                }
            }
            anyhow::Ok(())
        }
    }))
    .buffer_unordered(24)
    .collect::<Vec<_>>();
    let (batched, singles) = tokio::join!(batch_sends, single_sends);
    batched
        .into_iter()
        .chain(singles)
        .collect::<Result<Vec<()>>>()?;

    // Every status is `included`, asked by the user's hash, at one node.
    let mut all: Vec<Hash> = expected.keys().copied().collect();
    all.extend([good0.hash(), good1.hash()]);
    let api = apis[2].clone();
    let last_height = eventually(
        Duration::from_secs(240),
        "every transaction included",
        || {
            let http = http.clone();
            let api = api.clone();
            let all = all.clone();
            async move {
                let statuses = stream::iter(all.iter().map(|h| {
                    let http = http.clone();
                    let url = format!("{api}/v1/tx/{h}");
                    async move {
                        let v: Value = http.get(url).send().await?.json().await?;
                        anyhow::Ok(v)
                    }
                }))
                .buffer_unordered(32)
                .collect::<Vec<_>>()
                .await;
                let mut top = 0;
                for s in statuses {
                    let s = s?;
                    if s["status"] != "included" {
                        return Ok(None);
                    }
                    ensure!(s["code"] == 0, "included but failed: {s}");
                    top = top.max(s["height"].as_u64().unwrap_or(0));
                }
                Ok(Some(top))
            }
        },
    )
    .await?;

    // Exactly once, in nonce order per account, no envelope in any block.
    let mut seen: BTreeMap<Hash, (u64, usize)> = BTreeMap::new();
    let mut per_account: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    for h in start_height..=last_height {
        let block = block_txs(&rpcs[0], h).await?;
        for (i, item) in block.iter().enumerate().skip(1) {
            ensure!(
                !Envelope::is_envelope(item),
                "height {h} item {i} is an envelope"
            );
            let hash = weft_core::sha256(item);
            if let Some(first) = seen.insert(hash, (h, i)) {
                bail!("{hash} included twice: at {first:?} and at ({h}, {i})");
            }
            if let Some((a, nonce)) = expected.get(&hash) {
                per_account.entry(*a).or_default().push(*nonce);
            }
        }
    }
    let missing = all.iter().filter(|h| !seen.contains_key(h)).count();
    ensure!(
        missing == 0,
        "{missing} transactions not found in blocks {start_height}..={last_height}"
    );
    for (a, nonces) in &per_account {
        ensure!(
            *nonces == (0..TXS_PER_ACCOUNT).collect::<Vec<_>>(),
            "account {a} nonces in block order: {nonces:?}"
        );
    }
    ensure!(per_account.len() == ACCOUNTS);

    // Envelopes did the carrying: every node checked envelopes (its own
    // API's and its peers', gossiped) and forwarded some.
    for api in &apis {
        let forwarded = metric(&http, api, "weft_envelopes_forwarded_total").await?;
        let checked = metric(&http, api, "weft_envelopes_checked_total{kind=\"envelope\"").await?;
        ensure!(
            forwarded > 0.0 && checked > forwarded,
            "{api}: {forwarded} envelopes forwarded, {checked} checked"
        );
    }

    // Each account's committed nonce, through another node's API.
    let sample: BTreeSet<usize> = (0..ACCOUNTS).step_by(97).collect();
    for a in sample {
        let v: Value = http
            .get(format!("{}/v1/accounts/{}", apis[3], t.users[a].address()))
            .send()
            .await?
            .json()
            .await?;
        ensure!(v["nonce"] == TXS_PER_ACCOUNT, "account {a}: {v}");
    }
    Ok(())
}

/// A batch sent again after some of it was included: the included
/// transactions come back as duplicates (accepted), nothing else refused.
fn refused_only_as_used(answer: &Value) -> bool {
    answer["results"].as_array().is_some_and(|rs| {
        rs.iter().all(|r| {
            r.get("error").is_none()
                || r["error"]["code"] == "nonce_already_used"
                || r["error"]["code"] == "duplicate"
        })
    })
}
