//! The fault suite's short version (issue 14's first slice): four real
//! validators under a steady load that records every submission and its
//! CheckTx answer, through a sequence of process faults:
//!
//! 1. `kill -9` one validator, restart it;
//! 2. SIGSTOP one validator for a few seconds, SIGCONT it;
//! 3. `kill -9` two validators: the chain must stop (never fork), then
//!    resume once they are back;
//! 4. `kill -9` one sequencer alone (CometBFT exits by design), restart
//!    both: the ABCI handshake replays what the app missed.
//!
//! Two conductors of the load's rollup run throughout, each failing over
//! across the four nodes' APIs (in opposite orders), so every fault takes
//! an endpoint from one of them.
//!
//! After the faults the checker proves over the recorded history: every
//! accepted transaction is included exactly once or has a final status
//! with a reason; every node has the same block hash and app hash at every
//! height; the rollup's delivered sequence is identical at both conductors
//! (every height once, in order) and equal to the chain's, read from the
//! blocks themselves (the data of every transaction that executed); the
//! total supply is unchanged on every node. A transaction CheckTx accepted
//! lives only in that node's mempool until gossiped, so one accepted just
//! before its node is killed can be gone with it (CometBFT's
//! `broadcast_tx_sync` promises no more); the load (`weft_e2e::history`)
//! resends it, byte for byte, as a wallet would, and the checker then
//! finds it in the chain exactly once. Recovery times are printed.
//! `WEFT_FAULT_ROUNDS=N` repeats the sequence N times (the long version).

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::{ensure, Context, Result};
use tendermint_rpc::Client;
use weft_conductor::RollupBlock;
use weft_core::{Action, RollupId, SignedTransaction};
use weft_e2e::{
    block_txs, eventually,
    history::{caught_up, check, height_of, summarize, Load, LOAD_ROLLUP},
    rpc_client, ConductorProc, TestNetwork,
};

/// The rollup the load writes.
const ROLLUP: &str = LOAD_ROLLUP;

/// Node `i`'s `GET /v1/supply`.
async fn supply(t: &TestNetwork, i: usize) -> Result<serde_json::Value> {
    let url = format!("{}/v1/supply", t.net.node(i)?.api_url());
    let v: serde_json::Value = reqwest::get(&url).await?.json().await?;
    ensure!(v["total"].is_string(), "{url}: {v}");
    Ok(v)
}

struct Faults<'a> {
    t: &'a TestNetwork,
    load: &'a Load,
    report: Vec<String>,
}

impl Faults<'_> {
    fn mark(&self, nodes: &[usize], is_up: bool) {
        self.load.mark(nodes, is_up);
    }

    async fn kill_and_restart(&mut self, i: usize) -> Result<()> {
        self.mark(&[i], false);
        self.t.net.kill_node(i)?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        self.t.net.start_node(i).await?;
        let took = caught_up(self.t, i).await?;
        self.mark(&[i], true);
        self.report.push(format!(
            "kill -9 node{i} for 3 s: caught up {took:.1?} after restart"
        ));
        Ok(())
    }

    async fn pause(&mut self, i: usize) -> Result<()> {
        self.mark(&[i], false);
        self.t.net.pause_node(i)?;
        tokio::time::sleep(Duration::from_secs(4)).await;
        self.t.net.resume_node(i)?;
        let took = caught_up(self.t, i).await?;
        self.mark(&[i], true);
        self.report.push(format!(
            "SIGSTOP node{i} for 4 s: caught up {took:.1?} after SIGCONT"
        ));
        Ok(())
    }

    async fn halt_and_resume(&mut self, a: usize, b: usize) -> Result<()> {
        self.mark(&[a, b], false);
        self.t.net.kill_node(a)?;
        self.t.net.kill_node(b)?;
        // In-flight rounds may finish one more block; then nothing.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let stopped_at = height_of(self.t, 0).await.context("node0 answers")?;
        tokio::time::sleep(Duration::from_secs(4)).await;
        let still = height_of(self.t, 0).await.context("node0 answers")?;
        ensure!(
            still == stopped_at,
            "with half the power down the chain went on: {stopped_at} -> {still}"
        );
        let began = Instant::now();
        self.t.net.start_node(a).await?;
        self.t.net.start_node(b).await?;
        eventually(Duration::from_secs(120), "the chain to resume", || async {
            Ok(height_of(self.t, 0).await.filter(|h| *h >= still + 2))
        })
        .await?;
        let resumed = began.elapsed();
        caught_up(self.t, a).await?;
        caught_up(self.t, b).await?;
        self.mark(&[a, b], true);
        self.report.push(format!(
            "kill -9 node{a} and node{b}: halted at {still} (no block for 4 s), resumed {resumed:.1?} after restart"
        ));
        Ok(())
    }

    async fn kill_app(&mut self, i: usize) -> Result<()> {
        self.mark(&[i], false);
        self.t.net.kill_app(i)?;
        // CometBFT exits once it loses its app.
        let exited = eventually(Duration::from_secs(30), "CometBFT to exit", || async {
            Ok(self.t.net.check_running(i).is_err().then_some(()))
        })
        .await;
        self.t.net.start_node(i).await?;
        let took = caught_up(self.t, i).await?;
        self.mark(&[i], true);
        self.report.push(format!(
            "kill -9 node{i}'s sequencer alone: CometBFT {} ; both restarted, handshake replayed, caught up {took:.1?}",
            if exited.is_ok() { "exited" } else { "did NOT exit" }
        ));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_lose_nothing_and_never_fork() -> Result<()> {
    let t = TestNetwork::start(4, 8).await?;
    let result = run(&t).await;
    t.finish(result).await
}

async fn run(t: &TestNetwork) -> Result<()> {
    let rounds: usize = std::env::var("WEFT_FAULT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let conductors = Conductors::start(t)?;
    let genesis_supply = supply(t, 0).await?;
    let load = Load::start(t);
    tokio::time::sleep(Duration::from_secs(3)).await;

    let mut faults = Faults {
        t,
        load: &load,
        report: Vec::new(),
    };
    for _ in 0..rounds {
        faults.kill_and_restart(3).await?;
        faults.pause(2).await?;
        faults.halt_and_resume(2, 3).await?;
        faults.kill_app(1).await?;
    }
    let report = faults.report;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let history = load.stop().await?;
    // Let the mempools drain.
    tokio::time::sleep(Duration::from_secs(5)).await;

    let top = check(t, &history).await?;
    conductors.check(t, top).await?;
    // Supply: conserved on every node, and the load moved some of it (the
    // fees), so the check is not vacuous.
    for i in 0..t.net.nodes().len() {
        let now = supply(t, i).await?;
        ensure!(
            now["total"] == genesis_supply["total"],
            "node{i}: total supply {} at height {}, {} before the faults",
            now["total"],
            now["height"],
            genesis_supply["total"]
        );
        ensure!(
            now["fee_pool"] != genesis_supply["fee_pool"],
            "node{i}: no fee reached the pool"
        );
    }
    eprintln!(
        "supply: {} on every node, as before the faults",
        genesis_supply["total"]
    );
    for line in &report {
        eprintln!("fault: {line}");
    }
    summarize(&history, 50)
}

/// Two conductors of [`ROLLUP`], delivering to stdout (NDJSON files).
struct Conductors {
    procs: Vec<ConductorProc>,
    outs: Vec<std::path::PathBuf>,
    health: Vec<String>,
}

impl Conductors {
    fn start(t: &TestNetwork) -> Result<Self> {
        let nodes = t.net.nodes();
        let genesis = nodes[0].cometbft_home().join("config/genesis.json");
        let home = t.home();
        let mut c = Conductors {
            procs: Vec::new(),
            outs: Vec::new(),
            health: Vec::new(),
        };
        for (name, order) in [("a", [0, 1, 2, 3]), ("b", [3, 2, 1, 0])] {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let mut args: Vec<String> = vec![
                "--rollup".into(),
                ROLLUP.into(),
                "--genesis".into(),
                genesis.display().to_string(),
                "--deliver".into(),
                "stdout".into(),
                "--cursor".into(),
                home.join(format!("conductor-{name}.cursor"))
                    .display()
                    .to_string(),
                "--listen".into(),
                format!("127.0.0.1:{port}"),
                "--log".into(),
                "info".into(),
            ];
            for i in order {
                args.extend(["--endpoint".into(), nodes[i].api_url()]);
            }
            let out = home.join(format!("conductor-{name}.ndjson"));
            c.procs.push(ConductorProc::start_split(
                args,
                out.clone(),
                home.join(format!("conductor-{name}.log")),
            )?);
            c.outs.push(out);
            c.health.push(format!("http://127.0.0.1:{port}/health"));
        }
        Ok(c)
    }

    /// Both conductors reach `top`; each delivered every height once, in
    /// order; their sequences are identical and equal to the chain's.
    async fn check(&self, t: &TestNetwork, top: u64) -> Result<()> {
        let http = reqwest::Client::new();
        for url in &self.health {
            eventually(
                Duration::from_secs(120),
                "a conductor to reach the top",
                || async {
                    let delivered = match http.get(url).send().await {
                        Ok(r) => r.json::<serde_json::Value>().await.ok(),
                        Err(_) => None,
                    }
                    .and_then(|v| v["delivered_height"].as_u64());
                    Ok(delivered.filter(|h| *h >= top))
                },
            )
            .await?;
        }
        let chain = chain_sequence(t, top).await?;
        for out in &self.outs {
            let mut delivered: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
            let mut last = 0;
            for line in std::fs::read_to_string(out)?.lines() {
                let block: RollupBlock = serde_json::from_str(line)
                    .with_context(|| format!("{}: not a delivered block: {line}", out.display()))?;
                ensure!(
                    block.height > last,
                    "{}: height {} delivered after {last}",
                    out.display(),
                    block.height
                );
                last = block.height;
                if block.height <= top && !block.txs.is_empty() {
                    delivered.insert(block.height, block.txs);
                }
            }
            ensure!(
                delivered == chain,
                "{}: the delivered sequence ({} heights with data) is not the chain's ({})",
                out.display(),
                delivered.len(),
                chain.len()
            );
        }
        let payloads: usize = chain.values().map(Vec::len).sum();
        eprintln!(
            "conductors: both delivered {payloads} payloads at {} heights up to {top}, identical to the chain's",
            chain.len()
        );
        Ok(())
    }
}

/// The rollup's data per height, read from node0's blocks: every
/// transaction that executed (code 0), in block order.
async fn chain_sequence(t: &TestNetwork, top: u64) -> Result<BTreeMap<u64, Vec<Vec<u8>>>> {
    let rpc_url = t.net.node(0)?.rpc_url();
    let rpc = rpc_client(&rpc_url)?;
    let rollup = RollupId::from_name(ROLLUP);
    let mut chain = BTreeMap::new();
    for h in 1..=top {
        let items = block_txs(&rpc_url, h).await?;
        let results = rpc
            .block_results(tendermint::block::Height::try_from(h)?)
            .await?
            .txs_results
            .unwrap_or_default();
        ensure!(
            results.len() == items.len(),
            "height {h}: {} items, {} results",
            items.len(),
            results.len()
        );
        let mut data = Vec::new();
        for (item, result) in items.iter().zip(&results) {
            // Commitments and the listed commit are not transactions.
            let Ok(tx) = SignedTransaction::decode(item) else {
                continue;
            };
            if !result.code.is_ok() {
                continue;
            }
            for action in &tx.transaction.actions {
                if let Action::SubmitRollupData { rollup_id, data: d } = action {
                    if *rollup_id == rollup {
                        data.push(d.clone());
                    }
                }
            }
        }
        if !data.is_empty() {
            chain.insert(h, data);
        }
    }
    Ok(chain)
}
