//! Process configuration: command-line flags, each also readable from a
//! `WEFT_SEQUENCER_*` environment variable.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use crate::{abci_server::ListenAddr, api::ApiLimits, app::AppConfig, mempool::MempoolConfig};

/// `weft-sequencer` configuration.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "weft-sequencer",
    version,
    about = "The Weft ABCI application. Run it next to a CometBFT v0.38 node whose proxy_app points at --abci-listen."
)]
pub struct Config {
    /// Data directory; the state lives in `<home>/weft.redb`.
    #[arg(long, env = "WEFT_SEQUENCER_HOME", default_value = ".weft-sequencer")]
    pub home: PathBuf,
    /// Where CometBFT connects over ABCI (its `proxy_app`): `host:port`,
    /// `tcp://host:port`, or `unix:///path/abci.sock` (same host; cheaper
    /// per CheckTx).
    #[arg(
        long,
        env = "WEFT_SEQUENCER_ABCI_LISTEN",
        default_value = "127.0.0.1:26658"
    )]
    pub abci_listen: ListenAddr,
    /// Where the HTTP API listens.
    #[arg(
        long,
        env = "WEFT_SEQUENCER_API_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub api_listen: SocketAddr,
    /// The local CometBFT node's RPC address (POST /v1/tx forwards there).
    #[arg(
        long,
        env = "WEFT_SEQUENCER_COMETBFT_RPC",
        default_value = "http://127.0.0.1:26657"
    )]
    pub cometbft_rpc: String,
    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "WEFT_SEQUENCER_LOG", default_value = "info")]
    pub log: String,
    /// Most transactions the mempool holds (pending + parked).
    #[arg(long, env = "WEFT_SEQUENCER_MEMPOOL_MAX_TXS", default_value_t = MempoolConfig::default().max_txs)]
    pub mempool_max_txs: usize,
    /// Most encoded bytes the mempool holds.
    #[arg(long, env = "WEFT_SEQUENCER_MEMPOOL_MAX_BYTES", default_value_t = MempoolConfig::default().max_bytes)]
    pub mempool_max_bytes: usize,
    /// Most parked (future-nonce) transactions per account.
    #[arg(long, env = "WEFT_SEQUENCER_MEMPOOL_MAX_PARKED_PER_ACCOUNT", default_value_t = MempoolConfig::default().max_parked_per_account)]
    pub mempool_max_parked_per_account: usize,
    /// Most parked transactions overall.
    #[arg(long, env = "WEFT_SEQUENCER_MEMPOOL_MAX_PARKED", default_value_t = MempoolConfig::default().max_parked)]
    pub mempool_max_parked: usize,
    /// How far beyond the account's nonce a transaction may be admitted.
    #[arg(long, env = "WEFT_SEQUENCER_MEMPOOL_MAX_NONCE_AHEAD", default_value_t = MempoolConfig::default().max_nonce_ahead)]
    pub mempool_max_nonce_ahead: u64,
    /// Seconds a transaction may wait in the mempool before it is evicted.
    #[arg(long, env = "WEFT_SEQUENCER_MEMPOOL_TTL_SECS", default_value_t = MempoolConfig::default().ttl.as_secs())]
    pub mempool_ttl_secs: u64,
    /// Seconds a rejected or evicted status stays queryable.
    #[arg(long, env = "WEFT_SEQUENCER_STATUS_RETENTION_SECS", default_value_t = MempoolConfig::default().status_retention.as_secs())]
    pub status_retention_secs: u64,
    /// Heights of included-tx locations kept for status queries.
    #[arg(long, env = "WEFT_SEQUENCER_TX_INDEX_RETENTION_BLOCKS", default_value_t = AppConfig::default().tx_index_retention_blocks)]
    pub tx_index_retention_blocks: u64,
    /// Longest PrepareProposal spends filling a block from the mempool, in
    /// milliseconds (keep it well under CometBFT's `timeout_propose`).
    #[arg(long, env = "WEFT_SEQUENCER_PREPARE_PROPOSAL_BUDGET_MS", default_value_t = AppConfig::default().prepare_proposal_budget.as_millis() as u64)]
    pub prepare_proposal_budget_ms: u64,
    /// HTTP API: sustained requests per second per client IP (0 = no
    /// per-IP limit).
    #[arg(long, env = "WEFT_SEQUENCER_API_RATE_LIMIT_PER_SECOND", default_value_t = ApiLimits::default().rate_limit_per_second)]
    pub api_rate_limit_per_second: u32,
    /// HTTP API: requests a client IP may send in a burst.
    #[arg(long, env = "WEFT_SEQUENCER_API_RATE_LIMIT_BURST", default_value_t = ApiLimits::default().rate_limit_burst)]
    pub api_rate_limit_burst: u32,
    /// HTTP API: rate-limit loopback clients too (by default they are the
    /// operator's own tools and exempt; set this behind a local reverse
    /// proxy, where every client looks like loopback).
    #[arg(long, env = "WEFT_SEQUENCER_API_RATE_LIMIT_LOOPBACK", default_value_t = ApiLimits::default().rate_limit_loopback)]
    pub api_rate_limit_loopback: bool,
    /// HTTP API: requests handled at once; more are refused with 503.
    #[arg(long, env = "WEFT_SEQUENCER_API_MAX_CONCURRENT_REQUESTS", default_value_t = ApiLimits::default().max_concurrent_requests)]
    pub api_max_concurrent_requests: usize,
    /// HTTP API: batch streams open at once; more are refused with 503.
    #[arg(long, env = "WEFT_SEQUENCER_API_MAX_STREAMS", default_value_t = ApiLimits::default().max_streams)]
    pub api_max_streams: usize,
    /// HTTP API: seconds a request may take before it is answered 408.
    #[arg(long, env = "WEFT_SEQUENCER_API_REQUEST_TIMEOUT_SECS", default_value_t = ApiLimits::default().request_timeout.as_secs())]
    pub api_request_timeout_secs: u64,
    /// TEST ONLY: never propose this account's transactions. The
    /// censorship-resistance tests run one validator with it; never set it
    /// on a real network (with inclusion lists on, the other validators
    /// refuse such proposals and this node's turns are wasted).
    #[arg(long, hide = true)]
    pub unsafe_test_censor: Option<weft_core::Address>,
}

impl Config {
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
            prepare_proposal_budget: Duration::from_millis(self.prepare_proposal_budget_ms),
            unsafe_test_censor: self.unsafe_test_censor,
        }
    }

    /// The HTTP API's limits.
    pub fn api_limits(&self) -> ApiLimits {
        ApiLimits {
            rate_limit_per_second: self.api_rate_limit_per_second,
            rate_limit_burst: self.api_rate_limit_burst,
            rate_limit_loopback: self.api_rate_limit_loopback,
            max_concurrent_requests: self.api_max_concurrent_requests,
            max_streams: self.api_max_streams,
            request_timeout: Duration::from_secs(self.api_request_timeout_secs),
        }
    }
}
