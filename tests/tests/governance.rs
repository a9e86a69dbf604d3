//! Governance on a real network: four validators with a staking genesis
//! and one candidate node. A proposal short of quorum executes nothing;
//! the candidate registers, bonds and is admitted by stake-weighted votes;
//! at the next epoch CometBFT's own `/validators` lists its key with the
//! expected power and its address signs commits; a removal proposal takes
//! it out; a vetoed proposal keeps (burns) its deposit.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::Value;
use tendermint::block::{CommitSig, Height};
use tendermint_rpc::{Client, Paging};
use weft_cli::rpc::NodeClient;
use weft_core::{
    Action, Address, Amount, ChainParams, GovernanceParams, ProposalKind, StakingParams, VoteOption,
};
use weft_e2e::{eventually, rpc_client, send_action as send, TestNetwork};
use weft_testnet::{genesis::consensus_address, TestnetStaking};

const SELF_BOND: Amount = 1_000;
const DEPOSIT: Amount = 1_000;
const EPOCH: u64 = 8;
const VOTING: u64 = 10;
/// Long enough for a voting period, an epoch and two heights at ~0.4 s
/// per block on a loaded machine.
const STEP: Duration = Duration::from_secs(90);

async fn proposal(client: &NodeClient, id: u64) -> Result<Value> {
    client.abci_query_json(&format!("proposal/{id}")).await
}

/// Waits until proposal `id` is decided; its status.
async fn decided(client: &NodeClient, id: u64) -> Result<String> {
    eventually(STEP, "the proposal to be decided", || async {
        let p = proposal(client, id).await?;
        Ok((p["status"] != "voting").then(|| p["status"].as_str().unwrap_or("?").to_string()))
    })
    .await
}

async fn balance(client: &NodeClient, address: &Address) -> Result<Amount> {
    Ok(client.account(address).await?.balance)
}

/// CometBFT's validator set at its latest height: (key, power).
async fn cometbft_validators(rpc: &str) -> Result<Vec<([u8; 32], u64)>> {
    let c = rpc_client(rpc)?;
    let latest = c.latest_block().await?.block.header.height;
    let set = c.validators(latest, Paging::All).await?;
    Ok(set
        .validators
        .iter()
        .filter_map(|v| {
            let key: [u8; 32] = v.pub_key.ed25519()?.as_bytes().try_into().ok()?;
            Some((key, v.power.value()))
        })
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_removal_quorum_and_veto_on_a_real_network() -> Result<()> {
    let t = TestNetwork::start_with(4, 0, |cfg| {
        cfg.candidates = 1;
        cfg.staking = Some(TestnetStaking {
            params: StakingParams {
                epoch_blocks: EPOCH,
                unbonding_blocks: 20,
                max_power_share_bps: 10_000,
                min_self_bond: 100,
                ..StakingParams::default()
            },
            governance: Some(GovernanceParams {
                voting_period_blocks: VOTING,
                min_deposit: DEPOSIT,
                ..GovernanceParams::default()
            }),
            self_bond: SELF_BOND,
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
    let cand_index = net.candidates().next().context("a candidate node")?;
    let (cand_key, _) = net.operator(cand_index).context("candidate operator")?;
    let cand = cand_key.clone();
    let cand_consensus = net.consensus_key(cand_index)?;
    let fee = ChainParams::default().base_fee;

    // The candidate node follows the chain without being a validator.
    net.wait_for_height(cand_index, 3, Duration::from_secs(60))
        .await?;
    let set = cometbft_validators(&rpc).await?;
    ensure!(set.len() == 4, "four genesis validators: {set:?}");
    ensure!(
        set.iter().all(|(_, p)| *p == SELF_BOND as u64),
        "power = self-bond: {set:?}"
    );
    ensure!(!set.iter().any(|(k, _)| *k == cand_consensus));

    // Registers and bonds.
    send(
        client,
        &chain_id,
        &cand,
        Action::RegisterValidator {
            consensus_key: cand_consensus,
            name: "candidate".into(),
            website: String::new(),
            commission_bps: 500,
        },
    )
    .await?;
    send(
        client,
        &chain_id,
        &cand,
        Action::Delegate {
            validator: cand.address(),
            amount: SELF_BOND,
        },
    )
    .await?;

    // An admission short of quorum: one validator of four votes (25 % of
    // bonded stake, quorum 33.4 %). It executes nothing and returns the
    // deposit.
    let before = balance(client, &ops[3].address()).await?;
    let admit = ProposalKind::AdmitValidator {
        operator: cand.address(),
    };
    send(
        client,
        &chain_id,
        &ops[3],
        Action::Propose {
            kind: admit.clone(),
            deposit: DEPOSIT,
        },
    )
    .await?;
    send(
        client,
        &chain_id,
        &ops[0],
        Action::Vote {
            proposal_id: 0,
            option: VoteOption::Yes,
        },
    )
    .await?;
    ensure!(decided(client, 0).await? == "no_quorum");
    let v: Value = client
        .abci_query_json(&format!("validator/{}", cand.address()))
        .await?;
    ensure!(v["approved"] == false, "not admitted without quorum: {v}");
    ensure!(
        balance(client, &ops[3].address()).await? == before - fee,
        "the deposit came back (only the fee is gone)"
    );

    // The admission again, three of four voting yes: passed.
    send(
        client,
        &chain_id,
        &ops[1],
        Action::Propose {
            kind: admit,
            deposit: DEPOSIT,
        },
    )
    .await?;
    for op in &ops[..3] {
        send(
            client,
            &chain_id,
            op,
            Action::Vote {
                proposal_id: 1,
                option: VoteOption::Yes,
            },
        )
        .await?;
    }
    ensure!(decided(client, 1).await? == "passed");

    // At the next epoch CometBFT's own set has the candidate's key with
    // power = its stake.
    let set = eventually(STEP, "the candidate in CometBFT's set", || async {
        let set = cometbft_validators(&rpc).await?;
        Ok(set.iter().any(|(k, _)| *k == cand_consensus).then_some(set))
    })
    .await?;
    let power = set
        .iter()
        .find(|(k, _)| *k == cand_consensus)
        .map(|(_, p)| *p);
    ensure!(
        power == Some(SELF_BOND as u64),
        "expected power {SELF_BOND}: {set:?}"
    );
    ensure!(set.len() == 5, "{set:?}");
    // ... and its address signs commits.
    let address = consensus_address(&cand_consensus);
    let c = rpc_client(&rpc)?;
    eventually(STEP, "a commit signed by the candidate", || async {
        let h = c.latest_block().await?.block.header.height;
        let commit = c.commit(Height::try_from(h.value() - 1)?).await?;
        Ok(commit
            .signed_header
            .commit
            .signatures
            .iter()
            .any(|s| {
                matches!(s, CommitSig::BlockIdFlagCommit { validator_address, .. }
                if validator_address.to_string().eq_ignore_ascii_case(&address))
            })
            .then_some(()))
    })
    .await?;
    let api: Value = client.abci_query_json("validators").await?;
    ensure!(api["active_validators"] == 5, "{api}");
    ensure!(
        api["nakamoto_coefficient"] == 2,
        "five equal validators: {api}"
    );

    // A removal takes it out again.
    send(
        client,
        &chain_id,
        &ops[2],
        Action::Propose {
            kind: ProposalKind::RemoveValidator {
                operator: cand.address(),
            },
            deposit: DEPOSIT,
        },
    )
    .await?;
    for op in &ops[..3] {
        send(
            client,
            &chain_id,
            op,
            Action::Vote {
                proposal_id: 2,
                option: VoteOption::Yes,
            },
        )
        .await?;
    }
    // A vetoed text proposal, voted alongside.
    let proposer = &ops[3];
    let before = balance(client, &proposer.address()).await?;
    send(
        client,
        &chain_id,
        proposer,
        Action::Propose {
            kind: ProposalKind::Text {
                title: "burn me".into(),
                description: String::new(),
            },
            deposit: DEPOSIT,
        },
    )
    .await?;
    for op in &ops[..2] {
        send(
            client,
            &chain_id,
            op,
            Action::Vote {
                proposal_id: 3,
                option: VoteOption::NoWithVeto,
            },
        )
        .await?;
    }
    ensure!(decided(client, 2).await? == "passed");
    ensure!(decided(client, 3).await? == "vetoed");
    let p = proposal(client, 3).await?;
    ensure!(p["tally"]["no_with_veto"] == "2000", "{p}");
    // The deposit is gone for good: the proposer paid it and the fee, and
    // nothing came back.
    ensure!(
        balance(client, &proposer.address()).await? == before - fee - DEPOSIT,
        "the vetoed deposit is burned, not returned"
    );
    eventually(STEP, "the candidate out of CometBFT's set", || async {
        let set = cometbft_validators(&rpc).await?;
        Ok((set.len() == 4 && !set.iter().any(|(k, _)| *k == cand_consensus)).then_some(()))
    })
    .await?;
    let v: Value = client
        .abci_query_json(&format!("validator/{}", cand.address()))
        .await?;
    ensure!(v["approved"] == false && v["active"] == false, "{v}");
    Ok(())
}
