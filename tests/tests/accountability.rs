//! Downtime accountability on a real network: four CometBFT validators
//! with a staking genesis (short epochs and downtime window). One
//! validator's CometBFT is paused with SIGSTOP past the downtime window:
//! the app jails it and CometBFT's own `/validators` stops listing it
//! while the other three keep producing blocks. After SIGCONT its
//! operator sends `Unjail` once the jail period is over, and the
//! validator is back in CometBFT's set at the next epoch.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use base64::Engine;
use nix::{sys::signal, unistd::Pid};
use serde_json::{json, Value};
use tendermint_rpc::{Client, Paging};
use weft_cli::rpc::NodeClient;
use weft_core::{Action, GenesisAccount, SigningKey, Transaction, TxCode};
use weft_e2e::{eventually, rpc_client, TEST_TIMEOUT_COMMIT};
use weft_testnet::{Testnet, TestnetConfig};

const EPOCH_BLOCKS: u64 = 10;
const SELF_BOND: u128 = 10_000_000;
/// The paused validator.
const PAUSED: usize = 3;

/// The staking section: every node's validator key, owned by its own
/// operator account, with equal self-bonds; a 10-height downtime window
/// allowing 5 misses; jail for 5 blocks.
fn staking_section(net: &Testnet, operators: &[SigningKey]) -> Result<Value> {
    let mut validators = Vec::new();
    for (node, operator) in net.nodes().iter().zip(operators) {
        let path = node.cometbft_home().join("config/priv_validator_key.json");
        let key: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
        let b64 = key["pub_key"]["value"]
            .as_str()
            .context("priv_validator_key.json without pub_key.value")?;
        let consensus_key = base64::engine::general_purpose::STANDARD.decode(b64)?;
        validators.push(json!({
            "operator": operator.address(),
            "consensus_key": hex::encode(consensus_key),
            "name": node.name,
            "commission_bps": 500,
            "self_bond": SELF_BOND.to_string(),
        }));
    }
    Ok(json!({
        "params": {
            "unbonding_blocks": 100,
            "epoch_blocks": EPOCH_BLOCKS,
            "max_validators": 10,
            "max_power_share_bps": 10000,
            "min_self_bond": "1000",
            "downtime_window_blocks": 10,
            "downtime_max_missed_bps": 5000,
            "jail_blocks": 5,
        },
        "validators": validators,
    }))
}

async fn cometbft_validators(rpc_url: &str) -> Result<Vec<String>> {
    let r = rpc_client(rpc_url)?
        .latest_block()
        .await
        .context("latest block")?;
    let v = rpc_client(rpc_url)?
        .validators(r.block.header.height, Paging::All)
        .await
        .context("validators")?;
    let mut keys: Vec<String> = v
        .validators
        .iter()
        .map(|v| hex::encode(v.pub_key.to_bytes()))
        .collect();
    keys.sort();
    Ok(keys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_validator_is_jailed_out_of_cometbft_and_returns_after_unjail() -> Result<()> {
    let home = tempfile::Builder::new()
        .prefix("weft-e2e-accountability-")
        .tempdir()?;
    let operators: Vec<SigningKey> = (0..4).map(|_| SigningKey::generate()).collect();
    let mut cfg = TestnetConfig::new(home.path());
    cfg.validators = 4;
    cfg.timeout_commit = TEST_TIMEOUT_COMMIT;
    cfg.extra_accounts = operators
        .iter()
        .map(|k| GenesisAccount {
            address: k.address(),
            balance: 1_000_000_000_000,
        })
        .collect();
    let net = Testnet::create(cfg).await.context("creating the testnet")?;
    // Give the genesis a staking section (InitChain returns its set to
    // CometBFT, replacing genesis.json's validators).
    let staking = staking_section(&net, &operators)?;
    for node in net.nodes() {
        let path = node.cometbft_home().join("config/genesis.json");
        let mut genesis: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
        genesis["app_state"]["staking"] = staking.clone();
        std::fs::write(&path, serde_json::to_vec_pretty(&genesis)?)?;
    }
    net.start().await.context("starting the testnet")?;
    let result = run(&net, &operators).await;
    let stopped = net.shutdown().await;
    if result.is_err() {
        eprintln!(
            "network home kept for inspection: {}",
            home.keep().display()
        );
    }
    result.and(stopped.map_err(Into::into))
}

async fn run(net: &Testnet, operators: &[SigningKey]) -> Result<()> {
    net.wait_all_for_height(2, Duration::from_secs(90))
        .await
        .context("waiting for the first blocks")?;
    let rpc = net.nodes()[0].rpc_url();
    let all = cometbft_validators(&rpc).await?;
    assert_eq!(all.len(), 4, "the staking genesis set");
    let paused_key = {
        let path = net.nodes()[PAUSED]
            .cometbft_home()
            .join("config/priv_validator_key.json");
        let key: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
        hex::encode(
            base64::engine::general_purpose::STANDARD
                .decode(key["pub_key"]["value"].as_str().unwrap_or_default())?,
        )
    };
    assert!(all.contains(&paused_key));

    // Pause the validator's CometBFT: it stops signing; three of four
    // (75 % of the power) keep the chain going.
    let pid = net
        .pids(PAUSED)?
        .cometbft
        .context("the paused node's CometBFT is not running")?;
    let pid = Pid::from_raw(i32::try_from(pid)?);
    signal::kill(pid, signal::Signal::SIGSTOP)?;
    let paused_at = net.height(0).await?;
    let three = eventually(
        Duration::from_secs(60),
        "the jailed validator to leave CometBFT's set",
        || {
            let rpc = rpc.clone();
            async move {
                let set = cometbft_validators(&rpc).await?;
                Ok((set.len() == 3).then_some(set))
            }
        },
    )
    .await;
    let three = match three {
        Ok(set) => set,
        Err(e) => {
            signal::kill(pid, signal::Signal::SIGCONT)?;
            return Err(e);
        }
    };
    assert!(!three.contains(&paused_key));
    // The chain goes on without it.
    let jailed_at = net.height(0).await?;
    net.wait_for_height(0, jailed_at + 3, Duration::from_secs(30))
        .await
        .context("blocks after the jailing")?;
    assert!(jailed_at > paused_at);

    // Back on: it catches up, and its operator unjails it once the jail
    // period (5 blocks) is over; CheckTx says `validator_jailed` before.
    signal::kill(pid, signal::Signal::SIGCONT)?;
    let client = NodeClient::new(&rpc)?;
    let chain_id = net.chain_id().to_string();
    let unjail = Transaction {
        chain_id,
        nonce: 0,
        actions: vec![Action::Unjail {}],
    }
    .sign(&operators[PAUSED])
    .encode();
    let hash = eventually(Duration::from_secs(60), "Unjail to be admitted", || {
        let (client, unjail) = (&client, &unjail);
        async move {
            let r = client.broadcast_tx_sync(unjail).await?;
            if r.code == TxCode::Ok.value() {
                return Ok(Some(r.hash));
            }
            if r.code != TxCode::ValidatorJailed.value() {
                bail!("Unjail refused with code {}: {}", r.code, r.log);
            }
            Ok(None)
        }
    })
    .await?;
    let committed = eventually(Duration::from_secs(60), "Unjail to be committed", || {
        let (client, hash) = (&client, &hash);
        async move { client.tx(hash).await }
    })
    .await?;
    assert_eq!(committed.code, 0, "{}", committed.log);
    // Back in CometBFT's set at the next epoch (then two heights later).
    let back = eventually(Duration::from_secs(90), "the validator to return", || {
        let rpc = rpc.clone();
        async move {
            let set = cometbft_validators(&rpc).await?;
            Ok((set.len() == 4).then_some(set))
        }
    })
    .await?;
    assert!(back.contains(&paused_key));
    let returned_at = net.height(0).await?;
    assert!(
        returned_at >= committed.height.div_ceil(EPOCH_BLOCKS) * EPOCH_BLOCKS,
        "returned at {returned_at}, before the epoch after the Unjail at {}",
        committed.height
    );
    // And it signs again: the chain keeps going with all four.
    net.wait_for_height(PAUSED, returned_at + 3, Duration::from_secs(60))
        .await
        .context("the unjailed node follows the chain")?;
    Ok(())
}
