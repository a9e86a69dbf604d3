//! `weft-bench relay`: the builder-bid relay alone. Starts `weft-relay`'s
//! router in process on a loopback port (its own runtime), with a fixed
//! chain head and a directory of one validator instead of CometBFT and the
//! sequencer, then drives it over HTTP: bids with 4 KiB bundles at an
//! open-loop rate (latency counted from each bid's scheduled send time, so
//! a relay that falls behind shows it), then signed winner fetches one
//! after another.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde::Serialize;
use tokio::sync::watch;
use weft_core::{
    bid::{RelayRequest, RelayRequestKind},
    Address, Bid, Bundle, Hash, RollupId, SigningKey,
};
use weft_relay::{
    sequencer::{Balance, Directory, SequencerError, ValidatorEntry},
    Head, Relay, RelayConfig, SequencerApi, TraceStore,
};

use crate::stats::LatencySummary;

const CHAIN: &str = "relay-bench";
const HEAD: u64 = 100;

/// What to run.
#[derive(Debug, Clone)]
pub struct RelayBenchOptions {
    /// Offered bids per second.
    pub rate: f64,
    /// Seconds of submissions.
    pub secs: f64,
    /// Bytes of the one payload in each bundle.
    pub bundle_bytes: usize,
    /// Distinct builders (each bid is from one of them, round robin).
    pub builders: usize,
    /// Distinct rollups bid on.
    pub rollups: usize,
    /// Concurrent HTTP connections.
    pub connections: usize,
    /// Winner fetches, one after another.
    pub fetches: usize,
    /// Where the relay's trace store goes.
    pub work_dir: std::path::PathBuf,
}

/// The results.
#[derive(Debug, Clone, Serialize)]
pub struct RelayBenchReport {
    /// Offered rate, bids/s.
    pub offered_rate: f64,
    /// Bids sent.
    pub bids_sent: usize,
    /// Bids the relay accepted.
    pub bids_accepted: usize,
    /// Refusals by code.
    pub refused: BTreeMap<String, usize>,
    /// Accepted bids per second over the run (from the first scheduled
    /// send to the last answer).
    pub accepted_per_sec: f64,
    /// Submission latency (scheduled send to answer).
    pub submit: LatencySummary,
    /// Winner-fetch latency.
    pub winners: LatencySummary,
    /// Winners per fetch.
    pub winners_per_fetch: usize,
    /// Encoded bid size.
    pub bid_bytes: usize,
}

/// Everyone funded; one active validator whose relay key is `relay_key`.
struct FixedSequencer {
    directory: Directory,
}

#[async_trait::async_trait]
impl SequencerApi for FixedSequencer {
    async fn balance(&self, _address: &Address) -> Result<Balance, SequencerError> {
        Ok(Balance {
            balance: u128::MAX,
            height: HEAD,
        })
    }

    async fn directory(&self) -> Result<Directory, SequencerError> {
        Ok(self.directory.clone())
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Starts the relay on its own two-thread runtime; returns its URL.
fn start_relay(
    options: &RelayBenchOptions,
    operator: Address,
    relay_key: &SigningKey,
) -> anyhow::Result<String> {
    std::fs::create_dir_all(&options.work_dir)?;
    let path = options
        .work_dir
        .join(format!("relay-bench-{}.redb", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let traces = TraceStore::open(&path)?;
    let mut config = RelayConfig::new(CHAIN);
    // Per-builder limits stay on (the default 20/s): the builders are
    // many enough that an honest rate never reaches them.
    config.max_bids_per_height = options.builders.max(1);
    let (heads, rx) = watch::channel(Some(Head {
        height: HEAD,
        hash: Hash([7; 32]),
    }));
    let mut validators = BTreeMap::new();
    validators.insert(
        operator,
        ValidatorEntry {
            active: true,
            relay_key: Some(relay_key.public_key()),
        },
    );
    let sequencer = Arc::new(FixedSequencer {
        directory: Directory {
            height: HEAD,
            validators,
        },
    });
    let relay = Relay::new(config, rx, sequencer, traces, None);
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    std_listener.set_nonblocking(true)?;
    let url = format!("http://{}", std_listener.local_addr()?);
    std::thread::Builder::new()
        .name("relay-server".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                // Named apart from the generator's workers, so a profile
                // tells the relay's CPU from the load's.
                .thread_name("relay-worker")
                .enable_all()
                .build()
                .expect("a runtime for the relay");
            runtime.block_on(async move {
                let _heads = heads;
                let listener =
                    tokio::net::TcpListener::from_std(std_listener).expect("the bench listener");
                let _ = axum::serve(listener, weft_relay::router(relay)).await;
            });
        })?;
    Ok(url)
}

/// Runs the relay benchmark.
pub async fn run(options: &RelayBenchOptions) -> anyhow::Result<RelayBenchReport> {
    let operator_key = SigningKey::from_seed("bench-operator");
    let relay_key = SigningKey::from_seed("bench-relay-key");
    let url = start_relay(options, operator_key.address(), &relay_key)?;
    let builders: Vec<SigningKey> = (0..options.builders.max(1))
        .map(|i| SigningKey::from_seed(&format!("bench-builder-{i}")))
        .collect();
    let rollups: Vec<RollupId> = (0..options.rollups.max(1))
        .map(|i| RollupId::from_name(&format!("bench-rollup-{i}")))
        .collect();
    let total = (options.rate * options.secs).ceil() as usize;
    // Signed before the clock starts: the client's signing is not the
    // relay's cost. Every bid is distinct (amount), so none is a replay.
    tracing::info!(bids = total, "signing bids");
    let bids: Vec<Vec<u8>> = (0..total)
        .map(|i| {
            let key = &builders[i % builders.len()];
            let payload = vec![0xab; options.bundle_bytes.max(1)];
            Bid {
                chain_id: CHAIN.into(),
                target_height: HEAD + 1,
                parent_hash: Hash([7; 32]),
                bundles: vec![Bundle {
                    rollup_id: rollups[i % rollups.len()],
                    payloads: vec![payload],
                }],
                amount: 1 + i as u128,
                builder: key.public_key(),
            }
            .sign(key)
            .encode()
        })
        .collect();
    let bid_bytes = bids.first().map(Vec::len).unwrap_or(0);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.connections)
        .build()?;
    // Wait for the server.
    for _ in 0..100 {
        if client.get(format!("{url}/health")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let bids = Arc::new(bids);
    let connections = options.connections.max(1);
    let start = Instant::now() + Duration::from_millis(200);
    let period = Duration::from_secs_f64(1.0 / options.rate);
    let mut tasks = Vec::new();
    for c in 0..connections {
        let bids = bids.clone();
        let client = client.clone();
        let submit_url = format!("{url}/relay/v1/builder/bids");
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let mut i = c;
            while i < bids.len() {
                let scheduled = start + period * i as u32;
                tokio::time::sleep_until(scheduled.into()).await;
                let result = client
                    .post(&submit_url)
                    .header("content-type", "application/octet-stream")
                    .body(bids[i].clone())
                    .send()
                    .await;
                let code = match result {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        "accepted".to_string()
                    }
                    Ok(r) => {
                        let v: serde_json::Value = r.json().await.unwrap_or_default();
                        v["code"].as_str().unwrap_or("http_error").to_string()
                    }
                    Err(_) => "connection_error".to_string(),
                };
                out.push((scheduled.elapsed().as_secs_f64(), Instant::now(), code));
                i += connections;
            }
            out
        }));
    }
    let mut latencies = Vec::new();
    let mut refused = BTreeMap::new();
    let mut accepted = 0;
    let mut last = start;
    for t in tasks {
        for (latency, done, code) in t.await? {
            last = last.max(done);
            if code == "accepted" {
                accepted += 1;
                latencies.push(Some(latency));
            } else {
                *refused.entry(code).or_insert(0) += 1;
                latencies.push(None);
            }
        }
    }
    let elapsed = last
        .saturating_duration_since(start)
        .as_secs_f64()
        .max(1e-9);

    // Winner fetches, one after another, each signed afresh.
    let mut fetch_latencies = Vec::new();
    let mut winners_per_fetch = 0;
    for _ in 0..options.fetches {
        let request = RelayRequest {
            chain_id: CHAIN.into(),
            kind: RelayRequestKind::FetchWinners,
            height: HEAD + 1,
            timestamp_ms: now_ms(),
            requester: operator_key.address(),
            key: relay_key.public_key(),
        }
        .sign(&relay_key);
        let header = hex::encode(request.encode());
        let sent = Instant::now();
        let response = client
            .get(format!(
                "{url}/relay/v1/validator/winners?height={}",
                HEAD + 1
            ))
            .header("weft-relay-request", header)
            .send()
            .await?;
        let ok = response.status().is_success();
        let body: serde_json::Value = response.json().await?;
        let latency = sent.elapsed().as_secs_f64();
        if ok {
            winners_per_fetch = body["bids"].as_array().map(Vec::len).unwrap_or(0);
            fetch_latencies.push(Some(latency));
        } else {
            anyhow::bail!("winner fetch refused: {body}");
        }
    }
    Ok(RelayBenchReport {
        offered_rate: options.rate,
        bids_sent: bids.len(),
        bids_accepted: accepted,
        refused,
        accepted_per_sec: accepted as f64 / elapsed,
        submit: LatencySummary::from_seconds(latencies),
        winners: LatencySummary::from_seconds(fetch_latencies),
        winners_per_fetch,
        bid_bytes,
    })
}

/// The report as Markdown.
pub fn markdown(r: &RelayBenchReport) -> String {
    let f = |v: Option<f64>| v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "-".into());
    format!(
        "| offered bids/s | sent | accepted | accepted/s | submit p50 ms | submit p99 ms | submit max ms | winner fetch p50 ms | p99 ms | winners per fetch | bid bytes |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n\
         | {:.0} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} |\n\nrefused: {:?}",
        r.offered_rate,
        r.bids_sent,
        r.bids_accepted,
        r.accepted_per_sec,
        f(r.submit.p50_ms),
        f(r.submit.p99_ms),
        f(r.submit.max_ms),
        f(r.winners.p50_ms),
        f(r.winners.p99_ms),
        r.winners_per_fetch,
        r.bid_bytes,
        r.refused,
    )
}
