//! The foundation's end-to-end test: four real validators (CometBFT v0.38 +
//! weft-sequencer) on loopback order transfers and rollup data for three
//! rollups, agree on every app hash, reject bad input with distinct codes
//! while blocks keep coming, and a SIGKILLed validator catches up.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use anyhow::{ensure, Context, Result};
use weft_core::{
    Action, RollupBatchProof, RollupId, SignedTransaction, SigningKey, Transaction, TxCode,
};
use weft_e2e::{app_hash_in_header, data_hash, eventually, TestNetwork};

const ROLLUPS: [&str; 3] = ["alpha", "beta", "gamma"];

struct Submitted {
    hash: String,
    /// (rollup, item) pairs this tx carries, in action order.
    items: Vec<(RollupId, Vec<u8>)>,
}

fn sign(key: &SigningKey, chain_id: &str, nonce: u64, actions: Vec<Action>) -> SignedTransaction {
    Transaction {
        chain_id: chain_id.into(),
        nonce,
        actions,
    }
    .sign(key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_order_rollup_data_agree_and_recover_from_sigkill() -> Result<()> {
    let t = TestNetwork::start(4, 3).await?;
    let result = run(&t).await;
    t.finish(result).await
}

async fn run(t: &TestNetwork) -> Result<()> {
    let chain_id = t.net.chain_id().to_string();
    let recipient = SigningKey::generate().address();
    let mut submitted: Vec<Submitted> = Vec::new();
    let mut nonces = vec![0u64; t.users.len()];

    // Every user sends a mix of transfers and rollup data (some txs carry
    // data for two rollups at once), spread over all four nodes.
    for round in 0..6u64 {
        for (u, key) in t.users.iter().enumerate() {
            let rollup = RollupId::from_name(ROLLUPS[(u + round as usize) % 3]);
            let item =
                format!("{}/user{u}/round{round}", ROLLUPS[(u + round as usize) % 3]).into_bytes();
            let mut items = vec![(rollup, item.clone())];
            let mut actions = vec![Action::SubmitRollupData {
                rollup_id: rollup,
                data: item,
            }];
            if round % 2 == 0 {
                actions.push(Action::Transfer {
                    to: recipient,
                    amount: 1_000 + round as u128,
                });
            }
            if round == 3 {
                let second = RollupId::from_name(ROLLUPS[(u + 1) % 3]);
                let item = format!("multi/user{u}/round{round}").into_bytes();
                items.push((second, item.clone()));
                actions.push(Action::SubmitRollupData {
                    rollup_id: second,
                    data: item,
                });
            }
            let tx = sign(key, &chain_id, nonces[u], actions);
            let node = (u + round as usize) % t.clients.len();
            let r = t.clients[node].broadcast_tx_sync(&tx.encode()).await?;
            ensure!(
                r.code == 0,
                "valid tx refused by node {node}: code {} {}",
                r.code,
                r.log
            );
            nonces[u] += 1;
            submitted.push(Submitted {
                hash: tx.hash().to_hex(),
                items,
            });
        }
        // Let consecutive nonces reach the proposer in order on all nodes.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }

    // Bad input: each class is refused by CheckTx with its own code.
    let user0 = &t.users[0];
    let mut bad_sig = sign(
        user0,
        &chain_id,
        nonces[0],
        vec![Action::Transfer {
            to: recipient,
            amount: 1,
        }],
    );
    bad_sig.signature.0[10] ^= 0x01;
    let used_nonce = sign(
        user0,
        &chain_id,
        0,
        vec![Action::Transfer {
            to: recipient,
            amount: 1,
        }],
    );
    let wrong_chain = sign(
        user0,
        "not-this-chain",
        nonces[0],
        vec![Action::Transfer {
            to: recipient,
            amount: 1,
        }],
    );
    let garbage: Vec<u8> = (0..97u8).map(|i| i.wrapping_mul(37)).collect();

    // Wait until nonce 0 of user 0 is committed so it is "already used" —
    // on node 1, which receives the bad input below (another node may be a
    // block ahead of it).
    let first = submitted[0].hash.clone();
    eventually(Duration::from_secs(60), "the first tx to commit", || {
        let c = t.clients[1].clone();
        let h = first.clone();
        async move { c.tx(&h).await }
    })
    .await?;

    let height_before = t.net.height(0).await?;
    let cases: Vec<(&str, Vec<u8>, TxCode)> = vec![
        ("bad signature", bad_sig.encode(), TxCode::BadSignature),
        ("used nonce", used_nonce.encode(), TxCode::NonceAlreadyUsed),
        ("wrong chain id", wrong_chain.encode(), TxCode::WrongChainId),
        ("garbage bytes", garbage, TxCode::Malformed),
    ];
    let mut codes = BTreeSet::new();
    for (name, bytes, expect) in &cases {
        let r = t.clients[1].broadcast_tx_sync(bytes).await?;
        ensure!(
            r.code == expect.value(),
            "{name}: expected code {}, got {} ({})",
            expect.value(),
            r.code,
            r.log
        );
        ensure!(!r.log.is_empty(), "{name}: rejection must explain itself");
        codes.insert(r.code);
    }
    ensure!(
        codes.len() == cases.len(),
        "every rejection class has its own code"
    );
    t.net
        .wait_all_for_height(height_before + 3, Duration::from_secs(30))
        .await
        .context("the chain must carry on after bad input")?;

    // Every accepted tx lands in a committed block with code 0.
    let mut heights = BTreeMap::new();
    for s in &submitted {
        let c = t.clients[2].clone();
        let h = s.hash.clone();
        let committed = eventually(Duration::from_secs(60), "an accepted tx to commit", || {
            let c = c.clone();
            let h = h.clone();
            async move { c.tx(&h).await }
        })
        .await?;
        ensure!(
            committed.code == 0,
            "tx {} failed in its block: {}",
            s.hash,
            committed.log
        );
        heights.insert(s.hash.clone(), committed.height);
    }
    let last = *heights.values().max().unwrap();
    t.net
        .wait_all_for_height(last + 1, Duration::from_secs(30))
        .await?;

    // Each rollup's batches, verified against data_hash with the served
    // proofs, contain exactly what was submitted for it, in block order.
    let mut expected: BTreeMap<RollupId, Vec<(u64, Vec<u8>)>> = BTreeMap::new();
    for s in &submitted {
        for (rollup, item) in &s.items {
            expected
                .entry(*rollup)
                .or_default()
                .push((heights[&s.hash], item.clone()));
        }
    }
    let rpc0 = t.net.nodes()[0].rpc_url();
    for name in ROLLUPS {
        let id = RollupId::from_name(name);
        let mut got: Vec<(u64, Vec<u8>)> = Vec::new();
        for height in 1..=last {
            let q = t.clients[3]
                .abci_query(&format!("batch/{}/{height}", id.to_hex()))
                .await?;
            ensure!(q.code == 0, "batch query failed at {height}: {}", q.log);
            let proof: RollupBatchProof = serde_json::from_slice(&q.value)?;
            let dh = data_hash(&rpc0, height).await?;
            proof
                .verify(&dh, &id)
                .with_context(|| format!("{name} batch at {height} does not verify"))?;
            got.extend(proof.items.into_iter().map(|i| (height, i)));
        }
        let mut want = expected.remove(&id).unwrap_or_default();
        // Same items, same heights; within a height the block order is the
        // proposer's, so compare as sets per height and check users' order.
        let mut got_sorted = got.clone();
        got_sorted.sort();
        want.sort();
        ensure!(
            got_sorted == want,
            "{name}: batches differ from what was submitted"
        );
        for (u, _) in t.users.iter().enumerate() {
            let prefix = format!("{name}/user{u}/");
            let rounds: Vec<&Vec<u8>> = got
                .iter()
                .map(|(_, i)| i)
                .filter(|i| i.starts_with(prefix.as_bytes()))
                .collect();
            let mut sorted = rounds.clone();
            sorted.sort();
            ensure!(
                rounds == sorted,
                "{name}: user {u}'s data out of nonce order"
            );
        }
    }

    // All four validators agree on the app hash at every height.
    assert_app_hashes_agree(t, last).await?;

    // SIGKILL one validator, keep submitting, restart it: it catches up to
    // the same app hash.
    t.net.kill_node(3)?;
    let mut late = Vec::new();
    for (u, key) in t.users.iter().enumerate() {
        let tx = sign(
            key,
            &chain_id,
            nonces[u],
            vec![Action::SubmitRollupData {
                rollup_id: RollupId::from_name("alpha"),
                data: b"while-down".to_vec(),
            }],
        );
        nonces[u] += 1;
        let r = t.clients[u % 3].broadcast_tx_sync(&tx.encode()).await?;
        ensure!(
            r.code == 0,
            "tx refused while a validator is down: {}",
            r.log
        );
        late.push(tx.hash().to_hex());
    }
    let h = t.net.height(0).await?;
    t.net
        .wait_for_height(0, h + 5, Duration::from_secs(60))
        .await
        .context("3 of 4 keep producing blocks")?;
    t.net.restart_node(3).await?;
    let target = t.net.height(0).await? + 2;
    t.net
        .wait_for_height(3, target, Duration::from_secs(120))
        .await
        .context("the restarted validator catches up")?;
    for hash in &late {
        ensure!(
            t.clients[3].tx(hash).await?.is_some(),
            "restarted node has the tx sent while it was down"
        );
    }
    assert_app_hashes_agree(t, target - 1).await?;
    Ok(())
}

/// Each validator's own computed app hash (its JMT root) at every height
/// is the same, and is what the next header carries.
async fn assert_app_hashes_agree(t: &TestNetwork, up_to: u64) -> Result<()> {
    for height in 1..=up_to {
        let mut seen = BTreeSet::new();
        for client in &t.clients {
            let q = client.abci_query(&format!("app_hash/{height}")).await?;
            ensure!(q.code == 0, "app_hash at {height}: {}", q.log);
            let h: String = serde_json::from_slice(&q.value)?;
            seen.insert(h.to_uppercase());
        }
        ensure!(
            seen.len() == 1,
            "validators disagree on the app hash at height {height}: {seen:?}"
        );
        let in_header = app_hash_in_header(&t.net.nodes()[0].rpc_url(), height + 1).await?;
        ensure!(
            seen.contains(&in_header),
            "header {} carries {in_header}, nodes computed {seen:?}",
            height + 1
        );
    }
    Ok(())
}
