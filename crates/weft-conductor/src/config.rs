//! Configuration: flags, `WEFT_CONDUCTOR_*` environment variables, and an
//! optional TOML file (`--config`) with the same keys; flags and
//! environment win over the file.

use std::{net::SocketAddr, num::NonZeroUsize, path::PathBuf, time::Duration};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use tendermint::{chain, validator};
use weft_core::RollupId;

use crate::{
    conductor::{ConductorOptions, DEFAULT_STEP_TIMEOUT, DEFAULT_VALIDATOR_CACHE},
    source::DEFAULT_MAX_RESPONSE_BYTES,
    verify::Anchor,
};

/// `weft-conductor`: follow one rollup's batches on a Weft sequencer,
/// verify every height (validator signatures, then merkle proofs) and
/// deliver it to the rollup exactly once, in order.
///
/// Try it on a local network:
///   weft-conductor --devnet .devnet/devnet.json --rollup my-rollup --from-height 1 --deliver stdout
#[derive(Debug, Clone, Default, clap::Parser, Deserialize)]
#[command(name = "weft-conductor", version, verbatim_doc_comment)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// TOML file with any of these settings (flags and env override it).
    #[arg(long, env = "WEFT_CONDUCTOR_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// The rollup: its name (hashed to its id) or its 64-hex id.
    #[arg(long, env = "WEFT_CONDUCTOR_ROLLUP")]
    pub rollup: Option<String>,
    /// A sequencer API URL; repeat for failover, used in order.
    #[arg(
        long = "endpoint",
        env = "WEFT_CONDUCTOR_ENDPOINTS",
        value_delimiter = ','
    )]
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// A local devnet's devnet.json: supplies the endpoints (every node's
    /// API) and the genesis (node0's genesis.json next to it).
    #[arg(long, env = "WEFT_CONDUCTOR_DEVNET")]
    pub devnet: Option<PathBuf>,
    /// CometBFT genesis.json to anchor trust at genesis.
    #[arg(long, env = "WEFT_CONDUCTOR_GENESIS")]
    pub genesis: Option<PathBuf>,
    /// Anchor trust at this height instead (with --trust-hash).
    #[arg(long, env = "WEFT_CONDUCTOR_TRUST_HEIGHT", requires = "trust_hash")]
    pub trust_height: Option<u64>,
    /// The header hash trusted at --trust-height (hex).
    #[arg(long, env = "WEFT_CONDUCTOR_TRUST_HASH", requires = "trust_height")]
    pub trust_hash: Option<String>,
    /// First height to deliver (earlier ones are verified, not delivered)
    /// [default: 1, or after the cursor]. With a cursor, a height at or
    /// below the cursor's is refused unless --reset-cursor.
    #[arg(long, env = "WEFT_CONDUCTOR_FROM_HEIGHT")]
    pub from_height: Option<u64>,
    /// Forget the cursor's record before starting: start again from the
    /// trust anchor and --from-height. One-off, so not read from --config.
    #[arg(long, env = "WEFT_CONDUCTOR_RESET_CURSOR")]
    #[serde(skip)]
    pub reset_cursor: bool,
    /// Where blocks go: `stdout` (NDJSON) or an http(s) URL of the rollup
    /// node (POST a block, GET the head).
    #[arg(long, env = "WEFT_CONDUCTOR_DELIVER")]
    pub deliver: Option<String>,
    /// Cursor file (default: `weft-conductor-<rollup id prefix>.cursor` in
    /// the --devnet directory, else in the working directory).
    #[arg(long, env = "WEFT_CONDUCTOR_CURSOR")]
    pub cursor: Option<PathBuf>,
    /// Serve /health and /metrics here.
    #[arg(long, env = "WEFT_CONDUCTOR_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Longest age of the trusted header, in seconds [default: 30 days].
    #[arg(long, env = "WEFT_CONDUCTOR_TRUSTING_PERIOD_SECS")]
    pub trusting_period_secs: Option<u64>,
    /// Largest response body read from a sequencer endpoint, in bytes
    /// [default: 67108864 (64 MiB)].
    #[arg(long, env = "WEFT_CONDUCTOR_MAX_RESPONSE_BYTES")]
    pub max_response_bytes: Option<usize>,
    /// Validator sets kept in memory, least recently used evicted
    /// [default: 128].
    #[arg(long, env = "WEFT_CONDUCTOR_VALIDATOR_CACHE")]
    pub validator_cache: Option<NonZeroUsize>,
    /// Longest one fetch-and-verify step may take before the endpoint is
    /// left for the next one, in seconds [default: 60].
    #[arg(long, env = "WEFT_CONDUCTOR_STEP_TIMEOUT_SECS")]
    pub step_timeout_secs: Option<u64>,
    /// Log filter [default: info].
    #[arg(long, env = "WEFT_CONDUCTOR_LOG")]
    pub log: Option<String>,
}

/// Where to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// NDJSON lines on stdout.
    Stdout,
    /// POST to a rollup node.
    Http(String),
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The rollup.
    pub rollup_id: RollupId,
    /// Sequencer API endpoints, in order.
    pub endpoints: Vec<String>,
    /// Trust anchor.
    pub anchor: Anchor,
    /// First height delivered, if given (see [`crate::Conductor::new`]).
    pub from_height: Option<u64>,
    /// Forget the cursor's record before starting.
    pub reset_cursor: bool,
    /// Delivery.
    pub delivery: Delivery,
    /// Cursor file.
    pub cursor: PathBuf,
    /// Health/metrics address.
    pub listen: Option<SocketAddr>,
    /// Trusting period.
    pub trusting_period: Duration,
    /// Cap on a sequencer response body.
    pub max_response_bytes: usize,
    /// Validator cache and step timeout.
    pub options: ConductorOptions,
    /// Log filter.
    pub log: String,
}

#[derive(Deserialize)]
struct DevnetFile {
    nodes: Vec<DevnetNode>,
}

#[derive(Deserialize)]
struct DevnetNode {
    api: String,
}

#[derive(Deserialize)]
struct GenesisFile {
    chain_id: String,
    validators: Vec<validator::Info>,
}

impl Args {
    /// Fills unset fields from the `--config` file, then resolves.
    pub fn resolve(mut self) -> Result<Config> {
        if let Some(path) = &self.config {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let file: Args =
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
            self.merge(file);
        }
        let rollup = self
            .rollup
            .context("--rollup is required (a name or a 64-hex id)")?;
        let rollup_id = RollupId::from_name_or_hex(&rollup);
        let mut endpoints = self.endpoints;
        let mut genesis = self.genesis;
        let mut devnet_dir = None;
        if let Some(devnet) = &self.devnet {
            let text = std::fs::read_to_string(devnet)
                .with_context(|| format!("reading {}", devnet.display()))?;
            let file: DevnetFile = serde_json::from_str(&text).context("devnet.json")?;
            if endpoints.is_empty() {
                endpoints = file.nodes.into_iter().map(|n| n.api).collect();
            }
            let dir = devnet.parent().unwrap_or(std::path::Path::new("."));
            if genesis.is_none() {
                genesis = Some(dir.join("node0/cometbft/config/genesis.json"));
            }
            devnet_dir = Some(dir.to_path_buf());
        }
        if endpoints.is_empty() {
            bail!(
                "no sequencer endpoint: pass --endpoint URL (repeatable) or --devnet devnet.json"
            );
        }
        let anchor = match (self.trust_height, self.trust_hash, genesis) {
            (Some(height), Some(hash), _) => Anchor::Header {
                height,
                hash: tendermint::Hash::from_hex_upper(tendermint::hash::Algorithm::Sha256, &hash.to_uppercase())
                    .context("--trust-hash must be 64 hex characters")?,
            },
            (_, _, Some(path)) => {
                let text = std::fs::read_to_string(&path).with_context(|| format!("reading genesis {}", path.display()))?;
                let g: GenesisFile = serde_json::from_str(&text).with_context(|| format!("parsing genesis {}", path.display()))?;
                let chain_id: chain::Id = g.chain_id.parse().context("genesis chain_id")?;
                Anchor::Genesis { chain_id, validators: validator::Set::without_proposer(g.validators) }
            }
            _ => bail!("no trust anchor: pass --genesis genesis.json, --trust-height H with --trust-hash HEX, or --devnet"),
        };
        let delivery = match self.deliver.as_deref() {
            None | Some("stdout") => Delivery::Stdout,
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                Delivery::Http(url.to_string())
            }
            Some(other) => bail!("--deliver must be `stdout` or an http(s) URL, not `{other}`"),
        };
        let step_timeout = self
            .step_timeout_secs
            .map_or(DEFAULT_STEP_TIMEOUT, Duration::from_secs);
        if step_timeout.is_zero() {
            bail!("--step-timeout-secs must be at least 1");
        }
        // A devnet's cursor lives in the devnet's directory: `weft devnet up`
        // deletes that directory, so a re-created devnet never meets the
        // previous one's cursor. Elsewhere the working directory, as before.
        let cursor = self.cursor.unwrap_or_else(|| {
            let name = format!("weft-conductor-{}.cursor", &rollup_id.to_hex()[..16]);
            match &devnet_dir {
                Some(dir) => dir.join(name),
                None => PathBuf::from(name),
            }
        });
        Ok(Config {
            rollup_id,
            endpoints,
            anchor,
            from_height: self.from_height,
            reset_cursor: self.reset_cursor,
            delivery,
            cursor,
            listen: self.listen,
            trusting_period: Duration::from_secs(
                self.trusting_period_secs.unwrap_or(30 * 24 * 3600),
            ),
            max_response_bytes: self
                .max_response_bytes
                .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
            options: ConductorOptions {
                validator_cache: self.validator_cache.unwrap_or(DEFAULT_VALIDATOR_CACHE),
                step_timeout,
            },
            log: self.log.unwrap_or_else(|| "info".into()),
        })
    }

    fn merge(&mut self, file: Args) {
        macro_rules! fill {
            ($($f:ident),*) => {$( if self.$f.is_none() { self.$f = file.$f; } )*};
        }
        fill!(
            rollup,
            devnet,
            genesis,
            trust_height,
            trust_hash,
            from_height,
            deliver,
            cursor,
            listen,
            trusting_period_secs,
            max_response_bytes,
            validator_cache,
            step_timeout_secs,
            log
        );
        if self.endpoints.is_empty() {
            self.endpoints = file.endpoints;
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// A devnet home with a devnet.json and node0's genesis.
    fn devnet() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("devnet.json"),
            r#"{"nodes":[{"api":"http://127.0.0.1:1"}]}"#,
        )
        .unwrap();
        let config = dir.path().join("node0/cometbft/config");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(
            config.join("genesis.json"),
            r#"{"chain_id":"weft-devnet","validators":[]}"#,
        )
        .unwrap();
        dir
    }

    fn resolve(args: &[&str]) -> Result<Config> {
        Args::try_parse_from(std::iter::once("weft-conductor").chain(args.iter().copied()))?
            .resolve()
    }

    #[test]
    fn a_devnet_keeps_its_cursor_in_its_own_directory() {
        let home = devnet();
        let devnet_json = home.path().join("devnet.json");
        let config =
            resolve(&["--devnet", devnet_json.to_str().unwrap(), "--rollup", "r"]).unwrap();
        let prefix = &RollupId::from_name("r").to_hex()[..16];
        assert_eq!(
            config.cursor,
            home.path().join(format!("weft-conductor-{prefix}.cursor"))
        );
        // Without a devnet: the working directory, as before.
        let genesis = home.path().join("node0/cometbft/config/genesis.json");
        let config = resolve(&[
            "--endpoint",
            "http://127.0.0.1:1",
            "--genesis",
            genesis.to_str().unwrap(),
            "--rollup",
            "r",
        ])
        .unwrap();
        assert_eq!(
            config.cursor,
            PathBuf::from(format!("weft-conductor-{prefix}.cursor"))
        );
    }

    #[test]
    fn from_height_and_reset_are_explicit_and_reset_is_never_read_from_a_file() {
        let home = devnet();
        let devnet_json = home.path().join("devnet.json");
        let devnet_arg = devnet_json.to_str().unwrap();
        let config = resolve(&["--devnet", devnet_arg, "--rollup", "r"]).unwrap();
        assert_eq!(config.from_height, None, "absent stays absent");
        assert!(!config.reset_cursor);
        let config = resolve(&[
            "--devnet",
            devnet_arg,
            "--rollup",
            "r",
            "--from-height",
            "1",
            "--reset-cursor",
        ])
        .unwrap();
        assert_eq!(config.from_height, Some(1));
        assert!(config.reset_cursor);
        // A config file that would reset on every restart is an error.
        let file = home.path().join("conductor.toml");
        std::fs::write(&file, "reset_cursor = true\n").unwrap();
        let err = resolve(&[
            "--devnet",
            devnet_arg,
            "--rollup",
            "r",
            "--config",
            file.to_str().unwrap(),
        ])
        .unwrap_err();
        assert!(format!("{err:#}").contains("reset_cursor"), "{err:#}");
    }

    #[test]
    fn limits_have_defaults_and_flags() {
        let home = devnet();
        let devnet_json = home.path().join("devnet.json");
        let devnet_arg = devnet_json.to_str().unwrap();
        let config = resolve(&["--devnet", devnet_arg, "--rollup", "r"]).unwrap();
        assert_eq!(config.max_response_bytes, DEFAULT_MAX_RESPONSE_BYTES);
        assert_eq!(config.options, ConductorOptions::default());
        let config = resolve(&[
            "--devnet",
            devnet_arg,
            "--rollup",
            "r",
            "--max-response-bytes",
            "1000",
            "--validator-cache",
            "3",
            "--step-timeout-secs",
            "7",
        ])
        .unwrap();
        assert_eq!(config.max_response_bytes, 1000);
        assert_eq!(config.options.validator_cache.get(), 3);
        assert_eq!(config.options.step_timeout, Duration::from_secs(7));
        assert!(resolve(&[
            "--devnet",
            devnet_arg,
            "--rollup",
            "r",
            "--validator-cache",
            "0"
        ])
        .is_err());
        assert!(resolve(&[
            "--devnet",
            devnet_arg,
            "--rollup",
            "r",
            "--step-timeout-secs",
            "0"
        ])
        .is_err());
    }
}
