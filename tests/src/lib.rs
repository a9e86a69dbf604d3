//! Shared fixtures for the end-to-end tests: bringing up a network of real
//! CometBFT + weft-sequencer processes and reading what they committed.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use weft_cli::rpc::NodeClient;
use weft_core::{GenesisAccount, Hash, SigningKey};
use weft_testnet::{Testnet, TestnetConfig};

/// Block interval used by the tests: fast, but slow enough for 2 cores.
pub const TEST_TIMEOUT_COMMIT: Duration = Duration::from_millis(300);

/// A running test network with its temp home (kept on failure for logs).
pub struct TestNetwork {
    /// The network.
    pub net: Testnet,
    /// One RPC client per node.
    pub clients: Vec<NodeClient>,
    /// Funded user keys.
    pub users: Vec<SigningKey>,
    home: tempfile::TempDir,
}

impl TestNetwork {
    /// Starts `validators` nodes with `users` funded accounts and waits
    /// until every node has committed height 2.
    pub async fn start(validators: usize, users: usize) -> Result<Self> {
        Self::start_with(validators, users, |_| {}).await
    }

    /// Like [`TestNetwork::start`], letting the caller adjust the config
    /// (chain parameters, sequencer flags, extra accounts).
    pub async fn start_with(
        validators: usize,
        users: usize,
        adjust: impl FnOnce(&mut TestnetConfig),
    ) -> Result<Self> {
        let home = tempfile::Builder::new().prefix("weft-e2e-").tempdir()?;
        let users: Vec<SigningKey> = (0..users).map(|_| SigningKey::generate()).collect();
        let mut cfg = TestnetConfig::new(home.path());
        cfg.validators = validators;
        cfg.timeout_commit = TEST_TIMEOUT_COMMIT;
        cfg.extra_accounts = users
            .iter()
            .map(|k| GenesisAccount {
                address: k.address(),
                balance: 1_000_000_000_000,
            })
            .collect();
        adjust(&mut cfg);
        let net = Testnet::create(cfg).await.context("creating the testnet")?;
        net.start().await.context("starting the testnet")?;
        net.wait_all_for_height(2, Duration::from_secs(90))
            .await
            .context("waiting for the first blocks")?;
        let clients = net
            .nodes()
            .iter()
            .map(|n| NodeClient::new(&n.rpc_url()))
            .collect::<Result<Vec<_>>>()?;
        Ok(TestNetwork {
            net,
            clients,
            users,
            home,
        })
    }

    /// Where logs live (printed when a test fails).
    pub fn home(&self) -> &std::path::Path {
        self.home.path()
    }

    /// Ends a test: stops every process, keeps the home folder (logs,
    /// configs) when the test failed or `WEFT_E2E_KEEP` is set, and returns
    /// the test's result.
    pub async fn finish(self, result: Result<()>) -> Result<()> {
        let stopped = self.net.shutdown().await;
        if result.is_err() || std::env::var_os("WEFT_E2E_KEEP").is_some() {
            eprintln!(
                "network home kept for inspection: {}",
                self.keep_home().display()
            );
        }
        result.and(stopped.map_err(Into::into))
    }

    /// Keeps the home folder after the test, for post-mortems.
    pub fn keep_home(self) -> std::path::PathBuf {
        self.home.keep()
    }
}

/// `GET <rpc>/<method>?<query>` → JSON-RPC `result`.
pub async fn rpc_get(rpc_url: &str, method: &str, query: &[(&str, String)]) -> Result<Value> {
    let body: Value = reqwest::Client::new()
        .get(format!("{rpc_url}/{method}"))
        .query(query)
        .timeout(Duration::from_secs(10))
        .send()
        .await?
        .json()
        .await?;
    match body.get("result") {
        Some(r) => Ok(r.clone()),
        None => bail!("{method} at {rpc_url}: {body}"),
    }
}

/// The block header at `height` on the node at `rpc_url`.
pub async fn header(rpc_url: &str, height: u64) -> Result<Value> {
    let r = rpc_get(rpc_url, "block", &[("height", height.to_string())]).await?;
    Ok(r["block"]["header"].clone())
}

/// The app hash a node's header at `height` carries (the state after
/// `height - 1`).
pub async fn app_hash_in_header(rpc_url: &str, height: u64) -> Result<String> {
    Ok(header(rpc_url, height).await?["app_hash"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// The block's `data_hash`.
pub async fn data_hash(rpc_url: &str, height: u64) -> Result<Hash> {
    let h = header(rpc_url, height).await?;
    let s = h["data_hash"].as_str().context("data_hash")?;
    Hash::from_hex(s).with_context(|| format!("data_hash {s}"))
}

/// Polls `f` until it yields `Some`, or fails after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await? {
            return Ok(v);
        }
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The raw CometBFT txs of the block at `height` (item 0 = commitments).
pub async fn block_txs(rpc_url: &str, height: u64) -> Result<Vec<Vec<u8>>> {
    use base64::Engine;
    let r = rpc_get(rpc_url, "block", &[("height", height.to_string())]).await?;
    let txs = r["block"]["data"]["txs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    txs.iter()
        .map(|t| {
            let s = t.as_str().context("tx is not a string")?;
            Ok(base64::engine::general_purpose::STANDARD.decode(s)?)
        })
        .collect()
}

/// A transaction's status as the node at `client` reports it.
pub async fn tx_status(client: &NodeClient, hash: &str) -> Result<Value> {
    client.abci_query_json(&format!("tx/{hash}")).await
}
