//! Censorship resistance on a real network: four validators, one of which
//! (node 3) is started with the test-only `--unsafe-test-censor` flag and
//! never proposes one account's transactions. With inclusion lists on,
//! every transaction of that account lands within three blocks of its
//! acceptance and the others refuse the censor's proposals that leave a
//! listed one out; with lists off (the `inclusion.enabled` parameter), the
//! censor's blocks commit without transactions it held.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use tendermint_rpc::Client;
use weft_core::{Action, InclusionParams, SigningKey, Transaction};
use weft_e2e::{header, rpc_client, TestNetwork};

/// Transactions the censored account sends, one every ~quarter block at
/// varying phase, so some arrive after a height's proposal was made.
const TXS: u64 = 48;

struct Sent {
    hash: String,
    /// The latest committed height when CheckTx accepted it.
    accepted_at: u64,
}

struct Observed {
    /// (accepted_at, included_at) per transaction.
    landed: Vec<(u64, u64)>,
    /// Committed blocks proposed by the censor while one of the account's
    /// transactions had waited a block and landed only later.
    censored_blocks: usize,
    /// Proposals the honest validators refused as censoring.
    refused: u64,
    /// Blocks proposed by the censor that carry one of the account's
    /// transactions (the flag must hold: always 0).
    censor_included: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inclusion_lists_defeat_a_censoring_proposer_and_their_absence_shows_it() -> Result<()> {
    let on = run_case(true).await.context("with inclusion lists on")?;
    let off = run_case(false).await.context("with inclusion lists off")?;
    println!(
        "lists on: {} txs, worst delay {} blocks, {} censoring proposals refused, {} censored blocks; \
         lists off: worst delay {} blocks, {} censored blocks",
        on.landed.len(),
        worst(&on),
        on.refused,
        on.censored_blocks,
        worst(&off),
        off.censored_blocks
    );
    ensure!(
        on.censor_included == 0 && off.censor_included == 0,
        "the censor included a censored transaction"
    );
    for (accepted, included) in &on.landed {
        ensure!(
            included - accepted <= 3,
            "with lists on, a transaction accepted at height {accepted} landed at {included}"
        );
    }
    ensure!(
        on.refused > 0,
        "with lists on, no censoring proposal was refused"
    );
    ensure!(
        on.censored_blocks == 0,
        "with lists on, {} censor blocks committed without a transaction that waited",
        on.censored_blocks
    );
    ensure!(
        off.censored_blocks > 0,
        "with lists off, the censor never left out a transaction it held: the setup shows nothing"
    );
    ensure!(
        off.refused == 0,
        "with lists off, proposals were refused as censoring"
    );
    Ok(())
}

fn worst(o: &Observed) -> u64 {
    o.landed.iter().map(|(a, i)| i - a).max().unwrap_or(0)
}

async fn run_case(lists: bool) -> Result<Observed> {
    let t = TestNetwork::start_with(4, 1, |cfg| {
        let censored = cfg.extra_accounts[0].address.to_string();
        cfg.node_sequencer_args
            .insert(3, vec!["--unsafe-test-censor".into(), censored]);
        if !lists {
            cfg.inclusion = Some(InclusionParams {
                enabled: false,
                ..InclusionParams::default()
            });
        }
    })
    .await?;
    let mut observed = None;
    let result = async {
        observed = Some(observe(&t).await?);
        Ok(())
    }
    .await;
    t.finish(result).await?;
    observed.context("no observation")
}

async fn observe(t: &TestNetwork) -> Result<Observed> {
    let user: &SigningKey = &t.users[0];
    let chain_id = t.net.chain_id().to_string();
    let rpc0 = t.net.node(0)?.rpc_url();
    let censor_address = rpc_client(&t.net.node(3)?.rpc_url())?
        .status()
        .await?
        .validator_info
        .address;
    let mut sent = Vec::new();
    for nonce in 0..TXS {
        let tx = Transaction {
            chain_id: chain_id.clone(),
            nonce,
            actions: vec![Action::SubmitRollupData {
                rollup_id: weft_core::RollupId::from_name("censored"),
                data: format!("item {nonce}").into_bytes(),
            }],
        }
        .sign(user);
        let accepted_at = t.net.height(0).await?;
        let r = t.clients[0].broadcast_tx_sync(&tx.encode()).await?;
        ensure!(r.code == 0, "tx {nonce} refused: {}", r.log);
        sent.push(Sent {
            hash: r.hash,
            accepted_at,
        });
        // 60..200 ms: the phase against the 300 ms block time varies.
        tokio::time::sleep(Duration::from_millis(60 + (nonce * 37) % 140)).await;
    }
    let mut landed = Vec::new();
    for s in &sent {
        let included = weft_e2e::eventually(Duration::from_secs(60), "the tx to land", || async {
            Ok(t.clients[0].tx(&s.hash).await?.map(|c| c.height))
        })
        .await?;
        landed.push((s.accepted_at, included));
    }
    let last = landed.iter().map(|(_, i)| *i).max().unwrap_or(0);
    let first = landed.iter().map(|(a, _)| *a).min().unwrap_or(1).max(1);
    let mut censored_blocks = 0;
    let mut censor_included = 0;
    for h in first..=last {
        let proposer = header(&rpc0, h).await?.proposer_address;
        if proposer != censor_address {
            continue;
        }
        if landed.iter().any(|(_, i)| *i == h) {
            censor_included += 1;
        }
        // Accepted while h - 2 was the latest, so it had waited through
        // block h - 1, yet it landed after h.
        if landed.iter().any(|(a, i)| *a + 2 <= h && *i > h) {
            censored_blocks += 1;
        }
    }
    let mut refused = 0;
    for i in 0..3 {
        refused += censored_refusals(&t.net.node(i)?.api_url()).await?;
    }
    Ok(Observed {
        landed,
        censored_blocks,
        refused,
        censor_included,
    })
}

/// `weft_proposals_rejected_total{reason="censored"}` on one node.
async fn censored_refusals(api: &str) -> Result<u64> {
    let text = reqwest::get(format!("{api}/metrics")).await?.text().await?;
    Ok(text
        .lines()
        .filter(|l| {
            l.starts_with("weft_proposals_rejected_total") && l.contains("reason=\"censored\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum())
}
