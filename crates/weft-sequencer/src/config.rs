//! Process configuration, layered by `weft-config`: built-in defaults, one
//! TOML file (`--config`), `WEFT_SEQUENCER_*` environment variables, then
//! flags. Every setting has one key, spelled `mempool_max_txs` in the file,
//! `WEFT_SEQUENCER_MEMPOOL_MAX_TXS` in the environment and
//! `--mempool-max-txs` on the command line. `--print-default-config`
//! prints every key with its default and its documentation.
//!
//! Fees and caps are chain state (governance), not configuration: nothing
//! here changes what a block means, only how this node serves it.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use crate::{
    abci_server::ListenAddr,
    api::{ApiLimits, EnvelopeConfig},
    app::AppConfig,
    mempool::MempoolConfig,
};

/// Default of `state_retention_heights`: about a day of history at one
/// block a second.
pub const DEFAULT_STATE_RETENTION_HEIGHTS: u64 = 100_000;

/// `weft-sequencer` settings: what the config file holds, every key with a
/// default. The documentation of each key is its flag's (see [`Flags`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Data directory.
    pub home: PathBuf,
    /// ABCI listen address.
    #[serde(with = "weft_config::display_fromstr")]
    pub abci_listen: ListenAddr,
    /// HTTP API listen address.
    pub api_listen: SocketAddr,
    /// Local CometBFT RPC.
    pub cometbft_rpc: String,
    /// Log filter.
    pub log: String,
    /// Mempool: most transactions.
    pub mempool_max_txs: usize,
    /// Mempool: most bytes.
    pub mempool_max_bytes: usize,
    /// Mempool: most parked per account.
    pub mempool_max_parked_per_account: usize,
    /// Mempool: most parked overall.
    pub mempool_max_parked: usize,
    /// Mempool: nonce window.
    pub mempool_max_nonce_ahead: u64,
    /// Mempool: time to live, seconds.
    pub mempool_ttl_secs: u64,
    /// Status retention, seconds.
    pub status_retention_secs: u64,
    /// Tx index retention, blocks.
    pub tx_index_retention_blocks: u64,
    /// State history retention, heights.
    pub state_retention_heights: u64,
    /// Blocks CometBFT keeps.
    pub cometbft_retain_blocks: u64,
    /// The store's page cache, MiB.
    pub store_cache_mib: u64,
    /// PrepareProposal budget, milliseconds.
    pub prepare_proposal_budget_ms: u64,
    /// API: requests per second per IP.
    pub api_rate_limit_per_second: u32,
    /// API: burst per IP.
    pub api_rate_limit_burst: u32,
    /// API: rate-limit loopback too.
    pub api_rate_limit_loopback: bool,
    /// API: submitted transactions per second per IP.
    pub api_rate_limit_txs_per_second: u32,
    /// API: submitted transactions at once per IP.
    pub api_rate_limit_txs_burst: u32,
    /// API: requests at once.
    pub api_max_concurrent_requests: usize,
    /// API: streams at once.
    pub api_max_streams: usize,
    /// API: request timeout, seconds.
    pub api_request_timeout_secs: u64,
    /// Builder relays asked for winners.
    pub relay_urls: Vec<String>,
    /// Key file of the validator's registered relay key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_key_file: Option<PathBuf>,
    /// The validator's operator address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_operator: Option<weft_core::Address>,
    /// Relay fetch deadline, milliseconds.
    pub relay_deadline_ms: u64,
    /// Relay refresh interval, milliseconds.
    pub relay_refresh_ms: u64,
    /// Largest envelope of forwarded transactions, bytes.
    pub envelope_max_bytes: usize,
    /// Longest a forwarded transaction waits for an envelope, milliseconds.
    pub envelope_max_wait_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        let mempool = MempoolConfig::default();
        let app = AppConfig::default();
        let api = ApiLimits::default();
        Config {
            home: PathBuf::from(".weft-sequencer"),
            abci_listen: ListenAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], 26658))),
            api_listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            cometbft_rpc: "http://127.0.0.1:26657".into(),
            log: "info".into(),
            mempool_max_txs: mempool.max_txs,
            mempool_max_bytes: mempool.max_bytes,
            mempool_max_parked_per_account: mempool.max_parked_per_account,
            mempool_max_parked: mempool.max_parked,
            mempool_max_nonce_ahead: mempool.max_nonce_ahead,
            mempool_ttl_secs: mempool.ttl.as_secs(),
            status_retention_secs: mempool.status_retention.as_secs(),
            tx_index_retention_blocks: app.tx_index_retention_blocks,
            state_retention_heights: DEFAULT_STATE_RETENTION_HEIGHTS,
            cometbft_retain_blocks: app.cometbft_retain_blocks,
            store_cache_mib: (crate::storage::DEFAULT_CACHE_BYTES >> 20) as u64,
            prepare_proposal_budget_ms: u64::try_from(app.prepare_proposal_budget.as_millis())
                .unwrap_or(u64::MAX),
            api_rate_limit_per_second: api.rate_limit_per_second,
            api_rate_limit_burst: api.rate_limit_burst,
            api_rate_limit_loopback: api.rate_limit_loopback,
            api_rate_limit_txs_per_second: api.rate_limit_txs_per_second,
            api_rate_limit_txs_burst: api.rate_limit_txs_burst,
            api_max_concurrent_requests: api.max_concurrent_requests,
            api_max_streams: api.max_streams,
            api_request_timeout_secs: api.request_timeout.as_secs(),
            relay_urls: Vec::new(),
            relay_key_file: None,
            relay_operator: None,
            relay_deadline_ms: 200,
            relay_refresh_ms: 100,
            envelope_max_bytes: EnvelopeConfig::default().max_bytes,
            envelope_max_wait_ms: EnvelopeConfig::default().max_wait.as_millis() as u64,
        }
    }
}

/// The command line: every setting of [`Config`] as an optional flag with
/// its environment variable (an unset one leaves the file's or the
/// default's value), plus `--config` and `--print-default-config`.
#[derive(Debug, Clone, Default, Serialize, clap::Parser)]
#[command(
    name = "weft-sequencer",
    version,
    about = "The Weft ABCI application. Run it next to a CometBFT v0.38 node whose proxy_app points at --abci-listen."
)]
pub struct Flags {
    /// TOML file with any of these settings (environment and flags override
    /// it; an unknown key is an error).
    #[arg(long, env = "WEFT_SEQUENCER_CONFIG")]
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
    /// Data directory; the state lives in `<home>/weft.redb`.
    #[arg(long, env = "WEFT_SEQUENCER_HOME")]
    pub home: Option<PathBuf>,
    /// Where CometBFT connects over ABCI (its `proxy_app`): `host:port`,
    /// `tcp://host:port`, or `unix:///path/abci.sock` (same host; cheaper
    /// per CheckTx).
    #[arg(long, env = "WEFT_SEQUENCER_ABCI_LISTEN")]
    pub abci_listen: Option<String>,
    /// Where the HTTP API (and /health, /metrics) listens.
    #[arg(long, env = "WEFT_SEQUENCER_API_LISTEN")]
    pub api_listen: Option<SocketAddr>,
    /// The local CometBFT node's RPC address (POST /v1/tx forwards there;
    /// /health/ready asks it whether the node is catching up).
    #[arg(long, env = "WEFT_SEQUENCER_COMETBFT_RPC")]
    pub cometbft_rpc: Option<String>,
    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "WEFT_SEQUENCER_LOG")]
    pub log: Option<String>,
    /// Most transactions the mempool holds (pending + parked).
    #[arg(long, env = "WEFT_SEQUENCER_MEMPOOL_MAX_TXS")]
    pub mempool_max_txs: Option<usize>,
    /// Most encoded bytes the mempool holds.
    #[arg(long, env = "WEFT_SEQUENCER_MEMPOOL_MAX_BYTES")]
    pub mempool_max_bytes: Option<usize>,
    /// Most parked (future-nonce) transactions per account.
    #[arg(long, env = "WEFT_SEQUENCER_MEMPOOL_MAX_PARKED_PER_ACCOUNT")]
    pub mempool_max_parked_per_account: Option<usize>,
    /// Most parked transactions overall.
    #[arg(long, env = "WEFT_SEQUENCER_MEMPOOL_MAX_PARKED")]
    pub mempool_max_parked: Option<usize>,
    /// How far beyond the account's nonce a transaction may be admitted.
    #[arg(long, env = "WEFT_SEQUENCER_MEMPOOL_MAX_NONCE_AHEAD")]
    pub mempool_max_nonce_ahead: Option<u64>,
    /// Seconds a transaction may wait in the mempool before it is evicted.
    #[arg(long, env = "WEFT_SEQUENCER_MEMPOOL_TTL_SECS")]
    pub mempool_ttl_secs: Option<u64>,
    /// Seconds a rejected or evicted status stays queryable.
    #[arg(long, env = "WEFT_SEQUENCER_STATUS_RETENTION_SECS")]
    pub status_retention_secs: Option<u64>,
    /// Heights of included-tx locations kept for status queries (the
    /// sequencer's pruning knob; CometBFT's own is in its config.toml).
    #[arg(long, env = "WEFT_SEQUENCER_TX_INDEX_RETENTION_BLOCKS")]
    pub tx_index_retention_blocks: Option<u64>,
    /// Heights of state history kept for historical queries (accounts and
    /// app hashes at a past height); older JMT versions are pruned as
    /// blocks commit (0 = keep everything). Consensus never reads history.
    #[arg(long, env = "WEFT_SEQUENCER_STATE_RETENTION_HEIGHTS")]
    pub state_retention_heights: Option<u64>,
    /// Blocks CometBFT keeps: Commit answers a retain height this far
    /// back and CometBFT prunes its block store below it (0 = keep every
    /// block). Peers cannot block-sync, and conductors cannot fetch
    /// headers, from below it: keep it above their longest expected lag.
    #[arg(long, env = "WEFT_SEQUENCER_COMETBFT_RETAIN_BLOCKS")]
    pub cometbft_retain_blocks: Option<u64>,
    /// MiB of the store's page cache (redb's): most of the sequencer's
    /// resident memory under load grows into it; size it with the pod's
    /// memory limit in mind.
    #[arg(long, env = "WEFT_SEQUENCER_STORE_CACHE_MIB")]
    pub store_cache_mib: Option<u64>,
    /// Longest PrepareProposal spends filling a block from the mempool, in
    /// milliseconds (keep it well under CometBFT's `timeout_propose`).
    #[arg(long, env = "WEFT_SEQUENCER_PREPARE_PROPOSAL_BUDGET_MS")]
    pub prepare_proposal_budget_ms: Option<u64>,
    /// HTTP API: sustained requests per second per client IP (0 = no
    /// per-IP limit).
    #[arg(long, env = "WEFT_SEQUENCER_API_RATE_LIMIT_PER_SECOND")]
    pub api_rate_limit_per_second: Option<u32>,
    /// HTTP API: requests a client IP may send in a burst.
    #[arg(long, env = "WEFT_SEQUENCER_API_RATE_LIMIT_BURST")]
    pub api_rate_limit_burst: Option<u32>,
    /// HTTP API: rate-limit loopback clients too (by default they are the
    /// operator's own tools and exempt; set this behind a local reverse
    /// proxy, where every client looks like loopback).
    #[arg(long, env = "WEFT_SEQUENCER_API_RATE_LIMIT_LOOPBACK", num_args = 0..=1, default_missing_value = "true")]
    pub api_rate_limit_loopback: Option<bool>,
    /// HTTP API: sustained transactions per second a client IP may submit
    /// (`POST /v1/tx` counts one, `POST /v1/txs` its length; 0 = no
    /// budget).
    #[arg(long, env = "WEFT_SEQUENCER_API_RATE_LIMIT_TXS_PER_SECOND")]
    pub api_rate_limit_txs_per_second: Option<u32>,
    /// HTTP API: transactions a client IP may submit at once; a larger
    /// request is refused whole (keep it at least 4096, a full batch).
    #[arg(long, env = "WEFT_SEQUENCER_API_RATE_LIMIT_TXS_BURST")]
    pub api_rate_limit_txs_burst: Option<u32>,
    /// HTTP API: requests handled at once; more are refused with 503.
    #[arg(long, env = "WEFT_SEQUENCER_API_MAX_CONCURRENT_REQUESTS")]
    pub api_max_concurrent_requests: Option<usize>,
    /// HTTP API: batch streams open at once; more are refused with 503.
    #[arg(long, env = "WEFT_SEQUENCER_API_MAX_STREAMS")]
    pub api_max_streams: Option<usize>,
    /// HTTP API: seconds a request may take before it is answered 408.
    #[arg(long, env = "WEFT_SEQUENCER_API_REQUEST_TIMEOUT_SECS")]
    pub api_request_timeout_secs: Option<u64>,
    /// Builder relays (`http://host:port`, comma-separated) this validator
    /// asks for the next height's winning bids as soon as a height
    /// commits. Empty: no bids are proposed (blocks from others still
    /// carry theirs).
    #[arg(long, env = "WEFT_SEQUENCER_RELAY_URLS", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_urls: Option<Vec<String>>,
    /// Key file (`weft keys` format) of the relay key registered in this
    /// validator's staking record (`weft tx edit-validator --relay-key`);
    /// winner fetches are signed with it. Needed with `relay_urls`.
    #[arg(long, env = "WEFT_SEQUENCER_RELAY_KEY_FILE")]
    pub relay_key_file: Option<PathBuf>,
    /// This validator's operator address (the account that registered
    /// it), which relays look the relay key up by. Needed with
    /// `relay_urls`.
    #[arg(long, env = "WEFT_SEQUENCER_RELAY_OPERATOR")]
    pub relay_operator: Option<weft_core::Address>,
    /// Longest one winner fetch may take, in milliseconds; a slower relay
    /// is skipped for that round (PrepareProposal never waits for one).
    #[arg(long, env = "WEFT_SEQUENCER_RELAY_DEADLINE_MS")]
    pub relay_deadline_ms: Option<u64>,
    /// Pause between refreshes of the next height's winners, in
    /// milliseconds.
    #[arg(long, env = "WEFT_SEQUENCER_RELAY_REFRESH_MS")]
    pub relay_refresh_ms: Option<u64>,
    /// Largest envelope (bytes) the API packs admitted transactions into
    /// before handing them to CometBFT as one transaction; keep it well
    /// under CometBFT's `mempool.max_tx_bytes` and, base64-encoded, its
    /// `rpc.max_body_bytes`.
    #[arg(long, env = "WEFT_SEQUENCER_ENVELOPE_MAX_BYTES")]
    pub envelope_max_bytes: Option<usize>,
    /// Longest an admitted transaction waits for others to share its
    /// envelope, in milliseconds (the client's answer never waits for it).
    #[arg(long, env = "WEFT_SEQUENCER_ENVELOPE_MAX_WAIT_MS")]
    pub envelope_max_wait_ms: Option<u64>,
    /// TEST ONLY: never propose this account's transactions. The
    /// censorship-resistance tests run one validator with it; never set it
    /// on a real network (with inclusion lists on, the other validators
    /// refuse such proposals and this node's turns are wasted). A flag
    /// only, never a setting of the file.
    #[arg(long, hide = true)]
    #[serde(skip)]
    pub unsafe_test_censor: Option<weft_core::Address>,
    /// TEST ONLY: put a bid that breaks the auction's rules (`forged`:
    /// another key's signature; `unfunded`: a builder with no funds) into
    /// every proposal; the other validators refuse such proposals. A flag
    /// only, never a setting of the file.
    #[arg(long, hide = true, value_enum)]
    #[serde(skip)]
    pub unsafe_test_bid: Option<crate::app::UnsafeTestBid>,
    /// TEST ONLY: abort the process (SIGABRT, nothing flushed or cleaned
    /// up) at this point of a block's commit: `after-finalize-block`
    /// (FinalizeBlock answered, nothing written) or `mid-commit` (the
    /// height staged in the store's write transaction, not committed).
    /// The crash-point fault tests restart the node without it. A flag
    /// only, never a setting of the file.
    #[arg(long, hide = true, value_enum)]
    #[serde(skip)]
    pub unsafe_test_crash_at: Option<crate::app::CrashPoint>,
    /// TEST ONLY: the height `--unsafe-test-crash-at` fires at (default:
    /// the first block this process commits).
    #[arg(long, hide = true, requires = "unsafe_test_crash_at")]
    #[serde(skip)]
    pub unsafe_test_crash_height: Option<u64>,
}

/// Flags that are not settings (never in the file).
const NOT_SETTINGS: &[&str] = &[
    "config",
    "print_default_config",
    "check_config",
    "unsafe_test_censor",
    "unsafe_test_bid",
    "unsafe_test_crash_at",
    "unsafe_test_crash_height",
];

impl Flags {
    /// Lays the file (if `--config`), then the environment and flags, over
    /// the defaults.
    pub fn load(&self) -> Result<Config, weft_config::ConfigError> {
        weft_config::load(self.config.as_deref(), self)
    }
}

impl Config {
    /// The complete default config file, commented.
    pub fn default_toml() -> Result<String, weft_config::ConfigError> {
        use clap::CommandFactory;
        weft_config::default_toml::<Config>(
            &Flags::command(),
            NOT_SETTINGS,
            "weft-sequencer configuration (weft-sequencer --config FILE).\nEvery key, with its built-in default.",
        )
    }

    /// The app's settings.
    pub fn app_config(&self) -> AppConfig {
        AppConfig {
            mempool: MempoolConfig {
                max_txs: self.mempool_max_txs,
                max_bytes: self.mempool_max_bytes,
                max_parked_per_account: self.mempool_max_parked_per_account,
                max_parked: self.mempool_max_parked,
                max_nonce_ahead: self.mempool_max_nonce_ahead,
                ttl: Duration::from_secs(self.mempool_ttl_secs),
                status_retention: Duration::from_secs(self.status_retention_secs),
                ..MempoolConfig::default()
            },
            tx_index_retention_blocks: self.tx_index_retention_blocks,
            cometbft_retain_blocks: self.cometbft_retain_blocks,
            prepare_proposal_budget: Duration::from_millis(self.prepare_proposal_budget_ms),
            unsafe_test_censor: None,
            unsafe_test_bid: None,
            unsafe_test_crash: None,
        }
    }

    /// The relay fetcher's settings, if relays are configured: `None`
    /// without relays, an error naming the missing key when relays are
    /// set without the key file or the operator.
    pub fn relay_client(
        &self,
    ) -> Result<Option<crate::auction::fetch::RelayClientConfig>, anyhow::Error> {
        if self.relay_urls.is_empty() {
            return Ok(None);
        }
        let key_file = self
            .relay_key_file
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("relay_urls is set but relay_key_file is not"))?;
        let operator = self
            .relay_operator
            .ok_or_else(|| anyhow::anyhow!("relay_urls is set but relay_operator is not"))?;
        let key = std::fs::read_to_string(key_file)
            .map_err(anyhow::Error::from)
            .and_then(|text| Ok(serde_json::from_str::<weft_core::KeyFile>(&text)?))
            .and_then(|file| Ok(file.signing_key()?))
            .map_err(|e| anyhow::anyhow!("relay_key_file {}: {e}", key_file.display()))?;
        Ok(Some(crate::auction::fetch::RelayClientConfig {
            relays: self.relay_urls.clone(),
            operator,
            key: std::sync::Arc::new(key),
            deadline: Duration::from_millis(self.relay_deadline_ms),
            refresh: Duration::from_millis(self.relay_refresh_ms.max(10)),
        }))
    }

    /// How the API packs forwarded transactions into envelopes.
    pub fn envelope_config(&self) -> EnvelopeConfig {
        EnvelopeConfig {
            max_bytes: self
                .envelope_max_bytes
                .clamp(1024, weft_core::envelope::MAX_ENVELOPE_BYTES),
            max_wait: Duration::from_millis(self.envelope_max_wait_ms),
            ..EnvelopeConfig::default()
        }
    }

    /// The HTTP API's limits.
    pub fn api_limits(&self) -> ApiLimits {
        ApiLimits {
            rate_limit_per_second: self.api_rate_limit_per_second,
            rate_limit_burst: self.api_rate_limit_burst,
            rate_limit_loopback: self.api_rate_limit_loopback,
            rate_limit_txs_per_second: self.api_rate_limit_txs_per_second,
            rate_limit_txs_burst: self.api_rate_limit_txs_burst,
            max_concurrent_requests: self.api_max_concurrent_requests,
            max_streams: self.api_max_streams,
            request_timeout: Duration::from_secs(self.api_request_timeout_secs),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::Parser;

    use super::*;

    fn flags(args: &[&str]) -> Flags {
        Flags::try_parse_from(std::iter::once("weft-sequencer").chain(args.iter().copied()))
            .unwrap()
    }

    fn load(file: &str, args: &[&str]) -> Result<Config, weft_config::ConfigError> {
        weft_config::load_str(Some((Path::new("weft.toml"), file)), &flags(args))
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_the_defaults() {
        let file = "mempool_max_txs = 7\nabci_listen = \"unix:///run/weft/abci.sock\"\napi_listen = \"0.0.0.0:9000\"\n";
        let c = load(file, &[]).unwrap();
        assert_eq!(c.mempool_max_txs, 7);
        assert_eq!(
            c.abci_listen.to_string(),
            "unix:///run/weft/abci.sock",
            "unix sockets go through the file"
        );
        assert_eq!(c.api_listen.port(), 9000);
        assert_eq!(c.mempool_max_bytes, Config::default().mempool_max_bytes);
        let c = load(
            file,
            &[
                "--mempool-max-txs",
                "9",
                "--abci-listen",
                "127.0.0.1:1",
                "--api-rate-limit-loopback",
            ],
        )
        .unwrap();
        assert_eq!(c.mempool_max_txs, 9);
        assert_eq!(c.abci_listen.to_string(), "tcp://127.0.0.1:1");
        assert!(c.api_rate_limit_loopback);
        assert_eq!(c.app_config().mempool.max_txs, 9);
    }

    #[test]
    fn the_flags_the_testnet_passes_still_work() {
        let c: Config = weft_config::load_str(
            None,
            &flags(&[
                "--home",
                "/tmp/x",
                "--abci-listen",
                "tcp://127.0.0.1:26658",
                "--api-listen",
                "127.0.0.1:8081",
                "--cometbft-rpc",
                "http://127.0.0.1:26657",
                "--log",
                "debug",
                "--mempool-ttl-secs",
                "5",
            ]),
        )
        .unwrap();
        assert_eq!(c.home, PathBuf::from("/tmp/x"));
        assert_eq!(c.api_listen.port(), 8081);
        assert_eq!((c.log.as_str(), c.mempool_ttl_secs), ("debug", 5));
    }

    #[test]
    fn a_typo_in_the_file_is_an_error_naming_the_key() {
        let err = load("mempool_max_tx = 7\n", &[]).unwrap_err().to_string();
        assert!(err.contains("`mempool_max_tx`"), "{err}");
        assert!(err.contains("did you mean `mempool_max_txs`"), "{err}");
        let err = load("abci_listen = \"udp://x\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("abci_listen"), "{err}");
    }

    #[test]
    fn the_printed_default_config_is_complete_and_parses_back_to_the_defaults() {
        let text = Config::default_toml().unwrap();
        let back = load(&text, &[]).unwrap();
        assert_eq!(back, Config::default());
        // Every key is documented: a comment line above each assignment.
        let lines: Vec<&str> = text.lines().collect();
        let mut keys = 0;
        for (i, line) in lines.iter().enumerate() {
            if !line.starts_with('#') && line.contains(" = ") {
                keys += 1;
                assert!(lines[i - 1].starts_with("# (flag --"), "{line}");
                assert!(lines[i - 2].starts_with("# "), "{line} has no help");
            }
        }
        assert_eq!(keys, 30, "{text}");
    }
}
