//! Process configuration, layered by `weft-config` like every Weft service:
//! built-in defaults, one TOML file (`--config`), `WEFT_RELAY_*`
//! environment variables, then flags. Every setting has one key, spelled
//! `rate_limit` in the file, `WEFT_RELAY_RATE_LIMIT` in the environment and
//! `--rate-limit` on the command line. `--print-default-config` prints
//! every key with its default and its documentation.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use crate::RelayConfig;

/// `weft-relay` settings: what the config file holds, every key with a
/// default. The documentation of each key is its flag's (see [`Flags`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Chain id.
    pub chain_id: String,
    /// Listen address.
    pub listen: SocketAddr,
    /// CometBFT RPC.
    pub cometbft_rpc: String,
    /// Sequencer API.
    pub sequencer_api: String,
    /// Trace store.
    pub data: PathBuf,
    /// Log filter.
    pub log: String,
    /// Auction byte cap.
    pub auction_byte_cap: u64,
    /// Trace retention, heights.
    pub retention_heights: u64,
    /// Bids per second per builder.
    pub rate_limit: u32,
    /// Burst per builder.
    pub rate_burst: u32,
    /// Live bids per height.
    pub max_bids_per_height: usize,
    /// Signed-request clock skew, seconds.
    pub max_request_skew_secs: u64,
    /// Requests at once.
    pub max_concurrent_requests: usize,
    /// Request timeout, seconds.
    pub request_timeout_secs: u64,
    /// Head poll, milliseconds.
    pub head_poll_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        let relay = RelayConfig::new("");
        Config {
            chain_id: String::new(),
            listen: SocketAddr::from(([127, 0, 0, 1], 18550)),
            cometbft_rpc: "http://127.0.0.1:26657".into(),
            sequencer_api: "http://127.0.0.1:8080".into(),
            data: PathBuf::from("relay-data/traces.redb"),
            log: "info".into(),
            auction_byte_cap: relay.auction_byte_cap,
            retention_heights: relay.retention_heights,
            rate_limit: relay.rate_limit_per_second,
            rate_burst: relay.rate_limit_burst,
            max_bids_per_height: relay.max_bids_per_height,
            max_request_skew_secs: relay.max_request_skew.as_secs(),
            max_concurrent_requests: relay.max_concurrent_requests,
            request_timeout_secs: relay.request_timeout.as_secs(),
            head_poll_ms: 100,
        }
    }
}

/// The command line: every setting of [`Config`] as an optional flag with
/// its environment variable (an unset one leaves the file's or the
/// default's value), plus `--config`, `--print-default-config` and
/// `--check-config`.
#[derive(Debug, Clone, Default, Serialize, clap::Parser)]
#[command(
    name = "weft-relay",
    version,
    about = "The builder-bid relay: builders submit signed bids, active validators fetch the winners of the next height."
)]
pub struct Flags {
    /// TOML file with any of these settings (environment and flags override
    /// it; an unknown key is an error).
    #[arg(long, env = "WEFT_RELAY_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Print a complete config file with every default, then exit.
    #[arg(long)]
    #[serde(skip)]
    pub print_default_config: bool,
    /// Load the configuration (file, environment, flags), print the result
    /// as TOML and exit: non-zero, naming the key, if it does not load.
    #[arg(long)]
    #[serde(skip)]
    pub check_config: bool,
    /// The chain id bids and requests must carry (required).
    #[arg(long, env = "WEFT_RELAY_CHAIN_ID")]
    pub chain_id: Option<String>,
    /// Address to serve the API on.
    #[arg(long, env = "WEFT_RELAY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// CometBFT RPC of a node, for the chain head (its `/websocket` for new
    /// blocks, `/status` as the fallback).
    #[arg(long, env = "WEFT_RELAY_COMETBFT_RPC")]
    pub cometbft_rpc: Option<String>,
    /// The sequencer's HTTP API, for balances and the validator directory.
    #[arg(long, env = "WEFT_RELAY_SEQUENCER_API")]
    pub sequencer_api: Option<String>,
    /// Where bid traces are stored (an embedded redb file).
    #[arg(long, env = "WEFT_RELAY_DATA")]
    pub data: Option<PathBuf>,
    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "WEFT_RELAY_LOG")]
    pub log: Option<String>,
    /// Most rollup data bytes the winners of one height may carry (default:
    /// half the default `max_rollup_data_per_block`).
    #[arg(long, env = "WEFT_RELAY_AUCTION_BYTE_CAP")]
    pub auction_byte_cap: Option<u64>,
    /// Heights of traces and auction summaries kept behind the head.
    #[arg(long, env = "WEFT_RELAY_RETENTION_HEIGHTS")]
    pub retention_heights: Option<u64>,
    /// Sustained bids per second per builder (0: no limit).
    #[arg(long, env = "WEFT_RELAY_RATE_LIMIT")]
    pub rate_limit: Option<u32>,
    /// Bids a builder may send in a burst.
    #[arg(long, env = "WEFT_RELAY_RATE_BURST")]
    pub rate_burst: Option<u32>,
    /// Live bids kept per height (a bound on memory).
    #[arg(long, env = "WEFT_RELAY_MAX_BIDS_PER_HEIGHT")]
    pub max_bids_per_height: Option<usize>,
    /// Seconds a signed request's timestamp may be away from this relay's
    /// clock.
    #[arg(long, env = "WEFT_RELAY_MAX_REQUEST_SKEW_SECS")]
    pub max_request_skew_secs: Option<u64>,
    /// Requests handled at once; more are answered 503 `overloaded`.
    #[arg(long, env = "WEFT_RELAY_MAX_CONCURRENT_REQUESTS")]
    pub max_concurrent_requests: Option<usize>,
    /// Seconds a request may take before it is answered 408.
    #[arg(long, env = "WEFT_RELAY_REQUEST_TIMEOUT_SECS")]
    pub request_timeout_secs: Option<u64>,
    /// How often to poll CometBFT's `/status` for the head, in ms (new
    /// blocks normally arrive over the websocket first).
    #[arg(long, env = "WEFT_RELAY_HEAD_POLL_MS")]
    pub head_poll_ms: Option<u64>,
}

/// Flags that are not settings (never in the file).
const NOT_SETTINGS: &[&str] = &["config", "print_default_config", "check_config"];

/// Why the loaded settings cannot run a relay.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The layers did not load.
    #[error(transparent)]
    Load(#[from] weft_config::ConfigError),
    /// A required key is unset.
    #[error("`{0}` is required (flag --{1}, env {2}, or the config file)")]
    Required(&'static str, &'static str, &'static str),
}

impl Flags {
    /// Lays the file (if `--config`), then the environment and flags, over
    /// the defaults, and checks what has no usable default.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let config: Config = weft_config::load(self.config.as_deref(), self)?;
        config.check()?;
        Ok(config)
    }
}

impl Config {
    /// The complete default config file, commented.
    pub fn default_toml() -> Result<String, weft_config::ConfigError> {
        use clap::CommandFactory;
        weft_config::default_toml::<Config>(
            &Flags::command(),
            NOT_SETTINGS,
            "weft-relay configuration (weft-relay --config FILE).\nEvery key, with its built-in default.",
        )
    }

    /// Why these settings cannot run, if they cannot.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.chain_id.is_empty() {
            return Err(ConfigError::Required(
                "chain_id",
                "chain-id",
                "WEFT_RELAY_CHAIN_ID",
            ));
        }
        Ok(())
    }

    /// The relay's own settings.
    pub fn relay_config(&self) -> RelayConfig {
        RelayConfig {
            auction_byte_cap: self.auction_byte_cap,
            retention_heights: self.retention_heights,
            rate_limit_per_second: self.rate_limit,
            rate_limit_burst: self.rate_burst,
            max_bids_per_height: self.max_bids_per_height,
            max_request_skew: Duration::from_secs(self.max_request_skew_secs),
            max_concurrent_requests: self.max_concurrent_requests,
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            ..RelayConfig::new(self.chain_id.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::Parser;

    use super::*;

    fn flags(args: &[&str]) -> Flags {
        Flags::try_parse_from(std::iter::once("weft-relay").chain(args.iter().copied())).unwrap()
    }

    fn load(file: &str, args: &[&str]) -> Result<Config, ConfigError> {
        let config: Config =
            weft_config::load_str(Some((Path::new("relay.toml"), file)), &flags(args))?;
        config.check()?;
        Ok(config)
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_the_defaults() {
        let file = "chain_id = \"weft-a\"\nrate_limit = 5\nlisten = \"0.0.0.0:9000\"\n";
        let c = load(file, &[]).unwrap();
        assert_eq!((c.chain_id.as_str(), c.rate_limit), ("weft-a", 5));
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.rate_burst, Config::default().rate_burst);
        let c = load(file, &["--rate-limit", "7", "--chain-id", "weft-b"]).unwrap();
        assert_eq!((c.chain_id.as_str(), c.rate_limit), ("weft-b", 7));
        assert_eq!(c.relay_config().rate_limit_per_second, 7);
        assert_eq!(c.relay_config().chain_id, "weft-b");
    }

    #[test]
    fn the_chain_id_is_required_and_a_typo_is_named() {
        let err = load("", &[]).unwrap_err().to_string();
        assert!(err.contains("chain_id"), "{err}");
        let err = load("chain_id = \"x\"\nrate_limt = 5\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rate_limt") && err.contains("rate_limit"),
            "{err}"
        );
    }

    #[test]
    fn the_flags_the_testnet_passes_still_work() {
        let c = load(
            "",
            &[
                "--chain-id",
                "weft-devnet",
                "--listen",
                "127.0.0.1:18551",
                "--cometbft-rpc",
                "http://127.0.0.1:26657",
                "--sequencer-api",
                "http://127.0.0.1:26659",
                "--data",
                "/tmp/relay/traces.redb",
            ],
        )
        .unwrap();
        assert_eq!(c.listen.port(), 18551);
        assert_eq!(c.data, PathBuf::from("/tmp/relay/traces.redb"));
    }

    #[test]
    fn the_printed_default_config_is_complete_and_parses_back() {
        let text = Config::default_toml().unwrap();
        let with_chain =
            format!("{text}\nchain_id = \"weft-x\"\n").replace("\nchain_id = \"\"\n", "\n");
        let back = load(&with_chain, &[]).unwrap();
        assert_eq!(
            back,
            Config {
                chain_id: "weft-x".into(),
                ..Config::default()
            }
        );
        let keys = text
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains(" = "))
            .count();
        assert_eq!(keys, 15, "{text}");
    }
}
