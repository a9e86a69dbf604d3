//! `weft devnet up`: a local validator network in the foreground, from a
//! fresh home directory until Ctrl-C or SIGTERM.

use std::{collections::BTreeSet, path::PathBuf, time::Duration};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde_json::json;
use tokio::signal::unix::{signal, SignalKind};
use weft_core::{GovernanceParams, StakingParams};
use weft_testnet::{Testnet, TestnetConfig, TestnetStaking, DEVNET_BASE_PORT, DEV_KEY_WARNING};

use crate::output::Output;

/// How long the network may take to reach height 2.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);
/// How often running nodes are checked.
const WATCH_INTERVAL: Duration = Duration::from_secs(3);

/// Local networks.
#[derive(Debug, Subcommand)]
pub enum DevnetCommand {
    /// Creates and runs a fresh local network until Ctrl-C / SIGTERM.
    Up {
        /// Number of validators.
        #[arg(long, default_value_t = 4)]
        validators: usize,
        /// Home directory; a previous devnet there is removed first.
        #[arg(long, default_value = ".devnet", value_name = "DIR")]
        home: PathBuf,
        /// CometBFT timeout_commit in milliseconds (roughly the block time).
        #[arg(long, default_value_t = 1000, value_name = "MS")]
        timeout_commit_ms: u64,
        /// Chain id.
        #[arg(long, default_value = "weft-devnet")]
        chain_id: String,
        /// First port of the port plan: node i uses BASE+10i+{0 p2p, 1 RPC,
        /// 2 ABCI, 3 API}. The default gives node0 CometBFT's usual ports.
        #[arg(long, default_value_t = DEVNET_BASE_PORT, value_name = "BASE")]
        base_port: u16,
        /// Extra synced full nodes that are not validators, each with a
        /// funded operator key (DEV ONLY), listed in devnet.json under
        /// `candidates`. Implies --staking.
        #[arg(long, default_value_t = 0, value_name = "N")]
        candidates: usize,
        /// Give the genesis a staking section: every validator gets a
        /// funded operator key and a self-bond, and governance runs.
        #[arg(long)]
        staking: bool,
        /// With staking: blocks per epoch (the active set is recomputed at
        /// heights divisible by it).
        #[arg(long, default_value_t = 20, value_name = "N")]
        epoch_blocks: u64,
        /// With staking: blocks a proposal is open for votes.
        #[arg(long, default_value_t = 40, value_name = "N")]
        voting_period_blocks: u64,
        /// With staking, a builder relay (`weft-relay`) is started on this
        /// port, every validator fetches winning bids from it with a relay
        /// key its operator registers, and devnet.json lists it as `relay`.
        #[arg(long, default_value_t = 18550, value_name = "PORT")]
        relay_port: u16,
        /// Do not start the relay.
        #[arg(long)]
        no_relay: bool,
    },
}

/// Each devnet validator's self-bond with staking (the default
/// min_self_bond).
const DEVNET_SELF_BOND: u128 = 1_000_000;

/// Runs a `weft devnet` command.
pub async fn run(command: DevnetCommand, out: Output) -> Result<()> {
    let DevnetCommand::Up {
        validators,
        home,
        timeout_commit_ms,
        chain_id,
        base_port,
        candidates,
        staking,
        epoch_blocks,
        voting_period_blocks,
        relay_port,
        no_relay,
    } = command;
    prepare_home(&home, out)?;

    let mut cfg = TestnetConfig::new(&home);
    cfg.validators = validators;
    cfg.candidates = candidates;
    if staking || candidates > 0 {
        cfg.staking = Some(TestnetStaking {
            params: StakingParams {
                epoch_blocks,
                ..StakingParams::default()
            },
            governance: Some(GovernanceParams {
                voting_period_blocks,
                ..GovernanceParams::default()
            }),
            self_bond: DEVNET_SELF_BOND,
        });
        cfg.relay = !no_relay;
        cfg.relay_port = Some(relay_port);
    }
    cfg.chain_id = chain_id;
    cfg.timeout_commit = Duration::from_millis(timeout_commit_ms);
    cfg.base_port = Some(base_port);
    let net = Testnet::create(cfg).await.context("creating the devnet")?;
    out.note(format!(
        "created {validators}-validator devnet in {}; starting...",
        net.home().display()
    ));

    let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let startup = async {
        net.start().await?;
        net.wait_all_for_height(2, STARTUP_TIMEOUT).await?;
        register_relay_keys(&net).await.map_err(|e| {
            weft_testnet::TestnetError::InvalidConfig(format!("registering relay keys: {e:#}"))
        })
    };
    let started = tokio::select! {
        r = startup => Some(r),
        _ = tokio::signal::ctrl_c() => None,
        _ = sigterm.recv() => None,
    };
    match started {
        None => {
            out.note("interrupted during startup; stopping nodes...");
            net.shutdown().await?;
            return Ok(());
        }
        Some(Err(e)) => {
            let _ = net.shutdown().await;
            return Err(e).context(format!(
                "the devnet did not start; node logs are under {}",
                net.home().display()
            ));
        }
        Some(Ok(())) => {}
    }

    let devnet_json = net.home().join("devnet.json");
    net.write_devnet_json(&devnet_json)?;
    report_ready(&net, &devnet_json, out);

    let mut reported = BTreeSet::new();
    let mut ticker = tokio::time::interval(WATCH_INTERVAL);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = sigterm.recv() => break,
            _ = ticker.tick() => {
                for i in 0..net.nodes().len() {
                    if reported.contains(&i) {
                        continue;
                    }
                    if let Err(e) = net.check_running(i) {
                        reported.insert(i);
                        let message = match &e {
                            weft_testnet::TestnetError::ProcessExited { node, process, status, log, .. } => format!(
                                "node{node}'s {process} exited unexpectedly ({status}); see {}",
                                log.display()
                            ),
                            other => other.to_string(),
                        };
                        if out.json {
                            println!("{}", json!({ "event": "node_exited", "node": net.nodes()[i].name, "error": message }));
                        } else {
                            eprintln!("warning: {message}; the other nodes keep running");
                        }
                    }
                }
            }
        }
    }
    out.note("stopping the devnet...");
    net.shutdown().await?;
    out.note("devnet stopped.");
    Ok(())
}

/// With a relay: each validator's operator registers the relay key its
/// sequencer signs winner fetches with, and waits until all are committed.
async fn register_relay_keys(net: &Testnet) -> Result<()> {
    use weft_core::{Action, Transaction};
    if net.relay_url().is_none() {
        return Ok(());
    }
    let client = weft_cli::rpc::NodeClient::new(&net.node(0)?.rpc_url())?;
    let mut hashes = Vec::new();
    for i in 0..net.validator_count() {
        let (Some((operator, _)), Some(relay_key)) = (net.operator(i), net.relay_key(i)) else {
            continue;
        };
        let nonce = client.account(&operator.address()).await?.next_nonce();
        let tx = Transaction {
            chain_id: net.chain_id().to_string(),
            nonce,
            actions: vec![Action::EditValidator {
                name: None,
                website: None,
                commission_bps: None,
                relay_key: Some(relay_key.public_key().0),
            }],
        }
        .sign(operator);
        let check = client.broadcast_tx_sync(&tx.encode()).await?;
        anyhow::ensure!(
            check.code == 0,
            "CheckTx refused EditValidator: {}",
            check.log
        );
        hashes.push(check.hash);
    }
    let deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;
    for hash in hashes {
        loop {
            if let Some(tx) = client.tx(&hash).await? {
                anyhow::ensure!(tx.code == 0, "EditValidator failed: {}", tx.log);
                break;
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "EditValidator {hash} not committed in time"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// Removes a previous devnet at `home`, refusing to delete a directory
/// that does not look like one.
fn prepare_home(home: &std::path::Path, out: Output) -> Result<()> {
    if !home.exists() {
        return Ok(());
    }
    let is_empty = std::fs::read_dir(home)
        .with_context(|| format!("reading {}", home.display()))?
        .next()
        .is_none();
    let is_devnet = home.join("testnet.json").exists() || home.join("devnet.json").exists();
    if !is_empty && !is_devnet {
        bail!(
            "{} exists and does not look like a devnet home (no testnet.json); refusing to delete it, pass another --home",
            home.display()
        );
    }
    out.note(format!(
        "removing the previous devnet in {}",
        home.display()
    ));
    std::fs::remove_dir_all(home).with_context(|| format!("removing {}", home.display()))?;
    Ok(())
}

fn report_ready(net: &Testnet, devnet_json: &std::path::Path, out: Output) {
    let nodes: Vec<_> = net
        .nodes()
        .iter()
        .map(|n| {
            json!({
                "name": n.name,
                "rpc": n.rpc_url(),
                "api": n.api_url(),
                "p2p": n.p2p_address(),
                "abci": n.abci_address(),
                "logs": { "cometbft": n.cometbft_log(), "sequencer": n.sequencer_log() },
            })
        })
        .collect();
    let candidates = net.devnet_file().candidates;
    let value = json!({
        "candidates": candidates,
        "event": "ready",
        "chain_id": net.chain_id(),
        "home": net.home(),
        "dev_key": net.dev_key_path(),
        "dev_address": net.dev_key().address(),
        "dev_key_warning": DEV_KEY_WARNING,
        "devnet_json": devnet_json,
        "nodes": nodes,
        "relay": net.relay_url(),
    });
    out.emit(&value, || {
        let mut text = format!(
            "devnet is up: chain id {}, {} validators, {} candidates\n",
            net.chain_id(),
            net.validator_count(),
            candidates.len()
        );
        for n in net.nodes() {
            text.push_str(&format!(
                "\n{}\n  CometBFT RPC:  {}\n  sequencer API: {}\n  p2p:           {}\n  logs:          {}\n                 {}\n",
                n.name,
                n.rpc_url(),
                n.api_url(),
                n.p2p_address(),
                n.cometbft_log().display(),
                n.sequencer_log().display(),
            ));
        }
        for c in &candidates {
            text.push_str(&format!(
                "\ncandidate {}: operator {} (key {}, DEV ONLY), consensus key {}\n  weft tx register-validator --devnet DEVNET --key {} --consensus-key {} --name {}\n",
                c.name,
                c.operator,
                c.operator_key.display(),
                c.consensus_key,
                c.operator_key.display(),
                c.consensus_key,
                c.name,
            ));
        }
        if let Some(relay) = net.relay_url() {
            text.push_str(&format!(
                "\nbuilder relay: {relay} (every validator fetches winners from it)\n  weft bid submit --relay {relay} --devnet DEVNET --key KEY --payload ROLLUP=HEX --amount N\n"
            ));
        }
        text.push_str(&format!(
            "\ndev key:     {} ({})\n             {DEV_KEY_WARNING}\ndevnet.json: {}\n\ntry: weft query account {} --devnet {}\nCtrl-C stops the network.",
            net.dev_key_path().display(),
            net.dev_key().address(),
            devnet_json.display(),
            net.dev_key().address(),
            devnet_json.display(),
        ));
        text
    });
}
