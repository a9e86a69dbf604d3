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
//! blocks themselves (the data of every transaction that executed). A transaction CheckTx accepted lives only in that node's
//! mempool until gossiped, so one accepted just before its node is killed
//! can be gone with it (CometBFT's `broadcast_tx_sync` promises no more);
//! the load resends it, byte for byte, as a wallet would, and the checker
//! then finds it in the chain exactly once. Recovery times are printed. `WEFT_FAULT_ROUNDS=N` repeats the
//! sequence N times (the long version).

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use anyhow::{ensure, Context, Result};
use tendermint_rpc::Client;
use weft_cli::rpc::NodeClient;
use weft_conductor::RollupBlock;
use weft_core::{Action, RollupId, SignedTransaction, SigningKey, Transaction};
use weft_e2e::{block_txs, eventually, header, rpc_client, tx_status, ConductorProc, TestNetwork};

/// The rollup the load writes.
const ROLLUP: &str = "faults";

/// One submission and what CheckTx answered.
#[derive(Debug, Clone)]
struct Submission {
    hash: String,
    node: usize,
    accepted: bool,
    answer: String,
}

type History = Arc<Mutex<Vec<Submission>>>;

/// Each user submits one transaction at a time to a node that is up and
/// waits until that node reports it final. A transaction not final within
/// 6 s (its node was killed before gossiping it, say) is sent again, the
/// same bytes, to another node, as a wallet does; a resubmission refused
/// (its nonce used: it was included after all) makes the user re-read its
/// nonce.
async fn load(
    clients: Vec<NodeClient>,
    up: Arc<Mutex<Vec<bool>>>,
    chain_id: String,
    user: SigningKey,
    index: usize,
    history: History,
    stop: Arc<AtomicBool>,
) {
    let mut nonce: Option<u64> = None;
    // The transaction being waited for: its bytes and nonce.
    let mut waiting: Option<(Vec<u8>, u64)> = None;
    let mut turn = index;
    // After `stop`, a transaction still waiting is seen through (resent
    // until final), so the history ends with nothing in flight.
    let mut stopping: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) || waiting.is_some() {
        if stop.load(Ordering::Relaxed) {
            // Never hang the suite: a transaction not final a minute after
            // the stop is left to the checker, which reports it.
            if stopping.get_or_insert_with(Instant::now).elapsed() > Duration::from_secs(60) {
                break;
            }
        }
        turn += 1;
        let live: Vec<usize> = {
            let up = up.lock().unwrap();
            (0..clients.len()).filter(|i| up[*i]).collect()
        };
        if live.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let node = live[turn % live.len()];
        let client = &clients[node];
        let (bytes, n, resubmitted) = match waiting.take() {
            Some((bytes, n)) => (bytes, n, true),
            None => {
                let n = match nonce {
                    Some(n) => n,
                    None => match client.account(&user.address()).await {
                        Ok(a) => a.next_nonce(),
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue;
                        }
                    },
                };
                let tx = Transaction {
                    chain_id: chain_id.clone(),
                    nonce: n,
                    actions: vec![Action::SubmitRollupData {
                        rollup_id: RollupId::from_name(ROLLUP),
                        data: format!("user-{index}-nonce-{n}").into_bytes(),
                    }],
                }
                .sign(&user);
                (tx.encode(), n, false)
            }
        };
        let answer = client.broadcast_tx_sync(&bytes).await;
        let hash = hex::encode_upper(weft_core::sha256(&bytes).0);
        // CometBFT answers a transaction it already holds with an error
        // ("tx already exists in cache"): for a resubmission that is
        // success, and the node's status is what to wait for.
        let held = matches!(&answer, Err(e) if e.to_string().contains("already exists in cache"));
        let accepted = matches!(&answer, Ok(r) if r.code == 0) || held;
        history.lock().unwrap().push(Submission {
            hash: hash.clone(),
            node,
            accepted,
            answer: match &answer {
                Ok(r) => format!("code {} {}", r.code, r.log),
                Err(e) => format!("unreachable: {e}"),
            },
        });
        match &answer {
            Ok(r) if r.code != 0 => {
                // Refused (a resubmission whose nonce is used, say): start
                // again from the chain's nonce.
                nonce = None;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(_) if !held => {
                if resubmitted {
                    waiting = Some((bytes, n));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            _ => {}
        }
        let began = Instant::now();
        let mut done = false;
        while began.elapsed() < Duration::from_secs(6) {
            if let Ok(v) = tx_status(&clients[node], &hash).await {
                if matches!(
                    v["status"].as_str(),
                    Some("included" | "rejected" | "evicted")
                ) {
                    done = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        if done {
            nonce = Some(n + 1);
        } else {
            waiting = Some((bytes, n));
        }
    }
}

/// Node `i`'s `GET /v1/supply`.
async fn supply(t: &TestNetwork, i: usize) -> Result<serde_json::Value> {
    let url = format!("{}/v1/supply", t.net.node(i)?.api_url());
    let v: serde_json::Value = reqwest::get(&url).await?.json().await?;
    ensure!(v["total"].is_string(), "{url}: {v}");
    Ok(v)
}

/// Heights of node `i`, or `None` while it does not answer.
async fn height(t: &TestNetwork, i: usize) -> Option<u64> {
    t.net.height(i).await.ok()
}

/// Waits until node `i` is within one block of the highest node; how long.
async fn caught_up(t: &TestNetwork, i: usize) -> Result<Duration> {
    let began = Instant::now();
    eventually(Duration::from_secs(120), "the node to catch up", || async {
        let mut best = 0;
        for j in 0..t.net.nodes().len() {
            best = best.max(height(t, j).await.unwrap_or(0));
        }
        Ok(height(t, i).await.filter(|h| *h + 1 >= best && *h > 0))
    })
    .await?;
    Ok(began.elapsed())
}

struct Faults<'a> {
    t: &'a TestNetwork,
    up: Arc<Mutex<Vec<bool>>>,
    report: Vec<String>,
}

impl Faults<'_> {
    fn mark(&self, nodes: &[usize], is_up: bool) {
        let mut up = self.up.lock().unwrap();
        for &i in nodes {
            up[i] = is_up;
        }
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
        let stopped_at = height(self.t, 0).await.context("node0 answers")?;
        tokio::time::sleep(Duration::from_secs(4)).await;
        let still = height(self.t, 0).await.context("node0 answers")?;
        ensure!(
            still == stopped_at,
            "with half the power down the chain went on: {stopped_at} -> {still}"
        );
        let began = Instant::now();
        self.t.net.start_node(a).await?;
        self.t.net.start_node(b).await?;
        eventually(Duration::from_secs(120), "the chain to resume", || async {
            Ok(height(self.t, 0).await.filter(|h| *h >= still + 2))
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
    let chain_id = t.net.chain_id().to_string();
    let conductors = Conductors::start(t)?;
    let genesis_supply = supply(t, 0).await?;
    let up = Arc::new(Mutex::new(vec![true; 4]));
    let history: History = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let loaders: Vec<_> = t
        .users
        .iter()
        .enumerate()
        .map(|(i, user)| {
            tokio::spawn(load(
                t.clients.clone(),
                up.clone(),
                chain_id.clone(),
                user.clone(),
                i,
                history.clone(),
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;

    let mut faults = Faults {
        t,
        up: up.clone(),
        report: Vec::new(),
    };
    for _ in 0..rounds {
        faults.kill_and_restart(3).await?;
        faults.pause(2).await?;
        faults.halt_and_resume(2, 3).await?;
        faults.kill_app(1).await?;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for l in loaders {
        l.await?;
    }
    // Let the mempools drain.
    tokio::time::sleep(Duration::from_secs(5)).await;

    let history = history.lock().unwrap().clone();
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
    for line in &faults.report {
        eprintln!("fault: {line}");
    }
    let accepted = history.iter().filter(|s| s.accepted).count();
    eprintln!(
        "history: {} submissions, {accepted} accepted, {} refused or unreachable",
        history.len(),
        history.len() - accepted
    );
    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
    for s in history.iter().filter(|s| !s.accepted) {
        let class: String = s.answer.chars().take(300).collect();
        *refusals.entry(class).or_default() += 1;
    }
    for (class, n) in &refusals {
        eprintln!("  refused {n}x: {class}");
    }
    ensure!(
        accepted >= 50,
        "too little load to prove anything: {accepted}"
    );
    Ok(())
}

/// The checker over the recorded history and every node's chain; returns
/// the highest height it checked.
async fn check(t: &TestNetwork, history: &[Submission]) -> Result<u64> {
    let nodes = t.net.nodes().len();
    let mut top = u64::MAX;
    for i in 0..nodes {
        top = top.min(t.net.height(i).await?);
    }
    // No fork, no divergence: one block hash and one app hash per height.
    let mut included: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for h in 1..=top {
        let first = header(&t.net.node(0)?.rpc_url(), h).await?;
        for i in 1..nodes {
            let other = header(&t.net.node(i)?.rpc_url(), h).await?;
            ensure!(
                other.hash() == first.hash(),
                "height {h}: node{i} committed another block than node0"
            );
            ensure!(
                other.app_hash == first.app_hash,
                "height {h}: node{i}'s app hash differs from node0's"
            );
        }
        for item in block_txs(&t.net.node(0)?.rpc_url(), h).await? {
            let hash = hex::encode_upper(weft_core::sha256(&item).0);
            included.entry(hash).or_default().push(h);
        }
    }
    // Every accepted transaction: exactly once in the chain, or final with
    // a reason at the node that accepted it.
    let mut lost = Vec::new();
    for s in history.iter().filter(|s| s.accepted) {
        match included.get(&s.hash).map(Vec::as_slice) {
            Some([_]) => {}
            Some(heights) => lost.push(format!(
                "{} included {} times: {heights:?}",
                s.hash,
                heights.len()
            )),
            None => {
                let v = tx_status(&t.clients[s.node], &s.hash).await?;
                let status = v["status"].as_str().unwrap_or("?");
                let reason = v["reason"].as_str().unwrap_or("");
                let final_with_reason =
                    matches!(status, "evicted" | "rejected") && !reason.is_empty();
                if !final_with_reason {
                    lost.push(format!(
                        "{} accepted by node{} ({}) is {status} and not in any block",
                        s.hash, s.node, s.answer
                    ));
                }
            }
        }
    }
    ensure!(
        lost.is_empty(),
        "the history does not check:\n{}",
        lost.join("\n")
    );
    eprintln!("checked heights 1..={top} on {nodes} nodes");
    Ok(top)
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
