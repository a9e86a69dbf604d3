//! Shared fixtures for the end-to-end tests: bringing up a network of real
//! CometBFT + weft-sequencer processes and reading what they committed.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use tendermint::block::{Header, Height};
use tendermint_rpc::{Client, HttpClient, HttpClientUrl};
use weft_cli::rpc::NodeClient;
use weft_core::{
    Action, GenesisAccount, Hash, RollupId, SignedTransaction, SigningKey, Transaction,
};
use weft_testnet::{Testnet, TestnetConfig};

pub mod history;

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

    /// The genesis validators' operator keys, node0 first (staking
    /// networks only).
    pub fn operators(&self) -> Result<Vec<SigningKey>> {
        (0..self.net.validator_count())
            .map(|i| {
                self.net
                    .operator(i)
                    .map(|(k, _)| k.clone())
                    .context("validator operator")
            })
            .collect()
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

/// How long one CometBFT RPC request may take.
const RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// A CometBFT RPC client for the node at `rpc_url`: the project's one
/// CometBFT client, `tendermint_rpc::HttpClient`.
pub fn rpc_client(rpc_url: &str) -> Result<HttpClient> {
    let url: HttpClientUrl = rpc_url
        .parse()
        .map_err(|e| rpc_error("parsing the RPC URL", rpc_url, e))?;
    HttpClient::builder(url)
        .timeout(RPC_TIMEOUT)
        .build()
        .map_err(|e| rpc_error("building an RPC client", rpc_url, e))
}

/// A failed RPC call as an error naming the call and the node; the
/// message is the error's chain without its tracer's source locations.
fn rpc_error(what: &str, rpc_url: &str, e: tendermint_rpc::Error) -> anyhow::Error {
    anyhow!("{what} at {rpc_url}: {:#}", e.trace())
}

/// `height` as CometBFT's height type (which refuses values past
/// `i64::MAX`).
fn block_height(height: u64) -> Result<Height> {
    Height::try_from(height).with_context(|| format!("{height} is not a block height"))
}

/// The block header at height `at` on the node at `rpc_url` (`/header`).
pub async fn header(rpc_url: &str, at: u64) -> Result<Header> {
    let r = rpc_client(rpc_url)?
        .header(block_height(at)?)
        .await
        .map_err(|e| rpc_error("header", rpc_url, e))?;
    Ok(r.header)
}

/// The app hash a node's header at `height` carries (the state after
/// `height - 1`), as upper-case hex like CometBFT's JSON.
pub async fn app_hash_in_header(rpc_url: &str, height: u64) -> Result<String> {
    Ok(header(rpc_url, height).await?.app_hash.to_string())
}

/// The block's `data_hash`.
pub async fn data_hash(rpc_url: &str, height: u64) -> Result<Hash> {
    match header(rpc_url, height).await?.data_hash {
        Some(tendermint::Hash::Sha256(bytes)) => Ok(Hash(bytes)),
        Some(tendermint::Hash::None) | None => bail!("block {height} has no data_hash"),
    }
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

/// The raw CometBFT txs of the block at height `at` (item 0 =
/// commitments).
pub async fn block_txs(rpc_url: &str, at: u64) -> Result<Vec<Vec<u8>>> {
    let r = rpc_client(rpc_url)?
        .block(block_height(at)?)
        .await
        .map_err(|e| rpc_error("block", rpc_url, e))?;
    Ok(r.block.data)
}

/// A transaction's status as the node at `client` reports it.
pub async fn tx_status(client: &NodeClient, hash: &str) -> Result<Value> {
    client.abci_query_json(&format!("tx/{hash}")).await
}

/// Signs `action` with `key` at `nonce` and submits it through `client`;
/// the CometBFT tx hash once CheckTx admitted it.
pub async fn submit_action(
    client: &NodeClient,
    chain_id: &str,
    key: &SigningKey,
    nonce: u64,
    action: weft_core::Action,
) -> Result<String> {
    let tx = weft_core::Transaction {
        chain_id: chain_id.into(),
        nonce,
        actions: vec![action.clone()],
    }
    .sign(key);
    let check = client.broadcast_tx_sync(&tx.encode()).await?;
    if check.code != 0 {
        bail!("CheckTx refused {action:?}: {}", check.log);
    }
    Ok(check.hash)
}

/// Waits until the tx `hash` is committed with code 0; its height.
pub async fn committed(client: &NodeClient, hash: &str) -> Result<u64> {
    let tx = eventually(Duration::from_secs(60), "a tx to commit", || async {
        client.tx(hash).await
    })
    .await?;
    if tx.code != 0 {
        bail!("tx {hash} failed in block {}: {}", tx.height, tx.log);
    }
    Ok(tx.height)
}

/// Signs `action` with `key` at its pending nonce, submits it and waits
/// until it is committed with code 0; the height.
pub async fn send_action(
    client: &NodeClient,
    chain_id: &str,
    key: &SigningKey,
    action: weft_core::Action,
) -> Result<u64> {
    let nonce = client.account(&key.address()).await?.next_nonce();
    let hash = submit_action(client, chain_id, key, nonce, action).await?;
    committed(client, &hash).await
}

/// A `weft-conductor` process the test can kill and start again with the
/// same arguments (its cursor makes a restart resume). Killed when dropped.
pub struct ConductorProc {
    args: Vec<String>,
    out: std::path::PathBuf,
    log: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl ConductorProc {
    /// Starts a conductor with its stdout and stderr both in `log`.
    pub fn start(args: Vec<String>, log: std::path::PathBuf) -> Result<Self> {
        Self::start_split(args, log.clone(), log)
    }

    /// Starts a conductor with its stdout (with `--deliver stdout`, the
    /// delivered blocks as NDJSON) in `out` and its log in `log`.
    pub fn start_split(
        args: Vec<String>,
        out: std::path::PathBuf,
        log: std::path::PathBuf,
    ) -> Result<Self> {
        let mut c = ConductorProc {
            args,
            out,
            log,
            child: None,
        };
        c.spawn()?;
        Ok(c)
    }

    /// Starts the process again (after [`ConductorProc::kill9`]).
    pub fn spawn(&mut self) -> Result<()> {
        use std::{fs::OpenOptions, process::Stdio};
        let open = |p: &std::path::Path| OpenOptions::new().create(true).append(true).open(p);
        let log = open(&self.log)?;
        let out = if self.out == self.log {
            log.try_clone()?
        } else {
            open(&self.out)?
        };
        let child = std::process::Command::new(weft_testnet::workspace_binary(
            "weft-conductor",
            "WEFT_CONDUCTOR_BIN",
        )?)
        .args(&self.args)
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(log))
        .spawn()
        .context("starting weft-conductor")?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL, and reap.
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }
}

impl Drop for ConductorProc {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}

/// The sum of every series of the Prometheus metric `name` (all label
/// sets) that the sequencer API at `api` reports.
pub async fn metric(http: &reqwest::Client, api: &str, name: &str) -> Result<f64> {
    let text = http
        .get(format!("{api}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// One signed transaction carrying `data` for `rollup`.
pub fn rollup_data_tx(
    key: &SigningKey,
    chain: &str,
    nonce: u64,
    rollup: &str,
    data: Vec<u8>,
) -> SignedTransaction {
    Transaction {
        chain_id: chain.into(),
        nonce,
        actions: vec![Action::SubmitRollupData {
            rollup_id: RollupId::from_name(rollup),
            data,
        }],
    }
    .sign(key)
}
