//! `weft genesis`: writing, editing and checking a CometBFT genesis.json
//! whose `app_state` is Weft's. Every edit goes through
//! `weft_testnet::genesis`, the code `weft devnet up` builds its genesis
//! with, and `validate` applies the same checks that code does.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde_json::{json, Value};
use weft_core::{
    genesis::{set_param, GenesisStaking},
    Address, Amount, GenesisAccount,
};
use weft_testnet::genesis::{self as g, GenesisValidator, NewGenesis};

use crate::output::Output;

/// Genesis file commands.
#[derive(Debug, Subcommand)]
pub enum GenesisCommand {
    /// Writes a new genesis.json: no validators, no accounts, default
    /// parameters; consensus parameters as CometBFT v0.38's defaults but
    /// for the block size and vote extensions.
    New {
        /// Chain id: 1 to 50 printable ASCII bytes, no spaces.
        #[arg(long)]
        chain_id: String,
        /// Genesis time, RFC 3339 (UTC), e.g. 2026-01-01T00:00:00Z
        /// [default: now].
        #[arg(long, value_name = "TIME")]
        genesis_time: Option<String>,
        /// consensus_params.block.max_bytes.
        #[arg(long, default_value_t = g::BLOCK_MAX_BYTES, value_name = "BYTES")]
        block_max_bytes: u64,
        /// consensus_params.abci.vote_extensions_enable_height: 0 = vote
        /// extensions off, else the first height whose votes carry them.
        #[arg(long, default_value_t = 0, value_name = "HEIGHT")]
        vote_extensions_enable_height: u64,
        /// Where to write it.
        #[arg(long, default_value = "genesis.json", value_name = "FILE")]
        out: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Funds an account: appends {address, balance} to app_state.accounts.
    AddAccount {
        /// The genesis file to edit.
        #[arg(long, default_value = "genesis.json", value_name = "FILE")]
        genesis: PathBuf,
        /// Account address, bech32m `weft1…`.
        address: String,
        /// Starting balance (decimal, fits u128; total supply must too).
        balance: String,
    },
    /// Adds a CometBFT validator (ed25519 key, power) and, with
    /// --operator and --self-bond, its entry in app_state.staking.
    #[command(group(clap::ArgGroup::new("key").required(true)))]
    AddValidator {
        /// The genesis file to edit.
        #[arg(long, default_value = "genesis.json", value_name = "FILE")]
        genesis: PathBuf,
        /// The consensus public key, base64 (as in priv_validator_key.json
        /// or `cometbft show-validator`).
        #[arg(long, value_name = "BASE64", group = "key")]
        pubkey: Option<String>,
        /// Read the public key from a CometBFT priv_validator_key.json
        /// (only the public part is used).
        #[arg(long, value_name = "FILE", group = "key")]
        priv_validator_key: Option<PathBuf>,
        /// Read the public key from a CometBFT home (DIR/config/priv_validator_key.json).
        #[arg(long, value_name = "DIR", group = "key")]
        node_home: Option<PathBuf>,
        /// Voting power (positive). With a staking section it must equal
        /// the power the staking rules give this validator's stake (see
        /// docs/governance.md).
        #[arg(long)]
        power: u64,
        /// Validator name (moniker).
        #[arg(long, default_value = "")]
        name: String,
        /// Operator account (bech32m `weft1…`): adds the validator to
        /// app_state.staking (approved at genesis). Needs --self-bond.
        #[arg(long, requires = "self_bond", value_name = "ADDRESS")]
        operator: Option<String>,
        /// Self-bond moved from the operator's genesis balance into stake.
        #[arg(long, requires = "operator", value_name = "AMOUNT")]
        self_bond: Option<String>,
        /// Website for the staking entry.
        #[arg(long, default_value = "", requires = "operator")]
        website: String,
        /// Commission in basis points for the staking entry.
        #[arg(long, default_value_t = 0, requires = "operator", value_name = "BPS")]
        commission_bps: u16,
    },
    /// Sets a parameter in app_state: a chain parameter (e.g. base_fee), a
    /// staking one (staking.<name>, e.g. staking.epoch_blocks) or a
    /// governance one (governance.<name>, e.g. governance.quorum_bps).
    /// Unknown names are refused with the list of known ones.
    SetParam {
        /// The genesis file to edit.
        #[arg(long, default_value = "genesis.json", value_name = "FILE")]
        genesis: PathBuf,
        /// Parameter name.
        name: String,
        /// New value (decimal).
        value: String,
    },
    /// Checks a genesis.json as CometBFT and weft-sequencer would (and
    /// more strictly); a refusal names the offending field.
    Validate {
        /// The genesis file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// Runs a `weft genesis` command; `Ok(false)` when `validate` refuses.
pub fn run(command: GenesisCommand, out: Output) -> Result<bool> {
    match command {
        GenesisCommand::New {
            chain_id,
            genesis_time,
            block_max_bytes,
            vote_extensions_enable_height,
            out: path,
            force,
        } => {
            if path.exists() && !force {
                bail!(
                    "{} already exists; pass --force to overwrite it",
                    path.display()
                );
            }
            let doc = g::new_genesis(&NewGenesis {
                chain_id: chain_id.clone(),
                genesis_time: genesis_time.unwrap_or_else(now_rfc3339),
                block_max_bytes,
                vote_extensions_enable_height,
            })?;
            write(&path, &doc)?;
            out.emit(
                &json!({ "file": path, "chain_id": chain_id, "genesis_time": doc["genesis_time"] }),
                || format!("wrote {} (chain id {chain_id})", path.display()),
            );
        }
        GenesisCommand::AddAccount {
            genesis,
            address,
            balance,
        } => {
            let mut doc = read(&genesis)?;
            let address: Address = address
                .parse()
                .with_context(|| format!("address `{address}` is not a weft1… address"))?;
            let balance: Amount = balance
                .parse()
                .with_context(|| format!("balance `{balance}` is not an amount (u128)"))?;
            let mut app = g::app_state(&doc)?;
            if let Some(i) = app.accounts.iter().position(|a| a.address == address) {
                bail!("app_state.accounts[{i}]: {address} is already funded");
            }
            let supply = app
                .accounts
                .iter()
                .try_fold(balance, |t, a| t.checked_add(a.balance))
                .context("total supply would overflow u128")?;
            app.accounts.push(GenesisAccount { address, balance });
            g::set_app_state(&mut doc, &app)?;
            write(&genesis, &doc)?;
            out.emit(
                &json!({ "file": genesis, "address": address, "balance": balance.to_string(), "total_supply": supply.to_string() }),
                || format!("funded {address} with {balance}; total supply {supply}"),
            );
        }
        GenesisCommand::AddValidator {
            genesis,
            pubkey,
            priv_validator_key,
            node_home,
            power,
            name,
            operator,
            self_bond,
            website,
            commission_bps,
        } => {
            let mut doc = read(&genesis)?;
            let validator = match (pubkey, priv_validator_key, node_home) {
                (Some(b64), _, _) => GenesisValidator::from_base64(&b64, &name)?,
                (None, Some(file), _) => from_key_file(&file, &name)?,
                (None, None, Some(dir)) => {
                    let nested = dir.join("config/priv_validator_key.json");
                    let file = if nested.exists() {
                        nested
                    } else {
                        dir.join("priv_validator_key.json")
                    };
                    from_key_file(&file, &name)?
                }
                (None, None, None) => bail!("pass --pubkey, --priv-validator-key or --node-home"),
            };
            let key = validator.ed25519_key().map_err(anyhow::Error::msg)?;
            g::add_validator(&mut doc, &validator, power)?;
            let mut report = json!({
                "file": genesis,
                "address": validator.address,
                "pub_key": validator.pub_key_value,
                "power": power.to_string(),
            });
            if let (Some(operator), Some(self_bond)) = (operator, self_bond) {
                let operator: Address = operator
                    .parse()
                    .with_context(|| format!("--operator `{operator}` is not a weft1… address"))?;
                let self_bond: Amount = self_bond
                    .parse()
                    .with_context(|| format!("--self-bond `{self_bond}` is not an amount"))?;
                let mut app = g::app_state(&doc)?;
                let staking = app.staking.get_or_insert_with(|| GenesisStaking {
                    params: Default::default(),
                    validators: Vec::new(),
                });
                if staking.validators.iter().any(|v| v.operator == operator) {
                    bail!(
                        "app_state.staking.validators: operator {operator} already has a validator"
                    );
                }
                staking.validators.push(weft_core::GenesisValidator {
                    operator,
                    consensus_key: key,
                    name: if name.is_empty() {
                        validator.address.clone()
                    } else {
                        name.clone()
                    },
                    website,
                    commission_bps,
                    self_bond,
                });
                g::set_app_state(&mut doc, &app)?;
                report["operator"] = json!(operator);
                report["self_bond"] = json!(self_bond.to_string());
            }
            write(&genesis, &doc)?;
            out.emit(&report, || {
                format!(
                    "added validator {} ({}) with power {power}",
                    validator.address, validator.pub_key_value
                )
            });
        }
        GenesisCommand::SetParam {
            genesis,
            name,
            value,
        } => {
            let mut doc = read(&genesis)?;
            let mut app = g::app_state(&doc)?;
            set_param(&mut app, &name, &value).map_err(anyhow::Error::msg)?;
            g::set_app_state(&mut doc, &app)?;
            write(&genesis, &doc)?;
            out.emit(
                &json!({ "file": genesis, "name": name, "value": value }),
                || format!("set {name} = {value}"),
            );
        }
        GenesisCommand::Validate { file } => {
            let doc = read(&file)?;
            return Ok(match g::validate(&doc) {
                Ok(s) => {
                    let supply: Amount = s.app_state.accounts.iter().map(|a| a.balance).sum();
                    let staking = s
                        .app_state
                        .staking
                        .as_ref()
                        .map_or(0, |st| st.validators.len());
                    out.emit(
                        &json!({
                            "valid": true,
                            "file": file,
                            "chain_id": s.chain_id,
                            "genesis_time": s.genesis_time,
                            "validators": s.validators,
                            "total_power": s.total_power,
                            "vote_extensions_enable_height": s.vote_extensions_enable_height,
                            "accounts": s.app_state.accounts.len(),
                            "total_supply": supply.to_string(),
                            "staking_validators": staking,
                        }),
                        || {
                            format!(
                                "{} is valid: chain id {}, {} validators (total power {}), {} accounts (supply {supply}), {staking} staking validators, vote extensions {}",
                                file.display(),
                                s.chain_id,
                                s.validators,
                                s.total_power,
                                s.app_state.accounts.len(),
                                if s.vote_extensions_enable_height == 0 {
                                    "off".to_string()
                                } else {
                                    format!("from height {}", s.vote_extensions_enable_height)
                                },
                            )
                        },
                    );
                    true
                }
                Err(e) => {
                    if out.json {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&json!({
                                "valid": false,
                                "file": file,
                                "field": e.field,
                                "error": e.message,
                            }))?
                        );
                    } else {
                        eprintln!("error: {} is not a valid genesis: {e}", file.display());
                    }
                    false
                }
            });
        }
    }
    Ok(true)
}

fn from_key_file(file: &Path, name: &str) -> Result<GenesisValidator> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let json: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    let v = GenesisValidator::from_priv_validator_key(&json, name)
        .with_context(|| format!("reading {}", file.display()))?;
    // Recompute the address from the key rather than trust the file.
    let key = v
        .ed25519_key()
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("{}: pub_key", file.display()))?;
    Ok(GenesisValidator::from_ed25519(key, name))
}

fn read(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// Writes through a temporary file and a rename, so an interrupted edit
/// never leaves half a genesis.
fn write(path: &Path, doc: &Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(doc)?;
    text.push('\n');
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// The current time as RFC 3339 UTC with whole seconds.
fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn now_is_rfc3339() {
        let t = super::now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'), "{t}");
    }
}
