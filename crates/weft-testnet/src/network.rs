//! A running local network: creating its files, starting, stopping, killing,
//! pausing and restarting each node's processes (CometBFT and, for Weft, the
//! sequencer), and waiting on heights.

use std::{
    path::{Path, PathBuf},
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use nix::sys::signal::Signal;
use serde_json::{json, Value};
use tendermint_rpc::{Client, HttpClient, HttpClientUrl};
use weft_core::{
    Amount, AuctionParams, ChainParams, GenesisAccount, GenesisAppState, GenesisStaking,
    GovernanceParams, InclusionParams, KeyFile, SigningKey, StakingParams,
};

use crate::{
    app::{AbciEndpoint, AbciTransport, App},
    binaries::{cometbft_binary, sequencer_binary},
    devnet_file::{DevnetCandidate, DevnetFile, DevnetNode, DEV_KEY_WARNING},
    genesis::{build_genesis, GenesisValidator},
    link_proxy::LinkProxies,
    node_config::{self, NodeConfigSettings},
    ports::{NodePorts, PortPlan},
    process::{log_tail, Proc, Role},
    Result, TestnetError,
};

/// Balance of the developer account funded at genesis (10^18). DEV ONLY:
/// see [`DEV_KEY_WARNING`].
pub const DEV_ACCOUNT_BALANCE: Amount = 1_000_000_000_000_000_000;

/// How long a sequencer may take to open its ABCI socket or port.
const ABCI_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a graceful stop waits for each process before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Poll interval while waiting on processes and heights.
const POLL: Duration = Duration::from_millis(100);
/// A free loopback port (the OS picks it; it is released right away).
fn free_port() -> Result<u16> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| TestnetError::io("picking a free port".to_string(), e))
}

/// How long one CometBFT RPC request may take.
const RPC_TIMEOUT: Duration = Duration::from_secs(3);
/// Log lines quoted in errors about a process that exited.
const TAIL_LINES: usize = 30;

/// What network to build.
#[derive(Debug, Clone)]
pub struct TestnetConfig {
    /// Number of validators (each one node).
    pub validators: usize,
    /// Directory holding every node's files; created if missing, must not
    /// already hold a network.
    pub home: PathBuf,
    /// CometBFT chain id.
    pub chain_id: String,
    /// CometBFT `timeout_commit`: roughly the block time.
    pub timeout_commit: Duration,
    /// First port of the port plan; `None` picks a random free block.
    pub base_port: Option<u16>,
    /// Accounts funded at genesis besides the developer account.
    pub extra_accounts: Vec<GenesisAccount>,
    /// Chain parameters at genesis.
    pub params: ChainParams,
    /// Extra `weft-sequencer` flags for every node (mempool bounds, TTL, …).
    pub sequencer_args: Vec<String>,
    /// Extra `weft-sequencer` flags for one node, by index, after
    /// `sequencer_args` (fault and censorship tests single one node out).
    pub node_sequencer_args: std::collections::BTreeMap<usize, Vec<String>>,
    /// The ABCI application: Weft (default) or CometBFT's `kvstore`, which
    /// runs inside CometBFT with no sequencer process (benchmarks' ceiling).
    pub app: App,
    /// How CometBFT reaches each sequencer: a Unix socket in the node's
    /// home (default), or loopback TCP. Ignored by kvstore.
    pub abci_transport: AbciTransport,
    /// Inclusion lists (docs/censorship-resistance.md): with `Some`, the
    /// genesis has an `inclusion` section and CometBFT's vote extensions
    /// are on from height 1. On by default, as on any Weft network.
    pub inclusion: Option<InclusionParams>,
    /// Extra full nodes that are not validators (`node<validators + j>`),
    /// each with a funded operator key, ready to register as validator
    /// candidates.
    pub candidates: usize,
    /// A staking section for the genesis: every validator gets a funded
    /// operator key and is approved with this self-bond. `None`: no
    /// staking (validators fixed by genesis.json).
    pub staking: Option<TestnetStaking>,
    /// The builder auction (docs/builders.md): with `Some`, the genesis
    /// has an `auction` section, so blocks may carry bids. On by default.
    pub auction: Option<AuctionParams>,
    /// Also run a `weft-relay` (node0's RPC and API behind it) and point
    /// every validator at it, each with a relay key of its own
    /// ([`Testnet::relay_key`]; its operator registers it with
    /// `EditValidator`). Needs `staking`.
    pub relay: bool,
    /// The relay's port; `None` picks a free one.
    pub relay_port: Option<u16>,
    /// Put a controllable TCP proxy on every p2p link
    /// ([`crate::link_proxy`]): node `i` dials node `j` only through the
    /// proxy `(i, j)`, and PEX is off. Partition and slow-link tests use
    /// [`Testnet::links`]. Off by default.
    pub link_proxies: bool,
}

/// The staking genesis of a test network.
#[derive(Debug, Clone)]
pub struct TestnetStaking {
    /// Staking parameters.
    pub params: StakingParams,
    /// Governance parameters (`None`: the defaults).
    pub governance: Option<GovernanceParams>,
    /// Each genesis validator's self-bond, from its operator's balance.
    pub self_bond: Amount,
}

/// What each operator key (validators' with staking, candidates') is
/// funded with at genesis.
pub const OPERATOR_BALANCE: Amount = 1_000_000_000_000;

impl TestnetConfig {
    /// Four validators in `home`, chain id `weft-devnet`, 1s blocks, random
    /// ports, default parameters.
    pub fn new(home: impl Into<PathBuf>) -> Self {
        TestnetConfig {
            validators: 4,
            home: home.into(),
            chain_id: "weft-devnet".into(),
            timeout_commit: Duration::from_secs(1),
            base_port: None,
            extra_accounts: Vec::new(),
            params: ChainParams::default(),
            sequencer_args: Vec::new(),
            node_sequencer_args: Default::default(),
            app: App::Weft,
            abci_transport: AbciTransport::default(),
            inclusion: Some(InclusionParams::default()),
            candidates: 0,
            staking: None,
            auction: Some(AuctionParams::default()),
            relay: false,
            relay_port: None,
            link_proxies: false,
        }
    }
}

impl Default for TestnetConfig {
    /// Like [`TestnetConfig::new`] with a fresh directory under the system
    /// temp dir (left in place afterwards, for its logs).
    fn default() -> Self {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        TestnetConfig::new(
            std::env::temp_dir().join(format!("weft-testnet-{}-{stamp}-{n}", std::process::id())),
        )
    }
}

/// One validator node's identity, files and endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Position in the network.
    pub index: usize,
    /// `node<i>`; also the CometBFT moniker.
    pub name: String,
    /// CometBFT node id (hex of the p2p key's address).
    pub node_id: String,
    /// `<home>/node<i>`.
    pub home: PathBuf,
    /// The node's ports.
    pub ports: NodePorts,
    /// Where its sequencer serves ABCI (Weft networks).
    pub abci: AbciEndpoint,
}

impl Node {
    /// CometBFT RPC URL, e.g. `http://127.0.0.1:26657`.
    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.rpc)
    }

    /// Sequencer HTTP API URL.
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.api)
    }

    /// ABCI address the sequencer listens on: `unix:///<home>/abci.sock`,
    /// or `127.0.0.1:<port>` over TCP.
    pub fn abci_address(&self) -> String {
        self.abci.listen_arg()
    }

    /// The p2p address peers dial: `<node id>@127.0.0.1:<port>`.
    pub fn p2p_address(&self) -> String {
        format!("{}@127.0.0.1:{}", self.node_id, self.ports.p2p)
    }

    /// CometBFT's home (`config/`, `data/`).
    pub fn cometbft_home(&self) -> PathBuf {
        self.home.join("cometbft")
    }

    /// The sequencer's home (its store).
    pub fn app_home(&self) -> PathBuf {
        self.home.join("app")
    }

    /// Log of the CometBFT process (appended across restarts).
    pub fn cometbft_log(&self) -> PathBuf {
        self.home.join("logs/cometbft.log")
    }

    /// Log of the sequencer process (appended across restarts).
    pub fn sequencer_log(&self) -> PathBuf {
        self.home.join("logs/sequencer.log")
    }
}

/// The processes of one node; `None` when not started or reaped.
#[derive(Debug, Default)]
struct NodeProcs {
    sequencer: Option<Proc>,
    cometbft: Option<Proc>,
}

impl NodeProcs {
    fn each(&mut self) -> impl Iterator<Item = (Role, &mut Proc)> {
        [
            (Role::Cometbft, self.cometbft.as_mut()),
            (Role::Sequencer, self.sequencer.as_mut()),
        ]
        .into_iter()
        .filter_map(|(role, p)| p.map(|p| (role, p)))
    }

    fn kill_all(&mut self) {
        for (_, p) in self.each() {
            p.kill_and_reap();
        }
        self.cometbft = None;
        self.sequencer = None;
    }
}

/// Process ids of one node, for observers such as benchmarks reading
/// `/proc/<pid>`; `None` for a process not running (or not part of the app).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodePids {
    /// The CometBFT process.
    pub cometbft: Option<u32>,
    /// The `weft-sequencer` process (never for `kvstore`).
    pub sequencer: Option<u32>,
}

/// A local network of validator nodes. Dropping it, also while a panicking
/// test unwinds, SIGKILLs every node's process group; call
/// [`Testnet::shutdown`] for a graceful stop. If this process is killed
/// without unwinding, the kernel kills the nodes (see `process`).
#[derive(Debug)]
pub struct Testnet {
    home: PathBuf,
    chain_id: String,
    app: App,
    nodes: Vec<Node>,
    dev_key: SigningKey,
    dev_key_path: PathBuf,
    cometbft_bin: PathBuf,
    /// `None` when the app runs inside CometBFT.
    sequencer_bin: Option<PathBuf>,
    sequencer_extra_args: Vec<String>,
    node_sequencer_args: std::collections::BTreeMap<usize, Vec<String>>,
    procs: Vec<Mutex<NodeProcs>>,
    /// One CometBFT RPC client per node, node0 first.
    rpc: Vec<HttpClient>,
    /// How many of `nodes` (the first ones) are genesis validators; the
    /// rest are candidates.
    validators: usize,
    /// Each node's operator key and its file, if it has one.
    operators: Vec<Option<(SigningKey, PathBuf)>>,
    /// The relay, when the config asked for one.
    relay: Option<RelayPlan>,
    /// The p2p link proxies, when the config asked for them.
    links: Option<LinkProxies>,
}

/// Where the test network's relay runs and what it was given.
struct RelayPlan {
    port: u16,
    bin: PathBuf,
    /// Each validator's relay key, by node index.
    keys: Vec<SigningKey>,
    proc: Mutex<Option<Proc>>,
}

impl std::fmt::Debug for RelayPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys stay out of logs.
        f.debug_struct("RelayPlan")
            .field("port", &self.port)
            .field("bin", &self.bin)
            .finish_non_exhaustive()
    }
}

impl Testnet {
    /// Writes every node's files (keys, one shared genesis, config.toml,
    /// `testnet.json`, the dev key) without starting anything.
    pub async fn create(cfg: TestnetConfig) -> Result<Testnet> {
        if cfg.validators == 0 {
            return Err(TestnetError::InvalidConfig(
                "a network needs at least one validator".into(),
            ));
        }
        if cfg.chain_id.is_empty() {
            return Err(TestnetError::InvalidConfig("chain id is empty".into()));
        }
        let cometbft_bin = cometbft_binary()?;
        let sequencer_bin = if cfg.app.has_sequencer() {
            Some(sequencer_binary()?)
        } else {
            None
        };
        let total = cfg
            .validators
            .checked_add(cfg.candidates)
            .ok_or_else(|| TestnetError::InvalidConfig("too many nodes".into()))?;
        if cfg.candidates > 0 && !cfg.app.has_sequencer() {
            return Err(TestnetError::InvalidConfig(
                "validator candidates need the Weft app".into(),
            ));
        }
        let plan = PortPlan::choose(cfg.base_port, total)?;

        std::fs::create_dir_all(&cfg.home)
            .map_err(|e| TestnetError::io(format!("creating {}", cfg.home.display()), e))?;
        let home = cfg
            .home
            .canonicalize()
            .map_err(|e| TestnetError::io(format!("resolving {}", cfg.home.display()), e))?;
        if home.join("testnet.json").exists() || home.join("node0").exists() {
            return Err(TestnetError::HomeNotEmpty(home));
        }

        let mut nodes = Vec::with_capacity(total);
        let mut validators = Vec::with_capacity(cfg.validators);
        for i in 0..total {
            let node_home = home.join(format!("node{i}"));
            for dir in ["logs", "app"] {
                let dir = node_home.join(dir);
                std::fs::create_dir_all(&dir)
                    .map_err(|e| TestnetError::io(format!("creating {}", dir.display()), e))?;
            }
            let cometbft_home = node_home.join("cometbft");
            let home_arg = cometbft_home.display().to_string();
            run(&cometbft_bin, &["init", "--home", &home_arg]).await?;
            let node_id = run(&cometbft_bin, &["show-node-id", "--home", &home_arg])
                .await?
                .trim()
                .to_owned();
            // Candidates have a consensus key too (CometBFT always makes
            // one); they are just not in the genesis set.
            if i < cfg.validators {
                let key = read_json(&cometbft_home.join("config/priv_validator_key.json"))?;
                validators.push(GenesisValidator::from_priv_validator_key(
                    &key,
                    format!("node{i}"),
                )?);
            }
            let ports = plan.node(i);
            nodes.push(Node {
                index: i,
                name: format!("node{i}"),
                node_id,
                abci: AbciEndpoint::choose(cfg.abci_transport, &node_home, ports.abci),
                home: node_home,
                ports,
            });
        }

        let dev_key = SigningKey::generate();
        let dev_key_path = home.join("dev-key.json");
        write_json(&dev_key_path, &KeyFile::new(&dev_key))?;

        let mut accounts = vec![GenesisAccount {
            address: dev_key.address(),
            balance: DEV_ACCOUNT_BALANCE,
        }];
        accounts.extend(cfg.extra_accounts.iter().cloned());
        // Operator keys: every candidate's, and every validator's when the
        // chain has staking.
        let mut operators = Vec::with_capacity(total);
        for node in &nodes {
            let needs = node.index >= cfg.validators || cfg.staking.is_some();
            if !needs {
                operators.push(None);
                continue;
            }
            let key = SigningKey::generate();
            let path = node.home.join("operator-key.json");
            write_json(&path, &KeyFile::new(&key))?;
            accounts.push(GenesisAccount {
                address: key.address(),
                balance: OPERATOR_BALANCE,
            });
            operators.push(Some((key, path)));
        }
        let staking = match &cfg.staking {
            None => None,
            Some(st) => Some(GenesisStaking {
                params: st.params.clone(),
                validators: validators
                    .iter()
                    .zip(&operators)
                    .map(|(v, op)| {
                        let operator = op
                            .as_ref()
                            .map(|(k, _)| k.address())
                            .ok_or_else(|| TestnetError::InvalidConfig("operator key".into()))?;
                        Ok(weft_core::GenesisValidator {
                            operator,
                            consensus_key: v.ed25519_key().map_err(TestnetError::InvalidConfig)?,
                            name: v.name.clone(),
                            website: String::new(),
                            commission_bps: 0,
                            self_bond: st.self_bond,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?,
            }),
        };
        let app_state = GenesisAppState {
            accounts,
            params: cfg.params.clone(),
            governance: cfg.staking.as_ref().and_then(|s| s.governance.clone()),
            staking,
            // kvstore ignores app state; its vote extensions stay off.
            inclusion: cfg.inclusion.clone().filter(|_| cfg.app == App::Weft),
            auction: cfg.auction.clone().filter(|_| cfg.app == App::Weft),
        };
        // Refuse here what the sequencer would refuse at InitChain.
        let app_state_json =
            serde_json::to_vec(&app_state).map_err(|e| TestnetError::json("app_state", e))?;
        GenesisAppState::from_json(&app_state_json)
            .map_err(|e| TestnetError::InvalidConfig(e.to_string()))?;

        let base = read_json(&nodes[0].cometbft_home().join("config/genesis.json"))?;
        let mut genesis = build_genesis(&base, &cfg.chain_id, &validators, &app_state)?;
        if app_state.inclusion.is_some() {
            crate::genesis::set_vote_extensions_enable_height(&mut genesis, 1)?;
        }
        let links = if cfg.link_proxies {
            let ports: Vec<u16> = nodes.iter().map(|n| n.ports.p2p).collect();
            Some(LinkProxies::start(&ports).await?)
        } else {
            None
        };
        for node in &nodes {
            write_json(&node.cometbft_home().join("config/genesis.json"), &genesis)?;
            let mut persistent_peers = Vec::with_capacity(nodes.len());
            for peer in nodes.iter().filter(|peer| peer.index != node.index) {
                persistent_peers.push(match &links {
                    Some(links) => format!(
                        "{}@127.0.0.1:{}",
                        peer.node_id,
                        links.link(node.index, peer.index)?.port()
                    ),
                    None => peer.p2p_address(),
                });
            }
            let settings = NodeConfigSettings {
                moniker: node.name.clone(),
                ports: node.ports,
                abci: node.abci.clone(),
                persistent_peers,
                timeout_commit: cfg.timeout_commit,
                app: cfg.app,
                pex: links.is_none(),
            };
            node_config::edit_file(&node.cometbft_home().join("config/config.toml"), &settings)?;
        }

        let mut node_sequencer_args = cfg.node_sequencer_args;
        let relay = if cfg.relay {
            if cfg.staking.is_none() || cfg.app != App::Weft {
                return Err(TestnetError::InvalidConfig(
                    "a relay needs a Weft network with staking (relays serve active validators)"
                        .into(),
                ));
            }
            let port = match cfg.relay_port {
                Some(p) => p,
                None => free_port()?,
            };
            let mut keys = Vec::with_capacity(cfg.validators);
            for node in nodes.iter().take(cfg.validators) {
                let key = SigningKey::generate();
                let path = node.home.join("relay-key.json");
                write_json(&path, &KeyFile::new(&key))?;
                let operator = operators[node.index]
                    .as_ref()
                    .map(|(k, _)| k.address())
                    .ok_or_else(|| {
                        TestnetError::InvalidConfig("validator without operator".into())
                    })?;
                node_sequencer_args.entry(node.index).or_default().extend([
                    "--relay-urls".to_string(),
                    format!("http://127.0.0.1:{port}"),
                    "--relay-key-file".into(),
                    path.display().to_string(),
                    "--relay-operator".into(),
                    operator.to_string(),
                ]);
                keys.push(key);
            }
            Some(RelayPlan {
                port,
                bin: crate::binaries::workspace_binary("weft-relay", "WEFT_RELAY_BIN")?,
                keys,
                proc: Mutex::new(None),
            })
        } else {
            None
        };
        let rpc = nodes
            .iter()
            .map(|node| rpc_client(&node.rpc_url()))
            .collect::<Result<Vec<_>>>()?;
        let net = Testnet {
            links,
            relay,
            procs: nodes.iter().map(|_| Mutex::default()).collect(),
            rpc,
            home,
            chain_id: cfg.chain_id,
            app: cfg.app,
            nodes,
            validators: cfg.validators,
            operators,
            dev_key,
            dev_key_path,
            cometbft_bin,
            sequencer_bin,
            sequencer_extra_args: cfg.sequencer_args,
            node_sequencer_args,
        };
        write_json(
            &net.home.join("testnet.json"),
            &net.description(plan, cfg.timeout_commit),
        )?;
        tracing::info!(home = %net.home.display(), nodes = net.nodes.len(), base_port = plan.base, "testnet created");
        Ok(net)
    }

    /// Starts every node, node0 first, then the relay if there is one.
    pub async fn start(&self) -> Result<()> {
        for i in 0..self.nodes.len() {
            self.start_node(i).await?;
        }
        if self.relay.is_some() {
            self.start_relay()?;
        }
        Ok(())
    }

    /// Starts the relay (serving node0's chain); already running is fine.
    pub fn start_relay(&self) -> Result<()> {
        let plan = self
            .relay
            .as_ref()
            .ok_or_else(|| TestnetError::InvalidConfig("this network has no relay".into()))?;
        let mut slot = plan
            .proc
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.as_mut().is_some_and(|p| p.exit_status().is_none()) {
            return Ok(());
        }
        let node0 = self.node(0)?;
        let dir = self.home.join("relay");
        std::fs::create_dir_all(&dir)
            .map_err(|e| TestnetError::io(format!("creating {}", dir.display()), e))?;
        let args = vec![
            "--chain-id".to_string(),
            self.chain_id.clone(),
            "--listen".into(),
            format!("127.0.0.1:{}", plan.port),
            "--cometbft-rpc".into(),
            node0.rpc_url(),
            "--sequencer-api".into(),
            node0.api_url(),
            "--data".into(),
            dir.join("traces.redb").display().to_string(),
        ];
        let log = dir.join("relay.log");
        mark_log(&log, &plan.bin, &args);
        *slot = Some(Proc::spawn(&plan.bin, &args, &log)?);
        Ok(())
    }

    /// Kills the relay (a dead relay must never stop a block).
    pub fn stop_relay(&self) -> Result<()> {
        if let Some(plan) = &self.relay {
            let mut slot = plan
                .proc
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(mut p) = slot.take() {
                p.kill_and_reap();
            }
        }
        Ok(())
    }

    /// The p2p link proxies (networks created with
    /// [`TestnetConfig::link_proxies`]).
    pub fn links(&self) -> Result<&LinkProxies> {
        self.links
            .as_ref()
            .ok_or_else(|| TestnetError::InvalidConfig("this network has no link proxies".into()))
    }

    /// The relay's base URL, if this network has one.
    pub fn relay_url(&self) -> Option<String> {
        self.relay
            .as_ref()
            .map(|p| format!("http://127.0.0.1:{}", p.port))
    }

    /// Validator `i`'s relay key (its operator must register it with
    /// `EditValidator { relay_key }` before relays serve it).
    pub fn relay_key(&self, i: usize) -> Option<&SigningKey> {
        self.relay.as_ref().and_then(|p| p.keys.get(i))
    }

    /// Starts node `i`: the sequencer, then (once its ABCI socket accepts
    /// connections) CometBFT; with `kvstore`, CometBFT alone. A node already
    /// running is left alone; a node with only some live processes has them
    /// killed first.
    pub async fn start_node(&self, i: usize) -> Result<()> {
        let node = self.node(i)?.clone();
        {
            let mut procs = self.lock(i);
            let alive = procs
                .each()
                .filter_map(|(_, p)| p.exit_status().is_none().then_some(()))
                .count();
            if alive == self.processes_per_node() {
                return Ok(());
            }
            procs.kill_all();
        }
        if let Some(sequencer_bin) = &self.sequencer_bin {
            self.start_sequencer(&node, sequencer_bin).await?;
        }

        let cometbft_args = vec![
            "start".to_string(),
            "--home".into(),
            node.cometbft_home().display().to_string(),
        ];
        mark_log(&node.cometbft_log(), &self.cometbft_bin, &cometbft_args);
        let cometbft = Proc::spawn(&self.cometbft_bin, &cometbft_args, &node.cometbft_log())?;
        self.lock(i).cometbft = Some(cometbft);
        tracing::info!(node = %node.name, app = %self.app, rpc = %node.rpc_url(), "node started");
        Ok(())
    }

    /// Spawns node's sequencer and waits until its ABCI socket accepts
    /// connections (CometBFT exits if it cannot reach its app).
    async fn start_sequencer(&self, node: &Node, sequencer_bin: &Path) -> Result<()> {
        let i = node.index;
        let mut sequencer_args = vec![
            "--home".to_string(),
            node.app_home().display().to_string(),
            "--abci-listen".into(),
            node.abci_address(),
            "--api-listen".into(),
            format!("127.0.0.1:{}", node.ports.api),
            "--cometbft-rpc".into(),
            node.rpc_url(),
        ];
        sequencer_args.extend(self.sequencer_extra_args.iter().cloned());
        if let Some(extra) = self.node_sequencer_args.get(&i) {
            sequencer_args.extend(extra.iter().cloned());
        }
        mark_log(&node.sequencer_log(), sequencer_bin, &sequencer_args);
        let sequencer = Proc::spawn(sequencer_bin, &sequencer_args, &node.sequencer_log())?;
        self.lock(i).sequencer = Some(sequencer);
        if let Err(e) = self.wait_for_abci(node).await {
            self.lock(i).kill_all();
            return Err(e);
        }
        Ok(())
    }

    /// Stops node `i` gracefully: SIGTERM to CometBFT, then to the sequencer,
    /// each given up to 10s before SIGKILL.
    pub async fn stop_node(&self, i: usize) -> Result<()> {
        self.node(i)?;
        self.terminate(&[i]).await
    }

    /// SIGKILLs both processes of node `i` and reaps them.
    pub fn kill_node(&self, i: usize) -> Result<()> {
        self.node(i)?;
        self.lock(i).kill_all();
        Ok(())
    }

    /// SIGKILLs node `i`'s sequencer alone (CometBFT then loses its app
    /// connection and exits by design; [`Testnet::start_node`] brings both
    /// back, replaying blocks through the ABCI handshake).
    pub fn kill_app(&self, i: usize) -> Result<()> {
        self.node(i)?;
        let mut procs = self.lock(i);
        if let Some(p) = procs.sequencer.as_mut() {
            p.kill_and_reap();
        }
        procs.sequencer = None;
        Ok(())
    }

    /// SIGSTOPs both processes of node `i` (it stops voting and answering).
    pub fn pause_node(&self, i: usize) -> Result<()> {
        self.signal_node(i, Signal::SIGSTOP)
    }

    /// SIGCONTs both processes of node `i`.
    pub fn resume_node(&self, i: usize) -> Result<()> {
        self.signal_node(i, Signal::SIGCONT)
    }

    /// Replaces node `i`'s own extra `weft-sequencer` flags (those after
    /// [`TestnetConfig::sequencer_args`]) from its next start on: the
    /// crash-point tests start a node with a crash flag, then without.
    pub fn set_node_sequencer_args(&mut self, i: usize, args: Vec<String>) -> Result<()> {
        self.node(i)?;
        self.node_sequencer_args.insert(i, args);
        Ok(())
    }

    /// Stops node `i` gracefully if it is running, then starts it again with
    /// the same files (no re-init).
    pub async fn restart_node(&self, i: usize) -> Result<()> {
        self.stop_node(i).await?;
        self.start_node(i).await
    }

    /// Stops every node gracefully (SIGTERM, up to ~10s, then SIGKILL),
    /// and the relay.
    pub async fn shutdown(&self) -> Result<()> {
        self.stop_relay()?;
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        let stopped = self.terminate(&all).await;
        self.remove_outside_sockets();
        stopped
    }

    /// Removes the ABCI socket files this network placed outside its home
    /// (in the temporary directory, for a home too long for a socket
    /// path): a socket file outlives its process, and nothing else would
    /// ever remove these. Those in the home go with the home.
    fn remove_outside_sockets(&self) {
        use std::os::unix::fs::FileTypeExt;
        for node in &self.nodes {
            let AbciEndpoint::Unix(path) = &node.abci else {
                continue;
            };
            let is_socket =
                std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
            if is_socket && !path.starts_with(&self.home) {
                if let Err(e) = std::fs::remove_file(path) {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove an ABCI socket");
                }
            }
        }
    }

    /// True while every process of node `i` is alive (paused counts).
    pub fn is_running(&self, i: usize) -> bool {
        self.check_running(i).is_ok()
    }

    /// `Ok` while every process of node `i` is alive; otherwise the error
    /// names the process, how it exited and the end of its log.
    pub fn check_running(&self, i: usize) -> Result<()> {
        let node = self.node(i)?;
        let has_sequencer = self.app.has_sequencer();
        let mut guard = self.lock(i);
        let procs = &mut *guard;
        for (role, slot, log) in [
            (Role::Sequencer, &mut procs.sequencer, node.sequencer_log()),
            (Role::Cometbft, &mut procs.cometbft, node.cometbft_log()),
        ] {
            if role == Role::Sequencer && !has_sequencer {
                continue;
            }
            let status = match slot {
                None => Some("not started".to_string()),
                Some(p) => p.exit_status(),
            };
            if let Some(status) = status {
                return Err(TestnetError::ProcessExited {
                    node: i,
                    process: role.name(),
                    status,
                    tail: log_tail(&log, TAIL_LINES),
                    log,
                });
            }
        }
        Ok(())
    }

    /// Node `i`'s latest block height, from CometBFT's `/status`.
    pub async fn height(&self, i: usize) -> Result<u64> {
        let node = self.node(i)?;
        let status = self.rpc[i]
            .status()
            .await
            .map_err(|e| rpc_error(&node.rpc_url(), &e))?;
        Ok(status.sync_info.latest_block_height.value())
    }

    /// Waits until node `i` reports at least height `h`; returns the height
    /// seen. Fails early if one of its processes exits.
    pub async fn wait_for_height(&self, i: usize, h: u64, timeout: Duration) -> Result<u64> {
        self.wait_for_height_until(i, h, Instant::now() + timeout, timeout)
            .await
    }

    /// Waits until every node reports at least height `h`. Fails early if
    /// any node's process exits, so use [`Testnet::wait_for_height`] per node
    /// while some are deliberately down.
    pub async fn wait_all_for_height(&self, h: u64, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        for i in 0..self.nodes.len() {
            self.wait_for_height_until(i, h, deadline, timeout).await?;
        }
        Ok(())
    }

    /// The nodes, node0 first.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> Result<&Node> {
        self.nodes.get(i).ok_or(TestnetError::NoSuchNode {
            index: i,
            count: self.nodes.len(),
        })
    }

    /// The chain id.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// The ABCI application the nodes run.
    pub fn app(&self) -> App {
        self.app
    }

    /// Process ids of node `i`'s live processes.
    pub fn pids(&self, i: usize) -> Result<NodePids> {
        self.node(i)?;
        let mut procs = self.lock(i);
        let mut pids = NodePids::default();
        for (role, p) in procs.each() {
            let pid = p.exit_status().is_none().then(|| p.pid());
            match role {
                Role::Cometbft => pids.cometbft = pid,
                Role::Sequencer => pids.sequencer = pid,
            }
        }
        Ok(pids)
    }

    /// The developer account's key, funded with [`DEV_ACCOUNT_BALANCE`].
    /// DEV ONLY: written unencrypted to [`Testnet::dev_key_path`]; see
    /// [`DEV_KEY_WARNING`].
    pub fn dev_key(&self) -> &SigningKey {
        &self.dev_key
    }

    /// Where the developer key's `KeyFile` is (unencrypted; DEV ONLY).
    pub fn dev_key_path(&self) -> &Path {
        &self.dev_key_path
    }

    /// The network's home directory (absolute).
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// How many nodes (the first ones) are genesis validators.
    pub fn validator_count(&self) -> usize {
        self.validators
    }

    /// The indexes of the candidate nodes (full nodes, not validators at
    /// genesis).
    pub fn candidates(&self) -> std::ops::Range<usize> {
        self.validators..self.nodes.len()
    }

    /// Node `i`'s operator key and its file: every candidate has one, and
    /// every validator on a chain with staking.
    pub fn operator(&self, i: usize) -> Option<(&SigningKey, &Path)> {
        self.operators
            .get(i)?
            .as_ref()
            .map(|(k, p)| (k, p.as_path()))
    }

    /// Node `i`'s ed25519 consensus key (from its priv_validator_key.json).
    pub fn consensus_key(&self, i: usize) -> Result<[u8; 32]> {
        let node = self.node(i)?;
        let key = read_json(&node.cometbft_home().join("config/priv_validator_key.json"))?;
        GenesisValidator::from_priv_validator_key(&key, node.name.clone())?
            .ed25519_key()
            .map_err(TestnetError::InvalidConfig)
    }

    /// What `devnet.json` holds for this network.
    pub fn devnet_file(&self) -> DevnetFile {
        DevnetFile {
            chain_id: self.chain_id.clone(),
            nodes: self.nodes[..self.validators]
                .iter()
                .map(|n| DevnetNode {
                    name: n.name.clone(),
                    rpc: n.rpc_url(),
                    api: n.api_url(),
                })
                .collect(),
            dev_key: self.dev_key_path.clone(),
            dev_key_warning: DEV_KEY_WARNING.into(),
            candidates: self
                .candidates()
                .filter_map(|i| {
                    let n = &self.nodes[i];
                    let (key, path) = self.operator(i)?;
                    Some(DevnetCandidate {
                        name: n.name.clone(),
                        rpc: n.rpc_url(),
                        api: n.api_url(),
                        consensus_key: hex::encode(self.consensus_key(i).ok()?),
                        operator: key.address().to_string(),
                        operator_key: path.to_path_buf(),
                        priv_validator_key: n
                            .cometbft_home()
                            .join("config/priv_validator_key.json"),
                    })
                })
                .collect(),
            relay: self.relay_url(),
        }
    }

    /// Writes `{ "chain_id", "nodes": [{ "name", "rpc", "api" }], "dev_key",
    /// "dev_key_warning" }`.
    pub fn write_devnet_json(&self, path: &Path) -> Result<()> {
        self.devnet_file().save(path)
    }

    fn processes_per_node(&self) -> usize {
        if self.app.has_sequencer() {
            2
        } else {
            1
        }
    }

    fn lock(&self, i: usize) -> MutexGuard<'_, NodeProcs> {
        self.procs[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    fn signal_node(&self, i: usize, signal: Signal) -> Result<()> {
        self.node(i)?;
        let mut procs = self.lock(i);
        for (_, p) in procs.each() {
            p.signal(signal)?;
        }
        Ok(())
    }

    /// Graceful stop of `nodes`: CometBFT first (it exits when its app goes
    /// away, the reverse is cleaner), then the sequencers.
    async fn terminate(&self, nodes: &[usize]) -> Result<()> {
        for role in [Role::Cometbft, Role::Sequencer] {
            for &i in nodes {
                let mut procs = self.lock(i);
                if let Some(p) = slot(&mut procs, role) {
                    p.signal(Signal::SIGTERM)?;
                    // A paused process only sees SIGTERM once continued.
                    p.signal(Signal::SIGCONT)?;
                }
            }
            let deadline = Instant::now() + STOP_GRACE;
            loop {
                let alive = nodes.iter().any(|&i| {
                    slot(&mut self.lock(i), role).is_some_and(|p| p.exit_status().is_none())
                });
                if !alive || Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep(POLL).await;
            }
            for &i in nodes {
                let mut procs = self.lock(i);
                if let Some(p) = slot(&mut procs, role) {
                    if p.exit_status().is_none() {
                        tracing::warn!(
                            node = i,
                            process = role.name(),
                            "did not stop in time; killing"
                        );
                    }
                    p.kill_and_reap();
                }
                match role {
                    Role::Cometbft => procs.cometbft = None,
                    Role::Sequencer => procs.sequencer = None,
                }
            }
        }
        Ok(())
    }

    async fn wait_for_abci(&self, node: &Node) -> Result<()> {
        let deadline = Instant::now() + ABCI_STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self
                .lock(node.index)
                .sequencer
                .as_mut()
                .and_then(Proc::exit_status)
            {
                return Err(TestnetError::ProcessExited {
                    node: node.index,
                    process: Role::Sequencer.name(),
                    status,
                    tail: log_tail(&node.sequencer_log(), TAIL_LINES),
                    log: node.sequencer_log(),
                });
            }
            let listening = match &node.abci {
                AbciEndpoint::Tcp(port) => tokio::net::TcpStream::connect(("127.0.0.1", *port))
                    .await
                    .is_ok(),
                // A socket file left by a killed sequencer refuses
                // connections until the new one replaces it.
                AbciEndpoint::Unix(path) => tokio::net::UnixStream::connect(path).await.is_ok(),
            };
            if listening {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(TestnetError::Timeout {
                    what: format!(
                        "{}'s sequencer to listen on ABCI {} (see {})",
                        node.name,
                        node.abci_address(),
                        node.sequencer_log().display()
                    ),
                    after: ABCI_STARTUP_TIMEOUT,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_for_height_until(
        &self,
        i: usize,
        h: u64,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<u64> {
        loop {
            self.check_running(i)?;
            let last = match self.height(i).await {
                Ok(height) if height >= h => return Ok(height),
                Ok(height) => format!("at height {height}"),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(TestnetError::Timeout {
                    what: format!("node{i} to reach height {h} (last: {last})"),
                    after: timeout,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn description(&self, plan: PortPlan, timeout_commit: Duration) -> Value {
        json!({
            "chain_id": self.chain_id,
            "app": self.app,
            "dev_key": self.dev_key_path,
            "dev_address": self.dev_key.address(),
            "dev_key_warning": DEV_KEY_WARNING,
            "validators": self.validators,
            "base_port": plan.base,
            "timeout_commit_ms": timeout_commit.as_millis() as u64,
            "cometbft_binary": self.cometbft_bin,
            "sequencer_binary": self.sequencer_bin,
            "nodes": self.nodes.iter().map(|n| json!({
                "name": n.name,
                "node_id": n.node_id,
                "home": n.home,
                "cometbft_home": n.cometbft_home(),
                "app_home": n.app_home(),
                "rpc": n.rpc_url(),
                "api": n.api_url(),
                "p2p": n.p2p_address(),
                "abci": n.abci_address(),
                "ports": n.ports,
                "logs": { "cometbft": n.cometbft_log(), "sequencer": n.sequencer_log() },
                "validator": n.index < self.validators,
                "operator": self.operator(n.index).map(|(k, _)| k.address().to_string()),
            })).collect::<Vec<_>>(),
        })
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        for procs in &self.procs {
            procs.lock().unwrap_or_else(|e| e.into_inner()).kill_all();
        }
        self.remove_outside_sockets();
    }
}

/// A CometBFT RPC client for `url` with this crate's request timeout.
fn rpc_client(url: &str) -> Result<HttpClient> {
    let parsed: HttpClientUrl = url.parse().map_err(|e| rpc_error(url, &e))?;
    HttpClient::builder(parsed)
        .timeout(RPC_TIMEOUT)
        .build()
        .map_err(|e| rpc_error(url, &e))
}

/// A failed RPC request as [`TestnetError::Rpc`]. The message is the error
/// trace's alternate Display (the message chain); the error's own Display
/// is its tracer's Debug, with source locations and backtraces.
fn rpc_error(url: &str, error: &tendermint_rpc::Error) -> TestnetError {
    TestnetError::Rpc {
        url: url.to_string(),
        message: format!("{:#}", error.trace()),
    }
}

/// The slot of `role` in a node's processes.
fn slot(procs: &mut NodeProcs, role: Role) -> Option<&mut Proc> {
    match role {
        Role::Cometbft => procs.cometbft.as_mut(),
        Role::Sequencer => procs.sequencer.as_mut(),
    }
}

/// Runs a short helper command to completion; its stdout on success.
async fn run(program: &Path, args: &[&str]) -> Result<String> {
    let command = format!("{} {}", program.display(), args.join(" "));
    let output = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| TestnetError::io(format!("running `{command}`"), e))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        return Err(TestnetError::Command {
            command,
            status: output.status,
            output: if stderr.is_empty() {
                String::from_utf8_lossy(&output.stdout).trim().to_string()
            } else {
                stderr
            },
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn read_json(path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path)
        .map_err(|e| TestnetError::io(format!("reading {}", path.display()), e))?;
    serde_json::from_slice(&bytes).map_err(|e| TestnetError::json(path.display().to_string(), e))
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| TestnetError::json(path.display().to_string(), e))?;
    std::fs::write(path, text + "\n")
        .map_err(|e| TestnetError::io(format!("writing {}", path.display()), e))
}

/// Appends a line marking a (re)start to a process log.
fn mark_log(log: &Path, program: &Path, args: &[String]) {
    use std::io::Write;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = writeln!(
            f,
            "==== weft-testnet: starting {} {} (unix time {stamp}) ====",
            program.display(),
            args.join(" ")
        );
    }
}
