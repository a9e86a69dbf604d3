//! Conductors on a real 4-validator network, one per rollup, delivering to
//! a small test rollup that records what it executes: each rollup receives
//! exactly its own data in sequencer order, every height once; a conductor
//! SIGKILLed at random moments under load resumes with no gap and no
//! duplicate; a conductor whose first endpoint dies carries on through the
//! second; and a tampering proxy (altered, dropped, reordered or swapped
//! data, a forged commit signature, a batch for the wrong height) is caught
//! every time, with nothing tampered ever delivered.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, AtomicU8, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use anyhow::{ensure, Context, Result};
use axum::{
    extract::{Path, State},
    http::{StatusCode, Uri},
    routing::get,
    Json, Router,
};
use base64::{engine::general_purpose::STANDARD, Engine};
use serde_json::{json, Value};
use weft_conductor::RollupBlock;
use weft_core::{Action, RollupBatchProof, RollupId, Transaction};
use weft_e2e::{ConductorProc, TestNetwork};

const ROLLUPS: [&str; 3] = ["alpha", "beta", "gamma"];

// ---------------------------------------------------------------- test rollup

#[derive(Default, Clone)]
struct RollupLog {
    executed: Vec<(u64, Vec<Vec<u8>>)>,
    duplicates: u64,
    out_of_order: Vec<String>,
}

type Rollups = Arc<Mutex<BTreeMap<String, RollupLog>>>;

async fn rollup_head(State(r): State<Rollups>, Path(name): Path<String>) -> Json<Value> {
    let logs = r.lock().unwrap();
    let head = logs
        .get(&name)
        .and_then(|l| l.executed.last())
        .map(|(h, _)| *h);
    Json(json!({ "height": head }))
}

async fn rollup_execute(
    State(r): State<Rollups>,
    Path(name): Path<String>,
    Json(block): Json<RollupBlock>,
) -> (StatusCode, Json<Value>) {
    let mut logs = r.lock().unwrap();
    let log = logs.entry(name).or_default();
    let head = log.executed.last().map(|(h, _)| *h).unwrap_or(0);
    let hash = |h: u64| format!("rollup-block-{h}");
    if block.height <= head {
        log.duplicates += 1;
        return (
            StatusCode::OK,
            Json(json!({ "block_hash": hash(block.height) })),
        );
    }
    if block.height != head + 1 {
        log.out_of_order
            .push(format!("got {} after {head}", block.height));
        return (StatusCode::CONFLICT, Json(json!({ "error": "gap" })));
    }
    log.executed.push((block.height, block.txs));
    (
        StatusCode::OK,
        Json(json!({ "block_hash": hash(block.height) })),
    )
}

async fn serve(router: Router) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(format!("http://{addr}"))
}

// ------------------------------------------------------------- tamper proxy

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Tamper {
    Honest = 0,
    AlterTx,
    DropTx,
    Reorder,
    SwapRollup,
    ForgeSignature,
    WrongHeight,
}

const TAMPERS: [Tamper; 6] = [
    Tamper::AlterTx,
    Tamper::DropTx,
    Tamper::Reorder,
    Tamper::SwapRollup,
    Tamper::ForgeSignature,
    Tamper::WrongHeight,
];

#[derive(Clone)]
struct Proxy {
    upstream: String,
    mode: Arc<AtomicU8>,
    http: reqwest::Client,
}

async fn get_json(http: &reqwest::Client, url: &str) -> Option<Value> {
    http.get(url).send().await.ok()?.json().await.ok()
}

async fn proxy(State(p): State<Proxy>, uri: Uri) -> (StatusCode, Json<Value>) {
    let url = format!(
        "{}{}",
        p.upstream,
        uri.path_and_query().map(|x| x.as_str()).unwrap_or("/")
    );
    let Ok(resp) = p.http.get(&url).send().await else {
        return (StatusCode::BAD_GATEWAY, Json(json!({ "code": "proxy" })));
    };
    let status = resp.status();
    let mut body: Value = resp.json().await.unwrap_or(Value::Null);
    let mode = p.mode.load(Ordering::SeqCst);
    if mode != Tamper::Honest as u8 && uri.path().ends_with("/batches") {
        tamper(&p, mode, &mut body).await;
    }
    (
        StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::OK),
        Json(body),
    )
}

async fn tamper(p: &Proxy, mode: u8, range: &mut Value) {
    let Some(items) = range["items"].as_array_mut() else {
        return;
    };
    // Content tampering needs a height where gamma has data.
    let Some(i) = items.iter().position(|it| {
        it["batch"]["items"]
            .as_array()
            .is_some_and(|a| a.len() >= 2)
    }) else {
        return;
    };
    let item = &mut items[i];
    let height = item["height"].as_u64().unwrap_or(0);
    let gamma = RollupId::from_name("gamma").to_hex();
    match mode {
        m if m == Tamper::AlterTx as u8 => {
            item["batch"]["items"][0] = json!(STANDARD.encode(b"tampered!"))
        }
        m if m == Tamper::DropTx as u8 => {
            item["batch"]["items"].as_array_mut().map(|a| a.pop());
        }
        m if m == Tamper::Reorder as u8 => {
            if let Some(a) = item["batch"]["items"].as_array_mut() {
                a.swap(0, 1);
            }
        }
        m if m == Tamper::SwapRollup as u8 => {
            let alpha = RollupId::from_name("alpha").to_hex();
            let url = format!("{}/v1/rollups/{alpha}/batches/{height}", p.upstream);
            if let Some(other) = get_json(&p.http, &url).await {
                item["batch"] = other["batch"].clone();
                item["batch"]["rollup_id"] = json!(gamma);
            }
        }
        m if m == Tamper::ForgeSignature as u8 => {
            if let Some(sigs) = item["signed_header"]["commit"]["signatures"].as_array_mut() {
                if let Some(sig) = sigs.iter_mut().find(|s| s["signature"].is_string()) {
                    let mut raw = STANDARD
                        .decode(sig["signature"].as_str().unwrap_or_default())
                        .unwrap_or_default();
                    if let Some(b) = raw.first_mut() {
                        *b ^= 0x01;
                    }
                    sig["signature"] = json!(STANDARD.encode(raw));
                }
            }
        }
        m if m == Tamper::WrongHeight as u8 => {
            let url = format!(
                "{}/v1/rollups/{gamma}/batches/{}",
                p.upstream,
                height.saturating_sub(1).max(1)
            );
            if let Some(other) = get_json(&p.http, &url).await {
                *item = other;
            }
        }
        _ => {}
    }
}

// --------------------------------------------------------------- conductors

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn head(rollups: &Rollups, name: &str) -> u64 {
    rollups
        .lock()
        .unwrap()
        .get(name)
        .and_then(|l| l.executed.last())
        .map(|(h, _)| *h)
        .unwrap_or(0)
}

async fn refused(health_url: &str) -> Result<u64> {
    let v: Value = reqwest::get(health_url).await?.json().await?;
    v["refused"].as_u64().context("refused")
}

async fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Result<()> {
    let start = Instant::now();
    while !f() {
        ensure!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// A tiny deterministic PRNG for kill timings (no extra dependency).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conductors_deliver_exactly_once_verified_through_kills_failover_and_tampering(
) -> Result<()> {
    let t = TestNetwork::start(4, 3).await?;
    let result = run(&t).await;
    t.finish(result).await
}

async fn run(t: &TestNetwork) -> Result<()> {
    let chain = t.net.chain_id().to_string();
    let nodes = t.net.nodes();
    let genesis = nodes[0].cometbft_home().join("config/genesis.json");

    let rollups: Rollups = Arc::default();
    let rollup_url = serve(
        Router::new()
            .route("/{name}", get(rollup_head).post(rollup_execute))
            .with_state(rollups.clone()),
    )
    .await?;
    let mode = Arc::new(AtomicU8::new(Tamper::Honest as u8));
    let proxy_url = serve(Router::new().fallback(proxy).with_state(Proxy {
        upstream: nodes[3].api_url(),
        mode: mode.clone(),
        http: reqwest::Client::new(),
    }))
    .await?;

    // Load: every ~200 ms, user0 → alpha, user1 → beta, user2 → two gamma
    // items in one tx (so gamma batches can be reordered by the proxy).
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        let users = t.users.clone();
        let client = t.clients[0].clone();
        let chain = chain.clone();
        tokio::spawn(async move {
            let mut nonce = 0u64;
            while !stop.load(Ordering::SeqCst) {
                for (u, key) in users.iter().enumerate() {
                    let rollup = RollupId::from_name(ROLLUPS[u]);
                    let items: Vec<Vec<u8>> = if u == 2 {
                        vec![
                            format!("gamma-{nonce}-a").into_bytes(),
                            format!("gamma-{nonce}-b").into_bytes(),
                        ]
                    } else {
                        vec![format!("{}-{nonce}", ROLLUPS[u]).into_bytes()]
                    };
                    let actions = items
                        .into_iter()
                        .map(|data| Action::SubmitRollupData {
                            rollup_id: rollup,
                            data,
                        })
                        .collect();
                    let tx = Transaction {
                        chain_id: chain.clone(),
                        nonce,
                        actions,
                    }
                    .sign(key);
                    let _ = client.broadcast_tx_sync(&tx.encode()).await;
                }
                nonce += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };

    let home = t.home().to_path_buf();
    let common = |rollup: &str| -> Vec<String> {
        vec![
            "--rollup".into(),
            rollup.into(),
            "--genesis".into(),
            genesis.display().to_string(),
            "--deliver".into(),
            format!("{rollup_url}/{rollup}"),
            "--cursor".into(),
            home.join(format!("{rollup}.cursor")).display().to_string(),
            "--log".into(),
            "info".into(),
        ]
    };
    let mut alpha_args = common("alpha");
    alpha_args.extend(["--endpoint".into(), nodes[0].api_url()]);
    let mut beta_args = common("beta");
    beta_args.extend([
        "--endpoint".into(),
        nodes[1].api_url(),
        "--endpoint".into(),
        nodes[2].api_url(),
    ]);
    let gamma_health_port = free_port()?;
    let mut gamma_args = common("gamma");
    gamma_args.extend([
        "--endpoint".into(),
        proxy_url.clone(),
        "--listen".into(),
        format!("127.0.0.1:{gamma_health_port}"),
    ]);
    let gamma_health = format!("http://127.0.0.1:{gamma_health_port}/health");

    let mut alpha = ConductorProc::start(alpha_args, home.join("conductor-alpha.log"))?;
    let _beta = ConductorProc::start(beta_args, home.join("conductor-beta.log"))?;
    let _gamma = ConductorProc::start(gamma_args, home.join("conductor-gamma.log"))?;
    wait_until(
        "all three rollups to start receiving",
        Duration::from_secs(60),
        || ROLLUPS.iter().all(|r| head(&rollups, r) >= 3),
    )
    .await?;

    // The server-sent-event stream pushes every height in order, empty
    // ones included, each with its signed header and proofs.
    let stream_url = format!(
        "{}/v1/rollups/{}/stream?from=1",
        nodes[0].api_url(),
        RollupId::from_name("alpha").to_hex()
    );
    let mut resp = reqwest::get(&stream_url).await?;
    let mut text = String::new();
    while text.matches("event: batch").count() < 3 {
        let chunk = tokio::time::timeout(Duration::from_secs(10), resp.chunk())
            .await??
            .context("stream ended")?;
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let ids: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .take(3)
        .collect();
    ensure!(ids == ["1", "2", "3"], "stream ids: {ids:?}");
    ensure!(
        text.contains("\"signed_header\""),
        "stream events carry signed headers"
    );
    drop(resp);

    // SIGKILL alpha's conductor at random moments under load.
    let mut rng = Lcg(0x5eed_u64 ^ std::process::id() as u64);
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(150 + rng.next(700))).await;
        alpha.kill9()?;
        tokio::time::sleep(Duration::from_millis(rng.next(300))).await;
        alpha.spawn()?;
    }

    // Kill beta's first endpoint (the whole node): delivery continues.
    let before = head(&rollups, "beta");
    t.net.kill_node(1)?;
    wait_until(
        "beta to continue through its second endpoint",
        Duration::from_secs(60),
        || head(&rollups, "beta") >= before + 5,
    )
    .await?;

    // Tampering: each mode is refused; nothing moves past it while active
    // beyond honest heights; then honest service resumes delivery.
    for tamper in TAMPERS {
        let refused_before = refused(&gamma_health).await?;
        mode.store(tamper as u8, Ordering::SeqCst);
        let start = Instant::now();
        loop {
            ensure!(
                start.elapsed() < Duration::from_secs(30),
                "{tamper:?} was never refused"
            );
            if refused(&gamma_health).await? > refused_before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        mode.store(Tamper::Honest as u8, Ordering::SeqCst);
        let h = head(&rollups, "gamma");
        wait_until(
            "gamma to resume after tampering stops",
            Duration::from_secs(30),
            || head(&rollups, "gamma") > h,
        )
        .await?;
    }

    // Stop the load; let every conductor reach the last height with data.
    stop.store(true, Ordering::SeqCst);
    load.await?;
    let last = t.net.height(0).await?;
    wait_until(
        "every rollup to reach the last height",
        Duration::from_secs(90),
        || ROLLUPS.iter().all(|r| head(&rollups, r) >= last),
    )
    .await?;

    // Ground truth straight from a node's ABCI queries; every rollup got
    // exactly its batches, every height once, in order.
    let logs: BTreeMap<String, RollupLog> = rollups.lock().unwrap().clone();
    for name in ROLLUPS {
        let log = logs.get(name).context("rollup log")?;
        ensure!(
            log.duplicates == 0,
            "{name}: {} heights delivered twice",
            log.duplicates
        );
        ensure!(
            log.out_of_order.is_empty(),
            "{name}: out of order: {:?}",
            log.out_of_order
        );
        let heights: Vec<u64> = log.executed.iter().map(|(h, _)| *h).collect();
        let want: Vec<u64> = (1..=heights.len() as u64).collect();
        ensure!(
            heights == want,
            "{name}: heights are not 1..=N without gaps"
        );
        let mut with_data = 0;
        for (h, txs) in &log.executed {
            let id = RollupId::from_name(name);
            let truth: RollupBatchProof = t.clients[0]
                .abci_query_json(&format!("batch/{}/{h}", id.to_hex()))
                .await?;
            ensure!(
                &truth.items == txs,
                "{name} at {h}: delivered {txs:?}, chain has {:?}",
                truth.items
            );
            with_data += usize::from(!txs.is_empty());
        }
        ensure!(
            with_data >= 10,
            "{name}: only {with_data} heights carried data"
        );
    }
    Ok(())
}
