//! End-to-end latency: a real `weft-conductor` follows one benchmark rollup
//! and delivers NDJSON to our pipe; each delivered payload's id says which
//! transaction carried it, and the line's arrival time ends its latency.

use std::{
    collections::HashMap,
    path::Path,
    process::Stdio,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Instant,
};

use base64::{engine::general_purpose::STANDARD, Engine};
use serde::Deserialize;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    task::JoinHandle,
};
use weft_testnet::{workspace_binary, Testnet};

use crate::{workload::PayloadId, BenchError, Result};

/// Environment variable naming the `weft-conductor` binary.
pub const CONDUCTOR_BIN_ENV: &str = "WEFT_CONDUCTOR_BIN";

#[derive(Deserialize)]
struct Delivered {
    height: u64,
    #[serde(default)]
    txs: Vec<String>,
}

/// A running conductor and what it delivered.
#[derive(Debug)]
pub struct ConductorFollower {
    child: Child,
    reader: JoinHandle<()>,
    deliveries: Arc<Mutex<HashMap<PayloadId, Instant>>>,
    height: Arc<AtomicU64>,
}

impl ConductorFollower {
    /// Starts `weft-conductor --deliver stdout` for `rollup` on `net`,
    /// from height 1, its files in `dir`.
    pub async fn start(net: &Testnet, rollup: &str, dir: &Path) -> Result<Self> {
        let bin = workspace_binary("weft-conductor", CONDUCTOR_BIN_ENV)?;
        std::fs::create_dir_all(dir)
            .map_err(|e| BenchError::io(format!("creating {}", dir.display()), e))?;
        // The conductor finds the genesis next to devnet.json
        // (`node0/cometbft/config/genesis.json`), so it lives in the home.
        let devnet = net.home().join("devnet.json");
        net.write_devnet_json(&devnet)?;
        let log = std::fs::File::create(dir.join("conductor.log"))
            .map_err(|e| BenchError::io("creating conductor.log", e))?;
        let mut child = Command::new(&bin)
            .arg("--devnet")
            .arg(&devnet)
            .args([
                "--rollup",
                rollup,
                "--from-height",
                "1",
                "--deliver",
                "stdout",
            ])
            .arg("--cursor")
            .arg(dir.join("conductor.cursor"))
            .args(["--log", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| BenchError::io(format!("starting {}", bin.display()), e))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| BenchError::Conductor("no stdout".into()))?;
        let deliveries = Arc::new(Mutex::new(HashMap::new()));
        let height = Arc::new(AtomicU64::new(0));
        let reader = tokio::spawn(read_deliveries(stdout, deliveries.clone(), height.clone()));
        Ok(ConductorFollower {
            child,
            reader,
            deliveries,
            height,
        })
    }

    /// Its pid while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// How it exited, if it did.
    pub fn exit_status(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(None) => None,
            Ok(Some(status)) => Some(status.to_string()),
            Err(e) => Some(e.to_string()),
        }
    }

    /// The last height delivered.
    pub fn delivered_height(&self) -> u64 {
        self.height.load(Ordering::Relaxed)
    }

    /// Takes what was delivered of `step`'s payloads.
    pub fn take_step(&self, step: u32) -> HashMap<PayloadId, Instant> {
        let mut all = self.deliveries.lock().unwrap_or_else(|e| e.into_inner());
        let (mine, rest): (HashMap<_, _>, HashMap<_, _>) =
            all.drain().partition(|(id, _)| id.step == step);
        *all = rest;
        mine
    }

    /// Stops it (SIGKILL: its cursor does not matter here).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
        self.reader.abort();
    }
}

async fn read_deliveries(
    stdout: tokio::process::ChildStdout,
    deliveries: Arc<Mutex<HashMap<PayloadId, Instant>>>,
    height: Arc<AtomicU64>,
) {
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let at = Instant::now();
        let Ok(block) = serde_json::from_str::<Delivered>(&line) else {
            continue;
        };
        let ids: Vec<PayloadId> = block
            .txs
            .iter()
            .filter_map(|t| {
                // Only the id prefix is needed: 16 bytes are 24 base64 chars.
                let prefix = t.get(..24)?;
                PayloadId::decode(&STANDARD.decode(prefix).ok()?)
            })
            .collect();
        {
            let mut d = deliveries.lock().unwrap_or_else(|e| e.into_inner());
            for id in ids {
                d.entry(id).or_insert(at);
            }
        }
        height.fetch_max(block.height, Ordering::Relaxed);
    }
}
