//! A recorded history of load and its checker, shared by the network- and
//! process-fault tests (partitions, crash points, a full disk): the shape
//! of `tests/faults.rs`'s, as new functions so that file stays its own.
//!
//! The load: each user submits one transaction at a time to a node marked
//! up and waits until it is final; one not final within 6 s is resent, the
//! same bytes, to another node. The checker: one block hash and one app
//! hash per height on every node; every accepted transaction included
//! exactly once, or final with a reason.

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
use tokio::task::JoinHandle;
use weft_cli::rpc::NodeClient;
use weft_conductor::RollupBlock;
use weft_core::{Action, RollupId, SignedTransaction, SigningKey, Transaction};

use crate::{block_txs, eventually, header, rpc_client, tx_status, ConductorProc, TestNetwork};

/// The rollup the load writes to.
pub const LOAD_ROLLUP: &str = "faults";

/// One submission and what CheckTx answered.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The transaction hash (upper-case hex).
    pub hash: String,
    /// The node it was sent to.
    pub node: usize,
    /// CheckTx accepted it (or the node already held it).
    pub accepted: bool,
    /// What the node answered.
    pub answer: String,
}

/// Every submission, in order.
pub type History = Arc<Mutex<Vec<Submission>>>;

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
                        rollup_id: RollupId::from_name(LOAD_ROLLUP),
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

/// Load on a network: one task per user, and which nodes it may send to.
pub struct Load {
    /// Per node: true while the load may send to it.
    pub up: Arc<Mutex<Vec<bool>>>,
    history: History,
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts one loader per user of `t`, sending to every node.
    pub fn start(t: &TestNetwork) -> Load {
        let nodes = t.net.nodes().len();
        let up = Arc::new(Mutex::new(vec![true; nodes]));
        let history: History = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let chain_id = t.net.chain_id().to_string();
        let tasks = t
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
        Load {
            up,
            history,
            stop,
            tasks,
        }
    }

    /// Marks `nodes` up or down for the load.
    pub fn mark(&self, nodes: &[usize], is_up: bool) {
        let mut up = self.up.lock().unwrap_or_else(|e| e.into_inner());
        for &i in nodes {
            up[i] = is_up;
        }
    }

    /// Stops the loaders (each sees its in-flight transaction through, at
    /// most a minute) and returns the history.
    pub async fn stop(self) -> Result<Vec<Submission>> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await?;
        }
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        Ok(history.clone())
    }
}

/// Prints the history's counts and refusal classes; fails when fewer than
/// `min_accepted` transactions were accepted (too little load to prove
/// anything).
pub fn summarize(history: &[Submission], min_accepted: usize) -> Result<()> {
    let accepted = history.iter().filter(|s| s.accepted).count();
    eprintln!(
        "history: {} submissions, {accepted} accepted, {} refused or unreachable",
        history.len(),
        history.len() - accepted
    );
    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
    for s in history.iter().filter(|s| !s.accepted) {
        let class: String = s.answer.chars().take(200).collect();
        *refusals.entry(class).or_default() += 1;
    }
    for (class, n) in &refusals {
        eprintln!("  refused {n}x: {class}");
    }
    ensure!(
        accepted >= min_accepted,
        "too little load to prove anything: {accepted} accepted"
    );
    Ok(())
}

/// Node `i`'s height, or `None` while it does not answer.
pub async fn height_of(t: &TestNetwork, i: usize) -> Option<u64> {
    t.net.height(i).await.ok()
}

/// Waits until node `i` is within one block of the highest node; how long.
pub async fn caught_up(t: &TestNetwork, i: usize) -> Result<Duration> {
    let began = Instant::now();
    eventually(Duration::from_secs(120), "the node to catch up", || async {
        let mut best = 0;
        for j in 0..t.net.nodes().len() {
            best = best.max(height_of(t, j).await.unwrap_or(0));
        }
        Ok(height_of(t, i).await.filter(|h| *h + 1 >= best && *h > 0))
    })
    .await?;
    Ok(began.elapsed())
}

/// The checker over the recorded history and every node's chain; returns
/// the highest height it checked (the lowest node's).
pub async fn check(t: &TestNetwork, history: &[Submission]) -> Result<u64> {
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

/// The end of every fault test: a few more seconds of load, the load
/// stopped (in-flight transactions seen through), the mempools let drain,
/// then the checker, the witnesses, the fault lines and the history's
/// summary (at least `min_accepted` accepted).
pub async fn conclude(
    t: &TestNetwork,
    load: Load,
    witnesses: &Witnesses,
    report: &[String],
    min_accepted: usize,
) -> Result<()> {
    tokio::time::sleep(Duration::from_secs(3)).await;
    let history = load.stop().await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let top = check(t, &history).await?;
    witnesses.verify(t, top).await?;
    for line in report {
        eprintln!("fault: {line}");
    }
    summarize(&history, min_accepted)
}

/// What every fault test attaches besides the load: two conductors of the
/// load's rollup and the supply before the faults. [`Witnesses::verify`]
/// then proves both conductors delivered the chain's rollup data, every
/// height once, and every node's total supply is unchanged.
pub struct Witnesses {
    conductors: Conductors,
    supply: serde_json::Value,
}

impl Witnesses {
    /// Starts the conductors and reads node0's supply.
    pub async fn start(t: &TestNetwork) -> Result<Self> {
        Ok(Witnesses {
            conductors: Conductors::start(t)?,
            supply: supply(t, 0).await?,
        })
    }

    /// Checks the conductors up to `top` (from [`check`]) and the supply
    /// on every node; the load must have moved fees (a check that could
    /// not fail proves nothing).
    pub async fn verify(&self, t: &TestNetwork, top: u64) -> Result<()> {
        self.conductors.check(t, top).await?;
        for i in 0..t.net.nodes().len() {
            let now = supply(t, i).await?;
            ensure!(
                now["total"] == self.supply["total"],
                "node{i}: total supply {} at height {}, {} before the faults",
                now["total"],
                now["height"],
                self.supply["total"]
            );
            ensure!(
                now["fee_pool"] != self.supply["fee_pool"],
                "node{i}: no fee reached the pool"
            );
        }
        eprintln!(
            "supply: {} on every node, as before the faults",
            self.supply["total"]
        );
        Ok(())
    }
}

/// Node `i`'s `GET /v1/supply`.
pub async fn supply(t: &TestNetwork, i: usize) -> Result<serde_json::Value> {
    let url = format!("{}/v1/supply", t.net.node(i)?.api_url());
    let v: serde_json::Value = reqwest::get(&url).await?.json().await?;
    ensure!(v["total"].is_string(), "{url}: {v}");
    Ok(v)
}

/// Two conductors of [`LOAD_ROLLUP`], delivering to stdout (NDJSON files).
pub struct Conductors {
    procs: Vec<ConductorProc>,
    outs: Vec<std::path::PathBuf>,
    health: Vec<String>,
}

impl Conductors {
    pub fn start(t: &TestNetwork) -> Result<Self> {
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
                LOAD_ROLLUP.into(),
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
    pub async fn check(&self, t: &TestNetwork, top: u64) -> Result<()> {
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
    let rollup = RollupId::from_name(LOAD_ROLLUP);
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
