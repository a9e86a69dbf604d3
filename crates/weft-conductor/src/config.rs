//! Configuration, layered by `weft-config`: built-in defaults, one TOML
//! file (`--config`), `WEFT_CONDUCTOR_*` environment variables, then flags.
//! Every setting has one key (`step_timeout_secs` in the file,
//! `WEFT_CONDUCTOR_STEP_TIMEOUT_SECS`, `--step-timeout-secs`); unknown keys
//! in the file are refused; `--print-default-config` prints them all.

use std::{net::SocketAddr, num::NonZeroUsize, path::PathBuf, time::Duration};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
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
///
/// Every setting can also come from a TOML file (--config) or a
/// WEFT_CONDUCTOR_* variable: flag > environment > file > default.
#[derive(Debug, Clone, Default, clap::Parser, Serialize)]
#[command(name = "weft-conductor", version, verbatim_doc_comment)]
pub struct Args {
    /// TOML file with any of these settings (environment and flags override
    /// it; an unknown key is an error).
    #[arg(long, env = "WEFT_CONDUCTOR_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Print a complete config file with every default, then exit.
    #[arg(long)]
    #[serde(skip)]
    pub print_default_config: bool,
    /// Load the settings (file, environment, flags), print them as TOML and
    /// exit: non-zero, naming the key, if they do not load. Files the
    /// settings name are not opened.
    #[arg(long)]
    #[serde(skip)]
    pub check_config: bool,
    /// The rollup: its name (hashed to its id) or its 64-hex id. Required.
    #[arg(long, env = "WEFT_CONDUCTOR_ROLLUP")]
    pub rollup: Option<String>,
    /// A sequencer API URL; repeat for failover, used in order (in the
    /// file and the environment: a list).
    #[arg(
        long = "endpoint",
        env = "WEFT_CONDUCTOR_ENDPOINTS",
        value_delimiter = ','
    )]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
    /// A local devnet's devnet.json: supplies the endpoints (every node's
    /// API) and the genesis (node0's genesis.json next to it).
    #[arg(long, env = "WEFT_CONDUCTOR_DEVNET")]
    pub devnet: Option<PathBuf>,
    /// CometBFT genesis.json to anchor trust at genesis.
    #[arg(long, env = "WEFT_CONDUCTOR_GENESIS")]
    pub genesis: Option<PathBuf>,
    /// Anchor trust at this height instead (with trust_hash).
    #[arg(long, env = "WEFT_CONDUCTOR_TRUST_HEIGHT")]
    pub trust_height: Option<u64>,
    /// The header hash trusted at trust_height (hex).
    #[arg(long, env = "WEFT_CONDUCTOR_TRUST_HASH")]
    pub trust_hash: Option<String>,
    /// First height to deliver (earlier ones are verified, not delivered)
    /// [unset: 1, or after the cursor]. With a cursor, a height at or below
    /// the cursor's is refused unless --reset-cursor.
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
    /// Cursor file [unset: `weft-conductor-<rollup id prefix>.cursor` in
    /// the devnet's directory, else in the working directory].
    #[arg(long, env = "WEFT_CONDUCTOR_CURSOR")]
    pub cursor: Option<PathBuf>,
    /// Serve /health and /metrics here [unset: not served].
    #[arg(long, env = "WEFT_CONDUCTOR_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Longest age of the trusted header, in seconds.
    #[arg(long, env = "WEFT_CONDUCTOR_TRUSTING_PERIOD_SECS")]
    pub trusting_period_secs: Option<u64>,
    /// Largest response body read from a sequencer endpoint, in bytes.
    #[arg(long, env = "WEFT_CONDUCTOR_MAX_RESPONSE_BYTES")]
    pub max_response_bytes: Option<usize>,
    /// Validator sets kept in memory, least recently used evicted.
    #[arg(long, env = "WEFT_CONDUCTOR_VALIDATOR_CACHE")]
    pub validator_cache: Option<NonZeroUsize>,
    /// Longest one fetch-and-verify step may take before the endpoint is
    /// left for the next one, in seconds.
    #[arg(long, env = "WEFT_CONDUCTOR_STEP_TIMEOUT_SECS")]
    pub step_timeout_secs: Option<u64>,
    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "WEFT_CONDUCTOR_LOG")]
    pub log: Option<String>,
}

/// What the config file holds: the settings of [`Args`], each with its
/// default (documented on the flag).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Rollup name or id.
    pub rollup: Option<String>,
    /// Sequencer API URLs.
    pub endpoints: Vec<String>,
    /// devnet.json.
    pub devnet: Option<PathBuf>,
    /// genesis.json.
    pub genesis: Option<PathBuf>,
    /// Trusted height.
    pub trust_height: Option<u64>,
    /// Trusted hash.
    pub trust_hash: Option<String>,
    /// First delivered height.
    pub from_height: Option<u64>,
    /// `stdout` or a URL.
    pub deliver: String,
    /// Cursor file.
    pub cursor: Option<PathBuf>,
    /// Health/metrics address.
    pub listen: Option<SocketAddr>,
    /// Trusting period, seconds.
    pub trusting_period_secs: u64,
    /// Response cap, bytes.
    pub max_response_bytes: usize,
    /// Validator sets cached.
    pub validator_cache: NonZeroUsize,
    /// Step timeout, seconds.
    pub step_timeout_secs: u64,
    /// Log filter.
    pub log: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            rollup: None,
            endpoints: Vec::new(),
            devnet: None,
            genesis: None,
            trust_height: None,
            trust_hash: None,
            from_height: None,
            deliver: "stdout".into(),
            cursor: None,
            listen: None,
            trusting_period_secs: 30 * 24 * 3600,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            validator_cache: DEFAULT_VALIDATOR_CACHE,
            step_timeout_secs: DEFAULT_STEP_TIMEOUT.as_secs(),
            log: "info".into(),
        }
    }
}

impl Settings {
    /// The complete default config file, commented.
    pub fn default_toml() -> Result<String, weft_config::ConfigError> {
        use clap::CommandFactory;
        weft_config::default_toml::<Settings>(
            &Args::command(),
            &["config", "print_default_config", "check_config", "reset_cursor"],
            "weft-conductor configuration (weft-conductor --config FILE).\nEvery key, with its built-in default; `(unset)` ones have none.",
        )
    }
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
    /// The settings alone: the `--config` file, the environment and the
    /// flags over the defaults, nothing resolved.
    pub fn settings(&self) -> Result<Settings, weft_config::ConfigError> {
        weft_config::load(self.config.as_deref(), self)
    }

    /// Lays the `--config` file, the environment and the flags over the
    /// defaults, then resolves.
    pub fn resolve(self) -> Result<Config> {
        let settings = self.settings()?;
        let reset_cursor = self.reset_cursor;
        let rollup = settings
            .rollup
            .context("--rollup is required (a name or a 64-hex id)")?;
        let rollup_id = RollupId::from_name_or_hex(&rollup);
        let mut endpoints = settings.endpoints;
        let mut genesis = settings.genesis;
        let mut devnet_dir = None;
        if let Some(devnet) = &settings.devnet {
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
        let anchor = match (settings.trust_height, settings.trust_hash, genesis) {
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
            (Some(_), None, _) | (None, Some(_), _) => bail!("trust_height and trust_hash go together"),
            _ => bail!("no trust anchor: pass --genesis genesis.json, --trust-height H with --trust-hash HEX, or --devnet"),
        };
        let delivery = match settings.deliver.as_str() {
            "stdout" => Delivery::Stdout,
            url if url.starts_with("http://") || url.starts_with("https://") => {
                Delivery::Http(url.to_string())
            }
            other => bail!("--deliver must be `stdout` or an http(s) URL, not `{other}`"),
        };
        let step_timeout = Duration::from_secs(settings.step_timeout_secs);
        if step_timeout.is_zero() {
            bail!("--step-timeout-secs must be at least 1");
        }
        // A devnet's cursor lives in the devnet's directory: `weft devnet up`
        // deletes that directory, so a re-created devnet never meets the
        // previous one's cursor. Elsewhere the working directory, as before.
        let cursor = settings.cursor.unwrap_or_else(|| {
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
            from_height: settings.from_height,
            reset_cursor,
            delivery,
            cursor,
            listen: settings.listen,
            trusting_period: Duration::from_secs(settings.trusting_period_secs),
            max_response_bytes: settings.max_response_bytes,
            options: ConductorOptions {
                validator_cache: settings.validator_cache,
                step_timeout,
            },
            log: settings.log,
        })
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

    #[test]
    fn flags_beat_the_file_which_beats_the_defaults() {
        let home = devnet();
        let devnet_json = home.path().join("devnet.json");
        let file = home.path().join("conductor.toml");
        std::fs::write(
            &file,
            format!(
                "rollup = \"from-file\"\ndevnet = {:?}\nstep_timeout_secs = 5\nendpoints = [\"http://127.0.0.1:2\", \"http://127.0.0.1:3\"]\n",
                devnet_json.to_str().unwrap()
            ),
        )
        .unwrap();
        let file_arg = file.to_str().unwrap();
        let config = resolve(&["--config", file_arg]).unwrap();
        assert_eq!(config.rollup_id, RollupId::from_name("from-file"));
        assert_eq!(config.options.step_timeout, Duration::from_secs(5));
        assert_eq!(
            config.endpoints.len(),
            2,
            "the file's list beats devnet.json"
        );
        assert_eq!(config.max_response_bytes, DEFAULT_MAX_RESPONSE_BYTES);
        let config = resolve(&[
            "--config",
            file_arg,
            "--rollup",
            "from-flag",
            "--step-timeout-secs",
            "9",
            "--endpoint",
            "http://127.0.0.1:4",
        ])
        .unwrap();
        assert_eq!(config.rollup_id, RollupId::from_name("from-flag"));
        assert_eq!(config.options.step_timeout, Duration::from_secs(9));
        assert_eq!(config.endpoints, ["http://127.0.0.1:4"]);
    }

    #[test]
    fn an_unknown_key_in_the_file_is_refused_by_name() {
        let home = devnet();
        let file = home.path().join("conductor.toml");
        std::fs::write(&file, "rollup = \"r\"\nstep_timout_secs = 5\n").unwrap();
        let err = resolve(&["--config", file.to_str().unwrap()]).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("`step_timout_secs`"), "{msg}");
        assert!(msg.contains("did you mean `step_timeout_secs`"), "{msg}");
    }

    #[test]
    fn the_printed_default_config_parses_back_to_the_defaults() {
        let text = Settings::default_toml().unwrap();
        assert!(text.contains("# rollup = (unset)"), "{text}");
        assert!(text.contains("step_timeout_secs = 60"), "{text}");
        assert!(
            !text.contains("reset_cursor"),
            "a one-off flag is no setting: {text}"
        );
        let back: Settings = weft_config::load_str(
            Some((std::path::Path::new("printed"), &text)),
            &Args::default(),
        )
        .unwrap();
        assert_eq!(back, Settings::default());
    }
}
