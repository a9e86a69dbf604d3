//! Edits one node's CometBFT `config/config.toml`: its ports, peers, block
//! timing and the settings every local node needs.

use std::time::Duration;

use toml::{Table, Value};

use crate::{app::App, ports::NodePorts, Result, TestnetError};

/// What differs between nodes' config files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfigSettings {
    /// The node's moniker, e.g. `node0`.
    pub moniker: String,
    /// Its ports.
    pub ports: NodePorts,
    /// Every other node as `<node id>@127.0.0.1:<p2p port>`.
    pub persistent_peers: Vec<String>,
    /// CometBFT's `timeout_commit`: roughly the block time.
    pub timeout_commit: Duration,
    /// The ABCI application CometBFT talks to (its `proxy_app`).
    pub app: App,
}

/// Applies `settings` to a parsed config.toml. Keys not named here keep the
/// values `cometbft init` wrote.
pub fn apply(config: &mut Table, settings: &NodeConfigSettings) -> Result<()> {
    let ports = settings.ports;
    config.insert("proxy_app".into(), settings.app.proxy_app(&ports).into());
    config.insert("moniker".into(), settings.moniker.clone().into());
    config.insert("log_level".into(), "info".into());

    let rpc = section(config, "rpc")?;
    rpc.insert(
        "laddr".into(),
        format!("tcp://127.0.0.1:{}", ports.rpc).into(),
    );

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
    p2p.insert("pex".into(), true.into());

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
    mempool.insert("max_txs_bytes".into(), (1i64 << 30).into());
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
            persistent_peers: vec!["aa@127.0.0.1:30000".into(), "cc@127.0.0.1:30020".into()],
            timeout_commit: Duration::from_millis(300),
            app: App::Weft,
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
            Some(1_000_000)
        );
        let p2p = &config["p2p"];
        assert_eq!(p2p["laddr"].as_str(), Some("tcp://127.0.0.1:30010"));
        assert_eq!(
            p2p["persistent_peers"].as_str(),
            Some("aa@127.0.0.1:30000,cc@127.0.0.1:30020")
        );
        assert_eq!(p2p["addr_book_strict"].as_bool(), Some(false));
        assert_eq!(p2p["allow_duplicate_ip"].as_bool(), Some(true));
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
