//! `weft tx`: building, signing and submitting transactions, and optionally
//! waiting until they are committed.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use weft_core::{Action, Address, Amount, ProposalKind, RollupId, Transaction, VoteOption};
use weft_testnet::{genesis::GenesisValidator, DEV_KEY_WARNING};

use crate::{
    args::{KeyArgs, NodeArgs},
    output::Output,
};

/// How long `--wait` waits for a transaction to be committed.
const WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Transactions.
#[derive(Debug, Subcommand)]
pub enum TxCommand {
    /// Sends native asset to another account.
    Transfer {
        /// Recipient address (weft1…).
        #[arg(long, value_name = "ADDR")]
        to: Address,
        /// Amount in the smallest unit.
        #[arg(long, value_name = "N")]
        amount: Amount,
        #[command(flatten)]
        options: TxOptions,
    },
    /// Submits opaque data for a rollup.
    SubmitRollupData {
        /// Rollup name (hashed to its id) or 64-hex rollup id.
        #[arg(long, value_name = "NAME")]
        rollup: String,
        /// The data: hex (optionally 0x-prefixed), or @FILE for a file's bytes.
        #[arg(long, value_name = "HEX|@FILE")]
        data: String,
        #[command(flatten)]
        options: TxOptions,
    },
    /// Registers the signer as the operator of a new validator candidate
    /// (not approved, no stake: bond with `delegate`, then ask governance
    /// to admit it with `propose --admit`).
    #[command(group(clap::ArgGroup::new("consensus").required(true)))]
    RegisterValidator {
        /// The ed25519 consensus key CometBFT signs with: 64 hex digits,
        /// or base64 (as `cometbft show-validator` prints it).
        #[arg(long, value_name = "HEX|BASE64", group = "consensus")]
        consensus_key: Option<String>,
        /// Read the consensus key from a CometBFT priv_validator_key.json
        /// (only the public part is used).
        #[arg(long, value_name = "FILE", group = "consensus")]
        priv_validator_key: Option<PathBuf>,
        /// Read it from a CometBFT home (DIR/config/priv_validator_key.json).
        #[arg(long, value_name = "DIR", group = "consensus")]
        node_home: Option<PathBuf>,
        /// Display name (1 to 64 bytes).
        #[arg(long)]
        name: String,
        /// Website (at most 128 bytes).
        #[arg(long, default_value = "")]
        website: String,
        /// Commission in basis points (0 to 10000).
        #[arg(long, default_value_t = 0, value_name = "BPS")]
        commission_bps: u16,
        #[command(flatten)]
        options: TxOptions,
    },
    /// Bonds stake from the signer's balance to a validator (its operator
    /// address); to its own validator, this is the operator's self-bond.
    Delegate {
        /// The validator's operator address (weft1…).
        #[arg(long, value_name = "ADDR")]
        validator: Address,
        /// Amount in the smallest unit.
        #[arg(long, value_name = "N")]
        amount: Amount,
        #[command(flatten)]
        options: TxOptions,
    },
    /// Starts unbonding stake from a validator; it returns to the
    /// balance after the chain's unbonding period.
    Undelegate {
        /// The validator's operator address (weft1…).
        #[arg(long, value_name = "ADDR")]
        validator: Address,
        /// Amount in the smallest unit.
        #[arg(long, value_name = "N")]
        amount: Amount,
        #[command(flatten)]
        options: TxOptions,
    },
    /// Moves bonded stake from one validator to another at once.
    Redelegate {
        /// The validator the stake leaves (operator address).
        #[arg(long, value_name = "ADDR")]
        from: Address,
        /// The validator the stake joins (operator address).
        #[arg(long, value_name = "ADDR")]
        to: Address,
        /// Amount in the smallest unit.
        #[arg(long, value_name = "N")]
        amount: Amount,
        #[command(flatten)]
        options: TxOptions,
    },
    /// Changes the signer's validator: name, website, commission (at most
    /// once per epoch, by at most the chain's `max_commission_change_bps`),
    /// or the relay key its node signs winner requests with. Only what is
    /// given changes.
    EditValidator {
        /// New display name (1 to 64 bytes).
        #[arg(long)]
        name: Option<String>,
        /// New website (at most 128 bytes).
        #[arg(long)]
        website: Option<String>,
        /// New commission in basis points (0 to 10000).
        #[arg(long, value_name = "BPS")]
        commission_bps: Option<u16>,
        /// The ed25519 public key the validator's node signs relay
        /// requests with: 64 hex digits or base64.
        #[arg(long, value_name = "HEX|BASE64")]
        relay_key: Option<String>,
        #[command(flatten)]
        options: TxOptions,
    },
    /// Brings the signer's jailed validator back (after its jail period;
    /// never for a tombstoned one). It rejoins the set at the next epoch.
    Unjail {
        #[command(flatten)]
        options: TxOptions,
    },
    /// Pays the signer's claimable staking rewards (and, for an operator,
    /// its commission) into its balance.
    ClaimRewards {
        #[command(flatten)]
        options: TxOptions,
    },
    /// Submits a governance proposal, escrowing a deposit (returned at the
    /// end of voting unless the proposal is vetoed). Exactly one of
    /// --admit, --remove, --title, --enable-inclusion-lists or --kind.
    #[command(group(clap::ArgGroup::new("what").required(true)))]
    Propose {
        /// Admit this registered candidate (operator address) to the
        /// approved set.
        #[arg(long, value_name = "ADDR", group = "what")]
        admit: Option<Address>,
        /// Remove this validator (operator address) from the approved set.
        #[arg(long, value_name = "ADDR", group = "what")]
        remove: Option<Address>,
        /// A text proposal with this title (executes nothing).
        #[arg(long, group = "what")]
        title: Option<String>,
        /// The text proposal's description.
        #[arg(long, default_value = "", requires = "title")]
        description: String,
        /// Turn inclusion lists on (vote extensions off today): an
        /// enable_inclusion_lists proposal with the default inclusion
        /// parameters and the node's current block and evidence
        /// parameters, read from its /consensus_params. Use --kind for
        /// other inclusion parameters.
        #[arg(long, group = "what")]
        enable_inclusion_lists: bool,
        /// Any proposal kind as JSON (protocol.md, section 3), e.g.
        /// '{"type":"change_fee_params","params":{"base_fee":"2000","fee_per_byte":"1"}}',
        /// or @FILE to read it from a file.
        #[arg(long, value_name = "JSON|@FILE", group = "what")]
        kind: Option<String>,
        /// Deposit in the smallest unit (at least the chain's min_deposit).
        #[arg(long, value_name = "N")]
        deposit: Amount,
        #[command(flatten)]
        options: TxOptions,
    },
    /// Votes on an open proposal; a later vote replaces an earlier one.
    Vote {
        /// The proposal's id.
        #[arg(long, value_name = "ID")]
        proposal: u64,
        /// yes, no, abstain or no_with_veto (also: veto).
        #[arg(long, value_name = "OPTION", value_parser = parse_vote_option)]
        option: VoteOption,
        #[command(flatten)]
        options: TxOptions,
    },
}

/// Options every transaction command takes.
#[derive(Debug, Args)]
pub struct TxOptions {
    #[command(flatten)]
    node: NodeArgs,
    #[command(flatten)]
    key: KeyArgs,
    /// Nonce to sign with, instead of asking the node for the account's
    /// next one (its pending nonce: the nonce after the account's
    /// transactions still waiting in the node's mempool).
    #[arg(long, value_name = "N")]
    nonce: Option<u64>,
    /// Wait (up to 30s) until the transaction is in a block and print its height.
    #[arg(long)]
    wait: bool,
}

/// Runs a `weft tx` command; `Ok(false)` when the chain refused the tx.
pub async fn run(command: TxCommand, out: Output) -> Result<bool> {
    // The one command that needs the node before it can build its action.
    let consensus = match &command {
        TxCommand::Propose {
            enable_inclusion_lists: true,
            options,
            ..
        } => Some(options.node.client()?.consensus_params().await?),
        _ => None,
    };
    let (action, options) = action_of(command, consensus)?;
    send(action, options, out).await
}

/// The action a command asks for, with its signing and sending options;
/// `consensus` is the node's consensus parameters, for
/// `propose --enable-inclusion-lists`.
fn action_of(
    command: TxCommand,
    consensus: Option<weft_core::ConsensusParams>,
) -> Result<(Action, TxOptions)> {
    Ok(match command {
        TxCommand::Transfer {
            to,
            amount,
            options,
        } => (Action::Transfer { to, amount }, options),
        TxCommand::SubmitRollupData {
            rollup,
            data,
            options,
        } => (
            Action::SubmitRollupData {
                rollup_id: RollupId::from_name_or_hex(&rollup),
                data: read_data(&data)?,
            },
            options,
        ),
        TxCommand::RegisterValidator {
            consensus_key,
            priv_validator_key,
            node_home,
            name,
            website,
            commission_bps,
            options,
        } => (
            Action::RegisterValidator {
                consensus_key: read_consensus_key(consensus_key, priv_validator_key, node_home)?,
                name,
                website,
                commission_bps,
            },
            options,
        ),
        TxCommand::Delegate {
            validator,
            amount,
            options,
        } => (Action::Delegate { validator, amount }, options),
        TxCommand::Undelegate {
            validator,
            amount,
            options,
        } => (Action::Undelegate { validator, amount }, options),
        TxCommand::Redelegate {
            from,
            to,
            amount,
            options,
        } => (Action::Redelegate { from, to, amount }, options),
        TxCommand::EditValidator {
            name,
            website,
            commission_bps,
            relay_key,
            options,
        } => {
            if name.is_none()
                && website.is_none()
                && commission_bps.is_none()
                && relay_key.is_none()
            {
                bail!("nothing to change: pass --name, --website, --commission-bps or --relay-key");
            }
            let relay_key = relay_key
                .map(|k| read_consensus_key(Some(k), None, None))
                .transpose()
                .context("--relay-key")?;
            (
                Action::EditValidator {
                    name,
                    website,
                    commission_bps,
                    relay_key,
                },
                options,
            )
        }
        TxCommand::Unjail { options } => (Action::Unjail {}, options),
        TxCommand::ClaimRewards { options } => (Action::ClaimRewards {}, options),
        TxCommand::Propose {
            admit,
            remove,
            title,
            description,
            enable_inclusion_lists,
            kind,
            deposit,
            options,
        } => {
            let kind = match (admit, remove, title, kind) {
                (Some(operator), ..) => ProposalKind::AdmitValidator { operator },
                (_, Some(operator), ..) => ProposalKind::RemoveValidator { operator },
                (_, _, Some(title), _) => ProposalKind::Text { title, description },
                (_, _, _, Some(json)) => read_kind(&json)?,
                _ if enable_inclusion_lists => ProposalKind::EnableInclusionLists {
                    params: weft_core::InclusionParams::default(),
                    consensus: consensus.context(
                        "--enable-inclusion-lists needs the node's consensus parameters",
                    )?,
                },
                // clap's required group makes this unreachable; say so
                // rather than panic.
                _ => bail!(
                    "pass one of --admit, --remove, --title, --enable-inclusion-lists or --kind"
                ),
            };
            // The chain would refuse it with a less precise message.
            kind.check()
                .map_err(|e| anyhow::anyhow!("the proposal is malformed: {e}"))?;
            (Action::Propose { kind, deposit }, options)
        }
        TxCommand::Vote {
            proposal,
            option,
            options,
        } => (
            Action::Vote {
                proposal_id: proposal,
                option,
            },
            options,
        ),
    })
}

/// Signs `action` with the options' key and sends it.
async fn send(action: Action, options: TxOptions, out: Output) -> Result<bool> {
    let key = options.key.signing_key(&options.node)?;
    if options.key.uses_devnet_dev_key(&options.node) {
        out.note(format!(
            "signing with the devnet's developer key {}. {DEV_KEY_WARNING}",
            key.address()
        ));
    }
    let client = options.node.client()?;
    let chain_id = client.chain_id().await?;
    let nonce = match options.nonce {
        Some(nonce) => nonce,
        // The pending nonce, not the committed one: a second `weft tx` while
        // the first still waits in the mempool must follow it, not reuse
        // its nonce (CheckTx would refuse it as a duplicate).
        None => client
            .account(&key.address())
            .await
            .with_context(|| format!("looking up the nonce of {}", key.address()))?
            .next_nonce(),
    };
    let signed = Transaction {
        chain_id: chain_id.clone(),
        nonce,
        actions: vec![action],
    }
    .sign(&key);
    let hash = signed.hash().to_hex().to_uppercase();
    let check = client.broadcast_tx_sync(&signed.encode()).await?;
    let mut report = json!({
        "hash": hash,
        "chain_id": chain_id,
        "signer": key.address(),
        "nonce": nonce,
        "check_tx": { "code": check.code, "log": check.log },
    });
    if check.code != 0 {
        out.emit(&report, || {
            format!(
                "tx hash:  {hash}\nCheckTx:  code {} (rejected)\nlog:      {}",
                check.code, check.log
            )
        });
        return Ok(false);
    }
    if !options.wait {
        out.emit(&report, || {
            format!(
                "tx hash:  {hash}\nCheckTx:  code 0 (accepted into the mempool)\nnonce:    {nonce}"
            )
        });
        return Ok(true);
    }
    out.note(format!(
        "tx {hash} accepted; waiting for it to be committed..."
    ));
    let deadline = Instant::now() + WAIT_TIMEOUT;
    let committed = loop {
        if let Some(committed) = client.tx(&check.hash).await? {
            break committed;
        }
        if Instant::now() >= deadline {
            bail!("tx {hash} was not committed within {WAIT_TIMEOUT:?} (it may still be in the mempool)");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    report["committed"] = json!({
        "height": committed.height,
        "code": committed.code,
        "log": committed.log,
    });
    out.emit(&report, || {
        let mut text = format!(
            "tx hash:  {hash}\nCheckTx:  code 0\nheight:   {}\nresult:   code {}",
            committed.height, committed.code
        );
        if committed.code != 0 {
            text.push_str(&format!(" (failed)\nlog:      {}", committed.log));
        }
        text
    });
    Ok(committed.code == 0)
}

/// Reads `--data`: `@FILE` for a file's bytes, else hex.
fn read_data(data: &str) -> Result<Vec<u8>> {
    let bytes = match data.strip_prefix('@') {
        Some(path) => std::fs::read(path).with_context(|| format!("reading --data file {path}"))?,
        None => hex::decode(data.strip_prefix("0x").unwrap_or(data))
            .context("--data must be hex (or @FILE to read a file)")?,
    };
    if bytes.is_empty() {
        bail!("--data is empty; rollup data must be at least one byte");
    }
    Ok(bytes)
}

/// `--option`: a vote option by its protocol name.
fn parse_vote_option(text: &str) -> Result<VoteOption, String> {
    match text.to_ascii_lowercase().as_str() {
        "yes" => Ok(VoteOption::Yes),
        "no" => Ok(VoteOption::No),
        "abstain" => Ok(VoteOption::Abstain),
        "no_with_veto" | "no-with-veto" | "veto" => Ok(VoteOption::NoWithVeto),
        _ => Err(format!(
            "`{text}` is not a vote option: yes, no, abstain or no_with_veto"
        )),
    }
}

/// `--kind`: a proposal kind's JSON, inline or `@FILE`.
fn read_kind(text: &str) -> Result<ProposalKind> {
    let json = match text.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading --kind file {path}"))?
        }
        None => text.to_string(),
    };
    serde_json::from_str(&json).context(
        "--kind is not a proposal kind (JSON with \"type\": admit_validator, remove_validator, text, change_staking_params, change_governance_params, change_fee_params, change_rollup_params, change_account_params, enable_inclusion_lists or change_inclusion_params, and its fields)",
    )
}

/// The consensus key from `--consensus-key` (hex or base64),
/// `--priv-validator-key` or `--node-home`.
fn read_consensus_key(
    key: Option<String>,
    file: Option<PathBuf>,
    home: Option<PathBuf>,
) -> Result<[u8; 32]> {
    let file = match (key, file, home) {
        (Some(text), ..) => {
            let text = text.trim();
            if text.len() == 64 {
                if let Ok(bytes) = hex::decode(text) {
                    return bytes
                        .try_into()
                        .map_err(|_| anyhow::anyhow!("--consensus-key is not 32 bytes"));
                }
            }
            return GenesisValidator::from_base64(text, "")?
                .ed25519_key()
                .map_err(anyhow::Error::msg)
                .context("--consensus-key must be 64 hex digits or base64 of 32 bytes");
        }
        (None, Some(file), _) => file,
        (None, None, Some(dir)) => {
            let nested = dir.join("config/priv_validator_key.json");
            if nested.exists() {
                nested
            } else {
                dir.join("priv_validator_key.json")
            }
        }
        (None, None, None) => {
            bail!("pass --consensus-key, --priv-validator-key or --node-home")
        }
    };
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    GenesisValidator::from_priv_validator_key(&json, "")
        .with_context(|| format!("reading {}", file.display()))?
        .ed25519_key()
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("{}: pub_key", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vote_options_kinds_and_consensus_keys() {
        assert_eq!(parse_vote_option("YES").unwrap(), VoteOption::Yes);
        assert_eq!(parse_vote_option("veto").unwrap(), VoteOption::NoWithVeto);
        assert_eq!(
            parse_vote_option("no_with_veto").unwrap(),
            VoteOption::NoWithVeto
        );
        assert!(parse_vote_option("maybe").is_err());
        let kind = read_kind(
            r#"{"type":"change_account_params","params":{"max_txs_per_account_per_block":3}}"#,
        )
        .unwrap();
        assert_eq!(
            kind,
            ProposalKind::ChangeAccountParams {
                params: weft_core::AccountParams {
                    max_txs_per_account_per_block: 3
                }
            }
        );
        assert!(read_kind(r#"{"type":"bogus"}"#).is_err());
        // edit-validator, unjail and claim-rewards map to their actions.
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(subcommand)]
            tx: TxCommand,
        }
        let relay = weft_core::SigningKey::from_seed("relay").public_key().0;
        let relay_hex = hex::encode(relay);
        let edit = Cli::parse_from([
            "weft",
            "edit-validator",
            "--commission-bps",
            "600",
            "--relay-key",
            &relay_hex,
        ]);
        assert_eq!(
            action_of(edit.tx, None).unwrap().0,
            Action::EditValidator {
                name: None,
                website: None,
                commission_bps: Some(600),
                relay_key: Some(relay),
            }
        );
        assert!(action_of(Cli::parse_from(["weft", "edit-validator"]).tx, None).is_err());
        assert_eq!(
            action_of(Cli::parse_from(["weft", "unjail"]).tx, None)
                .unwrap()
                .0,
            Action::Unjail {}
        );
        assert_eq!(
            action_of(Cli::parse_from(["weft", "claim-rewards"]).tx, None)
                .unwrap()
                .0,
            Action::ClaimRewards {}
        );
        // propose --enable-inclusion-lists restates the node's parameters.
        let consensus = weft_core::ConsensusParams {
            block_max_bytes: 4 << 20,
            block_max_gas: -1,
            evidence_max_age_num_blocks: 100_000,
            evidence_max_age_duration_ns: 172_800_000_000_000,
            evidence_max_bytes: 1 << 20,
        };
        let enable = Cli::parse_from([
            "weft",
            "propose",
            "--enable-inclusion-lists",
            "--deposit",
            "10",
        ]);
        assert_eq!(
            action_of(enable.tx, Some(consensus.clone())).unwrap().0,
            Action::Propose {
                kind: ProposalKind::EnableInclusionLists {
                    params: weft_core::InclusionParams::default(),
                    consensus,
                },
                deposit: 10,
            }
        );
        let key = weft_core::SigningKey::from_seed("cons").public_key().0;
        let hex_key = hex::encode(key);
        assert_eq!(read_consensus_key(Some(hex_key), None, None).unwrap(), key);
        let b64 = weft_testnet::genesis::GenesisValidator::from_ed25519(key, "x").pub_key_value;
        assert_eq!(read_consensus_key(Some(b64), None, None).unwrap(), key);
        assert!(read_consensus_key(Some("zz".into()), None, None).is_err());
        let dir = std::env::temp_dir().join(format!("weft-cli-pvk-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("config")).unwrap();
        let v = weft_testnet::genesis::GenesisValidator::from_ed25519(key, "x");
        std::fs::write(
            dir.join("config/priv_validator_key.json"),
            serde_json::json!({
                "address": v.address,
                "pub_key": { "type": v.pub_key_type, "value": v.pub_key_value },
            })
            .to_string(),
        )
        .unwrap();
        assert_eq!(
            read_consensus_key(None, None, Some(dir.clone())).unwrap(),
            key
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn data_is_hex_or_a_file() {
        assert_eq!(read_data("0x0aff").unwrap(), vec![0x0a, 0xff]);
        assert_eq!(read_data("0aff").unwrap(), vec![0x0a, 0xff]);
        assert!(read_data("xyz").is_err());
        assert!(read_data("").is_err());
        let path = std::env::temp_dir().join(format!("weft-cli-data-{}", std::process::id()));
        std::fs::write(&path, b"hello").unwrap();
        assert_eq!(
            read_data(&format!("@{}", path.display())).unwrap(),
            b"hello"
        );
        std::fs::remove_file(&path).unwrap();
    }
}
