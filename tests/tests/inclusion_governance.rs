//! Turning inclusion lists on for a running network by governance, and off
//! again: four validators start with staking and governance but without
//! inclusion lists or CometBFT vote extensions. An `EnableInclusionLists`
//! proposal (built as `weft tx propose --enable-inclusion-lists` builds it,
//! from the node's `/consensus_params`) passes; CometBFT's own consensus
//! parameters then show vote extensions enabled two heights after the
//! tally, and from the height after that every block carries the listed
//! commit (item 1, magic `WFTX`) while transactions keep landing. A
//! `ChangeInclusionParams` proposal with `enabled: false` then stops the
//! listed commits; the chain goes on producing blocks throughout.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::Value;
use tendermint_rpc::Client;
use weft_cli::rpc::NodeClient;
use weft_core::{
    inclusion::ListedCommit, Action, Amount, GovernanceParams, InclusionParams, ProposalKind,
    SigningKey, StakingParams, Transaction, VoteOption,
};
use weft_e2e::{
    block_txs, committed, eventually, rpc_client, send_action as send, submit_action, TestNetwork,
};
use weft_testnet::TestnetStaking;

const DEPOSIT: Amount = 1_000;
const VOTING: u64 = 10;
/// A voting period and a few heights at ~0.4 s per block on a loaded
/// machine.
const STEP: Duration = Duration::from_secs(40);

/// Proposes `kind` from the first operator, has every operator vote yes,
/// waits for the tally; returns the proposal's end height (the height
/// whose end executed it).
async fn pass(
    client: &NodeClient,
    chain_id: &str,
    ops: &[SigningKey],
    kind: ProposalKind,
) -> Result<u64> {
    let next: Value = client.abci_query_json("proposals").await?;
    let id = next["proposals"].as_array().map_or(0, |a| a.len() as u64);
    send(
        client,
        chain_id,
        &ops[0],
        Action::Propose {
            kind,
            deposit: DEPOSIT,
        },
    )
    .await?;
    // Every vote goes out at once, then each must commit: one after
    // another, a loaded machine once pushed the last vote past the voting
    // period (CI: the fourth vote, sent at height 9 of a period ending at
    // 9, never committed).
    let mut votes = Vec::new();
    for op in ops {
        let nonce = client.account(&op.address()).await?.next_nonce();
        let vote = Action::Vote {
            proposal_id: id,
            option: VoteOption::Yes,
        };
        votes.push(submit_action(client, chain_id, op, nonce, vote).await?);
    }
    for hash in &votes {
        committed(client, hash).await?;
    }
    let p = eventually(STEP, "the proposal to be decided", || async {
        let p: Value = client.abci_query_json(&format!("proposal/{id}")).await?;
        Ok((p["status"] != "voting").then_some(p))
    })
    .await?;
    ensure!(p["status"] == "passed", "proposal {id}: {p}");
    p["end_height"].as_u64().context("end_height")
}

/// CometBFT's `abci.vote_extensions_enable_height` at its latest height.
/// (CometBFT may briefly not find the params of a block stored before its
/// state; asked again until it does.)
async fn vote_extensions_height(rpc: &str) -> Result<u64> {
    let client = rpc_client(rpc)?;
    let params = eventually(Duration::from_secs(10), "consensus params", || async {
        Ok(client.latest_consensus_params().await.ok())
    })
    .await?;
    Ok(params
        .consensus_params
        .abci
        .vote_extensions_enable_height
        .map_or(0, |h| h.value()))
}

/// Whether the block at `height` carries a listed commit as item 1.
async fn carries_listed_commit(rpc: &str, height: u64) -> Result<bool> {
    let txs = block_txs(rpc, height).await?;
    Ok(txs.get(1).is_some_and(|t| ListedCommit::is_item(t)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inclusion_lists_are_turned_on_and_off_by_governance_on_a_live_network() -> Result<()> {
    let t = TestNetwork::start_with(4, 1, |cfg| {
        cfg.inclusion = None;
        cfg.staking = Some(TestnetStaking {
            params: StakingParams {
                epoch_blocks: 1_000,
                max_power_share_bps: 10_000,
                min_self_bond: 100,
                ..StakingParams::default()
            },
            governance: Some(GovernanceParams {
                voting_period_blocks: VOTING,
                min_deposit: DEPOSIT,
                ..GovernanceParams::default()
            }),
            self_bond: 1_000,
        });
    })
    .await?;
    let result = run(&t).await;
    t.finish(result).await
}

async fn run(t: &TestNetwork) -> Result<()> {
    let net = &t.net;
    let client = &t.clients[0];
    let rpc = net.nodes()[0].rpc_url();
    let chain_id = client.chain_id().await?;
    let ops = t.operators()?;
    let user = &t.users[0];

    // Off at genesis: CometBFT does not extend votes, blocks carry no
    // listed commit.
    ensure!(vote_extensions_height(&rpc).await? == 0);
    ensure!(!carries_listed_commit(&rpc, 2).await?);

    // What `weft tx propose --enable-inclusion-lists` sends.
    let consensus = client.consensus_params().await?;
    ensure!(
        consensus.block_max_bytes > 0,
        "consensus params: {consensus:?}"
    );
    let tallied = pass(
        client,
        &chain_id,
        &ops,
        ProposalKind::EnableInclusionLists {
            params: InclusionParams::default(),
            consensus,
        },
    )
    .await
    .context("enabling")?;
    // FinalizeBlock of the tally height sent the update; CometBFT applies
    // it from the next height.
    let enable_height = tallied + 2;
    net.wait_for_height(0, tallied + 1, STEP).await?;
    let seen = vote_extensions_height(&rpc).await?;
    ensure!(
        seen == enable_height,
        "CometBFT's vote_extensions_enable_height is {seen}, expected {enable_height}"
    );
    // A second enabling proposal: the CLI will not build one, and the
    // chain refuses it at once.
    ensure!(
        client.consensus_params().await.is_err(),
        "the CLI built an enabling proposal on a chain with extensions on"
    );
    let again = Transaction {
        chain_id: chain_id.clone(),
        nonce: client.account(&ops[1].address()).await?.next_nonce(),
        actions: vec![Action::Propose {
            kind: ProposalKind::EnableInclusionLists {
                params: InclusionParams::default(),
                consensus: weft_core::ConsensusParams {
                    block_max_bytes: 4 << 20,
                    block_max_gas: -1,
                    evidence_max_age_num_blocks: 100_000,
                    evidence_max_age_duration_ns: 172_800_000_000_000,
                    evidence_max_bytes: 1 << 20,
                },
            },
            deposit: DEPOSIT,
        }],
    }
    .sign(&ops[1]);
    let check = client.broadcast_tx_sync(&again.encode()).await?;
    ensure!(
        check.code != 0,
        "a second EnableInclusionLists was accepted"
    );

    // Through the switch: a user's transactions keep landing, and every
    // block from enable_height + 1 carries the listed commit.
    let first_listed = enable_height + 1;
    let mut landed = Vec::new();
    while landed.last().copied().unwrap_or(0) < first_listed + 3 {
        let at = send(
            client,
            &chain_id,
            user,
            Action::SubmitRollupData {
                rollup_id: weft_core::RollupId::from_name("switch"),
                data: b"through the switch".to_vec(),
            },
        )
        .await?;
        landed.push(at);
    }
    for h in 2..first_listed {
        ensure!(
            !carries_listed_commit(&rpc, h).await?,
            "block {h}, before the switch, carries a listed commit"
        );
    }
    let top = net.height(0).await?;
    for h in first_listed..=top {
        ensure!(
            carries_listed_commit(&rpc, h).await?,
            "block {h}, after the switch at {first_listed}, carries no listed commit"
        );
    }
    ensure!(
        landed.iter().any(|h| *h >= first_listed),
        "no transaction landed after the switch: {landed:?}"
    );

    // Off again: CometBFT keeps extending votes (it cannot stop), the app
    // stops requiring and carrying listed commits.
    let off = pass(
        client,
        &chain_id,
        &ops,
        ProposalKind::ChangeInclusionParams {
            params: InclusionParams {
                enabled: false,
                ..InclusionParams::default()
            },
        },
    )
    .await
    .context("disabling")?;
    ensure!(
        carries_listed_commit(&rpc, off).await?,
        "the tally block {off} still carries one"
    );
    net.wait_for_height(0, off + 4, STEP).await?;
    for h in off + 1..=off + 4 {
        ensure!(
            !carries_listed_commit(&rpc, h).await?,
            "block {h}, after lists were turned off at {off}, carries a listed commit"
        );
    }
    ensure!(vote_extensions_height(&rpc).await? == enable_height);
    let after = send(
        client,
        &chain_id,
        user,
        Action::SubmitRollupData {
            rollup_id: weft_core::RollupId::from_name("switch"),
            data: b"after turning off".to_vec(),
        },
    )
    .await?;
    ensure!(after > off, "landed at {after}");
    println!(
        "enabled by proposal tallied at {tallied}: extensions from {enable_height}, \
         listed commits from {first_listed}; turned off at {off}; last tx at {after}"
    );
    Ok(())
}
