//! Double-signing on a real network: four CometBFT validators with a
//! staking genesis. Duplicate-vote evidence against one of them (two
//! prevotes for the same height and round with different block ids,
//! signed with its own key from `priv_validator_key.json`) is submitted
//! through CometBFT's `broadcast_evidence`, as CometBFT's own e2e runner
//! does. CometBFT verifies it and commits it in a block; the app slashes
//! `slash_double_sign_bps` of the offender's stake and tombstones it;
//! CometBFT's `/validators` drops it; the other three keep signing
//! blocks; and its operator's `Unjail` is refused with
//! `validator_tombstoned`.

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tendermint::{
    account,
    block::{self, parts, Height, Round},
    chain,
    vote::{self, ValidatorIndex, Vote},
    Signature,
};
use tendermint_rpc::{
    endpoint::evidence, request::RequestMessage, Client, Method, Paging, SimpleRequest,
};
use weft_cli::rpc::NodeClient;
use weft_core::{Action, Amount, SigningKey, StakingParams, Transaction, TxCode};
use weft_e2e::{eventually, rpc_client, TestNetwork};
use weft_testnet::TestnetStaking;

const SELF_BOND: Amount = 1_000_000;
const SLASH_BPS: u16 = 500;
/// The double-signer.
const OFFENDER: usize = 3;
const STEP: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_vote_evidence_slashes_and_tombstones_its_offender() -> Result<()> {
    let t = TestNetwork::start_with(4, 0, |cfg| {
        cfg.staking = Some(TestnetStaking {
            params: StakingParams {
                epoch_blocks: 10,
                unbonding_blocks: 100,
                max_power_share_bps: 10_000,
                min_self_bond: 1_000,
                slash_double_sign_bps: SLASH_BPS,
                ..StakingParams::default()
            },
            governance: None,
            self_bond: SELF_BOND,
        });
    })
    .await?;
    let result = run(&t).await;
    t.finish(result).await
}

/// `/broadcast_evidence` with the evidence as CometBFT's JSON. Not
/// `Client::broadcast_evidence`: tendermint-rs 0.40.4 encodes
/// `DuplicateVoteEvidence.validator_power` as the total voting power
/// (its `From` for the raw type copies the wrong field) and names the
/// ABCI fields in snake case, while CometBFT's JSON decoder only knows
/// the Go field names `TotalVotingPower`, `ValidatorPower`, `Timestamp`;
/// CometBFT would refuse (or zero) both.
#[derive(Debug, Serialize, Deserialize)]
struct BroadcastEvidence {
    evidence: Value,
}

impl RequestMessage for BroadcastEvidence {
    fn method(&self) -> Method {
        Method::BroadcastEvidence
    }
}

impl tendermint_rpc::Request for BroadcastEvidence {
    type Response = evidence::Response;
}

impl SimpleRequest for BroadcastEvidence {
    type Output = evidence::Response;
}

/// The node's validator key: its CometBFT address and secret key.
fn priv_validator_key(t: &TestNetwork, i: usize) -> Result<(account::Id, SigningKey)> {
    let path = t.net.nodes()[i]
        .cometbft_home()
        .join("config/priv_validator_key.json");
    let key: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    let address: account::Id = key["address"]
        .as_str()
        .context("priv_validator_key.json without address")?
        .parse()?;
    let secret = base64::engine::general_purpose::STANDARD.decode(
        key["priv_key"]["value"]
            .as_str()
            .context("priv_validator_key.json without priv_key.value")?,
    )?;
    // Go's ed25519 private key: the 32-byte seed, then the public key.
    let seed: [u8; 32] = secret
        .get(..32)
        .context("short ed25519 private key")?
        .try_into()?;
    Ok((address, SigningKey::from_bytes(seed)))
}

/// A prevote by `address` at `height`/round 0 for a made-up block
/// `tag`, signed over CometBFT's canonical vote sign bytes.
fn signed_prevote(
    chain_id: &chain::Id,
    key: &SigningKey,
    address: account::Id,
    index: u32,
    height: Height,
    time: tendermint::Time,
    tag: &str,
) -> Result<Vote> {
    let hash = |s: &str| tendermint::Hash::Sha256(weft_core::sha256(s.as_bytes()).0);
    let mut vote = Vote {
        vote_type: vote::Type::Prevote,
        height,
        round: Round::default(),
        block_id: Some(block::Id {
            hash: hash(tag),
            part_set_header: parts::Header::new(1, hash(&format!("{tag} parts")))?,
        }),
        timestamp: Some(time),
        validator_address: address,
        validator_index: ValidatorIndex::try_from(index)?,
        signature: None,
        extension: Vec::new(),
        extension_signature: None,
    };
    let sign_bytes = vote.clone().into_signable_vec(chain_id.clone());
    vote.signature = Signature::new(key.sign(&sign_bytes).0)?;
    Ok(vote)
}

async fn validator(client: &NodeClient, operator: &weft_core::Address) -> Result<Value> {
    client
        .abci_query_json(&format!("validator/{operator}"))
        .await
}

async fn run(t: &TestNetwork) -> Result<()> {
    let net = &t.net;
    let rpc = net.nodes()[0].rpc_url();
    let cometbft = rpc_client(&rpc)?;
    let client = &t.clients[0];
    let operator = t.operators()?[OFFENDER].clone();
    let (address, key) = priv_validator_key(t, OFFENDER)?;
    let before = validator(client, &operator.address()).await?;
    ensure!(before["stake"] == SELF_BOND.to_string(), "{before}");
    ensure!(before["tombstoned"] == false, "{before}");

    // The offense: two prevotes at a committed height H, whose header
    // time and validator set CometBFT checks the evidence against.
    let h = cometbft.latest_block().await?.block.header.height;
    let header = cometbft.header(h).await?.header;
    let set = cometbft.validators(h, Paging::All).await?;
    ensure!(set.validators.len() == 4, "four validators at {h}");
    let index = set
        .validators
        .iter()
        .position(|v| v.address == address)
        .context("the offender in the set at H")?;
    let total: u64 = set.validators.iter().map(|v| v.power.value()).sum();
    let power = set.validators[index].power.value();
    let chain_id = header.chain_id.clone();
    let mut votes = ["block a", "block b"]
        .into_iter()
        .map(|tag| {
            signed_prevote(
                &chain_id,
                &key,
                address,
                u32::try_from(index)?,
                h,
                header.time,
                tag,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    // CometBFT wants vote A's block id before vote B's (by hash bytes
    // first, and the hashes differ).
    votes.sort_by(|a, b| {
        let key = |v: &Vote| v.block_id.map(|id| id.hash.as_bytes().to_vec());
        key(a).cmp(&key(b))
    });
    let evidence = json!({
        "type": "tendermint/DuplicateVoteEvidence",
        "value": {
            "vote_a": serde_json::to_value(&votes[0])?,
            "vote_b": serde_json::to_value(&votes[1])?,
            "TotalVotingPower": total.to_string(),
            "ValidatorPower": power.to_string(),
            "Timestamp": header.time.to_rfc3339(),
        },
    });
    cometbft
        .perform(BroadcastEvidence { evidence })
        .await
        .context("broadcast_evidence")?;

    // CometBFT commits it in a block after H.
    let committed_at = eventually(STEP, "the evidence in a block", || {
        let cometbft = &cometbft;
        async move {
            let latest = cometbft.latest_block().await?.block.header.height;
            for at in h.value() + 1..=latest.value() {
                let block = cometbft.block(Height::try_from(at)?).await?.block;
                if block.evidence.iter().next().is_none() {
                    continue;
                }
                return Ok(Some((at, block.evidence.into_vec())));
            }
            Ok(None)
        }
    })
    .await?;
    let (evidence_height, list) = committed_at;
    ensure!(list.len() == 1, "one evidence item: {list:?}");
    match &list[0] {
        tendermint::evidence::Evidence::DuplicateVote(e) => {
            ensure!(e.vote_a.validator_address == address);
            ensure!(e.vote_a.height == h);
        }
        other => bail!("not duplicate-vote evidence: {other:?}"),
    }

    // The app slashed 5 % of its bonded stake and tombstoned it.
    let after = eventually(STEP, "the slash to be visible", || async {
        let v = validator(client, &operator.address()).await?;
        Ok((v["tombstoned"] == true).then_some(v))
    })
    .await?;
    let slashed = SELF_BOND - SELF_BOND * Amount::from(SLASH_BPS) / 10_000;
    ensure!(after["stake"] == slashed.to_string(), "{after}");
    ensure!(after["jailed"] == true, "{after}");

    // CometBFT drops it: the evidence block's validator updates give it
    // power 0, in effect two heights later.
    let left_at = evidence_height + 2;
    net.wait_for_height(0, left_at, STEP).await?;
    let set_at = |at: u64| {
        let cometbft = &cometbft;
        async move {
            let r = cometbft
                .validators(Height::try_from(at)?, Paging::All)
                .await?;
            anyhow::Ok(r.validators)
        }
    };
    ensure!(
        set_at(left_at - 1).await?.len() == 4,
        "still four at {}",
        left_at - 1
    );
    let set = set_at(left_at).await?;
    ensure!(
        set.len() == 3 && !set.iter().any(|v| v.address == address),
        "the offender left CometBFT's set at {left_at}: {set:?}"
    );

    // ... and the chain goes on, signed by the other three (each of them
    // in one of the next three commits: a slow node may miss one).
    net.wait_for_height(0, left_at + 4, STEP)
        .await
        .context("blocks after the tombstoning")?;
    let mut signers: Vec<account::Id> = Vec::new();
    for at in left_at + 2..=left_at + 4 {
        let commit = cometbft
            .block(Height::try_from(at)?)
            .await?
            .block
            .last_commit
            .context("a last commit")?;
        ensure!(commit.signatures.len() == 3, "a commit of three at {at}");
        signers.extend(commit.signatures.iter().filter_map(|s| match s {
            block::CommitSig::BlockIdFlagCommit {
                validator_address, ..
            } => Some(*validator_address),
            _ => None,
        }));
    }
    signers.sort();
    signers.dedup();
    let others: Vec<account::Id> = set.iter().map(|v| v.address).collect();
    ensure!(
        signers.len() == 3 && signers.iter().all(|s| others.contains(s)),
        "the three others sign: {signers:?}"
    );

    // A tombstoned validator never comes back: `Unjail` is refused.
    let unjail = Transaction {
        chain_id: net.chain_id().to_string(),
        nonce: client.account(&operator.address()).await?.next_nonce(),
        actions: vec![Action::Unjail {}],
    }
    .sign(&operator)
    .encode();
    let r = client.broadcast_tx_sync(&unjail).await?;
    ensure!(
        r.code == TxCode::ValidatorTombstoned.value(),
        "Unjail of a tombstoned validator: code {} ({})",
        r.code,
        r.log
    );
    Ok(())
}
