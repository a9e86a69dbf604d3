//! Edits one node's CometBFT `config/config.toml`: its ports, peers, block
//! timing and the settings every local node needs.

use std::time::Duration;

use toml::{Table, Value};
use weft_core::transaction::MAX_TX_BYTES;

use crate::{
    app::{AbciEndpoint, App},
    ports::NodePorts,
    Result, TestnetError,
};

/// Room for the JSON-RPC envelope around a transaction in a
/// `broadcast_tx_sync` request body (`{"jsonrpc":"2.0","id":…,"method":…,
/// "params":{"tx":"…"}}` is about a hundred bytes; the rest is slack for
/// clients that pretty-print or use long ids).
const JSON_RPC_ENVELOPE_BYTES: usize = 16 * 1024;

/// CometBFT's `mempool.max_tx_bytes`: the largest transaction the
/// sequencer's CheckTx accepts, so CometBFT never refuses one first. The
/// mempool's p2p channel sizes its largest message from this value too.
pub const MEMPOOL_MAX_TX_BYTES: usize = MAX_TX_BYTES;

/// CometBFT's `rpc.max_body_bytes`: a `broadcast_tx_sync` POST carrying the
/// largest valid transaction, base64-encoded as JSON-RPC requires (4 bytes
/// per 3, padded), plus its envelope. CometBFT's default (1 MB) is smaller
/// than one such request (~1.4 MB), which made `POST /v1/tx` answer 502 for
/// transactions of 750 KB and more.
pub const RPC_MAX_BODY_BYTES: usize = MAX_TX_BYTES.div_ceil(3) * 4 + JSON_RPC_ENVELOPE_BYTES;

/// CometBFT's `mempool.max_txs_bytes`: all transactions in its mempool.
const MEMPOOL_MAX_TXS_BYTES: usize = 1 << 30;

/// What differs between nodes' config files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfigSettings {
    /// The node's moniker, e.g. `node0`.
    pub moniker: String,
    /// Its ports.
    pub ports: NodePorts,
    /// Where its sequencer serves ABCI (for `proxy_app`).
    pub abci: AbciEndpoint,
    /// Every other node as `<node id>@127.0.0.1:<p2p port>`.
    pub persistent_peers: Vec<String>,
    /// CometBFT's `timeout_commit`: roughly the block time.
    pub timeout_commit: Duration,
    /// The ABCI application CometBFT talks to (its `proxy_app`).
    pub app: App,
    /// CometBFT's peer exchange. Off when every peer is reached through a
    /// link proxy, so no node learns (and dials) another's direct address.
    pub pex: bool,
}

/// Applies `settings` to a parsed config.toml. Keys not named here keep the
/// values `cometbft init` wrote.
pub fn apply(config: &mut Table, settings: &NodeConfigSettings) -> Result<()> {
    let ports = settings.ports;
    config.insert(
        "proxy_app".into(),
        settings.app.proxy_app(&settings.abci).into(),
    );
    config.insert("moniker".into(), settings.moniker.clone().into());
    config.insert("log_level".into(), "info".into());

    let rpc = section(config, "rpc")?;
    rpc.insert(
        "laddr".into(),
        format!("tcp://127.0.0.1:{}", ports.rpc).into(),
    );
    rpc.insert("max_body_bytes".into(), toml_int(RPC_MAX_BODY_BYTES).into());

    let p2p = section(config, "p2p")?;
    p2p.insert(
        "laddr".into(),
        format!("tcp://127.0.0.1:{}", ports.p2p).into(),
    );
    p2p.insert(
        "persistent_peers".into(),
        settings.persistent_peers.join(",").into(),
    );
    p2p.insert("addr_book_strict".into(), false.into());
    p2p.insert("allow_duplicate_ip".into(), true.into());
    p2p.insert("pex".into(), settings.pex.into());

    let consensus = section(config, "consensus")?;
    consensus.insert(
        "timeout_commit".into(),
        format!("{}ms", settings.timeout_commit.as_millis()).into(),
    );
    // Pitfall 7: a sequencer wants a steady block clock.
    consensus.insert("create_empty_blocks".into(), true.into());

    // The app's mempool bounds are the binding ones (weft-sequencer
    // --mempool-max-*); CometBFT's own must not refuse first. Recheck stays
    // on: it is how evicted transactions leave CometBFT's mempool.
    let mempool = section(config, "mempool")?;
    mempool.insert("size".into(), 100_000i64.into());
    mempool.insert("max_tx_bytes".into(), toml_int(MEMPOOL_MAX_TX_BYTES).into());
    mempool.insert(
        "max_txs_bytes".into(),
        toml_int(MEMPOOL_MAX_TXS_BYTES).into(),
    );
    mempool.insert("recheck".into(), true.into());

    section(config, "instrumentation")?.insert("prometheus".into(), false.into());
    section(config, "tx_index")?.insert("indexer".into(), "kv".into());
    Ok(())
}

/// Reads config.toml, applies `settings`, writes it back.
pub fn edit_file(path: &std::path::Path, settings: &NodeConfigSettings) -> Result<()> {
    let context = || path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| TestnetError::io(format!("reading {}", context()), e))?;
    let mut config: Table = text
        .parse()
        .map_err(|e: toml::de::Error| TestnetError::Toml {
            context: context(),
            message: e.to_string(),
        })?;
    apply(&mut config, settings)?;
    let text = toml::to_string(&config).map_err(|e| TestnetError::Toml {
        context: context(),
        message: e.to_string(),
    })?;
    std::fs::write(path, text).map_err(|e| TestnetError::io(format!("writing {}", context()), e))
}

/// A byte count as a TOML integer (these constants are far below i64::MAX).
fn toml_int(bytes: usize) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

/// The `[name]` table, created when missing.
fn section<'a>(config: &'a mut Table, name: &str) -> Result<&'a mut Table> {
    config
        .entry(name)
        .or_insert_with(|| Value::Table(Table::new()))
        .as_table_mut()
        .ok_or_else(|| TestnetError::Toml {
            context: "config.toml".into(),
            message: format!("`{name}` is not a table"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An excerpt of what `cometbft init` v0.38 writes.
    const INIT_CONFIG: &str = r#"
proxy_app = "tcp://127.0.0.1:26658"
moniker = "vm"
db_backend = "goleveldb"
log_level = "info"

[rpc]
laddr = "tcp://127.0.0.1:26657"
max_body_bytes = 1000000

[p2p]
laddr = "tcp://0.0.0.0:26656"
persistent_peers = ""
addr_book_strict = true
pex = true
allow_duplicate_ip = false

[mempool]
size = 5000
max_tx_bytes = 1048576

[consensus]
timeout_propose = "3s"
timeout_commit = "1s"
create_empty_blocks = true

[tx_index]
indexer = "kv"

[instrumentation]
prometheus = false
"#;

    fn settings() -> NodeConfigSettings {
        NodeConfigSettings {
            moniker: "node1".into(),
            ports: NodePorts {
                p2p: 30_010,
                rpc: 30_011,
                abci: 30_012,
                api: 30_013,
            },
            abci: AbciEndpoint::Tcp(30_012),
            persistent_peers: vec!["aa@127.0.0.1:30000".into(), "cc@127.0.0.1:30020".into()],
            timeout_commit: Duration::from_millis(300),
            app: App::Weft,
            pex: true,
        }
    }

    #[test]
    fn config_gets_ports_peers_and_timing_and_keeps_the_rest() {
        let mut config: Table = INIT_CONFIG.parse().unwrap();
        apply(&mut config, &settings()).unwrap();
        let text = toml::to_string(&config).unwrap();
        let config: Table = text.parse().unwrap();

        assert_eq!(config["proxy_app"].as_str(), Some("tcp://127.0.0.1:30012"));
        assert_eq!(config["moniker"].as_str(), Some("node1"));
        assert_eq!(config["db_backend"].as_str(), Some("goleveldb"));
        assert_eq!(
            config["rpc"]["laddr"].as_str(),
            Some("tcp://127.0.0.1:30011")
        );
        assert_eq!(
            config["rpc"]["max_body_bytes"].as_integer(),
            Some(RPC_MAX_BODY_BYTES as i64)
        );
        let p2p = &config["p2p"];
        assert_eq!(p2p["laddr"].as_str(), Some("tcp://127.0.0.1:30010"));
        assert_eq!(
            p2p["persistent_peers"].as_str(),
            Some("aa@127.0.0.1:30000,cc@127.0.0.1:30020")
        );
        assert_eq!(p2p["addr_book_strict"].as_bool(), Some(false));
        assert_eq!(p2p["allow_duplicate_ip"].as_bool(), Some(true));
        assert_eq!(p2p["pex"].as_bool(), Some(true));
        // The app's mempool bounds bind first; CometBFT's are raised.
        assert_eq!(config["mempool"]["size"].as_integer(), Some(100_000));
        assert_eq!(
            config["mempool"]["max_txs_bytes"].as_integer(),
            Some(1 << 30)
        );
        assert_eq!(config["mempool"]["recheck"].as_bool(), Some(true));
        assert_eq!(
            config["consensus"]["timeout_commit"].as_str(),
            Some("300ms")
        );
        assert_eq!(config["consensus"]["timeout_propose"].as_str(), Some("3s"));
        assert_eq!(
            config["consensus"]["create_empty_blocks"].as_bool(),
            Some(true)
        );
        assert_eq!(config["tx_index"]["indexer"].as_str(), Some("kv"));
        assert_eq!(
            config["instrumentation"]["prometheus"].as_bool(),
            Some(false)
        );
    }

    #[test]
    fn the_largest_valid_transaction_fits_every_limit_on_its_way_in() {
        use base64::Engine;
        let mut config: Table = INIT_CONFIG.parse().unwrap();
        apply(&mut config, &settings()).unwrap();
        let int = |section: &str, key: &str| {
            usize::try_from(config[section][key].as_integer().unwrap()).unwrap()
        };

        // What a client POSTs to CometBFT's RPC for the largest transaction
        // CheckTx accepts (as the sequencer's `POST /v1/tx` and the CLI do).
        let tx = vec![0xa5u8; MAX_TX_BYTES];
        let request = serde_json::json!({
            "jsonrpc": "2.0",
            "id": u64::MAX,
            "method": "broadcast_tx_sync",
            "params": { "tx": base64::engine::general_purpose::STANDARD.encode(&tx) },
        });
        let body = serde_json::to_vec_pretty(&request).unwrap().len();
        assert!(
            int("rpc", "max_body_bytes") >= body,
            "rpc.max_body_bytes {} < a {body}-byte broadcast of a {MAX_TX_BYTES}-byte tx",
            int("rpc", "max_body_bytes")
        );
        // CometBFT's mempool admits it, and holds it among others.
        assert!(int("mempool", "max_tx_bytes") >= MAX_TX_BYTES);
        assert!(int("mempool", "max_txs_bytes") >= 16 * MAX_TX_BYTES);
        // And a block can carry it (proto framing of the tx list included).
        assert!(crate::genesis::BLOCK_MAX_BYTES as usize >= MAX_TX_BYTES + 1024);
    }

    #[test]
    fn a_kvstore_node_runs_the_app_in_process_with_the_same_settings() {
        let mut weft: Table = INIT_CONFIG.parse().unwrap();
        apply(&mut weft, &settings()).unwrap();
        let mut kvstore: Table = INIT_CONFIG.parse().unwrap();
        apply(
            &mut kvstore,
            &NodeConfigSettings {
                app: App::Kvstore,
                ..settings()
            },
        )
        .unwrap();
        assert_eq!(kvstore["proxy_app"].as_str(), Some("kvstore"));
        // Everything but the app is identical, so benchmarks compare apps
        // on the same CometBFT.
        kvstore.insert("proxy_app".into(), weft["proxy_app"].clone());
        assert_eq!(kvstore, weft);
    }

    #[test]
    fn a_weft_node_over_a_unix_socket_points_proxy_app_at_it() {
        let mut config: Table = INIT_CONFIG.parse().unwrap();
        apply(
            &mut config,
            &NodeConfigSettings {
                abci: AbciEndpoint::Unix("/tmp/net/node1/abci.sock".into()),
                ..settings()
            },
        )
        .unwrap();
        assert_eq!(
            config["proxy_app"].as_str(),
            Some("unix:///tmp/net/node1/abci.sock")
        );
    }

    #[test]
    fn pex_follows_the_settings() {
        let mut config: Table = INIT_CONFIG.parse().unwrap();
        apply(
            &mut config,
            &NodeConfigSettings {
                pex: false,
                ..settings()
            },
        )
        .unwrap();
        assert_eq!(config["p2p"]["pex"].as_bool(), Some(false));
        assert_eq!(config["p2p"]["addr_book_strict"].as_bool(), Some(false));
    }

    #[test]
    fn missing_sections_are_created() {
        let mut config = Table::new();
        apply(&mut config, &settings()).unwrap();
        assert_eq!(
            config["consensus"]["create_empty_blocks"].as_bool(),
            Some(true)
        );
    }

    #[test]
    fn a_section_that_is_not_a_table_is_an_error() {
        let mut config: Table = "rpc = 3".parse().unwrap();
        assert!(apply(&mut config, &settings()).is_err());
    }
}
